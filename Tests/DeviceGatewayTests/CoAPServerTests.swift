import AmarsCodec
import AmarsCrypto
import Chain
import DeviceProtocol
import Foundation
import Ledger
import Logging
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#endif

/// A one-validator chain on a temporary SQLite file with a CoAP server on a free loopback port. Blocks come
/// from `produceBlock()` calls, so every test decides exactly when the head moves.
final class CoAPFixture {
    static let chainID: UInt32 = 77

    let dir: URL
    let validator: PrivateKey
    let alice: PrivateKey
    let bob: PrivateKey
    let genesis: Genesis
    let node: ChainNode
    let server: CoAPServer
    let port: UInt16
    private var clock: UInt64

    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 7, w2: 0, w3: n)) }
    static func address(_ key: PrivateKey) -> Address { Address(publicKey: key.xOnlyPublicKey) }

    /// `start: false` leaves the server stopped (for handler-only tests).
    init(
        epochLength: UInt64 = 100, limits: CoAPServer.Limits = .init(), mempoolLimits: Mempool.Limits = .init(),
        dtlsKeys: [String: [UInt8]]? = nil, start: Bool = true
    ) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-coap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        validator = Self.key(1)
        alice = Self.key(2)
        bob = Self.key(3)
        var allocations: [Genesis.Allocation] = []
        for category in Genesis.Category.allCases {
            let owner = category == .strategicPartners ? bob : alice
            allocations.append(.init(category: category, address: Self.address(owner), amount: category.amount))
        }
        genesis = Genesis(
            chainID: Self.chainID, chainName: "coap-test", timestamp: 1_700_000_000_000, epochLength: epochLength,
            initialBaseFee: 10, validators: [Committee.Member(key: validator.xOnlyPublicKey.bytes, weight: 1)],
            allocations: allocations, burned: [:])
        clock = genesis.timestamp
        var logger = Logger(label: "coap-test")
        logger.logLevel = .critical
        node = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path),
            validatorKey: validator, mempoolLimits: mempoolLimits, logger: logger)
        // Port 0 is not portable across libcoap versions: take a port the kernel just handed out, and retry if
        // another process grabbed it in between.
        (server, port) = try Self.startServer(
            node: node, logger: logger, limits: limits, dtlsKeys: dtlsKeys, start: start)
    }

    private static func startServer(
        node: ChainNode, logger: Logger, limits: CoAPServer.Limits, dtlsKeys: [String: [UInt8]]?, start: Bool
    ) throws -> (CoAPServer, UInt16) {
        var attempts = 0
        while true {
            let candidate = try freeUDPPort()
            let dtls = try dtlsKeys.map { CoAPServer.DTLSPSK(port: try freeUDPPort(), keys: $0) }
            let server = CoAPServer(
                node: node, host: "127.0.0.1", port: candidate, logger: logger, limits: limits, dtls: dtls)
            if !start { return (server, candidate) }
            do {
                try server.start()
                return (server, candidate)
            } catch {
                attempts += 1
                if attempts > 5 { throw error }
            }
        }
    }

    func close() {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    func transfer(
        from key: PrivateKey, nonce: UInt64, amount: UInt64 = 1_000, maxFee: UInt64 = 100, to: Address? = nil
    ) -> SignedTransaction {
        let body = TransactionBody(
            chainID: Self.chainID, sender: key.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: maxFee,
            tipPerUnit: 1, payload: .transfer(Transfer(to: to ?? Self.address(bob), amount: amount)))
        return SignedTransaction(body: body, signer: key)
    }

    @discardableResult
    func produceBlock() throws -> FinalizedBlock {
        clock += 1000
        return try node.produceBlock(timestamp: clock)
    }

    var headPayload: HeaderPayload {
        let stored = try! node.block(at: node.head.height)!
        return HeaderPayload(stored.finalized)
    }

    static func freeUDPPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}

/// A plain UDP socket on loopback, standing in for a device that speaks CoAP through DeviceProtocol.
final class CoAPTestSocket {
    let fd: Int32
    let localPort: UInt16

