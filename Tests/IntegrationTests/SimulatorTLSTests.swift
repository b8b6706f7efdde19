import AmarsTestSupport
import DeviceGateway
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `amars-sim` with its locks on the broker's TLS listener: given the operator's root (`--mqtt-ca-key`,
/// `--mqtt-ca-cert`, a key with no funds), it anchors the root, enrolls each MQTT lock with a published long-lived
/// certificate under it and a first short-lived one; each lock renews its short-lived certificate on chain through
/// DeviceCore's `renew` (what the renew firmware and `amars device renew` run), which a light client then proves
/// valid under the root, reconnects with it, submits on its own topic and hears its receipts there. The
/// broker (a `BrokerProcess` with the TLS listener, as `make devnet` runs it) knows nothing of the fleet but its
/// root. Its two terminals are paid by HTLC (`--htlc-share 1`): each claims its sale with the order's secret
/// through DeviceCore's `claim`, the operation the claim firmware and `amars device htlc` run.
final class SimulatorTLSTests: CLITestCase {
    override var directoryPrefix: String { "amars-sim-tls" }

    func testLocksReturnOverTheTLSListenerWithTheirOwnCertificates() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let (ops, pki) = try operatorPKI(name: "Fleet root")
        let (broker, tlsPort) = try tlsBroker(pki)
        defer { broker.stop(signal: SIGTERM) }
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 150, coapPort: coapPort,
            arguments: ["--mqtt", "127.0.0.1:\(broker.port)", "--mqtt-credentials", broker.credentialsPath])
        defer { daemon.stop() }

        let sim = Harness.binDirectory.appendingPathComponent("amars-sim").path
        let common = [
            "--genesis", path("genesis.json"), "--coap", "coap://127.0.0.1:\(coapPort)", "--node", daemon.url,
            "--funder", path("keys/app-user-incentive.key"), "--seed", "11", "--locks", "2",
            "--bulbs", "0", "--rounds", "1", "--mqtt-share", "1", "--mqtt", "127.0.0.1:\(tlsPort)",
        ]
        // Two terminals as well, paid by HTLC: each claims its sale with the order's secret (DeviceCore's `claim`).
        let run = try Harness.run(
            sim,
            common
                + [
                    "--terminals", "2",
                    "--mqtt-ca-key", ops, "--mqtt-ca-cert", "\(pki)/root.pem", "--report", path("report.json"),
                    "--htlc-share", "1",
                ], timeout: 180)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("mqtt: 2 locks connect over TLS, each with its own certificate"), run.output)
        XCTAssertTrue(
            run.output.contains("mqtt: 2 locks renewed their certificates on chain and connect with them"), run.output)
        let renewed = run.output.split(separator: "\n").compactMap { line -> String? in
            guard let r = line.range(of: #"certificate [0-9a-f]{64} renewed on chain"#, options: .regularExpression)
            else { return nil }
            return String(line[r].split(separator: " ")[1])
        }
        XCTAssertEqual(Set(renewed).count, 2, run.output)
        for id in renewed {
            let proven = try ok(
                [
                    "device", "cert", id, "--root", "\(pki)/root.pem", "--coap", "coap://127.0.0.1:\(coapPort)",
                    "--genesis", path("genesis.json"),
                ])
            XCTAssertTrue(proven.contains("certificate VALID"), proven)
        }
        let report = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json")))
                as? [String: Any])
        let actions = try XCTUnwrap(report["actions"] as? [String: [String: Any]])
        XCTAssertEqual(actions["return signed (MQTT)"]?["count"] as? Int, 2, "\(actions)")
        XCTAssertEqual(actions["certificate renewed on chain"]?["count"] as? Int, 2, "\(actions)")
        XCTAssertNil(actions["return signed (CoAP)"], "\(actions)")
        XCTAssertEqual(actions["sale claimed by HTLC"]?["count"] as? Int, 2, "\(actions)")
        XCTAssertNil(actions["sale proven paid"], "every sale went by HTLC: \(actions)")

        // Without certificates the TLS listener takes no lock: the run fails and says so.
        let bare = try Harness.run(sim, common + ["--terminals", "0"], timeout: 60)
        XCTAssertNotEqual(bare.status, 0, bare.output)
        // A root key that is not the certificate's is named before anything starts.
        try ok(["key", "new", "--unencrypted", "--out", path("other.key")])
        let mismatch = try Harness.run(
            sim,
            common + ["--terminals", "0", "--mqtt-ca-key", path("other.key"), "--mqtt-ca-cert", "\(pki)/root.pem"],
            timeout: 60)
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.output.contains("--mqtt-ca-key is not the key of --mqtt-ca-cert"), mismatch.output)
    }
}
