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
        let (genesis, keys) = try fourValidatorGenesis()
        let coapPorts = Harness.freePorts(4, type: Int32(SOCK_DGRAM.rawValue))
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

/// The faults the simulator injects by killing processes: gateway 2 and the broker are killed mid-run (SIGKILL,
/// found through their pid files), and this test, as their supervisor, starts each again. The fleet over four
/// gateways, half its locks returning over MQTT, must ride through with no failure; both kills are marked on the
/// report's timeline. A pid file naming another program kills nothing and fails the run.
final class SimulatorKillTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-sim-kill" }

    func testTheFleetRidesThroughAGatewayAndTheBrokerKilledAndStartedAgain() throws {
        let (genesis, keys) = try fourValidatorGenesis()

        // The broker, as `make devnet` runs it (`amarsd broker` becomes mosquitto, same process id).
        let mqttPort = Harness.freePort()
        let brokerDir = dir.appendingPathComponent("broker").path
        let brokerPidFile = brokerDir + "/mosquitto.pid"
        let startBroker: @Sendable () throws -> Process = {
            let broker = Process()
            broker.executableURL = Harness.binDirectory.appendingPathComponent("amarsd")
            broker.arguments = ["broker", "--dir", brokerDir, "--port", String(mqttPort)]
            broker.standardOutput = FileHandle.nullDevice
            broker.standardError = FileHandle.nullDevice
            try broker.run()
            _ = Harness.wait(10) { LoopbackSocket.connectTCP(port: mqttPort).map { close($0) } != nil }
            try TestSupervisor.writePid(broker, to: brokerPidFile)
            return broker
        }
        let broker = try startBroker()

        let coapPorts = Harness.freePorts(4, type: Int32(SOCK_DGRAM.rawValue))
        let httpPorts = Harness.freePorts(4)
        nodes = try MultiNodeTests.TestNode.devnet(
            dir: dir, genesis: genesis, keys: keys, consensus: MultiNodeTests.TestNode.fastConsensus,
            extra: { i in
                "coap: { host: 127.0.0.1, port: \(coapPorts[i]) }\n"
                    + (i == 0
                        ? "mqtt: 127.0.0.1:\(mqttPort)\nmqtt_credentials: \(brokerDir)/gateway.credentials\n" : "")
            })
        let pidFiles = (0..<4).map { dir.appendingPathComponent("node-\($0 + 1).pid").path }
        for (i, n) in nodes.enumerated() {
            n.arguments = ["--http-port", String(httpPorts[i])]
            try n.start()
            try TestSupervisor.writePid(n.process!, to: pidFiles[i])
        }
        // Whatever dies is started again, as `make devnet` and systemd do.
        let supervisor = TestSupervisor(
            nodes: nodes, pidFiles: pidFiles, broker: broker, startBroker: startBroker)
        supervisor.start()
        defer { supervisor.stop().broker.terminate() }

        let sim = Harness.binDirectory.appendingPathComponent("amars-sim").path
        let common = [
            "--genesis", genesis, "--coap", coapPorts.map { "coap://127.0.0.1:\($0)" }.joined(separator: ","),
            "--node", httpPorts.map { "http://127.0.0.1:\($0)" }.joined(separator: ","), "--funder",
            keys + "/app-user-incentive.key",
        ]
        let run = try Harness.run(
            sim,
            common + [
                "--mqtt", "127.0.0.1:\(mqttPort)", "--scenario", SimulatorTests.scenarios + "/smoke.yaml",
                "--devices", "12", "--silent-locks", "0", "--rounds", "0", "--duration", "30", "--interval", "1",
                "--seed", "13", "--kill-gateway", "2", "--kill-gateway-at", "8", "--kill-broker-at", "16",
                "--gateway-pid-files", pidFiles.joined(separator: ","), "--broker-pid-file",
                brokerPidFile, "--report", dir.appendingPathComponent("kill.json").path,
            ], timeout: 240)
        let restarts = supervisor.stop().restarts
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("fault: gateway 2 killed"), run.output)
        XCTAssertTrue(run.output.contains("fault: the broker killed"), run.output)
        XCTAssertTrue(run.output.contains("supply conserved; 0 failures"), run.output)
        XCTAssertEqual(restarts, ["node 2": 1, "broker": 1])
        let report = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("kill.json")))
                as? [String: Any])
        let marks = (report["events"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        XCTAssertTrue(marks.contains("gateway 2 killed") && marks.contains("the broker killed"), "\(marks)")

        // A pid file that names another program kills nothing: the run says so and fails.
        let bystander = Process()
        bystander.executableURL = URL(fileURLWithPath: "/bin/sleep")
        bystander.arguments = ["60"]
        try bystander.run()
        defer { bystander.terminate() }
        let wrong = dir.appendingPathComponent("wrong.pid").path
        try "\(bystander.processIdentifier)".write(toFile: wrong, atomically: true, encoding: .utf8)
        let refused = try Harness.run(
            sim,
            common + [
                "--locks", "1", "--terminals", "0", "--bulbs", "0", "--rounds", "1", "--kill-gateway", "1",
                "--kill-gateway-at", "0", "--gateway-pid-files", [wrong, wrong, wrong, wrong].joined(separator: ","),
            ], timeout: 120)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("is 'sleep', not amarsd: nothing killed"), refused.output)
        XCTAssertTrue(bystander.isRunning)
        // Without the pid files a kill cannot be asked for.
        let missing = try Harness.run(sim, common + ["--kill-gateway", "1"], timeout: 30)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("kill-gateway needs --gateway-pid-files"), missing.output)
    }
}

