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

// MARK: harness shared with MqttInteropTests

/// A clock the test moves by hand, for the rate limiter.
final class MqttFakeClock: @unchecked Sendable {
    // @unchecked: the one field is guarded by `lock`.
    private let lock = NSLock()
    private var millis: UInt64 = 1_000_000

    var now: UInt64 { lock.withLock { millis } }
    func advance(_ delta: UInt64) { lock.withLock { millis += delta } }
}

/// A one-validator chain on a temp SQLite file, a real mosquitto broker on a free port, and helpers to start
/// bridges against both. Blocks are produced by hand, so every test decides when a transaction is final.
final class MqttTestChain {
    static let chainID: UInt32 = 77

    let dir: URL
    let validator: PrivateKey
    let alice: PrivateKey
    let bob: PrivateKey
    let genesis: Genesis
    private(set) var node: ChainNode!
    let broker: BrokerProcess
    let clock = MqttFakeClock()
    var bridges: [MqttBridge] = []
    private var time: UInt64
    let logger: Logger

    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: n)) }
    static func address(_ key: PrivateKey) -> Address { Address(publicKey: key.xOnlyPublicKey) }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-mqtt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        validator = Self.key(1)
        alice = Self.key(2)
        bob = Self.key(3)
        var allocations: [Genesis.Allocation] = []
        for category in Genesis.Category.allCases {
            let owner = category == .strategicPartners ? bob : alice
            allocations.append(.init(category: category, address: Self.address(owner), amount: category.amount))
        }
        genesis = Genesis(
            chainID: Self.chainID, chainName: "mqtt-test", timestamp: 1_700_000_000_000, epochLength: 100,
            initialBaseFee: 10, validators: [Committee.Member(key: validator.xOnlyPublicKey.bytes, weight: 1)],
            allocations: allocations, burned: [:])
        time = genesis.timestamp
        var logger = Logger(label: "mqtt-test")
        logger.logLevel = ProcessInfo.processInfo.environment["AMARS_TEST_LOG"] != nil ? .debug : .critical
        self.logger = logger
        broker = try BrokerProcess(directory: dir.appendingPathComponent("broker"))
        try openNode()
        try broker.start()
    }

    var inboxPath: String { dir.appendingPathComponent("mqtt-inbox.sqlite").path }

    /// Opens (or reopens, after ``closeNode()``) the node on the same SQLite file: a reopened node has an empty
    /// mempool, as after a gateway crash.
    func openNode() throws {
        let store = try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path)
        node = try ChainNode(genesis: genesis, store: store, validatorKey: validator, logger: logger)
    }

    func closeNode() { node = nil }

    /// Starts a bridge with the fixed client id (so every bridge of a test shares one broker session) and
    /// waits until its subscription is acknowledged.
    @discardableResult
    func startBridge(
        rateLimit: MqttRateLimiter.Limits = .init(burst: 100, perSecond: 100), start: Bool = true
    ) throws -> MqttBridge {
        let config = MqttBridge.Configuration(
            port: broker.port, clientID: "amars-gateway-test", inboxPath: inboxPath, rateLimit: rateLimit,
            backoff: .init(initialMillis: 20, maxMillis: 200), loopTimeoutMillis: 20)
        let clock = self.clock
        let bridge = try MqttBridge(
            node: node, configuration: config, clock: { clock.now }, random: SplitMix64(seed: 7), logger: logger)
        bridges.append(bridge)
        guard start else { return bridge }
        try bridge.start()
        try mqttWaitUntil("bridge ready") { bridge.isReady }
        return bridge
    }

    func close() {
        for b in bridges { b.stop() }
        bridges = []
        broker.stop(signal: SIGKILL)
        node = nil
        try? FileManager.default.removeItem(at: dir)
    }

    func transfer(
        from key: PrivateKey, to: Address, amount: UInt64, nonce: UInt64, maxFee: UInt64 = 100
    ) -> SignedTransaction {
        let body = TransactionBody(
            chainID: Self.chainID, sender: key.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: maxFee,
            tipPerUnit: 1, payload: .transfer(Transfer(to: to, amount: amount)))
        return SignedTransaction(body: body, signer: key)
    }

    @discardableResult
    func produceBlock() throws -> FinalizedBlock {
        time += 1000
        return try node.produceBlock(timestamp: time)
    }

    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `mosquitto_pub` with QoS 1 and the payload from a file (`nil` sends a zero-length message).
    func publish(topic: String, payload: [UInt8]?, retain: Bool = false) throws {
        var args = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", topic]
        if let payload {
            args += ["-f", try file("payload-\(UUID().uuidString).bin", payload)]
        } else {
            args += ["-n"]
        }
        if retain { args.append("-r") }
        let tool = try MqttTool(MqttTool.pub, args)
        let status = tool.waitExit(timeout: 10)
        XCTAssertEqual(status, 0, "mosquitto_pub failed: \(tool.text)")
    }

    /// Starts `mosquitto_sub` on `topics` printing "topic hexpayload" lines, and returns once the subscription
    /// is live: a retained probe on a private topic is subscribed in the same SUBSCRIBE, and its arrival
    /// proves the broker has processed it. The probe is the first line; `count` counts the messages after it.
    func subscribe(_ topics: [String], count: Int? = nil) throws -> MqttTool {
        let probe = "amars-test/probe/\(UUID().uuidString)"
        try publish(topic: probe, payload: [0x70], retain: true)
        var args = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-F", "%t %x", "-t", probe]
        for t in topics { args += ["-t", t] }
        if let count { args += ["-C", "\(count + 1)"] }
        let tool = try MqttTool(MqttTool.sub, args)
        guard tool.waitForLines(1, timeout: 10).first?.hasPrefix(probe) == true else {
            tool.terminate()
            throw MqttTestError.timeout("subscription probe: \(tool.text)")
        }
        return tool
    }
}

