import AmarsCodec
import Chain
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import Logging
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#endif

/// A clock tests step by hand. `@unchecked Sendable`: `value` is only touched with `lock` held.
final class SerialTestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 1_000_000_000

    func advance(seconds: Double) { lock.withLock { value += UInt64(seconds * 1e9) } }

    var read: @Sendable () -> UInt64 { { [self] in lock.withLock { value } } }
}

/// The test plays the board: a TCP listener like QEMU's `-serial tcp:...,server=on`, which the bridge's
/// ``SerialPort`` connects to.
final class BoardListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 4) == 0 else {
            Glibc.close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { Glibc.close(fd) }

    /// The bridge's connection, or nil if it does not come within `timeout` seconds.
    func accept(timeout: Double = 5) -> BoardLine? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        return client >= 0 ? BoardLine(fd: client) : nil
    }
}

/// The board's end of the line: SLIP frames out, SLIP frames in.
final class BoardLine {
    private(set) var fd: Int32
    private var decoder = SLIPDecoder()
    private var frames: [[UInt8]] = []

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return }
            offset += n
        }
    }

    func send(_ message: CoAPMessage) { write(SLIP.encodeFrame(message.encode())) }

    /// The next frame's payload, or nil after `timeout` seconds of silence.
    func readFrame(timeout: Double = 5) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while frames.isEmpty {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else { return nil }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            frames += decoder.feed(Array(buffer[0..<n]))
        }
        return frames.removeFirst()
    }

    func readMessage(timeout: Double = 5) -> CoAPMessage? {
        readFrame(timeout: timeout).flatMap { try? CoAPMessage.decode($0) }
    }

    func exchange(_ request: CoAPMessage, timeout: Double = 8) -> CoAPMessage? {
        send(request)
        return readMessage(timeout: timeout)
    }
}

/// A chain with a CoAP gateway, a bridge on a `tcp:` serial port, and the board's line.
final class SerialRig<Backend: SerialBackend> {
    let f: CoAPFixture
    let listener: BoardListener
    let bridge: SerialBridge<Backend>
    let port: SerialPort
    let board: BoardLine

    init(_ f: CoAPFixture, backend: Backend, limits: SerialSession<Backend>.Limits = .init(), clock: SerialTestClock)
        throws
    {
        self.f = f
        listener = try BoardListener()
        bridge = SerialBridge(session: SerialSession(backend: backend, limits: limits, clock: clock.read))
        var logger = Logger(label: "serial-test")
        logger.logLevel = .critical
        port = SerialPort(
            endpoint: .tcp(host: "127.0.0.1", port: listener.port), handler: bridge,
            reconnect: .init(initialDelay: 0.05, maxDelay: 0.2, maxAttempts: 100), logger: logger)
        try port.start()
        board = try XCTUnwrap(listener.accept(), "the bridge did not connect")
    }

    func close() {
        port.stop()
        board.close()
        f.close()
    }
}

final class SerialBridgeTests: XCTestCase {
    static func relay(_ f: CoAPFixture) throws -> CoAPRelay {
        var logger = Logger(label: "serial-relay-test")
        logger.logLevel = .critical
        return try CoAPRelay(gateway: "coap://127.0.0.1:\(f.port)", logger: logger)
    }

    static func local(_ f: CoAPFixture, clock: SerialTestClock) -> DeviceHandlerBackend {
        DeviceHandlerBackend(handlers: f.server.handlers, clock: clock.read)
    }

    // MARK: the board's round: head, checkpoints block by block, submit, block, receipt

    func testBoardThroughRelayToARunningGateway() throws {
        let f = try CoAPFixture(epochLength: 2)
        let rig = try SerialRig(f, backend: try Self.relay(f), clock: SerialTestClock())
        defer { rig.close() }
        try boardRound(rig)
        XCTAssertEqual(rig.bridge.counters.backendFailures, 0)
        XCTAssertGreaterThan(rig.bridge.backend.counters.answered, 5)
    }

    func testBoardWithInProcessHandlers() throws {
        let f = try CoAPFixture(epochLength: 2, start: false)
        let clock = SerialTestClock()
        let rig = try SerialRig(f, backend: Self.local(f, clock: clock), clock: clock)
        defer { rig.close() }
        try boardRound(rig)
    }

