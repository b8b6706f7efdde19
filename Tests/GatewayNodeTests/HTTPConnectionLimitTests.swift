import AmarsTestSupport
import AmarsClient
import Foundation
import Logging
import NIOCore
import XCTest

@testable import GatewayNode

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP door's connection limits: the rules of the table without sockets, then the server over loopback with
/// small caps, so every case is decided by counts (no test waits on a timing it asserts).
final class HTTPConnectionLimitTests: XCTestCase {
    // MARK: the table's rules

    func testAtTheCapTheLongestIdleConnectionIsEvicted() {
        var table = ConnectionTable<Int>(maxConnections: 3, maxPerSource: 10)
        for id in 1...3 { XCTAssertEqual(table.admit(id, source: "a"), .admitted(evicting: nil)) }
        table.touch(1)  // 1 was active just now: 2 is the longest idle
        XCTAssertEqual(table.admit(4, source: "b"), .admitted(evicting: 2))
        XCTAssertEqual(table.order, [3, 1, 4])
        XCTAssertEqual(table.count, 3)
        XCTAssertEqual(table.admit(5, source: "b"), .admitted(evicting: 3))
        XCTAssertEqual(table.order, [1, 4, 5])
    }

    func testBusyConnectionsAreSkippedAndANewcomerIsRefusedOnlyWhenAllAreBusy() {
        var table = ConnectionTable<Int>(maxConnections: 3, maxPerSource: 10)
        for id in 1...3 { _ = table.admit(id, source: "a") }
        table.setBusy(1, true)
        table.setBusy(2, true)
        XCTAssertEqual(table.admit(4, source: "a"), .admitted(evicting: 3), "the only idle one")
        table.setBusy(4, true)
        XCTAssertEqual(table.admit(5, source: "b"), .refused)
        XCTAssertFalse(table.contains(5))
        XCTAssertEqual(table.count, 3)
        table.setBusy(2, false)  // its answer went out: evictable again
        XCTAssertEqual(table.admit(5, source: "b"), .admitted(evicting: 2))
    }

    func testASourceAtItsCapEvictsItsOwnConnectionsNotOthers() {
        var table = ConnectionTable<Int>(maxConnections: 10, maxPerSource: 2)
        _ = table.admit(1, source: "honest")
        _ = table.admit(2, source: "flood")
        _ = table.admit(3, source: "flood")
        // The honest connection is the oldest, but the flood's own oldest goes.
        XCTAssertEqual(table.admit(4, source: "flood"), .admitted(evicting: 2))
        XCTAssertEqual(table.connections(from: "flood"), 2)
        XCTAssertEqual(table.connections(from: "honest"), 1)
        table.setBusy(3, true)
        table.setBusy(4, true)
        XCTAssertEqual(table.admit(5, source: "flood"), .refused, "all of its own are busy")
        XCTAssertEqual(table.admit(6, source: "honest"), .admitted(evicting: nil))
        table.remove(3)
        table.remove(4)
        XCTAssertEqual(table.connections(from: "flood"), 0)
        XCTAssertEqual(table.order, [1, 6])
        table.remove(42)  // unknown: nothing happens
        XCTAssertEqual(table.count, 2)
    }

