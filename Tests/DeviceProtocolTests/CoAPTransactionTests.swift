import XCTest

@testable import DeviceProtocol

/// One Confirmable message and its answer (RFC 7252 §4.2, §4.8, §5.2.2), byte by byte: every datagram the
/// machine asks to send is compared with bytes written out by hand from the RFC's header layout.
final class CoAPTransactionTests: XCTestCase {
    /// `CON GET /v1/head`, MID 0x1234, token 01 02 03 04.
    static let request = hex("44 01 12 34 01 02 03 04 B2 76 31 04 68 65 61 64")

    func transaction(timeout: UInt32 = 1000, maxRetransmit: Int = 4, separate: UInt32 = 5000) -> CoAPTransaction {
        var get = CoAPMessage(type: .nonConfirmable, code: .get, messageID: 9, token: [0xEE])
        get.setUriPath("v1/head")
        return CoAPTransaction(
            request: get, messageID: 0x1234, token: [1, 2, 3, 4], initialTimeoutMillis: timeout,
            maxRetransmit: maxRetransmit, separateResponseMillis: separate)
    }

    func testPiggybackedResponse() throws {
        var t = transaction()
        let first = t.start(now: 500)
        XCTAssertEqual(first.request, Self.request, "sent as CON with the caller's Message ID and token")
        XCTAssertNil(first.reply)
        XCTAssertEqual(first.status.deadline, 1500)
        let done = t.received(hex("64 45 12 34 01 02 03 04 FF 6F 6B"), now: 700)
        XCTAssertNil(done.request)
        XCTAssertNil(done.reply)
        let answer = try XCTUnwrap(done.status.outcome)
        XCTAssertEqual(answer.code, .content)
        XCTAssertEqual(answer.payload, Array("ok".utf8))
        XCTAssertEqual(t.retransmissions, 0)
        XCTAssertEqual(t.strays, 0)
        // A duplicate of the answer after the end is a stray and changes nothing.
        XCTAssertNil(t.received(hex("64 45 12 34 01 02 03 04 FF 6F 6B"), now: 710).reply)
        XCTAssertEqual(t.strays, 1)
        XCTAssertEqual(t.status.outcome?.payload, Array("ok".utf8))
    }

    /// 1 s, 2 s, 4 s, then give up: the same bytes each time, nothing sent before a deadline.
    func testRetransmissionScheduleThenTimeout() {
        var t = transaction(timeout: 1000, maxRetransmit: 2)
        XCTAssertEqual(t.start(now: 0).status.deadline, 1000)
        let early = t.timeout(now: 999)
        XCTAssertNil(early.request)
        XCTAssertEqual(early.status.deadline, 1000)
        let second = t.timeout(now: 1000)
        XCTAssertEqual(second.request, Self.request)
        XCTAssertEqual(second.status.deadline, 3000)
        let third = t.timeout(now: 3005)
        XCTAssertEqual(third.request, Self.request)
        XCTAssertEqual(third.status.deadline, 7005)
        let last = t.timeout(now: 7005)
        XCTAssertNil(last.request)
        XCTAssertEqual(last.status.error, .timeout)
        XCTAssertEqual(t.retransmissions, 2)
        // Finished: further timeouts send nothing.
        XCTAssertNil(t.timeout(now: 20_000).request)
    }

    func testLostAnswerIsRecoveredByRetransmission() {
        var t = transaction()
        _ = t.start(now: 0)
        XCTAssertEqual(t.timeout(now: 1000).request, Self.request)
        let done = t.received(hex("64 45 12 34 01 02 03 04"), now: 1200)
        XCTAssertEqual(done.status.outcome?.code, .content)
        XCTAssertEqual(t.retransmissions, 1)
    }

    /// An empty ACK ends the retransmissions; the CON response that follows is acknowledged with its own ID.
    func testEmptyAckThenSeparateConfirmableResponse() {
        var t = transaction(separate: 5000)
        _ = t.start(now: 0)
        let acked = t.received(hex("60 00 12 34"), now: 100)
        XCTAssertNil(acked.reply)
        XCTAssertEqual(acked.status.deadline, 5100)
        XCTAssertTrue(t.acknowledged)
        // A second empty ACK (the server's duplicate) does not move the deadline.
        XCTAssertEqual(t.received(hex("60 00 12 34"), now: 900).status.deadline, 5100)
        XCTAssertNil(t.timeout(now: 3000).request, "no retransmission after the ACK")
        let done = t.received(hex("44 45 AB CD 01 02 03 04 FF 6F 6B"), now: 4000)
        XCTAssertEqual(done.reply, hex("60 00 AB CD"))
        XCTAssertEqual(done.status.outcome?.messageID, 0xABCD)
        XCTAssertEqual(done.status.outcome?.payload, Array("ok".utf8))
        XCTAssertEqual(t.strays, 0)
    }