    /// `local` picks the source address (another 127.x.y.z is another device to the rate limiter);
    /// `port` 0 lets the kernel choose.
    init(local: String = "127.0.0.1", port: UInt16 = 0, timeoutMilliseconds: Int = 3000) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(local)
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            Glibc.close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        localPort = UInt16(bigEndian: address.sin_port)
        setTimeout(milliseconds: timeoutMilliseconds)
    }

    deinit { Glibc.close(fd) }

    func setTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8], toPort port: UInt16, host: String = "127.0.0.1") {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = port.bigEndian
        _ = bytes.withUnsafeBytes { buf in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// One datagram and the port it came from, or nil on timeout.
    func receive() -> (bytes: [UInt8], port: UInt16)? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buffer.withUnsafeMutableBytes { buf in
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, buf.baseAddress, buf.count, 0, $0, &length)
                }
            }
        }
        guard n >= 0 else { return nil }
        return (Array(buffer[0..<n]), UInt16(bigEndian: address.sin_port))
    }

    /// Sends a request and returns the first reply that decodes and matches its token (skipping anything
    /// else, such as late retransmissions), or nil on timeout.
    func exchange(_ request: CoAPMessage, port: UInt16) -> CoAPMessage? {
        send(request.encode(), toPort: port)
        return receiveMessage { $0.token == request.token && $0.type != .reset }
    }

    func receiveMessage(where accept: (CoAPMessage) -> Bool = { _ in true }) -> CoAPMessage? {
        while let (bytes, _) = receive() {
            if let m = try? CoAPMessage.decode(bytes, maxMessageSize: 65536), accept(m) { return m }
        }
        return nil
    }
}

/// Builds requests with DeviceProtocol's codec.
enum DeviceRequests {
    nonisolated(unsafe) static var nextID: UInt16 = 0x1000

    static func get(
        _ path: StaticString, query: [String] = [], type: CoAPMessageType = .confirmable, token: [UInt8]? = nil
    ) -> CoAPMessage {
        request(.get, path, query: query, type: type, token: token)
    }

    static func request(
        _ code: CoAPCode, _ path: StaticString, query: [String] = [], type: CoAPMessageType = .confirmable,
        token: [UInt8]? = nil, payload: [UInt8] = []
    ) -> CoAPMessage {
        nextID &+= 1
        var m = CoAPMessage(
            type: type, code: code, messageID: nextID,
            token: token ?? [UInt8(truncatingIfNeeded: nextID >> 8), UInt8(truncatingIfNeeded: nextID), 0xC0])
        m.setUriPath(path)
        m.uriQuery = query.map { Array($0.utf8) }
        m.payload = payload
        return m
    }
}

