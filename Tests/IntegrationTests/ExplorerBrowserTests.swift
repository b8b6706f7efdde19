import AmarsClient
import Foundation
import XCTest

/// The explorer in a real browser: headless Chromium (driven by `Tests/Browser/browse.py` over the DevTools
/// protocol) loads every page type from a running gateway, finds the values the API holds, and reports no script
/// errors; a payment shows up on an open account page without a reload; `zbarimg` reads the request page's QR
/// code back into the payment request, and `amars` pays it.
final class ExplorerBrowserTests: CLITestCase {
    override var directoryPrefix: String { "amars-explorer" }

    static let browse = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Browser/browse.py").path

    /// Waits until the page has rendered (or failed), then runs `steps`; returns the printed lines. Fails the test
    /// with the script's one-line reason when a step fails (a page error included).
    @discardableResult
    func browse(
        _ url: String, _ steps: [String], onLine: (String) -> Void = { _ in }, file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> [String] {
        var lines: [String] = []
        let ready = #"wait:document.getElementById("view").dataset.ready==="1""#
        let r = try Harness.run(
            "/usr/bin/env",
            ["python3", Self.browse, url, ready, #"print:document.getElementById("error").textContent"#]
                + steps + ["errors"], timeout: 90
        ) {
            lines.append($0)
            onLine($0)
        }
        XCTAssertEqual(r.status, 0, "browse \(url): \(r.output)", file: file, line: line)
        guard r.status == 0 else { return [] }
        // The first printed value is the page's own error box, which must be empty.
        XCTAssertEqual(lines.first, "\"\"", "the page showed an error at \(url)", file: file, line: line)
        return Array(lines.dropFirst())
    }

    /// A JSON string the script printed, unquoted.
    func text(_ line: String?) -> String {
        guard let line, let data = line.data(using: .utf8),
            let value = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)
        else { return line ?? "" }
        return "\(value)"
    }

    func testEveryPageRendersInChromiumLiveWithItsProofCheckedAndItsQRCodeReadable() throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/zbarimg"] where !FileManager.default.fileExists(atPath: tool) {
            return XCTFail("\(tool) is missing: run scripts/install-deps.sh")
        }
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys")])
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 300)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let client = try HTTPClient(baseURL: daemon.url)
        let funder = path("keys/app-user-incentive.key")
        let aliceKey = path("keys/alice.key")
        try ok(["key", "new", "--out", aliceKey])
        let alice = try ok(["address", "--key", aliceKey]).trimmingCharacters(in: .whitespacesAndNewlines)
        let funderAddress = try ok(["address", "--key", funder]).trimmingCharacters(in: .whitespacesAndNewlines)

        // A request made by `amars request` and paid with `amars transfer --request`, memo and all.
        let uri = try ok(["request", "--to", alice, "--amount", "3", "--memo", "order 17", "--no-qr"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(uri, "amarscity:\(alice)?amount=3&memo=order%2017")
        let paid = try ok(["transfer", "--key", funder, "--request", uri, "--wait"] + node)
        XCTAssertNotNil(paid.firstMatch(of: #/fee +expected [0-9.]+ AMSC .*; at most [0-9.]+ AMSC/#), paid)
        guard let txID = paid.firstMatch(of: #/transaction ([0-9a-f]{64})/#).map({ String($0.1) }),
            let height = paid.firstMatch(of: #/final in block (\d+)/#).flatMap({ UInt64($0.1) })
        else { return XCTFail("no transaction id or block in: \(paid)") }
        let block = try Harness.json(client, "/v1/blocks/\(height)")
        let blockHash = try XCTUnwrap(block["hash"] as? String)

        // An escrow, for its page and for search.
        let lock = try ok(["address", "--key", path("keys/strategic-partners.key")])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let opened = try ok(
            [
                "escrow", "open", "--key", funder, "--device", alice, "--owner", lock, "--deposit", "2", "--fee", "0.5",
                "--wait",
            ] + node)
        let escrowID = try XCTUnwrap(opened.firstMatch(of: #/escrow id\s+([0-9a-f]{64})/#).map { String($0.1) })
        let candidates = try XCTUnwrap(Harness.json(client, "/v1/candidates")["candidates"] as? [[String: Any]])
        let candidate = try XCTUnwrap(candidates.first)
        let candidateOwner = try XCTUnwrap(candidate["owner"] as? String)
        let candidateName = try XCTUnwrap(candidate["name"] as? String)

        let view = #"print:document.getElementById("view").innerText"#
        // Home: the head and the fee a transfer costs now, in AMSC.
        let home = try browse(daemon.url + "/", [#"print:document.getElementById("transferFee").innerText"#, view])
        XCTAssertTrue(text(home.first).hasSuffix(" AMSC"), "\(home)")
        XCTAssertTrue(text(home.last).contains(candidateName), "\(home)")

        // Block: its transaction, and the certificate's signer by name.
        let blockPage = try browse(
            "\(daemon.url)/block/\(height)",
            [
                #"print:document.getElementById("blockHash").innerText"#,
                #"print:document.getElementById("transactions").innerText"#,
                #"print:document.getElementById("signers").innerText"#,
            ])
        XCTAssertEqual(text(blockPage.first), blockHash)
        XCTAssertTrue(text(blockPage.dropFirst().first).contains(String(txID.prefix(10))), "\(blockPage)")
        XCTAssertTrue(text(blockPage.last).contains(candidateName), "signers: \(blockPage)")

        // Transaction: amount, memo, fee, and the inclusion proof checked by the page's own hashing.
        let txPage = try browse(
            "\(daemon.url)/tx/\(txID)",
            [
                #"wait:document.getElementById("proof").dataset.verified"#,
                #"print:document.getElementById("proof").dataset.verified"#,
                #"print:document.getElementById("txAmount").innerText"#, view,
            ])
        XCTAssertEqual(txPage.first, "\"yes\"", "\(txPage)")
        XCTAssertEqual(text(txPage.dropFirst().first), "3 AMSC")
        XCTAssertTrue(text(txPage.last).contains("order 17"), "\(txPage)")

        // Candidate, epoch and escrow pages.
        let candidatePage = try browse(
            "\(daemon.url)/candidate/\(candidateOwner)",
            [
                #"print:document.getElementById("weight").innerText"#,
                #"print:document.getElementById("voterRewards").innerText"#, view,
            ])
        XCTAssertTrue(text(candidatePage.dropFirst().first).contains(" AMSC"), "\(candidatePage)")
        XCTAssertTrue(text(candidatePage.first).hasSuffix(" AMSC"), "\(candidatePage)")
        XCTAssertTrue(text(candidatePage.last).contains("Voters"), "\(candidatePage)")
        let epochPage = try browse("\(daemon.url)/epoch/0", [#"print:document.getElementById("committee").innerText"#])
        XCTAssertTrue(text(epochPage.first).contains(candidateName), "\(epochPage)")
        let escrowPage = try browse(
            "\(daemon.url)/escrow/\(escrowID)", [#"print:document.getElementById("escrowStatus").innerText"#, view])
        XCTAssertEqual(text(escrowPage.first), "open")
        XCTAssertTrue(text(escrowPage.last).contains("2 AMSC"), "\(escrowPage)")

        // Search: each kind of query leads to its page, through the API and through the page's /search.
        let queries: [(String, String)] = [
            (String(height), "/block/\(height)"), (blockHash, "/block/\(height)"), (txID, "/tx/\(txID)"),
            (escrowID, "/escrow/\(escrowID)"), (alice, "/account/\(alice)"),
            (candidateOwner, "/candidate/\(candidateOwner)"), ("epoch 0", "/epoch/0"),
        ]
        for (q, expected) in queries {
            let found = try Harness.json(
                client, "/v1/search?q=\(q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q)")
            XCTAssertEqual(found["path"] as? String, expected, "search \(q)")
        }
        let searched = try browse("\(daemon.url)/search?q=\(txID)", ["print:location.pathname"])
        XCTAssertEqual(text(searched.first), "/tx/\(txID)")
        let typed = try browse(
            daemon.url + "/",
            [
                #"print:(document.getElementById("q").value = "\#(escrowID)", document.getElementById("search").requestSubmit(), 1)"#,
                #"wait:location.pathname.startsWith("/escrow/")"#, "print:location.pathname",
            ])
        XCTAssertEqual(text(typed.last), "/escrow/\(escrowID)")

        // Account: the earlier payment, then a new one arriving live, within two blocks, without a reload.
        var sent: (id: String, height: UInt64)?
        let accountPage = try browse(
            "\(daemon.url)/account/\(alice)",
            [
                #"print:document.getElementById("balance").innerText"#,
                #"print:(window.loadedOnce = "marker", "loaded")"#,
                // The row and the balance come from two fetches on the same event: wait for both.
                ##"wait:document.querySelectorAll("#activity tr[data-id]").length >= 1 && document.getElementById("balance").innerText !== "3 AMSC""##,
                ##"print:[window.loadedOnce, document.querySelector("#activity tr[data-id]").dataset.id, document.querySelector("#activity tr[data-id]").dataset.head, document.getElementById("balance").innerText]"##,
            ]
        ) { line in
            guard line == "\"loaded\"" else { return }
            // The page is open and listening: pay alice now.
            guard let out = try? ok(["transfer", "--key", funder, "--to", alice, "--amount", "1.25", "--wait"] + node),
                let id = out.firstMatch(of: #/transaction ([0-9a-f]{64})/#).map({ String($0.1) }),
                let at = out.firstMatch(of: #/final in block (\d+)/#).flatMap({ UInt64($0.1) })
            else { return XCTFail("the live payment failed") }
            sent = (id, at)
        }
        XCTAssertEqual(text(accountPage.first), "3 AMSC")
        let live = try XCTUnwrap(
            (try? JSONSerialization.jsonObject(with: Data((accountPage.last ?? "").utf8))) as? [Any], "\(accountPage)")
        let paidLive = try XCTUnwrap(sent)
        XCTAssertEqual(live[0] as? String, "marker", "the page reloaded")
        XCTAssertEqual(live[1] as? String, paidLive.id)
        let seenAtHead = UInt64("\(live[2])") ?? .max
        XCTAssertLessThanOrEqual(seenAtHead, paidLive.height + 2, "the payment showed only after head \(seenAtHead)")
        XCTAssertEqual(live[3] as? String, "4.25 AMSC")
        _ = funderAddress

        // Request page: the QR code in the page decodes (zbarimg, from a screenshot) to the request, and pays.
        let shot = path("request.png")
        try browse(
            "\(daemon.url)/request?to=\(alice)&amount=0.5&memo=table%204",
            [
                #"wait:document.getElementById("requestOut").dataset.ready==="1""#,
                #"print:document.getElementById("uri").textContent"#, "screenshot:\(shot)",
            ])
        let decoded = try Harness.run("/usr/bin/zbarimg", ["-q", "--raw", shot], timeout: 30)
        let scanned = decoded.output.split(separator: "\n").first { $0.hasPrefix("amarscity:") }.map(String.init)
        XCTAssertEqual(scanned, "amarscity:\(alice)?amount=0.5&memo=table%204", decoded.output)
        if let scanned {
            let payQR = try ok(["transfer", "--key", funder, "--request", scanned, "--wait"] + node)
            XCTAssertTrue(payQR.contains("sent 0.5 AMSC"), payQR)
        }
        let balance = try Harness.json(client, "/v1/accounts/\(alice)")
        XCTAssertEqual(balance["balance"] as? String, "4750000")
    }
}