    private func boardRound<B: SerialBackend>(_ rig: SerialRig<B>) throws {
        let f = rig.f
        let board = rig.board
        for _ in 0..<16 { try f.produceBlock() }

        // Head, as CON (piggybacked ACK, same Message ID and token) and as NON (NON, same token).
        let get = DeviceRequests.get(DeviceResources.head)
        let head = try XCTUnwrap(board.exchange(get))
        XCTAssertEqual(head.type, .acknowledgement)
        XCTAssertEqual(head.messageID, get.messageID)
        XCTAssertEqual(head.token, get.token)
        XCTAssertEqual(head.code, .content)
        XCTAssertEqual(try HeaderPayload(decoding: head.payload), f.headPayload)
        let non = DeviceRequests.get(DeviceResources.head, type: .nonConfirmable)
        let nonReply = try XCTUnwrap(board.exchange(non))
        XCTAssertEqual(nonReply.type, .nonConfirmable)
        XCTAssertEqual(nonReply.token, non.token)
        XCTAssertEqual(nonReply.code, .content)

        // Observe is not offered: the registration is answered as a plain GET.
        var observe = DeviceRequests.get(DeviceResources.head)
        observe.observe = Observe.register
        let observed = try XCTUnwrap(board.exchange(observe))
        XCTAssertEqual(observed.code, .content)
        XCTAssertNil(observed.observe)

        // Checkpoints: several KiB, read block by block.
        let expected = CheckpointsPayload(try f.node.checkpoints(from: 0, limit: 64)).encoded
        XCTAssertGreaterThan(expected.count, 2 * 1024)
        var body: [UInt8] = []
        var number: UInt32 = 0
        var eTag: [UInt8]?
        while true {
            var request = DeviceRequests.get(DeviceResources.checkpoints, query: ["from=0", "limit=64"])
            if number > 0 { request.addOption(BlockOption(number: number, more: false, szx: 6).option(.block2)) }
            let reply = try XCTUnwrap(board.exchange(request), "block \(number)")
            XCTAssertEqual(reply.code, .content, "block \(number)")
            let block = try BlockOption(option: XCTUnwrap(reply.option(.block2), "block \(number) without Block2"))
            XCTAssertEqual(block.number, number)
            XCTAssertLessThanOrEqual(reply.payload.count, 1024)
            XCTAssertLessThanOrEqual(reply.encode().count, CoAPMessage.maxMessageSize)
            if let tag = reply.option(.eTag)?.value {
                if let eTag { XCTAssertEqual(tag, eTag, "the body changed between blocks") }
                eTag = tag
            }
            body += reply.payload
            if !block.more { break }
            number += 1
            XCTAssertLessThan(number, 20)
        }
        XCTAssertGreaterThanOrEqual(number, 2)
        XCTAssertEqual(body, expected)

        // Submit a signed transfer (one message), and another one block-wise (32-byte Block1 blocks).
        let tx = f.transfer(from: f.alice, nonce: 0)
        var post = DeviceRequests.request(.post, DeviceResources.transaction, payload: tx.encoded)
        post.contentFormat = ContentFormat.chainPayload
        let created = try XCTUnwrap(board.exchange(post))
        XCTAssertEqual(created.code, .created, String(decoding: created.payload, as: UTF8.self))
        XCTAssertEqual(created.payload, tx.id.bytes)

        let tx2 = f.transfer(from: f.alice, nonce: 1).encoded
        var offset = 0
        var n: UInt32 = 0
        var last: CoAPMessage?
        while offset < tx2.count {
            let end = min(offset + 32, tx2.count)
            var block = DeviceRequests.request(
                .post, DeviceResources.transaction, token: [0xB1], payload: Array(tx2[offset..<end]))
            block.addOption(BlockOption(number: n, more: end < tx2.count, szx: 1).option(.block1))
            block.contentFormat = ContentFormat.chainPayload
            last = board.exchange(block)
            XCTAssertEqual(last?.code, end < tx2.count ? .continue : .created, "block \(n)")
            offset = end
            n += 1
        }
        XCTAssertEqual(last?.payload, try SignedTransaction(decoding: tx2).id.bytes)
        XCTAssertEqual(f.node.pendingCount, 2)

        // Pending, then a block, then the receipt.
        let id = Hex.encode(tx.id.bytes)
        let pending = try XCTUnwrap(board.exchange(DeviceRequests.get(DeviceResources.receipt, query: ["id=\(id)"])))
        XCTAssertEqual(pending.code, .notFound)
        let produced = try f.produceBlock()
        let final = try XCTUnwrap(board.exchange(DeviceRequests.get(DeviceResources.receipt, query: ["id=\(id)"])))
        XCTAssertEqual(final.code, .content)
        let receipt = try ReceiptPayload(decoding: final.payload)
        XCTAssertEqual(receipt.height, produced.block.header.height)
        XCTAssertEqual(receipt.receipt.transactionID, tx.id)

        // Unknown path and wrong method.
        XCTAssertEqual(board.exchange(DeviceRequests.get("v1/nothing"))?.code, .notFound)
        XCTAssertEqual(
            board.exchange(DeviceRequests.request(.post, DeviceResources.head))?.code, .methodNotAllowed)
        XCTAssertEqual(rig.bridge.counters.slipDrops.total, 0)
    }

