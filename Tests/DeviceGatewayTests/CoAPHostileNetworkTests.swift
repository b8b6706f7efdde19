import AmarsTestSupport
import DeviceProtocol
import Foundation
import GatewayTestSupport
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#endif

/// An outsider on the device network, with no key: it cannot share the CoAP port, cannot skip the request limit
/// by asking with Observe, and cannot make the gateway's log grow with what it sends.
final class CoAPHostileNetworkTests: XCTestCase {
    // MARK: the port is ours alone

    func testNoOtherSocketCanBindTheCoAPPortsEvenWithReuseAddress() throws {
        let f = try CoAPFixture(dtlsKeys: ["lock-17": Array("lock-17-secret".utf8)])
        defer { f.close() }
        let dtlsPort = try XCTUnwrap(f.server.dtls?.port)
        for port in [f.port, dtlsPort] {
            // libcoap sets SO_REUSEADDR on its socket; without our fix this bind succeeds and shares the port.
            XCTAssertEqual(UDPBind.errno(host: "127.0.0.1", port: port, reuseAddress: true), EADDRINUSE, "port \(port)")
            XCTAssertEqual(UDPBind.errno(host: "0.0.0.0", port: port, reuseAddress: true), EADDRINUSE, "port \(port)")
            XCTAssertEqual(UDPBind.errno(host: "127.0.0.1", port: port, reuseAddress: false), EADDRINUSE)
        }

        // A second server in this process on either port is refused with the port named, and leaves nothing bound.
        let plain = CoAPServer(node: f.node, host: "127.0.0.1", port: f.port)
        XCTAssertThrowsError(try plain.start()) { error in
            XCTAssertEqual(error as? CoAPServer.ServerError, .portInUse(host: "127.0.0.1", port: f.port))
            XCTAssertTrue("\(error)".contains("\(f.port)"), "\(error)")
        }
        let freePort = try CoAPFixture.freeUDPPort()
        let dtls = CoAPServer(
            node: f.node, host: "127.0.0.1", port: freePort,
            dtls: .init(port: dtlsPort, keys: ["x": [1, 2, 3]]))
        XCTAssertThrowsError(try dtls.start()) { error in
            XCTAssertEqual(error as? CoAPServer.ServerError, .portInUse(host: "127.0.0.1", port: dtlsPort))
        }
        XCTAssertEqual(UDPBind.errno(host: "127.0.0.1", port: freePort, reuseAddress: false), 0, "plain port released")

        // The first server still answers: nobody took its port.
        let socket = try CoAPTestSocket()
        XCTAssertEqual(socket.exchange(DeviceRequests.get(DeviceResources.head), port: f.port)?.code, .content)
    }

