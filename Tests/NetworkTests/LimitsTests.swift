import AmarsCodec
import NIOCore
import XCTest

@testable import Network

/// The small sans-I/O pieces: token buckets, scores, the outbound queue, the gossip filter, backoff, kind table.
final class LimitsTests: XCTestCase {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testTokenBucketAllowsBurstThenRate() {
        var bucket = TokenBucket(capacity: 10, perSecond: 100, now: t0)
        for _ in 0..<10 { XCTAssertTrue(bucket.take(1, now: t0)) }
        XCTAssertFalse(bucket.take(1, now: t0))
        // 100/s: 50 ms refill 5 tokens.
        let later = t0 + .milliseconds(50)
        for _ in 0..<5 { XCTAssertTrue(bucket.take(1, now: later)) }
        XCTAssertFalse(bucket.take(1, now: later))
        // Never above capacity however long it rests; time going backwards adds nothing.
        XCTAssertTrue(bucket.take(10, now: later + .seconds(100)))
        XCTAssertFalse(bucket.take(1, now: t0))
    }

    func testScoreDecays() {
        var score = PeerScore(decayPerSecond: 10, now: t0)
        XCTAssertEqual(score.add(50, now: t0), 50)
        XCTAssertEqual(score.add(0, now: t0 + .seconds(2)), 30, accuracy: 1e-6)
        XCTAssertEqual(score.add(5, now: t0 + .seconds(100)), 5, accuracy: 1e-6)
    }

    func testOutboundQueueDropsOldestGossipAndStaysBounded() {
        var queue = OutboundQueue(maxFrames: 3, maxBytes: 1 << 20)
        let g1 = Frame(kind: 0x10, payload: [1])
        let g2 = Frame(kind: 0x10, payload: [2])
        let d1 = Frame(kind: 0x21, payload: [3])
        let g3 = Frame(kind: 0x10, payload: [4])
        XCTAssertEqual(queue.enqueue(g1, isGossip: true), 0)
        XCTAssertEqual(queue.enqueue(d1, isGossip: false), 0)
        XCTAssertEqual(queue.enqueue(g2, isGossip: true), 0)
        XCTAssertEqual(queue.enqueue(g3, isGossip: true), 1)  // g1 goes
        XCTAssertEqual(queue.count, 3)
        XCTAssertEqual(queue.dequeue(), d1)
        XCTAssertEqual(queue.dequeue(), g2)
        XCTAssertEqual(queue.dequeue(), g3)
        XCTAssertNil(queue.dequeue())
        XCTAssertEqual(queue.bytes, 0)

        // Only direct frames queued: the newcomer is the one dropped.
        var direct = OutboundQueue(maxFrames: 2, maxBytes: 1 << 20)
        XCTAssertEqual(direct.enqueue(d1, isGossip: false), 0)
        XCTAssertEqual(direct.enqueue(d1, isGossip: false), 0)
        XCTAssertEqual(direct.enqueue(g1, isGossip: true), 1)
        XCTAssertEqual(direct.count, 2)

        // The byte bound applies as well.
        var bytes = OutboundQueue(maxFrames: 100, maxBytes: 30)
        let big = Frame(kind: 0x10, payload: Array(repeating: 0, count: 10))  // 15 bytes on the wire
        XCTAssertEqual(bytes.enqueue(big, isGossip: true), 0)
        XCTAssertEqual(bytes.enqueue(big, isGossip: true), 0)
        XCTAssertEqual(bytes.enqueue(big, isGossip: true), 1)
        XCTAssertLessThanOrEqual(bytes.bytes, 30)
        for _ in 0..<1_000 { _ = bytes.enqueue(big, isGossip: true) }
        XCTAssertEqual(bytes.count, 2)
    }

    func testGossipFilterIsBoundedAndLeastRecentlyUsedGoesFirst() {
        var filter = GossipFilter(capacity: 3)
        let h = (0..<5).map { Bytes32(w0: UInt64($0), w1: 0, w2: 0, w3: 0) }
        XCTAssertTrue(filter.insert(h[0]))
        XCTAssertTrue(filter.insert(h[1]))
        XCTAssertTrue(filter.insert(h[2]))
        XCTAssertFalse(filter.insert(h[0]))  // seen; refreshed
        XCTAssertTrue(filter.insert(h[3]))  // evicts h[1], the least recently used
        XCTAssertTrue(filter.contains(h[0]))
        XCTAssertFalse(filter.contains(h[1]))
        XCTAssertTrue(filter.contains(h[2]))
        XCTAssertEqual(filter.count, 3)
        for i in 0..<10_000 { _ = filter.insert(Bytes32(w0: 99, w1: UInt64(i % 7), w2: 0, w3: 0)) }
        XCTAssertEqual(filter.count, 3)
        XCTAssertEqual(
            GossipFilter.hash(Frame(kind: 1, payload: [2])), GossipFilter.hash(Frame(kind: 1, payload: [2])))
        XCTAssertNotEqual(
            GossipFilter.hash(Frame(kind: 1, payload: [2])), GossipFilter.hash(Frame(kind: 2, payload: [2])))
    }

    func testBackoffGrowsCapsAndJitters() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2)
        XCTAssertEqual(backoff.delay(attempt: 0, jitter: 1), .milliseconds(100))
        XCTAssertEqual(backoff.delay(attempt: 0, jitter: 0), .milliseconds(50))
        XCTAssertEqual(backoff.delay(attempt: 3, jitter: 1), .milliseconds(800))
        XCTAssertEqual(backoff.delay(attempt: 10, jitter: 1), .seconds(2))
        XCTAssertEqual(backoff.delay(attempt: 10_000, jitter: 0.5), .milliseconds(1_500))
    }

    func testKindRegistration() {
        var kinds = FrameKinds(maxFrameSize: 1_000)
        XCTAssertThrowsError(try kinds.register(kind: 0x01, delivery: .gossip))
        XCTAssertNoThrow(try kinds.register(kind: 0x10, maxPayload: 100, delivery: .gossip))
        XCTAssertThrowsError(try kinds.register(kind: 0x10, delivery: .direct))
        XCTAssertThrowsError(try kinds.register(kind: 0x11, maxPayload: 1_000, delivery: .direct))
        XCTAssertNoThrow(try kinds.register(kind: 0x11, delivery: .direct))
        XCTAssertEqual(kinds.maxPayload(of: 0x11), 999)
        XCTAssertNil(kinds.maxPayload(of: ControlKind.hello))
        XCTAssertNoThrow(try kinds.validateOutgoing(Frame(kind: 0x10, payload: Array(repeating: 0, count: 100))))
        XCTAssertThrowsError(try kinds.validateOutgoing(Frame(kind: 0x10, payload: Array(repeating: 0, count: 101))))
        XCTAssertThrowsError(try kinds.validateOutgoing(Frame(kind: 0x12, payload: [])))
        XCTAssertThrowsError(try kinds.validateOutgoing(Frame(kind: ControlKind.auth, payload: [])))
    }
}
