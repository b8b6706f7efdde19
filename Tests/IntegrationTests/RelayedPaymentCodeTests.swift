import AmarsClient
import AmarsCodec
import Foundation
import XCTest

/// The white paper's relayable payment code (§7.1) with the real binaries, each party a separate `amars` process
/// talking to its own gateway of a four-gateway devnet: Alice tells Charlie her payment code through Bob over two
/// payment channels, Bob is paid for the relay only once Charlie unmasked it, and Alice then pays Charlie at a
/// one-time address. One gateway is SIGKILLed in the middle of the flow and rejoins; nothing is lost. The chain
/// ends up holding the channel opens and closes, the transfers, and no notification.
final class RelayedPaymentCodeTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-relay" }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func line(_ out: String, _ label: String) throws -> String {
        try XCTUnwrap(
            out.split(separator: "\n").first { $0.hasPrefix(label) }.map {
                String($0.dropFirst(label.count)).trimmingCharacters(in: .whitespaces)
            }, out)
    }

    func balance(_ url: String, _ address: String) throws -> UInt64 {
        let account = try Harness.json(try HTTPClient(baseURL: url), "/v1/accounts/\(address)")
        return UInt64("\(account["balance"] ?? "")") ?? 0
    }

    func testAliceNotifiesCharlieThroughBobWithNoNotificationOnChain() throws {
        nodes = try MultiNodeTests.TestNode.startedDevnet(dir: dir, epochLength: 10)
        let url = nodes.map { "http://127.0.0.1:\($0.port)" }
        // Each party has its own gateway.
        let (atAlice, atBob, atCharlie) = (["--node", url[0]], ["--node", url[2]], ["--node", url[3]])
        var keys: [String: String] = [:]
        var address: [String: String] = [:]
        for name in ["alice", "bob", "charlie", "dave"] {
            keys[name] = path("\(name).key")
            try ok(["key", "new", "--unencrypted", "--out", keys[name]!])
            address[name] = try ok(["address", "--key", keys[name]!]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for name in ["alice", "bob"] {
            try ok(
                [
                    "transfer", "--key", path("keys/app-user-incentive.key"), "--to", address[name]!, "--amount", "10",
                    "--wait",
                ] + atAlice)
        }
        let (alice, bob, charlie) = (keys["alice"]!, keys["bob"]!, keys["charlie"]!)
        let aliceCode = try ok(["paycode", "show", "--key", alice]).split(separator: "\n")[0]
        let charlieShown = try ok(["paycode", "show", "--key", charlie]).split(separator: "\n")
        let charlieCode = String(charlieShown[0])
        let charlieNotification = String(charlieShown[1].split(separator: " ").last!)
        func channelID(_ out: String) throws -> String {
            try XCTUnwrap(out.firstMatch(of: #/channel id ([0-9a-f]{64})/#).map { String($0.1) }, out)
        }
        let ch1 = try channelID(
            try ok(
                [
                    "channel", "open", "--key", alice, "--to", address["bob"]!, "--deposit", "2", "--blocks", "600",
                    "--wait",
                ] + atAlice))
        let ch2 = try channelID(
            try ok(
                [
                    "channel", "open", "--key", bob, "--to", address["charlie"]!, "--deposit", "2", "--blocks", "600",
                    "--wait",
                ] + atBob))
        let (aliceDir, bobDir, charlieDir) = (
            ["--dir", path("alice-ch")], ["--dir", path("bob-ch")],
            ["--dir", path("charlie-ch")]
        )

        // Alice → Bob: her code masked for Charlie, 0.02 AMSC locked to its hash.
        let sent = try ok(
            [
                "paycode", "relay", "send", "--key", alice, "--to", charlieCode, "--channel", ch1, "--amount", "0.02",
                "--blocks", "300", "--out", path("m1.hex"),
            ] + aliceDir + atAlice)
        XCTAssertTrue(sent.contains("for \(charlieNotification)"), sent)
        // A gateway dies mid-flow; the parties go on through the others.
        nodes[1].kill()

        // Bob → Charlie: only for less, and only expiring well before Alice's condition.
        try refused(
            [
                "paycode", "relay", "forward", "--key", bob, "--message", path("m1.hex"), "--from", ch1, "--channel",
                ch2,
                "--amount", "0.02", "--out", path("m2.hex"),
            ] + bobDir + atBob, "must be less than")
        try refused(
            [
                "paycode", "relay", "forward", "--key", bob, "--message", path("m1.hex"), "--from", ch1, "--channel",
                ch2,
                "--amount", "0.01", "--blocks", "295", "--out", path("m2.hex"),
            ] + bobDir + atBob, "at least 10")
        try ok(
            [
                "paycode", "relay", "forward", "--key", bob, "--message", path("m1.hex"), "--from", ch1, "--channel",
                ch2,
                "--amount", "0.01", "--blocks", "200", "--out", path("m2.hex"),
            ] + bobDir + atBob)

        // Only Charlie can read it; a forged message is refused.
        try refused(
            [
                "paycode", "relay", "claim", "--key", keys["dave"]!, "--message", path("m2.hex"), "--channel", ch2,
                "--dir", path("dave-ch"),
            ] + atCharlie, "not your notification address", status: 2)
        let message = try String(contentsOfFile: path("m2.hex"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var forged = Array(try Hex.decode(message))
        forged[forged.count - 64 - 40] ^= 0x01  // inside the masked chain code
        try refused(
            ["paycode", "relay", "claim", "--key", charlie, "--message", Hex.encode(forged), "--channel", ch2]
                + charlieDir + atCharlie, "relayHashMismatch", status: 2)
        let claimed = try ok(
            [
                "paycode", "relay", "claim", "--key", charlie, "--message", path("m2.hex"), "--channel", ch2,
                "--secret-out", path("secret.hex"),
            ] + charlieDir + atCharlie)
        XCTAssertEqual(try line(claimed, "payer"), String(aliceCode))
        let secret = try line(claimed, "secret")
        // Claiming again (say the first run's output was lost) yields the same secret.
        let again = try ok(
            ["paycode", "relay", "claim", "--key", charlie, "--message", path("m2.hex"), "--channel", ch2]
                + charlieDir + atCharlie)
        XCTAssertEqual(try line(again, "secret"), secret)

        // The secret settles both hops off chain: Bob pays Charlie, Alice pays Bob.
        try ok(
            ["channel", "settle", "--key", bob, "--id", ch2, "--secret", secret, "--out", path("s2.hex")]
                + bobDir + atBob)
        XCTAssertTrue(
            try ok(["channel", "accept", "--id", ch2, "--update", path("s2.hex")] + charlieDir + atCharlie).contains(
                "settles 0.01 AMSC"))
        try refused(
            ["channel", "settle", "--key", alice, "--id", ch1, "--secret", String(repeating: "00", count: 32)]
                + aliceDir + atAlice, "unmatchedPreimage")
        try ok(
            ["channel", "settle", "--key", alice, "--id", ch1, "--secret", secret, "--out", path("s1.hex")]
                + aliceDir + atAlice)
        XCTAssertTrue(
            try ok(["channel", "accept", "--id", ch1, "--update", path("s1.hex")] + bobDir + atBob).contains(
                "settles 0.02 AMSC"))

        // The killed gateway comes back and catches up.
        try nodes[1].start()
        let target = nodes[0].head()?.height ?? 0
        XCTAssertTrue(Harness.wait(30) { (self.nodes[1].head()?.height ?? 0) >= target }, "node 2 did not catch up")
        let restarted = "http://127.0.0.1:\(nodes[1].port)"  // its HTTP port is drawn afresh

        // Alice pays Charlie at a one-time address, through the gateway that was down; Charlie finds it.
        let paid = try ok(
            [
                "paycode", "pay", "--key", alice, "--to", charlieCode, "--amount", "1", "--relayed", "--wait", "--node",
                restarted,
            ])
        let oneTime = try XCTUnwrap(paid.firstMatch(of: #/one-time address (amsc1[0-9a-z]+)/#).map { String($0.1) })
        // The epoch of the payment must finish before its filter exists.
        let paidHeight = nodes[0].head()?.height ?? 0
        XCTAssertTrue(Harness.wait(30) { (self.nodes[0].head()?.height ?? 0) >= paidHeight + 11 })
        let scan = try ok(["paycode", "scan", "--key", charlie, "--payer", String(aliceCode)] + atCharlie)
        XCTAssertTrue(scan.contains("1 over a relay"), scan)
        XCTAssertTrue(scan.contains("paid at \(oneTime)") && scan.contains("notified by a relay"), scan)

        // Both close with the newest updates: Charlie gets the 0.01 Bob settled (and Bob the rest of his 2 AMSC
        // deposit back), Bob the 0.02 Alice settled.
        let (charlieBefore, bobBefore) = (
            try balance(url[0], address["charlie"]!), try balance(url[0], address["bob"]!)
        )
        try ok(
            [
                "transfer", "--key", path("keys/app-user-incentive.key"), "--to", address["charlie"]!, "--amount", "1",
                "--wait",
            ] + atAlice)
        try ok(["channel", "close", "--key", charlie, "--id", ch2, "--wait"] + charlieDir + atCharlie)
        try ok(["channel", "close", "--key", bob, "--id", ch1, "--wait"] + bobDir + atBob)
        XCTAssertTrue(try ok(["channel", "show", ch2] + atAlice).contains("closed, 0.01 AMSC paid"))
        XCTAssertTrue(try ok(["channel", "show", ch1] + atAlice).contains("closed, 0.02 AMSC paid"))
        let charlieGain = Int64(try balance(url[0], address["charlie"]!)) - Int64(charlieBefore)
        XCTAssertGreaterThan(charlieGain, 1_010_000 - 20_000, "1 AMSC topped up + 0.01 from the channel, minus a fee")
        XCTAssertLessThan(charlieGain, 1_010_000)
        let bobGain = Int64(try balance(url[0], address["bob"]!)) - Int64(bobBefore)
        XCTAssertGreaterThan(bobGain, 20_000 + 1_990_000 - 20_000, "0.02 from Alice + 1.99 back from ch2, minus a fee")
        XCTAssertLessThan(bobGain, 20_000 + 1_990_000)

        // On chain: opens, closes and transfers; no notification to Charlie, nothing naming his code.
        let client = try HTTPClient(baseURL: restarted)
        var kinds: [String: Int] = [:]
        let head = UInt64("\(try Harness.json(client, "/v1/head")["height"] ?? 0)") ?? 0
        for height in 1...head {
            let block = try Harness.json(client, "/v1/blocks/\(height)")
            for tx in block["transactions"] as? [[String: Any]] ?? [] { kinds["\(tx["kind"] ?? "")", default: 0] += 1 }
        }
        XCTAssertEqual(kinds["channelOpen"], 2, "\(kinds)")
        XCTAssertEqual(kinds["channelClose"], 2, "\(kinds)")
        XCTAssertNil(kinds["paymentCodeNotify"], "\(kinds)")
        let notified = try Harness.json(client, "/v1/accounts/\(charlieNotification)/notifications")
        XCTAssertEqual((notified["notifications"] as? [Any])?.count ?? -1, 0, "\(notified)")
        XCTAssertEqual(try Harness.json(client, "/v1/supply")["conserved"] as? Bool, true)
        let agreed = nodes.map { $0.head()?.height ?? 0 }.min() ?? 0
        for h in 1...agreed {
            XCTAssertEqual(Set(nodes.map { $0.block(h)?.hash ?? "missing" }).count, 1, "height \(h): gateways disagree")
        }
    }
}