    // MARK: bad input on the line

    func testNoiseBadFramesAndMalformedCoAPAreCountedOrAnsweredAndServingGoesOn() throws {
        let f = try CoAPFixture()
        let rig = try SerialRig(f, backend: try Self.relay(f), clock: SerialTestClock())
        defer { rig.close() }
        let board = rig.board

        // Line noise without any END, then an END: one bad frame at most, no answer.
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<200).map { _ in UInt8.random(in: 0...0xBF, using: &rng) }
        board.write(noise + [SLIP.end])
        // An over-long frame: more than a CoAP message's worth of bytes before END.
        board.write([SLIP.end] + [UInt8](repeating: 0x41, count: 3000) + [SLIP.end])
        // A good frame with one bit flipped: bad CRC.
        var flipped = SLIP.encodeFrame(DeviceRequests.get(DeviceResources.head).encode())
        flipped[3] ^= 0x01
        board.write(flipped)
        // A bad escape, and a too-short frame.
        board.write([SLIP.end, 0x40, SLIP.esc, 0x01, 0x02, SLIP.end, 0x40, SLIP.end])
        XCTAssertNil(board.readFrame(timeout: 0.5), "line errors get no answer")

        // The bridge still answers, and has counted each kind.
        let head = try XCTUnwrap(board.exchange(DeviceRequests.get(DeviceResources.head)))
        XCTAssertEqual(head.code, .content)
        var drops = rig.bridge.counters.slipDrops
        XCTAssertEqual(drops.overLength, 1)
        XCTAssertGreaterThanOrEqual(drops.badCheck, 1)
        XCTAssertEqual(drops.badEscape, 1)
        XCTAssertEqual(drops.tooShort, 1)

        // Malformed CoAP inside good frames.
        // CON with a reserved option nibble: a format error, so Reset with its Message ID.
        board.write(SLIP.encodeFrame([0x40, 0x01, 0x20, 0x01, 0xF1, 0x00]))
        let reset = try XCTUnwrap(board.readMessage())
        XCTAssertEqual(reset.type, .reset)
        XCTAssertEqual(reset.messageID, 0x2001)
        // The same as NON: dropped silently.
        board.write(SLIP.encodeFrame([0x50, 0x01, 0x20, 0x02, 0xF1, 0x00]))
        // Payload marker with nothing after it, NON: dropped.
        var marker = DeviceRequests.get(DeviceResources.head, type: .nonConfirmable).encode()
        marker.append(0xFF)
        board.write(SLIP.encodeFrame(marker))
        // Wrong version: dropped.
        board.write(SLIP.encodeFrame([0x81, 0x01, 0x00, 0x00]))
        XCTAssertNil(board.readFrame(timeout: 0.5))

