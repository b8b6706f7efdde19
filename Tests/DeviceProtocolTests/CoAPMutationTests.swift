import AmarsTestSupport
import XCTest

@testable import DeviceProtocol

/// Feeds damaged copies of valid messages to the decoder.
///
/// The property: decode either throws or returns a message that encodes back to exactly the input. That holds
/// because the wire format has one encoding per message as this codec models it (delta/length forms are unique
/// and options can only ascend), and the decoder keeps token, option values and payload verbatim. What it does
/// not give is one encoding per *meaning*: integer options may carry leading zero bytes (see
/// ``testNonMinimalIntegerOptionsCompareSemantically``), so such messages are compared by value, not by bytes.
final class CoAPMutationTests: XCTestCase {
    func testMutatedMessagesFailOrReencodeIdentically() {
        var rng = SplitMix64(seed: 0x4D75_7461_7465)
        var accepted = 0
        var rejected = 0
        for _ in 0..<20_000 {
            var input = randomMessage(&rng).encode()
            for _ in 0..<(1 + rng.below(4)) { mutate(&input, &rng) }
            switch decodeResult(input) {
            case .success(let message):
                accepted += 1
                XCTAssertEqual(message.encode(), input)
                XCTAssertLessThanOrEqual(message.options.count, CoAPMessage.maxOptions)
                XCTAssertLessThanOrEqual(message.token.count, CoAPMessage.maxTokenLength)
            case .failure(let error):
                rejected += 1
                // Every refusal maps to something a server can send.
                XCTAssertTrue(error.responseCode.codeClass == 4)
            }
        }
        // Both outcomes must actually be exercised, or the test proves nothing.
        XCTAssertGreaterThan(accepted, 1_000)
        XCTAssertGreaterThan(rejected, 1_000)
    }

    /// Random byte strings (not derived from messages) must never trap either.
    func testRandomBytesNeverTrap() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<20_000 {
            var input = rng.bytes(rng.below(64))
            if !input.isEmpty { input[0] = 0x40 | (input[0] & 0x3F) }  // mostly version 1
            if case .success(let message) = decodeResult(input) {
                XCTAssertEqual(message.encode(), input)
            }
        }
    }

    func testNonMinimalIntegerOptionsCompareSemantically() throws {
        // Content-Format 42 as 00 2A (non-minimal) and as 2A; Max-Age 0 as 00 and as empty.
        let padded = try CoAPMessage.decode(hex("40 01 00 01 C2 00 2A 21 00"))
        let minimal = try CoAPMessage.decode(hex("40 01 00 01 C1 2A 20"))
        XCTAssertEqual(padded.encode(), hex("40 01 00 01 C2 00 2A 21 00"))  // bytes kept as received
        XCTAssertNotEqual(padded, minimal)
        XCTAssertEqual(padded.contentFormat, minimal.contentFormat)
        XCTAssertEqual(padded.uintOption(.maxAge), minimal.uintOption(.maxAge))
        XCTAssertFalse(padded.options.allSatisfy { $0.isMinimalUInt })
        XCTAssertTrue(minimal.options.allSatisfy { $0.isMinimalUInt })
    }

    private func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        switch rng.below(7) {
        case 0 where !bytes.isEmpty:  // flip one bit
            let i = rng.below(bytes.count)
            bytes[i] ^= 1 << UInt8(rng.below(8))
        case 1 where !bytes.isEmpty:  // replace a byte
            bytes[rng.below(bytes.count)] = rng.byte()
        case 2:  // insert a byte (often a marker or a nibble-15 header)
            let special: [UInt8] = [0xFF, 0x0F, 0xF0, 0xD0, 0xE0, rng.byte()]
            bytes.insert(special[rng.below(special.count)], at: rng.below(bytes.count + 1))
        case 3 where !bytes.isEmpty:  // delete a byte
            bytes.remove(at: rng.below(bytes.count))
        case 4:  // truncate
            bytes.removeLast(rng.below(bytes.count + 1))
        case 5 where bytes.count > 1:  // duplicate a range
            let start = rng.below(bytes.count)
            let end = start + rng.below(bytes.count - start)
            bytes.insert(contentsOf: bytes[start..<end], at: rng.below(bytes.count + 1))
        default:  // append garbage
            bytes.append(contentsOf: rng.bytes(1 + rng.below(4)))
        }
    }
}