    /// The separate response may overtake its empty ACK, and may be Non-confirmable (nothing to acknowledge).
    func testNonConfirmableSeparateResponseBeforeTheEmptyAck() {
        var t = transaction()
        _ = t.start(now: 0)
        let done = t.received(hex("54 44 00 01 01 02 03 04"), now: 10)
        XCTAssertNil(done.reply)
        XCTAssertEqual(done.status.outcome?.code, .changed)
    }

    func testEmptyAckThenNothingIsNoSeparateResponse() {
        var t = transaction(timeout: 1000, maxRetransmit: 4, separate: 2500)
        _ = t.start(now: 0)
        _ = t.received(hex("60 00 12 34"), now: 200)
        XCTAssertNil(t.timeout(now: 1000).request)
        XCTAssertEqual(t.timeout(now: 2699).status.deadline, 2700)
        XCTAssertEqual(t.timeout(now: 2700).status.error, .noSeparateResponse)
        XCTAssertEqual(t.retransmissions, 0)
    }

    func testResetEndsTheTransaction() {
        var t = transaction()
        _ = t.start(now: 0)
        XCTAssertNil(t.received(hex("70 00 77 77"), now: 1).reply, "another message's RST is a stray")
        XCTAssertEqual(t.strays, 1)
        XCTAssertEqual(t.received(hex("70 00 12 34"), now: 2).status.error, .reset)
    }

    /// Strays are counted; Confirmable ones, even undecodable, are Reset (§4.2), others dropped silently.
    func testStraysAreCountedAndConfirmableOnesReset() {
        var t = transaction()
        _ = t.start(now: 0)
        let otherToken = t.received(hex("44 45 55 55 09 09 09 09 FF 78"), now: 1)
        XCTAssertEqual(otherToken.reply, hex("70 00 55 55"))
        XCTAssertEqual(otherToken.status.deadline, 1000, "a stray leaves the deadline alone")
        XCTAssertNil(t.received(hex("54 45 55 56 09 09 09 09"), now: 2).reply, "NON with another token")
        XCTAssertNil(t.received(hex("60 00 99 99"), now: 3).reply, "ACK of another message")
        XCTAssertEqual(t.received(hex("40 01 00 07 FF"), now: 4).reply, hex("70 00 00 07"), "undecodable CON")
        XCTAssertNil(t.received(hex("40 01"), now: 5).reply, "no header to reset")
        XCTAssertEqual(t.received(hex("44 01 00 08 01 02 03 04"), now: 6).reply, hex("70 00 00 08"), "a request")
        XCTAssertEqual(t.strays, 6)
        XCTAssertEqual(t.received(hex("64 45 12 34 01 02 03 04"), now: 7).status.outcome?.code, .content)
    }

    func testAckWithOurMessageIDButAnotherTokenIsAViolation() {
        var t = transaction()
        _ = t.start(now: 0)
        XCTAssertEqual(
            t.received(hex("64 45 12 34 01 02 03 05"), now: 1).status.error, .protocolViolation(.foreignResponse))
    }

    /// The deadline arithmetic survives a board's 32-bit millisecond counter wrapping.
    func testDeadlinesAcrossTheClockWrap() {
        var t = transaction(timeout: 1000)
        let start = UInt32.max - 99
        XCTAssertEqual(t.start(now: start).status.deadline, 900)
        XCTAssertNil(t.timeout(now: UInt32.max).request)
        XCTAssertNil(t.timeout(now: 899).request)
        XCTAssertEqual(t.timeout(now: 900).status.deadline, 2900)
        XCTAssertEqual(CoAPClock.remaining(until: 900, now: UInt32.max), 901)
        XCTAssertEqual(CoAPClock.remaining(until: 900, now: 901), 0)
    }

    func testInitialTimeoutIsUniformBetweenAckTimeoutAndItsRandomFactor() {
        func t(_ ack: UInt32, _ percent: UInt32, _ random: UInt32) -> UInt32 {
            CoAPTransaction.initialTimeout(ackTimeoutMillis: ack, randomFactorPercent: percent, random: random)
        }
        XCTAssertEqual(t(2000, 150, 0), 2000)
        XCTAssertEqual(t(2000, 150, 1 << 31), 2500)
        XCTAssertEqual(t(2000, 150, .max), 2999)
        XCTAssertEqual(t(2000, 100, .max), 2000)
        XCTAssertEqual(t(2000, 50, .max), 2000, "a factor under 1 is 1")
        XCTAssertEqual(t(.max, 300, .max), CoAPClock.maxInterval)
    }
}