/// The kill test's supervisor: every 0.2 s, a gateway or the broker that is no longer running is started again
/// and its pid file rewritten; the restarts are counted by name.
final class TestSupervisor: @unchecked Sendable {
    // @unchecked: the processes and counts are only touched under `lock`.
    private let lock = NSLock()
    private let nodes: [MultiNodeTests.TestNode]
    private let pidFiles: [String]
    private let startBroker: @Sendable () throws -> Process
    private var broker: Process
    private var running = true
    private var restarts: [String: Int] = [:]

    init(
        nodes: [MultiNodeTests.TestNode], pidFiles: [String], broker: Process,
        startBroker: @escaping @Sendable () throws -> Process
    ) {
        self.nodes = nodes
        self.pidFiles = pidFiles
        self.broker = broker
        self.startBroker = startBroker
    }

    static func writePid(_ process: Process, to path: String) throws {
        try "\(process.processIdentifier)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }

    func start() {
        Thread { [self] in
            while lock.withLock({ running }) {
                Thread.sleep(forTimeInterval: 0.2)
                lock.withLock { restartWhatDied() }
            }
        }.start()
    }

    /// Stops watching; the restarts so far and the broker now running.
    func stop() -> (restarts: [String: Int], broker: Process) {
        lock.withLock {
            running = false
            return (restarts, broker)
        }
    }

    private func restartWhatDied() {
        guard running else { return }
        for (i, node) in nodes.enumerated() where node.process != nil && !node.isRunning {
            node.process = nil
            if (try? node.start()) != nil, let process = node.process {
                try? Self.writePid(process, to: pidFiles[i])
                restarts["node \(i + 1)", default: 0] += 1
            }
        }
        if !broker.isRunning, let again = try? startBroker() {
            broker = again
            restarts["broker", default: 0] += 1
        }
    }
}

extension DevnetTestCase {
    /// A fresh four-validator genesis in the test's directory: its file and its keys' directory.
    func fourValidatorGenesis() throws -> (genesis: String, keys: String) {
        let genesis = dir.appendingPathComponent("genesis.json").path
        let keys = dir.appendingPathComponent("keys").path
        let made = try Harness.amars(["genesis", "new", "--out", genesis, "--keys", keys, "--validators", "4"])
        guard made.status == 0 else { throw Harness.StartFailure(description: "genesis new: \(made.error)") }
        return (genesis, keys)
    }
}
