import AmarsCodec
import AmarsCrypto
import ArgumentParser
import CMosquitto
import Chain
import DeviceClient
import DeviceGateway
import DeviceCore
import DeviceProtocol
import Foundation
import Ledger
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The device doors under load, each next to the plain server it is built on, measured in the same run:
/// - CoAP: checkpoint GETs answered by our libcoap-based ``CoAPServer`` against libcoap's own
///   `coap-server-notls` serving its static index, with the same Swift UDP load generator (NON GETs, a bounded
///   window in flight over a few sockets), runs alternated;
/// - MQTT: signed transfers published QoS 1 through mosquitto until ``MqttBridge`` has admitted all of them into
///   the mempool, against the same publishers' raw QoS 1 publish rate (until the broker acknowledged all) to a
///   topic nobody reads. Several publisher connections, as a fleet is: with one, mosquitto's raw rate swings
///   between two regimes (about 25,000 and 60,000 messages a second here, the broker spending 25 or 8 µs a
///   message) depending on whether the two processes happen to batch or ping-pong, and the ratio with it.
struct DeviceLinkBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device-link",
        abstract: "CoAP checkpoint GETs and MQTT submits against plain libcoap and mosquitto.")

    @Option(help: "Seconds per CoAP run (after a short warm-up).")
    var seconds: Double = 3

    @Option(help: "CoAP runs per server, alternated (the ratio is the median of the rounds' ratios).")
    var rounds: Int = 5

    @Option(help: "UDP sockets of the load generator (each is one libcoap session).")
    var sockets: Int = 4

    @Option(help: "Requests in flight per socket.")
    var window: Int = 32

    @Option(help: "Checkpoints per GET (limit=): the response should fit one datagram (about 1 KiB).")
    var limit: Int = 2

    @Option(help: "Path to libcoap's example server.")
    var coapServer: String = "/usr/bin/coap-server-notls"

    @Option(help: "MQTT messages per run (the broker queues at most 10,000 for a subscriber that lags).")
    var messages: Int = 6_000

    @Option(help: "Devices (senders) the MQTT submits are spread over.")
    var devices: Int = 1_000

    @Option(help: "MQTT publisher connections; a device's submits all go through one, in order.")
    var publishers: Int = 4

    @Option(help: "MQTT runs each, alternated (the ratio is the median of the rounds' ratios).")
    var mqttRounds: Int = 9

    @Flag(help: "Broker saves its database after every change, as amarsd configures it (default: off).")
    var brokerAutosave = false

    @Flag(help: "Skip the CoAP part.")
    var skipCoap = false

    @Flag(help: "Skip the MQTT part.")
    var skipMqtt = false

    func validate() throws {
        guard seconds > 0, rounds > 0, sockets > 0, window > 0, limit > 0, messages > 0, devices > 0, mqttRounds > 0,
            publishers > 0
        else { throw ValidationError("all counts must be positive") }
        // A subscriber that lags gets at most 10,000 messages queued by the broker (``BrokerProcess``); the rest
        // would be dropped and the run never finish.
        guard messages <= 10_000 else { throw ValidationError("at most 10000 messages per run") }
        // The mempool is emptied between rounds; within one it keeps at most 64 per sender.
        guard (messages + devices - 1) / devices <= 60 else {
            throw ValidationError("more devices needed: the mempool keeps at most 64 per sender")
        }
    }

    func run() throws {
        let fixture = try BenchChain(devices: devices)
        defer { fixture.close() }
        var lines: [String] = []
        if !skipCoap { lines += try coap(fixture) }
        if !skipMqtt { lines += try mqtt(fixture) }
        print("")
        for line in lines { print(line) }
    }

    // MARK: CoAP

    private func coap(_ chain: BenchChain) throws -> [String] {
        // Enough finished epochs for `limit` checkpoints.
        while chain.node.head.height < UInt64(limit + 2) * chain.genesis.epochLength { try chain.produceBlock() }
        let expected = CheckpointsPayload(try chain.node.checkpoints(from: 0, limit: limit)).encoded
        print("checkpoints payload: \(expected.count) bytes (\(limit) checkpoints)")

        var logger = Logger(label: "bench.coap")
        logger.logLevel = .critical
        let unlimited = DeviceRateLimiter.Limits(perSecond: 1e9, burst: 1e9)
        let ours = CoAPServer(
            node: chain.node, host: "127.0.0.1", port: try freeUDPPort(), logger: logger,
            limits: .init(submits: unlimited, requests: unlimited))
        try ours.start()
        defer { ours.stop() }

        let plainPort = try freeUDPPort()
        let plain = Process()
        plain.executableURL = URL(fileURLWithPath: coapServer)
        plain.arguments = ["-A", "127.0.0.1", "-p", "\(plainPort)", "-v", "0"]
        plain.standardInput = FileHandle.nullDevice
        plain.standardOutput = FileHandle.nullDevice
        plain.standardError = FileHandle.nullDevice
        try plain.run()
        defer {
            kill(plain.processIdentifier, SIGTERM)
            plain.waitUntilExit()
        }

        var ourRequest = CoAPMessage(type: .nonConfirmable, code: .get, messageID: 0, token: [0, 0, 0, 0])
        ourRequest.setUriPath(DeviceResources.checkpoints)
        ourRequest.uriQuery = [Array("from=0".utf8), Array("limit=\(limit)".utf8)]
        // libcoap's example server answers GET / with its static index text.
        let plainRequest = CoAPMessage(type: .nonConfirmable, code: .get, messageID: 0, token: [0, 0, 0, 0])

        // Both answer correctly before anything is timed.
        let check = try UDPLoad.probe(port: ours.port, request: ourRequest.encode())
        guard check.code == .content, check.payload == expected else {
            throw ValidationError("our server answered \(check.code) with \(check.payload.count) bytes")
        }
        let plainCheck = try UDPLoad.probe(port: plainPort, request: plainRequest.encode())
        guard plainCheck.code == .content else { throw ValidationError("coap-server answered \(plainCheck.code)") }
        print("coap-server-notls index: \(plainCheck.payload.count) bytes")

        var plainRates: [Double] = []
        var ourRates: [Double] = []
        var ratios: [Double] = []
        for round in 1...rounds {
            // Alternate which server goes first, so a drift in the machine's load does not favour one.
            func plainRun() throws -> UDPLoad.Result {
                try UDPLoad.run(
                    port: plainPort, request: plainRequest.encode(), sockets: sockets, window: window, seconds: seconds)
            }
            func ourRun() throws -> UDPLoad.Result {
                try UDPLoad.run(
                    port: ours.port, request: ourRequest.encode(), sockets: sockets, window: window, seconds: seconds)
            }
            let p: UDPLoad.Result
            let o: UDPLoad.Result
            if round % 2 == 1 {
                p = try plainRun()
                o = try ourRun()
            } else {
                o = try ourRun()
                p = try plainRun()
            }
            print(
                "round \(round): coap-server-notls \(Int(p.rate)) req/s (\(p.other) other, \(p.refills) refills), "
                    + "amars CoAPServer \(Int(o.rate)) req/s (\(o.other) other, \(o.refills) refills)")
            plainRates.append(p.rate)
            ourRates.append(o.rate)
            ratios.append(o.rate / p.rate)
        }
        // The answer cache must follow the head: the last checkpoint run grows when a block finishes an epoch.
        let epochs = chain.node.head.height / chain.genesis.epochLength
        var tail = CoAPMessage(type: .nonConfirmable, code: .get, messageID: 0, token: [0, 0, 0, 0])
        tail.setUriPath(DeviceResources.checkpoints)
        tail.uriQuery = [Array("from=\(epochs - 1)".utf8), Array("limit=2".utf8)]
        let before = try UDPLoad.probe(port: ours.port, request: tail.encode()).payload
        for _ in 0..<chain.genesis.epochLength { try chain.produceBlock() }
        let after = try UDPLoad.probe(port: ours.port, request: tail.encode()).payload
        guard try CheckpointsPayload(decoding: before).checkpoints.count == 1,
            after == CheckpointsPayload(try chain.node.checkpoints(from: epochs - 1, limit: 2)).encoded,
            try CheckpointsPayload(decoding: after).checkpoints.count == 2
        else { throw ValidationError("checkpoint answers did not follow the new head") }

        let plainRate = median(plainRates)
        let ourRate = median(ourRates)
        return [
            "coap plain (coap-server-notls GET /, \(plainCheck.payload.count) B): \(Int(plainRate)) req/s (median of \(rounds))",
            "coap ours (GET v1/checkpoints?from=0&limit=\(limit), \(expected.count) B): \(Int(ourRate)) req/s (median of \(rounds))",
            "coap/plain ratio: \(String(format: "%.3f", median(ratios))) (median of the \(rounds) rounds' ratios)",
        ]
    }

    // MARK: MQTT

    private func mqtt(_ chain: BenchChain) throws -> [String] {
        let dir = chain.dir.appendingPathComponent("broker")
        let broker = try BrokerProcess(directory: dir, saveOnEveryChange: brokerAutosave)
        try broker.start()
        defer { broker.stop() }

        // Every transfer signed before anything is timed; nonces continue from round to round.
        print("signing \(messages * mqttRounds) transfers from \(devices) devices ...")
        var nonces = [UInt64](repeating: 0, count: devices)
        // Computed once: the genesis header hashes the whole initial state.
        let genesisHash = chain.genesis.header.hash
        var batches: [[(topic: String, payload: [UInt8], lane: Int)]] = []
        for _ in 0..<mqttRounds {
            var batch: [(topic: String, payload: [UInt8], lane: Int)] = []
            for i in 0..<messages {
                let d = i % devices
                let body = TransactionBody(
                    genesis: genesisHash, sender: chain.keys[d].xOnlyPublicKey.bytes, nonce: nonces[d],
                    maxFeePerUnit: 100, tipPerUnit: 1,
                    payload: .transfer(Ledger.Transfer(to: chain.addresses[(d + 1) % devices], amount: 1)))
                nonces[d] += 1
                batch.append(
                    (
                        MqttTopics.submit(chain.addresses[d]),
                        SignedTransaction(body: body, signer: chain.keys[d]).encoded, d
                    ))
            }
            batches.append(batch)
        }
        let size = batches[0][0].payload.count
        let raw = [UInt8](repeating: 0xA5, count: size)

        var logger = Logger(label: "bench.mqtt")
        logger.logLevel = .critical
        let bridge = try MqttBridge(
            node: chain.node,
            configuration: .init(
                port: broker.port, clientID: "bench-gateway",
                inboxPath: chain.dir.appendingPathComponent("inbox.sqlite").path,
                rateLimit: .init(burst: 1e9, perSecond: 1e9), loopTimeoutMillis: 10,
                credentials: try broker.gatewayCredentials),
            logger: logger)
        try bridge.start()
        defer { bridge.stop() }
        let ready = Date().addingTimeInterval(10)
        while !bridge.isReady {
            guard Date() < ready else { throw ValidationError("the bridge did not subscribe") }
            usleep(5_000)
        }

        let publishers = try (0..<publishers).map { try MqttPublisher(port: broker.port, index: $0) }
        defer { for p in publishers { p.close() } }

        var rawRates: [Double] = []
        var ourRates: [Double] = []
        var ratios: [Double] = []
        var rawCPUs: [CPUMeter.PerMessage] = []
        var ourCPUs: [CPUMeter.PerMessage] = []
        for round in 0..<mqttRounds {
            // Raw: QoS 1 publishes of the same size to a topic nobody subscribes to, until all are PUBACKed.
            let rawTopic = "bench/raw/\(round)"
            var cpu = CPUMeter(broker: broker.processIdentifier)
            let rawSeconds = try MqttPublisher.publishAll(
                (0..<messages).map { (rawTopic, raw, $0) }, on: publishers
            ) { true }
            // Ours: the same publishers, signed transfers on the devices' submit topics, until the mempool holds
            // all of them (the bridge persisted, verified and admitted each).
            let before = chain.node.pendingCount
            let target = before + messages
            let rawCPU = cpu.lap(messages)
            let ourSeconds = try MqttPublisher.publishAll(batches[round], on: publishers) {
                let n = chain.node.pendingCount
                if n >= target { return true }
                let s = bridge.stats
                if s.refused.values.reduce(0, +) + s.dropped.values.reduce(0, +) > 0 {
                    throw ValidationError("bridge refused submits: \(s.refused) \(s.dropped)")
                }
                return false
            }
            let ourCPU = cpu.lap(messages)
            let r = Double(messages) / rawSeconds
            let o = Double(messages) / ourSeconds
            print(
                "round \(round + 1): mosquitto raw QoS 1 \(Int(r)) msg/s (\(rawCPU)), "
                    + "bridge into mempool \(Int(o)) tx/s (\(ourCPU)); \(messages) messages of \(size) B")
            rawCPUs.append(rawCPU)
            ourCPUs.append(ourCPU)
            rawRates.append(r)
            ourRates.append(o)
            ratios.append(o / r)
            // Empty the mempool and let the bridge publish every final receipt (an inbox delete each), so the
            // next round starts from the same place and is not charged for this one's settling.
            while chain.node.pendingCount > 0 { try chain.produceBlock() }
            let settled = Date().addingTimeInterval(120)
            // ... and until the broker has acknowledged every receipt: otherwise the next raw run shares the
            // broker and the cores with this round's 2 × `messages` receipts still on their way.
            while bridge.stats.finalized < messages * (round + 1) || bridge.stats.publishesUnacknowledged > 0 {
                guard Date() < settled else { throw ValidationError("the bridge did not settle round \(round + 1)") }
                usleep(2_000)
            }
        }
        let rawRate = median(rawRates)
        let ourRate = median(ourRates)
        return [
            "mqtt raw (mosquitto QoS 1 publish, acked, \(size) B\(brokerAutosave ? ", autosave" : "")): \(Int(rawRate)) msg/s "
                + "(\(CPUMeter.PerMessage.median(rawCPUs, by: median)))",
            "mqtt ours (signed transfers through the bridge into the mempool): \(Int(ourRate)) tx/s "
                + "(\(CPUMeter.PerMessage.median(ourCPUs, by: median)))",
            "mqtt/raw ratio: \(String(format: "%.3f", median(ratios))) (median of the \(mqttRounds) rounds' ratios)",
        ]
    }
}

