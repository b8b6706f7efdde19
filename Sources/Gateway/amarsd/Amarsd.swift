import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceGateway
import Foundation
import GatewayNode
import Ledger
import Logging
import BuildInfo

@main
struct Amarsd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amarsd",
        abstract: "Amarscity gateway node: full chain on SQLite, HTTP JSON API and explorer.",
        discussion: """
            amarsd node --config FILE runs a gateway of a multi-node network (scripts/devnet.sh writes four
            configs); amarsd run --data DIR is the single-node dev mode, where this node holds the only validator
            key of the genesis committee and finalizes one block per --block-interval. Stop either at any moment
            (even with kill -9): it reopens at its last committed block.

            Quick start (does all of this for you):  make devnet
            By hand:
              amars genesis new --out data/genesis.json --keys data/keys
              amarsd run --data data

            A failure to start prints one line on stderr and exits with:
              78  configuration: a flag, the node config, the genesis, a key, PSK or credentials file
              74  storage: the data directory or its SQLite file cannot be opened or written
              69  unavailable: a port is taken, the broker or a door will not start
              65  chain refused: the stored chain is another genesis's, or its state does not match its head
            """,
        version: BuildInfo.description,
        subcommands: [Run.self, NodeCommand.self, Bridge.self, Broker.self],
        defaultSubcommand: Run.self
    )
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the node (the default subcommand).")

    @Option(help: "Data directory: holds chain.sqlite (created on first run).")
    var data: String = "data"

    @Option(help: "Genesis file (default: <data>/genesis.json).")
    var genesis: String?

    @Option(help: "Validator key file, one line of hex (default: <data>/keys/validator.key).")
    var validatorKey: String?

    @Option(help: "Address the HTTP API listens on.")
    var httpHost: String = "127.0.0.1"

    @Option(help: "Port of the HTTP API (0 picks a free port).")
    var httpPort: Int = 8645

    @Option(help: "Milliseconds between blocks.")
    var blockInterval: Int = 1000

    @Flag(
        help: """
            Flush every acknowledged submit to the disk before answering (survives a power cut); by default it \
            reaches the OS first (survives a crash of amarsd).
            """)
    var journalFsync = false

    @Option(help: "Address of the CoAP server for devices (UDP).")
    var coapHost: String = "127.0.0.1"

    @Option(help: "Port of the CoAP server for devices.")
    var coapPort: Int = 5683

    @Flag(help: "Do not start the CoAP server.")
    var noCoap = false

    @Option(help: "Port of the DTLS-PSK CoAP server (needs --psk-file).")
    var coapsPort: Int = 5684

    @Option(help: "Per-device pre-shared keys for CoAP over DTLS: one 'IDENTITY HEXKEY' per line.")
    var pskFile: String?

    @Option(
        help: """
            The operator's re-anchor statement (amars device reanchor --out FILE), served to devices whose trust \
            expired at CoAP v1/reanchor; read at each request.
            """)
    var reanchor: String?

    @Option(help: "MQTT broker for devices, HOST:PORT; the bridge subscribes to amars/v1/tx/+ there.")
    var mqtt: String?

    @Flag(help: "Start a mosquitto broker for the MQTT bridge (data in <data>/broker) on --mqtt's port.")
    var spawnBroker = false

    @Option(help: "The gateway's login at a broker started elsewhere: a file with one line 'USERNAME PASSWORD'.")
    var mqttCredentials: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0...65535") }
        guard (10...600_000).contains(blockInterval) else {
            throw ValidationError("--block-interval must be between 10 and 600000 ms")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard (0...65535).contains(coapPort), (1...65535).contains(coapsPort) else {
            throw ValidationError("--coap-port and --coaps-port must be valid UDP ports")
        }
        if let mqtt, Self.hostPort(mqtt) == nil { throw ValidationError("--mqtt takes HOST:PORT, e.g. 127.0.0.1:1883") }
        if spawnBroker && mqtt == nil { throw ValidationError("--spawn-broker needs --mqtt HOST:PORT") }
        if spawnBroker && mqttCredentials != nil {
            throw ValidationError("--spawn-broker makes the gateway's login itself: drop --mqtt-credentials")
        }
    }

    static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port), colon > text.startIndex
        else { return nil }
        return (String(text[..<colon]), port)
    }

    /// Reads 'IDENTITY HEXKEY' lines; refuses the whole file on any bad line rather than running half-keyed.
    static func loadPSKs(_ path: String) throws -> [String: [UInt8]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw StartupFailure(.configuration, "cannot read --psk-file \(path)")
        }
        var keys: [String: [UInt8]] = [:]
        for (n, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            guard fields.count == 2, let key = try? Hex.decode(String(fields[1]), maxBytes: 64), !key.isEmpty else {
                throw StartupFailure(.configuration, "--psk-file line \(n + 1) must be 'IDENTITY HEXKEY'")
            }
            keys[String(fields[0])] = key
        }
        return keys
    }

    func run() throws { try StartupFailure.reporting("amarsd") { try serve() } }

    private func serve() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "amarsd")
        let genesisPath = genesis ?? "\(data)/genesis.json"
        let keyPath = validatorKey ?? "\(data)/keys/validator.key"
        let node: ChainNode
        do {
            let genesis = try Genesis.load(path: genesisPath)
            let key = try KeyFile.load(keyPath)
            try StartupFailure.dataDirectory(data)
            let store = try BlockStore(path: "\(data)/chain.sqlite")
            let journal = try SubmitJournal(path: "\(data)/submits.sqlite", fsync: journalFsync)
            node = try ChainNode(genesis: genesis, store: store, validatorKey: key, journal: journal, logger: logger)
        } catch {
            throw StartupFailure.opening(error)
        }
        StartupFailure.logReplay(node.replayJournal(), logger: logger)
        let server = HTTPServer(
            router: APIRouter(node: node, logger: logger), host: httpHost, port: httpPort, logger: logger)
        let port: Int
        do { port = try server.start() } catch {
            throw StartupFailure(.unavailable, "cannot listen on \(httpHost):\(httpPort): \(error)")
        }
        let doors: DeviceDoors
        do { doors = try startDeviceDoors(node: node, logger: logger) } catch {
            server.shutdown()
            throw error
        }
        let head = node.head
        let base = "http://\(httpHost):\(port)"
        var lines = [
            "amarsd: chain \(node.genesis.chainName) (id \(node.genesis.chainID)), head at height \(head.height)",
            "  API       \(base)/v1/head",
            "  Explorer  \(base)/",
        ]
        if doors.coap != nil { lines.append("  CoAP      coap://\(coapHost):\(coapPort)/v1/head") }
        if doors.coapsPort != nil { lines.append("  CoAPS     coaps://\(coapHost):\(coapsPort)/v1/head (DTLS-PSK)") }
        if let mqtt {
            lines.append(
                "  MQTT      mqtt://\(mqtt) (amars/v1/tx/<address>, amars/v1/receipts/<address>, amars/v1/head)")
        }
        // Before the lines that tell a supervisor the node is up: a SIGTERM sent as soon as it reads them must
        // find the handlers armed (between `signal(SIG_IGN)` and an armed source it would be lost).
        installSignalHandlers(server: server, doors: doors)
        print(lines.joined(separator: "\n"))
        fflush(nil)
        produceBlocks(node: node, doors: doors, logger: logger)
    }

    /// The device-facing services of this gateway, stopped together.
    final class DeviceDoors: @unchecked Sendable {  // set once at start, then only read
        var coap: CoAPServer?
        var coapsPort: Int?
        var mqtt: MqttBridge?
        var broker: BrokerProcess?

        func headChanged(_ header: Ledger.BlockHeader) {
            coap?.headChanged()
            mqtt?.headChanged(header)
        }

        func stop() {
            coap?.stop()
            mqtt?.stop()
            broker?.stop()
        }
    }

    private func startDeviceDoors(node: ChainNode, logger: Logger) throws -> DeviceDoors {
        let doors = DeviceDoors()
        if !noCoap {
            let dtls = try pskFile.map { CoAPServer.DTLSPSK(port: UInt16(coapsPort), keys: try Self.loadPSKs($0)) }
            let coap = CoAPServer(
                node: node, host: coapHost, port: UInt16(coapPort), logger: logger, dtls: dtls, reanchorFile: reanchor)
            do { try coap.start() } catch {
                throw StartupFailure(
                    .unavailable, "cannot start CoAP on \(coapHost):\(coapPort): \(error) (--no-coap to skip)")
            }
            doors.coap = coap
            doors.coapsPort = dtls == nil ? nil : coapsPort
        }
        if let mqtt, let (host, port) = Self.hostPort(mqtt) {
            var login: MqttCredentials?
            if spawnBroker {
                let broker = try BrokerProcess(directory: URL(fileURLWithPath: "\(data)/broker"), port: port)
                do {
                    try broker.start()
                    login = try broker.gatewayCredentials
                } catch {
                    doors.stop()
                    throw StartupFailure(.unavailable, "cannot start mosquitto on port \(port): \(error)")
                }
                doors.broker = broker
            } else if let mqttCredentials {
                do { login = try MqttCredentials.load(path: mqttCredentials) } catch {
                    doors.stop()
                    throw StartupFailure(.configuration, "--mqtt-credentials: \(error)")
                }
            }
            let clientID: String
            do { clientID = try MqttClientID.persistent(in: data) } catch {
                doors.stop()
                throw StartupFailure(.storage, "\(error)")
            }
            let bridge = try MqttBridge(
                node: node,
                configuration: .init(
                    host: host, port: port, clientID: clientID, inboxPath: "\(data)/mqtt-inbox.sqlite",
                    credentials: login),
                logger: logger)
            do { try bridge.start() } catch {
                doors.stop()
                throw StartupFailure(.unavailable, "cannot start the MQTT bridge to \(mqtt): \(error)")
            }
            doors.mqtt = bridge
        }
        return doors
    }

    /// The dev-mode block timer: one block per interval, timestamps from the wall clock (informative only).
    private func produceBlocks(node: ChainNode, doors: DeviceDoors, logger: Logger) -> Never {
        var next = DispatchTime.now().uptimeNanoseconds
        while true {
            next += UInt64(blockInterval) * 1_000_000
            let now = DispatchTime.now().uptimeNanoseconds
            if next > now { usleep(UInt32(min((next - now) / 1000, UInt64(UInt32.max)))) } else { next = now }
            let millis = UInt64(Date().timeIntervalSince1970 * 1000)
            do {
                let block = try node.produceBlock(timestamp: millis)
                let h = block.block.header
                doors.headChanged(h)
                // Empty blocks are routine; only blocks that carry something are worth a line by default.
                logger.log(
                    level: block.block.transactions.isEmpty ? .debug : .info,
                    "block \(h.height)",
                    metadata: [
                        "txs": "\(block.block.transactions.count)", "baseFee": "\(h.baseFee)",
                        "pending": "\(node.pendingCount)",
                    ])
            } catch {
                logger.error("block production failed: \(error)")
            }
        }
    }

    private func installSignalHandlers(server: HTTPServer, doors: DeviceDoors) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                // Every block is committed atomically, so stopping between blocks loses nothing.
                server.shutdown()
                doors.stop()
                print("amarsd: stopped")
                Foundation.exit(0)
            }
            source.resume()
            Self.signalSources.append(source)
        }
    }

    nonisolated(unsafe) static var signalSources: [any DispatchSourceSignal] = []
}