enum MqttTestError: Error { case timeout(String) }

/// Polls `condition` every 10 ms; throws (failing the test) after `timeout`.
func mqttWaitUntil(_ what: String, timeout: TimeInterval = 15, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(10_000)
    }
    if try condition() { return }
    throw MqttTestError.timeout(what)
}

/// One run of mosquitto_pub or mosquitto_sub, its output collected as it arrives. Terminated on deinit, so a
/// failing test leaves no client behind.
final class MqttTool: @unchecked Sendable {
    // @unchecked: `output` is guarded by `lock`; the Process is only touched by the test thread.
    static let pub = "mosquitto_pub"
    static let sub = "mosquitto_sub"

    let process = Process()
    private let lock = NSLock()
    private var output = Data()

    init(_ tool: String, _ arguments: [String]) throws {
        let candidates = ["/usr/bin/\(tool)", "/usr/local/bin/\(tool)", "/opt/homebrew/bin/\(tool)"]
        guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw MqttTestError.timeout("\(tool) not installed (package mosquitto-clients)")
        }
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.output.append(data) }
        }
        try process.run()
    }

    deinit { terminate() }

    var text: String { lock.withLock { String(decoding: output, as: UTF8.self) } }

    var lines: [String] { text.split(separator: "\n").map(String.init) }

    func waitForLines(_ n: Int, timeout: TimeInterval = 15) -> [String] {
        _ = try? mqttWaitUntil("\(n) lines", timeout: timeout) { lines.count >= n }
        return lines
    }

    func waitExit(timeout: TimeInterval = 15) -> Int32? {
        guard (try? mqttWaitUntil("exit", timeout: timeout) { !process.isRunning }) != nil else { return nil }
        // The last output may still be in the pipe when the process has just exited.
        usleep(50_000)
        return process.terminationStatus
    }

    func terminate() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// The payloads of lines on `topic`, hex-decoded.
    func payloads(on topic: String) -> [[UInt8]] {
        lines.compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == topic else { return nil }
            return try? Hex.decode(String(parts[1]))
        }
    }

    func receipts(on topic: String) -> [MqttReceiptMessage] {
        payloads(on: topic).compactMap { try? MqttReceiptMessage(decoding: $0) }
    }
}

// MARK: tests