    func testSourcesAreIPv4AddressesAndIPv6Slash64s() throws {
        XCTAssertEqual(ConnectionRegistry.source(of: try SocketAddress(ipAddress: "192.0.2.7", port: 1)), "192.0.2.7")
        XCTAssertEqual(
            ConnectionRegistry.source(of: try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 1)),
            ConnectionRegistry.source(of: try SocketAddress(ipAddress: "2001:db8:1:2:bbbb::9", port: 2)))
        XCTAssertNotEqual(
            ConnectionRegistry.source(of: try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)),
            ConnectionRegistry.source(of: try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1)))
        XCTAssertEqual(
            ConnectionRegistry.source(of: try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 1)), "192.0.2.7")
    }

    // MARK: over sockets

    func testIdleConnectionsAreEvictedOldestFirstAndAnHonestClientIsServed() throws {
        let chain = try TestChain()
        defer { chain.close() }
        let server = try LimitedServer(chain, .init(maxConnections: 8, maxConnectionsPerSource: 8))
        defer { server.shutdown() }
        let idle = try (0..<30).map { _ in try TCPTestSocket(port: server.port) }
        XCTAssertTrue(server.wait { $0.evicted == 22 }, "\(server.stats)")
        // Served although the cap is full: its connection evicts the longest idle one.
        let client = try HTTPClient(baseURL: "http://127.0.0.1:\(server.port)", timeoutSeconds: 10)
        XCTAssertEqual(try client.get("/v1/head").status, 200)
        XCTAssertTrue(server.wait { $0.evicted == 23 && $0.open == 7 }, "\(server.stats)")
        XCTAssertEqual(server.stats.refused, 0)
        // Accepted in order, so the oldest 23 are the ones closed.
        XCTAssertTrue(Waiting.until { idle[0..<23].allSatisfy { $0.isClosedByPeer() } })
        XCTAssertTrue(idle[23...].allSatisfy { !$0.isClosedByPeer() })
        let metrics = try client.get("/metrics").text
        XCTAssertEqual(PrometheusSample.value("amars_http_connections_evicted_total", in: metrics), 23, metrics)
        XCTAssertEqual(PrometheusSample.value("amars_http_connections_refused_total", in: metrics), 0, metrics)
    }

    func testAConnectionWithARequestInFlightIsNeverEvicted() throws {
        let chain = try TestChain()
        defer { chain.close() }
        let server = try LimitedServer(chain, .init(maxConnections: 2, maxConnectionsPerSource: 2))
        defer { server.shutdown() }
        // Expect: 100-continue makes the server say when it has the head, i.e. when the request is in flight.
        let head =
            "POST /v1/tx HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n"
            + "Expect: 100-continue\r\n\r\n"
        let uploads = try (0..<2).map { _ in try TCPTestSocket(port: server.port) }
        for upload in uploads {
            upload.send(head + "ab")
            XCTAssertEqual(upload.readResponse().status, 100)
        }
        // Both slots carry a request: the newcomer is refused, not either upload.
        let late = try TCPTestSocket(port: server.port)
        XCTAssertTrue(server.wait { $0.refused == 1 }, "\(server.stats)")
        XCTAssertEqual(late.readUntilClosed(), "")
        for upload in uploads {
            upload.send("cd")
            XCTAssertEqual(upload.readResponse().status, 400, "the upload finished")
        }
        XCTAssertEqual(server.stats.evicted, 0)
    }

    func testOneSourceAtItsCapCannotPushOthersOut() throws {
        let chain = try TestChain()
        defer { chain.close() }
        let server = try LimitedServer(chain, .init(maxConnections: 16, maxConnectionsPerSource: 4))
        defer { server.shutdown() }
        let honest = try TCPTestSocket(port: server.port, from: "127.0.0.3")
        let flood = try (0..<40).map { _ in try TCPTestSocket(port: server.port, from: "127.0.0.2") }
        XCTAssertTrue(server.wait { $0.evicted == 36 && $0.open == 5 }, "\(server.stats)")
        XCTAssertFalse(honest.isClosedByPeer(), "the honest connection is older than every flood one, and stays")
        honest.send("GET /v1/head HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(honest.readUntilClosed().hasPrefix("HTTP/1.1 200"))
        XCTAssertTrue(flood[36...].allSatisfy { !$0.isClosedByPeer() })
    }

    func testARequestHeadOrBodyThatDoesNotArriveInTimeIsCut() throws {
        let chain = try TestChain()
        defer { chain.close() }
        let limits = HTTPServer.Limits(headerTimeout: .milliseconds(300), bodyTimeout: .milliseconds(300))
        let server = try LimitedServer(chain, limits)
        defer { server.shutdown() }
        // Half a request line, then nothing: cut (the 10 s receive timeout would report an open connection).
        let slow = try TCPTestSocket(port: server.port)
        slow.send("GET /v1/he")
        XCTAssertEqual(slow.readUntilClosed(), "")
        XCTAssertEqual(server.stats.timedOut, 1)
        // Never a byte: cut too.
        let silent = try TCPTestSocket(port: server.port)
        XCTAssertEqual(silent.readUntilClosed(), "")
        // A head, then a body that never comes.
        let body = try TCPTestSocket(port: server.port)
        body.send("POST /v1/tx HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n")
        XCTAssertEqual(body.readUntilClosed(), "")
        XCTAssertTrue(server.wait { $0.timedOut == 3 }, "\(server.stats)")

        // A kept-alive connection between requests is under the idle timeout only: it outlives the header timeout
        // and serves its next request.
        let keptAlive = try TCPTestSocket(port: server.port)
        keptAlive.send("GET /v1/head HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(keptAlive.readResponse().status, 200)
        usleep(900_000)
        XCTAssertFalse(keptAlive.isClosedByPeer())
        keptAlive.send("GET /v1/supply HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(keptAlive.readUntilClosed().hasPrefix("HTTP/1.1 200"))
        XCTAssertEqual(server.stats.timedOut, 3)
    }
}

/// A second HTTP server on a ``TestChain``'s node, with the limits a test picks.
private final class LimitedServer {
    let server: HTTPServer
    let port: Int

    init(_ chain: TestChain, _ limits: HTTPServer.Limits) throws {
        var logger = Logger(label: "limits-test")
        logger.logLevel = .critical
        server = HTTPServer(
            router: APIRouter(node: chain.node, logger: logger), host: "127.0.0.1", port: 0, logger: logger,
            limits: limits)
        port = try server.start()
    }

    var stats: HTTPServer.ConnectionStats { server.connectionStats }

    /// Whether `condition` holds within 10 s: the server handles connections on its own thread.
    func wait(_ condition: (HTTPServer.ConnectionStats) -> Bool) -> Bool {
        Waiting.until { condition(server.connectionStats) }
    }

    func shutdown() { server.shutdown() }
}

private enum Waiting {
    static func until(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// A TCP connection to the server under test, from a chosen loopback address.
private final class TCPTestSocket {
    struct Failure: Error { var what: String }
    let fd: Int32

    init(port: Int, from source: String = "127.0.0.1") throws {
        guard let fd = LoopbackSocket.connectTCP(port: port, from: source) else {
            throw Failure(what: "connect from \(source)")
        }
        self.fd = fd
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// True once the server has closed its side (a read sees EOF or a reset without waiting).
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    /// Everything until the server closes; a receive timeout of 10 s ends it too, with `<timeout>` appended so
    /// no assertion mistakes it for a close.
    func readUntilClosed() -> String {
        var out: [UInt8] = []
        while let byte = readByte() {
            guard byte >= 0 else { return String(decoding: out, as: UTF8.self) + "<timeout>" }
            out.append(UInt8(byte))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// One response (status line, headers, a Content-Length body), leaving the connection open; status 0 if the
    /// connection closed or timed out first.
    func readResponse() -> (status: Int, body: String) {
        var head: [UInt8] = []
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard let byte = readByte(), byte >= 0 else { return (0, "") }
            head.append(UInt8(byte))
        }
        let text = String(decoding: head, as: UTF8.self)
        let status = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let length =
            text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var body: [UInt8] = []
        while body.count < length, let byte = readByte(), byte >= 0 { body.append(UInt8(byte)) }
        return (status, String(decoding: body, as: UTF8.self))
    }

    /// The next byte; nil at EOF (or a reset), -1 on the receive timeout.
    private func readByte() -> Int? {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        if n == 1 { return Int(byte) }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return -1 }
        return nil
    }
}
