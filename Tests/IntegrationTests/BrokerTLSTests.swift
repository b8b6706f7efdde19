import AmarsTestSupport
import DeviceGateway
import Foundation
import XCTest

/// The broker's TLS door with tools nobody here wrote: `openssl s_client` completes a TLS 1.2 handshake with a
/// device's short-lived certificate from `amars cert issue`; `mosquitto_pub` with that certificate reaches its own
/// `tx` topic (the gateway's login sees it), is kept off another device's, and without a certificate, or with one
/// from another root, gets no connection at all.
final class BrokerTLSTests: CLITestCase {
    override var directoryPrefix: String { "amars-broker-tls" }

    /// OpenSSL's settings for the broker's clients (secp256k1 among the TLS groups), set by ``start``.
    var tlsEnvironment: [String: String] = ProcessInfo.processInfo.environment

    func run(_ tool: String, _ arguments: [String], timeout: TimeInterval = 10) throws -> (
        status: Int32, output: String
    ) {
        try runTool(tool, arguments, environment: tlsEnvironment, timeout: timeout)
    }

    func testDevicesAuthenticateWithTheirCertificatesAndReachOnlyTheirOwnTopic() throws {
        let other = path("other.key")
        let (ops, pki) = try operatorPKI(name: "Broker root")
        try ok(["key", "new", "--unencrypted", "--out", other])
        let lock = path("lock.key")
        try ok([
            "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", lock, "--out",
            "\(pki)/lock", "--no-publish",
        ])
        try ok([
            "cert", "issue", "--device-key", lock, "--device-cert", "\(pki)/lock/device.pem", "--lifetime", "1h",
            "--out", "\(pki)/lock/short", "--no-publish",
        ])
        let lockAddress = try ok(["address", "--key", lock]).trimmingCharacters(in: .whitespacesAndNewlines)
        let strangerAddress = try ok(["address", "--key", ops]).trimmingCharacters(in: .whitespacesAndNewlines)
        // A device of another root.
        try ok(["cert", "ca", "init", "--key", other, "--name", "Other root", "--out", path("other"), "--no-publish"])
        let rogue = path("rogue.key")
        try ok([
            "cert", "enroll", "--ca-key", other, "--ca-cert", path("other/root.pem"), "--device-key", rogue, "--out",
            path("other/rogue"), "--no-publish",
        ])
        try ok([
            "cert", "issue", "--device-key", rogue, "--device-cert", path("other/rogue/device.pem"), "--lifetime", "1h",
            "--out", path("other/rogue/short"), "--no-publish",
        ])

        let (broker, tlsPort) = try tlsBroker(pki)
        defer { broker.stop(signal: SIGTERM) }
        tlsEnvironment["OPENSSL_CONF"] = broker.openSSLConfigPath
        let login = try broker.gatewayCredentials

        // OpenSSL's own client: a TLS 1.2 handshake with the lock's short-lived certificate, the chain verified.
        let handshake = try run(
            "/usr/bin/openssl",
            [
                "s_client", "-connect", "127.0.0.1:\(tlsPort)", "-tls1_2", "-CAfile", "\(pki)/root.pem",
                "-cert", "\(pki)/lock/short/cert.pem", "-cert_chain", "\(pki)/lock/short/chain.pem", "-key",
                "\(pki)/lock/short/key.pem", "-verify_return_error",
                "-brief",
            ], timeout: 5)
        XCTAssertTrue(handshake.output.contains("Protocol version: TLSv1.2"), handshake.output)
        XCTAssertTrue(handshake.output.contains("Verification: OK"), handshake.output)

        // Every publish is retained, so what the broker let through is still there for the gateway's login to
        // read afterwards (no race with a subscriber starting); a refused publish is dropped, not retained.
        let tls = [
            "-h", "127.0.0.1", "-p", "\(tlsPort)", "--cafile", "\(pki)/root.pem", "--cert",
            "\(pki)/lock/short/chain.pem", "--key", "\(pki)/lock/short/key.pem", "-q", "1", "-r",
        ]
        let own = try run("/usr/bin/mosquitto_pub", tls + ["-t", "amars/v1/tx/\(lockAddress)", "-m", "own-topic"])
        XCTAssertEqual(own.status, 0, own.output)
        _ = try run("/usr/bin/mosquitto_pub", tls + ["-t", "amars/v1/tx/\(strangerAddress)", "-m", "someone-else"])
        _ = try run("/usr/bin/mosquitto_pub", tls + ["-t", "amars/v1/head", "-m", "forged-head"])
        let anonymous = try run(
            "/usr/bin/mosquitto_pub",
            [
                "-h", "127.0.0.1", "-p", "\(tlsPort)", "--cafile", "\(pki)/root.pem", "-t", "amars/v1/tx/x", "-m",
                "anon", "-r",
            ])
        XCTAssertNotEqual(anonymous.status, 0, anonymous.output)
        let foreign = try run(
            "/usr/bin/mosquitto_pub",
            [
                "-h", "127.0.0.1", "-p", "\(tlsPort)", "--cafile", "\(pki)/root.pem", "--cert",
                path("other/rogue/short/chain.pem"), "--key", path("other/rogue/short/key.pem"), "-t",
                "amars/v1/tx/x", "-m", "foreign", "-r",
            ])
        XCTAssertNotEqual(foreign.status, 0, foreign.output)
        // The gateway's login on the plain loopback listener reads every retained message, for 2 s.
        let got = try run(
            "/usr/bin/mosquitto_sub",
            [
                "-h", "127.0.0.1", "-p", "\(broker.port)", "-u", login.username, "-P", login.password, "-t",
                "amars/v1/#", "-v", "-W", "2",
            ], timeout: 10
        ).output
        XCTAssertTrue(got.contains("amars/v1/tx/\(lockAddress) own-topic"), got)
        XCTAssertFalse(got.contains("someone-else"), got)
        XCTAssertFalse(got.contains("forged-head"), got)
        XCTAssertFalse(got.contains("anon") || got.contains("foreign"), got)
    }

