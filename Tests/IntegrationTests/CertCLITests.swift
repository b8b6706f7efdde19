import AmarsTestSupport
import AmarsClient
import AmarsCodec
import Foundation
import XCTest

/// Provisioning with the real binaries against a gateway: a root anchored, a lock enrolled, the lock's
/// short-lived certificate issued and published from its own account, each checked by `amars cert verify`
/// (state proofs) and by `openssl verify` (X.509 path validation); a stranger's revocation refused; the root's
/// revocation of the lock making its short-lived certificate fall in the next block; nothing issued under it after.
final class CertCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-cert" }

    func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runTool("/usr/bin/openssl", arguments)
    }

    func testRootEnrollIssueVerifyRevoke() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100, coapPort: coapPort)
        let device = ["--coap", "coap://127.0.0.1:\(coapPort)", "--genesis", path("genesis.json")]
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let ops = path("keys/app-user-incentive.key")
        let stranger = path("keys/strategic-partners.key")
        let lock = path("lock1.key")
        let pki = path("pki")

        let root = try ok(
            ["cert", "ca", "init", "--key", ops, "--name", "Test fleet root", "--out", pki, "--wait"] + node)
        XCTAssertTrue(root.contains("final in block"), root)
        try refused(
            [
                "cert", "enroll", "--ca-key", stranger, "--ca-cert", "\(pki)/root.pem", "--device-key", lock, "--out",
                "\(pki)/x",
            ]
                + node, "is not the key of --ca-cert")
        let enrolled = try ok(
            [
                "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", lock, "--kind",
                "lock",
                "--out", "\(pki)/lock1", "--wait",
            ] + node)
        XCTAssertTrue(enrolled.contains("device key made"), enrolled)
        XCTAssertTrue(enrolled.contains("final in block"), enrolled)
        let lockAddress = try ok(["address", "--key", lock]).trimmingCharacters(in: .whitespacesAndNewlines)
        let bundle = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(pki)/lock1/bundle.json")))
                as? [String: Any])
        XCTAssertEqual(bundle["kind"] as? String, "lock")
        XCTAssertEqual(bundle["account"] as? String, lockAddress)
        let inspected = try ok(["cert", "inspect", "\(pki)/lock1/device.pem"])
        XCTAssertTrue(inspected.contains("subject     \(lockAddress)"), inspected)
        XCTAssertTrue(inspected.contains("CA, path length 0"), inspected)

        // The lock pays for its own short-lived certificates.
        try ok(["transfer", "--key", ops, "--to", lockAddress, "--amount", "5", "--wait"] + node)
        try refused(
            [
                "cert", "issue", "--device-key", lock, "--device-cert", "\(pki)/lock1/device.pem", "--lifetime", "25h",
                "--out", path("s"),
            ]
                + node, "5m to 24h")
        let issued = try ok(
            [
                "cert", "issue", "--device-key", lock, "--device-cert", "\(pki)/lock1/device.pem", "--lifetime", "30m",
                "--out", "\(pki)/lock1/short", "--wait",
            ] + node)
        XCTAssertTrue(issued.contains("final in block"), issued)
        let short = "\(pki)/lock1/short/cert.pem"
        let verified = try ok(["cert", "verify", short] + node)
        XCTAssertTrue(verified.contains("valid at height"), verified)
        let ossl = try openssl([
            "verify", "-CAfile", "\(pki)/root.pem", "-untrusted", "\(pki)/lock1/device.pem", short,
        ])
        XCTAssertEqual(ossl.status, 0, ossl.output)
        // Exported from the chain: the same chain files OpenSSL accepts.
        guard let id = try ok(["cert", "inspect", short]).firstMatch(of: #/id +([0-9a-f]{64})/#).map({ String($0.1) })
        else {
            return XCTFail("no id")
        }
        try ok(["cert", "export", "--id", id, "--out", path("tls")] + node)
        XCTAssertEqual(
            try openssl([
                "verify", "-CAfile", path("tls/root.pem"), "-untrusted", path("tls/chain.pem"), path("tls/cert.pem"),
            ])
            .status, 0)
        let json = try Harness.json(try HTTPClient(baseURL: daemon.url), "/v1/certs/\(id)")
        XCTAssertEqual(json["status"] as? String, "valid")
        XCTAssertEqual((json["chain"] as? [Any])?.count, 3)

        // A device checks it with the light client (the device session over CoAP, trusting only the genesis).
        let checked = try ok(["device", "cert", short] + device)
        XCTAssertTrue(checked.contains("certificate VALID"), checked)
        let unknown = try Harness.amars(["device", "cert", String(repeating: "cd", count: 32)] + device)
        XCTAssertEqual(unknown.status, 2, unknown.output + unknown.error)
        XCTAssertTrue(unknown.output.contains("absence proven"), unknown.output)

        // The lock renews as a device does (`amars device renew`: the session signs, publishes and proves it over
        // CoAP); OpenSSL accepts the renewed chain, and the light client proves it valid.
        let renewed = try ok(
            [
                "device", "renew", "--device-key", lock, "--device-cert", "\(pki)/lock1/device.pem", "--lifetime",
                "10m", "--out", "\(pki)/lock1/renewed",
            ] + device)
        XCTAssertTrue(renewed.contains("issued      certificate"), renewed)
        XCTAssertTrue(renewed.contains("final       at height"), renewed)
        XCTAssertTrue(renewed.contains("short-lived certificate"), renewed)
        let renewedPEM = "\(pki)/lock1/renewed/cert.pem"
        XCTAssertEqual(
            try openssl(["verify", "-CAfile", "\(pki)/root.pem", "-untrusted", "\(pki)/lock1/device.pem", renewedPEM])
                .status, 0)
        let renewedInspect = try ok(["cert", "inspect", renewedPEM])
        XCTAssertTrue(renewedInspect.contains("subject     \(lockAddress)"), renewedInspect)
        XCTAssertTrue(
            try ok(["device", "cert", renewedPEM, "--root", "\(pki)/root.pem"] + device).contains("certificate VALID"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(pki)/lock1/renewed/key.pending"))
        // Anyone may anchor a root: under another root than the operator's, the same valid chain is refused.
        try ok([
            "cert", "ca", "init", "--key", stranger, "--name", "Stranger root", "--out", path("other"), "--no-publish",
        ])
        let otherRoot = try Harness.amars(["device", "cert", renewedPEM, "--root", path("other/root.pem")] + device)
        XCTAssertEqual(otherRoot.status, 3, otherRoot.output + otherRoot.error)
        XCTAssertTrue(otherRoot.output.contains("another root"), otherRoot.output)
        try refused(
            [
                "device", "renew", "--device-key", ops, "--device-cert", "\(pki)/lock1/device.pem", "--out",
                path("r"),
            ] + device, "is not the key of --device-cert")

        // A stranger cannot revoke; the root's key revokes the lock, and its short-lived certificate falls with it.
        try refused(["cert", "revoke", "--key", stranger, "--cert", "\(pki)/lock1/device.pem"] + node, "notAnAncestor")
        let revoked = try ok(
            ["cert", "revoke", "--key", ops, "--cert", "\(pki)/lock1/device.pem", "--reason", "1", "--wait"] + node)
        XCTAssertTrue(revoked.contains("final in block"), revoked)
        try refused(["cert", "verify", short] + node, "(an ancestor)")
        try refused(["cert", "verify", "\(pki)/lock1/device.pem"] + node, "revoked")
        let fallen = try Harness.amars(["device", "cert", short] + device)
        XCTAssertEqual(fallen.status, 3, fallen.output + fallen.error)
        XCTAssertTrue(
            fallen.output.contains("REVOKED at height") && fallen.output.contains("an ancestor"), fallen.output)
        try refused(
            [
                "cert", "issue", "--device-key", lock, "--device-cert", "\(pki)/lock1/device.pem", "--lifetime", "1h",
                "--out", path("again"),
            ] + node, "issuerNotValid")
        // Revoked, the lock's own renewal is refused by the gateway with the chain's reason; nothing is written.
        try refused(
            [
                "device", "renew", "--device-key", lock, "--device-cert", "\(pki)/lock1/device.pem", "--lifetime",
                "1h", "--out", path("again2"),
            ] + device, "issuerNotValid")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("again2/key")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("again2/key.pending")))
        // Garbage is refused with the reason, and an unknown id says so.
        FileManager.default.createFile(atPath: path("junk.pem"), contents: Data("not a certificate".utf8))
        try refused(["cert", "inspect", path("junk.pem")], "not a certificate of the chain's profile")
        try refused(["cert", "verify", "--id", String(repeating: "ab", count: 32)] + node, "is not on chain")
    }

    /// `--require-device-certificate`: the CoAP door takes a lock's payment only once the lock has a valid
    /// certificate, and refuses it again from the block that revokes it; wallets (HTTP) are not affected.
    func testGatewayRequiringCertificatesRefusesUncertifiedAndRevokedDevices() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 100, coapPort: coapPort, arguments: ["--require-device-certificate"])
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let ops = path("keys/app-user-incentive.key")
        let lock = path("lock.key")
        let pki = path("pki")
        try ok(["cert", "ca", "init", "--key", ops, "--name", "Root", "--out", pki, "--wait"] + node)
        try ok(
            [
                "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", lock, "--out",
                "\(pki)/lock",
                "--no-publish",
            ] + node)
        let lockAddress = try ok(["address", "--key", lock]).trimmingCharacters(in: .whitespacesAndNewlines)
        let opsAddress = try ok(["address", "--key", ops]).trimmingCharacters(in: .whitespacesAndNewlines)
        // Wallets over HTTP are not devices: funding the lock works without any certificate.
        try ok(["transfer", "--key", ops, "--to", lockAddress, "--amount", "5", "--wait"] + node)
        let device = [
            "device", "send", "--key", lock, "--to", opsAddress, "--amount", "1", "--coap",
            "coap://127.0.0.1:\(coapPort)",
            "--genesis", path("genesis.json"),
        ]
        try refused(device, "certificateRequired")
        try ok(
            [
                "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", lock, "--out",
                "\(pki)/lock", "--wait",
            ] + node)
        let paid = try ok(device)
        XCTAssertTrue(paid.lowercased().contains("final") || paid.contains("included"), paid)
        try ok(["cert", "revoke", "--key", ops, "--cert", "\(pki)/lock/device.pem", "--wait"] + node)
        try refused(device, "certificateRequired")
    }

    /// `cert fleet` enrolls several devices with a manifest; `cert renew --daemon` keeps publishing fresh
    /// short-lived certificates, each valid on chain, until it is stopped.
    func testFleetAndRenewDaemon() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let ops = path("keys/app-user-incentive.key")
        let pki = path("pki")
        try ok(["cert", "ca", "init", "--key", ops, "--name", "Fleet root", "--out", pki, "--wait"] + node)
        try refused(
            [
                "cert", "fleet", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--count", "3", "--kind", "toaster",
                "--out", path("x"),
            ] + node, "--kind must be lock, bulb or terminal")
        let fleet = try ok(
            [
                "cert", "fleet", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--count", "3", "--kind", "bulb",
                "--out", "\(pki)/bulbs", "--wait",
            ] + node)
        XCTAssertTrue(fleet.contains("3 bulb certificate(s) published"), fleet)
        let manifest = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(pki)/bulbs/fleet.json")))
                as? [String: Any])
        let devices = try XCTUnwrap(manifest["devices"] as? [[String: Any]])
        XCTAssertEqual(devices.map { $0["name"] as? String }, ["bulb-1", "bulb-2", "bulb-3"])
        XCTAssertEqual(Set(devices.compactMap { $0["account"] as? String }).count, 3)
        for device in devices {
            let verified = try ok(["cert", "verify", "--id", try XCTUnwrap(device["certificate"] as? String)] + node)
            XCTAssertTrue(verified.contains("valid at height"), verified)
        }

        // The renewal daemon for bulb-1, every second: at least two certificates in a row, each valid on chain.
        let bulb = "\(pki)/bulbs/bulb-1"
        try ok(
            [
                "transfer", "--key", ops, "--to", try XCTUnwrap(devices[0]["account"] as? String), "--amount", "5",
                "--wait",
            ] + node)
        let p = Process()
        p.executableURL = Harness.binDirectory.appendingPathComponent("amars")
        p.arguments =
            [
                "cert", "renew", "--device-key", "\(pki)/bulbs/bulb-1.key", "--device-cert", "\(bulb)/device.pem",
                "--lifetime", "5m", "--renew-every", "1", "--out", "\(bulb)/short", "--daemon",
            ] + node
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(20)
        while seen.count < 2, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            guard FileManager.default.fileExists(atPath: "\(bulb)/short/cert.pem"),
                let id = try? ok(["cert", "inspect", "\(bulb)/short/cert.pem"]).firstMatch(of: #/id +([0-9a-f]{64})/#)
                    .map({ String($0.1) }), !seen.contains(id)
            else { continue }
            // Valid once final: the daemon waits for each publish before it sleeps.
            let verdict = try Harness.amars(["cert", "verify", "--id", id] + node)
            if verdict.status == 0 { seen.append(id) }
        }
        XCTAssertEqual(seen.count, 2, "the daemon should have renewed at least once")
        XCTAssertTrue(p.isRunning, "a renewal daemon keeps running")
        p.terminate()
        p.waitUntilExit()
    }
}
