import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceGateway
import Foundation
import GatewayNode
import Ledger
import Logging
import NIOPosix
import Network

/// `amarsd node --config FILE`: one delegate of a multi-gateway committee.
///
/// Unlike `run` (a single node that is the whole committee), this node finalizes blocks only together with the
/// other committee members, over the authenticated peer network: Roll-DPoS rounds with instant BFT finality.
/// Everything the node needs is in one YAML file (see ``NodeConfig``), because a delegate's setup is a set of
/// peers with their keys, ports and timeouts that an operator writes once.
struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a committee gateway that finalizes blocks with its peers (multi-node Roll-DPoS).",
        discussion: """
            The YAML file names the data directory (chain.sqlite, votes.journal), the genesis file, this node's
            validator key (also its network identity), where to listen (p2p, http, optionally coap and mqtt),
            the peers to dial ({host, port, key}) and optionally consensus timings in milliseconds.
            scripts/devnet.sh writes four such files for one machine; packaging/node.example.yaml is a
            commented production file. SIGINT or SIGTERM stops the node in order and exits 0 (a second signal
            exits at once with 1).

            Example:  amarsd node --config /etc/amars/node.yaml --check
            """)

    @Option(help: "Node configuration file (YAML).")
    var config: String

    @Flag(
        help: """
            Check the configuration and what it names (genesis, key, data directory, MQTT credentials), print a \
            summary and exit: 0 if the node would start, else the start-up status. Opens no port and writes nothing.
            """)
    var check = false

    func run() throws { try StartupFailure.reporting("amarsd") { check ? try checkOnly() : try serve() } }

    /// `--check`: everything `serve()` reads before it opens a port, without creating or opening the store.
    private func checkOnly() throws {
        let cfg: NodeConfig
        do { cfg = try NodeConfig.load(path: config) } catch { throw StartupFailure(.configuration, "\(error)") }
        let genesis: Genesis
        let key: PrivateKey
        do {
            genesis = try Genesis.load(path: cfg.genesisPath)
            key = try KeyFile.load(cfg.keyPath)
        } catch {
            throw StartupFailure.opening(error)
        }
        _ = try Self.mqttLogin(cfg)
        try StartupFailure.dataDirectory(cfg.dataDirectory, create: false)
        let member = genesis.validators.contains { $0.key == key.xOnlyPublicKey.bytes }
        var lines = [
            "amarsd: \(config) is valid",
            "  chain     \(genesis.chainName) (id \(genesis.chainID)), epoch length \(genesis.epochLength)",
            "  key       \(Hex.encode(key.xOnlyPublicKey.bytes.bytes))\(member ? " (a genesis validator)" : "")",
            "  data      \(cfg.dataDirectory)\(cfg.journalFsync ? " (submit journal fsynced)" : "")",
            "  p2p       \(cfg.p2p), \(cfg.peers.count) peer(s)",
            "  http      \(cfg.http)",
        ]
        if let coap = cfg.coap { lines.append("  coap      \(coap)") }
        if let mqtt = cfg.mqtt { lines.append("  mqtt      \(mqtt)") }
        print(lines.joined(separator: "\n"))
    }

    /// The gateway's broker login the config names, if any (read at start and by `--check`).
    fileprivate static func mqttLogin(_ cfg: NodeConfig) throws -> MqttCredentials? {
        guard let path = cfg.mqttCredentialsPath else { return nil }
        do { return try MqttCredentials.load(path: path) } catch {
            throw StartupFailure(.configuration, "mqtt_credentials: \(error)")
        }
    }

    private func serve() throws {
        let cfg: NodeConfig
        do { cfg = try NodeConfig.load(path: config) } catch { throw StartupFailure(.configuration, "\(error)") }
        let level = Logger.Level(rawValue: cfg.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "amarsd")
        let chain: ChainNode
        let key: PrivateKey
        do {
            let genesis = try Genesis.load(path: cfg.genesisPath)
            key = try KeyFile.load(cfg.keyPath)
            try StartupFailure.dataDirectory(cfg.dataDirectory)
            let store = try BlockStore(path: "\(cfg.dataDirectory)/chain.sqlite")
            let journal = try SubmitJournal(path: "\(cfg.dataDirectory)/submits.sqlite", fsync: cfg.journalFsync)
            chain = try ChainNode(genesis: genesis, store: store, validatorKey: key, journal: journal, logger: logger)
        } catch {
            throw StartupFailure.opening(error)
        }

        // Network: the allowed keys start as the genesis committee plus configured peer keys; the driver keeps
        // them in step with the committee of each epoch.
        var allowed = Set(chain.genesis.validators.map(\.key))
        for peer in cfg.peers { if let k = peer.key { allowed.insert(k) } }
        var net = NetworkConfiguration(
            host: cfg.p2p.host, port: cfg.p2p.port,
            handshake: HandshakeParameters(
                chainID: chain.genesis.chainID, genesisHash: chain.genesisHash, allowedKeys: allowed),
            kinds: PeerMessage.frameKinds(),
            peers: cfg.peers.map { PeerAddress(host: $0.host, port: $0.port, key: $0.key) })
        // A restarted peer should be found again within a couple of block intervals, not after minutes.
        net.backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(2))
        // Peers are authenticated committee members that gossip one frame per transaction and relay each other's:
        // at thousands of transfers a second that is far above the library's default of 1,000 frames/s per peer,
        // and throttling honest delegates into bans would split the committee. Keep the limit as a flood guard.
        net.limits.framesPerSecond = 50_000
        net.limits.frameBurst = 100_000
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let network = PeerManager(configuration: net, nodeKey: key, group: group, logger: logger)
        var settings = ConsensusDriver.Settings(
            timing: cfg.timing, journalPath: "\(cfg.dataDirectory)/votes.journal",
            extraAllowedKeys: Set(cfg.peers.compactMap(\.key)))
        // Tests of slashing only: this node double-signs every prepare vote (and will be slashed for it).
        if ProcessInfo.processInfo.environment["AMARSD_TEST_EQUIVOCATE"] == "1" {
            settings.equivocate = true
            logger.warning("AMARSD_TEST_EQUIVOCATE=1: this node double-signs its prepare votes (tests only)")
        }
        // The driver exists before any door opens: it installs the chain's admit hook (so the first transaction
        // is gossiped too) and the API serves its status. Nothing runs until `start()`.
        let doors = NodeDoors()
        let driver: ConsensusDriver
        do {
            driver = try ConsensusDriver(
                chain: chain, network: network, key: key, settings: settings, logger: logger,
                onCommit: { header in doors.headChanged(header) })
        } catch {
            // The vote journal is a file in the data directory; a missing committee is the stored chain's.
            if case .journal = error { throw StartupFailure(.storage, "\(error)") }
            throw StartupFailure(.chainRefused, "\(error)")
        }

        // After the driver installed the gossip hook: what the journal re-admits reaches the other members too.
        StartupFailure.logReplay(chain.replayJournal(), logger: logger)

        let router = APIRouter(node: chain, logger: logger, consensusStatus: { driver.status() })
        let server = HTTPServer(router: router, host: cfg.http.host, port: cfg.http.port, logger: logger)
        let httpPort: Int
        do { httpPort = try server.start() } catch {
            throw StartupFailure(.unavailable, "cannot listen on \(cfg.http): \(error)")
        }
        do { try doors.start(cfg: cfg, chain: chain, logger: logger) } catch {
            server.shutdown()
            throw error
        }

        let head = chain.head
        let base = "http://\(cfg.http.host):\(httpPort)"
        let p2p = cfg.p2p
        let chainLine =
            "amarsd: chain \(chain.genesis.chainName) (id \(chain.genesis.chainID)), head at height \(head.height), "
            + "committee node \(Hex.encode(key.xOnlyPublicKey.bytes.bytes))"
        let coapLine = cfg.coap.map { "  CoAP      coap://\($0.host):\($0.port)/v1/head" }
        let mqttLine = cfg.mqtt.map { "  MQTT      mqtt://\($0) (amars/v1/tx/<address>, amars/v1/head)" }
        // Armed before anything says the node is up (see `amarsd run`).
        Self.installSignalHandlers { done in
            Task {
                // Every block is committed atomically and every vote journaled before it left: stopping at any
                // point loses nothing.
                await driver.stop()
                await network.shutdown()
                server.shutdown()
                doors.stop()
                try? await group.shutdownGracefully()
                done()
            }
        }
        let peerCount = cfg.peers.count
        Task {
            do {
                try await network.start()
            } catch {
                print("amarsd: cannot listen for peers on \(p2p): \(error)")
                fflush(nil)
                Foundation.exit(1)
            }
            await driver.start()
            var lines = [
                chainLine,
                "  API       \(base)/v1/head",
                "  Explorer  \(base)/",
                "  P2P       \(p2p.host):\(p2p.port) (\(peerCount) peer(s) configured)",
            ]
            if let coapLine { lines.append(coapLine) }
            if let mqttLine { lines.append(mqttLine) }
            print(lines.joined(separator: "\n"))
            fflush(nil)
        }
        dispatchMain()
    }

    /// SIGINT/SIGTERM stop the node in order; a second signal exits at once.
    private static func installSignalHandlers(_ stop: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        let stopping = StopFlag()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
            source.setEventHandler {
                if stopping.isSet { Foundation.exit(1) }
                stopping.set()
                stop {
                    print("amarsd: stopped")
                    fflush(nil)
                    Foundation.exit(0)
                }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// Touched only on the main queue (signal handlers run there).
    nonisolated(unsafe) private static var signalSources: [any DispatchSourceSignal] = []
}

/// Set once on the main queue by the signal handler; read there too.
private final class StopFlag: @unchecked Sendable {
    private var value = false
    var isSet: Bool { value }
    func set() { value = true }
}

/// The device-facing services of a committee node: CoAP and the MQTT bridge, each optional.
/// `@unchecked Sendable`: set once in `start` before any other thread sees the object, then only read.
private final class NodeDoors: @unchecked Sendable {
    private var coap: CoAPServer?
    private var mqtt: MqttBridge?

    func start(cfg: NodeConfig, chain: ChainNode, logger: Logger) throws {
        if let c = cfg.coap {
            let server = CoAPServer(
                node: chain, host: c.host, port: UInt16(c.port), logger: logger, reanchorFile: cfg.reanchorPath)
            do { try server.start() } catch {
                throw StartupFailure(.unavailable, "cannot start CoAP on \(c): \(error)")
            }
            coap = server
        }
        if let m = cfg.mqtt {
            let login: MqttCredentials?
            do { login = try NodeCommand.mqttLogin(cfg) } catch {
                stop()
                throw error
            }
            let clientID: String
            do { clientID = try MqttClientID.persistent(in: cfg.dataDirectory) } catch {
                stop()
                throw StartupFailure(.storage, "\(error)")
            }
            let bridge = try MqttBridge(
                node: chain,
                configuration: .init(
                    host: m.host, port: m.port, clientID: clientID,
                    inboxPath: "\(cfg.dataDirectory)/mqtt-inbox.sqlite", credentials: login),
                logger: logger)
            do { try bridge.start() } catch {
                stop()
                throw StartupFailure(.unavailable, "cannot start the MQTT bridge to \(m): \(error)")
            }
            mqtt = bridge
        }
    }

    func headChanged(_ header: BlockHeader) {
        coap?.headChanged()
        mqtt?.headChanged(header)
    }

    func stop() {
        coap?.stop()
        mqtt?.stop()
    }
}
