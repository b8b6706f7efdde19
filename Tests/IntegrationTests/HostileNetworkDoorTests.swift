import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import XCTest
import AmarsTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// An outsider on the gateway's network, with no key, against the real `amarsd`: thousands of held HTTP
/// connections do not starve the API or keep its memory, a slow request head is cut, nobody can bind the CoAP
/// ports beside the gateway (a second gateway on them exits 69), and a flood of CoAP RSTs costs a bounded number of
/// log lines.
final class HostileNetworkDoorTests: CLITestCase {
    override var directoryPrefix: String { "amars-doors" }

    // MARK: HTTP

    func testHeldConnectionsDoNotStarveTheAPIAndTheirMemoryIsGivenBack() throws {
        let daemon = try startGateway(arguments: ["--no-coap"])
        defer { daemon.stop() }
        let client = try HTTPClient(baseURL: daemon.url, timeoutSeconds: 2)
        for _ in 0..<20 { XCTAssertEqual(try client.get("/v1/head").status, 200) }
        usleep(500_000)
        let before = try XCTUnwrap(daemon.residentKiB())

        // Probe the API every 200 ms with a fresh connection while the flood runs, and sample the daemon's memory.
        let probe = Probe(client: client, daemon: daemon)
        let prober = Thread { probe.run() }
        prober.start()

        // 5,000 connections that never send a byte, from 16 loopback addresses (so the total cap is what binds,
        // not only the per-source one), opened as fast as they go and held; at most 20 s of opening.
        var held: [Int32] = []
        let deadline = Date().addingTimeInterval(20)
        while held.count < 5_000, Date() < deadline {
            guard let fd = LoopbackSocket.connectTCP(port: daemon.port, from: "127.0.0.\(2 + held.count % 16)") else {
                break
            }
            held.append(fd)
        }
        usleep(2_000_000)
        probe.stop()
        while !probe.finished { usleep(10_000) }
        let during = probe.peakKiB
        for fd in held { close(fd) }

        XCTAssertEqual(held.count, 5_000, "the test could not open its connections")
        let latencies = probe.results
        XCTAssertGreaterThanOrEqual(latencies.count, 5, "too few probes ran")
        for (n, result) in latencies.enumerated() {
            XCTAssertEqual(result.status, 200, "probe \(n) failed after \(result.seconds) s")
            XCTAssertLessThan(result.seconds, 2, "probe \(n)")
        }
        let metrics = try client.get("/metrics").text
        let evicted = Self.counter("amars_http_connections_evicted_total", in: metrics)
        XCTAssertGreaterThan(evicted, 1_000, "the connection cap never acted:\n\(metrics)")

        // Memory: bounded by the cap while the flood is held, and given back once it is gone (the server trims a
        // second after its connections have shrunk; before the cap, 5,000 held connections took about 28 MB that
        // stayed taken).
        XCTAssertLessThan(during - before, 20_000, "RSS \(before) KiB before, \(during) KiB during the flood")
        XCTAssertTrue(
            Harness.wait(15) {
                Self.counter("amars_http_connections", in: (try? client.get("/metrics").text) ?? "") == 1
            })
        usleep(2_000_000)
        let after = try XCTUnwrap(daemon.residentKiB())
        XCTAssertLessThan(after - before, 8_000, "RSS \(before) KiB before, \(after) KiB after the flood")
        print(
            "HTTP flood: \(held.count) connections, RSS \(before) KiB before, \(during) KiB peak, \(after) KiB after; "
                + "head latency max \(latencies.map(\.seconds).max() ?? -1) s over \(latencies.count) probes; "
                + "\(evicted) evicted")
        XCTAssertEqual(try client.get("/v1/head").status, 200)
    }