    /// A host device pays over the TLS listener with its short-lived certificate: `amars device send --mqtt
    /// --tls-cert --tls-key --tls-ca` connects as its account, submits on its own topic, hears the gateway's
    /// receipts there and proves the transfer final over CoAP. A key that is not the certificate's is named.
    func testAHostDeviceSubmitsOverTLSWithItsShortLivedCertificate() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let lock = path("lock.key")
        let (ops, pki) = try operatorPKI(name: "Fleet root")
        try ok([
            "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", lock, "--out",
            "\(pki)/lock", "--no-publish",
        ])
        try ok([
            "cert", "issue", "--device-key", lock, "--device-cert", "\(pki)/lock/device.pem", "--lifetime", "1h",
            "--out", "\(pki)/lock/short", "--no-publish",
        ])
        let (broker, tlsPort) = try tlsBroker(pki)
        defer { broker.stop(signal: SIGTERM) }
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 100, coapPort: coapPort,
            arguments: [
                "--mqtt", "127.0.0.1:\(broker.port)", "--mqtt-credentials",
                broker.credentialsPath,
            ])
        defer { daemon.stop() }
        let lockAddress = try ok(["address", "--key", lock]).trimmingCharacters(in: .whitespacesAndNewlines)
        try ok(
            [
                "transfer", "--key", path("keys/app-user-incentive.key"), "--to", lockAddress, "--amount", "2",
                "--wait", "--node", daemon.url,
            ])
        let device = ["--coap", "coap://127.0.0.1:\(coapPort)", "--genesis", path("genesis.json")]
        let tls = [
            "--mqtt", "127.0.0.1:\(tlsPort)", "--tls-cert", "\(pki)/lock/short/chain.pem", "--tls-key",
            "\(pki)/lock/short/key.pem", "--tls-ca", "\(pki)/root.pem",
        ]
        let recipient = try ok(["address", "--key", ops]).trimmingCharacters(in: .whitespacesAndNewlines)
        let sent = try ok(
            ["device", "send", "--key", lock, "--to", recipient, "--amount", "0.5", "--timeout", "30"] + tls + device)
        XCTAssertTrue(sent.contains("announced   final at height"), sent)
        XCTAssertTrue(sent.contains("receipt     success"), sent)
        XCTAssertTrue(try ok(["balance", recipient, "--node", daemon.url]).contains("0.5"))
        // Another short-lived certificate's key with this chain, and a file that is no key: each named before any
        // connection.
        try ok([
            "cert", "issue", "--device-key", lock, "--device-cert", "\(pki)/lock/device.pem", "--lifetime", "1h",
            "--out", "\(pki)/lock/other", "--no-publish",
        ])
        for (keyFile, said) in [
            ("\(pki)/lock/other/key.pem", "is not the key of the certificate"),
            ("\(pki)/lock/short/cert.pem", "TLS: cannot read the key"),
        ] {
            try refused(
                [
                    "device", "send", "--key", lock, "--to", recipient, "--amount", "0.1", "--mqtt",
                    "127.0.0.1:\(tlsPort)", "--tls-cert", "\(pki)/lock/short/chain.pem", "--tls-key", keyFile,
                    "--tls-ca", "\(pki)/root.pem",
                ] + device, said)
        }
    }
    /// A gateway given the broker's directory (`--broker-dir`) denies there a device from the block that revokes
    /// its certificate: before, the lock's `mosquitto_pub` (MQTT 5, so a refusal comes back as a reason code) is
    /// taken; once `amars cert revoke` is final at height N, the same command is refused "Not authorized" while
    /// the head is still at N or N + 1, and stays refused after the broker restarts. Its sibling under the same root
    /// is never refused.
    func testARevokedDeviceIsDeniedByTheBrokerWithinOneBlock() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let ops = path("keys/app-user-incentive.key")
        let pki = path("pki")
        try ok(["cert", "ca", "init", "--key", ops, "--name", "Fleet root", "--out", pki, "--no-publish"])
        try ok([
            "cert", "server", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--ip", "127.0.0.1", "--out",
            "\(pki)/broker",
        ])
        let (broker, tlsPort) = try tlsBroker(pki)
        defer { broker.stop(signal: SIGTERM) }
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 1000,
            arguments: [
                "--mqtt", "127.0.0.1:\(broker.port)", "--mqtt-credentials", broker.credentialsPath, "--broker-dir",
                broker.directory.path,
            ])
        defer { daemon.stop() }
        tlsEnvironment["OPENSSL_CONF"] = broker.openSSLConfigPath
        let node = ["--node", daemon.url]
        try ok(["cert", "publish", "--key", ops, "\(pki)/root.pem", "--wait"] + node)
        var accounts: [String: String] = [:]
        for name in ["lock", "bulb"] {
            let key = path("\(name).key")
            try ok(
                [
                    "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", key, "--out",
                    "\(pki)/\(name)", "--wait",
                ] + node)
            try ok([
                "cert", "issue", "--device-key", key, "--device-cert", "\(pki)/\(name)/device.pem", "--lifetime", "1h",
                "--out", "\(pki)/\(name)/short", "--no-publish",
            ])
            accounts[name] = try ok(["address", "--key", key]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func publish(_ name: String) throws -> String {
            try run(
                "/usr/bin/mosquitto_pub",
                [
                    "-V", "5", "-h", "127.0.0.1", "-p", "\(tlsPort)", "--cafile", "\(pki)/root.pem", "--cert",
                    "\(pki)/\(name)/short/chain.pem", "--key", "\(pki)/\(name)/short/key.pem", "-q", "1", "-t",
                    "amars/v1/tx/\(accounts[name]!)", "-m", "x",
                ]
            ).output
        }
        // mosquitto_pub exits 0 on a refused MQTT 5 publish too: what tells them apart is the reason it prints.
        for name in ["lock", "bulb"] {
            let before = try publish(name)
            XCTAssertFalse(before.contains("Not authorized"), before)
        }
        XCTAssertEqual(broker.denyList.accounts(), [])

        let revoked = try ok(["cert", "revoke", "--key", ops, "--cert", "\(pki)/lock/device.pem", "--wait"] + node)
        guard let range = revoked.range(of: #"final in block (\d+)"#, options: .regularExpression),
            let height = UInt64(revoked[range].split(separator: " ").last!)
        else { return XCTFail(revoked) }
        var refusedAt: UInt64?
        let deadline = Date().addingTimeInterval(5)
        while refusedAt == nil, Date() < deadline {
            if try publish("lock").contains("Not authorized") {
                refusedAt = try headHeight(daemon.url)
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        guard let refusedAt else { return XCTFail("the broker still serves the revoked lock") }
        XCTAssertLessThanOrEqual(refusedAt, height + 1, "refused only at height \(refusedAt), revoked at \(height)")
        XCTAssertEqual(broker.denyList.accounts().map(\.bech32), [accounts["lock"]!])
        XCTAssertFalse(try publish("bulb").contains("Not authorized"))

        // The broker reads the list again when it starts.
        broker.stop(signal: SIGTERM)
        try broker.start()
        XCTAssertTrue(try publish("lock").contains("Not authorized"))
        XCTAssertFalse(try publish("bulb").contains("Not authorized"))
    }

    func headHeight(_ url: String) throws -> UInt64 {
        let head = try ok(["head", "--node", url])
        guard let range = head.range(of: #"height\D*(\d+)"#, options: .regularExpression),
            let h = UInt64(head[range].filter(\.isNumber))
        else { throw NSError(domain: "head", code: 1, userInfo: [NSLocalizedDescriptionKey: head]) }
        return h
    }
}

/// What the TLS tests share: an operator's root and the broker's server certificate, made off chain (the broker
/// checks certificates against the root file it was given), and a broker listening with TLS under that root.
extension CLITestCase {
    /// `ops.key` and `pki/` (root.pem, broker/server.pem and server-key.pem) in the test directory.
    func operatorPKI(name: String) throws -> (ops: String, pki: String) {
        let ops = path("ops.key")
        let pki = path("pki")
        try ok(["key", "new", "--unencrypted", "--out", ops])
        try ok(["cert", "ca", "init", "--key", ops, "--name", name, "--out", pki, "--no-publish"])
        try ok([
            "cert", "server", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--ip", "127.0.0.1", "--out",
            "\(pki)/broker",
        ])
        return (ops, pki)
    }

    /// The broker a gateway runs, with its TLS listener for devices with certificates under `pki`'s root, started;
    /// stop it with `stop(signal:)`.
    func tlsBroker(_ pki: String) throws -> (broker: BrokerProcess, tlsPort: Int) {
        let tlsPort = try BrokerProcess.freePort()
        let broker = try BrokerProcess(
            directory: dir.appendingPathComponent("broker"),
            tls: BrokerProcess.TLSListener(
                port: tlsPort, caFile: "\(pki)/root.pem", certFile: "\(pki)/broker/server.pem",
                keyFile: "\(pki)/broker/server-key.pem"))
        try broker.start()
        _ = try broker.gatewayCredentials
        return (broker, tlsPort)
    }
}
