import AmarsClient
import Foundation
import XCTest

/// What an operator's tooling reads from a committee of real gateways: `/healthz` while the process answers,
/// `/readyz` true only while the member reaches a quorum, and `/metrics` that Prometheus's own `promtool`
/// accepts.
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

        // Two of four down: the others are alive but cannot finalize, and say so.
        nodes[2].kill()
        nodes[3].kill()
        XCTAssertTrue(Harness.wait(15) { self.status(self.nodes[0], "/readyz")?.status == 503 })
        let unready = try XCTUnwrap(status(nodes[0], "/readyz"))
        XCTAssertEqual(unready.body["ready"] as? Bool, false)
        let reasons = unready.body["reasons"] as? [String] ?? []
        XCTAssertTrue(reasons.contains { $0.contains("more than two thirds") }, "\(reasons)")
        XCTAssertEqual(status(nodes[0], "/healthz")?.status, 200, "alive, though not ready")

        // Back: ready again.
        try nodes[2].start()
        XCTAssertTrue(Harness.wait(15) { self.status(self.nodes[0], "/readyz")?.status == 200 })
    }
}
