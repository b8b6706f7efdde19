import AmarsClient
import AmarsCodec
import Foundation
import XCTest

/// A payment channel with the real binaries against a gateway: opened on chain, paid many times off chain (the
/// sender's and the recipient's folders apart, the update carried as a file), every bad update refused by the
/// recipient with its reason and exit status 2, then closed with one transaction that pays the recipient exactly
/// what the newest update settles.
final class ChannelCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-channel" }

    func testOpenPayOffChainAcceptAndClose() throws {
        let parties = try twoParties()
        let daemon = parties.daemon
        defer { daemon.stop() }
        let (node, alice, bob, bobAddress) = (parties.node, parties.alice, parties.bob, parties.bobAddress)
        let (aliceDir, bobDir) = (["--dir", path("alice-ch")], ["--dir", path("bob-ch")])
        func channelID(_ out: String) throws -> String {
            try XCTUnwrap(out.firstMatch(of: #/channel id ([0-9a-f]{64})/#).map { String($0.1) }, out)
        }

        let opened = try ok(
            ["channel", "open", "--key", alice, "--to", bobAddress, "--deposit", "5", "--blocks", "600", "--wait"]
                + node)
        XCTAssertTrue(opened.contains("final in block"), opened)
        let id = try channelID(opened)
        let other = try channelID(
            try ok(
                ["channel", "open", "--key", alice, "--to", bobAddress, "--deposit", "1", "--blocks", "600", "--wait"]
                    + node))

        // Three single payments, each carried to the recipient and accepted.
        for i in 1...3 {
            let paid = try ok(
                ["channel", "pay", "--key", alice, "--id", id, "--amount", "0.1", "--out", path("u\(i).hex")] + aliceDir
                    + node)
            XCTAssertTrue(paid.contains("update settles 0.\(i) AMSC of 5 AMSC"), paid)
            let accepted = try ok(["channel", "accept", "--id", id, "--update", path("u\(i).hex")] + bobDir + node)
            XCTAssertTrue(accepted.contains("accepted: settles 0.\(i) AMSC of 5 AMSC (+0.1)"), accepted)
        }
        // A hundred more in one go: only the last update needs to travel.
        try ok(
            [
                "channel", "pay", "--key", alice, "--id", id, "--amount", "0.01", "--count", "100", "--out",
                path("u4.hex"),
            ]
                + aliceDir + node)
        XCTAssertTrue(
            try ok(["channel", "accept", "--id", id, "--update", path("u4.hex")] + bobDir + node).contains(
                "settles 1.3 AMSC"))

        // Carried twice (a retry): kept once, and not an error.
        XCTAssertTrue(
            try ok(["channel", "accept", "--id", id, "--update", path("u4.hex")] + bobDir + node).contains(
                "already kept: settles 1.3 AMSC"))

        // Bad updates: an older one, one for another channel, one whose amount was changed after signing, one
        // signed by a stranger's key; and the sender cannot promise more than the deposit.
        try refused(
            ["channel", "accept", "--id", id, "--update", path("u2.hex")] + bobDir + node, "staleUpdate", status: 2)
        try refused(
            ["channel", "accept", "--id", other, "--update", path("u4.hex")] + bobDir + node, "wrongChannel", status: 2)
        let good = try String(contentsOfFile: path("u4.hex"), encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        var tampered = Array(try Hex.decode(good))
        tampered[32] ^= 0x01  // the first byte of the settled amount's varint
        try refused(
            ["channel", "accept", "--id", id, "--update", Hex.encode(tampered)] + bobDir + node, "badUpdateSignature",
            status: 2)
        try refused(
            ["channel", "pay", "--key", bob, "--id", id, "--amount", "1", "--dir", path("bob-as-sender")] + node,
            "channelNotSender")
        try refused(
            ["channel", "pay", "--key", alice, "--id", id, "--amount", "4"] + aliceDir + node, "overDeposit")
        try refused(["channel", "accept", "--id", id, "--update", "00ff"] + bobDir + node, "not a channel update")
        try refused(["channel", "close", "--key", bob, "--id", other] + bobDir + node, "no update of channel")
        try refused(["channel", "refund", "--key", alice, "--id", id] + node, "channelRefundTooEarly")

        let shown = try ok(["channel", "show", id] + bobDir + node)
        XCTAssertTrue(shown.contains("channel   open") && shown.contains("kept      update settling 1.3 AMSC"), shown)
        let before = try Harness.json(try HTTPClient(baseURL: daemon.url), "/v1/accounts/\(bobAddress)")
        let closed = try ok(["channel", "close", "--key", bob, "--id", id, "--wait"] + bobDir + node)
        XCTAssertTrue(closed.contains("final in block"), closed)
        let after = try Harness.json(try HTTPClient(baseURL: daemon.url), "/v1/accounts/\(bobAddress)")
        let gained = (UInt64("\(after["balance"] ?? "")") ?? 0) - (UInt64("\(before["balance"] ?? "")") ?? 0)
        XCTAssertGreaterThan(gained, 1_290_000, "bob gets 1.3 AMSC minus his close's fee")
        XCTAssertLessThan(gained, 1_300_000)
        XCTAssertTrue(try ok(["channel", "show", id] + node).contains("closed, 1.3 AMSC paid to the recipient"))
        // The closed channel's state cannot be replayed, and nothing is left to refund.
        try refused(["channel", "close", "--key", bob, "--id", id] + bobDir + node, "channelNotOpen")
        try refused(["channel", "refund", "--key", alice, "--id", id] + node, "channelNotOpen")
        try refused(["channel", "show", String(repeating: "ab", count: 32)] + node, "no channel was opened")
    }
}
