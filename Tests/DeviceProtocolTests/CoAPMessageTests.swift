import AmarsTestSupport
import XCTest

@testable import DeviceProtocol

final class CoAPMessageTests: XCTestCase {
    // MARK: - Published examples (see SOURCES.md)

    /// RFC 7252 Appendix A, Figure 16: CON GET /temperature, MID 0x7d34, no token.
    func testRFC7252Figure16Request() throws {
        let wire = hex("40 01 7D 34 BB") + bytes("temperature")
        var request = CoAPMessage(type: .confirmable, code: .get, messageID: 0x7D34)
        request.uriPath = [bytes("temperature")]
        XCTAssertEqual(request.encode(), wire)
        let decoded = try CoAPMessage.decode(wire)
        XCTAssertEqual(decoded, request)
        XCTAssertEqual(decoded.uriPath, [bytes("temperature")])
        XCTAssertTrue(decoded.uriPathMatches("temperature"))
    }

    /// RFC 7252 Appendix A, Figure 16: the piggybacked ACK 2.05 "22.3 C".
    func testRFC7252Figure16Response() throws {
        let wire = hex("60 45 7D 34 FF") + bytes("22.3 C")
        let request = CoAPMessage(type: .confirmable, code: .get, messageID: 0x7D34)
        let response = request.acknowledgement(code: .content, payload: bytes("22.3 C"))
        XCTAssertEqual(response.encode(), wire)
        XCTAssertEqual(try CoAPMessage.decode(wire), response)
    }

    /// Same exchange with the one-byte token 0x20 (the layout of RFC 7252 Figure 17).
    func testRequestAndResponseWithToken() throws {
        let request = hex("41 01 7D 35 20 BB") + bytes("temperature")
        let decoded = try CoAPMessage.decode(request)
        XCTAssertEqual(decoded.token, [0x20])
        XCTAssertEqual(decoded.type, .confirmable)
        XCTAssertEqual(decoded.messageID, 0x7D35)
        let response = decoded.acknowledgement(code: .content, payload: bytes("22.5 C"))
        XCTAssertEqual(response.encode(), hex("61 45 7D 35 20 FF") + bytes("22.5 C"))
    }

    func testEmptyMessages() throws {
        let ack = CoAPMessage(type: .acknowledgement, code: .empty, messageID: 0xBEEF)
        XCTAssertEqual(ack.encode(), hex("60 00 BE EF"))
        XCTAssertEqual(try CoAPMessage.decode(hex("60 00 BE EF")), ack)
        XCTAssertEqual(try CoAPMessage.decode(hex("70 00 00 01")).type, .reset)
    }

    // MARK: - Extended delta and length boundaries

    func testOptionDeltaBoundaries() throws {
        // Number (= delta from 0) → header byte and extended bytes, each with an empty value.
        let cases: [(UInt16, [UInt8])] = [
            (12, hex("C0")),
            (13, hex("D0 00")),
            (14, hex("D0 01")),
            (268, hex("D0 FF")),
            (269, hex("E0 00 00")),
            (270, hex("E0 00 01")),
            (65535, hex("E0 FE F2")),
        ]
        for (number, optionBytes) in cases {
            let message = CoAPMessage(
                type: .nonConfirmable, code: .post, messageID: 1,
                options: [CoAPOption(number: CoAPOptionNumber(rawValue: number), value: [])])
            let wire = hex("50 02 00 01") + optionBytes
            XCTAssertEqual(message.encode(), wire, "number \(number)")
            XCTAssertEqual(try CoAPMessage.decode(wire), message, "number \(number)")
        }
    }

    func testOptionLengthBoundaries() throws {
        // Proxy-Uri (35) allows 1–1034 bytes, so it covers every length form; 35 = delta 13 + 22.
        let cases: [(Int, [UInt8])] = [
            (12, hex("DC 16")),
            (13, hex("DD 16 00")),
            (268, hex("DD 16 FF")),
            (269, hex("DE 16 00 00")),
            (1034, hex("DE 16 02 FD")),
        ]
        for (length, header) in cases {
            let value = [UInt8](repeating: 0x61, count: length)
            let message = CoAPMessage(
                type: .confirmable, code: .get, messageID: 7,
                options: [CoAPOption(number: .proxyUri, value: value)])
            let wire = hex("40 01 00 07") + header + value
            XCTAssertEqual(message.encode(), wire, "length \(length)")
            XCTAssertEqual(try CoAPMessage.decode(wire), message, "length \(length)")
        }
    }

