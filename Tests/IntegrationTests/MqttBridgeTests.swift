import DeviceProtocol
import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Chain
import Foundation
import Ledger
import Logging
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The bridge's behaviour against a real broker (a spawned mosquitto) under bad input, floods, and the loss of the
/// gateway or the broker. Its parts that need no broker (topics, message codec, backoff, rate limiter, inbox) are
/// `MqttBridgePartsTests` in DeviceGatewayTests. `make mqtt-second-broker` runs them all against RabbitMQ
/// (`AMARS_TEST_BROKER=rabbitmq`, see ``BrokerKind``).
final class MqttBridgeTests: XCTestCase {
    var chain: MqttTestChain?

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    private func makeChain() throws -> MqttTestChain {
        let c = try MqttTestChain()
        chain = c
        return c
    }

    // MARK: bad input against a real broker

    func testBadTopicsAndPayloadsAreCountedAndLeaveTheChainAlone() throws {
        let c = try makeChain()
        let bridge = try c.startBridge()
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        let head = c.node.head
        let receiptsTopic = MqttTopics.receipts(alice)
        let sub = try c.subscribe([receiptsTopic])

        let good = c.transfer(from: c.alice, to: bob, amount: 1000, nonce: 0).encoded
        var badSignature = good
        badSignature[badSignature.count - 1] ^= 1
        let gap = c.transfer(from: c.alice, to: bob, amount: 1000, nonce: 5).encoded
        let submit = MqttTopics.submit(alice)
        // Topics the broker routes to us (they match amars/v1/tx/+) but that name no device.
        try c.publish(topic: "amars/v1/tx/", payload: good)
        try c.publish(topic: "amars/v1/tx/notanaddress", payload: good)
        try c.publish(topic: "amars/v1/tx/" + Bech32m.encode(hrp: "bc", bytes: alice.raw.bytes), payload: good)
        // Payloads that are not a transaction of this device.
        try c.publish(topic: submit, payload: nil)
        try c.publish(topic: submit, payload: [UInt8](repeating: 0xAB, count: Caps.transactionBytes + 1))
        try c.publish(topic: submit, payload: Array("hello, chain".utf8))
        try c.publish(topic: submit, payload: Array(good.dropLast(10)))
        try c.publish(topic: submit, payload: good + [0])
        try c.publish(topic: MqttTopics.submit(bob), payload: good)
        try c.publish(topic: submit, payload: badSignature)
        try c.publish(topic: submit, payload: gap)

        let expectedOnAlice = 7
        XCTAssertGreaterThanOrEqual(sub.waitForLines(1 + expectedOnAlice).count, 1 + expectedOnAlice, sub.text)
        try mqttWaitUntil("counters") { bridge.stats.dropped[.senderMismatch] == 1 }
        let s = bridge.stats
        XCTAssertEqual(s.dropped[.badTopic], 1)
        XCTAssertEqual(s.dropped[.badDevice], 2)
        XCTAssertEqual(s.dropped[.badSize], 2)
        XCTAssertEqual(s.dropped[.malformed], 3)
        XCTAssertEqual(s.refused, ["badSignature": 1, "nonceGap": 1])
        XCTAssertEqual(s.accepted, 0)
        let answers = sub.receipts(on: receiptsTopic)
        XCTAssertEqual(
            answers.map { if case .refused(_, let code) = $0 { code } else { "?" } },
            ["badSize", "badSize", "malformed", "malformed", "malformed", "badSignature", "nonceGap"])
        let goodID = try SignedTransaction(decoding: good).id
        XCTAssertEqual(
            answers.map(\.id), [.zero, .zero, .zero, .zero, .zero, goodID, try SignedTransaction(decoding: gap).id])
        XCTAssertEqual(c.node.pendingCount, 0)
        XCTAssertEqual(c.node.head, head)
        XCTAssertEqual(try bridge.inbox.entries().count, 0, "refused submits leave the inbox")

        // Still serving: a good submit goes through and becomes final.
        try c.publish(topic: submit, payload: good)
        try mqttWaitUntil("accepted") { bridge.stats.accepted == 1 }
        try c.produceBlock()
        try mqttWaitUntil("final") { bridge.stats.finalized == 1 }
        XCTAssertEqual(c.node.account(bob).state.balance, Genesis.Category.strategicPartners.amount + 1000)
    }

