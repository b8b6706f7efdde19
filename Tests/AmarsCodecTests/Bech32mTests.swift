import AmarsTestSupport
import XCTest

@testable import AmarsCodec

/// Vectors come from BIP350 and BIP173; see SOURCES.md in this directory.
final class Bech32mTests: XCTestCase {
    // MARK: - Helpers

    private func decodeError(_ text: String, maxLength: Int = 90) -> Bech32Error? {
        do {
            _ = try Bech32m.decode(text, maxLength: maxLength)
            return nil
        } catch {
            return error
        }
    }

    private func decodeBytesError(_ text: String, expectedHRP: String) -> Bech32Error? {
        do {
            _ = try Bech32m.decodeBytes(text, expectedHRP: expectedHRP)
            return nil
        } catch {
            return error
        }
    }

    private func convertError(_ groups: ArraySlice<UInt8>) -> Bech32Error? {
        do {
            _ = try Bech32m.bytes(fromFiveBitGroups: groups)
            return nil
        } catch {
            return error
        }
    }

    private static let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l")

    // MARK: - BIP350 checksum vectors

    static let validBech32m = [
        "A1LQFN3A",
        "a1lqfn3a",
        "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
        "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
        "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
        "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
        "?1v759aa",
    ]

    func testValidBech32mVectorsDecodeAndReencodeLowercase() throws {
        for text in Self.validBech32m {
            let decoded = try Bech32m.decode(text)
            XCTAssertEqual(decoded.hrp, decoded.hrp.lowercased(), text)
            XCTAssertEqual(Bech32m.encode(hrp: decoded.hrp, fiveBitData: decoded.fiveBitData), text.lowercased(), text)
        }
    }

    func testValidVectorContents() throws {
        let empty = try Bech32m.decode("A1LQFN3A")
        XCTAssertEqual(empty.hrp, "a")
        XCTAssertEqual(empty.fiveBitData, [])
        // "abcdef1" followed by the alphabet in reverse value order: 31, 30, ..., 0.
        let reversed = try Bech32m.decode("abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx")
        XCTAssertEqual(reversed.hrp, "abcdef")
        XCTAssertEqual(reversed.fiveBitData, (0..<32).reversed().map { UInt8($0) })
        let ones = try Bech32m.decode(
            "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8")
        XCTAssertEqual(ones.hrp, "1")
        XCTAssertEqual(ones.fiveBitData, [UInt8](repeating: 31, count: 82))
        let question = try Bech32m.decode("?1v759aa")
        XCTAssertEqual(question.hrp, "?")
        XCTAssertEqual(question.fiveBitData, [])
    }

    func testInvalidBech32mVectorsWithReasons() {
        let cases: [(String, Bech32Error)] = [
            ("\u{20}1xj0phk", .invalidCharacter(offset: 0)),  // HRP character out of range
            ("\u{7F}1g6xzxy", .invalidCharacter(offset: 0)),  // HRP character out of range
            ("\u{80}1vctc34", .invalidCharacter(offset: 0)),  // HRP character out of range
            (
                "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
                .tooLong
            ),  // overall max length exceeded
            ("qyrz8wqd2c9m", .noSeparator),
            ("1qyrz8wqd2c9m", .emptyHumanReadablePart),
            ("y1b0jsk6g", .invalidCharacter(offset: 2)),  // invalid data character 'b'
            ("lt1igcx5c0", .invalidCharacter(offset: 3)),  // invalid data character 'i'
            ("in1muywd", .invalidChecksum),  // too short checksum
            ("mm1crxm3i", .invalidCharacter(offset: 8)),  // invalid character in checksum
            ("au1s5cgom", .invalidCharacter(offset: 7)),  // invalid character in checksum
            ("M1VUXWEZ", .invalidChecksum),  // checksum calculated with uppercase form of HRP
            ("16plkw9", .emptyHumanReadablePart),
            ("1p2gdwpf", .emptyHumanReadablePart),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(decodeError(text), expected, text)
        }
    }