/// CPU time per message spent by the broker and by this process between two laps: on two cores both runs are
/// bound by CPU as much as by the broker. This process's share is split by thread: the publishers (libmosquitto's
/// "mosquitto loop" threads and the main thread that queues the publishes), the bridge's loop thread
/// ("amars-mqtt": reading, inbox, admission, receipts) and the rest, the signature checks on every core.
private struct CPUMeter {
    struct PerMessage: CustomStringConvertible {
        var brokerMicros: Double
        var benchMicros: Double
        var publisherMicros: Double
        var bridgeMicros: Double

        var description: String {
            func us(_ x: Double) -> Int { Int(x.rounded()) }
            let checks = benchMicros - publisherMicros - bridgeMicros
            let split =
                bridgeMicros > 0
                ? " (publishers \(us(publisherMicros)), bridge loop \(us(bridgeMicros)), checks \(us(checks)))"
                : " (publishers \(us(publisherMicros)))"
            return "CPU per message: broker \(us(brokerMicros)) µs, this process \(us(benchMicros)) µs" + split
        }

        static func median(_ all: [PerMessage], by median: ([Double]) -> Double) -> PerMessage {
            PerMessage(
                brokerMicros: median(all.map(\.brokerMicros)), benchMicros: median(all.map(\.benchMicros)),
                publisherMicros: median(all.map(\.publisherMicros)), bridgeMicros: median(all.map(\.bridgeMicros)))
        }
    }