    func testASlowRequestHeadIsCutAfterTheHeaderTimeout() throws {
        let daemon = try startGateway(arguments: ["--no-coap"])
        defer { daemon.stop() }
        let fd = try XCTUnwrap(LoopbackSocket.connectTCP(port: daemon.port, from: "127.0.0.1"))
        defer { close(fd) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let half = Array("GET /v1/he".utf8)
        XCTAssertEqual(half.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, half.count)
        let start = Date()
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        let waited = Date().timeIntervalSince(start)
        // EOF (or a reset): the server cut it. A receive timeout (-1, EAGAIN) means it kept the connection.
        XCTAssertTrue(n == 0 || (n < 0 && errno == ECONNRESET), "not closed after \(waited) s (recv \(n))")
        XCTAssertGreaterThan(waited, 3, "cut before the header timeout")
        XCTAssertLessThan(waited, 12, "the header timeout is 5 s")
        print("slow header cut after \(waited) s")
        let client = try HTTPClient(baseURL: daemon.url, timeoutSeconds: 5)
        XCTAssertTrue(Self.counter("amars_http_requests_timed_out_total", in: try client.get("/metrics").text) >= 1)
    }

    // MARK: CoAP

    func testTheCoAPPortsCannotBeSharedAndASecondGatewayExits69() throws {
        try ok(["genesis", "new", "--out", path("a/genesis.json"), "--keys", path("a/keys")])
        try ok(["genesis", "new", "--out", path("b/genesis.json"), "--keys", path("b/keys")])
        try "lock-17 6c6f636b2d31372d736563726574\n".write(toFile: path("psk"), atomically: true, encoding: .utf8)
        let plain = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let dtls = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let first = try Harness.startDaemon(
            data: dir.appendingPathComponent("a"), blockInterval: 1000, coapPort: plain,
            arguments: ["--psk-file", path("psk"), "--coaps-port", String(dtls)])
        defer { first.stop() }

        // libcoap sets SO_REUSEADDR on its socket; before the fix any process setting it too could share the port.
        for port in [plain, dtls] {
            XCTAssertEqual(Self.bindErrno(port: port), EADDRINUSE, "udp port \(port) could be bound beside amarsd")
        }
        // A second gateway on either port stops at start-up: status 69 and one line naming the port.
        let amarsd = Harness.binDirectory.appendingPathComponent("amarsd").path
        let other = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        for (arguments, port) in [
            (["--coap-port", String(plain)], plain),
            (["--coap-port", String(other), "--psk-file", path("psk"), "--coaps-port", String(dtls)], dtls),
        ] {
            let second = try Harness.run(
                amarsd, ["run", "--data", path("b"), "--http-port", "0"] + arguments, timeout: 30)
            XCTAssertEqual(second.status, 69, second.output)
            let lines = second.output.split(separator: "\n").filter { $0.hasPrefix("amarsd") }
            XCTAssertEqual(lines.count, 1, second.output)
            XCTAssertTrue(lines.first?.contains("udp port \(port) is already in use") == true, second.output)
        }
        // The first gateway still answers its devices.
        let device = try CoAPTestSocket()
        XCTAssertEqual(device.exchange(DeviceRequests.get(DeviceResources.head), port: UInt16(plain))?.code, .content)
    }

    func testAFloodOfRSTsWritesABoundedNumberOfLogLines() throws {
        let coap = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try startGateway(arguments: ["--coap-port", String(coap)])
        let device = try CoAPTestSocket()
        var mid: UInt16 = 0
        for batch in 0..<100 {
            for _ in 0..<100 {
                mid &+= 1
                device.send([0x70, 0x00, UInt8(mid >> 8), UInt8(mid & 0xFF)], toPort: UInt16(coap))
            }
            // A request behind each batch: once it is answered, the batch has been read (and not dropped in bulk).
            let answer = device.exchange(DeviceRequests.get(DeviceResources.head), port: UInt16(coap))
            XCTAssertEqual(answer?.code, .content, "batch \(batch)")
        }
        usleep(2_500_000)
        daemon.stop()
        let lines = daemon.logLines
        let rst = lines.filter { $0.contains("got RST") && !$0.contains("suppressed") }
        let suppressed = lines.compactMap { line -> Int? in
            guard let range = line.range(of: #"\d+ similar lines suppressed"#, options: .regularExpression) else {
                return nil
            }
            return Int(line[range].prefix { $0.isNumber })
        }
        let accounted = rst.count + suppressed.reduce(0, +)
        print("10,000 RSTs: \(lines.count) log lines (\(rst.count) written, \(accounted - rst.count) suppressed)")
        XCTAssertLessThanOrEqual(lines.count, 50, lines.suffix(20).joined(separator: "\n"))
        XCTAssertGreaterThan(rst.count, 0, "the RSTs were not logged at all: \(lines)")
        // Every RST is accounted for, written or counted (a few may be lost on the way).
        XCTAssertTrue((9_000...10_000).contains(accounted), "\(accounted) accounted: \(lines)")
    }

    /// A slow client does not stall others (issue 15's bound): eight requests held open (their bodies trickle in
    /// a byte at a time) and 48 senders submitting as fast as they are answered, with the journal fsynced and
    /// blocks of a thousand transfers and more executing, do not delay another client's `GET /v1/head` past one
    /// block interval (1 s). Requests are answered on worker threads and `/v1/head` reads a published snapshot,
    /// not the chain under its lock. At the load this test makes, blocks commit in under 100 ms, so handlers
    /// answered on the event loop (the design before the worker pool) also stay under the bound; the test guards
    /// the bound, the measured latency is printed.
    func testSlowRequestsDoNotDelayAnotherClientsHead() throws {
        let daemon = try startGateway(arguments: ["--no-coap", "--journal-fsync"])
        defer { daemon.stop() }
        let client = try HTTPClient(baseURL: daemon.url, timeoutSeconds: 5)

        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        let head = Array(
            "POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n"
                .utf8)
        for _ in 0..<8 {
            let fd = try XCTUnwrap(LoopbackSocket.connectTCP(port: daemon.port))
            XCTAssertEqual(head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, head.count)
            held.append(fd)
        }
        let load = SubmitLoad(url: daemon.url, keys: try fundSenders(48, client: client), genesis: try genesisHash())
        let fds = held
        let trickle = Thread {
            var byte: UInt8 = 0x41
            while !load.isStopped {
                for fd in fds { _ = send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) }
                usleep(100_000)
            }
        }
        trickle.start()
        load.start()
        defer { load.stop() }
        usleep(500_000)

        var latencies: [Double] = []
        let heightBefore = try XCTUnwrap((try Harness.json(client, "/v1/head"))["height"] as? NSNumber).intValue
        let until = Date().addingTimeInterval(6)
        while Date() < until {
            let start = Date()
            let status = (try? client.get("/v1/head").status) ?? 0
            latencies.append(Date().timeIntervalSince(start))
            XCTAssertEqual(status, 200)
            usleep(100_000)
        }
        load.stop()
        let heightAfter = try XCTUnwrap((try Harness.json(client, "/v1/head"))["height"] as? NSNumber).intValue
        // The load was real: blocks were made and carried the submits, and the held requests were still open.
        XCTAssertGreaterThanOrEqual(heightAfter - heightBefore, 4)
        XCTAssertGreaterThan(load.accepted, 2_000, "too few submits to keep the workers busy")
        let metrics = try client.get("/metrics").text
        XCTAssertGreaterThanOrEqual(PrometheusSample.value("amars_http_connections", in: metrics) ?? 0, 8, metrics)
        let commits = PrometheusSample.value("amars_block_commit_duration_seconds_count", in: metrics) ?? 0
        let commitSeconds = PrometheusSample.value("amars_block_commit_duration_seconds_sum", in: metrics) ?? 0
        let worst = latencies.max() ?? 99
        XCTAssertLessThan(worst, 1.0, "GET /v1/head took \(worst) s under slow clients: \(latencies)")
        print(
            "slow clients: 8 held, \(load.accepted) submits in \(heightAfter - heightBefore) blocks (mean commit "
                + "\(Int(commitSeconds / max(commits, 1) * 1000)) ms); head latency max \(Int(worst * 1000)) ms over "
                + "\(latencies.count) probes")
    }

