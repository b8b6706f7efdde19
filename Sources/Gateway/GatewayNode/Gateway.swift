import AmarsCodec
import AmarsCrypto
import Chain
import DeviceGateway
import DeviceProtocol
import Foundation
import Ledger
import Logging
import NIOCore
import NIOPosix
import Network
import ServiceLifecycle

/// One gateway, assembled in one place from its ``NodeConfig``: the chain on SQLite, the HTTP API, CoAP (and
/// DTLS-PSK), the MQTT bridge and optionally its broker, and either the block timer of a network of one
/// (`amarsd run`) or the peer network and consensus driver of a committee member (`amarsd node`).
///
/// ``start()`` opens and binds everything, in an order where each failure has its exit status and stops what
/// was started; ``run()`` then runs the parts as swift-service-lifecycle services until SIGTERM or SIGINT and
/// stops them in reverse order: the doors stop accepting (the MQTT bridge flushes its inbox), the block being
/// committed is finished, the peers are closed, the broker stops, the event loops end.
public final class Gateway: @unchecked Sendable {  // configured by start(), then only read
    public enum Role: Sendable {
        /// This node holds the whole genesis committee and finalizes one block per interval alone.
        case solo
        /// A committee member that finalizes blocks with its peers. `equivocate` is for slashing tests only:
        /// the node double-signs its prepare votes.
        case committee(equivocate: Bool)
    }

    public let config: NodeConfig
    public let role: Role
    private let logger: Logger
    private let signals: ShutdownSignals
    /// One event loop for the HTTP API and the peer network.
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var services: [any Service] = []
    private let doors = Doors()
    /// Exported at `GET /metrics`.
    public let metrics = GatewayMetrics()

    /// Installs the signal handlers at once, so that a SIGTERM sent while the node starts is not lost.
    /// `build` labels `amars_build_info` (the version and the git commit).
    public init(config: NodeConfig, role: Role, logger: Logger, build: [(String, String)] = []) {
        self.config = config
        self.role = role
        self.logger = logger
        self.signals = ShutdownSignals.install()
        metrics.gauge("amars_build_info", build).record(1)
    }

    // MARK: start

    /// Opens the chain, binds every port and starts every part; returns the lines that say where the node
    /// serves. Throws the first failure, with what to fix, after stopping what was already started.
    public func start() async throws(StartupFailure) -> [String] {
        do {
            return try await startParts()
        } catch {
            await stopStarted()
            throw error
        }
    }

