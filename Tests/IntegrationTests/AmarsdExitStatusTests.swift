import AmarsClient
import AmarsTestSupport
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
        // `run` reads the same schema: a bad value is refused with its key's path, and so is a committee
        // node's config without the p2p address `run` does not need.
        try "data: d\nhttp: { port: 0, workers: 0 }\n".write(
            toFile: path("run.yaml"), atomically: true, encoding: .utf8)
        try expect(["run", "--config", path("run.yaml")], 78, "'http.workers' must be a whole number in 1...256")
        try expect(["node", "--config", path("run.yaml"), "--http-port", "0"], 78, "'http.workers'")
        try "data: d\n".write(toFile: path("solo.yaml"), atomically: true, encoding: .utf8)
        try expect(["node", "--config", path("solo.yaml")], 78, "missing 'p2p'")
        try expect(
            ["run", "--config", path("solo.yaml"), "--spawn-broker"], 78, "'spawn_broker' (--spawn-broker) needs 'mqtt'"
        )

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
        // Storage: the broker's directory for the deny list is a file.
        try "gateway 0123456789abcdef\n".write(toFile: path("login"), atomically: true, encoding: .utf8)
        try expect(
            [
                "run", "--data", path("a"), "--http-port", "0", "--no-coap", "--mqtt", "127.0.0.1:1",
                "--mqtt-credentials", path("login"), "--broker-dir", path("plain-file"),
            ], 74, "amarsd: cannot write the broker's deny list")
        try expect(
            ["run", "--config", path("solo.yaml"), "--broker-dir", path("b")], 78,
            "'broker_dir' (--broker-dir) needs 'mqtt'")

        // Unavailable: the HTTP port is taken by a running node.
        let running = try Harness.startDaemon(data: dir.appendingPathComponent("a"), blockInterval: 100)
        defer { running.stop() }
        let port = try XCTUnwrap(URL(string: running.url)?.port)
        try ok(["genesis", "new", "--out", path("c/genesis.json"), "--keys", path("c/keys")])
        try expect(
            ["run", "--data", path("c"), "--http-port", String(port), "--no-coap"], 69, "amarsd: cannot listen on")
    }

    /// `amarsd run --config` takes the file of `amarsd node` (minus p2p), flags override it, and one SIGTERM is
    /// never lost: sent the instant the node says it is up, it stops the node in order with status 0; sent
    /// while the process is still starting, it either stops it the same way or (before the handler exists at
    /// all) ends it by the default action; never does the node run on.
    func testRunReadsTheNodeSchemaAndNoSigtermIsLost() throws {
        try ok(["genesis", "new", "--out", path("g/genesis.json"), "--keys", path("g/keys")])
        let http = Harness.freePort()
        try """
        data: g
        http: { host: 127.0.0.1, port: 1, workers: 2 }
        consensus: { blockInterval: 100 }
        log: error
        """.write(toFile: path("run.yaml"), atomically: true, encoding: .utf8)
        let daemon = try Harness.startDaemon(
            data: dir.appendingPathComponent("g"), blockInterval: 100,
            arguments: ["--config", path("run.yaml"), "--http-port", String(http)])
        XCTAssertEqual(daemon.port, http, "--http-port did not override http.port")
        let client = try HTTPClient(baseURL: daemon.url)
        XCTAssertTrue(
            Harness.wait(10) { ((try? Harness.json(client, "/v1/head"))?["height"] as? NSNumber)?.intValue ?? 0 >= 2 })

        // One SIGTERM, sent as soon as the node printed its ready lines.
        XCTAssertTrue(Harness.signal(daemon.process, SIGTERM), "one SIGTERM after the ready lines was lost")
        XCTAssertEqual(daemon.process.terminationReason, .exit)
        XCTAssertEqual(daemon.process.terminationStatus, 0)

        for delay in [0, 2_000, 20_000, 100_000] {
            let p = Process()
            p.executableURL = Harness.binDirectory.appendingPathComponent("amarsd")
            p.arguments = ["run", "--config", path("run.yaml"), "--http-port", "0", "--no-coap"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(useconds_t(delay))
            XCTAssertTrue(Harness.signal(p, SIGTERM), "a SIGTERM \(delay) µs after the start was lost")
            let clean = p.terminationReason == .exit && p.terminationStatus == 0
            let tooEarly = p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM
            XCTAssertTrue(clean || tooEarly, "SIGTERM after \(delay) µs: \(p.terminationReason) \(p.terminationStatus)")
        }
    }

    /// Run in the background by a script, a node inherits an ignored SIGINT and keeps it ignored, so the
    /// terminal's Ctrl-C reaches only the script, whose SIGTERM then stops the node in order (`make devnet`
    /// used to see that SIGTERM as a second signal and the nodes exit 1 at once). And `amarsd broker`, which
    /// becomes mosquitto, stops on SIGTERM: it used to hand mosquitto the signal mask of the Swift worker thread
    /// it ran on, with SIGTERM blocked, and `make devnet` hung on Ctrl-C.
    func testAnInheritedIgnoredSigintStaysIgnoredAndTheBrokerStopsOnSigterm() throws {
        try ok(["genesis", "new", "--out", path("s/genesis.json"), "--keys", path("s/keys")])
        let amarsd = Harness.binDirectory.appendingPathComponent("amarsd").path
        let node = Process()
        node.executableURL = URL(fileURLWithPath: "/bin/sh")
        node.arguments = [
            "-c", "trap '' INT; exec \"$0\" run --data \"$1\" --http-port 0 --no-coap --log-level error", amarsd,
            path("s"),
        ]
        let out = Pipe()
        node.standardOutput = out
        node.standardError = FileHandle.nullDevice
        try node.run()
        var text = ""
        while !text.contains("Explorer") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssertTrue(text.contains("Explorer"), text)
        kill(node.processIdentifier, SIGINT)
        usleep(1_000_000)
        XCTAssertTrue(node.isRunning, "an inherited ignored SIGINT stopped the node")
        Harness.signal(node, SIGTERM)
        XCTAssertEqual(node.terminationReason, .exit)
        XCTAssertEqual(node.terminationStatus, 0, "SIGTERM after an ignored SIGINT is the first signal, not a second")

        let port = Harness.freePort()
        let broker = Process()
        broker.executableURL = URL(fileURLWithPath: amarsd)
        broker.arguments = ["broker", "--dir", path("broker"), "--port", String(port)]
        broker.standardOutput = FileHandle.nullDevice
        broker.standardError = FileHandle.nullDevice
        try broker.run()
        XCTAssertTrue(Harness.wait(10) { LoopbackSocket.connectTCP(port: port).map { close($0) } != nil })
        XCTAssertTrue(Harness.signal(broker, SIGTERM), "the broker ignored SIGTERM")

        // The same for the broker `amarsd run --spawn-broker` starts: the node's SIGTERM stops it in order too,
        // at once rather than after the 10 s wait for a broker that does not stop (then SIGKILLed, unsaved).
        let mqtt = Harness.freePort()
        let daemon = try Harness.startDaemon(
            data: dir.appendingPathComponent("s"), blockInterval: 200,
            arguments: ["--no-coap", "--mqtt", "127.0.0.1:\(mqtt)", "--spawn-broker"])
        let started = Date()
        daemon.stop()
        XCTAssertEqual(daemon.process.terminationStatus, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 8, "the spawned broker held the node's stop up")
        let log = (try? String(contentsOf: dir.appendingPathComponent("s/broker/mosquitto.log"), encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("terminating"), "the broker did not stop in order: \(log.suffix(500))")
    }
}