    /// BIP350: no string is valid as both, so every valid Bech32 (BIP173) string must fail here.
    func testValidBech32StringsAreInvalidBech32m() {
        let bech32 = [
            "A12UEL5L",
            "a12uel5l",
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            "?1ezyfcl",
        ]
        for text in bech32 {
            XCTAssertEqual(decodeError(text), .invalidChecksum, text)
        }
    }

    // MARK: - BIP350 segwit address vectors (checksum and 8 <-> 5 conversion only)

    /// Valid v1+ addresses: Bech32m checksum, and the program after the witness version converts 5 -> 8 to the
    /// scriptPubKey's program, and back 8 -> 5 to the same string.
    func testSegwitBech32mAddressesConvert() throws {
        let vectors: [(String, String)] = [
            (
                "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
                "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"
            ),
            ("BC1SW50QGDZ25J", "6002751e"),
            ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
            (
                "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
                "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"
            ),
            (
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            ),
        ]
        for (address, scriptHex) in vectors {
            let script = try Hex.decode(scriptHex)
            let decoded = try Bech32m.decode(address)
            let version = decoded.fiveBitData[0]
            XCTAssertEqual(script[0], 0x50 + version, address)
            let program = try Bech32m.bytes(fromFiveBitGroups: decoded.fiveBitData.dropFirst())
            XCTAssertEqual(program, Array(script.dropFirst(2)), address)
            XCTAssertEqual(Int(script[1]), program.count, address)
            let groups = [version] + Bech32m.fiveBitGroups(from: program)
            let reencoded = Bech32m.encode(hrp: decoded.hrp, fiveBitData: groups)
            XCTAssertEqual(reencoded, address.lowercased())
        }
    }

    /// Valid v0 addresses use plain Bech32, so their checksum must fail here.
    func testSegwitV0Bech32AddressesFailChecksum() {
        for address in [
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
            "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        ] {
            XCTAssertEqual(decodeError(address), .invalidChecksum, address)
        }
    }

    func testInvalidSegwitAddressesAtTheChecksumLevel() {
        // Invalid human-readable part: a valid Bech32m string for "tc".
        XCTAssertEqual(
            decodeBytesError("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", expectedHRP: "bc"),
            .wrongHumanReadablePart)
        // Bech32 instead of Bech32m.
        for address in [
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
            "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
            "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
            "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
        ] {
            XCTAssertEqual(decodeError(address), .invalidChecksum, address)
        }
        // Invalid character in checksum ('o').
        XCTAssertEqual(
            decodeError("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4"),
            .invalidCharacter(offset: 59))
        XCTAssertEqual(
            decodeError("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq"), .mixedCase)
        // Bech32m checksums that are fine at this level (the segwit rules they break are not ours).
        for address in [
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",  // Bech32m for v0
            "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",  // Bech32m for v0
            "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  // witness version 17
            "bc1pw5dgrnzv",  // 1-byte program
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",  // 41-byte program
        ] {
            XCTAssertNil(decodeError(address), address)
        }
    }