    func testAServerDoesNotStartOnAPortSomeoneHoldsWithReuseAddress() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        // The squatter came first and set SO_REUSEADDR, as libcoap itself does: before the fix both binds worked.
        let squatter = try UDPBind.hold(host: "127.0.0.1", port: f.port, reuseAddress: true)
        defer { close(squatter) }
        XCTAssertThrowsError(try f.server.start()) { error in
            XCTAssertEqual(error as? CoAPServer.ServerError, .portInUse(host: "127.0.0.1", port: f.port))
        }
    }

    // MARK: Observe registrations count, notifications do not

    func testObserveRegistrationsAreRateLimitedWhileNotificationsFlow() throws {
        let f = try CoAPFixture(limits: .init(requests: .init(perSecond: 0.001, burst: 20)))
        defer { f.close() }
        let observer = try CoAPTestSocket(local: "127.0.0.2")
        let token: [UInt8] = [0x0B, 0x5E]
        var register = DeviceRequests.get(DeviceResources.head, token: token)
        register.observe = Observe.register
        XCTAssertEqual(try XCTUnwrap(observer.exchange(register, port: f.port)).code, .content)

        // A flood of Observe GETs from one device: the first 20 are served (its burst), every later one is 4.29.
        let flooder = try CoAPTestSocket(local: "127.0.0.1")
        var codes: [CoAPCode: Int] = [:]
        for n in 0..<200 {
            var request = DeviceRequests.get(DeviceResources.head, token: [0xF1, UInt8(n >> 8), UInt8(n & 0xFF)])
            request.observe = Observe.register
            codes[try XCTUnwrap(flooder.exchange(request, port: f.port), "request \(n)").code, default: 0] += 1
        }
        XCTAssertEqual(codes[.content], 20, "\(codes)")
        XCTAssertEqual(codes[.tooManyRequests], 180, "\(codes)")

        // The observer gets a notification for each of 30 blocks, more than its whole bucket: notifications are
        // not requests. Had they been counted, the 20th would have been a 4.29 and ended the observation.
        for height in 1...30 {
            try f.produceBlock()
            f.server.headChanged()
            let note = try XCTUnwrap(observer.receiveMessage { $0.token == token }, "no notification for \(height)")
            if note.type == .confirmable {
                observer.send(
                    CoAPMessage(type: .acknowledgement, code: .empty, messageID: note.messageID).encode(),
                    toPort: f.port)
            }
            XCTAssertEqual(note.code, .content, "notification \(height)")
            XCTAssertEqual(try HeaderPayload(decoding: note.payload).header.height, UInt64(height))
        }
        // And its bucket is as the registration left it: 19 requests remain.
        for n in 0..<19 {
            let reply = try XCTUnwrap(observer.exchange(DeviceRequests.get(DeviceResources.head), port: f.port))
            XCTAssertEqual(reply.code, .content, "request \(n) after the notifications")
        }
        XCTAssertEqual(
            observer.exchange(DeviceRequests.get(DeviceResources.head), port: f.port)?.code, .tooManyRequests)
    }

    // MARK: log lines a stranger triggers are throttled

    func testLogLineKindsFoldNumbers() {
        XCTAssertEqual(LogThrottle.kind(of: "got RST for mid=0x1a2b"), "got RST for mid=#")
        XCTAssertEqual(LogThrottle.kind(of: "got RST for mid=0x1"), LogThrottle.kind(of: "got RST for mid=0xffe0"))
        XCTAssertEqual(
            LogThrottle.kind(of: "***127.0.0.1:5683 <-> 10.0.0.2:40001 UDP : drop"),
            "***#.#.#.#:# <-> #.#.#.#:# UDP : drop")
        XCTAssertEqual(LogThrottle.kind(of: "deadbeef cafe"), "deadbeef cafe", "words without digits stay")
        XCTAssertEqual(LogThrottle.kind(of: String(repeating: "a", count: 500)).count, 80)
    }

    func testThrottleLetsABurstThroughThenOneASecondAndCountsTheRest() {
        let clock = ManualClock()
        var throttle = LogThrottle(clock: clock.read)
        var written = 0
        for mid in 0..<10_000 where throttle.admit("got RST for mid=0x\(String(mid, radix: 16))") { written += 1 }
        XCTAssertEqual(written, 10, "the burst")
        XCTAssertEqual(throttle.drainSuppressed().map(\.count), [9_990])
        XCTAssertTrue(throttle.drainSuppressed().isEmpty, "drained")

        clock.advance(seconds: 3)
        written = 0
        for _ in 0..<100 where throttle.admit("got RST for mid=0x7") { written += 1 }
        XCTAssertEqual(written, 3, "one a second")
        XCTAssertEqual(throttle.drainSuppressed().first?.kind, "got RST for mid=#")
    }

    func testThrottleCapsAllKindsTogetherAndBoundsItsTables() {
        let clock = ManualClock()
        var many = LogThrottle(clock: clock.read)
        // 60 kinds of one line each: the overall budget (50) holds even though no kind reached its own.
        let written = (0..<60).filter { many.admit("kind \(Character(UnicodeScalar(0x41 + $0)!))") }.count
        XCTAssertEqual(written, 50)

        let tight = LogThrottle.Limits(
            perKind: .init(perSecond: 0, burst: 1, maxDevices: 2), overall: .init(perSecond: 0, burst: 100))
        var small = LogThrottle(limits: tight, clock: clock.read)
        XCTAssertTrue(small.admit("alpha"))
        XCTAssertFalse(small.admit("alpha"))
        XCTAssertTrue(small.admit("beta"))
        XCTAssertFalse(small.admit("beta"))
        XCTAssertTrue(small.admit("gamma"), "a new kind evicts the oldest bucket")
        XCTAssertFalse(small.admit("gamma"))
        let drained = small.drainSuppressed()
        XCTAssertEqual(drained.count, 3)
        XCTAssertEqual(Set(drained.map(\.kind)), ["alpha", "beta", "other"], "past two kinds, counted as other")
    }
}

/// A clock the test moves by hand, for the token buckets.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var now: UInt64 = 1_000_000_000

    var read: @Sendable () -> UInt64 {
        { [self] in
            lock.lock()
            defer { lock.unlock() }
            return now
        }
    }

    func advance(seconds: Double) {
        lock.lock()
        now += UInt64(seconds * 1e9)
        lock.unlock()
    }
}

/// A UDP socket bound like a stranger on the same host would bind it.
enum UDPBind {
    /// Binds and closes; the bind's errno, 0 when it worked.
    static func errno(host: String, port: UInt16, reuseAddress: Bool) -> Int32 {
        switch LoopbackSocket.bound(Int32(SOCK_DGRAM.rawValue), host: host, port: port, reuseAddress: reuseAddress) {
        case .success(let fd):
            close(fd)
            return 0
        case .failure(let error):
            return error.code
        }
    }

    /// A bound socket the caller closes.
    static func hold(host: String, port: UInt16, reuseAddress: Bool) throws -> Int32 {
        try LoopbackSocket.bound(Int32(SOCK_DGRAM.rawValue), host: host, port: port, reuseAddress: reuseAddress).get()
    }
}
