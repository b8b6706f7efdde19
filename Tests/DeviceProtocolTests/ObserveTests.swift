import XCTest

@testable import DeviceProtocol

final class ObserveTests: XCTestCase {
    func testOptionValues() throws {
        var message = CoAPMessage(type: .confirmable, code: .get, messageID: 1)
        message.observe = Observe.register
        XCTAssertEqual(message.option(.observe)?.value, [])
        message.observe = Observe.deregister
        XCTAssertEqual(message.option(.observe)?.value, [1])
        message.observe = 0xFF_FFFF
        XCTAssertEqual(message.option(.observe)?.value, [0xFF, 0xFF, 0xFF])
        message.observe = 0x0100_0005  // only 24 bits travel
        XCTAssertEqual(message.observe, 5)
        let decoded = try CoAPMessage.decode(message.encode())
        XCTAssertEqual(decoded.observe, 5)
        XCTAssertEqual(Observe.next(0xFF_FFFF), 0)
        XCTAssertEqual(Observe.next(41), 42)
    }

    func testFreshnessOrdering() {
        let half = Observe.halfRange
        // Plain increase and decrease.
        XCTAssertTrue(Observe.isNewer(2, than: 1, secondsSincePrevious: 0))
        XCTAssertFalse(Observe.isNewer(1, than: 2, secondsSincePrevious: 0))
        XCTAssertFalse(Observe.isNewer(7, than: 7, secondsSincePrevious: 0))
        // Across the wrap at 2^24.
        XCTAssertTrue(Observe.isNewer(0, than: 0xFF_FFFF, secondsSincePrevious: 0))
        XCTAssertTrue(Observe.isNewer(5, than: 0xFF_FFF0, secondsSincePrevious: 0))
        XCTAssertFalse(Observe.isNewer(0xFF_FFFF, than: 0, secondsSincePrevious: 0))
        // The half-range edge: less than 2^23 ahead is newer, exactly 2^23 is not (in either direction).
        XCTAssertTrue(Observe.isNewer(half - 1, than: 0, secondsSincePrevious: 0))
        XCTAssertFalse(Observe.isNewer(half, than: 0, secondsSincePrevious: 0))
        XCTAssertFalse(Observe.isNewer(0, than: half, secondsSincePrevious: 0))
        XCTAssertTrue(Observe.isNewer(0, than: half + 1, secondsSincePrevious: 0))
        XCTAssertFalse(Observe.isNewer(half + 1, than: 0, secondsSincePrevious: 0))
        // After more than 128 s anything counts as newer.
        XCTAssertFalse(Observe.isNewer(1, than: 2, secondsSincePrevious: 128))
        XCTAssertTrue(Observe.isNewer(1, than: 2, secondsSincePrevious: 129))
    }

    func testFreshnessTracker() {
        var tracker = ObserveFreshness()
        XCTAssertTrue(tracker.accept(sequence: 0xFF_FFFE, now: 10))
        XCTAssertTrue(tracker.accept(sequence: 0xFF_FFFF, now: 11))
        XCTAssertTrue(tracker.accept(sequence: 0, now: 12))  // wrapped
        XCTAssertFalse(tracker.accept(sequence: 0xFF_FFFF, now: 13))  // reordered, older
        XCTAssertEqual(tracker.lastSequence, 0)
        XCTAssertEqual(tracker.lastTime, 12)
        XCTAssertTrue(tracker.accept(sequence: 0xFF_FFFF, now: 12 + 129))  // server restarted long ago
        XCTAssertEqual(tracker.lastSequence, 0xFF_FFFF)
    }
}
