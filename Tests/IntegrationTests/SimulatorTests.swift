import AmarsClient
import AmarsCodec
import AmarsTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `amars-sim` against a real `amarsd run` with CoAP and an MQTT bridge to a mosquitto it spawned: four virtual
/// devices (two submitting over MQTT) are funded, pay each other for two rounds, and prove every payment final;
/// the node's balances agree. A second run with the same seed finds the fleet funded and goes on paying.
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

    func testFleetPaysItselfAndProvesEveryPayment() throws {
        let made = try Harness.amars(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys")])
        XCTAssertEqual(made.status, 0, made.error)
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let mqttPort = Harness.freePort(type: Int32(SOCK_STREAM.rawValue))
        let httpPort = Harness.freePort(type: Int32(SOCK_STREAM.rawValue))
        let p = Process()
        p.executableURL = Harness.binDirectory.appendingPathComponent("amarsd")
        p.arguments = [
            "run", "--data", dir.path, "--http-port", String(httpPort), "--coap-port", String(coapPort), "--mqtt",
            "127.0.0.1:\(mqttPort)", "--spawn-broker", "--block-interval", "150", "--log-level", "error",
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

        let node = "http://127.0.0.1:\(httpPort)"
        let arguments = [
            "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:\(coapPort)", "--mqtt",
            "127.0.0.1:\(mqttPort)", "--node", node, "--funder", path("keys/app-user-incentive.key"), "--devices", "4",
            "--rounds", "2", "--seed", "7", "--amount", "0.25",
        ]
        let sim = Harness.binDirectory.appendingPathComponent("amars-sim").path
        let first = try Harness.run(sim, arguments, timeout: 120)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("funded 4 devices up to 1 AMSC each"), first.output)
        XCTAssertTrue(
            first.output.contains("8 payments proven final of 8 attempted (0 too poor, 0 failed)"), first.output)
        let paid = first.output.split(separator: "\n").filter { $0.contains("inclusion and receipt proven") }
        XCTAssertEqual(paid.count, 8, first.output)
        XCTAssertEqual(paid.filter { $0.contains("over MQTT") }.count, 4, first.output)

        // Each device paid 0.25 twice and was paid 0.25 twice: 1 AMSC less its two fees, as the node says.
        let client = try HTTPClient(baseURL: node)
        let addresses = first.output.matches(of: #/device \d+: (amsc1[0-9a-z]+)/#).map { String($0.1) }
        XCTAssertEqual(addresses.count, 4, first.output)
        for address in addresses {
            let account = try Harness.json(client, "/v1/accounts/\(address)")
            let balance = UInt64("\(account["balance"] ?? "")") ?? 0
            XCTAssertLessThan(balance, 1_000_000, "\(address) paid no fee")
            XCTAssertGreaterThan(balance, 1_000_000 - 100_000, "\(address) lost more than two fees")
            XCTAssertEqual("\(account["nonce"] ?? "")", "2")
        }
        let supply = try Harness.json(client, "/v1/supply")
        XCTAssertEqual(supply["conserved"] as? Bool, true)
        // The doors counted what the fleet did: four payments over MQTT and their receipts, CoAP submits.
        let metrics = try client.get("/metrics").text
        XCTAssertEqual(PrometheusSample.value("amars_mqtt_connected", in: metrics), 1, metrics)
        XCTAssertGreaterThanOrEqual(PrometheusSample.value("amars_mqtt_submits_accepted_total", in: metrics) ?? 0, 4)
        XCTAssertGreaterThanOrEqual(PrometheusSample.value("amars_mqtt_receipts_published_total", in: metrics) ?? 0, 4)
        XCTAssertGreaterThanOrEqual(
            PrometheusSample.value("amars_coap_requests_total{resource=\"v1/tx\",code=\"2.01\"}", in: metrics) ?? 0, 4,
            metrics)

        // Same seed again: already funded, and the payments go on.
        let second = try Harness.run(sim, arguments + ["--rounds", "1"], timeout: 120)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertFalse(second.output.contains("funded"), second.output)
        XCTAssertTrue(second.output.contains("4 payments proven final of 4 attempted"), second.output)

        // A fleet that cannot reach its gateway fails with a clear line, not a crash.
        let unreachable = try Harness.run(
            sim,
            [
                "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:1", "--node", node, "--funder",
                path("keys/app-user-incentive.key"), "--devices", "2", "--rounds", "1",
            ], timeout: 120)
        XCTAssertNotEqual(unreachable.status, 0)
        XCTAssertFalse(unreachable.output.contains("Fatal error"), unreachable.output)
        let bad = try Harness.run(sim, arguments + ["--devices", "1"], timeout: 30)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--devices must be 2 to 256"), bad.output)
    }
}