    /// `count` fresh keys, each paid 100 AMSC by the genesis accounts, once the payments are final: enough
    /// senders (each may queue 64 transactions) to fill blocks of thousands of transfers.
    private func fundSenders(_ count: Int, client: HTTPClient) throws -> [PrivateKey] {
        let funders = try fundedKeys()
        let genesis = try genesisHash()
        let senders = try (0..<count).map { try PrivateKey(bytes: Bytes32(w0: 0x5E, w1: 0, w2: 0, w3: UInt64($0 + 1))) }
        var nonces: [UInt64] = try funders.map { key in
            let account = try Harness.json(client, "/v1/accounts/\(Address(publicKey: key.xOnlyPublicKey).bech32)")
            return try XCTUnwrap((account["nextNonce"] as? NSNumber)?.uint64Value)
        }
        for (i, sender) in senders.enumerated() {
            let f = i % funders.count
            let body = TransactionBody(
                genesis: genesis, sender: funders[f].xOnlyPublicKey.bytes, nonce: nonces[f], maxFeePerUnit: 50,
                tipPerUnit: 1,
                payload: .transfer(Transfer(to: Address(publicKey: sender.xOnlyPublicKey), amount: 100_000_000)))
            let answer = try client.post(
                "/v1/tx", body: SignedTransaction(body: body, signer: funders[f]).encoded,
                contentType: "application/octet-stream")
            XCTAssertEqual(answer.status, 202, answer.text)
            nonces[f] += 1
        }
        let last = Address(publicKey: senders[count - 1].xOnlyPublicKey).bech32
        XCTAssertTrue(
            Harness.wait(20) {
                ((try? Harness.json(client, "/v1/accounts/\(last)"))?["balance"]).map { "\($0)" } == "100000000"
            }, "the senders were not funded")
        return senders
    }

    private func fundedKeys() throws -> [PrivateKey] {
        let keys = dir.appendingPathComponent("g/keys")
        return try FileManager.default.contentsOfDirectory(atPath: keys.path)
            .filter { $0.hasSuffix(".key") && !$0.hasPrefix("validator") }.sorted().prefix(4)
            .map { try KeyFile.load(keys.appendingPathComponent($0).path) }
    }

