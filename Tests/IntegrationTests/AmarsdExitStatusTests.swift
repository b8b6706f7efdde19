import Foundation
import XCTest

/// What an operator's supervisor sees when `amarsd` cannot start: one line on stderr naming what to fix, and an
/// exit status per kind of trouble (78 configuration, 74 storage, 69 unavailable, 65 chain refused), never 0.
final class AmarsdExitStatusTests: CLITestCase {
    override var directoryPrefix: String { "amars-exit" }

    func amarsd(_ args: [String]) throws -> Harness.Command {
        try Harness.run(Harness.binDirectory.appendingPathComponent("amarsd").path, args, timeout: 30)
    }

    func expect(_ args: [String], _ status: Int32, _ line: String, file: StaticString = #filePath, line l: UInt = #line)
        throws
    {
        let r = try amarsd(args)
        XCTAssertEqual(r.status, status, r.output, file: file, line: l)
        XCTAssertTrue(r.output.contains(line), "\(line) not in: \(r.output)", file: file, line: l)
        XCTAssertEqual(
            r.output.split(separator: "\n").filter { $0.hasPrefix("amarsd") }.count, 1, r.output, file: file, line: l)
    }

    func testEachStartupFailureHasItsOwnStatusAndOneLine() throws {
        // Configuration: no genesis, no config file, a node config with an unknown key.
        try expect(["run", "--data", path("empty"), "--no-coap"], 78, "amarsd: cannot read genesis file")
        try expect(["node", "--config", path("missing.yaml")], 78, "amarsd: cannot read config file")
        try "data: d\ngenesis: g.json\nkey: k\nsurprise: 1\n".write(
            toFile: path("bad.yaml"), atomically: true, encoding: .utf8)
        try expect(["node", "--config", path("bad.yaml")], 78, "surprise")

        // Chain refused: a data directory written by another genesis.
        try ok(["genesis", "new", "--out", path("a/genesis.json"), "--keys", path("a/keys")])
        try ok(["genesis", "new", "--out", path("b/genesis.json"), "--keys", path("b/keys"), "--chain-id", "9"])
        let daemon = try Harness.startDaemon(data: dir.appendingPathComponent("a"), blockInterval: 100)
        daemon.stop()
        try expect(
            [
                "run", "--data", path("a"), "--genesis", path("b/genesis.json"), "--validator-key",
                path("b/keys/validator.key"), "--http-port", "0", "--no-coap",
            ], 65, "amarsd: the data directory belongs to another genesis")

        // Storage: the data directory is a file.
        try Data().write(to: dir.appendingPathComponent("plain-file"))
        try expect(
            [
                "run", "--data", path("plain-file"), "--genesis", path("a/genesis.json"), "--validator-key",
                path("a/keys/validator.key"), "--http-port", "0", "--no-coap",
            ], 74, "amarsd: the data directory \(path("plain-file")) is a file")

        // Unavailable: the HTTP port is taken by a running node.
        let running = try Harness.startDaemon(data: dir.appendingPathComponent("a"), blockInterval: 100)
        defer { running.stop() }
        let port = try XCTUnwrap(URL(string: running.url)?.port)
        try ok(["genesis", "new", "--out", path("c/genesis.json"), "--keys", path("c/keys")])
        try expect(
            ["run", "--data", path("c"), "--http-port", String(port), "--no-coap"], 69, "amarsd: cannot listen on")
    }
}
