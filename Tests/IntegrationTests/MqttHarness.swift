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

// The MQTT harness of MqttBridgeTests, MqttInteropTests and DeviceMqttEndToEndTests: a chain with a spawned
// mosquitto broker, and mosquitto_pub / mosquitto_sub runs.

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
    let broker: any TestBroker
    let clock = MqttFakeClock()
    var bridges: [MqttBridge] = []
    private var time: UInt64
    let logger: Logger

    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: n)) }
    static func address(_ key: PrivateKey) -> Address { Address(publicKey: key.xOnlyPublicKey) }

    init(broker kind: BrokerKind = .current) throws {
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
        broker = try kind.make(directory: dir.appendingPathComponent("broker"))
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

    /// Starts a bridge with the fixed client id (so every bridge of a test shares one broker session, unless
    /// given another id, and another inbox with it) and waits until its subscription is acknowledged.
    @discardableResult
    func startBridge(
        rateLimit: MqttRateLimiter.Limits = .init(burst: 100, perSecond: 100), start: Bool = true,
        clientID: String = "amars-gateway-test", inbox: String? = nil, channels: ChannelDoor? = nil
    ) throws -> MqttBridge {
        let config = MqttBridge.Configuration(
            port: broker.port, clientID: clientID, inboxPath: inbox ?? inboxPath, rateLimit: rateLimit,
            backoff: .init(initialMillis: 20, maxMillis: 200), loopTimeoutMillis: 20,
            credentials: try broker.gatewayCredentials)
        let clock = self.clock
        let bridge = try MqttBridge(
            node: node, configuration: config, channels: channels, clock: { clock.now }, random: SplitMix64(seed: 7),
            logger: logger)
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
            genesis: node.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: maxFee,
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

    /// `-u`/`-P` with the gateway's login (the broker refuses its topics to anyone else), or none: a device.
    func login(_ asGateway: Bool) throws -> [String] {
        guard asGateway else { return [] }
        let login = try broker.gatewayCredentials
        return ["-u", login.username, "-P", login.password]
    }

    /// `mosquitto_pub` with QoS 1 and the payload from a file (`nil` sends a zero-length message), as the gateway
    /// unless `asGateway` is false (then as an anonymous device).
    func publish(topic: String, payload: [UInt8]?, retain: Bool = false, asGateway: Bool = true) throws {
        var args = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", topic] + (try login(asGateway))
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
    /// Subscribes with the gateway's login: the broker lets only it read every topic.
    func subscribe(_ topics: [String], count: Int? = nil) throws -> MqttTool {
        // Under amars/v1/, the only tree the gateway's login may use.
        let probe = "amars/v1/probe/\(UUID().uuidString)"
        try publish(topic: probe, payload: [0x70], retain: true)
        var args =
            ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-F", "%t %x", "-t", probe] + (try login(true))
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
        // A child inherits the spawning thread's signal mask, and threads of this process block SIGTERM (the
        // gateway's service lifecycle waits for it): without this the tool ignores `terminate()`.
        try BrokerProcess.withSignalsUnblocked { try process.run() }
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
        guard process.isRunning else { return }
        process.terminate()
        // Not gone after a grace period (a blocked SIGTERM): killed, so a test never waits on it forever.
        if (try? mqttWaitUntil("exit", timeout: 3) { !process.isRunning }) == nil {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
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