        // Unknown critical option: 4.02 with the request's token.
        var critical = DeviceRequests.get(DeviceResources.head)
        critical.addOption(CoAPOption(number: CoAPOptionNumber(rawValue: 2049), value: [1]))
        let badOption = try XCTUnwrap(board.exchange(critical))
        XCTAssertEqual(badOption.code, .badOption)
        XCTAssertEqual(badOption.token, critical.token)
        // A Block2 value of four bytes (critical option, bad length): 4.02; Content-Format of three bytes
        // (elective): 4.00. Built by hand, since our encoder would not.
        let get = DeviceRequests.get(DeviceResources.head)
        var longBlock = get.encode()
        longBlock += [0xC4, 0, 0, 0, 0]  // delta 12 from Uri-Path (11) = 23 Block2, length 4
        XCTAssertEqual(board.exchange(RawMessage(bytes: longBlock))?.code, .badOption)
        var longFormat = DeviceRequests.get(DeviceResources.head).encode()
        longFormat += [0x13, 0, 0, 0]  // delta 1 from 11 = 12 Content-Format, length 3
        XCTAssertEqual(board.exchange(RawMessage(bytes: longFormat))?.code, .badRequest)
        // A CON ping gets a Reset; an ACK and a RST from the board get nothing.
        let ping = try XCTUnwrap(board.exchange(CoAPMessage(type: .confirmable, code: .empty, messageID: 0x7777)))
        XCTAssertEqual(ping.type, .reset)
        XCTAssertEqual(ping.messageID, 0x7777)
        board.send(CoAPMessage(type: .acknowledgement, code: .empty, messageID: 1))
        board.send(CoAPMessage(type: .reset, code: .empty, messageID: 2))
        XCTAssertNil(board.readFrame(timeout: 0.5))