final class CoAPServerTests: XCTestCase {
    func testHeadOverUDPWithOurCodecDecodesToTheNodesHead() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        try f.produceBlock()
        let socket = try CoAPTestSocket()
        let reply = try XCTUnwrap(socket.exchange(DeviceRequests.get(DeviceResources.head), port: f.port))
        XCTAssertEqual(reply.type, .acknowledgement)
        XCTAssertEqual(reply.code, .content)
        XCTAssertEqual(reply.contentFormat, ContentFormat.chainPayload)
        let payload = try HeaderPayload(decoding: reply.payload)
        XCTAssertEqual(payload, f.headPayload)
        XCTAssertEqual(payload.header.height, 1)
    }

    func testEveryResourceAnswersOverUDP() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        let tx = f.transfer(from: f.alice, nonce: 0)
        XCTAssertNoThrow(try f.node.submit(tx))
        try f.produceBlock()
        let socket = try CoAPTestSocket()
        let id = Hex.encode(tx.id.bytes)
        let cases: [(StaticString, [String], CoAPCode)] = [
            (DeviceResources.headers, ["h=1"], .content),
            (DeviceResources.headers, ["h=9"], .notFound),
            (DeviceResources.headers, ["h=x"], .badRequest),
            (DeviceResources.txProof, ["id=\(id)"], .content),
            (DeviceResources.accountProof, ["a=\(CoAPFixture.address(f.alice).bech32)"], .content),
            (DeviceResources.accountProof, ["a=amsc1nope"], .badRequest),
            (DeviceResources.certificate, ["id=\(id)"], .content),
            (DeviceResources.receipt, ["id=\(id)"], .content),
            (DeviceResources.receipt, ["id=\(String(repeating: "0", count: 64))"], .notFound),
            (DeviceResources.inbox, ["a=\(CoAPFixture.address(f.bob).bech32)", "from=0"], .content),
            (DeviceResources.inbox, ["from=0"], .badRequest),
            (DeviceResources.escrowProof, ["id=\(id)"], .content),
            (DeviceResources.escrowProof, ["id=zz"], .badRequest),
            (DeviceResources.checkpoints, ["from=0", "limit=0"], .badRequest),
            ("v1/nothing", [], .notFound),
        ]
        for (path, query, code) in cases {
            let reply = try XCTUnwrap(socket.exchange(DeviceRequests.get(path, query: query), port: f.port))
            XCTAssertEqual(reply.code, code, "\(path) \(query)")
        }
        let proof = try XCTUnwrap(
            socket.exchange(DeviceRequests.get(DeviceResources.txProof, query: ["id=\(id)"]), port: f.port))
        let decoded = try TransactionProofPayload(decoding: proof.payload)
        XCTAssertTrue(
            decoded.proof.verify(leafHash: MerkleTree.leafHash(tx.id.bytes), root: decoded.header.transactionsRoot))
        // Wrong method: POST to a GET-only resource, GET to the POST-only one.
        let post = try XCTUnwrap(socket.exchange(DeviceRequests.request(.post, DeviceResources.head), port: f.port))
        XCTAssertEqual(post.code, .methodNotAllowed)
        let get = try XCTUnwrap(socket.exchange(DeviceRequests.get(DeviceResources.transaction), port: f.port))
        XCTAssertEqual(get.code, .methodNotAllowed)
    }

    func testObserveHeadGetsANotificationWithTheNewHead() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        let socket = try CoAPTestSocket()
        var register = DeviceRequests.get(DeviceResources.head, token: [0x0B, 0x5E])
        register.observe = Observe.register
        let first = try XCTUnwrap(socket.exchange(register, port: f.port))
        XCTAssertEqual(first.code, .content)
        let firstSequence = try XCTUnwrap(first.observe, "the registration's answer carries Observe")
        XCTAssertEqual(try HeaderPayload(decoding: first.payload).header.height, 0)

        let block = try f.produceBlock()
        f.server.headChanged()
        let note = try XCTUnwrap(socket.receiveMessage { $0.token == [0x0B, 0x5E] }, "no notification")
        if note.type == .confirmable {
            socket.send(
                CoAPMessage(type: .acknowledgement, code: .empty, messageID: note.messageID).encode(), toPort: f.port)
        }
        XCTAssertEqual(note.code, .content)
        let sequence = try XCTUnwrap(note.observe)
        XCTAssertTrue(Observe.isNewer(sequence, than: firstSequence, secondsSincePrevious: 1))
        let payload = try HeaderPayload(decoding: note.payload)
        XCTAssertEqual(payload.header, block.block.header)
        XCTAssertEqual(payload.certificate, block.certificate)

        // A second block, a second notification, newer again.
        try f.produceBlock()
        f.server.headChanged()
        let second = try XCTUnwrap(socket.receiveMessage { $0.token == [0x0B, 0x5E] })
        XCTAssertTrue(Observe.isNewer(try XCTUnwrap(second.observe), than: sequence, secondsSincePrevious: 1))
        XCTAssertEqual(try HeaderPayload(decoding: second.payload).header.height, 2)
    }

    func testBadDatagramsGetTheRightAnswerOrNoneAndChangeNothing() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        let pendingBefore = f.node.pendingCount
        let socket = try CoAPTestSocket(timeoutMilliseconds: 700)

        func raw(_ bytes: [UInt8]) -> CoAPMessage? {
            socket.send(bytes, toPort: f.port)
            return socket.receiveMessage()
        }
        // Option delta nibble 15 (reserved): a format error, so a Reset or silence, never a response.
        let nibble15 = raw([0x40, 0x01, 0x20, 0x01, 0xF1, 0x00])
        XCTAssertTrue(nibble15 == nil || nibble15?.type == .reset, "\(String(describing: nibble15))")
        // Token length 8 with two token bytes present.
        let truncated = raw([0x48, 0x01, 0x20, 0x02, 0xAA, 0xBB])
        XCTAssertTrue(truncated == nil || truncated?.type == .reset)
        // Payload marker with nothing after it.
        var marker = DeviceRequests.get(DeviceResources.head).encode()
        marker.append(0xFF)
        let markerReply = raw(marker)
        XCTAssertTrue(markerReply == nil || markerReply?.type == .reset)
        // Garbage: wrong version, and random bytes.
        XCTAssertNil(raw([0x00, 0x01, 0x02]))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let junk = (0..<Int.random(in: 1..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            socket.send(junk, toPort: f.port)
        }
        while socket.receive() != nil {}

        // Unknown critical option (odd, unregistered number): 4.02.
        var critical = DeviceRequests.get(DeviceResources.head)
        critical.addOption(CoAPOption(number: CoAPOptionNumber(rawValue: 2049), value: [1]))
        let badOption = try XCTUnwrap(socket.exchange(critical, port: f.port))
        XCTAssertEqual(badOption.code, .badOption)

        // A block-wise upload announcing 100 000 bytes: 4.13 with Size1 naming the cap.
        var upload = DeviceRequests.request(
            .post, DeviceResources.transaction, payload: [UInt8](repeating: 0xAB, count: 1024))
        upload.addOption(BlockOption(number: 0, more: true, szx: 6).option(.block1))
        upload.addOption(CoAPOption(number: .size1, uint: 100_000))
        upload.contentFormat = ContentFormat.chainPayload
        let tooLarge = try XCTUnwrap(socket.exchange(upload, port: f.port))
        XCTAssertEqual(tooLarge.code, .requestEntityTooLarge)
        XCTAssertEqual(tooLarge.uintOption(.size1), UInt32(Caps.transactionBytes))

        // Without Size1 the cap is hit when the blocks reach it.
        let token: [UInt8] = [0x13, 0x13]
        var lastCode: CoAPCode?
        for n in 0..<4 {
            var block = DeviceRequests.request(
                .post, DeviceResources.transaction, token: token, payload: [UInt8](repeating: 0xCD, count: 1024))
            block.addOption(BlockOption(number: UInt32(n), more: true, szx: 6).option(.block1))
            block.contentFormat = ContentFormat.chainPayload
            lastCode = socket.exchange(block, port: f.port)?.code
            if lastCode != .continue { break }
        }
        XCTAssertEqual(lastCode, .requestEntityTooLarge)

        // Still answering, and the mempool saw none of it.
        socket.setTimeout(milliseconds: 3000)
        let after = try XCTUnwrap(socket.exchange(DeviceRequests.get(DeviceResources.head), port: f.port))
        XCTAssertEqual(after.code, .content)
        XCTAssertEqual(f.node.pendingCount, pendingBefore)
    }

    func testBlockwiseUploadOfAValidTransactionIsAssembled() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        let tx = f.transfer(from: f.alice, nonce: 0).encoded
        let socket = try CoAPTestSocket()
        let token: [UInt8] = [0x77]
        var reply: CoAPMessage?
        var offset = 0
        var n: UInt32 = 0
        while offset < tx.count {
            let end = min(offset + 32, tx.count)
            var block = DeviceRequests.request(
                .post, DeviceResources.transaction, token: token, payload: Array(tx[offset..<end]))
            block.addOption(BlockOption(number: n, more: end < tx.count, szx: 1).option(.block1))
            block.contentFormat = ContentFormat.chainPayload
            reply = socket.exchange(block, port: f.port)
            XCTAssertEqual(reply?.code, end < tx.count ? .continue : .created)
            offset = end
            n += 1
        }
        XCTAssertGreaterThan(n, 2)
        XCTAssertEqual(reply?.payload, try SignedTransaction(decoding: tx).id.bytes)
        XCTAssertEqual(f.node.pendingCount, 1)
    }

    func testOneDeviceFloodingSubmitsGets429AndOthersAreUnaffected() throws {
        let limits = CoAPServer.Limits(submits: .init(perSecond: 0.001, burst: 3))
        let f = try CoAPFixture(limits: limits)
        defer { f.close() }
        let flooder = try CoAPTestSocket(local: "127.0.0.1")
        var codes: [CoAPCode] = []
        for nonce in 0..<8 {
            let tx = f.transfer(from: f.alice, nonce: UInt64(nonce)).encoded
            let r = DeviceRequests.request(.post, DeviceResources.transaction, payload: tx)
            codes.append(try XCTUnwrap(flooder.exchange(r, port: f.port)).code)
        }
        XCTAssertEqual(codes, [.created, .created, .created] + Array(repeating: .tooManyRequests, count: 5))
        XCTAssertEqual(f.node.pendingCount, 3, "refused submits never reach the mempool")

        // Another device (another source address) still submits, and the flooder can still read.
        let other = try CoAPTestSocket(local: "127.0.0.2")
        let bobTx = f.transfer(from: f.bob, nonce: 0).encoded
        let accepted = try XCTUnwrap(
            other.exchange(DeviceRequests.request(.post, DeviceResources.transaction, payload: bobTx), port: f.port))
        XCTAssertEqual(accepted.code, .created)
        XCTAssertEqual(f.node.pendingCount, 4)
        let read = try XCTUnwrap(flooder.exchange(DeviceRequests.get(DeviceResources.head), port: f.port))
        XCTAssertEqual(read.code, .content)
    }

    func testServerStopsAndFreesThePort() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        f.server.stop()
        f.server.stop()
        let socket = try CoAPTestSocket(timeoutMilliseconds: 300)
        XCTAssertNil(socket.exchange(DeviceRequests.get(DeviceResources.head), port: f.port))
        // The port is free again: a new server binds it.
        let again = CoAPServer(node: f.node, host: "127.0.0.1", port: f.port)
        XCTAssertNoThrow(try again.start())
        again.stop()
        XCTAssertThrowsError(try CoAPServer(node: f.node, host: "not-an-ip", port: f.port).start())
    }
}
