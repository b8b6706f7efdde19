import AmarsClient
import AmarsCodec
import AmarsTestSupport
import DeviceProtocol
import GatewayTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `amars-sim` with the shipped smoke scenario against a real `amarsd run` with CoAP and an MQTT bridge to a
/// mosquitto it spawned: ten locks (half returning over MQTT), ten terminals and ten bulbs, two rounds each. The
/// fleet's own checks must all pass, and the test checks the chain independently of it: the owner holds exactly
/// the rental fees, each renter got its deposits back, every receipt in the JSON report is a final payment of its
/// amount to its terminal, the supply is conserved, and the bulbs refused each guest once the household revoked
/// it. The HTML report loads in headless Chromium with no error and its plots drawn. Bad scenario files and
/// flags get one line naming the key.
final class SimulatorTests: XCTestCase {
    var dir: URL!
    var daemon: Process?

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let daemon, daemon.isRunning {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Simulator/scenarios").path
    static let browse = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Browser/browse.py").path

    func testTheSmokeScenarioWorksAndTheChainAgrees() throws {
        let made = try Harness.amars(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys")])
        XCTAssertEqual(made.status, 0, made.error)
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let mqttPort = Harness.freePort(type: Int32(SOCK_STREAM.rawValue))
        let httpPort = Harness.freePort(type: Int32(SOCK_STREAM.rawValue))
        /// The gateway (and its broker), started or started again on the same data and ports.
        func launch() throws {
            let p = Process()
            p.executableURL = Harness.binDirectory.appendingPathComponent("amarsd")
            p.arguments = [
                "run", "--data", dir.path, "--http-port", String(httpPort), "--coap-port", String(coapPort), "--mqtt",
                "127.0.0.1:\(mqttPort)", "--spawn-broker", "--block-interval", "150", "--log-level", "error",
                // The default per-device limits: each simulated device sends from its own loopback address.
            ]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            daemon = p
            var text = ""
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, !text.contains("MQTT") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            XCTAssertTrue(text.contains("mqtt://127.0.0.1:\(mqttPort)"), text)
        }
        try launch()

        let node = "http://127.0.0.1:\(httpPort)"
        let arguments = [
            "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:\(coapPort)", "--mqtt",
            "127.0.0.1:\(mqttPort)", "--node", node, "--funder", path("keys/app-user-incentive.key"), "--scenario",
            Self.scenarios + "/smoke.yaml", "--seed", "7", "--report", path("report.json"), "--html",
            path("report.html"),
        ]
        let sim = Harness.binDirectory.appendingPathComponent("amars-sim").path
        // Faults the simulator injects on the devices' links: 2 % of datagrams lost each way, and three devices in
        // ten cut off for 3 s, 3 s in. CoAP's retransmissions must carry the fleet through with nothing failed.
        let faults = ["--loss", "0.02", "--cut-at", "3", "--cut-for", "3", "--cut-share", "0.3"]
        let run = try Harness.run(sim, arguments + faults, timeout: 180)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(
            run.output.contains(
                "fleet: 20 rentals opened and 19 settled with the deposit refunded once, 1 kept and paid to the owner; "
                    + "20 sales proven paid, 20 receipts match their blocks; 20 bulb commands obeyed and 10 from revoked guests refused; supply "
                    + "conserved; 0 failures"), run.output)

        // The report: every action counted, the refusals a dishonest party met, no failures.
        let report = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json")))
                as? [String: Any])
        let actions = try XCTUnwrap(report["actions"] as? [String: [String: Any]])
        func count(_ kind: String) -> Int { actions[kind]?["count"] as? Int ?? -1 }
        XCTAssertEqual(count("rental opened"), 20)
        XCTAssertEqual(count("deposit refunded once"), 19)
        XCTAssertEqual(count("lock went silent"), 1)
        XCTAssertEqual(count("kept item paid its owner"), 1)
        XCTAssertEqual(count("lock refused a returned escrow"), 20)
        XCTAssertGreaterThanOrEqual(count("lock refused another lock's escrow"), 9)
        XCTAssertEqual(count("return signed (MQTT)"), 10, "\(actions)")
        XCTAssertEqual(count("return signed (CoAP)"), 9)
        XCTAssertEqual(count("sale proven paid"), 20)
        XCTAssertEqual(count("bulb obeyed its resident"), 20)
        XCTAssertEqual(count("bulb obeyed the guest"), 10)
        XCTAssertEqual(count("guest revoked on chain"), 10)
        XCTAssertEqual(count("bulb refused a revoked guest"), 10)
        XCTAssertEqual(count("bulb refused a replay"), 20)
        XCTAssertEqual(count("bulb refused a stranger"), 20)
        // The gateway's command door: the resident's commands went through it, a revoked guest's and a stranger's
        // were refused there (and by the bulb, handed to it directly).
        XCTAssertEqual(count("door refused a revoked guest"), 10)
        XCTAssertEqual(count("door refused a stranger"), 20)
        XCTAssertGreaterThan(actions["rental opened"]?["p99Millis"] as? Int ?? 0, 0)
        XCTAssertEqual((report["failures"] as? [String: Int])?.isEmpty, true)

        // The chain, asked directly.
        let client = try HTTPClient(baseURL: node)
        func balance(_ address: String) throws -> UInt64 {
            UInt64("\(try Harness.json(client, "/v1/accounts/\(address)")["balance"] ?? "")") ?? 0
        }
        let owner = try XCTUnwrap(run.output.firstMatch(of: #/owner: (amsc1[0-9a-z]+)/#)).1
        // Nineteen fees of 0.1 AMSC, no damages (they are kept on every fourth ride only), and the kept rental's
        // deposit and fee, less what the owner paid to close it: exactly. The owner was topped up to 5 AMSC first.
        let totals = try XCTUnwrap(report["totals"] as? [String: UInt64])
        XCTAssertGreaterThan(totals["datagramsLostToInjectedFaults"] ?? 0, 0, "\(totals)")
        XCTAssertGreaterThan(totals["coapRetransmissions"] ?? 0, 0, "\(totals)")
        let injected = (report["events"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        XCTAssertTrue(injected.contains("links cut: 9 devices for 3 s"), "\(injected)")
        XCTAssertTrue(injected.contains("links restored"), "\(injected)")
        XCTAssertTrue(run.output.contains("fault: the links of 9 devices are cut for 3 s"), run.output)
        let closeFees = try XCTUnwrap(totals["ownerCloseFees"])
        XCTAssertGreaterThan(closeFees, 0)
        XCTAssertEqual(try balance(String(owner)) + closeFees, 5_000_000 + 1_900_000 + 1_100_000)
        // Each renter was funded to 5 AMSC and paid two fees and two opening transactions: the deposits came back,
        // but for lock 0's renter, whose first rental was kept.
        let renters = run.output.matches(of: #/renter (amsc1[0-9a-z]+)/#).map { String($0.1) }
        XCTAssertEqual(renters.count, 10)
        for (i, renter) in renters.enumerated() {
            let left = try balance(renter)
            let spent: UInt64 = i == 0 ? 1_200_000 : 200_000
            XCTAssertLessThan(left, 5_000_000 - spent, renter)
            XCTAssertGreaterThan(left, 5_000_000 - spent - 100_000, "\(renter): a deposit was refunded wrongly")
        }
        let receipts = try XCTUnwrap(report["receipts"] as? [[String: Any]])
        XCTAssertEqual(receipts.count, 20)
        var paid: [String: UInt64] = [:]
        for receipt in receipts {
            let id = try XCTUnwrap(receipt["transaction"] as? String)
            let tx = try Harness.json(client, "/v1/tx/\(id)")
            XCTAssertEqual(tx["status"] as? String, "included", "\(tx)")
            XCTAssertEqual("\(tx["height"] ?? "")", "\(receipt["height"] ?? "-")")
            let body = try XCTUnwrap(tx["transaction"] as? [String: Any])
            XCTAssertEqual(body["to"] as? String, receipt["terminal"] as? String)
            XCTAssertEqual(body["amount"] as? String, "\(receipt["amount"] ?? "-")")
            paid[receipt["terminal"] as? String ?? "", default: 0] += UInt64("\(receipt["amount"] ?? "")") ?? 0
        }
        XCTAssertEqual(paid.count, 10)
        for (terminal, amount) in paid { XCTAssertEqual(try balance(terminal), amount, terminal) }
        let supply = try Harness.json(client, "/v1/supply")
        XCTAssertEqual(supply["conserved"] as? Bool, true)
        let metrics = try client.get("/metrics").text
        XCTAssertGreaterThanOrEqual(PrometheusSample.value("amars_mqtt_submits_accepted_total", in: metrics) ?? 0, 2)

        // The HTML report in a real browser: no page error, a plot per latency, the ten revocations and the link cut
        // and its end on the timeline.
        let page = try Harness.run(
            "/usr/bin/python3",
            [
                Self.browse, "file://" + path("report.html"), #"wait:document.readyState === "complete""#,
                #"print:document.querySelectorAll("svg.latency").length"#,
                ##"print:document.querySelectorAll("#throughput .event").length"##,
                ##"print:document.querySelectorAll("#outcomes rect.bar").length"##,
                #"print:document.getElementById("summary").textContent"#, "errors",
            ], timeout: 60)
        XCTAssertEqual(page.status, 0, page.output)
        let lines = page.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.prefix(3), ["5", "12", "\(actions.count)"], page.output)
        XCTAssertTrue(lines.count > 3 && lines[3].contains("30 devices online") && lines[3].contains("0 failures"))

        // The gateway stops mid-run and comes back: rounds cut short are counted as interrupted, the devices go on
        // after it, and a rental left open is settled on chain. No failure, and the chain still agrees.
        let faultArguments = [
            "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:\(coapPort)", "--node", node, "--funder",
            path("keys/app-user-incentive.key"), "--locks", "3", "--silent-locks", "0", "--terminals", "3", "--bulbs",
            "0", "--rounds", "12", "--interval", "0.5", "--seed", "9", "--report", path("fault.json"),
        ]
        let faulted = Process()
        faulted.executableURL = URL(fileURLWithPath: sim)
        faulted.arguments = faultArguments
        FileManager.default.createFile(atPath: path("fault.log"), contents: nil)
        let faultLog = try FileHandle(forWritingTo: dir.appendingPathComponent("fault.log"))
        faulted.standardOutput = faultLog
        faulted.standardError = faultLog
        try faulted.run()
        Thread.sleep(forTimeInterval: 3)
        daemon?.terminate()
        daemon?.waitUntilExit()
        Thread.sleep(forTimeInterval: 2)
        try launch()
        faulted.waitUntilExit()
        try faultLog.close()
        let faultText = try String(contentsOf: dir.appendingPathComponent("fault.log"), encoding: .utf8)
        XCTAssertEqual(faulted.terminationStatus, 0, faultText)
        XCTAssertTrue(faultText.contains("interrupted, the gateway is unreachable"), faultText)
        XCTAssertTrue(faultText.contains("supply conserved; 0 failures"), faultText)
        let faultReport = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("fault.json")))
                as? [String: Any])
        let faultActions = try XCTUnwrap(faultReport["actions"] as? [String: [String: Any]])
        XCTAssertGreaterThan(faultActions["round interrupted (gateway unreachable)"]?["count"] as? Int ?? 0, 0)
        let marks = (faultReport["events"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        XCTAssertTrue(marks.contains("gateway unreachable"), "\(marks)")
        XCTAssertEqual(try Harness.json(client, "/v1/supply")["conserved"] as? Bool, true)

        // Same seed again: the same devices and people go on, funded as they need.
        let second = try Harness.run(
            sim,
            arguments + ["--locks", "1", "--silent-locks", "0", "--terminals", "1", "--bulbs", "1", "--rounds", "1"],
            timeout: 120)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("1 rentals opened and 1 settled"), second.output)

        // The same fleet in two processes (shards), run at once and funded from one key, then merged: the merged
        // report counts what both did, as one process would have.
        let shardArguments = [
            "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:\(coapPort)", "--mqtt",
            "127.0.0.1:\(mqttPort)", "--node", node, "--funder", path("keys/app-user-incentive.key"), "--locks", "4",
            "--terminals", "4", "--bulbs", "2", "--rounds", "2", "--seed", "8",
        ]
        let other = Process()
        other.executableURL = URL(fileURLWithPath: sim)
        other.arguments = shardArguments + ["--shard", "0/2", "--report", path("shard0.json")]
        other.standardOutput = FileHandle.nullDevice
        other.standardError = FileHandle.nullDevice
        try other.run()
        let shard1 = try Harness.run(
            sim, shardArguments + ["--shard", "1/2", "--report", path("shard1.json")], timeout: 120)
        other.waitUntilExit()
        XCTAssertEqual(shard1.status, 0, shard1.output)
        XCTAssertEqual(other.terminationStatus, 0)
        XCTAssertTrue(shard1.output.contains("shard 1/2: 5 of the fleet's devices"), shard1.output)
        let merged = try Harness.run(
            sim, ["merge", path("shard0.json"), path("shard1.json"), "--report", path("merged.json")], timeout: 30)
        XCTAssertEqual(merged.status, 0, merged.output)
        XCTAssertTrue(merged.output.contains("merged 2 reports: 10 devices"), merged.output)
        let joined = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("merged.json")))
                as? [String: Any])
        let joinedActions = try XCTUnwrap(joined["actions"] as? [String: [String: Any]])
        XCTAssertEqual(joinedActions["rental opened"]?["count"] as? Int, 8)
        XCTAssertEqual(joinedActions["sale proven paid"]?["count"] as? Int, 8)
        XCTAssertEqual(joinedActions["bulb refused a revoked guest"]?["count"] as? Int, 2)
        XCTAssertEqual((joined["receipts"] as? [Any])?.count, 8)
        XCTAssertEqual((joined["failures"] as? [String: Int])?.isEmpty, true)
        let notAReport = try Harness.run(
            sim, ["merge", path("genesis.json"), "--report", path("nothing.json")], timeout: 30)
        XCTAssertNotEqual(notAReport.status, 0)
        XCTAssertTrue(notAReport.output.contains("genesis.json: not an amars-sim report"), notAReport.output)

        // A fleet that cannot reach its gateway fails with a clear line, not a crash.
        let unreachable = try Harness.run(
            sim,
            [
                "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:1", "--node", node, "--funder",
                path("keys/app-user-incentive.key"), "--locks", "1", "--terminals", "0", "--bulbs", "0", "--rounds",
                "1",
            ], timeout: 120)
        XCTAssertNotEqual(unreachable.status, 0)
        XCTAssertFalse(unreachable.output.contains("Fatal error"), unreachable.output)
        // A gateway that answers every request with a well-formed CoAP answer full of garbage: the devices refuse
        // it with a line naming what could not be read, and nothing crashes.
        nonisolated(unsafe) let liar = try CoAPTestSocket(timeoutMilliseconds: 200)
        let lying = Thread {
            var rng = SplitMix64(seed: 3)
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                guard let (bytes, port) = liar.receive(), let request = try? CoAPMessage.decode(bytes) else { continue }
                var answer = CoAPMessage(type: .acknowledgement, code: .content, messageID: request.messageID)
                answer.token = request.token
                answer.payload = (0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                liar.send(answer.encode(), toPort: port)
            }
        }
        lying.start()
        let lied = try Harness.run(
            sim,
            [
                "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:\(liar.localPort)", "--node", node,
                "--funder", path("keys/app-user-incentive.key"), "--locks", "1", "--terminals", "0", "--bulbs", "0",
                "--rounds", "1",
            ], timeout: 60)
        XCTAssertNotEqual(lied.status, 0, lied.output)
        XCTAssertTrue(lied.output.contains("Error:"), lied.output)
        XCTAssertFalse(lied.output.contains("Fatal error"), lied.output)

        // Scenario files are checked key by key, each problem named with its file.
        for (yaml, line) in [
            ("locks: 2\nlokcs: 3\n", "unknown key 'lokcs'"),
            ("interval: -1\n", "'interval' must be 0 to 3600 seconds"),
            ("locks: 100000\n", "'locks' must be 0 to 10000"),
            ("locks: many\n", "'locks' must be a whole number, not 'many'"),
            ("locks: 2\nsilent-locks: 3\n", "'silent-locks' must be 0 to the number of locks"),
            ("- locks\n", "the top level must be a mapping of keys"),
            ("locks: 6000\nterminals: 6000\n", "at most 10000 devices in all"),
        ] {
            try Data(yaml.utf8).write(to: dir.appendingPathComponent("bad.yaml"))
            let refused = try Harness.run(sim, arguments + ["--scenario", path("bad.yaml")], timeout: 30)
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertTrue(refused.output.contains("bad.yaml: " + line), refused.output)
            XCTAssertFalse(refused.output.contains("Fatal error"), refused.output)
        }
        for (bad, line) in [
            (["--locks", "30000"], "--locks must be 0 to 10000"),
            (["--locks", "0", "--terminals", "0", "--bulbs", "0"], "--locks, --terminals and --bulbs are all 0"),
            (["--amount", "3"], "--amount must be more than 0 and less than half of the fund"),
            (["--interval", "4000"], "--interval must be 0 to 3600 seconds"),
            (["--shard", "2/2"], "--shard takes I/N"),
            (["--rental-blocks", "1"], "--rental-blocks must be 2 to 100000"),
        ] {
            let refused = try Harness.run(sim, arguments + bad, timeout: 30)
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertTrue(refused.output.contains(line), refused.output)
        }
    }
}
