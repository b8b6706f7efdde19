import AmarsClient
import Foundation
import XCTest

/// The newcomer's path with the real binaries: genesis, a node, a key, a first transfer; and every bad input
/// answered with one clear line, a non-zero exit, and no change on the chain.
final class CLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Every binary says which release and which commit it was built from, the commit git reports for this tree.
    func testEveryBinaryNamesItsVersionAndCommit() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let git = try Harness.run("/usr/bin/git", ["-C", root, "rev-parse", "--short=12", "HEAD"], timeout: 10)
        let head = git.status == 0 ? git.output.trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
        for binary in ["amarsd", "amars", "amars-sim", "amars-bench"] {
            let r = try Harness.run(
                Harness.binDirectory.appendingPathComponent(binary).path, ["--version"], timeout: 10)
            XCTAssertEqual(r.status, 0, "\(binary) --version: \(r.output)")
            let line = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertNotNil(
                line.range(
                    of: #"^\d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(\+dirty)?|unknown)\)$"#, options: .regularExpression),
                "\(binary): \(line)")
            XCTAssertTrue(line.contains("commit \(head)"), "\(binary) was built from \(line), the tree is at \(head)")
        }
    }

    func testGenesisFirstTransferAndRefusals() throws {
        let created = try Harness.amars([
            "genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--unsold",
            "ico-stage-4=1000000.5",
        ])
        XCTAssertEqual(created.status, 0, created.error)
        let inspect = try Harness.amars(["genesis", "inspect", path("genesis.json")])
        XCTAssertEqual(inspect.status, 0, inspect.error)
        XCTAssertTrue(inspect.output.contains("allocated + burned = 500,000,000,000 AMSC"), inspect.output)
        XCTAssertTrue(inspect.output.contains("1,000,000.5"), "burned stage-4 tokens are listed: \(inspect.output)")
        let again = try Harness.amars(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys2")])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.error.contains("already exists"), again.error)
        // A genesis whose numbers do not add up is refused by inspect (and by amarsd).
        let text = try String(contentsOfFile: path("genesis.json"), encoding: .utf8)
        // Strategic partners' 9 B AMSC, written as a string of base units; one unit more breaks the category.
        let tampered = text.replacingOccurrences(of: "\"9000000000000000\"", with: "\"9000000000000001\"")
        XCTAssertNotEqual(tampered, text)
        try tampered.write(toFile: path("bad-genesis.json"), atomically: true, encoding: .utf8)
        let bad = try Harness.amars(["genesis", "inspect", path("bad-genesis.json")])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.error.contains("strategic-partners"), bad.error)

        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let alice = try Harness.amars(["key", "new", "--out", path("keys/alice.key")])
        XCTAssertEqual(alice.status, 0, alice.error)
        let address = try Harness.amars(["address", "--key", path("keys/alice.key")]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(address.hasPrefix("amsc1"))
        let pool = path("keys/app-user-incentive.key")
        let sent = try Harness.amars(["transfer", "--key", pool, "--to", address, "--amount", "10", "--wait"] + node)
        XCTAssertEqual(sent.status, 0, sent.error)
        XCTAssertTrue(sent.output.contains("final in block"), sent.output)
        let balance = try Harness.amars(["balance", address] + node)
        XCTAssertTrue(balance.output.contains("10 AMSC (10000000 units)"), balance.output)

        let client = try HTTPClient(baseURL: daemon.url)
        let refusals: [([String], String)] = [
            (
                ["transfer", "--key", path("keys/alice.key"), "--to", address, "--amount", "11"] + node,
                "insufficientBalance"
            ),
            (["transfer", "--key", pool, "--to", "amsc1notanaddress", "--amount", "1"] + node, "not an amsc address"),
            (["transfer", "--key", pool, "--to", address, "--amount", "0"] + node, "greater than zero"),
            (["transfer", "--key", pool, "--to", address, "--amount", "-1"] + node, "amount"),
            (
                ["transfer", "--key", pool, "--to", address, "--amount", "1", "--tip", "9", "--max-fee", "2"] + node,
                "--tip"
            ),
            (
                ["transfer", "--key", path("keys/missing.key"), "--to", address, "--amount", "1"] + node,
                "cannot read key file"
            ),
            (["transfer", "--key", path("genesis.json"), "--to", address, "--amount", "1"] + node, "64 hex digits"),
            (["balance", address, "--node", "http://127.0.0.1:1"], "cannot connect"),
            (["tx", "zz"] + node, "64 hex digits"),
        ]
        for (args, expected) in refusals {
            let before = try Harness.json(client, "/v1/accounts/\(address)")
            let r = try Harness.amars(args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.error.contains(expected), "\(args): \(r.error)")
            let after = try Harness.json(client, "/v1/accounts/\(address)")
            XCTAssertEqual(before["balance"] as? String, after["balance"] as? String)
            XCTAssertEqual(after["pending"] as? Int, 0)
        }
    }
}
