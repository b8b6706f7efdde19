import AmarsClient
import AmarsCodec
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The device's side of HTLCs and channels with the real binaries against a gateway: `amars device htlc` proves a
/// contract and claims it through the light client, refusing before signing what the chain would refuse; channel
/// messages travel through the gateway's channel door (`--post` over HTTP, `amars device channel --fetch` over
/// CoAP), a relayed payment code included, from Alice through Bob to Charlie, with no file handed between parties.
final class DeviceContractCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-devcontract" }

    func testDeviceClaimsAnHTLCAndChannelMessagesTravelThroughTheDoor() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100, coapPort: coapPort)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let device = ["--coap", "coap://127.0.0.1:\(coapPort)", "--genesis", path("genesis.json")]
        let alice = path("keys/app-user-incentive.key")
        let bob = path("keys/strategic-partners.key")
        try ok(["key", "new", "--out", path("keys/charlie.key")])
        let charlie = path("keys/charlie.key")
        func address(_ key: String) throws -> String {
            try ok(["address", "--key", key]).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        // HTLC: proven, refused before signing when the chain would refuse, then claimed.
        let locked = try ok(
            [
                "htlc", "lock", "--key", alice, "--to", try address(bob), "--amount", "2", "--secret-out",
                path("secret.hex"), "--blocks", "500", "--wait",
            ] + node)
        let lockID = try XCTUnwrap(locked.firstMatch(of: #/lock id ([0-9a-f]{64})/#).map { String($0.1) })
        XCTAssertTrue(try ok(["device", "htlc", lockID] + device).contains("htlc        open, 2 AMSC from"))
        try refused(
            ["device", "htlc", lockID, "--key", bob, "--secret", String(repeating: "00", count: 32)] + device,
            "wrongPreimage", status: 3)
        try refused(
            ["device", "htlc", lockID, "--key", alice, "--secret", path("secret.hex")] + device, "notRecipient",
            status: 3)
        let claimed = try ok(["device", "htlc", lockID, "--key", bob, "--secret", path("secret.hex")] + device)
        XCTAssertTrue(claimed.contains("claimable   2 AMSC for this device"), claimed)
        XCTAssertTrue(claimed.contains("claimed     2 AMSC"), claimed)
        XCTAssertTrue(claimed.contains("receipt     success"), claimed)
        XCTAssertTrue(try ok(["htlc", "show", lockID] + node).contains("claimed"))
        try refused(
            ["device", "htlc", lockID, "--key", bob, "--secret", path("secret.hex")] + device, "htlcNotOpen", status: 3)

        // Channel updates through the door: posted by Alice over HTTP, fetched and judged by Bob over CoAP.
        func channelID(_ out: String) throws -> String {
            try XCTUnwrap(out.firstMatch(of: #/channel id ([0-9a-f]{64})/#).map { String($0.1) }, out)
        }
        let ch1 = try channelID(
            try ok(
                ["channel", "open", "--key", alice, "--to", try address(bob), "--deposit", "2", "--wait"] + node))
        let ch2 = try channelID(
            try ok(
                ["channel", "open", "--key", bob, "--to", try address(charlie), "--deposit", "2", "--wait"] + node))
        let (aliceDir, bobDir, charlieDir) = (
            ["--dir", path("alice-ch")], ["--dir", path("bob-ch")], ["--dir", path("charlie-ch")]
        )
        for _ in 0..<2 {
            let paid = try Harness.amars(
                ["channel", "pay", "--key", alice, "--id", ch1, "--amount", "0.1", "--post", "--out", path("u.hex")]
                    + aliceDir + node)
            XCTAssertEqual(paid.status, 0, paid.error)
            XCTAssertTrue(paid.error.contains("posted at the gateway's channel door as message"), paid.error)
        }
        let fetched = try ok(["device", "channel", ch1, "--fetch", "--key", bob] + bobDir + device)
        XCTAssertTrue(fetched.contains("channel     open, deposit 2 AMSC"), fetched)
        XCTAssertTrue(fetched.contains("accepted: settles 0.1 AMSC of 2 AMSC (+0.1)"), fetched)
        XCTAssertTrue(fetched.contains("accepted: settles 0.2 AMSC of 2 AMSC (+0.1)"), fetched)
        XCTAssertTrue(fetched.contains("fetched     2 message(s)"), fetched)
        XCTAssertTrue(
            try ok(["device", "channel", ch1, "--fetch", "--key", bob] + bobDir + device).contains(
                "fetched     0 message(s)"))
        // Only the recipient reads: Alice, the sender, is refused.
        try refused(
            ["device", "channel", ch1, "--fetch", "--key", alice] + aliceDir + device, "is not the channel's recipient")
        // The door itself refuses a tampered update (HTTP 403 with the chain's code) and keeps nothing.
        var tampered = try Hex.decode(
            try String(contentsOfFile: path("u.hex"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        tampered[tampered.count - 1] ^= 1
        let http = try HTTPClient(baseURL: daemon.url, timeoutSeconds: 10)
        let refusedPost = try http.post(
            "/v1/channel-messages", body: [0] + tampered, contentType: "application/octet-stream")
        XCTAssertEqual(refusedPost.status, 403)
        XCTAssertTrue(String(decoding: refusedPost.body, as: UTF8.self).contains("badUpdateSignature"))
        XCTAssertTrue(
            try ok(["device", "channel", ch1, "--fetch", "--key", bob] + bobDir + device).contains(
                "fetched     0 message(s)"))

        // The relayed payment code, every message through the door.
        let aliceCode = String(try ok(["paycode", "show", "--key", alice]).split(separator: "\n")[0])
        let charlieCode = String(try ok(["paycode", "show", "--key", charlie]).split(separator: "\n")[0])
        try ok(
            [
                "paycode", "relay", "send", "--key", alice, "--to", charlieCode, "--channel", ch1, "--amount", "0.02",
                "--blocks", "300", "--post", "--out", path("sent-m1.hex"),
            ] + aliceDir + node)
        let atBob = try ok(["device", "channel", ch1, "--fetch", "--key", bob] + bobDir + device)
        let m1 = try XCTUnwrap(
            atBob.firstMatch(of: #/relay message written to (\S+):/#).map { String($0.1) }, atBob)
        try ok(
            [
                "paycode", "relay", "forward", "--key", bob, "--message", m1, "--from", ch1, "--channel", ch2,
                "--amount", "0.01", "--blocks", "200", "--post", "--out", path("sent-m2.hex"),
            ] + bobDir + node)
        let atCharlie = try ok(["device", "channel", ch2, "--fetch", "--key", charlie] + charlieDir + device)
        let m2 = try XCTUnwrap(
            atCharlie.firstMatch(of: #/relay message written to (\S+):/#).map { String($0.1) }, atCharlie)
        let unmasked = try ok(
            ["paycode", "relay", "claim", "--key", charlie, "--message", m2, "--channel", ch2] + charlieDir + node)
        XCTAssertTrue(unmasked.contains(aliceCode), unmasked)
    }
}