    func testSegwitPaddingRules() throws {
        // Zero padding of more than 4 bits.
        let overlong = try Bech32m.decode("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf")
        XCTAssertEqual(convertError(overlong.fiveBitData.dropFirst()), .invalidPadding)
        // Non-zero padding in 8-to-5 conversion.
        let nonZero = try Bech32m.decode("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j")
        XCTAssertEqual(convertError(nonZero.fiveBitData.dropFirst()), .invalidPadding)
        // Empty data section: BIP350's vector carries a Bech32 checksum, so it fails here already; a valid
        // Bech32m checksum over nothing ("A1LQFN3A") decodes at the 5-bit level but is refused as bytes.
        XCTAssertEqual(decodeError("bc1gmk9yu"), .invalidChecksum)
        XCTAssertEqual(decodeBytesError("A1LQFN3A", expectedHRP: "a"), .emptyData)
        // The 1- and 41-byte programs above still convert cleanly.
        let short = try Bech32m.decode("bc1pw5dgrnzv")
        XCTAssertEqual(try Bech32m.bytes(fromFiveBitGroups: short.fiveBitData.dropFirst()).count, 1)
        let long = try Bech32m.decode(
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav")
        XCTAssertEqual(try Bech32m.bytes(fromFiveBitGroups: long.fiveBitData.dropFirst()).count, 41)
    }

    // MARK: - Conversion edge cases

    func testFiveBitConversionPaddingEdges() {
        XCTAssertEqual(Bech32m.fiveBitGroups(from: [UInt8]()), [])
        XCTAssertEqual(Bech32m.fiveBitGroups(from: [0xff]), [31, 28])
        XCTAssertEqual(try Bech32m.bytes(fromFiveBitGroups: [31, 28]), [0xff])
        XCTAssertEqual(convertError([31, 29][...]), .invalidPadding)  // a non-zero fill bit
        XCTAssertEqual(convertError([31, 28, 0][...]), .invalidPadding)  // 7 fill bits
        XCTAssertEqual(convertError([3][...]), .invalidPadding)  // 5 bits, no whole byte
        XCTAssertEqual(convertError([0, 32][...]), .invalidCharacter(offset: 1))
        for count in 0...40 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ count) }
            let groups = Bech32m.fiveBitGroups(from: bytes)
            XCTAssertEqual(groups.count, (count * 8 + 4) / 5)
            XCTAssertEqual(try Bech32m.bytes(fromFiveBitGroups: groups), bytes)
        }
    }

    // MARK: - Amarscity addresses

    func testRandomAddressRoundTrips() throws {
        var rng = SplitMix64(seed: 0x616d_7363_6974_7921)
        for _ in 0..<500 {
            let payload = rng.bytes(20)
            let text = Bech32m.encode(hrp: "amsc", bytes: payload)
            XCTAssertTrue(text.hasPrefix("amsc1"))
            XCTAssertEqual(text.utf8.count, 4 + 1 + 32 + 6)
            XCTAssertEqual(text, text.lowercased())
            XCTAssertEqual(try Bech32m.decodeBytes(text, expectedHRP: "amsc"), payload)
            XCTAssertEqual(try Bech32m.decodeBytes(text.uppercased(), expectedHRP: "amsc"), payload)
            XCTAssertEqual(try Bech32m.decodeBytes(text, expectedHRP: "AMSC"), payload)
            let address = try XCTUnwrap(Bytes20(payload))
            XCTAssertEqual(Bech32m.encode(hrp: Bech32m.addressHRP, bytes20: address), text)
            XCTAssertEqual(try Bech32m.decodeBytes20(text, expectedHRP: "amsc"), address)
        }
    }

    func testBytes32RoundTripAndWrongLengths() throws {
        var rng = SplitMix64(seed: 42)
        let key = try XCTUnwrap(Bytes32(rng.bytes(32)))
        let text = Bech32m.encode(hrp: "amsc", bytes32: key)
        XCTAssertEqual(try Bech32m.decodeBytes32(text, expectedHRP: "amsc"), key)
        do {
            _ = try Bech32m.decodeBytes20(text, expectedHRP: "amsc")
            XCTFail("32 bytes accepted as an address")
        } catch {
            XCTAssertEqual(error, .wrongDataLength(32))
        }
        let short = Bech32m.encode(hrp: "amsc", bytes: rng.bytes(19))
        do {
            _ = try Bech32m.decodeBytes20(short, expectedHRP: "amsc")
            XCTFail("19 bytes accepted as an address")
        } catch {
            XCTAssertEqual(error, .wrongDataLength(19))
        }
    }

    func testWrongHRPRejected() {
        var rng = SplitMix64(seed: 7)
        let payload = rng.bytes(20)
        let other = Bech32m.encode(hrp: "amst", bytes: payload)
        XCTAssertEqual(decodeBytesError(other, expectedHRP: "amsc"), .wrongHumanReadablePart)
        let longer = Bech32m.encode(hrp: "amscx", bytes: payload)
        XCTAssertEqual(decodeBytesError(longer, expectedHRP: "amsc"), .wrongHumanReadablePart)
        let shorter = Bech32m.encode(hrp: "ams", bytes: payload)
        XCTAssertEqual(decodeBytesError(shorter, expectedHRP: "amsc"), .wrongHumanReadablePart)
    }

    /// BCH guarantee: any single substituted character (in the data or in the human-readable part) fails.
    func testEverySingleSubstitutionRejected() {
        var rng = SplitMix64(seed: 0xdead_beef)
        for _ in 0..<8 {
            let text = Array(Bech32m.encode(hrp: "amsc", bytes: rng.bytes(20)))
            for position in 0..<text.count where position != 4 {
                let replacements: [Character] =
                    position < 4 ? Array("abcdefghijklmnopqrstuvwxyz") : Self.alphabet
                for replacement in replacements where replacement != text[position] {
                    var mutated = text
                    mutated[position] = replacement
                    XCTAssertEqual(decodeError(String(mutated)), .invalidChecksum, String(mutated))
                }
            }
        }
    }

    func testCaseRules() throws {
        let text = Bech32m.encode(hrp: "amsc", bytes: [UInt8](repeating: 0xa5, count: 20))
        XCTAssertEqual(try Bech32m.decode(text.uppercased()).hrp, "amsc")
        var mixed = Array(text)
        mixed[0] = "A"
        XCTAssertEqual(decodeError(String(mixed)), .mixedCase)
        var mixedData = Array(text)
        let last = mixedData.count - 1
        mixedData[last] = Character(mixedData[last].uppercased())
        if mixedData[last] != text.last {
            XCTAssertEqual(decodeError(String(mixedData)), .mixedCase)
        }
        // Encode lowercases an uppercase hrp.
        XCTAssertEqual(Bech32m.encode(hrp: "AMSC", bytes: [1, 2, 3]), Bech32m.encode(hrp: "amsc", bytes: [1, 2, 3]))
    }

    func testStructuralErrors() {
        XCTAssertEqual(decodeError(""), .noSeparator)
        XCTAssertEqual(decodeError("amsc1"), .emptyData)
        XCTAssertEqual(decodeError("amsc1qqqqq"), .invalidChecksum)
        XCTAssertEqual(decodeError("1"), .emptyHumanReadablePart)
        // Over the limit is refused whatever the content, before it is scanned.
        XCTAssertEqual(decodeError(String(repeating: "q", count: 91)), .tooLong)
        XCTAssertEqual(decodeError(String(repeating: "\u{0}", count: 1_000_000)), .tooLong)
        XCTAssertEqual(decodeError("a1lqfn3a", maxLength: 7), .tooLong)
        // An 84-character hrp is refused even when the caller raises the total limit.
        let hrp84 = String(repeating: "a", count: 84)
        XCTAssertEqual(decodeError(hrp84 + "1qqqqqq", maxLength: 200), .tooLong)
        // A raised limit admits long payloads.
        let long = Bech32m.encode(hrp: "amsc", bytes: [UInt8](repeating: 7, count: 100))
        XCTAssertEqual(decodeError(long), .tooLong)
        XCTAssertEqual(
            try Bech32m.decodeBytes(long, expectedHRP: "amsc", maxLength: 200), [UInt8](repeating: 7, count: 100))
        // The separator is the last '1', so '1' may appear in the hrp.
        let withOne = Bech32m.encode(hrp: "a1b", bytes: [9])
        XCTAssertEqual(try Bech32m.decodeBytes(withOne, expectedHRP: "a1b"), [9])
        // Non-ASCII data character.
        XCTAssertEqual(decodeError("amsc1qqqqqq\u{e9}"), .invalidCharacter(offset: 11))
    }
}