    private struct Reading {
        var broker: Double
        var bench: Double
        var publishers: Double
        var bridge: Double
    }

    let broker: pid_t?
    private var last: Reading

    init(broker: pid_t?) {
        self.broker = broker
        last = Self.read(broker)
    }

    private static func read(_ broker: pid_t?) -> Reading {
        let threads = threadCPUSeconds()
        return Reading(
            broker: broker.flatMap(processCPUSeconds) ?? 0, bench: selfCPUSeconds(),
            publishers: (threads["main"] ?? 0) + (threads["mosquitto loop"] ?? 0), bridge: threads["amars-mqtt"] ?? 0)
    }

    mutating func lap(_ messages: Int) -> PerMessage {
        let now = Self.read(broker)
        defer { last = now }
        let n = Double(messages)
        return PerMessage(
            brokerMicros: (now.broker - last.broker) * 1e6 / n, benchMicros: (now.bench - last.bench) * 1e6 / n,
            publisherMicros: (now.publishers - last.publishers) * 1e6 / n,
            bridgeMicros: (now.bridge - last.bridge) * 1e6 / n)
    }
}

/// A one-validator chain on a temporary SQLite file whose genesis funds `devices` senders.
private final class BenchChain {
    static let chainID: UInt32 = 5

    let dir: URL
    let genesis: Genesis
    let node: ChainNode
    let keys: [PrivateKey]
    let addresses: [Address]
    private var clock: UInt64 = 1_700_000_000_000

