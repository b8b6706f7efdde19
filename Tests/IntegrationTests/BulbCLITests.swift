import AmarsTestSupport
import Foundation
import XCTest

/// The command door end to end with the real binaries: a household's root and a phone enrolled under it, the
/// phone's `amars bulb` commands queued at the gateway, `amars device commands` fetching them over CoAP as the
/// bulb does and judging them with the bulb's own code (obeyed, a replayed counter refused); a stranger's key
/// and, after the root revokes the phone on chain, the phone itself refused at the door.
final class BulbCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-bulb" }

    func testAPhoneCommandsABulbThroughTheDoorUntilItIsRevoked() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100, coapPort: coapPort)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let device = ["--coap", "coap://127.0.0.1:\(coapPort)", "--genesis", path("genesis.json")]
        let ops = path("keys/app-user-incentive.key")
        let stranger = path("keys/strategic-partners.key")
        let pki = path("pki")
        try ok(["cert", "ca", "init", "--key", ops, "--name", "Home", "--out", pki, "--wait"] + node)
        try ok(
            [
                "cert", "enroll", "--ca-key", ops, "--ca-cert", "\(pki)/root.pem", "--device-key", path("phone.key"),
                "--out", "\(pki)/phone", "--wait",
            ] + node)
        let bundle = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(pki)/phone/bundle.json")))
                as? [String: Any])
        let phoneCertificate = try XCTUnwrap(bundle["certificate"] as? String)
        let bulb = try ok(["address", "--key", path("keys/reserve-fund.key")])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let phone = ["--key", path("phone.key"), "--cert", "\(pki)/phone/device.pem", "--to", bulb]

        let queued = try ok(["bulb"] + phone + ["--dim", "40", "--counter", "5"] + node)
        XCTAssertTrue(queued.contains("queued      dim 40% for \(bulb), counter 5"), queued)
        // The same counter again: the door takes it (it keeps no counters), the bulb will refuse it.
        try ok(["bulb"] + phone + ["--off", "--counter", "5"] + node)
        try refused(
            ["bulb", "--key", stranger, "--cert", "\(pki)/phone/device.pem", "--to", bulb, "--on"] + node,
            "keyNotCertified")
        try refused(["bulb"] + phone + node, "one of --on, --off or --dim")
        try refused(["bulb"] + phone + ["--dim", "101"] + node, "--dim must be 0 to 100")

        let seen = try Harness.amars(
            ["device", "commands", "--device", bulb, "--controllers", phoneCertificate] + device)
        XCTAssertEqual(seen.status, 3, seen.output + seen.error)
        XCTAssertTrue(seen.output.contains("dim 40%, counter 5"), seen.output)
        XCTAssertTrue(seen.output.contains("OBEYS: the light is on at 40%"), seen.output)
        XCTAssertTrue(seen.output.contains("REFUSED: command replayed"), seen.output)
        let next = try XCTUnwrap(seen.output.split(separator: "\n").last { $0.hasPrefix("next") })
        let after = String(try XCTUnwrap(next.split(separator: " ").last))
        let none = try ok(["device", "commands", "--device", bulb, "--after", after] + device)
        XCTAssertTrue(none.contains("commands    none waiting after sequence \(after)"), none)

        // Revoked on chain: the door refuses the phone from then on.
        try ok(["cert", "revoke", "--key", ops, "--cert", "\(pki)/phone/device.pem", "--wait"] + node)
        try refused(["bulb"] + phone + ["--on"] + node, "certificateNotValid")
    }
}
