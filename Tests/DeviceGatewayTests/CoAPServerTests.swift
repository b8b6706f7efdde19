import AmarsCodec
import AmarsCrypto
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