    init(devices: Int) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        keys = (0..<devices).map { i in try! PrivateKey(bytes: Bytes32(w0: 8, w1: 0, w2: 0, w3: UInt64(i + 1))) }
        addresses = keys.map { Address(publicKey: $0.xOnlyPublicKey) }
        let validator = try PrivateKey(bytes: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9))
        var allocations: [Genesis.Allocation] = []
        for c in Genesis.Category.allCases {
            let share = c.amount / UInt64(devices)
            for (i, a) in addresses.enumerated() {
                let amount = i == 0 ? c.amount - share * UInt64(devices - 1) : share
                allocations.append(.init(category: c, address: a, amount: amount))
            }
        }
        genesis = Genesis(
            chainID: Self.chainID, chainName: "bench", timestamp: clock, epochLength: 2, initialBaseFee: 1,
            validators: [.init(key: validator.xOnlyPublicKey.bytes, weight: 1)], allocations: allocations, burned: [:])
        var logger = Logger(label: "bench.chain")
        logger.logLevel = .critical
        node = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path),
            validatorKey: validator, logger: logger)
    }

    func produceBlock() throws {
        clock += 1000
        _ = try node.produceBlock(timestamp: clock)
    }

    func close() { try? FileManager.default.removeItem(at: dir) }
}