    func testDeltaAndLengthBothExtended() throws {
        // Unknown option 300 (delta 14 form: 300-269 = 0x001F) with a 20-byte value (length 13 form: 7).
        let value = [UInt8](repeating: 0xAB, count: 20)
        let wire = hex("40 01 00 01 ED 00 1F 07") + value
        let decoded = try CoAPMessage.decode(wire)
        XCTAssertEqual(decoded.options, [CoAPOption(number: CoAPOptionNumber(rawValue: 300), value: value)])
        XCTAssertEqual(decoded.encode(), wire)
    }

    // MARK: - Option ordering

    func testOptionsAreSortedStablyOnEncode() throws {
        var message = CoAPMessage(type: .confirmable, code: .post, messageID: 0x1234, token: [1, 2])
        message.options = [
            CoAPOption(number: .uriQuery, value: bytes("b=2")),
            CoAPOption(number: .contentFormat, uint: 42),
            CoAPOption(number: .uriPath, value: bytes("v1")),
            CoAPOption(number: .uriQuery, value: bytes("a=1")),
            CoAPOption(number: .uriPath, value: bytes("tx")),
        ]
        message.payload = [0xDE, 0xAD]
        let wire = message.encode()
        let expected =
            hex("42 02 12 34 01 02")
            + hex("B2") + bytes("v1") + hex("02") + bytes("tx")  // Uri-Path 11, then delta 0
            + hex("11 2A")  // Content-Format 12: delta 1, one byte 42
            + hex("33") + bytes("b=2") + hex("03") + bytes("a=1")  // Uri-Query 15, order kept
            + hex("FF DE AD")
        XCTAssertEqual(wire, expected)
        let decoded = try CoAPMessage.decode(wire)
        XCTAssertEqual(decoded.uriPath, [bytes("v1"), bytes("tx")])
        XCTAssertEqual(decoded.uriQuery, [bytes("b=2"), bytes("a=1")])
        XCTAssertEqual(decoded.contentFormat, ContentFormat.octetStream)
        XCTAssertTrue(decoded.uriPathMatches(DeviceResources.transaction))
    }

    func testAddAndSetOptionKeepOrder() {
        var message = CoAPMessage(type: .confirmable, code: .get, messageID: 1)
        message.addOption(CoAPOption(number: .uriQuery, value: bytes("x")))
        message.setUriPath(DeviceResources.accountProof)
        message.contentFormat = 42
        message.contentFormat = 0
        message.observe = Observe.register
        XCTAssertEqual(
            message.options.map { $0.number },
            [.observe, .uriPath, .uriPath, .uriPath, .contentFormat, .uriQuery])
        XCTAssertEqual(message.option(.contentFormat)?.value, [])
        XCTAssertEqual(message.contentFormat, 0)
        message.contentFormat = nil
        XCTAssertNil(message.option(.contentFormat))
        XCTAssertEqual(message.uriPath, [bytes("v1"), bytes("proof"), bytes("account")])
    }

    func testResourcePathsAreSegments() {
        XCTAssertEqual(CoAPMessage.segments(of: DeviceResources.head), [bytes("v1"), bytes("head")])
        XCTAssertEqual(CoAPMessage.segments(of: "/v1//proof/tx/"), [bytes("v1"), bytes("proof"), bytes("tx")])
        var message = CoAPMessage(type: .confirmable, code: .get, messageID: 2)
        message.setUriPath(DeviceResources.txProof)
        XCTAssertEqual(message.encode(), hex("40 01 00 02 B2 76 31 05") + bytes("proof") + hex("02 74 78"))
        XCTAssertFalse(message.uriPathMatches(DeviceResources.accountProof))
    }