    /// The sender key is parsed only at the turn's signature check, not when the submit is read: bytes that are no
    /// x-only key still get `invalidSenderKey` on their own topic, and leave nothing behind.
    func testASenderThatIsNoKeyIsRefusedAtTheSignatureCheck() throws {
        let c = try makeChain()
        let bridge = try c.startBridge()
        // Every byte 0xFF is above the field prime, so it is no x coordinate.
        let noKey = Bytes32([UInt8](repeating: 0xFF, count: 32))!
        let device = Address(keyBytes: noKey)
        let body = TransactionBody(
            genesis: c.node.genesisBlockHash, sender: noKey, nonce: 0, maxFeePerUnit: 100, tipPerUnit: 1,
            payload: .transfer(Transfer(to: MqttTestChain.address(c.bob), amount: 1)))
        let tx = SignedTransaction(body: body, signature: Bytes64([UInt8](repeating: 7, count: 64))!)
        let receiptsTopic = MqttTopics.receipts(device)
        let sub = try c.subscribe([receiptsTopic])
        try c.publish(topic: MqttTopics.submit(device), payload: tx.encoded)
        XCTAssertGreaterThanOrEqual(sub.waitForLines(2).count, 2, sub.text)
        let answers = sub.receipts(on: receiptsTopic)
        XCTAssertEqual(answers.map(\.id), [tx.id])
        XCTAssertEqual(answers.map { if case .refused(_, let code) = $0 { code } else { "?" } }, ["invalidSenderKey"])
        XCTAssertEqual(bridge.stats.refused, ["invalidSenderKey": 1])
        XCTAssertEqual(c.node.pendingCount, 0)
        XCTAssertEqual(try bridge.inbox.entries().count, 0)
    }

