import AmarsClient
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// A device's trust runs out and its operator brings it back, with the real binaries: `amars device` skips to
/// the newest checkpoint while its trust is fresh, refuses to follow the chain once the trusted committee is older
/// than the genesis's trusting period, refuses a re-anchor statement signed by another key (given to it, or served
/// by the gateway), and follows the chain again from the one its operator signed (`amars device reanchor`) and
/// the gateway serves at `v1/reanchor` (`amarsd run --reanchor FILE`).
final class DeviceTrustCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-trust" }

    func publicKey(_ output: String) throws -> String {
        let line = try XCTUnwrap(output.split(separator: "\n").first { $0.hasPrefix("public key") })
        return String(try XCTUnwrap(line.split(separator: " ").last))
    }

    func testTrustExpiresAndOnlyTheOperatorsStatementBringsTheDeviceBack() throws {
        // Five-block epochs of at least 1 s blocks and three epochs of unbonding (two whole ones): devices trust a
        // committee for 6.7 s (the daemon runs faster, so epochs pass every half second).
        let made = try ok([
            "genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "5",
            "--block-interval", "1000", "--unbonding-epochs", "3",
        ])
        XCTAssertTrue(made.contains("devices trust a committee for 6 s"), made)
        let inspected = try ok(["genesis", "inspect", path("genesis.json")])
        XCTAssertTrue(inspected.contains("unbonding 3 epochs"), inspected)
        let operatorKey = try publicKey(try ok(["key", "new", "--out", path("keys/operator.key")]))
        let otherKey = path("keys/other.key")
        try ok(["key", "new", "--out", otherKey])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let served = path("served-reanchor.bin")
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 100, coapPort: coapPort, arguments: ["--reanchor", served])
        defer { daemon.stop() }
        let coap = ["--coap", "coap://127.0.0.1:\(coapPort)"]
        let device = coap + ["--genesis", path("genesis.json"), "--state", path("device.state")]
        let client = try HTTPClient(baseURL: daemon.url)
        XCTAssertTrue(
            Harness.wait(20) { (Int("\((try? Harness.json(client, "/v1/head"))?["height"] ?? 0)") ?? 0) >= 12 })

        // Fresh trust: one skip from genesis to the newest checkpoint.
        let first = try ok(["device", "sync"] + device)
        XCTAssertTrue(first.contains("skipped     from epoch 0 to "), first)
        XCTAssertTrue(first.contains("1 skip carrying >= 1/3 of the trusted pool"), first)

        // Asleep longer than the trusting period: the device refuses, whatever the gateway serves.
        Thread.sleep(forTimeInterval: 11)
        try refused(["device", "sync"] + device, "trust expired", status: 4)
        // With the operator's key provisioned it asks the gateway for a statement: none yet, so still refused.
        try refused(["device", "sync", "--reanchor-key", operatorKey] + device, "trust expired")
        let stateBefore = try Data(contentsOf: URL(fileURLWithPath: path("device.state")))

        // A statement signed by anyone but the provisioned operator is refused, and nothing is saved.
        try ok(["device", "reanchor", "--operator-key", otherKey, "--out", path("forged.bin")] + coap)
        try refused(
            ["device", "sync", "--reanchor-key", operatorKey, "--reanchor", path("forged.bin")] + device,
            "not signed by the provisioned operator key")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("device.state"))), stateBefore)

        // The same forged statement served by the gateway: refused the same way.
        try FileManager.default.copyItem(atPath: path("forged.bin"), toPath: served)
        try refused(
            ["device", "sync", "--reanchor-key", operatorKey] + device, "not signed by the provisioned operator key")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("device.state"))), stateBefore)

        // The operator's own, put where the gateway serves it: the device fetches it when it finds its trust
        // expired, checks the signature, and follows the chain again.
        try FileManager.default.removeItem(atPath: served)
        let signed = try ok(
            ["device", "reanchor", "--operator-key", path("keys/operator.key"), "--out", served] + coap)
        XCTAssertTrue(signed.contains("signed by operator key \(operatorKey)"), signed)
        let back = try ok(["device", "sync", "--reanchor-key", operatorKey] + device)
        XCTAssertTrue(back.contains("reanchored  trust had expired: the operator's statement moved it to epoch"), back)
        XCTAssertTrue(back.contains("synced      "), back)
        // Epochs pass (one every half second) and the device follows them; given again by hand, the statement
        // would move its trust back: refused.
        Thread.sleep(forTimeInterval: 1.5)
        try ok(["device", "head"] + device)
        try refused(
            ["device", "sync", "--reanchor-key", operatorKey, "--reanchor", served] + device,
            "its checkpoint is older than the trusted one")
    }

    /// A device whose state trusts one chain, pointed at a gateway of another (the same chain id): it says so and
    /// exits 5, and its state is untouched; back at its own gateway it syncs as before.
    func testAGatewayOfAnotherChainIsNamedWithItsOwnExitStatus() throws {
        var daemons: [Harness.Daemon] = []
        defer { for d in daemons { d.stop() } }
        var ports: [Int] = []
        for name in ["ours", "theirs"] {
            try FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
            try ok([
                "genesis", "new", "--out", path("\(name)/genesis.json"), "--keys", path("\(name)/keys"),
                "--epoch-length", "5", "--chain-id", "7001",
            ])
            let port = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
            daemons.append(
                try Harness.startDaemon(
                    data: dir.appendingPathComponent(name), blockInterval: 100, coapPort: port))
            ports.append(port)
        }
        let ours = try HTTPClient(baseURL: daemons[0].url)
        XCTAssertTrue(
            Harness.wait(20) { (Int("\((try? Harness.json(ours, "/v1/head"))?["height"] ?? 0)") ?? 0) >= 12 })
        let device = ["--genesis", path("ours/genesis.json"), "--state", path("device.state")]
        try ok(["device", "sync", "--coap", "coap://127.0.0.1:\(ports[0])"] + device)
        let state = try Data(contentsOf: URL(fileURLWithPath: path("device.state")))

        try refused(
            ["device", "sync", "--coap", "coap://127.0.0.1:\(ports[1])"] + device, "the gateway serves another chain",
            status: 5)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("device.state"))), state)
        // The same state with the other chain's genesis file (same chain id, same epoch length): not resumed.
        try refused(
            [
                "device", "sync", "--coap", "coap://127.0.0.1:\(ports[1])", "--genesis", path("theirs/genesis.json"),
                "--state", path("device.state"),
            ], "belongs to another chain")
        let home = try ok(["device", "sync", "--coap", "coap://127.0.0.1:\(ports[0])"] + device)
        XCTAssertTrue(home.contains("synced"), home)
    }
}
