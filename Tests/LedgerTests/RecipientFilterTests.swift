import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import XCTest

@testable import Ledger

/// The committed recipient filter: every recipient matches, strangers almost never do, streaming in any chunk
/// size gives the same answer and hash as the whole, and malformed or uncommitted bytes are refused.
final class RecipientFilterTests: XCTestCase {
    let key = RecipientFilter.key(genesis: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4), epoch: 7)

    func addresses(_ count: Int, seed: UInt64) -> [Address] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Address(raw: Bytes20(rng.bytes(20))!) }
    }

    func testEveryRecipientMatchesAndStrangersRarely() throws {
        let paid = addresses(1_000, seed: 1)
        let filter = RecipientFilter.build(paid + paid.prefix(10), key: key)  // duplicates counted once
        XCTAssertEqual(Array(filter.prefix(4)), [0, 0, 0x03, 0xE8], "1,000 distinct items")
        // About N·(P + 1.5) bits: far smaller than the 20 KB of raw addresses.
        XCTAssertLessThan(filter.count, 1_000 * 21 / 8 + 16)
        var matcher = RecipientFilterMatcher(watching: paid, key: key)
        try matcher.feed(filter)
        XCTAssertEqual(try matcher.finish().matched, [Bool](repeating: true, count: paid.count))
        let strangers = addresses(20_000, seed: 2)
        var strangerMatcher = RecipientFilterMatcher(watching: strangers, key: key)
        try strangerMatcher.feed(filter)
        let falsePositives = try strangerMatcher.finish().matched.filter { $0 }.count
        XCTAssertLessThan(falsePositives, 5, "expected about 20,000 / 784,931")
        // Another epoch's key maps the same addresses elsewhere: the filter does not match them as a whole.
        let other = RecipientFilter.key(genesis: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4), epoch: 8)
        var wrongKey = RecipientFilterMatcher(watching: Array(paid.prefix(200)), key: other)
        try wrongKey.feed(filter)
        XCTAssertLessThan(try wrongKey.finish().matched.filter { $0 }.count, 5)
    }

    func testStreamingInAnyChunkSizeEqualsWhole() throws {
        let paid = addresses(300, seed: 3)
        let filter = RecipientFilter.build(paid, key: key)
        let watched = Array(paid.prefix(5)) + addresses(5, seed: 4)
        var whole = RecipientFilterMatcher(watching: watched, key: key)
        try whole.feed(filter)
        let expected = try whole.finish()
        XCTAssertEqual(expected.matched, [true, true, true, true, true, false, false, false, false, false])
        XCTAssertEqual(expected.hash, RecipientFilter.hash(filter))
        var rng = SplitMix64(seed: 5)
        for _ in 0..<20 {
            var matcher = RecipientFilterMatcher(watching: watched, key: key)
            var offset = 0
            while offset < filter.count {
                let size = 1 + rng.below(64)
                try matcher.feed(Array(filter[offset..<min(offset + size, filter.count)]))
                offset += size
            }
            XCTAssertEqual(try matcher.finish(committed: RecipientFilter.hash(filter)), expected.matched)
        }
    }

    func testEmptyFilter() throws {
        let filter = RecipientFilter.build([], key: key)
        XCTAssertEqual(filter, [0, 0, 0, 0])
        XCTAssertFalse(try RecipientFilter.contains(addresses(1, seed: 6)[0], filter: filter, key: key))
    }

    func testMalformedAndUncommittedBytesAreRefused() throws {
        let paid = addresses(50, seed: 7)
        let filter = RecipientFilter.build(paid, key: key)
        func refusal(_ bytes: [UInt8], committed: Bytes32? = nil) -> RecipientFilterError? {
            var matcher = RecipientFilterMatcher(watching: [paid[0]], key: key)
            do {
                try matcher.feed(bytes)
                if let committed { _ = try matcher.finish(committed: committed) } else { _ = try matcher.finish() }
                return nil
            } catch { return error }
        }
        XCTAssertNil(refusal(filter, committed: RecipientFilter.hash(filter)))
        XCTAssertEqual(refusal(Array(filter.prefix(3))), .truncated)
        XCTAssertEqual(refusal(Array(filter.dropLast())), .truncated)
        XCTAssertEqual(refusal(filter + [0]), .trailingBits)
        XCTAssertEqual(refusal([0xFF, 0, 0, 0]), .tooManyItems(0xFF00_0000))
        // A run of ones longer than any delta can be.
        XCTAssertEqual(refusal([0, 0, 0, 1] + [UInt8](repeating: 0xFF, count: 8)), .outOfRange)
        // Set a padding bit, if the last byte has any; otherwise flip a bit in the middle.
        var tampered = filter
        tampered[tampered.count / 2] ^= 0x10
        XCTAssertNotNil(refusal(tampered, committed: RecipientFilter.hash(filter)))
        // A filter with a recipient left out decodes, but not to the committed hash.
        let withoutOne = RecipientFilter.build(Array(paid.dropFirst()), key: key)
        XCTAssertEqual(refusal(withoutOne, committed: RecipientFilter.hash(filter)), .notCommitted)
    }

    func testRandomBytesNeverCrash() {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<2_000 {
            var bytes = [0, 0, 0, UInt8(rng.below(40))]
            bytes += rng.bytes(rng.below(80))
            var matcher = RecipientFilterMatcher(watching: addresses(3, seed: rng.next()), key: key)
            _ = try? matcher.feed(bytes)
            _ = try? matcher.finish()
        }
    }
}
