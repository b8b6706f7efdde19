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
struct Amarsd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amarsd",
        abstract: "Amarscity gateway node: full chain on SQLite, HTTP JSON API and explorer.",
        discussion: """
            amarsd node --config FILE runs a gateway of a multi-node network (scripts/devnet.sh writes four
            configs); amarsd run --data DIR is the single-node dev mode, where this node holds the only validator
            key of the genesis committee and finalizes one block per --block-interval. Both read one YAML schema
            (packaging/node.example.yaml) and take the same flags, which override it. SIGTERM or SIGINT stops
            either in order and exits 0; a second signal exits at once with 1. Even a kill -9 loses nothing: the
            node reopens at its last committed block and re-admits every acknowledged submit.

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

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a network of one: this node holds the genesis committee's key (the default subcommand).",
        discussion: """
            Without --config the node starts from: data directory 'data', HTTP on 127.0.0.1:8645, CoAP on \
            127.0.0.1:5683. With --config it reads the same YAML schema as 'amarsd node' (p2p and peers are not \
            used); a flag overrides the file's value.
            """)

    @OptionGroup var options: GatewayOptions

    func validate() throws { try options.validate() }

    func run() async throws {
        try await StartupFailure.reporting("amarsd") {
            var config = NodeConfig(dataDirectory: "data")
            if let file = options.config {
                do { config = try NodeConfig.load(path: file) } catch {
                    throw StartupFailure(.configuration, "\(error)")
                }
            } else {
                config.coap = NodeConfig.Endpoint(host: "127.0.0.1", port: 5683)
            }
            try await options.serve(&config, role: .solo)
        }
    }
}