/// Pure parts (topics, message codec, backoff, rate limiter, inbox) and the bridge's behaviour against a real
/// broker under bad input, floods, and the loss of the gateway or the broker.
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

    // MARK: topics and messages

    func testSubmitTopicParsing() throws {
        let device = MqttTestChain.address(MqttTestChain.key(9))
        XCTAssertEqual(try MqttTopics.parseSubmit(MqttTopics.submit(device)).get(), device)
        XCTAssertEqual(MqttTopics.submit(device), "amars/v1/tx/" + device.bech32)
        XCTAssertEqual(MqttTopics.receipts(device), "amars/v1/receipts/" + device.bech32)
        XCTAssertEqual(MqttTopics.command(device), "amars/v1/cmd/" + device.bech32)
        let otherHRP = Bech32m.encode(hrp: "bc", bytes: device.raw.bytes)
        let flipped = String(device.bech32.dropLast()) + (device.bech32.hasSuffix("q") ? "p" : "q")
        let cases: [(String, MqttDropReason)] = [
            ("", .badTopic), ("amars/v1/tx/", .badTopic), ("amars/v1/tx", .badTopic),
            ("amars/v1/rx/" + device.bech32, .badTopic), ("amars/v1/tx/\(device.bech32)/x", .badTopic),
            ("amars/v1/tx/" + String(repeating: "a", count: 200), .badTopic),
            ("amars/v1/tx/notanaddress", .badDevice), ("amars/v1/tx/" + otherHRP, .badDevice),
            ("amars/v1/tx/" + flipped, .badDevice), ("amars/v1/tx/\u{0}\u{FFFF}", .badDevice),
        ]
        for (topic, reason) in cases {
            switch MqttTopics.parseSubmit(topic) {
            case .success: XCTFail("accepted \(topic)")
            case .failure(let r): XCTAssertEqual(r, reason, topic)
            }
        }
    }

    func testReceiptMessagesRoundTripAndRejectGarbage() throws {
        let id = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        let messages: [MqttReceiptMessage] = [
            .accepted(id: id), .refused(id: .zero, code: "rateLimited"),
            .final(
                receipt: Receipt(transactionID: id, status: .success, unitsUsed: 150, feePaid: 1650), height: 12,
                position: 3),
        ]
        for m in messages {
            XCTAssertEqual(try MqttReceiptMessage(decoding: m.encoded), m)
            XCTAssertEqual(Array(m.encoded[1..<33]), m.id.bytes, "the id sits at offset 1 in every kind")
        }
        XCTAssertEqual(MqttReceiptMessage.accepted(id: id).encoded.count, 33)
        XCTAssertEqual(
            MqttReceiptMessage.refused(id: id, code: "nonceGap").encoded, [1] + id.bytes + Array("nonceGap".utf8))
        var rng = SplitMix64(seed: 99)
        for _ in 0..<5000 {
            let bytes = (0..<rng.below(80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if let m = try? MqttReceiptMessage(decoding: bytes) {
                XCTAssertEqual(m.encoded, bytes, "decoding is canonical")
            }
        }
        XCTAssertThrowsError(try MqttReceiptMessage(decoding: [3] + id.bytes))
        XCTAssertThrowsError(try MqttReceiptMessage(decoding: [0] + id.bytes + [0]))
        XCTAssertThrowsError(try MqttReceiptMessage(decoding: [1] + id.bytes + [0x0A]))
    }

    func testRefusalCodesMatchTheHTTPNames() {
        XCTAssertEqual(MqttRefusalCode.code(for: .nonceGap(expected: 1, got: 3)), "nonceGap")
        XCTAssertEqual(MqttRefusalCode.code(for: .badSignature), "badSignature")
        XCTAssertEqual(MqttRefusalCode.code(for: .staking(.nameTaken)), "nameTaken")
    }

    // MARK: backoff and rate limiting

    func testBackoffGrowsToItsCapWithBoundedJitterAndResets() {
        var b = MqttBackoff(policy: .init(initialMillis: 100, maxMillis: 5_000))
        var rng = SplitMix64(seed: 1)
        var ceilings: [UInt64] = []
        for _ in 0..<70 {
            let top = b.ceiling
            let d = b.next(using: &rng)
            XCTAssertGreaterThanOrEqual(d, top / 2)
            XCTAssertLessThanOrEqual(d, top)
            ceilings.append(top)
        }
        XCTAssertEqual(Array(ceilings.prefix(7)), [100, 200, 400, 800, 1600, 3200, 5000])
        XCTAssertEqual(ceilings.last, 5000, "no overflow after many attempts")
        b.reset()
        XCTAssertEqual(b.ceiling, 100)
        // Same seed, same delays; another seed spreads them.
        func run(_ seed: UInt64) -> [UInt64] {
            var b = MqttBackoff(policy: .init(initialMillis: 100, maxMillis: 5_000))
            var r = SplitMix64(seed: seed)
            return (0..<10).map { _ in b.next(using: &r) }
        }
        XCTAssertEqual(run(5), run(5))
        XCTAssertNotEqual(run(5), run(6))
    }

    func testTokenBucketPerDeviceOnAnInjectedClock() {
        var limiter = MqttRateLimiter(limits: .init(burst: 3, perSecond: 2, maxDevices: 2))
        let a = MqttTestChain.address(MqttTestChain.key(10))
        let b = MqttTestChain.address(MqttTestChain.key(11))
        var t: UInt64 = 5_000
        XCTAssertEqual((0..<5).map { _ in limiter.allow(a, nowMillis: t) }, [true, true, true, false, false])
        XCTAssertTrue(limiter.allow(b, nowMillis: t), "another device has its own bucket")
        t += 499
        XCTAssertFalse(limiter.allow(a, nowMillis: t), "just under one token refilled")
        t += 1
        XCTAssertTrue(limiter.allow(a, nowMillis: t))
        XCTAssertFalse(limiter.allow(a, nowMillis: t))
        t += 60_000
        XCTAssertEqual(
            (0..<4).map { _ in limiter.allow(a, nowMillis: t) }, [true, true, true, false], "capped at burst")
        XCTAssertFalse(limiter.allow(a, nowMillis: t - 10_000), "a clock going back grants nothing")
        // A third device exceeds maxDevices: full buckets are evicted, the drained one is kept.
        let c = MqttTestChain.address(MqttTestChain.key(12))
        XCTAssertTrue(limiter.allow(c, nowMillis: t))
        XCTAssertFalse(limiter.allow(a, nowMillis: t), "a's empty bucket survived the eviction")
    }

    // MARK: inbox

    func testInboxKeepsArrivalOrderAcrossReopenAndIgnoresDuplicates() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-inbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("inbox.sqlite").path
        let device = MqttTestChain.address(MqttTestChain.key(5))
        let ids = (1...4).map { Bytes32(w0: UInt64($0), w1: 0, w2: 0, w3: 0) }
        do {
            let inbox = try MqttInbox(path: path)
            for (i, id) in ids.enumerated().reversed() { try inbox.add(id: id, device: device, raw: [UInt8(i), 1]) }
            try inbox.add(id: ids[0], device: device, raw: [99])
            try inbox.remove(id: ids[2])
            try inbox.remove(id: Bytes32(w0: 77, w1: 0, w2: 0, w3: 0))
        }
        let reopened = try MqttInbox(path: path)
        let entries = try reopened.entries()
        XCTAssertEqual(entries.map(\.id), [ids[3], ids[1], ids[0]])
        XCTAssertEqual(entries.last?.raw, [0, 1], "the first copy wins")
        XCTAssertEqual(Set(entries.map(\.device)), [device])
        XCTAssertThrowsError(try MqttInbox(path: dir.appendingPathComponent("missing/dir/inbox.sqlite").path))
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
}

extension MqttBridge {
    /// Feeds a message straight into the submit path, as the loop thread would, for inputs the broker itself
    /// would not route (malformed topics). Only on a bridge that was never started: the submit path is
    /// confined to the loop thread.
    func handleSubmitForTesting(topic: String, payload: [UInt8]) {
        handleSubmit(topic: topic, payload: payload, size: payload.count)
        flushStaged()
    }
}