        let again = try XCTUnwrap(board.exchange(DeviceRequests.get(DeviceResources.head)))
        XCTAssertEqual(again.code, .content)
        let c = rig.bridge.counters
        XCTAssertEqual(c.resets, 2)
        XCTAssertEqual(c.malformed, 3)
        XCTAssertEqual(c.refused, 3)
        XCTAssertEqual(c.ignored, 2)
        XCTAssertEqual(c.requests, 2, "only the two good GETs reached the gateway")
        drops = c.slipDrops
        XCTAssertEqual(drops.overLength, 1)
        XCTAssertEqual(f.node.pendingCount, 0)
    }

    func testFloodGets429WithMaxAgeAndServingResumes() throws {
        let f = try CoAPFixture()
        let clock = SerialTestClock()
        let limits = SerialSession<CoAPRelay>.Limits(requests: .init(perSecond: 1, burst: 5, maxDevices: 1))
        let rig = try SerialRig(f, backend: try Self.relay(f), limits: limits, clock: clock)
        defer { rig.close() }
        var codes: [CoAPCode] = []
        for _ in 0..<12 {
            let reply = try XCTUnwrap(rig.board.exchange(DeviceRequests.get(DeviceResources.head)))
            codes.append(reply.code)
            if reply.code == .tooManyRequests { XCTAssertEqual(reply.uintOption(.maxAge), 1) }
        }
        XCTAssertEqual(codes, Array(repeating: .content, count: 5) + Array(repeating: .tooManyRequests, count: 7))
        XCTAssertEqual(rig.bridge.counters.rateLimited, 7)
        clock.advance(seconds: 3)
        for _ in 0..<3 { XCTAssertEqual(rig.board.exchange(DeviceRequests.get(DeviceResources.head))?.code, .content) }
        XCTAssertEqual(rig.board.exchange(DeviceRequests.get(DeviceResources.head))?.code, .tooManyRequests)
    }

    func testRetransmittedSubmitIsAnsweredAgainWithoutSubmittingTwice() throws {
        let f = try CoAPFixture()
        let rig = try SerialRig(f, backend: try Self.relay(f), clock: SerialTestClock())
        defer { rig.close() }
        let tx = f.transfer(from: f.alice, nonce: 0)
        let post = DeviceRequests.request(.post, DeviceResources.transaction, payload: tx.encoded)
        let first = try XCTUnwrap(rig.board.exchange(post))
        let second = try XCTUnwrap(rig.board.exchange(post))
        XCTAssertEqual(first.code, .created)
        XCTAssertEqual(second, first)
        XCTAssertEqual(rig.bridge.counters.duplicates, 1)
        XCTAssertEqual(f.node.pendingCount, 1)
        // A new Message ID is a new request: the gateway says it already has it.
        let fresh = DeviceRequests.request(.post, DeviceResources.transaction, payload: tx.encoded)
        let third = try XCTUnwrap(rig.board.exchange(fresh))
        XCTAssertEqual(third.code, .badRequest)
        XCTAssertEqual(String(decoding: third.payload, as: UTF8.self), "alreadyKnown")
    }

    // MARK: the line and the gateway going away

    func testBoardDisconnectingAndReconnecting() throws {
        let f = try CoAPFixture()
        let rig = try SerialRig(f, backend: try Self.relay(f), clock: SerialTestClock())
        defer { rig.close() }
        XCTAssertEqual(rig.board.exchange(DeviceRequests.get(DeviceResources.head))?.code, .content)
        // Half a frame, then the board goes away (QEMU restarted).
        let frame = SLIP.encodeFrame(DeviceRequests.get(DeviceResources.head).encode())
        rig.board.write(Array(frame.prefix(frame.count / 2)))
        usleep(100_000)
        rig.board.close()

        let board = try XCTUnwrap(rig.listener.accept(timeout: 5), "the bridge did not reconnect")
        defer { board.close() }
        // The old half frame is gone: the first frame on the new line is answered as it is.
        let head = try XCTUnwrap(board.exchange(DeviceRequests.get(DeviceResources.head)))
        XCTAssertEqual(head.code, .content)
        XCTAssertEqual(try HeaderPayload(decoding: head.payload), f.headPayload)
        let counters = rig.port.counters
        XCTAssertEqual(counters.opens, 2)
        XCTAssertEqual(counters.disconnects, 1)
        XCTAssertEqual(rig.bridge.counters.lineResets, 2)
        XCTAssertEqual(rig.bridge.counters.slipDrops.total, 0)
    }

    func testBridgeWaitsForTheBoardAndGivesUpWhenBounded() throws {
        // No listener yet: the port keeps trying, then connects once the board's side is up.
        let listener = try BoardListener()
        let port = listener.port
        let session = SerialSession(backend: NoBackend())
        var logger = Logger(label: "serial-test")
        logger.logLevel = .critical
        let bounded = SerialPort(
            endpoint: .tcp(host: "127.0.0.1", port: try CoAPFixture.freeUDPPort()),
            handler: SerialBridge(session: session),
            reconnect: .init(initialDelay: 0.02, maxDelay: 0.05, maxAttempts: 3), logger: logger)
        try bounded.start()
        let deadline = Date().addingTimeInterval(5)
        while !bounded.hasFailed && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(bounded.hasFailed)
        XCTAssertEqual(bounded.counters.openFailures, 3)
        bounded.stop()

        let working = SerialPort(
            endpoint: .tcp(host: "127.0.0.1", port: port), handler: SerialBridge(session: session), logger: logger)
        try working.start()
        defer { working.stop() }
        let board = try XCTUnwrap(listener.accept())
        let reply = try XCTUnwrap(board.exchange(DeviceRequests.get(DeviceResources.head)))
        XCTAssertEqual(reply.code, .gatewayTimeout)
    }

    func testGatewayDownAnswers504Quickly() throws {
        let f = try CoAPFixture(start: false)
        let rig = try SerialRig(f, backend: try Self.relay(f), clock: SerialTestClock())
        defer { rig.close() }
        let started = Date()
        let reply = try XCTUnwrap(rig.board.exchange(DeviceRequests.get(DeviceResources.head), timeout: 10))
        XCTAssertEqual(reply.code, .gatewayTimeout)
        XCTAssertLessThan(Date().timeIntervalSince(started), 6)
        XCTAssertEqual(rig.bridge.counters.backendFailures, 1)
    }

    // MARK: sans-I/O pieces

    func testSessionAnswersFramesSplitAcrossReads() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        let clock = SerialTestClock()
        var session = SerialSession(backend: Self.local(f, clock: clock), clock: clock.read)
        let request = DeviceRequests.get(DeviceResources.head)
        let framed = SLIP.encodeFrame(request.encode()) + SLIP.encodeFrame(request.encode())
        var out: [UInt8] = []
        for byte in framed { out += session.receive([byte]) }
        var decoder = SLIPDecoder()
        let replies = decoder.feed(out).compactMap { try? CoAPMessage.decode($0) }
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies.first?.code, .content)
        XCTAssertEqual(session.counters.duplicates, 1)
    }

    func testInProcessBackendNegotiatesBlockSizesAndRefusesBadUploads() throws {
        let f = try CoAPFixture(epochLength: 2, start: false)
        defer { f.close() }
        for _ in 0..<8 { try f.produceBlock() }
        let clock = SerialTestClock()
        let backend = Self.local(f, clock: clock)
        let expected = CheckpointsPayload(try f.node.checkpoints(from: 0, limit: 64)).encoded

        // The board asks for 64-byte blocks from the start (early negotiation).
        var body: [UInt8] = []
        var number: UInt32 = 0
        while true {
            var request = DeviceRequests.get(DeviceResources.checkpoints, query: ["from=0", "limit=64"])
            request.addOption(BlockOption(number: number, more: false, szx: 2).option(.block2))
            let reply = try XCTUnwrap(backend.exchange(request))
            let block = try BlockOption(option: XCTUnwrap(reply.option(.block2)))
            XCTAssertEqual(block.szx, 2)
            XCTAssertEqual(reply.uintOption(.size2), UInt32(expected.count))
            body += reply.payload
            if !block.more { break }
            number += 1
        }
        XCTAssertEqual(body, expected)
        // A block past the end: 4.02.
        var past = DeviceRequests.get(DeviceResources.checkpoints, query: ["from=0", "limit=64"])
        past.addOption(BlockOption(number: 5000, more: false, szx: 2).option(.block2))
        XCTAssertEqual(backend.exchange(past)?.code, .badOption)
        // A small body asked for without Block2 has none.
        XCTAssertNil(backend.exchange(DeviceRequests.get(DeviceResources.head))?.option(.block2))

        // Uploads: an announced Size1 over the cap is 4.13 naming the cap; a block 1 without block 0 is 4.08.
        var large = DeviceRequests.request(
            .post, DeviceResources.transaction, payload: [UInt8](repeating: 1, count: 64))
        large.addOption(BlockOption(number: 0, more: true, szx: 2).option(.block1))
        large.addOption(CoAPOption(number: .size1, uint: 1_000_000))
        let tooLarge = try XCTUnwrap(backend.exchange(large))
        XCTAssertEqual(tooLarge.code, .requestEntityTooLarge)
        XCTAssertEqual(tooLarge.uintOption(.size1), UInt32(f.server.handlers.maxTransactionBytes))
        var orphan = DeviceRequests.request(
            .post, DeviceResources.transaction, payload: [UInt8](repeating: 1, count: 64))
        orphan.addOption(BlockOption(number: 1, more: true, szx: 2).option(.block1))
        XCTAssertEqual(backend.exchange(orphan)?.code, .requestEntityIncomplete)
        XCTAssertEqual(f.node.pendingCount, 0)
    }

    func testRelayURLsAndSerialEndpoints() {
        XCTAssertTrue(CoAPRelay.parse("coap://127.0.0.1:5683")! == ("127.0.0.1", 5683))
        XCTAssertTrue(CoAPRelay.parse("coap://[::1]:6000/")! == ("::1", 6000))
        XCTAssertTrue(CoAPRelay.parse("coap://gateway")! == ("gateway", 5683))
        for bad in ["http://x:1", "coap://", "coap://x:0", "coap://x:99999", "coap://x/v1", "coap://[::1"] {
            XCTAssertNil(CoAPRelay.parse(bad), bad)
        }
        XCTAssertEqual(SerialPort.Endpoint.parse("tcp:127.0.0.1:4321"), .tcp(host: "127.0.0.1", port: 4321))
        XCTAssertEqual(SerialPort.Endpoint.parse("tcp:[::1]:4321"), .tcp(host: "::1", port: 4321))
        XCTAssertEqual(SerialPort.Endpoint.parse("/dev/ttyUSB0", baud: 9600), .device(path: "/dev/ttyUSB0", baud: 9600))
        XCTAssertNil(SerialPort.Endpoint.parse("tcp:host"))
        XCTAssertNil(SerialPort.Endpoint.parse("tcp::1"))
        XCTAssertNotNil(SerialPort.speed(115_200))
        XCTAssertNil(SerialPort.speed(1234))
    }
}

/// Bytes a test sends as they are, for malformed messages the codec would not build.
struct RawMessage {
    var bytes: [UInt8]
}

extension BoardLine {
    func exchange(_ raw: RawMessage, timeout: Double = 8) -> CoAPMessage? {
        write(SLIP.encodeFrame(raw.bytes))
        return readMessage(timeout: timeout)
    }
}

/// A backend that never answers, for port tests that need no gateway.
struct NoBackend: SerialBackend {
    func exchange(_ request: CoAPMessage) -> CoAPMessage? { nil }
}