    func testDirectGarbageNeverTraps() throws {
        let c = try makeChain()
        // Not started: no loop thread runs, so this thread may drive the submit path itself.
        let bridge = try c.startBridge(start: false)
        var rng = SplitMix64(seed: 4242)
        let alice = MqttTestChain.address(c.alice)
        let good = c.transfer(from: c.alice, to: alice, amount: 1, nonce: 0).encoded
        for i in 0..<300 {
            var payload = good
            for _ in 0..<(1 + rng.below(4)) {
                payload[rng.below(payload.count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            if i % 3 == 0 { payload = Array(payload.prefix(rng.below(payload.count))) }
            let topic = i % 7 == 0 ? "amars/v1/tx/\(i)" : MqttTopics.submit(alice)
            bridge.handleSubmitForTesting(topic: topic, payload: payload)
        }
        XCTAssertLessThanOrEqual(c.node.pendingCount, 1, "only an unchanged or still-valid mutation can get in")
    }

    func testAFloodingDeviceIsRateLimitedAndOthersAreNot() throws {
        let c = try makeChain()
        let bridge = try c.startBridge(rateLimit: .init(burst: 3, perSecond: 1))
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        let sub = try c.subscribe([MqttTopics.receipts(alice)], count: 6)
        for n in 0..<6 {
            try c.publish(
                topic: MqttTopics.submit(alice),
                payload: c.transfer(from: c.alice, to: bob, amount: 1, nonce: UInt64(n)).encoded)
        }
        XCTAssertEqual(sub.waitExit(), 0, sub.text)
        let codes = sub.receipts(on: MqttTopics.receipts(alice)).map { m -> String in
            switch m {
            case .accepted: "accepted"
            case .refused(_, let code): code
            case .final: "final"
            }
        }
        XCTAssertEqual(codes, ["accepted", "accepted", "accepted", "rateLimited", "rateLimited", "rateLimited"])
        XCTAssertEqual(bridge.stats.dropped[.rateLimited], 3)
        XCTAssertEqual(c.node.pendingCount, 3)
        // Bob is not limited by Alice's flood.
        try c.publish(
            topic: MqttTopics.submit(bob), payload: c.transfer(from: c.bob, to: alice, amount: 1, nonce: 0).encoded)
        try mqttWaitUntil("bob accepted") { bridge.stats.accepted == 4 }
        // Time refills Alice's bucket.
        c.clock.advance(2_000)
        try c.publish(
            topic: MqttTopics.submit(alice), payload: c.transfer(from: c.alice, to: bob, amount: 1, nonce: 3).encoded)
        try mqttWaitUntil("alice accepted again") { bridge.stats.accepted == 5 }
        XCTAssertEqual(c.node.pendingCount, 5)
    }

    // MARK: durability

    func testSubmitsPublishedWhileTheGatewayIsAwayArriveWhenItReturns() throws {
        let c = try makeChain()
        let first = try c.startBridge()
        first.stop()
        XCTAssertFalse(first.isConnected)
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        for n in 0..<3 {
            try c.publish(
                topic: MqttTopics.submit(alice),
                payload: c.transfer(from: c.alice, to: bob, amount: 7, nonce: UInt64(n)).encoded)
        }
        usleep(200_000)
        XCTAssertEqual(c.node.pendingCount, 0, "nobody took them yet")
        let second = try c.startBridge()
        try mqttWaitUntil("queued submits delivered") { second.stats.accepted == 3 }
        XCTAssertEqual(c.node.pendingCount, 3)
        XCTAssertEqual(try second.inbox.entries().count, 3, "accepted submits are in the inbox until final")
        try c.produceBlock()
        try mqttWaitUntil("final") { second.stats.finalized == 3 }
        XCTAssertEqual(try second.inbox.entries().count, 0)
        XCTAssertEqual(c.node.account(alice).state.nonce, 3)
    }

    /// Two gateways on one broker, each with its own persisted client id: both stay connected, and a submit
    /// reaches the chain through each. The same two with one id take the session from each other in turn.
    func testTwoGatewaysShareABrokerWithoutTakingEachOthersSession() throws {
        let c = try makeChain()
        let ids = try ["a", "b"].map { name -> String in
            let dir = c.dir.appendingPathComponent(name).path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let id = try MqttClientID.persistent(in: dir)
            XCTAssertEqual(try MqttClientID.persistent(in: dir), id, "the id survives a restart")
            return id
        }
        XCTAssertNotEqual(ids[0], ids[1])
        let first = try c.startBridge(clientID: ids[0], inbox: c.dir.appendingPathComponent("a/inbox.sqlite").path)
        let second = try c.startBridge(clientID: ids[1], inbox: c.dir.appendingPathComponent("b/inbox.sqlite").path)
        usleep(1_500_000)
        XCTAssertTrue(first.isConnected && second.isConnected)
        XCTAssertEqual([first.stats.connects, second.stats.connects], [1, 1], "neither lost its session")
        let alice = MqttTestChain.address(c.alice)
        try c.publish(
            topic: MqttTopics.submit(alice),
            payload: c.transfer(from: c.alice, to: MqttTestChain.address(c.bob), amount: 3, nonce: 0).encoded)
        try mqttWaitUntil("both gateways took the submit") { first.stats.accepted == 1 && second.stats.accepted == 1 }
        XCTAssertEqual(c.node.pendingCount, 1, "one transaction, however many gateways relayed it")
        first.stop()
        second.stop()

        // The control: one id for both, as before, and they throw each other off.
        let one = try c.startBridge(
            clientID: "amars-gateway-same", inbox: c.dir.appendingPathComponent("c.sqlite").path)
        let other = try c.startBridge(
            start: false, clientID: "amars-gateway-same", inbox: c.dir.appendingPathComponent("d.sqlite").path)
        try other.start()
        try mqttWaitUntil("the two take turns") { one.stats.connects + other.stats.connects >= 4 }
    }

    func testTheBridgeReconnectsWithBackoffAfterTheBrokerRestarts() throws {
        let c = try makeChain()
        let bridge = try c.startBridge()
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        try c.publish(
            topic: MqttTopics.submit(alice), payload: c.transfer(from: c.alice, to: bob, amount: 5, nonce: 0).encoded)
        try mqttWaitUntil("accepted") { bridge.stats.accepted == 1 }

        c.broker.stop(signal: SIGTERM)
        try mqttWaitUntil("disconnect noticed") { !bridge.isConnected }
        usleep(300_000)  // several refused connection attempts, spaced by the backoff
        XCTAssertFalse(bridge.isConnected)
        try c.broker.start()
        try mqttWaitUntil("reconnected") { bridge.isReady && bridge.stats.connects == 2 }

        try c.publish(
            topic: MqttTopics.submit(alice), payload: c.transfer(from: c.alice, to: bob, amount: 5, nonce: 1).encoded)
        try mqttWaitUntil("accepted after restart") { bridge.stats.accepted == 2 }
        try c.produceBlock()
        try mqttWaitUntil("final") { bridge.stats.finalized == 2 }
        XCTAssertEqual(c.node.account(alice).state.nonce, 2)
    }

    func testPublishesTheBrokerHasNotAcknowledgedAreCounted() throws {
        let c = try makeChain()
        let pid = try XCTUnwrap(c.broker.serverProcessID)
        let bridge = try c.startBridge()
        let alice = MqttTestChain.address(c.alice)
        // The retained head goes out on connect; its PUBACK closes the gap.
        try mqttWaitUntil("head acknowledged") {
            bridge.isReady && bridge.stats.publishesQueued > 0 && bridge.stats.publishesUnacknowledged == 0
        }

        // A broker that takes nothing (paused): the command leaves, its PUBACK does not come.
        kill(pid, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(pid, SIGCONT) } }
        let before = bridge.stats
        try bridge.sendCommand(device: alice, payload: [1, 2, 3])
        usleep(300_000)
        XCTAssertEqual(bridge.stats.publishesQueued, before.publishesQueued + 1)
        XCTAssertEqual(bridge.stats.publishesUnacknowledged, 1, "nobody could acknowledge the command")

        kill(pid, SIGCONT)
        resumed = true
        try mqttWaitUntil("command acknowledged") {
            bridge.stats.publishesAcknowledged == before.publishesAcknowledged + 1
                && bridge.stats.publishesUnacknowledged == 0
        }
    }

    func testQueuedSubmitsSurviveABrokerCrash() throws {
        let c = try makeChain()
        try c.startBridge().stop()
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        for n in 0..<2 {
            try c.publish(
                topic: MqttTopics.submit(alice),
                payload: c.transfer(from: c.alice, to: bob, amount: 3, nonce: UInt64(n)).encoded)
        }
        c.broker.stop(signal: SIGKILL)
        try c.broker.start()
        let bridge = try c.startBridge()
        try mqttWaitUntil("queued submits survived the crash") { bridge.stats.accepted == 2 }
        XCTAssertEqual(c.node.pendingCount, 2)
    }

    func testAcceptedSubmitsAreReplayedFromTheInboxAfterAGatewayCrash() throws {
        let c = try makeChain()
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        let txs = (0..<2).map { c.transfer(from: c.alice, to: bob, amount: 11, nonce: UInt64($0)) }
        do {
            let first = try c.startBridge()
            for tx in txs { try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded) }
            try mqttWaitUntil("accepted") { first.stats.accepted == 2 }
            XCTAssertEqual(try first.inbox.entries().map(\.id), txs.map(\.id))
            // The gateway dies before the block: its mempool goes with it, and the broker has our PUBACKs, so
            // only the inbox still knows these submits.
            first.stop()
            c.bridges.removeAll()
        }
        c.closeNode()
        try c.openNode()
        XCTAssertEqual(c.node.pendingCount, 0)

        let sub = try c.subscribe([MqttTopics.receipts(alice)])
        let second = try c.startBridge()
        try mqttWaitUntil("replayed") { second.stats.replayed == 2 && second.stats.accepted == 2 }
        XCTAssertEqual(c.node.pendingCount, 2)
        try c.produceBlock()
        try mqttWaitUntil("final") { second.stats.finalized == 2 }
        XCTAssertEqual(try second.inbox.entries().count, 0)
        XCTAssertEqual(c.node.account(alice).state.nonce, 2)
        _ = sub.waitForLines(5)
        let finals = sub.receipts(on: MqttTopics.receipts(alice)).compactMap { m -> Bytes32? in
            if case .final(let r, _, _) = m { r.transactionID } else { nil }
        }
        XCTAssertEqual(finals, txs.map(\.id))
    }

    /// The QoS 1 guarantee end to end: while our message callback is still running, libmosquitto must not
    /// have acknowledged the submit to the broker. The callback is held, the broker is stopped, and the
    /// submit is dropped before the inbox write (a gateway crash at that instant); the restarted broker must
    /// deliver it again. If the PUBACK had left before the callback, the broker would have forgotten it.
    func testASubmitIsNotAcknowledgedBeforeItIsPersisted() throws {
        let c = try makeChain()
        let alice = MqttTestChain.address(c.alice)
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let calls = MqttFakeClock()
        let bridge = try c.startBridge(start: false)
        bridge.beforePersistHook = { _ in
            calls.advance(1)
            guard calls.now == 1_000_001 else { return true }
            entered.signal()
            release.wait()
            return false
        }
        try bridge.start()
        try mqttWaitUntil("bridge ready") { bridge.isReady }
        let tx = c.transfer(from: c.alice, to: alice, amount: 1, nonce: 0)
        try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded)
        XCTAssertEqual(entered.wait(timeout: .now() + 15), .success)
        // SIGTERM: the broker writes its whole state, including the submit in flight to us and not yet
        // acknowledged. (After SIGKILL it may have saved only older state, which would test the broker instead.)
        c.broker.stop(signal: SIGTERM)
        release.signal()
        try mqttWaitUntil("connection loss noticed") { !bridge.isConnected }
        XCTAssertEqual(bridge.stats.accepted, 0)
        XCTAssertEqual(try bridge.inbox.entries().count, 0)
        try c.broker.start()
        try mqttWaitUntil("redelivered after the broker restart") { bridge.stats.accepted == 1 }
        XCTAssertEqual(try bridge.inbox.entries().map(\.id), [tx.id])
        XCTAssertEqual(c.node.pendingCount, 1)
    }

