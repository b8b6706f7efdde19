import AmarsCodec
import AmarsCrypto
import Chain
import DeviceClient
import DeviceCore
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import LightClient
import XCTest

@testable import DeviceGateway

/// The device API as pure functions: no libcoap, no sockets.
final class DeviceResourceHandlerTests: XCTestCase {
    func handle(_ f: CoAPFixture, _ route: DeviceResource, _ query: String = "", body: [UInt8] = []) -> DeviceResponse {
        f.server.handlers.handle(route, query: Array(query.utf8), body: body)
    }

    func testHeadAndHeadersCarryTheCertificate() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        let block = try f.produceBlock()
        let head = handle(f, .head)
        XCTAssertEqual(head.code, .content)
        XCTAssertEqual(head.contentFormat, ContentFormat.chainPayload)
        XCTAssertEqual(try HeaderPayload(decoding: head.payload), HeaderPayload(block))
        XCTAssertEqual(handle(f, .head, "x=1").code, .badRequest)

        let genesis = handle(f, .headers, "h=0")
        XCTAssertEqual(try HeaderPayload(decoding: genesis.payload).header.height, 0)
        XCTAssertEqual(handle(f, .headers, "h=1").payload, head.payload)
        XCTAssertEqual(handle(f, .headers, "h=2").code, .notFound)
        for bad in ["", "h=", "h=-1", "h=01", "h=1x", "h=99999999999999999999999", "height=1", "h=1&h=1", "h=1&z=2"] {
            XCTAssertEqual(handle(f, .headers, bad).code, .badRequest, bad)
        }
    }

    func testCheckpointsEqualTheNodesEncoding() throws {
        let f = try CoAPFixture(epochLength: 2, start: false)
        defer { f.close() }
        for _ in 0..<9 { try f.produceBlock() }
        let all = handle(f, .checkpoints, "from=0")
        XCTAssertEqual(all.code, .content)
        XCTAssertEqual(all.payload, CheckpointsPayload(try f.node.checkpoints(from: 0, limit: 16)).encoded)
        XCTAssertEqual(try CheckpointsPayload(decoding: all.payload).checkpoints.count, 4)
        let two = try CheckpointsPayload(decoding: handle(f, .checkpoints, "from=1&limit=2").payload)
        XCTAssertEqual(two.checkpoints.map(\.header.height), [4, 6])
        XCTAssertEqual(try CheckpointsPayload(decoding: handle(f, .checkpoints, "from=99").payload).checkpoints, [])
        // Huge limits are clamped, not refused.
        XCTAssertEqual(handle(f, .checkpoints, "from=0&limit=100000").payload, all.payload)
        for bad in ["", "limit=2", "from=a", "from=0&limit=0", "from=0&limit=", "from=0&x=1", "from"] {
            XCTAssertEqual(handle(f, .checkpoints, bad).code, .badRequest, bad)
        }
    }

    func testSubmitCodes() throws {
        let f = try CoAPFixture(mempoolLimits: .init(maxTransactions: 1, maxPerSender: 4), start: false)
        defer { f.close() }
        let tx = f.transfer(from: f.alice, nonce: 0)
        let ok = handle(f, .transaction, body: tx.encoded)
        XCTAssertEqual(ok.code, .created)
        XCTAssertEqual(ok.payload, tx.id.bytes)
        XCTAssertEqual(f.node.pendingCount, 1)

        let again = handle(f, .transaction, body: tx.encoded)
        XCTAssertEqual(again.code, .badRequest)
        XCTAssertEqual(String(decoding: again.payload, as: UTF8.self), "alreadyKnown")
        XCTAssertNil(again.contentFormat, "diagnostics are plain text without a content-format")

        // Mempool of one, same fee from another sender: full, retry later.
        let full = handle(f, .transaction, body: f.transfer(from: f.bob, nonce: 0).encoded)
        XCTAssertEqual(full.code, .serviceUnavailable)
        XCTAssertEqual(String(decoding: full.payload, as: UTF8.self), "mempoolFull")

        var forged = f.transfer(from: f.bob, nonce: 0).encoded
        forged[forged.count - 1] ^= 1
        XCTAssertEqual(String(decoding: handle(f, .transaction, body: forged).payload, as: UTF8.self), "badSignature")
        XCTAssertEqual(handle(f, .transaction, body: [1, 2, 3]).code, .badRequest)
        XCTAssertEqual(handle(f, .transaction, body: []).code, .badRequest)
        XCTAssertEqual(handle(f, .transaction, "a=b", body: tx.encoded).code, .badRequest)
        let big = handle(f, .transaction, body: [UInt8](repeating: 0, count: Caps.transactionBytes + 1))
        XCTAssertEqual(big.code, .requestEntityTooLarge)
        XCTAssertEqual(big.size1, UInt32(Caps.transactionBytes))
        XCTAssertEqual(f.node.pendingCount, 1, "refusals leave the mempool as it was")
    }

    func testReceiptAndProofsVerify() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        let tx = f.transfer(from: f.alice, nonce: 0)
        let id = "id=" + Hex.encode(tx.id.bytes)
        XCTAssertEqual(handle(f, .receipt, id).code, .notFound)
        XCTAssertEqual(handle(f, .transaction, body: tx.encoded).code, .created)
        let pending = handle(f, .receipt, id)
        XCTAssertEqual(pending.code, .notFound)
        XCTAssertEqual(String(decoding: pending.payload, as: UTF8.self), "pending")
        XCTAssertEqual(handle(f, .txProof, id).code, .notFound)
        let block = try f.produceBlock()

        let receipt = try ReceiptPayload(decoding: handle(f, .receipt, id).payload)
        XCTAssertEqual(receipt.height, 1)
        XCTAssertEqual(receipt.position, 0)
        XCTAssertEqual(receipt.receipt.transactionID, tx.id)
        XCTAssertEqual(receipt.receipt.status, .success)

        let proof = try TransactionProofPayload(decoding: handle(f, .txProof, id).payload)
        XCTAssertEqual(proof.header, block.block.header)
        XCTAssertEqual(proof.certificate, block.certificate)
        XCTAssertTrue(
            proof.proof.verify(leafHash: MerkleTree.leafHash(tx.id.bytes), root: proof.header.transactionsRoot))
        XCTAssertEqual(proof.receipt, receipt.receipt)
        XCTAssertNoThrow(
            try ProofVerifier.verifyReceipt(
                proof.receipt, proof: proof.receiptProof, receiptsRoot: proof.header.receiptsRoot))
        var failed = proof.receipt
        failed.status = .failed
        XCTAssertThrowsError(
            try ProofVerifier.verifyReceipt(failed, proof: proof.receiptProof, receiptsRoot: proof.header.receiptsRoot))

        let alice = CoAPFixture.address(f.alice)
        let account = try AccountProofPayload(decoding: handle(f, .accountProof, "a=" + alice.bech32).payload)
        XCTAssertEqual(account.height, 1)
        XCTAssertEqual(account.stateRoot, block.block.header.stateRoot)
        XCTAssertEqual(account.state.nonce, 1)
        XCTAssertTrue(
            account.proof.verify(
                root: account.stateRoot, key: StateNamespace.accountKey(alice), valueHash: account.state.valueHash))
        // A tampered balance no longer verifies: the proof is really checked above.
        var tampered = account.state
        tampered.balance += 1
        XCTAssertFalse(
            account.proof.verify(
                root: account.stateRoot, key: StateNamespace.accountKey(alice), valueHash: tampered.valueHash))

        for bad in ["", "id=00", "id=" + String(repeating: "g", count: 64), "id=" + String(repeating: "0", count: 66)] {
            XCTAssertEqual(handle(f, .receipt, bad).code, .badRequest, bad)
            XCTAssertEqual(handle(f, .txProof, bad).code, .badRequest, bad)
            XCTAssertEqual(handle(f, .certificate, bad).code, .badRequest, bad)
        }
        XCTAssertEqual(handle(f, .accountProof, "a=" + alice.bech32.dropLast() + "q").code, .badRequest)
        // A board sends the address as 40 hex digits (DeviceRequest): the same answer; anything near it is refused.
        let hexAddress = Hex.encode(alice.raw.bytes)
        XCTAssertEqual(
            handle(f, .accountProof, String(decoding: DeviceRequest.accountProof(alice).joinedQuery, as: UTF8.self))
                .payload,
            handle(f, .accountProof, "a=" + alice.bech32).payload)
        XCTAssertEqual(DeviceRequest.accountProof(alice).joinedQuery, Array(("a=" + hexAddress).utf8))
        for bad in [
            hexAddress.uppercased(), String(hexAddress.dropLast()), hexAddress + "0", "g" + hexAddress.dropFirst(),
        ] {
            XCTAssertEqual(handle(f, .accountProof, "a=" + bad).code, .badRequest, bad)
            XCTAssertEqual(handle(f, .inbox, "a=" + bad).code, .badRequest, bad)
        }
        // No certificate has this id: no links, and the proof of its absence.
        let none = try CertificateProofPayload(decoding: handle(f, .certificate, id).payload)
        XCTAssertTrue(none.links.isEmpty)
        XCTAssertEqual(none.stateRoot, f.node.head.stateRoot)
        XCTAssertTrue(
            try XCTUnwrap(none.absence).verify(
                root: none.stateRoot, key: StateNamespace.certificate.key(tx.id.bytes), valueHash: nil))
    }

    func testInboxListsFinalTransfersToAnAddressOldestFirstAndCapped() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        let carol = CoAPFixture.address(CoAPFixture.key(9))
        let query = "a=" + carol.bech32
        XCTAssertEqual(try InboxPayload(decoding: handle(f, .inbox, query).payload).entries, [])
        // Six transfers to carol over two blocks (five in block 1, one in block 2) and one to bob in between.
        var sent: [SignedTransaction] = []
        for nonce in 0..<5 {
            let tx = f.transfer(from: f.alice, nonce: UInt64(nonce), amount: 1_000 + UInt64(nonce), to: carol)
            XCTAssertEqual(handle(f, .transaction, body: tx.encoded).code, .created)
            sent.append(tx)
        }
        XCTAssertEqual(handle(f, .transaction, body: f.transfer(from: f.bob, nonce: 0).encoded).code, .created)
        XCTAssertEqual(try InboxPayload(decoding: handle(f, .inbox, query).payload).entries, [], "pending: not listed")
        _ = try f.produceBlock()
        let late = f.transfer(from: f.alice, nonce: 5, amount: 77, to: carol)
        XCTAssertEqual(handle(f, .transaction, body: late.encoded).code, .created)
        _ = try f.produceBlock()

        let first = try InboxPayload(decoding: handle(f, .inbox, query).payload)
        XCTAssertEqual(first.entries.count, InboxPayload.maxEntries)
        XCTAssertTrue(first.entries.allSatisfy { $0.height == 1 })
        XCTAssertEqual(Set(first.entries.map(\.transaction.id)).count, InboxPayload.maxEntries)
        XCTAssertTrue(first.entries.allSatisfy { e in sent.contains { $0.id == e.transaction.id } })
        // Each entry's position is where its inclusion proof says it is.
        for e in first.entries {
            let proof = try TransactionProofPayload(
                decoding: handle(f, .txProof, "id=" + Hex.encode(e.transaction.id.bytes)).payload)
            XCTAssertEqual(proof.position, e.position)
            XCTAssertEqual(proof.header.height, e.height)
        }
        // The rest of block 1, from the position after the last listed: the fifth transfer, then block 2's.
        let last = try XCTUnwrap(first.entries.last)
        let rest = try InboxPayload(
            decoding: handle(f, .inbox, query + "&from=1&pos=\(last.position + 1)").payload)
        XCTAssertEqual(rest.entries.count, 2)
        XCTAssertEqual(rest.entries.first?.height, 1)
        XCTAssertEqual(rest.entries.last?.transaction, late)
        XCTAssertEqual(
            Set((first.entries + rest.entries).map(\.transaction.id)), Set((sent + [late]).map(\.id)),
            "every transfer listed once across the two pages")
        XCTAssertEqual(handle(f, .inbox, query + "&from=1&pos=x").code, .badRequest)
        let later = try InboxPayload(decoding: handle(f, .inbox, query + "&from=2").payload)
        XCTAssertEqual(later.entries.map(\.transaction), [late])
        XCTAssertEqual(try InboxPayload(decoding: handle(f, .inbox, query + "&from=3").payload).entries, [])
        let bob = try InboxPayload(decoding: handle(f, .inbox, "a=" + CoAPFixture.address(f.bob).bech32).payload)
        XCTAssertEqual(bob.entries.count, 1)

        XCTAssertEqual(handle(f, .inbox).code, .badRequest)
        XCTAssertEqual(handle(f, .inbox, query + "&from=x").code, .badRequest)
        XCTAssertEqual(handle(f, .inbox, query + "&limit=9").code, .badRequest)
        XCTAssertEqual(handle(f, .inbox, "a=amsc1qqqq").code, .badRequest)
        // A list over the cap is refused by the decoder, whatever a gateway sends.
        var w = ByteWriter()
        w.write(list: Array(repeating: first.entries[0], count: InboxPayload.maxEntries + 1))
        XCTAssertThrowsError(try InboxPayload(decoding: w.bytes))
    }

    func testEscrowProofShowsALockItsEscrowOpenThenAbsentForOtherIDs() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        let lock = CoAPFixture.address(CoAPFixture.key(77))
        let body = TransactionBody(
            genesis: f.node.genesisBlockHash, sender: f.alice.xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 100,
            tipPerUnit: 1,
            payload: .escrowOpen(
                EscrowOpen(
                    device: lock, owner: CoAPFixture.address(f.bob), deposit: 2_000_000, rentalFee: 300_000,
                    expiryHeight: 50)))
        let open = SignedTransaction(body: body, signer: f.alice)
        XCTAssertEqual(handle(f, .transaction, body: open.encoded).code, .created)
        let block = try f.produceBlock()
        let id = "id=" + Hex.encode(open.id.bytes)
        let payload = try EscrowProofPayload(decoding: handle(f, .escrowProof, id).payload)
        XCTAssertEqual(payload.height, block.block.header.height)
        XCTAssertEqual(payload.stateRoot, block.block.header.stateRoot)
        let proven = try ProofVerifier.verifyEscrow(
            payload.state, id: open.id, proof: payload.proof, stateRoot: block.block.header.stateRoot)
        XCTAssertEqual(proven?.status, .open)
        XCTAssertEqual(proven?.device, lock)
        XCTAssertEqual(proven?.held, 2_300_000)

        let other = Bytes32(w0: 4, w1: 4, w2: 4, w3: 4)
        let absent = try EscrowProofPayload(
            decoding: handle(f, .escrowProof, "id=" + Hex.encode(other.bytes)).payload)
        XCTAssertNil(absent.state)
        XCTAssertNil(
            try ProofVerifier.verifyEscrow(nil, id: other, proof: absent.proof, stateRoot: absent.stateRoot))
        // The absence proof of another id does not pass the real escrow off as absent.
        XCTAssertThrowsError(
            try ProofVerifier.verifyEscrow(nil, id: open.id, proof: absent.proof, stateRoot: absent.stateRoot))
        XCTAssertEqual(handle(f, .escrowProof).code, .badRequest)
        XCTAssertEqual(handle(f, .escrowProof, "id=12").code, .badRequest)
        XCTAssertEqual(handle(f, .escrowProof, id + "&x=1").code, .badRequest)
    }

    /// A lock's check against a gateway that answers with a genuine but stale proof (from before the close):
    /// refused, because the proof must be at least as new as the head the lock verified.
    func testLockRefusesAnEscrowProofOlderThanTheHead() throws {
        let f = try CoAPFixture(start: false)
        defer { f.close() }
        let lockKey = CoAPFixture.key(77)
        let lock = CoAPFixture.address(lockKey)
        let open = SignedTransaction(
            body: TransactionBody(
                genesis: f.node.genesisBlockHash, sender: f.alice.xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 100,
                tipPerUnit: 1,
                payload: .escrowOpen(
                    EscrowOpen(
                        device: lock, owner: CoAPFixture.address(f.bob), deposit: 1_000, rentalFee: 10,
                        expiryHeight: 90))),
            signer: f.alice)
        XCTAssertEqual(handle(f, .transaction, body: open.encoded).code, .created)
        try f.produceBlock()
        let id = "id=" + Hex.encode(open.id.bytes)
        let whileOpen = handle(f, .escrowProof, id).payload
        let close = SignedTransaction(
            body: TransactionBody(
                genesis: f.node.genesisBlockHash, sender: f.bob.xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 100,
                tipPerUnit: 1,
                payload: .escrowClose(
                    EscrowClose(genesis: f.node.genesisBlockHash, escrowID: open.id, damages: 0, device: lockKey))),
            signer: f.bob)
        XCTAssertEqual(handle(f, .transaction, body: close.encoded).code, .created)
        try f.produceBlock()

        // The lock's own check, run in-process against the handlers: open while the escrow was, then closed.
        var honest = LoopbackDeviceLink(handlers: f.server.handlers)
        var device = DeviceSession(
            anchor: DeviceTrustAnchor(
                genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
                epochLength: f.genesis.epochLength))
        _ = try device.run(.anchor, over: &honest)
        guard case .escrow(let now) = try device.run(.escrow(open.id), over: &honest) else { return XCTFail() }
        XCTAssertEqual(now.state?.status, .closed)
        // A gateway replaying the genuine proof from while it was open: older than the verified head.
        var replaying = LoopbackDeviceLink(handlers: f.server.handlers) { request in
            request.resource == .escrowProof ? DeviceAnswer(code: .content, body: whileOpen) : nil
        }
        XCTAssertThrowsError(try device.run(.escrow(open.id), over: &replaying)) { error in
            guard case .device(.inconsistent(.staleObjectProof(.escrowProof, _, _))) = error as? DeviceRunError<Never>
            else {
                return XCTFail("\(error)")
            }
        }
    }

    func testQueryParsingCaps() {
        XCTAssertEqual(DeviceQuery(Array("a=1&b=2".utf8))?["b"], "2")
        XCTAssertEqual(DeviceQuery([])?.arguments.count, 0)
        XCTAssertNil(DeviceQuery(Array("a=1&a=2".utf8)), "repeated key")
        XCTAssertNil(DeviceQuery(Array("a".utf8)), "no '='")
        XCTAssertNil(DeviceQuery(Array("=1".utf8)), "empty key")
        XCTAssertNil(DeviceQuery(Array("a=1&&b=2".utf8)), "empty argument")
        XCTAssertNil(DeviceQuery(Array("a=\u{7F}".utf8)), "control byte")
        XCTAssertNil(DeviceQuery((0..<9).map { "k\($0)=v" }.joined(separator: "&").utf8.map { $0 }), "too many")
        XCTAssertNil(DeviceQuery([UInt8](repeating: UInt8(ascii: "a"), count: 600)), "too long")
    }

    func testRateLimiterRefillsAndStaysBounded() {
        final class Clock: @unchecked Sendable {
            var now: UInt64 = 1_000_000_000
        }
        let clock = Clock()
        var limiter = DeviceRateLimiter(limits: .init(perSecond: 2, burst: 3, maxDevices: 4)) { clock.now }
        XCTAssertEqual((0..<5).map { _ in limiter.allow("a") }, [true, true, true, false, false])
        XCTAssertTrue(limiter.allow("b"), "another device has its own bucket")
        clock.now += 500_000_000  // half a second: one token at 2/s
        XCTAssertTrue(limiter.allow("a"))
        XCTAssertFalse(limiter.allow("a"))
        clock.now += 60_000_000_000  // a minute: full again, but never above the burst
        XCTAssertEqual((0..<4).map { _ in limiter.allow("a") }, [true, true, true, false])
        clock.now -= 10_000_000_000  // a clock going backwards adds nothing
        XCTAssertFalse(limiter.allow("a"))
        for n in 0..<100 { _ = limiter.allow("spoofed-\(n)") }
        XCTAssertLessThanOrEqual(limiter.trackedDevices, 4)
    }
}
