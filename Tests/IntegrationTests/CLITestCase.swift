import Foundation
import XCTest

/// What the tests that drive the `amars` binary share: a fresh directory per test, and running a command that
/// must succeed (its output) or fail with a given message on stderr.
class CLITestCase: XCTestCase {
    var dir: URL!

    /// The directory's name prefix, so a kept test directory says which test left it.
    var directoryPrefix: String { "amars-cli" }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(directoryPrefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Two funded parties of a fresh genesis and a gateway for them: what the two-party payment tests start from.
    struct TwoParties {
        var daemon: Harness.Daemon
        /// `--node URL` for the CLI.
        var node: [String]
        var alice: String
        var bob: String
        var bobAddress: String
    }

    /// A genesis in the test directory, its gateway started (stop it with `daemon.stop()`), Alice and Bob its
    /// funded `app-user-incentive` and `strategic-partners` keys.
    func twoParties() throws -> TwoParties {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        let bob = path("keys/strategic-partners.key")
        return TwoParties(
            daemon: daemon, node: ["--node", daemon.url], alice: path("keys/app-user-incentive.key"), bob: bob,
            bobAddress: try ok(["address", "--key", bob]).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Running `amars` from any test (a CLI test, or a devnet test whose parties use the CLI).
extension XCTestCase {
    @discardableResult
    func ok(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try Harness.amars(args)
        XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")): \(r.error)", file: file, line: line)
        return r.output
    }

    /// Runs `amars args`, which must fail (with `status` when given) and say `needle` on stderr.
    func refused(
        _ args: [String], _ needle: String, status: Int32? = nil, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let r = try Harness.amars(args)
        XCTAssertNotEqual(r.status, 0, "\(args.joined(separator: " ")) should fail", file: file, line: line)
        if let status { XCTAssertEqual(r.status, status, r.error, file: file, line: line) }
        XCTAssertTrue(r.error.contains(needle), "\(needle) not in: \(r.error)", file: file, line: line)
    }
}
