import XCTest

@testable import AmarsCodec

final class HexTests: XCTestCase {
    private func decodeError(_ text: String, maxBytes: Int = 1 << 20) -> HexError? {
        do {
            _ = try Hex.decode(text, maxBytes: maxBytes)
            return nil
        } catch {
            return error
        }
    }

    func testKnownValues() throws {
        XCTAssertEqual(Hex.encode([UInt8]()), "")
        XCTAssertEqual(Hex.encode([0x00, 0x01, 0x7f, 0x80, 0xab, 0xff]), "00017f80abff")
        XCTAssertEqual(Hex.encode(0...15 as ClosedRange<UInt8>), "000102030405060708090a0b0c0d0e0f")
        XCTAssertEqual(try Hex.decode(""), [])
        XCTAssertEqual(try Hex.decode("0x"), [])
        XCTAssertEqual(try Hex.decode("00017f80abff"), [0x00, 0x01, 0x7f, 0x80, 0xab, 0xff])
    }

    func testRoundTrips() throws {
        var state: UInt64 = 0x1234_5678_9abc_def0
        for length in 0..<200 {
            var bytes: [UInt8] = []
            for _ in 0..<length {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(UInt8(truncatingIfNeeded: state >> 56))
            }
            let text = Hex.encode(bytes)
            XCTAssertEqual(text.utf8.count, length * 2)
            XCTAssertEqual(text, text.lowercased())
            XCTAssertEqual(try Hex.decode(text), bytes)
            XCTAssertEqual(try Hex.decode(text.uppercased()), bytes)
            XCTAssertEqual(try Hex.decode("0x" + text), bytes)
            XCTAssertEqual(try Hex.decode("0X" + text.uppercased()), bytes)
        }
        let all = (0...255).map { UInt8($0) }
        XCTAssertEqual(try Hex.decode(Hex.encode(all)), all)
    }

    func testUppercaseAndMixedCaseAccepted() throws {
        XCTAssertEqual(try Hex.decode("DEADBEEF"), [0xde, 0xad, 0xbe, 0xef])
        XCTAssertEqual(try Hex.decode("DeAdBeEf"), [0xde, 0xad, 0xbe, 0xef])
        XCTAssertEqual(try Hex.decode("0xAbCd"), [0xab, 0xcd])
    }

    func testOddLength() {
        XCTAssertEqual(decodeError("a"), .oddLength)
        XCTAssertEqual(decodeError("abc"), .oddLength)
        XCTAssertEqual(decodeError("0xabc"), .oddLength)
        XCTAssertEqual(decodeError("0x0"), .oddLength)
    }

    func testInvalidCharacterOffsets() {
        XCTAssertEqual(decodeError("zz"), .invalidCharacter(offset: 0))
        XCTAssertEqual(decodeError("0g"), .invalidCharacter(offset: 1))
        XCTAssertEqual(decodeError("abcdeg"), .invalidCharacter(offset: 5))
        // Offsets count the prefix, so they point into the text the user typed.
        XCTAssertEqual(decodeError("0xabG0"), .invalidCharacter(offset: 4))
        XCTAssertEqual(decodeError("0x0x"), .invalidCharacter(offset: 3))
        // "0x" only counts as a prefix at the very start.
        XCTAssertEqual(decodeError("000x"), .invalidCharacter(offset: 3))
        // Offsets are UTF-8 byte offsets.
        XCTAssertEqual(decodeError("\u{e9}00"), .invalidCharacter(offset: 0))
        XCTAssertEqual(decodeError("00\u{e9}00"), .invalidCharacter(offset: 2))
        XCTAssertEqual(decodeError("0x\u{0}0\u{0}0"), .invalidCharacter(offset: 2))
    }

    func testTooLongRefusedBeforeDecoding() {
        XCTAssertEqual(decodeError("0011", maxBytes: 1), .tooLong)
        XCTAssertEqual(try Hex.decode("0x0011", maxBytes: 2), [0x00, 0x11])
        XCTAssertEqual(decodeError("0x001122", maxBytes: 2), .tooLong)
        // Content is not looked at once the length is over the cap.
        XCTAssertEqual(decodeError(String(repeating: "z", count: 100), maxBytes: 10), .tooLong)
        XCTAssertEqual(decodeError(String(repeating: "0", count: 2 * 1_048_576 + 2)), .tooLong)
    }
}
