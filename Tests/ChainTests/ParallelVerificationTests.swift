import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Foundation
import Ledger
import XCTest

@testable import Chain

/// Signatures checked on every core and remembered between checks: each transaction still gets its own answer
/// in its own place, a sender's nonces still arrive in order, and nothing that failed a check is ever let through
/// by what was remembered.
final class ParallelVerificationTests: XCTestCase {
    private func flipped(_ signature: Bytes64) -> Bytes64 {
        var bytes = signature.bytes
        bytes[5] ^= 0x40
        return Bytes64(bytes)!
    }

    /// A batch far above the parallel threshold, cut into several chunks and a short last one, with bad items at
    /// known places among four senders' runs.
    func testABatchKeepsItsOrderAndGivesEachItemItsOwnAnswer() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let node = try t.openNode()
        let senders = Array(t.funded.prefix(4))
        let bob = TestChain.address(TestChain.key(900))
        var nonces = [UInt64](repeating: 0, count: senders.count)
        var batch: [[UInt8]] = []
        var expected: [String] = []
        let noKey = Bytes32([UInt8](repeating: 0xFF, count: 32))!
        var firstGood: [UInt8] = []
        for i in 0..<(3 * ParallelVerifier.chunk + 4) {
            let s = i % senders.count
            switch i {
            case 13:
                var tx = t.transfer(from: senders[s], to: bob, amount: 1, nonce: nonces[s])
                tx.signature = flipped(tx.signature)
                batch.append(tx.encoded)
                expected.append("badSignature")
            case 29:
                batch.append(Array(t.transfer(from: senders[s], to: bob, amount: 1, nonce: 0).encoded.dropLast(3)))
                expected.append("malformed")
            case 47:
                let body = TransactionBody(
                    genesis: t.genesis.header.hash, sender: noKey, nonce: 0, maxFeePerUnit: 10, tipPerUnit: 1,
                    payload: .transfer(Transfer(to: bob, amount: 1)))
                batch.append(
                    SignedTransaction(body: body, signature: Bytes64([UInt8](repeating: 1, count: 64))!).encoded)
                expected.append("invalidSenderKey")
            case 70:
                // A second copy of the batch's first transaction.
                batch.append(firstGood)
                expected.append("alreadyKnown")
            default:
                let tx = t.transfer(from: senders[s], to: bob, amount: 1 + UInt64(i), nonce: nonces[s])
                nonces[s] += 1
                if firstGood.isEmpty { firstGood = tx.encoded }
                batch.append(tx.encoded)
                expected.append(Hex.encode(tx.id.bytes))
            }
        }
        let results = node.submit(batch: batch)
        XCTAssertEqual(results.count, batch.count)
        let answers = results.map { r in
            switch r {
            case .success(let id): Hex.encode(id.bytes)
            case .failure(let e): "\(e.code)"
            }
        }
        XCTAssertEqual(answers, expected)
        // Every good one was admitted: a sender's run reordered would have met a nonce gap.
        XCTAssertEqual(node.pendingCount, batch.count - 4)
        let block = try node.produceBlock(timestamp: t.genesis.timestamp + 1_000)
        XCTAssertEqual(block.block.transactions.count, batch.count - 4)
    }

    /// A block carries only transaction ids under its certificate, not signatures, so a replica that never heard
    /// the transactions must check every one: a copy of a decided block with one signature changed is refused
    /// (whatever the replica remembered), and the real block is then taken.
    func testAReplicaChecksTheSignaturesOfABlockItNeverHeardAndRefusesAForgedOne() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let node = try t.openNode()
        let replica = try t.openNode("replica.sqlite", validator: false)
        let bob = TestChain.address(TestChain.key(901))
        for i in 0..<40 {
            let s = i % t.funded.count
            _ = try node.submit(t.transfer(from: t.funded[s], to: bob, amount: 5, nonce: UInt64(i / t.funded.count)))
        }
        let decided = try node.produceBlock(timestamp: t.genesis.timestamp + 1_000)
        XCTAssertEqual(decided.block.transactions.count, 40)
        var transactions = decided.block.transactions
        transactions[23].signature = flipped(transactions[23].signature)
        let forged = FinalizedBlock(
            block: Block(header: decided.block.header, transactions: transactions), certificate: decided.certificate)
        XCTAssertEqual(forged.block.hash, decided.block.hash, "the certificate still matches the forged block")
        XCTAssertThrowsError(try replica.importBlock(forged)) { error in
            XCTAssertTrue("\(error)".contains("badSignature"), "\(error)")
        }
        XCTAssertEqual(replica.head.height, 0)
        try replica.importBlock(decided)
        XCTAssertEqual(replica.head, node.head)
        XCTAssertEqual(replica.account(bob).state.balance, 200)
    }

    /// What the checker remembers is only ever a signature that passed, on the id it passed on.
    func testTheCheckerRemembersOnlyGoodSignatures() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let checker = TransactionChecker()
        let good = t.transfer(from: t.funded[0], to: TestChain.address(TestChain.key(902)), amount: 1, nonce: 0)
        var bad = good
        bad.signature = flipped(good.signature)
        XCTAssertThrowsError(try checker.check(bad)) { XCTAssertEqual($0 as? TransactionError, .badSignature) }
        XCTAssertEqual(checker.signatures.count, 0)
        XCTAssertEqual(try checker.check(good).id, good.id)
        XCTAssertTrue(checker.signatures.contains(good.id, good.signature))
        // The same body with another signature is checked, not waved through on the id.
        XCTAssertThrowsError(try checker.check(bad)) { XCTAssertEqual($0 as? TransactionError, .badSignature) }
        XCTAssertThrowsError(try checker.check(decoding: bad.encoded, unlessKnown: { _ in false })) {
            XCTAssertEqual($0 as? TransactionError, .badSignature)
        }
        XCTAssertEqual(checker.signatures.count, 1)
        // And a remembered one is not checked again: a cache that was told a bad signature passed lets it through,
        // which is why only the checker itself ever writes to it.
        let told = SignatureCache()
        told.insert(bad.id, bad.signature)
        XCTAssertEqual(try TransactionChecker(signatures: told).check(bad).id, good.id)
    }

    func testTheCachesStayBoundedAndNeverKeepAKeyThatDoesNotParse() throws {
        let signatures = SignatureCache(capacity: 32, shards: 2)
        var rng = SplitMix64(seed: 11)
        var last: (Bytes32, Bytes64) = (.zero, Bytes64([UInt8](repeating: 0, count: 64))!)
        for _ in 0..<1_000 {
            let id = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
            let sig = Bytes64((0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) })!
            signatures.insert(id, sig)
            last = (id, sig)
        }
        // At most the capacity, and never emptied at once: the older generation stays while the newer fills.
        XCTAssertLessThanOrEqual(signatures.count, 32)
        XCTAssertGreaterThanOrEqual(signatures.count, 16)
        XCTAssertTrue(signatures.contains(last.0, last.1))
        XCTAssertFalse(signatures.contains(last.0, flipped(last.1)))

        // Generation by generation: a full generation becomes the older one whole, and the one before it goes.
        let one = SignatureCache(capacity: 8, shards: 1)
        let items = (0..<9).map { n in
            (Bytes32(w0: 1, w1: 2, w2: 3, w3: UInt64(n)), Bytes64([UInt8](repeating: UInt8(n), count: 64))!)
        }
        for item in items.prefix(5) { one.insert(item.0, item.1) }
        XCTAssertEqual(items.prefix(5).map { one.contains($0.0, $0.1) }, Array(repeating: true, count: 5))
        for item in items.dropFirst(5) { one.insert(item.0, item.1) }
        XCTAssertEqual(
            items.map { one.contains($0.0, $0.1) }, [false, false, false, false] + Array(repeating: true, count: 5))
        XCTAssertEqual(one.count, 5)

        let keys = SenderKeyCache(capacity: 16, shards: 2)
        for n in 0..<100 { _ = try keys.key(TestChain.key(2_000 + UInt64(n)).xOnlyPublicKey.bytes) }
        XCTAssertLessThanOrEqual(keys.count, 16)
        let before = keys.count
        XCTAssertThrowsError(try keys.key(Bytes32([UInt8](repeating: 0xFF, count: 32))!))
        XCTAssertEqual(keys.count, before)
    }
}