    private func startParts() async throws(StartupFailure) -> [String] {
        if case .committee = role, config.p2p == nil { throw Self.missingP2P }
        let (chain, key) = try openChain()
        var consensusStatus: (@Sendable () -> ConsensusStatus)?
        var committee: (network: PeerManager, driver: ConsensusDriver, p2p: NodeConfig.Endpoint)?
        if case .committee(let equivocate) = role, let p2p = config.p2p {
            let parts = try makeCommittee(chain: chain, key: key, p2p: p2p, equivocate: equivocate)
            committee = (parts.network, parts.driver, p2p)
            consensusStatus = { [driver = parts.driver] in driver.status() }
            metrics.collect { [driver = parts.driver] m in Self.collectConsensus(driver.status(), into: m) }
        }
        // After the driver installed the gossip hook: what the journal re-admits reaches the other members too.
        StartupFailure.logReplay(chain.replayJournal(), logger: logger)

        // Controllers post device commands over HTTP; devices fetch them over CoAP: one door behind both.
        let commandDoor = CommandDoor(node: chain)
        // Channel senders post their messages over CoAP, MQTT or HTTP; recipients fetch or receive them.
        let channelDoor = ChannelDoor(node: chain)
        let router = APIRouter(
            node: chain, logger: logger, consensusStatus: consensusStatus, metrics: metrics, commands: commandDoor,
            channels: channelDoor)
        let limits = HTTPServer.Limits(maxConnections: config.httpMaxConnections, workerThreads: config.httpWorkers)
        let server = HTTPServer(
            router: router, host: config.http.host, port: config.http.port, logger: logger, limits: limits, group: group
        )
        let httpPort: Int
        do { httpPort = try server.start() } catch {
            throw StartupFailure(.unavailable, "cannot listen on \(config.http): \(error)")
        }
        services.append(StoppingService("http") { server.shutdown() })
        try startDeviceDoors(chain: chain, commandDoor: commandDoor, channelDoor: channelDoor)

        let base = "http://\(config.http.host):\(httpPort)"
        var lines = [
            "amarsd: chain \(chain.genesis.chainName) (id \(chain.genesis.chainID)), head at height \(chain.head.height)",
            "  API       \(base)/v1/head",
            "  Explorer  \(base)/",
        ]
        if let (network, driver, p2p) = committee {
            lines[0] += ", committee node \(Hex.encode(key.xOnlyPublicKey.bytes.bytes))"
            do { try await network.start() } catch {
                throw StartupFailure(.unavailable, "cannot listen for peers on \(p2p): \(error)")
            }
            await driver.start()
            // Reverse order on shutdown: the driver stops before the network it sends on.
            services.insert(StoppingService("network") { await network.shutdown() }, at: 0)
            services.insert(StoppingService("consensus") { await driver.stop() }, at: 1)
            lines.append("  P2P       \(p2p) (\(config.peers.count) peer(s) configured)")
        } else {
            services.insert(
                BlockTimer(
                    chain: chain, interval: config.timing.blockInterval, doors: doors, metrics: metrics, logger: logger),
                at: 0)
        }
        if let coap = config.coap { lines.append("  CoAP      coap://\(coap.host):\(coap.port)/v1/head") }
        if let coaps = config.coaps, let coap = config.coap {
            lines.append("  CoAPS     coaps://\(coap.host):\(coaps.port)/v1/head (DTLS-PSK)")
        }
        if let mqtt = config.mqtt {
            lines.append(
                "  MQTT      mqtt://\(mqtt) (amars/v1/tx/<address>, amars/v1/receipts/<address>, amars/v1/head)")
        }
        return lines
    }

    private func openChain() throws(StartupFailure) -> (ChainNode, PrivateKey) {
        do {
            let genesis = try Genesis.load(path: config.genesisPath)
            let key = try KeyFile.load(config.keyPath, passphrase: { KeyFile.environmentPassphrase() })
            try StartupFailure.dataDirectory(config.dataDirectory)
            let store = try BlockStore(path: "\(config.dataDirectory)/chain.sqlite")
            let journal = try SubmitJournal(
                path: "\(config.dataDirectory)/submits.sqlite", fsync: config.journalFsync)
            let chain = try ChainNode(
                genesis: genesis, store: store, validatorKey: key, journal: journal, logger: logger)
            chain.requireDeviceCertificates = config.requireDeviceCertificate
            return (chain, key)
        } catch {
            throw StartupFailure.opening(error)
        }
    }

