import AmarsClient
import AmarsCodec
import AmarsCrypto
import Foundation
import XCTest

/// A board that keeps its own short-lived certificate, end to end with real processes: the renewing firmware
/// (`FIRMWARE_APP=renew`) for qemu-mps2-an386 under QEMU's instruction counter, a devnet of four `amarsd node`
/// gateways, and an operator's root and the device's long-lived certificate made with `amars cert`.
///
/// The board derives a fresh key, signs its certificate with its long-lived key (ECDSA without the generator
/// table), publishes it from its own account and proves it final. Another gateway then shows the certificate valid
/// under the device's, OpenSSL accepts the chain the board extended, and a peer board (`FIRMWARE_APP=peer`) trusts it.
/// Once the root revokes the device, the same image is refused by the gateway (exit status 10, `issuerNotValid`) with
/// its nonce unused, and the peer board refuses the certificate (exit status 89, revoked).
final class FirmwareRenewTests: FirmwareDevnetTestCase {
    override var directoryPrefix: String { "amars-fwrenew" }

    func testBoardRenewsItsCertificateOnChainAndIsRefusedOnceRevoked() throws {
        try Harness.requireBoardToolchain(for: "firmware certificate renewal test")
        let (device, coapPort) = try startChainAndDevnet(id: 4_082, name: "firmware-renew")
        let node2 = ["--node", "http://127.0.0.1:\(nodes[1].port)"]
        let node4 = "http://127.0.0.1:\(nodes[3].port)"
        let ops = path("keys/app-user-incentive.key")
        let pki = path("pki")
        func amars(_ arguments: [String]) throws {
            let r = try Harness.amars(arguments)
            XCTAssertEqual(r.status, 0, "amars \(arguments.joined(separator: " ")): \(r.output)\(r.error)")
        }
        try amars(["cert", "ca", "init", "--key", ops, "--name", "Board fleet root", "--out", pki, "--wait"] + node2)
        try amars(
            [
                "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key",
                path("keys/device.key"), "--out", "\(pki)/board", "--wait",
            ] + node2)
        // The device pays for its certificates from its own account.
        try amars(["transfer", "--key", ops, "--to", device, "--amount", "2", "--wait"] + node2)

        let make = [
            "-C", Self.boards, "BOARD=qemu-mps2-an386", "FIRMWARE_APP=renew", "GENESIS=\(path("genesis.json"))",
            "HOST_BUILD=\(Harness.binDirectory.path)", "DEVICE_KEY=\(path("keys/device.key"))", "CERT_LIFETIME=3600",
            "STORAGE_DIR=\(path("flash"))",
        ]
        let build = try Harness.run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }
        let first = try boot(make, coapPort, extra: ["SYNC_COUNT=1"])
        let log = first.output
        print(log)
        XCTAssertEqual(first.status, 0, "renewing firmware failed:\n\(log.suffix(6000))")
        XCTAssertTrue(log.contains("renew: RENEWED"), log)
        XCTAssertTrue(log.contains("renew: PASS"), log)
        let freshKey = try XCTUnwrap(
            log.firstMatch(of: #/for fresh key ([0-9a-f]{66}), lifetime 3600 s/#).map { String($0.1) }, log)
        let match = try XCTUnwrap(
            log.firstMatch(of: #/renew: certificate ([0-9a-f]{64}) valid (\d+) to (\d+)/#), log)
        let id = String(match.1)
        XCTAssertEqual(UInt64(match.3)! - UInt64(match.2)!, 3_600)

        // Another gateway holds it, valid, issued by the device's certificate for the key the board printed.
        let record = try Harness.json(try HTTPClient(baseURL: node4, timeoutSeconds: 10), "/v1/certs/\(id)")
        XCTAssertEqual(record["status"] as? String, "valid", "\(record)")
        XCTAssertEqual(record["subject"] as? String, device, "\(record)")
        XCTAssertEqual(record["issuerAccount"] as? String, device, "\(record)")
        XCTAssertEqual(record["ca"] as? Bool, false, "\(record)")
        XCTAssertEqual((record["chain"] as? [Any])?.count, 3, "\(record)")
        let der = try XCTUnwrap(record["der"] as? String)
        XCTAssertTrue(der.contains(freshKey), "the certificate is not for the key the board printed")
        // OpenSSL checks the board's ECDSA signature and the chain it extended.
        try Hex.decode(der).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path("board.der"))) }
        let pem = try Harness.run(
            "/usr/bin/openssl", ["x509", "-inform", "DER", "-in", path("board.der"), "-out", path("board.pem")],
            timeout: 30)
        XCTAssertEqual(pem.status, 0, pem.output)
        let verified = try Harness.run(
            "/usr/bin/openssl",
            ["verify", "-CAfile", "\(pki)/root.pem", "-untrusted", "\(pki)/board/device.pem", path("board.pem")],
            timeout: 30)
        XCTAssertEqual(verified.status, 0, verified.output)
        XCTAssertTrue(verified.output.contains(": OK"), verified.output)

        // The device's work for the renewal, counted by QEMU with every exchange and wait on the link left out:
        // at least its two signatures (ECDSA and BIP340, over a million instructions each).
        let counted = try String(
            contentsOfFile: Self.boards + "/build/qemu-mps2-an386/renew/count.txt", encoding: .utf8)
        let work = counted.matches(of: #/interval \d+: (\d+)/#).map { UInt64($0.1)! }.reduce(0, +)
        XCTAssertGreaterThan(work, 2_000_000, counted)
        print("renew: \(work) instructions of device work (QEMU count)")

        // A peer board (FIRMWARE_APP=peer) provisioned with that certificate's id trusts it: every record up to the
        // root proven on chain and valid at a verified header's time.
        let inspected = try Harness.amars(["cert", "inspect", "\(pki)/root.pem"])
        let rootID = try XCTUnwrap(inspected.output.firstMatch(of: #/id +([0-9a-f]{64})/#).map { String($0.1) })
        let peer = [
            "-C", Self.boards, "BOARD=qemu-mps2-an386", "FIRMWARE_APP=peer", "GENESIS=\(path("genesis.json"))",
            "HOST_BUILD=\(Harness.binDirectory.path)", "PEER_CERT=\(id)", "PEER_ROOT=\(rootID)",
            "STORAGE_DIR=\(path("peer-flash"))",
        ]
        let peerBuild = try Harness.run("/usr/bin/env", ["make"] + peer + ["sync-firmware"], timeout: 1800)
        guard peerBuild.status == 0 else {
            return XCTFail("make -C Boards sync-firmware (peer) failed:\n\(peerBuild.output.suffix(4000))")
        }
        let trusted = try boot(peer, coapPort, extra: ["SYNC_COUNT=1"])
        print(trusted.output)
        XCTAssertEqual(trusted.status, 0, trusted.output.suffix(6000).description)
        XCTAssertTrue(trusted.output.contains("peer: TRUSTED"), trusted.output)
        XCTAssertTrue(trusted.output.contains("under the operator's root"), trusted.output)
        let peerWork = try String(
            contentsOfFile: Self.boards + "/build/qemu-mps2-an386/peer/count.txt", encoding: .utf8
        ).matches(of: #/interval \d+: (\d+)/#).map { UInt64($0.1)! }.reduce(0, +)
        print("peer: \(peerWork) instructions of device work (QEMU count)")

        // The root revokes the device: the same image is refused by the gateway, with nothing spent.
        let revoke = try Harness.amars(
            ["cert", "revoke", "--key", ops, "--cert", "\(pki)/board/device.pem", "--wait"] + node2)
        XCTAssertEqual(revoke.status, 0, revoke.output + revoke.error)
        let revokedAt = try XCTUnwrap(revoke.output.firstMatch(of: #/final in block (\d+)/#).map { String($0.1) })
        let nonceBefore = try nonce(node4, device)
        let second = try boot(make, coapPort)
        XCTAssertTrue(second.output.contains("firmware exit status 10"), second.output.suffix(4000).description)
        XCTAssertTrue(second.output.contains("issuerNotValid"), second.output.suffix(4000).description)
        // Power-cycled, the board found its last renewal in flash and derived the same key again (its TLS key).
        XCTAssertNotNil(
            second.output.range(
                of: #"renew: last certificate \#(id), its key \(counter \d+\) \#(freshKey)"#,
                options: .regularExpression),
            second.output.suffix(4000).description)
        XCTAssertFalse(log.contains("renew: last certificate"), "a first boot has no saved renewal")
        XCTAssertEqual(try nonce(node4, device), nonceBefore, "the refused renewal was included")
        // And the peer refuses the certificate it trusted: it fell with the device's, at the revoking block.
        let refusedPeer = try boot(peer, coapPort)
        XCTAssertTrue(
            refusedPeer.output.contains("firmware exit status 89"), refusedPeer.output.suffix(4000).description)
        XCTAssertNotNil(
            refusedPeer.output.range(
                of: #"peer: REFUSED: revoked at height \#(revokedAt)\b"#, options: .regularExpression),
            "not revoked at block \(revokedAt): \(refusedPeer.output)")
        XCTAssertTrue(log.contains("pay: submitted"), log)
        XCTAssertFalse(second.output.contains("pay: submitted"), second.output)
        assertAgreement()
    }
}
