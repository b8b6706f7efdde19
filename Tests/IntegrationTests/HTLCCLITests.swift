import AmarsClient
import AmarsCodec
import Foundation
import XCTest

/// HTLCs with the real binaries against a gateway: a lock claimed with its secret (which the chain then shows to
/// anyone), a wrong secret and an early refund refused with their reasons, and a lock refunded after its timeout.
final class HTLCCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-htlc" }

    func testLockClaimAndRefund() throws {
        let parties = try twoParties()
        let daemon = parties.daemon
        defer { daemon.stop() }
        let (node, alice, bob, bobAddress) = (parties.node, parties.alice, parties.bob, parties.bobAddress)
        func lockID(_ out: String) throws -> String {
            try XCTUnwrap(out.firstMatch(of: #/lock id ([0-9a-f]{64})/#).map { String($0.1) }, out)
        }

        try refused(["htlc", "lock", "--key", alice, "--to", bobAddress, "--amount", "1"] + node, "exactly one of")
        let locked = try ok(
            [
                "htlc", "lock", "--key", alice, "--to", bobAddress, "--amount", "2", "--secret-out", path("secret.hex"),
                "--blocks", "200", "--wait",
            ] + node)
        XCTAssertTrue(locked.contains("final in block"), locked)
        let id = try lockID(locked)
        XCTAssertTrue(try ok(["htlc", "show", id] + node).contains("htlc      open: 2 AMSC"))
        try refused(
            ["htlc", "claim", "--key", bob, "--id", id, "--secret", String(repeating: "ab", count: 32)] + node,
            "wrongPreimage")
        try refused(["htlc", "refund", "--key", alice, "--id", id] + node, "refundTooEarly")
        let before = try Harness.json(try HTTPClient(baseURL: daemon.url), "/v1/accounts/\(bobAddress)")
        let claimed = try ok(
            ["htlc", "claim", "--key", bob, "--id", id, "--secret", path("secret.hex"), "--wait"] + node)
        XCTAssertTrue(claimed.contains("final in block"), claimed)
        let shown = try ok(["htlc", "show", id] + node)
        let secret = try String(contentsOfFile: path("secret.hex"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(shown.contains("htlc      claimed") && shown.contains("secret    \(secret)"), shown)
        let after = try Harness.json(try HTTPClient(baseURL: daemon.url), "/v1/accounts/\(bobAddress)")
        let gained = (UInt64("\(after["balance"] ?? "")") ?? 0) - (UInt64("\(before["balance"] ?? "")") ?? 0)
        XCTAssertGreaterThan(gained, 1_990_000, "bob gets 2 AMSC minus his claim's fee")
        XCTAssertLessThan(gained, 2_000_000)

        // A short lock: after its timeout the recipient can no longer claim and the sender takes it back.
        let short = try ok(
            [
                "htlc", "lock", "--key", alice, "--to", bobAddress, "--amount", "1", "--secret-out", path("s2.hex"),
                "--blocks", "3", "--wait",
            ] + node)
        let shortID = try lockID(short)
        var refunded = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let r = try Harness.amars(["htlc", "refund", "--key", alice, "--id", shortID, "--wait"] + node)
            if r.status == 0 {
                refunded = r.output
                break
            }
            XCTAssertTrue(r.error.contains("refundTooEarly"), r.error)
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTAssertTrue(refunded.contains("final in block"), refunded)
        try refused(["htlc", "claim", "--key", bob, "--id", shortID, "--secret", path("s2.hex")] + node, "htlcNotOpen")
        XCTAssertTrue(try ok(["htlc", "show", shortID] + node).contains("htlc      refunded"))
    }
}