    /// The peer network and the consensus driver. The driver exists before any door opens: it installs the
    /// chain's admit hook (so the first transaction is gossiped too) and the API serves its status.
    private func makeCommittee(chain: ChainNode, key: PrivateKey, p2p: NodeConfig.Endpoint, equivocate: Bool)
        throws(StartupFailure) -> (network: PeerManager, driver: ConsensusDriver)
    {
        // The allowed keys start as the genesis committee plus configured peer keys; the driver keeps them in
        // step with the committee of each epoch.
        var allowed = Set(chain.genesis.validators.map(\.key))
        for peer in config.peers { if let k = peer.key { allowed.insert(k) } }
        var net = NetworkConfiguration(
            host: p2p.host, port: p2p.port,
            handshake: HandshakeParameters(
                chainID: chain.genesis.chainID, genesisHash: chain.genesisHash, allowedKeys: allowed),
            kinds: PeerMessage.frameKinds(),
            peers: config.peers.map { PeerAddress(host: $0.host, port: $0.port, key: $0.key) })
        // A restarted peer should be found again within a couple of block intervals, not after minutes.
        net.backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(2))
        // Peers are authenticated committee members that gossip one frame per transaction and relay each other's:
        // at thousands of transfers a second that is far above the library's default of 1,000 frames/s per peer,
        // and throttling honest delegates into bans would split the committee. Keep the limit as a flood guard.
        net.limits.framesPerSecond = 50_000
        net.limits.frameBurst = 100_000
        let network = PeerManager(configuration: net, nodeKey: key, group: group, logger: logger)
        var settings = ConsensusDriver.Settings(
            timing: config.timing, journalPath: "\(config.dataDirectory)/votes.journal",
            extraAllowedKeys: Set(config.peers.compactMap(\.key)))
        settings.metrics = metrics
        if equivocate {
            settings.equivocate = true
            logger.warning("this node double-signs its prepare votes (tests only)")
        }
        do {
            let driver = try ConsensusDriver(
                chain: chain, network: network, key: key, settings: settings, logger: logger,
                onCommit: { [doors] header in doors.headChanged(header) })
            return (network, driver)
        } catch {
            // The vote journal is a file in the data directory; a missing committee is the stored chain's.
            if case .journal = error { throw StartupFailure(.storage, "\(error)") }
            throw StartupFailure(.chainRefused, "\(error)")
        }
    }

    private func startDeviceDoors(chain: ChainNode, commandDoor: CommandDoor, channelDoor: ChannelDoor)
        throws(StartupFailure)
    {
        if let c = config.coap {
            var dtls: CoAPServer.DTLSPSK?
            if let coaps = config.coaps {
                dtls = CoAPServer.DTLSPSK(port: UInt16(coaps.port), keys: try Self.loadPSKs(coaps.pskPath))
            }
            var limits = CoAPServer.Limits()
            limits.requests = .init(perSecond: config.coapRequestsPerSecond, burst: config.coapBurst)
            limits.submits = .init(perSecond: config.coapSubmitsPerSecond, burst: config.coapSubmitBurst)
            let coap = CoAPServer(
                node: chain, host: c.host, port: UInt16(c.port), logger: logger, limits: limits, dtls: dtls,
                reanchorFile: config.reanchorPath, commands: commandDoor, channels: channelDoor)
            let answers = metrics.counterFamily("amars_coap_requests_total") { (key: CoAPAnswerKey) in
                let detail = key.code.detail < 10 ? "0\(key.code.detail)" : "\(key.code.detail)"
                return [("resource", "\(key.resource.path)"), ("code", "\(key.code.codeClass).\(detail)")]
            }
            coap.onResponse = { answers.increment(CoAPAnswerKey(resource: $0, code: $1)) }
            do { try coap.start() } catch {
                throw StartupFailure(.unavailable, "cannot start CoAP on \(c): \(error)")
            }
            doors.coap = coap
            services.append(StoppingService("coap") { coap.stop() })
        }
        guard let m = config.mqtt else { return }
        var login: MqttCredentials?
        if config.spawnBroker {
            let broker: BrokerProcess
            do {
                broker = try BrokerProcess(
                    directory: URL(fileURLWithPath: "\(config.dataDirectory)/broker"), port: m.port)
                try broker.start()
                login = try broker.gatewayCredentials
            } catch {
                throw StartupFailure(.unavailable, "cannot start mosquitto on port \(m.port): \(error)")
            }
            // First in the list: the broker is the last part to stop, after the bridge flushed into it.
            services.insert(StoppingService("broker") { broker.stop() }, at: 0)
        } else {
            login = try Self.mqttLogin(config)
        }
        if let dir = config.brokerDirectory {
            try followRevocations(chain: chain, denyList: BrokerDenyList(directory: URL(fileURLWithPath: dir)))
        }
        let clientID: String
        if let id = config.mqttClientID {
            clientID = id
        } else {
            do { clientID = try MqttClientID.persistent(in: config.dataDirectory) } catch {
                throw StartupFailure(.storage, "\(error)")
            }
        }
        let bridge: MqttBridge
        do {
            bridge = try MqttBridge(
                node: chain,
                configuration: .init(
                    host: m.host, port: m.port, clientID: clientID,
                    inboxPath: "\(config.dataDirectory)/mqtt-inbox.sqlite", credentials: login),
                channels: channelDoor, logger: logger)
            try bridge.start()
        } catch {
            throw StartupFailure(.unavailable, "cannot start the MQTT bridge to \(m): \(error)")
        }
        doors.mqtt = bridge
        metrics.collect { [weak bridge] m in bridge.map { Self.collectMqtt($0, into: m) } }
        services.append(StoppingService("mqtt") { bridge.stop() })
    }

    /// Denies at the broker the devices the chain revoked, now and at each new head.
    private func followRevocations(chain: ChainNode, denyList: BrokerDenyList) throws(StartupFailure) {
        let revocations = BrokerRevocations(chain: chain, denyList: denyList, logger: logger)
        do { try revocations.sync() } catch {
            throw StartupFailure(.storage, "cannot write the broker's deny list \(denyList.path): \(error)")
        }
        doors.revocations = revocations
    }

    /// Stops what a failed start had started, newest first.
    private func stopStarted() async {
        for service in services.reversed() { await (service as? StoppingService)?.stop() }
        services = []
        try? await group.shutdownGracefully()
    }

    // MARK: run

    /// Runs until SIGTERM or SIGINT, or until a part fails; then stops every part in reverse order of start.
    /// A second signal exits at once with status 1.
    public func run() async throws {
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map {
                    .init(
                        service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                logger: logger))
        signals.onSignal { Task { await serviceGroup.triggerGracefulShutdown() } }
        // The event loop ends last: connections the parts left open (HTTP clients, peers) close with it.
        do { try await serviceGroup.run() } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    // MARK: metrics a part keeps itself, mirrored at each export

    private static func collectConsensus(_ status: ConsensusStatus, into m: GatewayMetrics) {
        m.gauge("amars_consensus_height").record(Int64(status.height))
        m.gauge("amars_consensus_round").record(Int64(status.round))
        m.gauge("amars_peers_connected").record(Int64(status.connectedPeers.count))
        for (reason, count) in status.consensusDrops {
            m.mirror("amars_consensus_messages_dropped_total", [("reason", reason)], total: Int(count))
        }
        let n = status.network
        m.mirror("amars_peer_bans_total", total: n.bans)
        m.mirror("amars_peer_handshakes_total", total: n.handshakesCompleted)
        for (reason, count) in n.disconnects {
            m.mirror("amars_peer_disconnects_total", [("reason", "\(reason)")], total: count)
        }
        for (reason, count) in n.drops {
            m.mirror("amars_peer_frames_dropped_total", [("reason", reason.rawValue)], total: count)
        }
    }

    private static func collectMqtt(_ bridge: MqttBridge, into m: GatewayMetrics) {
        let stats = bridge.stats
        m.gauge("amars_mqtt_connected").record(bridge.isReady ? 1 : 0)
        m.mirror("amars_mqtt_connects_total", total: stats.connects)
        m.mirror("amars_mqtt_submits_accepted_total", total: stats.accepted)
        m.mirror("amars_mqtt_receipts_published_total", total: stats.finalized)
        m.gauge("amars_mqtt_publishes_unacknowledged").record(stats.publishesUnacknowledged)
        for (code, count) in stats.refused {
            m.mirror("amars_mqtt_submits_refused_total", [("code", code)], total: count)
        }
        for (reason, count) in stats.dropped {
            m.mirror("amars_mqtt_messages_dropped_total", [("reason", "\(reason)")], total: count)
        }
    }

    // MARK: checks shared with `--check`

    /// Everything ``start()`` reads before it opens a port, without creating or opening the store: lines that
    /// summarise the node, or the failure start-up would meet.
    public static func check(_ config: NodeConfig, role: Role) throws(StartupFailure) -> [String] {
        if case .committee = role, config.p2p == nil { throw missingP2P }
        let genesis: Genesis
        let key: PrivateKey
        do {
            genesis = try Genesis.load(path: config.genesisPath)
            key = try KeyFile.load(config.keyPath, passphrase: { KeyFile.environmentPassphrase() })
        } catch {
            throw StartupFailure.opening(error)
        }
        _ = try mqttLogin(config)
        if let coaps = config.coaps { _ = try loadPSKs(coaps.pskPath) }
        try StartupFailure.dataDirectory(config.dataDirectory, create: false)
        let member = genesis.validators.contains { $0.key == key.xOnlyPublicKey.bytes }
        var lines = [
            "  chain     \(genesis.chainName) (id \(genesis.chainID)), epoch length \(genesis.epochLength)",
            "  key       \(Hex.encode(key.xOnlyPublicKey.bytes.bytes))\(member ? " (a genesis validator)" : "")",
            "  data      \(config.dataDirectory)\(config.journalFsync ? " (submit journal fsynced)" : "")",
        ]
        if let p2p = config.p2p { lines.append("  p2p       \(p2p), \(config.peers.count) peer(s)") }
        lines.append("  http      \(config.http)")
        if let coap = config.coap {
            lines.append("  coap      \(coap)\(config.coaps.map { ", DTLS-PSK on \($0.port)" } ?? "")")
        }
        if let mqtt = config.mqtt {
            lines.append("  mqtt      \(mqtt)\(config.spawnBroker ? " (broker started here)" : "")")
        }
        return lines
    }

    static let missingP2P = StartupFailure(.configuration, "missing 'p2p' (host and port to listen on)")

    /// The gateway's broker login the config names, if any.
    static func mqttLogin(_ config: NodeConfig) throws(StartupFailure) -> MqttCredentials? {
        guard let path = config.mqttCredentialsPath else { return nil }
        do { return try MqttCredentials.load(path: path) } catch {
            throw StartupFailure(.configuration, "mqtt_credentials: \(error)")
        }
    }

    /// Reads 'IDENTITY HEXKEY' lines; refuses the whole file on any bad line rather than running half-keyed.
    static func loadPSKs(_ path: String) throws(StartupFailure) -> [String: [UInt8]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw StartupFailure(.configuration, "cannot read the PSK file \(path)")
        }
        var keys: [String: [UInt8]] = [:]
        for (n, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            guard fields.count == 2, let key = try? Hex.decode(String(fields[1]), maxBytes: 64), !key.isEmpty else {
                throw StartupFailure(.configuration, "the PSK file \(path), line \(n + 1), must be 'IDENTITY HEXKEY'")
            }
            keys[String(fields[0])] = key
        }
        return keys
    }
}

