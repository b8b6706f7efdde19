import AmarsCodec
import DeviceClient
import DeviceCore
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import LightClient
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#endif

/// The simulator's event-driven CoAP transport against the gateway's real libcoap server: many device sockets on
/// one loop thread, each exchange answered to its own device, block-wise answers reassembled, and the failures a
/// device must tell apart (nothing listening, no answer) reported as the blocking client reports them.
final class CoAPReactorTests: XCTestCase {
    private func reactor(_ port: UInt16, ackTimeoutMillis: UInt64 = 200, maxRetransmit: Int = 4) throws -> CoAPReactor {
        try CoAPReactor(
            configuration: .init(
                host: "127.0.0.1", port: port, ackTimeoutMillis: ackTimeoutMillis, maxRetransmit: maxRetransmit))
    }

    /// 200 devices at once, each from its own loopback address, each asking for a different run of checkpoints
    /// (over one datagram: block-wise) and the head. Every answer must be the node's own data for that device's
    /// question; answers crossing between sockets would fail it.
    func testManyDevicesExchangeAtOnceEachGettingItsOwnAnswer() async throws {
        let f = try CoAPFixture(epochLength: 2)
        defer { f.close() }
        for _ in 0..<40 { try f.produceBlock() }
        let loop = try reactor(f.port)
        let devices = 200
        var endpoints: [CoAPReactor.Endpoint] = []
        for i in 0..<devices { endpoints.append(try loop.endpoint(source: "127.20.\(i / 250).\(i % 250 + 2)")) }
        let head = f.headPayload
        let node = f.node
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for (i, endpoint) in endpoints.enumerated() {
                group.addTask {
                    let from = UInt64(i % 10)
                    let asked = DeviceRequest.checkpoints(from: from, limit: 64)
                    let answer = try await loop.exchange(asked, on: endpoint).get()
                    let run = try CheckpointsPayload(decoding: answer.body).checkpoints
                    var wrong = run == (try node.checkpoints(from: from, limit: 64)) ? 0 : 1
                    let headAnswer = try await loop.exchange(DeviceRequest(.head), on: endpoint).get()
                    if try HeaderPayload(decoding: headAnswer.body) != head { wrong += 1 }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertGreaterThan(CheckpointsPayload(try f.node.checkpoints(from: 0, limit: 64)).encoded.count, 1024)
        let stats = loop.stats
        XCTAssertEqual(stats.exchanges, 2 * devices)
        XCTAssertGreaterThan(stats.requests, 2 * devices, "the checkpoint runs came block by block")
        for endpoint in endpoints { loop.close(endpoint) }
    }

    /// Each device's own source address is its own rate-limit identity at the gateway: with a burst of three
    /// requests per device, twenty devices make three requests each and none is told to slow down. From one
    /// address the fourth request would already be refused.
    func testEachDeviceAddressHasItsOwnRateLimit() async throws {
        let limits = CoAPServer.Limits(requests: .init(perSecond: 0.01, burst: 3))
        let f = try CoAPFixture(limits: limits)
        defer { f.close() }
        let loop = try reactor(f.port)
        var codes: [UInt8] = []
        for i in 0..<20 {
            let endpoint = try loop.endpoint(source: "127.21.0.\(i + 2)")
            for _ in 0..<3 {
                codes.append(try await loop.exchange(DeviceRequest(.head), on: endpoint).get().code.rawValue)
            }
        }
        XCTAssertEqual(Set(codes), [CoAPCode.content.rawValue])

        // From one address the same requests run into the limit: the fourth is told to slow down (4.29).
        let one = try CoAPTestSocket(local: "127.21.1.2", timeoutMilliseconds: 2000)
        var answers: [UInt8] = []
        for id in UInt16(1)...5 {
            var request = CoAPMessage(type: .confirmable, code: .get, messageID: id)
            request.token = [UInt8(id)]
            request.setUriPath("v1/head")
            one.send(request.encode(), toPort: f.port)
            guard let (bytes, _) = one.receive() else { return XCTFail("no answer to request \(id)") }
            answers.append(try CoAPMessage.decode(bytes).code.rawValue)
        }
        let slowDown = CoAPCode.tooManyRequests.rawValue
        XCTAssertEqual(
            answers,
            [CoAPCode.content.rawValue, CoAPCode.content.rawValue, CoAPCode.content.rawValue, slowDown, slowDown])
    }

    /// A port nothing listens on is reported at once as the socket's refusal; a peer that never answers as a
    /// timeout after the retransmissions; both end the device's exchange, and the socket serves the next one.
    func testNothingListeningAndNoAnswerAreReportedAsTheBlockingClientDoes() async throws {
        let closedPort = try CoAPFixture.freeUDPPort()
        let loop = try reactor(closedPort)
        let endpoint = try loop.endpoint()
        let started = Date()
        switch await loop.exchange(DeviceRequest(.head), on: endpoint) {
        case .failure(.socket(_, let e)): XCTAssertEqual(e, ECONNREFUSED)
        case let other: XCTFail("\(other)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)

        let silent = try CoAPTestSocket(timeoutMilliseconds: 100)
        let quiet = try reactor(silent.localPort, ackTimeoutMillis: 50, maxRetransmit: 2)
        let device = try quiet.endpoint()
        switch await quiet.exchange(DeviceRequest(.head), on: device) {
        case .failure(.timeout(let what)): XCTAssertTrue(what.contains("v1/head"), what)
        case let other: XCTFail("\(other)")
        }
        XCTAssertEqual(quiet.stats.retransmissions, 2)
        // The silent peer saw the request and both retransmissions, with one Message ID.
        var ids: Set<UInt16> = []
        while let (bytes, _) = silent.receive() { ids.insert(try CoAPMessage.decode(bytes).messageID) }
        XCTAssertEqual(ids.count, 1)
    }

    /// An answer in another content format than the resource's is refused as a protocol violation, as the
    /// blocking client refuses it.
    func testAnAnswerInTheWrongContentFormatIsRefused() async throws {
        let liar = try CoAPTestSocket(timeoutMilliseconds: 200)
        nonisolated(unsafe) let socket = liar
        let answering = Thread {
            for _ in 0..<20 {
                guard let (bytes, port) = socket.receive(), let request = try? CoAPMessage.decode(bytes) else {
                    continue
                }
                var answer = CoAPMessage(type: .acknowledgement, code: .content, messageID: request.messageID)
                answer.token = request.token
                answer.contentFormat = 0  // text/plain
                answer.payload = Array("hello".utf8)
                socket.send(answer.encode(), toPort: port)
                return
            }
        }
        answering.start()
        let loop = try reactor(liar.localPort)
        let endpoint = try loop.endpoint()
        switch await loop.exchange(DeviceRequest(.head), on: endpoint) {
        case .failure(.protocolViolation(let why)): XCTAssertTrue(why.contains("content format"), why)
        case let other: XCTFail("\(other)")
        }
    }
}
