import ArgumentParser
import Foundation
import GatewayNode

/// `amarsd node --config FILE`: one delegate of a multi-gateway committee.
///
/// Unlike `run` (a single node that is the whole committee), this node finalizes blocks only together with the
/// other committee members, over the authenticated peer network: Roll-DPoS rounds with instant BFT finality.
/// Everything the node needs is in one YAML file (see ``NodeConfig``), because a delegate's setup is a set of
/// peers with their keys, ports and timeouts that an operator writes once; the node is assembled by ``Gateway``.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a committee gateway that finalizes blocks with its peers (multi-node Roll-DPoS).",
        discussion: """
            The YAML file names the data directory (chain.sqlite, votes.journal), the genesis file, this node's \
            validator key (also its network identity), where to listen (p2p, http, optionally coap, coaps and \
            mqtt), the peers to dial ({host, port, key}) and optionally consensus timings in milliseconds. Flags \
            override the file. scripts/devnet.sh writes four such files for one machine; \
            packaging/node.example.yaml is a commented production file. SIGINT or SIGTERM stops the node in \
            order and exits 0 (a second signal exits at once with 1).

            Example:  amarsd node --config /etc/amars/node.yaml --check
            """)

    @OptionGroup var options: GatewayOptions

    func validate() throws {
        guard options.config != nil else { throw ValidationError("Missing expected argument '--config <config>'") }
        try options.validate()
    }

    func run() async throws {
        try await StartupFailure.reporting("amarsd") {
            var config: NodeConfig
            do { config = try NodeConfig.load(path: options.config!) } catch {
                throw StartupFailure(.configuration, "\(error)")
            }
            // Tests of slashing only: this node double-signs every prepare vote (and will be slashed for it).
            let equivocate = ProcessInfo.processInfo.environment["AMARSD_TEST_EQUIVOCATE"] == "1"
            try await options.serve(&config, role: .committee(equivocate: equivocate))
        }
    }
}
