import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import GatewayNode
import Logging

@main
struct Amarsd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amarsd",
        abstract: "Amarscity gateway node: full chain on SQLite, HTTP JSON API and explorer.",
        discussion: """
            Today amarsd runs a single-node chain: this node holds the only validator key of the genesis
            committee and produces (and finalizes) one block per --block-interval. Its data (SQLite file) lives
            in --data; stop it at any moment (even with kill -9) and it reopens at its last committed block.

            Quick start (does all of this for you):  make devnet
            By hand:
              amars genesis new --out data/genesis.json --keys data/keys
              amarsd run --data data
            """,
        subcommands: [Run.self],
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

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0...65535") }
        guard (10...600_000).contains(blockInterval) else {
            throw ValidationError("--block-interval must be between 10 and 600000 ms")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() throws {
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
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let store = try BlockStore(path: "\(data)/chain.sqlite")
            node = try ChainNode(genesis: genesis, store: store, validatorKey: key, logger: logger)
        } catch {
            throw CleanExit.message("amarsd: \(error)")
        }
        let server = HTTPServer(
            router: APIRouter(node: node, logger: logger), host: httpHost, port: httpPort, logger: logger)
        let port: Int
        do { port = try server.start() } catch {
            throw CleanExit.message("amarsd: cannot listen on \(httpHost):\(httpPort): \(error)")
        }
        let head = node.head
        let base = "http://\(httpHost):\(port)"
        print(
            """
            amarsd: chain \(node.genesis.chainName) (id \(node.genesis.chainID)), head at height \(head.height)
              API       \(base)/v1/head
              Explorer  \(base)/
            """)
        fflush(nil)
        installSignalHandlers(server: server)
        produceBlocks(node: node, logger: logger)
    }

    /// The dev-mode block timer: one block per interval, timestamps from the wall clock (informative only).
    private func produceBlocks(node: ChainNode, logger: Logger) -> Never {
        var next = DispatchTime.now().uptimeNanoseconds
        while true {
            next += UInt64(blockInterval) * 1_000_000
            let now = DispatchTime.now().uptimeNanoseconds
            if next > now { usleep(UInt32(min((next - now) / 1000, UInt64(UInt32.max)))) } else { next = now }
            let millis = UInt64(Date().timeIntervalSince1970 * 1000)
            do {
                let block = try node.produceBlock(timestamp: millis)
                let h = block.block.header
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

    private func installSignalHandlers(server: HTTPServer) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                // Every block is committed atomically, so stopping between blocks loses nothing.
                server.shutdown()
                print("amarsd: stopped")
                Foundation.exit(0)
            }
            source.resume()
            Self.signalSources.append(source)
        }
    }

    nonisolated(unsafe) static var signalSources: [any DispatchSourceSignal] = []
}