    private func genesisHash() throws -> Bytes32 {
        try Genesis.load(path: dir.appendingPathComponent("g/genesis.json").path).header.hash
    }

    // MARK: helpers

    /// A fresh genesis and `amarsd run` on it, its stderr kept for ``Gateway/logLines``.
    private func startGateway(arguments: [String]) throws -> Gateway {
        try ok(["genesis", "new", "--out", path("g/genesis.json"), "--keys", path("g/keys")])
        let log = dir.appendingPathComponent("amarsd.log")
        let daemon = try Harness.startDaemon(
            data: dir.appendingPathComponent("g"), blockInterval: 1000, arguments: arguments, stderr: log)
        return Gateway(process: daemon.process, port: daemon.port, log: log)
    }

    private static func counter(_ name: String, in metrics: String) -> Int {
        PrometheusSample.value(name, in: metrics).map { Int($0) } ?? -1
    }

    /// The errno of binding 127.0.0.1:`port` over UDP with SO_REUSEADDR set, as a stranger would; 0 if it worked.
    private static func bindErrno(port: Int) -> Int32 {
        switch LoopbackSocket.bound(Int32(SOCK_DGRAM.rawValue), port: UInt16(port), reuseAddress: true) {
        case .success(let fd):
            close(fd)
            return 0
        case .failure(let error):
            return error.code
        }
    }
}

/// `amarsd run` with its stderr in a file.
private struct Gateway {
    let process: Process
    let port: Int
    let log: URL
    var url: String { "http://127.0.0.1:\(port)" }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// VmRSS from /proc, in KiB.
    func residentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    var logLines: [String] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// Asks `GET /v1/head` on a fresh connection every 200 ms until stopped, recording each answer's status and time,
/// and samples the daemon's resident memory. Runs on its own thread; read its results once `finished`.
private final class Probe: @unchecked Sendable {  // the lock guards every mutable field
    struct Result {
        var status: Int
        var seconds: Double
    }

    private let client: HTTPClient
    private let daemon: Gateway
    private let lock = NSLock()
    private var stopping = false
    private var done = false
    private var recorded: [Result] = []
    private var peak = 0

    init(client: HTTPClient, daemon: Gateway) {
        self.client = client
        self.daemon = daemon
    }

    func run() {
        while !locked({ stopping }) {
            let start = Date()
            let status = (try? client.get("/v1/head").status) ?? 0
            let result = Result(status: status, seconds: Date().timeIntervalSince(start))
            let rss = daemon.residentKiB() ?? 0
            locked {
                recorded.append(result)
                peak = max(peak, rss)
            }
            usleep(200_000)
        }
        locked { done = true }
    }

    func stop() { locked { stopping = true } }
    var finished: Bool { locked { done } }
    var results: [Result] { locked { recorded } }
    var peakKiB: Int { locked { peak } }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}

/// Four senders, one thread each, posting transfers as fast as the gateway answers them.
private final class SubmitLoad: @unchecked Sendable {  // the lock guards the counters and the flag
    private let url: String
    private let keys: [PrivateKey]
    private let genesis: Bytes32
    private let lock = NSLock()
    private var stopped = false
    private var acceptedCount = 0

    init(url: String, keys: [PrivateKey], genesis: Bytes32) {
        self.url = url
        self.keys = keys
        self.genesis = genesis
    }

    var isStopped: Bool { lock.withLock { stopped } }
    var accepted: Int { lock.withLock { acceptedCount } }
    func stop() { lock.withLock { stopped = true } }

    func start() {
        for key in keys {
            Thread { [self] in send(from: key) }.start()
        }
    }

    private func send(from key: PrivateKey) {
        guard let client = try? HTTPClient(baseURL: url, timeoutSeconds: 10),
            let account = try? Harness.json(client, "/v1/accounts/\(Address(publicKey: key.xOnlyPublicKey).bech32)"),
            var nonce = (account["nextNonce"] as? NSNumber)?.uint64Value
        else { return }
        let recipient = Address(publicKey: try! PrivateKey(bytes: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)).xOnlyPublicKey)
        while !isStopped {
            let body = TransactionBody(
                genesis: genesis, sender: key.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: 50, tipPerUnit: 1,
                payload: .transfer(Transfer(to: recipient, amount: 1_000)))
            let tx = SignedTransaction(body: body, signer: key)
            guard let answer = try? client.post("/v1/tx", body: tx.encoded, contentType: "application/octet-stream")
            else { continue }
            if answer.status == 202 {
                nonce += 1
                lock.withLock { acceptedCount += 1 }
            } else {
                usleep(10_000)
            }
        }
    }
}
