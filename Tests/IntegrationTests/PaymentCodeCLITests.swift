import AmarsClient
import AmarsCodec
import Chain
import DeviceCore
import Foundation
import Ledger
import PaymentCodes
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Payment codes with the real binaries against a gateway: two payers notify a receiver and pay it three times
/// at one-time addresses; the receiver finds all three by testing committed recipient filters and spends from
/// one; nothing on chain names the receiver's code, plain address or notification address as a payee.
final class PaymentCodeCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-paycode" }

    func address(_ key: String) throws -> String {
        try ok(["address", "--key", key]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testTwoPayersThreePaymentsFoundByFiltersAndSpent() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let client = try HTTPClient(baseURL: daemon.url)
        let alice = path("keys/app-user-incentive.key")
        let carol = path("keys/strategic-partners.key")
        let bob = path("keys/bob.key")
        try ok(["key", "new", "--out", bob])
        let shown = try ok(["paycode", "show", "--key", bob]).split(separator: "\n").map(String.init)
        let code = shown[0]
        XCTAssertTrue(code.hasPrefix("amscpc1"), code)
        guard let notificationAddress = shown[1].split(separator: " ").last.map(String.init) else {
            return XCTFail("no notification address: \(shown)")
        }
        let bobAddress = try address(bob)
        XCTAssertNotEqual(notificationAddress, bobAddress)

        // Refused before anything is sent.
        try refused(
            ["paycode", "pay", "--key", alice, "--to", code, "--amount", "1"] + node, "has no notification from")
        var broken = Array(code)
        broken[20] = broken[20] == "q" ? "p" : "q"
        try refused(
            ["paycode", "notify", "--key", alice, "--to", String(broken)] + node, "not a payment code")
        try refused(["paycode", "notify", "--key", alice, "--to", bobAddress] + node, "not a payment code")

        for payer in [alice, carol] {
            let notified = try ok(["paycode", "notify", "--key", payer, "--to", code, "--wait"] + node)
            XCTAssertTrue(notified.contains("final in block"), notified)
        }
        var oneTime: [String] = []
        for (payer, amount) in [(alice, "1.5"), (alice, "2"), (carol, "0.25")] {
            let paid = try ok(["paycode", "pay", "--key", payer, "--to", code, "--amount", amount, "--wait"] + node)
            XCTAssertTrue(paid.contains("final in block"), paid)
            guard let match = paid.firstMatch(of: #/one-time address (amsc1[0-9a-z]+) \(index (\d+)\)/#) else {
                return XCTFail("no one-time address: \(paid)")
            }
            oneTime.append(String(match.1))
        }
        XCTAssertEqual(Set(oneTime).count, 3, "every payment goes to its own address")
        XCTAssertFalse(oneTime.contains(bobAddress))
        XCTAssertFalse(oneTime.contains(notificationAddress))

        // The receiver finds them once the epochs holding them have finished and their filters are committed.
        var scan = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            scan = try ok(["paycode", "scan", "--key", bob] + node)
            if scan.components(separatedBy: "paid at ").count - 1 == 3 { break }
            Thread.sleep(forTimeInterval: 0.3)
        }
        XCTAssertTrue(scan.contains("2 payer(s) notified"), scan)
        for (address, balance) in zip(oneTime, ["1.5", "2", "0.25"]) {
            XCTAssertTrue(scan.contains("paid at \(address)"), "\(address) missing from:\n\(scan)")
            XCTAssertTrue(
                scan.contains(where: { _ in true })
                    && scan.split(separator: "\n").contains {
                        $0.contains(address) && $0.hasSuffix("balance \(balance) AMSC")
                    },
                "\(address) should hold \(balance):\n\(scan)")
        }

        // Spend from Alice's first one-time address with the derived key.
        guard
            let line = scan.split(separator: "\n").first(where: { $0.contains(oneTime[0]) }),
            let payer = line.firstMatch(of: #/payer (amscpc1[0-9a-z]+)/#)
        else { return XCTFail("no payer code in: \(scan)") }
        let spent = try ok(
            [
                "paycode", "spend", "--key", bob, "--payer", String(payer.1), "--index", "0", "--to", bobAddress,
                "--amount", "1", "--wait",
            ] + node)
        XCTAssertTrue(spent.contains("final in block"), spent)
        let account = try Harness.json(client, "/v1/accounts/\(bobAddress)")
        XCTAssertEqual(UInt64("\(account["balance"] ?? "")"), 1_000_000)
        // A wrong index derives another key, whose account holds nothing: the node refuses the spend.
        try refused(
            [
                "paycode", "spend", "--key", bob, "--payer", String(payer.1), "--index", "7", "--to", bobAddress,
                "--amount", "1",
            ] + node, "insufficient")

        // On chain the code's owner is never a payee: the notification address got only notifications, and the
        // transfers name only one-time addresses.
        let activity = try Harness.json(client, "/v1/accounts/\(notificationAddress)/transactions")
        let rows = activity["transactions"] as? [[String: Any]] ?? []
        XCTAssertEqual(rows.count, 2)
        XCTAssertTrue(rows.allSatisfy { $0["kind"] as? String == "paymentCodeNotify" }, "\(rows)")
        let notifications = try Harness.json(client, "/v1/accounts/\(notificationAddress)/notifications")
        XCTAssertEqual((notifications["notifications"] as? [Any])?.count, 2)
    }

    /// A device (`amars device paycode`, the portable receiver over CoAP, trusting only the genesis file) finds
    /// two payments by its payment code, keeps its cursors across runs (a power cycle), and finds the third
    /// payment, and only that, on the next run.
    func testDeviceReceivesByPaymentCodeAcrossRuns() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        // The gateway's request log (debug level) records every CoAP request with its query.
        let requestLog = dir.appendingPathComponent("amarsd.log")
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 100, coapPort: coapPort, arguments: ["--log-level", "debug"], stderr: requestLog)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let device = [
            "--coap", "coap://127.0.0.1:\(coapPort)", "--genesis", path("genesis.json"), "--state", path("lock.state"),
        ]
        let alice = path("keys/app-user-incentive.key")
        let lock = path("keys/lock.key")
        try ok(["key", "new", "--out", lock])
        let code = try ok(["paycode", "show", "--key", lock]).split(separator: "\n")[0]

        // Nothing yet: the device reads no notification and tests no filter.
        let empty = try ok(["device", "paycode", "--key", lock] + device)
        XCTAssertTrue(empty.contains("found       0 payment(s)"), empty)

        try ok(["paycode", "notify", "--key", alice, "--to", String(code), "--wait"] + node)
        for amount in ["1", "2"] {
            try ok(["paycode", "pay", "--key", alice, "--to", String(code), "--amount", amount, "--wait"] + node)
        }
        /// Runs the device until it has found `count` payments in all, each run going on from the saved cursors
        /// (a payment is found once the epoch holding it has finished): the runs' output, joined.
        func waitForPayments(_ count: Int) throws -> String {
            var out = ""
            var found = 0
            let deadline = Date().addingTimeInterval(30)
            while found < count, Date() < deadline {
                let run = try ok(["device", "paycode", "--key", lock] + device)
                found += run.components(separatedBy: "\npaid        ").count - 1
                out += run
                if found < count { Thread.sleep(forTimeInterval: 0.3) }
            }
            XCTAssertEqual(found, count, out)
            return out
        }
        let first = try waitForPayments(2)
        XCTAssertTrue(first.contains("payer added"), first)
        XCTAssertTrue(first.contains("paid        1 AMSC at"), first)
        XCTAssertTrue(first.contains("paid        2 AMSC at"), first)
        XCTAssertTrue(first.contains("checked against its committed hash"), first)

        // A new run resumes from the saved cursors: the same payments are not found again.
        let again = try ok(["device", "paycode", "--key", lock] + device)
        XCTAssertTrue(again.contains("found       0 payment(s)"), again)
        XCTAssertFalse(again.contains("payer added"), again)

        try ok(["paycode", "pay", "--key", alice, "--to", String(code), "--amount", "0.5", "--wait"] + node)
        let third = try waitForPayments(1)
        XCTAssertTrue(third.contains("paid        0.5 AMSC at"), third)
        XCTAssertTrue(third.contains("index 2)"), third)

        // The gateway learnt only the one-time accounts that were paid: the device watched a window of Alice's
        // one-time addresses beyond them in every epoch, tested them against the filters itself, and asked for
        // none of those. (The paid ones show, so the log does record account requests.)
        let aliceKeys = try PaymentCodeKeys(seed: try KeyFile.load(alice).secret.bytes)
        let lockCode = try PaymentCode(text: String(code))
        let asked = Set(
            try String(contentsOf: requestLog, encoding: .utf8).split(separator: "\n").compactMap { line in
                line.firstMatch(of: #/CoAP request v1/proof/account\?a=([0-9a-f]{40})/#).map { String($0.1) }
            })
        for index in UInt32(0)..<(3 + PaymentCodeReceiver.window) {
            let oneTime = try OneTimeKey.address(payer: aliceKeys, receiver: lockCode, index: index)
            if index < 3 {
                XCTAssertTrue(asked.contains(Hex.encode(oneTime.raw.bytes)), "paid index \(index) not proven: \(asked)")
            } else {
                XCTAssertFalse(asked.contains(Hex.encode(oneTime.raw.bytes)), "unpaid index \(index) was asked for")
            }
        }
    }
}
