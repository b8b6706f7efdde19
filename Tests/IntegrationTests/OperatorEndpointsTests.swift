import AmarsClient
import AmarsTestSupport
import Foundation
import XCTest

/// What an operator's tooling reads from a committee of real gateways: `/healthz` while the process answers,
/// `/readyz` true only while the member reaches a quorum, and `/metrics` that Prometheus's own `promtool`
/// accepts, with the figures of consensus, peers, blocks and device doors moving as the node works.
final class OperatorEndpointsTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-ops" }

    private func status(_ node: MultiNodeTests.TestNode, _ path: String) -> (status: Int, body: [String: Any])? {
        guard let r = try? node.client.get(path) else { return nil }
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
    }

    func testReadinessFollowsTheQuorumAndMetricsPassPromtool() throws {
        nodes = try MultiNodeTests.TestNode.startedDevnet(dir: dir)
        XCTAssertTrue(
            Harness.wait(30) { self.nodes.allSatisfy { self.status($0, "/readyz")?.status == 200 } },
            "all four ready: \(nodes.map { status($0, "/readyz")?.body ?? [:] })")

        // The exposition format, as Prometheus reads it.
        let metrics = try nodes[0].client.get("/metrics")
        XCTAssertEqual(metrics.status, 200)
        let file = dir.appendingPathComponent("metrics.txt")
        try Data(metrics.body).write(to: file)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        check.arguments = ["check", "metrics"]
        check.standardInput = try FileHandle(forReadingFrom: file)
        let output = Pipe()
        check.standardOutput = output
        check.standardError = output
        try check.run()
        check.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(check.terminationStatus, 0, "promtool check metrics: \(said)")
        // The network's counters reach the status board on the driver's next tick: read until they have.
        var text = metrics.text
        XCTAssertTrue(
            Harness.wait(15) {
                text = (try? self.nodes[0].client.get("/metrics").text) ?? ""
                return (PrometheusSample.value("amars_peer_handshakes_total", in: text) ?? 0) > 0
                    && (PrometheusSample.value("amars_consensus_height", in: text) ?? 0) > 2
            }, text)
        XCTAssertGreaterThan(PrometheusSample.value("amars_consensus_height", in: text) ?? 0, 2, text)
        XCTAssertEqual(PrometheusSample.value("amars_peers_connected", in: text), 3, text)
        XCTAssertGreaterThan(
            PrometheusSample.value("amars_consensus_step_duration_seconds_count{step=\"propose\"}", in: text) ?? 0, 0,
            text)
        XCTAssertGreaterThan(
            PrometheusSample.value("amars_block_commit_duration_seconds_count", in: text) ?? 0, 0, text)
        XCTAssertTrue(text.contains("amars_build_info{version=\""), text)
        XCTAssertGreaterThan(PrometheusSample.value("amars_peer_handshakes_total", in: text) ?? 0, 0, text)

        // Two of four down: the others are alive but cannot finalize, and say so.
        nodes[2].kill()
        nodes[3].kill()
        XCTAssertTrue(Harness.wait(15) { self.status(self.nodes[0], "/readyz")?.status == 503 })
        let unready = try XCTUnwrap(status(nodes[0], "/readyz"))
        XCTAssertEqual(unready.body["ready"] as? Bool, false)
        let reasons = unready.body["reasons"] as? [String] ?? []
        XCTAssertTrue(reasons.contains { $0.contains("more than two thirds") }, "\(reasons)")
        XCTAssertEqual(status(nodes[0], "/healthz")?.status, 200, "alive, though not ready")
        var after = ""
        XCTAssertTrue(
            Harness.wait(15) {
                after = (try? self.nodes[0].client.get("/metrics").text) ?? ""
                return after.contains("amars_peer_disconnects_total{reason=")
            }, after)
        XCTAssertLessThanOrEqual(PrometheusSample.value("amars_peers_connected", in: after) ?? 9, 1, after)

        // Back: ready again.
        try nodes[2].start()
        XCTAssertTrue(Harness.wait(15) { self.status(self.nodes[0], "/readyz")?.status == 200 })
    }

    /// `amarsd run` counts its CoAP answers by resource and code, in metrics promtool accepts too.
    func testCoAPAnswersAreCountedByResourceAndCode() throws {
        let made = try Harness.amars([
            "genesis", "new", "--out", dir.appendingPathComponent("g/genesis.json").path, "--keys",
            dir.appendingPathComponent("g/keys").path,
        ])
        XCTAssertEqual(made.status, 0, made.error)
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(
            data: dir.appendingPathComponent("g"), blockInterval: 200, coapPort: coapPort)
        defer { daemon.stop() }
        for path in ["v1/head", "v1/head", "v1/headers?from=x"] {
            let run = try CoAPInteropTests.coapClient(["-m", "get", "coap://127.0.0.1:\(coapPort)/\(path)"], dir: dir)
            XCTAssertEqual(run.status, 0, run.log)
        }
        let client = try HTTPClient(baseURL: daemon.url)
        var text = ""
        XCTAssertTrue(
            Harness.wait(10) {
                text = (try? client.get("/metrics").text) ?? ""
                return (PrometheusSample.value("amars_block_commit_duration_seconds_count", in: text) ?? 0) > 0
            }, text)
        XCTAssertEqual(
            PrometheusSample.value("amars_coap_requests_total{resource=\"v1/head\",code=\"2.05\"}", in: text), 2, text)
        XCTAssertEqual(
            PrometheusSample.value("amars_coap_requests_total{resource=\"v1/headers\",code=\"4.00\"}", in: text), 1,
            text)
    }
}