// MARK: - CoAP load generator

/// NON GETs over a few connected UDP sockets, each keeping `window` requests in flight: every response sends
/// the next request on its socket; a socket that heard nothing for 20 ms is assumed to have lost its window and
/// is refilled. Message ids and tokens are fresh for every request.
private enum UDPLoad {
    struct Result {
        var ok = 0
        var other = 0
        var refills = 0
        var elapsed = 0.0
        var rate: Double { Double(ok) / elapsed }
    }

    static func connectedSocket(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: errno \(errno)") }
        var big: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0 else {
            close(fd)
            throw ValidationError("connect: errno \(errno)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    /// One request, sent again every 50 ms until it is answered or `seconds` pass; the decoded answer.
    ///
    /// Timed by the clock, not by a count of attempts: a request that reaches the port before the server binds it
    /// comes back as an ICMP refusal, which a connected socket reports as a pending error, and `poll` then returns
    /// at once, so a count of attempts ran out in microseconds while a server was still starting.
    static func probe(port: UInt16, request: [UInt8], seconds: Double = 10) throws -> CoAPMessage {
        let fd = try connectedSocket(port: port)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        while DispatchTime.now().uptimeNanoseconds < deadline {
            let sent = DispatchTime.now().uptimeNanoseconds
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 50) > 0 {
                // A refusal reads as -1 (ECONNREFUSED) and clears the error; only an answer returns.
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { return try CoAPMessage.decode(Array(buffer[..<n]), maxMessageSize: 2048) }
            }
            let waited = DispatchTime.now().uptimeNanoseconds - sent
            if waited < 50_000_000 { usleep(UInt32((50_000_000 - waited) / 1_000)) }
        }
        throw ValidationError("no answer on udp port \(port)")
    }

    /// `request` must carry a 4-byte token (bytes 4..<8), which is rewritten with the message id per request.
    static func run(port: UInt16, request: [UInt8], sockets: Int, window: Int, seconds: Double) throws -> Result {
        precondition(request[0] & 0x0F == 4, "the template needs a 4-byte token")
        let fds = try (0..<sockets).map { _ in try connectedSocket(port: port) }
        defer { for fd in fds { close(fd) } }
        var templates = [[UInt8]](repeating: request, count: sockets)
        var counters = (0..<sockets).map { UInt32($0) << 24 | UInt32.random(in: 0..<0x10000) }
        var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var lastHeard = [UInt64](repeating: 0, count: sockets)
        var buffer = [UInt8](repeating: 0, count: 2048)
        var result = Result()

        func sendOne(_ s: Int) {
            counters[s] &+= 1
            let c = counters[s]
            templates[s].withUnsafeMutableBufferPointer { b in
                b[2] = UInt8(truncatingIfNeeded: c >> 8)
                b[3] = UInt8(truncatingIfNeeded: c)
                b[4] = UInt8(truncatingIfNeeded: c >> 24)
                b[5] = UInt8(truncatingIfNeeded: c >> 16)
                b[6] = UInt8(truncatingIfNeeded: c >> 8)
                b[7] = UInt8(truncatingIfNeeded: c)
                _ = send(fds[s], b.baseAddress, b.count, 0)
            }
        }

        let warmup = 0.5
        let start = now()
        let measureFrom = start + UInt64(warmup * 1e9)
        let end = measureFrom + UInt64(seconds * 1e9)
        for s in 0..<sockets {
            for _ in 0..<window { sendOne(s) }
            lastHeard[s] = start
        }
        var t = start
        while t < end {
            let ready = poll(&polls, nfds_t(sockets), 5)
            t = now()
            let measuring = t >= measureFrom
            if ready > 0 {
                for s in 0..<sockets where polls[s].revents & Int16(POLLIN) != 0 {
                    lastHeard[s] = t
                    while true {
                        let n = recv(fds[s], &buffer, buffer.count, 0)
                        if n <= 0 { break }
                        if measuring {
                            if n >= 2 && buffer[1] == CoAPCode.content.rawValue {
                                result.ok += 1
                            } else {
                                result.other += 1
                            }
                        }
                        sendOne(s)
                    }
                }
            }
            for s in 0..<sockets where t - lastHeard[s] > 20_000_000 {
                // The window was lost (or the server stalled): start it again.
                for _ in 0..<window { sendOne(s) }
                lastHeard[s] = t
                if measuring { result.refills += 1 }
            }
        }
        result.elapsed = Double(t - measureFrom) / 1e9
        return result
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}

private func freeUDPPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw ValidationError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard ok else { throw ValidationError("bind: errno \(errno)") }
    return UInt16(bigEndian: address.sin_port)
}

// MARK: - MQTT publisher

/// A plain libmosquitto client (QoS 1, at most ``window`` in flight) whose loop runs on libmosquitto's own
/// thread; it counts PUBACKs.
private final class MqttPublisher: @unchecked Sendable {
    static let window = 100
    private let handle: OpaquePointer
    private let lock = NSLock()
    private var acked = 0
    private var connected = false

    init(port: Int, index: Int) throws {
        _ = mosquitto_lib_init()
        guard let h = mosquitto_new("bench-publisher-\(getpid())-\(index)", true, nil) else {
            throw ValidationError("mosquitto_new failed")
        }
        handle = h
        mosquitto_user_data_set(h, Unmanaged.passUnretained(self).toOpaque())
        // A bounded window, as the broker gives the gateway: libmosquitto walks its whole in-flight list on every
        // PUBACK, so an unbounded one costs this load generator time quadratic in the messages outstanding, on
        // the same two cores the broker and the bridge need. Both runs of a round use the same publishers.
        _ = mosquitto_max_inflight_messages_set(h, UInt32(Self.window))
        mosquitto_connect_callback_set(h) { _, user, rc in
            guard let user, rc == 0 else { return }
            let me = Unmanaged<MqttPublisher>.fromOpaque(user).takeUnretainedValue()
            me.lock.withLock { me.connected = true }
        }
        mosquitto_publish_callback_set(h) { _, user, _ in
            guard let user else { return }
            let me = Unmanaged<MqttPublisher>.fromOpaque(user).takeUnretainedValue()
            me.lock.withLock { me.acked += 1 }
        }
        guard mosquitto_connect(h, "127.0.0.1", Int32(port), 30) == MOSQ_ERR_SUCCESS.rawValue,
            mosquitto_loop_start(h) == MOSQ_ERR_SUCCESS.rawValue
        else { throw ValidationError("publisher cannot connect to port \(port)") }
        let deadline = Date().addingTimeInterval(10)
        while !lock.withLock({ connected }) {
            guard Date() < deadline else { throw ValidationError("publisher got no CONNACK") }
            usleep(2_000)
        }
    }

    private var ackCount: Int { lock.withLock { acked } }

    /// Publishes every message QoS 1, each on its lane's publisher (a lane keeps its messages in order), and
    /// returns the seconds until all were PUBACKed and `done` said yes (polled about every 200 µs; `done` may
    /// throw to abort).
    static func publishAll(
        _ messages: [(topic: String, payload: [UInt8], lane: Int)], on publishers: [MqttPublisher],
        done: () throws -> Bool
    ) throws -> Double {
        let bases = publishers.map(\.ackCount)
        let t0 = DispatchTime.now()
        for m in messages {
            let p = publishers[m.lane % publishers.count]
            let rc = m.payload.withUnsafeBytes {
                mosquitto_publish(p.handle, nil, m.topic, Int32($0.count), $0.baseAddress, 1, false)
            }
            guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw ValidationError("publish: rc \(rc)") }
        }
        let deadline = Date().addingTimeInterval(120)
        while true {
            let acked = zip(publishers, bases).reduce(0) { $0 + $1.0.ackCount - $1.1 }
            if acked >= messages.count, try done() { break }
            guard Date() < deadline else { throw ValidationError("timed out: \(acked) of \(messages.count) acked") }
            usleep(200)
        }
        return Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
    }

    func close() {
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
        mosquitto_destroy(handle)
    }
}