    /// The batched commit: a turn's submits are durable only at its one commit, so their PUBACKs must not
    /// leave before it. The commit is held, the broker stopped (SIGTERM, it saves the unacknowledged message),
    /// and the batch dropped as a crash would; the restarted broker must deliver the submit again.
    func testABatchIsNotAcknowledgedBeforeItsCommit() throws {
        let c = try makeChain()
        let alice = MqttTestChain.address(c.alice)
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let calls = MqttFakeClock()
        let bridge = try c.startBridge(start: false)
        bridge.beforeCommitHook = { submits in
            guard submits > 0 else { return true }
            calls.advance(1)
            guard calls.now == 1_000_001 else { return true }
            entered.signal()
            release.wait()
            return false
        }
        try bridge.start()
        try mqttWaitUntil("bridge ready") { bridge.isReady }
        let tx = c.transfer(from: c.alice, to: alice, amount: 1, nonce: 0)
        try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded)
        XCTAssertEqual(entered.wait(timeout: .now() + 15), .success)
        c.broker.stop(signal: SIGTERM)
        release.signal()
        try mqttWaitUntil("connection loss noticed") { !bridge.isConnected }
        XCTAssertEqual(bridge.stats.accepted, 0)
        XCTAssertEqual(try bridge.inbox.entries().count, 0)
        XCTAssertEqual(c.node.pendingCount, 0)
        try c.broker.start()
        try mqttWaitUntil("redelivered after the broker restart") { bridge.stats.accepted == 1 }
        XCTAssertEqual(try bridge.inbox.entries().map(\.id), [tx.id])
        XCTAssertEqual(c.node.pendingCount, 1)
    }

    func testAnInboxEntryThatBecameFinalMeanwhileIsSettledAtStart() throws {
        let c = try makeChain()
        let alice = MqttTestChain.address(c.alice)
        let first = try c.startBridge()
        let tx = c.transfer(from: c.alice, to: alice, amount: 1, nonce: 0)
        try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded)
        try mqttWaitUntil("accepted") { first.stats.accepted == 1 }
        first.stop()
        try c.produceBlock()  // final while no bridge watched
        let second = try c.startBridge()
        try mqttWaitUntil("settled") { second.stats.finalized == 1 }
        XCTAssertEqual(second.stats.replayed, 0)
        XCTAssertEqual(try second.inbox.entries().count, 0)
    }

    /// A device that missed its final receipt publishes the same submit again: it gets the receipt, not a
    /// refusal for its spent nonce, and nothing stays in the inbox.
    func testASubmitPublishedAgainAfterItIsFinalIsAnsweredWithItsReceipt() throws {
        let c = try makeChain()
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        let bridge = try c.startBridge()
        let tx = c.transfer(from: c.alice, to: bob, amount: 3, nonce: 0)
        try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded)
        try mqttWaitUntil("accepted") { bridge.stats.accepted == 1 }
        try c.produceBlock()
        try mqttWaitUntil("final") { bridge.stats.finalized == 1 }

        let sub = try c.subscribe([MqttTopics.receipts(alice)])
        try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded)
        XCTAssertGreaterThanOrEqual(sub.waitForLines(2).count, 2, sub.text)
        let answers = sub.receipts(on: MqttTopics.receipts(alice))
        guard case .final(let receipt, let height, _) = answers.first else {
            return XCTFail("expected the final receipt, got \(answers)")
        }
        XCTAssertEqual(receipt.transactionID, tx.id)
        XCTAssertEqual(height, c.node.head.height)
        XCTAssertEqual(bridge.stats.refused, [:])
        XCTAssertEqual(bridge.stats.accepted, 1)
        XCTAssertEqual(try bridge.inbox.entries().count, 0)
        XCTAssertEqual(c.node.account(alice).state.nonce, 1)
    }
}

extension MqttBridge {
    /// Feeds a message straight into the submit path, as the loop thread would, for inputs the broker itself
    /// would not route (malformed topics). Only on a bridge that was never started: the submit path is
    /// confined to the loop thread.
    func handleSubmitForTesting(topic: String, payload: [UInt8]) {
        handleSubmit(topic: topic, payload: payload, size: payload.count)
        flushStaged()
        admitChecked(wait: true)
    }
}