/// A CoAP answer as `amars_coap_requests_total` counts it.
struct CoAPAnswerKey: Hashable, Sendable {
    var resource: DeviceResource
    var code: CoAPCode
}

/// The device doors a new head is announced to. `@unchecked Sendable`: set during start, before any block.
final class Doors: @unchecked Sendable {
    var coap: CoAPServer?
    var mqtt: MqttBridge?
    var revocations: BrokerRevocations?

    func headChanged(_ header: BlockHeader) {
        coap?.headChanged()
        mqtt?.headChanged(header)
        revocations?.headChanged()
    }
}

/// A part started by ``Gateway/start()``: it runs until the group shuts down, then stops.
struct StoppingService: Service, CustomStringConvertible {
    let description: String
    let stop: @Sendable () async -> Void

    init(_ name: String, _ stop: @escaping @Sendable () async -> Void) {
        self.description = name
        self.stop = stop
    }

    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }
}

/// The block timer of a network of one: a block per interval, timestamps from the wall clock (informative
/// only). A shutdown lets the block being produced finish; every block is committed atomically.
struct BlockTimer: Service, CustomStringConvertible {
    let chain: ChainNode
    let interval: UInt64
    let doors: Doors
    let metrics: GatewayMetrics
    let logger: Logger
    var description: String { "blocks" }

    func run() async throws {
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isShuttingDownGracefully {
            next += .milliseconds(Int64(interval))
            if next > clock.now {
                // Wakes early on shutdown: the sleep is cancelled, the loop condition ends it.
                let deadline = next
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(until: deadline, clock: clock) }
                } catch {
                    break
                }
            } else {
                next = clock.now
            }
            produce()
        }
    }

    private func produce() {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        do {
            let clock = ContinuousClock()
            let started = clock.now
            let block = try chain.produceBlock(timestamp: millis)
            metrics.timer("amars_block_commit_duration_seconds").recordInterval(since: started, now: clock.now)
            let h = block.block.header
            doors.headChanged(h)
            // Empty blocks are routine; only blocks that carry something are worth a line by default.
            logger.log(
                level: block.block.transactions.isEmpty ? .debug : .info, "block \(h.height)",
                metadata: [
                    "txs": "\(block.block.transactions.count)", "baseFee": "\(h.baseFee)",
                    "pending": "\(chain.pendingCount)",
                ])
        } catch {
            logger.error("block production failed: \(error)")
        }
    }
}