    // MARK: - Integer options

    func testUIntOptionValues() {
        XCTAssertEqual(CoAPOption.minimalBytes(0), [])
        XCTAssertEqual(CoAPOption.minimalBytes(1), [1])
        XCTAssertEqual(CoAPOption.minimalBytes(255), [0xFF])
        XCTAssertEqual(CoAPOption.minimalBytes(256), [1, 0])
        XCTAssertEqual(CoAPOption.minimalBytes(0x0100_0000), [1, 0, 0, 0])
        XCTAssertEqual(CoAPOption.minimalBytes(UInt32.max), [0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertEqual(CoAPOption(number: .maxAge, value: [0, 0, 1]).uintValue, 1)
        XCTAssertFalse(CoAPOption(number: .maxAge, value: [0, 1]).isMinimalUInt)
        XCTAssertTrue(CoAPOption(number: .maxAge, value: []).isMinimalUInt)
        XCTAssertNil(CoAPOption(number: CoAPOptionNumber(rawValue: 2000), value: [1, 2, 3, 4, 5]).uintValue)
    }

    // MARK: - Unknown critical options

    func testUnknownCriticalOptionIsKeptAndReported() throws {
        // Option 9 (odd: critical, unregistered) with one byte, then an unknown elective 2000.
        let wire = hex("40 01 00 01 91 07 E0 06 BA")
        let decoded = try CoAPMessage.decode(wire)
        XCTAssertEqual(decoded.encode(), wire)
        XCTAssertEqual(decoded.firstUnknownCriticalOption(), CoAPOptionNumber(rawValue: 9))
        XCTAssertNil(decoded.firstUnknownCriticalOption(known: [CoAPOptionNumber(rawValue: 9)]))
        XCTAssertEqual(CoAPError.unknownCriticalOption(number: 9).responseCode, .badOption)

        var elective = CoAPMessage(type: .confirmable, code: .get, messageID: 1)
        elective.addOption(CoAPOption(number: CoAPOptionNumber(rawValue: 2000), value: [1]))
        XCTAssertNil(elective.firstUnknownCriticalOption())
    }

    func testRepeatedNonRepeatableCriticalOptionIsReported() {
        var message = CoAPMessage(type: .confirmable, code: .get, messageID: 1)
        message.addOption(CoAPOption(number: .uriHost, value: bytes("a")))
        message.addOption(CoAPOption(number: .uriPath, value: bytes("x")))
        message.addOption(CoAPOption(number: .uriPath, value: bytes("y")))
        XCTAssertNil(message.firstUnknownCriticalOption())
        message.addOption(CoAPOption(number: .uriHost, value: bytes("b")))
        XCTAssertEqual(message.firstUnknownCriticalOption(), .uriHost)
    }

    func testOptionNumberProperties() {
        XCTAssertTrue(CoAPOptionNumber.uriPath.isCritical)
        XCTAssertTrue(CoAPOptionNumber.uriPath.isUnsafe)
        XCTAssertFalse(CoAPOptionNumber.contentFormat.isCritical)
        XCTAssertTrue(CoAPOptionNumber.size1.isNoCacheKey)
        XCTAssertFalse(CoAPOptionNumber.eTag.isNoCacheKey)
        XCTAssertEqual(CoAPOptionNumber.block1.valueLengthRange, 0...3)
        XCTAssertEqual(CoAPOptionNumber.uriPath.valueLengthRange, 0...255)
        XCTAssertNil(CoAPOptionNumber(rawValue: 9).valueLengthRange)
    }

    // MARK: - Bad inputs

    func testFormatErrors() {
        let cases: [(String, [UInt8], CoAPError)] = [
            ("empty input", [], .truncatedHeader),
            ("3 bytes", hex("40 01 00"), .truncatedHeader),
            ("version 0", hex("00 01 00 01"), .unsupportedVersion(0)),
            ("version 2", hex("80 01 00 01"), .unsupportedVersion(2)),
            ("token length 9", hex("49 01 00 01 01 02 03 04 05 06 07 08 09"), .invalidTokenLength(9)),
            ("token length 15", hex("4F 01 00 01"), .invalidTokenLength(15)),
            ("truncated token", hex("44 01 00 01 AA BB"), .truncatedToken),
            ("delta nibble 15", hex("40 01 00 01 F0"), .reservedOptionNibble),
            ("delta nibble 15 with length", hex("40 01 00 01 F1 00"), .reservedOptionNibble),
            ("length nibble 15", hex("40 01 00 01 BF 00"), .reservedOptionNibble),
            ("length nibble 15, delta 0", hex("40 01 00 01 0F"), .reservedOptionNibble),
            ("marker without payload", hex("40 01 00 01 FF"), .emptyPayloadAfterMarker),
            ("marker after options without payload", hex("40 01 00 01 B1 61 FF"), .emptyPayloadAfterMarker),
            ("truncated value", hex("40 01 00 01 B5 61 62"), .truncatedOption),
            ("missing 1-byte extended delta", hex("40 01 00 01 D0"), .truncatedOption),
            ("missing 2-byte extended delta", hex("40 01 00 01 E0 00"), .truncatedOption),
            ("missing extended length", hex("40 01 00 01 BD"), .truncatedOption),
            ("number over 65535", hex("40 01 00 01 E0 FE F2 10"), .optionNumberOverflow),
            ("single delta over 65535", hex("40 01 00 01 E0 FF FF"), .optionNumberOverflow),
            ("empty message with token", hex("41 00 00 01 AA"), .nonEmptyEmptyMessage),
            ("empty message with payload", hex("40 00 00 01 FF 01"), .nonEmptyEmptyMessage),
        ]
        for (name, input, expected) in cases {
            XCTAssertEqual(decodeResult(input).error, expected, name)
            XCTAssertTrue(expected.isMessageFormatError, name)
            XCTAssertEqual(expected.responseCode, .badRequest, name)
        }
    }

    func testOptionValueLengthCaps() {
        let longPath = [UInt8](repeating: 0x61, count: 256)
        let cases: [(String, [UInt8], UInt16, CoAPCode)] = [
            ("Content-Format 3 bytes", hex("40 01 00 01 C3 00 00 2A"), 12, .badRequest),
            ("Uri-Path 256 bytes", hex("40 01 00 01 BD F3") + longPath, 11, .badOption),
            ("Uri-Host empty", hex("40 01 00 01 30"), 3, .badOption),
            ("If-None-Match with a value", hex("40 01 00 01 51 00"), 5, .badOption),
            ("Observe 4 bytes", hex("40 01 00 01 64 00 00 00 01"), 6, .badRequest),
            ("Block2 4 bytes", hex("40 01 00 01 D4 0A 00 00 00 16"), 23, .badOption),
            ("Block1 4 bytes", hex("40 01 00 01 D4 0E 00 00 00 16"), 27, .badOption),
            ("ETag 9 bytes", hex("40 01 00 01 49 01 02 03 04 05 06 07 08 09"), 4, .badRequest),
            ("No-Response 2 bytes", hex("40 01 00 01 D2 F5 00 1A"), 258, .badRequest),
        ]
        for (name, input, number, code) in cases {
            let error = decodeResult(input).error
            XCTAssertEqual(error, .optionValueLength(number: number), name)
            XCTAssertEqual(error?.responseCode, code, name)
            XCTAssertEqual(error?.isMessageFormatError, false, name)
        }
        // The upper bounds themselves are fine.
        XCTAssertNoThrow(try CoAPMessage.decode(hex("40 01 00 01 BD F2") + [UInt8](repeating: 0x61, count: 255)))
        XCTAssertNoThrow(try CoAPMessage.decode(hex("40 01 00 01 C2 00 2A")))
        XCTAssertNoThrow(try CoAPMessage.decode(hex("40 01 00 01 63 FF FF FF")))
    }

    func testMessageSizeCap() {
        let header = hex("40 02 00 01 FF")
        let atCap = header + [UInt8](repeating: 7, count: CoAPMessage.maxMessageSize - header.count)
        XCTAssertEqual(atCap.count, 1152)
        XCTAssertNoThrow(try CoAPMessage.decode(atCap))
        let overCap = atCap + [7]
        XCTAssertEqual(decodeResult(overCap).error, .messageTooLarge)
        XCTAssertEqual(CoAPError.messageTooLarge.responseCode, .requestEntityTooLarge)
        // A smaller configured cap.
        XCTAssertEqual(decodeResult(hex("40 02 00 01 FF 01 02")).error, nil)
        XCTAssertThrowsError(try CoAPMessage.decode(hex("40 02 00 01 FF 01 02"), maxMessageSize: 6))
        // The header of an oversized message is still readable for a 4.13 answer.
        XCTAssertEqual(CoAPMessage.peekHeader(overCap)?.messageID, 1)
    }

    func testOptionCountCap() {
        var wire = hex("40 01 00 01")
        for _ in 0..<CoAPMessage.maxOptions { wire.append(0xB0) }  // 32 empty Uri-Path segments
        XCTAssertEqual(try CoAPMessage.decode(wire).options.count, 32)
        wire.append(0xB0)
        XCTAssertEqual(decodeResult(wire).error, .tooManyOptions)
    }

    // MARK: - Rejecting

    func testPeekHeaderAndReset() {
        let bad = hex("42 01 12 34 AA BB F0")
        XCTAssertEqual(decodeResult(bad).error, .reservedOptionNibble)
        let header = CoAPMessage.peekHeader(bad)
        XCTAssertEqual(header?.token, [0xAA, 0xBB])
        XCTAssertEqual(header?.messageID, 0x1234)
        XCTAssertEqual(header?.type, .confirmable)
        XCTAssertEqual(CoAPMessage.resetReply(to: bad)?.encode(), hex("70 00 12 34"))
        XCTAssertNil(CoAPMessage.resetReply(to: hex("52 01 12 34")))  // NON: ignore, no reset
        XCTAssertNil(CoAPMessage.peekHeader(hex("44 01 00 01 AA")))
        XCTAssertNil(CoAPMessage.peekHeader(hex("80 01 00 01")))
    }

    func testCodes() {
        XCTAssertEqual(CoAPCode.content.codeClass, 2)
        XCTAssertEqual(CoAPCode.content.detail, 5)
        XCTAssertEqual(CoAPCode.continue, CoAPCode(codeClass: 2, detail: 31))
        XCTAssertEqual(CoAPCode.tooManyRequests, CoAPCode(codeClass: 4, detail: 29))
        XCTAssertEqual(CoAPCode.requestEntityIncomplete, CoAPCode(codeClass: 4, detail: 8))
        XCTAssertEqual(CoAPCode.requestEntityTooLarge, CoAPCode(codeClass: 4, detail: 13))
        XCTAssertEqual(CoAPCode.unsupportedContentFormat, CoAPCode(codeClass: 4, detail: 15))
        XCTAssertEqual(CoAPCode.serviceUnavailable, CoAPCode(codeClass: 5, detail: 3))
        XCTAssertEqual(CoAPCode.created.rawValue, 65)
        XCTAssertTrue(CoAPCode.fetch.isRequest)
        XCTAssertTrue(CoAPCode(rawValue: 0x20).isReservedClass)
        XCTAssertTrue(CoAPCode(rawValue: 0xE0).isReservedClass)
        XCTAssertFalse(CoAPCode.empty.isRequest)
    }

    // MARK: - Round trips

    func testRandomRoundTrips() throws {
        var rng = SplitMix64(seed: 0x436F_4150_5254)
        for _ in 0..<5_000 {
            let message = randomMessage(&rng)
            let wire = message.encode()
            XCTAssertLessThanOrEqual(wire.count, CoAPMessage.maxMessageSize)
            let decoded = try CoAPMessage.decode(wire)
            XCTAssertEqual(decoded, message)
            XCTAssertEqual(decoded.encode(), wire)
        }
    }
}

extension Result {
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
