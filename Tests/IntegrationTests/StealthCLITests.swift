import AmarsClient
import AmarsCodec
import Foundation
import XCTest

/// Stealth addresses with the real binaries against a gateway: two payers pay one stealth address three times;
/// the view-only key finds all three through the committed announcements and filters, another wallet finds
/// none, the wallet key spends from one, and nothing on chain names the receiver.
final class StealthCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-stealth" }

    func testThreePaymentsFoundWithTheViewKeyAndSpentWithTheWalletKey() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let client = try HTTPClient(baseURL: daemon.url)
        let alice = path("keys/app-user-incentive.key")
        let carol = path("keys/strategic-partners.key")
        let bob = path("keys/bob.key")
        try ok(["key", "new", "--out", bob])
        let bobAddress = try ok(["address", "--key", bob]).trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = try ok(["stealth", "address", "--key", bob]).split(separator: "\n").map(String.init)
        let stealth = shown[0]
        XCTAssertTrue(stealth.hasPrefix("amscst1"), stealth)
        let viewKey = try ok(["stealth", "view-key", "--key", bob]).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(viewKey.hasPrefix("amscsv1"), viewKey)
        FileManager.default.createFile(atPath: path("bob.view"), contents: Data(viewKey.utf8))
        FileManager.default.createFile(atPath: path("garbage.view"), contents: Data("amscsv1qqqq".utf8))

        // Refused before anything is sent.
        var broken = Array(stealth)
        broken[20] = broken[20] == "q" ? "p" : "q"
        try refused(
            ["stealth", "pay", "--key", alice, "--to", String(broken), "--amount", "1"] + node, "not a stealth address")
        try refused(
            ["stealth", "pay", "--key", alice, "--to", bobAddress, "--amount", "1"] + node, "not a stealth address")
        try refused(["stealth", "scan", "--key", bob, "--view-key", path("bob.view")] + node, "exactly one of")
        try refused(["stealth", "scan", "--view-key", path("garbage.view")] + node, "not a view key")

        var oneTime: [String] = []
        var ids: [String] = []
        for (payer, amount) in [(alice, "1.5"), (carol, "2"), (alice, "0.25")] {
            let paid = try ok(["stealth", "pay", "--key", payer, "--to", stealth, "--amount", amount, "--wait"] + node)
            XCTAssertTrue(paid.contains("final in block"), paid)
            guard let match = paid.firstMatch(of: #/one-time address (amsc1[0-9a-z]+)/#),
                let id = paid.firstMatch(of: #/transaction ([0-9a-f]{64})/#)
            else { return XCTFail("no one-time address: \(paid)") }
            oneTime.append(String(match.1))
            ids.append(String(id.1))
        }
        XCTAssertEqual(Set(oneTime).count, 3, "every payment goes to its own account")
        XCTAssertFalse(oneTime.contains(bobAddress))

        // On chain: a stealth transfer names the one-time account and R, neither of which is Bob's.
        let tx = try Harness.json(client, "/v1/tx/\(ids[0])")
        let body = (tx["transaction"] as? [String: Any]) ?? tx
        XCTAssertEqual(body["kind"] as? String, "stealthTransfer", "\(tx)")
        XCTAssertEqual(body["to"] as? String, oneTime[0])
        let r = try XCTUnwrap(body["ephemeralKey"] as? String)
        XCTAssertFalse(shown.contains { $0.hasSuffix(r) }, "R must not be one of Bob's keys")

        // The view key finds all three once their epochs have finished.
        var scan = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            scan = try ok(["stealth", "scan", "--view-key", path("bob.view")] + node)
            if scan.components(separatedBy: "paid at ").count - 1 == 3 { break }
            Thread.sleep(forTimeInterval: 0.3)
        }
        for (address, balance) in zip(oneTime, ["1.5", "2", "0.25"]) {
            XCTAssertTrue(
                scan.split(separator: "\n").contains {
                    $0.contains("paid at \(address)") && $0.hasSuffix("balance \(balance) AMSC")
                },
                "\(address) should hold \(balance):\n\(scan)")
        }
        XCTAssertTrue(scan.contains("3 announcement(s) checked"), scan)
        // The wallet key finds the same; another wallet finds nothing and asks for nothing.
        XCTAssertEqual(try ok(["stealth", "scan", "--key", bob] + node), scan)
        let other = try ok(["stealth", "scan", "--key", carol] + node)
        XCTAssertFalse(other.contains("paid at"), other)
        XCTAssertTrue(other.contains("0 account(s) matched a filter"), other)

        // The announcements are checked against their committed hash: one left out no longer verifies.
        guard let line = scan.split(separator: "\n").first(where: { $0.contains(oneTime[0]) }),
            let epochMatch = line.firstMatch(of: #/epoch (\d+)/#), let epoch = UInt64(epochMatch.1)
        else { return XCTFail("no epoch in: \(scan)") }
        let info = try NodeClient(baseURL: daemon.url).stealthAnnouncements(epoch: epoch)
        XCTAssertTrue(info.verify())
        XCTAssertTrue(info.announcements.contains { Hex.encode($0.ephemeralKey.compressed) == r })
        var cut = info
        cut.announcements.removeAll { Hex.encode($0.ephemeralKey.compressed) == r }
        XCTAssertFalse(cut.verify(), "a list with a payment left out must not match the committed hash")

        // Spend from the first one-time account with the wallet key; another wallet's key cannot.
        try refused(
            [
                "stealth", "spend", "--key", carol, "--from", oneTime[0], "--epoch", "\(epoch)", "--to", bobAddress,
                "--amount", "1",
            ] + node, "no stealth payment of epoch")
        let spent = try ok(
            [
                "stealth", "spend", "--key", bob, "--from", oneTime[0], "--epoch", "\(epoch)", "--to", bobAddress,
                "--amount", "1", "--wait",
            ] + node)
        XCTAssertTrue(spent.contains("final in block"), spent)
        let account = try Harness.json(client, "/v1/accounts/\(bobAddress)")
        XCTAssertEqual(UInt64("\(account["balance"] ?? "")"), 1_000_000)
    }
}
