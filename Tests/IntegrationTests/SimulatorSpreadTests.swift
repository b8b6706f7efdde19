import AmarsClient
import AmarsTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// One simulator process against four gateways finalizing one chain, as `make devnet` and `make sim` run it:
/// `--coap` and `--node` name the four, the locks and terminals are spread over them (each device and its people
/// on one gateway, funded by that gateway's branch), and every device sends from its own loopback address at the
/// gateways' default per-device limits. The fleet's checks must all pass, every gateway must have answered
/// devices, and the supply must be conserved.
final class SimulatorSpreadTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-sim-spread" }

    func testOneSimulatorSpreadsItsFleetOverFourGateways() throws {
        let genesis = dir.appendingPathComponent("genesis.json").path
        let keys = dir.appendingPathComponent("keys").path
        let made = try Harness.amars(["genesis", "new", "--out", genesis, "--keys", keys, "--validators", "4"])
        XCTAssertEqual(made.status, 0, made.error)
        let coapPorts = (0..<4).map { _ in Harness.freePort(type: Int32(SOCK_DGRAM.rawValue)) }
        nodes = try MultiNodeTests.TestNode.devnet(
            dir: dir, genesis: genesis, keys: keys, consensus: MultiNodeTests.TestNode.fastConsensus,
            extra: { "coap: { host: 127.0.0.1, port: \(coapPorts[$0]) }\n" })
        for n in nodes { try n.start() }

        let sim = Harness.binDirectory.appendingPathComponent("amars-sim").path
        let run = try Harness.run(
            sim,
            [
                "--genesis", genesis, "--coap", coapPorts.map { "coap://127.0.0.1:\($0)" }.joined(separator: ","),
                "--node", nodes.map { "http://127.0.0.1:\($0.port)" }.joined(separator: ","), "--funder",
                keys + "/app-user-incentive.key", "--scenario", SimulatorTests.scenarios + "/smoke.yaml",
                "--devices", "12", "--silent-locks", "0", "--rounds", "2", "--seed", "11",
            ], timeout: 240)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(
            run.output.contains(
                "fleet: 8 rentals opened and 8 settled with the deposit refunded once, 0 kept and paid to the owner; "
                    + "8 sales proven paid, 8 receipts match their blocks; 8 bulb commands obeyed and 4 from revoked "
                    + "guests refused; supply conserved; 0 failures"), run.output)

        // Every gateway answered devices: the fleet was spread, not sent to the first one.
        for n in 1...4 { XCTAssertTrue(run.output.contains("through gateway \(n)"), run.output) }
        for node in nodes {
            let text = try node.client.get("/metrics").text
            let answered = text.split(separator: "\n").filter {
                $0.hasPrefix("amars_coap_requests_total{") && $0.contains("code=\"2.05\"")
            }.compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            XCTAssertGreaterThan(answered, 20, "node \(node.index + 1) answered \(answered) device requests")
        }

        // Two lists of different lengths name no gateways.
        let mismatched = try Harness.run(
            sim,
            [
                "--genesis", genesis, "--coap", "coap://127.0.0.1:\(coapPorts[0]),coap://127.0.0.1:\(coapPorts[1])",
                "--node", "http://127.0.0.1:\(nodes[0].port)", "--funder", keys + "/app-user-incentive.key",
            ], timeout: 30)
        XCTAssertNotEqual(mismatched.status, 0)
        XCTAssertTrue(
            mismatched.output.contains("--coap and --node name the same gateways in the same order"),
            mismatched.output)
    }
}
