import AmarsCodec
import AmarsCrypto
import CSQLite
import Foundation
import Ledger
import XCTest

@testable import Chain

final class ChainNodeTests: XCTestCase {
    /// Thousands of random transfers (valid and not) over many blocks: the sum of balances never moves, a
    /// replica that imports the same blocks reaches the same state root at every height, and reopening the
    /// SQLite file gives back the same head and state.
    func testSupplyConservedAndReplicaAgreesOverThousandsOfTransfers() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let node = try t.openNode()
        let replica = try t.openNode("replica.sqlite", validator: false)
        var rng = TestChain.SplitMix(seed: 7)
        // Spread funds to 40 fresh accounts first, then transfer randomly among all of them.
        var keys = t.funded
        keys += (0..<40).map { TestChain.key(1000 + UInt64($0)) }
        var nonces: [Address: UInt64] = [:]
        var accepted = 0
        var refused = 0
        for round in 0..<30 {
            for _ in 0..<120 {
                let from = keys[Int(rng.next() % UInt64(round == 0 ? t.funded.count : keys.count))]
                let to = TestChain.address(keys[Int(rng.next() % UInt64(keys.count))])
                let fromAddress = TestChain.address(from)
                let nonce = nonces[fromAddress] ?? 0
                let balance = node.account(fromAddress).state.balance
                // Mostly affordable amounts, sometimes more than the balance (must be refused).
                let amount = rng.next() % 8 == 0 ? balance + 1 : 1 + rng.next() % max(balance / 50, 1)
                do {
                    _ = try node.submit(
                        t.transfer(from: from, to: to, amount: amount, nonce: nonce, tip: rng.next() % 3))
                    nonces[fromAddress] = nonce + 1
                    accepted += 1
                } catch {
                    refused += 1
                }
            }
            let block = try node.produceBlock(timestamp: 1_700_000_000_000 + UInt64(round) * 1000)
            XCTAssertEqual(node.supply.inAccounts + node.supply.burned, Amount.totalSupply)
            try replica.importBlock(block)
            XCTAssertEqual(replica.head, node.head, "replica diverged at height \(block.block.header.height)")
            // Nonces of accepted-but-dropped transactions: resync from the chain.
            for k in keys {
                let a = TestChain.address(k)
                let v = node.account(a)
                nonces[a] = v.state.nonce + UInt64(v.pending)
            }
        }
        XCTAssertGreaterThan(accepted, 2_000)
        XCTAssertGreaterThan(refused, 100)
        XCTAssertEqual(node.pendingCount, 0)
        let head = node.head
        // Every account's proof verifies against the head root.
        for k in keys {
            let view = node.account(TestChain.address(k))
            XCTAssertTrue(
                view.proof.verify(
                    root: head.stateRoot, key: StateNamespace.accountKey(view.address),
                    valueHash: view.state.isEmpty ? nil : view.state.valueHash))
        }
        // Reopen from disk.
        let reopened = try t.openNode()
        XCTAssertEqual(reopened.head, head)
        XCTAssertEqual(reopened.supply.inAccounts, node.supply.inAccounts)
    }

    /// A validator's node and its block 1 carrying one transfer of 1,000 to bob, and a replica (not a validator)
    /// still at genesis, which has admitted that transfer itself when `replicaAdmitsIt`.
    private func oneTransferBlock(
        _ t: TestChain, replicaAdmitsIt: Bool
    ) throws -> (node: ChainNode, replica: ChainNode, bob: Address, block: FinalizedBlock) {
        let node = try t.openNode()
        let replica = try t.openNode("replica.sqlite", validator: false)
        let bob = TestChain.address(TestChain.key(9))
        let tx = t.transfer(from: t.funded[0], to: bob, amount: 1_000, nonce: 0)
        _ = try node.submit(tx)
        if replicaAdmitsIt { _ = try replica.submit(tx) }
        return (node, replica, bob, try node.produceBlock(timestamp: 1_700_000_001_000))
    }

    /// A node validates the transactions it already admitted without checking their signatures again, but only
    /// the exact transaction it admitted: the id covers the body, not the signature, so the same body with another
    /// signature (which the block's certificate does not cover either) is checked and refused.
    func testAdmittedTransactionsAreNotVerifiedTwiceButOtherSignaturesAre() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let (_, replica, bob, good) = try oneTransferBlock(t, replicaAdmitsIt: true)
        var forged = good
        forged.block.transactions[0].signature.second.w3 ^= 1
        XCTAssertEqual(forged.block.hash, good.block.hash, "the certificate still matches")
        XCTAssertThrowsError(try replica.importBlock(forged)) {
            XCTAssertTrue("\($0)".contains("badSignature"), "\($0)")
        }
        XCTAssertEqual(replica.head.height, 0)
        XCTAssertNoThrow(try replica.importBlock(good))
        XCTAssertEqual(replica.account(bob).state.balance, 1_000)
    }

    func testImportRefusesTamperedBlocksAndChangesNothing() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let (node, replica, bob, good) = try oneTransferBlock(t, replicaAdmitsIt: false)
        let before = replica.head

        func expectRefusal(_ block: FinalizedBlock, _ label: String) {
            XCTAssertThrowsError(try replica.importBlock(block), label)
            XCTAssertEqual(replica.head, before, label)
            XCTAssertEqual(replica.account(bob).state.balance, 0, label)
        }
        var b = good
        b.block.header.stateRoot = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        expectRefusal(b, "state root")
        b = good
        b.block.transactions = []
        expectRefusal(b, "dropped transaction (cert is for the original hash)")
        b = good
        b.certificate.signatures = []
        expectRefusal(b, "no signatures")
        b = good
        b.certificate.signatures[0].signature.first.w0 ^= 1
        expectRefusal(b, "bad signature")
        // A block re-signed by a key outside the committee.
        b = good
        let outsider = TestChain.key(77)
        let msg = Vote.signingHash(
            chainID: TestChain.chainID, genesis: t.genesis.header.hash, height: 1, round: 0, step: .commit,
            blockHash: b.block.hash, voter: outsider.xOnlyPublicKey.bytes)
        b.certificate.signatures = [.init(memberIndex: 0, signature: outsider.signSchnorr(msg, auxRandom: .zero))]
        expectRefusal(b, "outsider signature")
        try replica.importBlock(good)
        XCTAssertEqual(replica.head, node.head)
        XCTAssertThrowsError(try replica.importBlock(good), "the same block twice")
    }

    /// The consensus path: one node proposes without committing, another validates, both commit the block once
    /// it carries a certificate.
    func testProposeValidateCommitAcrossTwoNodes() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let proposer = try t.openNode()
        let validator = try t.openNode("validator.sqlite", validator: false)
        let bob = TestChain.address(TestChain.key(9))
        _ = try proposer.submit(t.transfer(from: t.funded[0], to: bob, amount: 123, nonce: 0))
        let block = try proposer.proposeBlock(timestamp: 1_700_000_001_000, round: 2)
        XCTAssertEqual(proposer.head.height, 0, "a proposal is not committed")
        XCTAssertEqual(proposer.account(bob).state.balance, 0, "nor visible in the state")
        XCTAssertEqual(block.header.round, 2)
        try validator.validateBlock(block)
        var tampered = block
        tampered.header.unitsUsed += 1
        XCTAssertThrowsError(try validator.validateBlock(tampered))
        let message = Vote.signingHash(
            chainID: TestChain.chainID, genesis: t.genesis.header.hash, height: 1, round: 2, step: .commit,
            blockHash: block.hash, voter: t.validator.xOnlyPublicKey.bytes)
        let certificate = CommitCertificate(
            height: 1, round: 2, blockHash: block.hash,
            signatures: [.init(memberIndex: 0, signature: t.validator.signSchnorr(message, auxRandom: .zero))])
        let finalized = FinalizedBlock(block: block, certificate: certificate)
        try proposer.commitBlock(finalized)
        try validator.commitBlock(finalized)
        XCTAssertEqual(proposer.head, validator.head)
        XCTAssertEqual(validator.account(bob).state.balance, 123)
        XCTAssertEqual(proposer.pendingCount, 0)
    }

    /// The admit hook sees each admitted transaction once, whatever the door, and never a refused one: that is
    /// what lets a node gossip its own transactions while a peer's duplicates die out.
    func testAdmitHookSeesAdmittedTransactionsOnly() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let node = try t.openNode()
        final class Seen: @unchecked Sendable {  // appended on the submitting thread only, read after
            var ids: [Bytes32] = []
        }
        let seen = Seen()
        node.onAdmit = { tx in seen.ids.append(tx.id) }
        let bob = TestChain.address(TestChain.key(9))
        let first = t.transfer(from: t.funded[0], to: bob, amount: 1, nonce: 0)
        XCTAssertEqual(try node.submit(first), first.id)
        XCTAssertThrowsError(try node.submit(first), "already known")
        XCTAssertThrowsError(try node.submit(t.transfer(from: t.funded[0], to: bob, amount: 1, nonce: 5)), "gap")
        let second = t.transfer(from: t.funded[0], to: bob, amount: 2, nonce: 1)
        XCTAssertEqual(try node.submit(encoded: second.encoded), second.id)
        XCTAssertEqual(seen.ids, [first.id, second.id])
        node.onAdmit = nil
        _ = try node.submit(t.transfer(from: t.funded[0], to: bob, amount: 3, nonce: 2))
        XCTAssertEqual(seen.ids.count, 2, "a cleared hook is not called")
    }

    /// A gateway hears each gossiped transaction from several peers: a copy of a pending one is refused as
    /// already known before its signature is checked. Shown with a copy whose signature is broken: refused as a
    /// duplicate (no verify ran), while the same broken copy of a transaction not yet held is a bad signature.
    func testADuplicateIsRefusedBeforeItsSignatureIsChecked() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let node = try t.openNode()
        let bob = TestChain.address(TestChain.key(9))
        let held = t.transfer(from: t.funded[0], to: bob, amount: 1, nonce: 0)
        _ = try node.submit(encoded: held.encoded)
        var broken = held.encoded
        broken[broken.count - 1] ^= 1
        XCTAssertThrowsError(try node.submit(encoded: broken)) {
            XCTAssertEqual($0 as? TransactionError, .alreadyKnown)
        }
        var fresh = t.transfer(from: t.funded[0], to: bob, amount: 2, nonce: 1).encoded
        fresh[fresh.count - 1] ^= 1
        XCTAssertThrowsError(try node.submit(encoded: fresh)) { XCTAssertEqual($0 as? TransactionError, .badSignature) }
        XCTAssertEqual(node.pendingCount, 1)
    }

    func testEpochBoundaryNamesNextCommittee() throws {
        let t = TestChain(epochLength: 3)
        defer { t.cleanup() }
        let node = try t.openNode()
        var headers: [BlockHeader] = []
        for i in 0..<7 { headers.append(try node.produceBlock(timestamp: 1_700_000_000_000 + UInt64(i)).block.header) }
        XCTAssertEqual(headers.map(\.epoch), [0, 0, 0, 1, 1, 1, 2])
        XCTAssertEqual(headers.map { $0.nextCommitteeHash != nil }, [false, false, true, false, false, true, false])
        XCTAssertEqual(headers[2].nextCommitteeHash, t.genesis.committee(epoch: 1).hash)
        let genesisBlock = try XCTUnwrap(node.block(at: 0))
        XCTAssertEqual(genesisBlock.finalized.block.header.nextCommitteeHash, t.genesis.committee(epoch: 0).hash)
        for h in headers.indices.dropFirst() { XCTAssertEqual(headers[h].previousHash, headers[h - 1].hash) }
        // The checkpoint chain: each one is signed by the committee of its epoch and names the next.
        let checkpoints = try node.checkpoints(from: 0, limit: 10)
        XCTAssertEqual(checkpoints.map(\.header.height), [3, 6])
        for (e, c) in checkpoints.enumerated() {
            XCTAssertEqual(try Checkpoint(decoding: c.encoded), c)
            XCTAssertEqual(c.nextCommittee, t.genesis.committee(epoch: UInt64(e + 1)))
            XCTAssertNoThrow(
                try c.certificate.verify(
                    committee: t.genesis.committee(epoch: UInt64(e)), chainID: TestChain.chainID,
                    genesis: t.genesis.header.hash, blockHash: c.header.hash))
        }
        XCTAssertEqual(try node.checkpoints(from: 1, limit: 10).map(\.header.height), [6])
        XCTAssertEqual(try node.checkpoints(from: 0, limit: 1).count, 1)
        XCTAssertTrue(try node.checkpoints(from: UInt64.max - 1, limit: 10).isEmpty)
    }

    /// Checkpoints name the next pool's roster, the pool attests them, and a gateway keeps only attestations
    /// it could check: of a stored checkpoint, by a member of its epoch's pool, correctly signed.
    func testCheckpointsNameThePoolWhichAttestsThem() throws {
        let t = TestChain(epochLength: 3)
        defer { t.cleanup() }
        let node = try t.openNode()
        let replica = try t.openNode("replica.sqlite", validator: false)
        for i in 0..<7 {
            let b = try node.produceBlock(timestamp: 1_700_000_000_000 + UInt64(i))
            try replica.importBlock(b)
            let h = b.block.header
            XCTAssertEqual(h.nextPoolHash != nil, h.nextCommitteeHash != nil, "height \(h.height)")
            if h.height % 3 == 0 {
                // No candidates yet: the pool is the genesis validators, like the committee.
                XCTAssertEqual(h.nextPoolHash, node.poolRoster(epoch: h.epoch + 1)?.hash)
                XCTAssertEqual(node.poolRoster(epoch: h.epoch + 1), t.genesis.committee(epoch: h.epoch + 1))
            }
        }
        XCTAssertEqual(
            try XCTUnwrap(node.block(at: 0)).finalized.block.header.nextPoolHash, t.genesis.committee(epoch: 0).hash)
        // Dev mode: the node is the whole pool and attests its own checkpoints; the replica attests nothing.
        let validator = t.validator.xOnlyPublicKey.bytes
        XCTAssertEqual(Array(try node.attestations(height: 3).keys), [validator])
        XCTAssertEqual(Array(try node.attestations(height: 6).keys), [validator])
        XCTAssertTrue(try node.attestations(height: 4).isEmpty)
        XCTAssertTrue(try replica.attestations(height: 3).isEmpty)

        func attestation(height: UInt64, hash: Bytes32, key: PrivateKey = t.validator, round: UInt32 = 0) -> Vote {
            let message = Vote.signingHash(
                chainID: TestChain.chainID, genesis: t.genesis.header.hash, height: height, round: round,
                step: .checkpoint, blockHash: hash, voter: key.xOnlyPublicKey.bytes)
            return Vote(
                chainID: TestChain.chainID, height: height, round: round, step: .checkpoint, blockHash: hash,
                voter: key.xOnlyPublicKey.bytes, signature: key.signSchnorr(message, auxRandom: .zero))
        }
        let hash3 = try XCTUnwrap(node.block(at: 3)).finalized.block.hash
        var forged = attestation(height: 3, hash: hash3)
        forged.signature.first.w0 ^= 1
        XCTAssertEqual(try replica.addAttestation(forged), .badSignature)
        XCTAssertEqual(try replica.addAttestation(attestation(height: 3, hash: .zero)), .notApplicable, "other block")
        XCTAssertEqual(try replica.addAttestation(attestation(height: 4, hash: hash3)), .notApplicable, "no checkpoint")
        XCTAssertEqual(try replica.addAttestation(attestation(height: 3, hash: hash3, round: 1)), .notApplicable)
        XCTAssertEqual(try replica.addAttestation(attestation(height: 9, hash: .zero)), .ahead)
        XCTAssertEqual(
            try replica.addAttestation(attestation(height: 3, hash: hash3, key: TestChain.key(77))), .notInPool)
        var commitVote = attestation(height: 3, hash: hash3)
        commitVote.step = .commit
        XCTAssertEqual(try replica.addAttestation(commitVote), .notApplicable)
        XCTAssertTrue(try replica.attestations(height: 3).isEmpty, "nothing refused was kept")
        let good = attestation(height: 3, hash: hash3)
        XCTAssertEqual(try replica.addAttestation(good), .stored)
        XCTAssertEqual(try replica.addAttestation(good), .known)
        XCTAssertEqual(try replica.attestations(height: 3), [validator: good.signature])
        XCTAssertEqual(
            try node.attest(height: 6, key: t.validator)?.verifySignature(genesis: t.genesis.header.hash), true)
        XCTAssertNil(try node.attest(height: 5, key: t.validator), "no checkpoint")
        XCTAssertNil(try node.attest(height: 6, key: TestChain.key(77)), "not in the pool")
        // Kept on disk: a reopened node still serves them.
        let reopened = try t.openNode("replica.sqlite", validator: false)
        XCTAssertEqual(try reopened.attestations(height: 3), [validator: good.signature])
    }

    func testABlockNamingAnotherPoolIsRefused() throws {
        let t = TestChain(epochLength: 3)
        defer { t.cleanup() }
        let node = try t.openNode()
        let replica = try t.openNode("replica.sqlite", validator: false)
        for i in 0..<2 { try replica.importBlock(try node.produceBlock(timestamp: 1_700_000_000_000 + UInt64(i))) }
        var checkpoint = try node.proposeBlock(timestamp: 1_700_000_000_009, round: 0)
        XCTAssertNotNil(checkpoint.header.nextPoolHash)
        checkpoint.header.nextPoolHash = Bytes32(w0: 5, w1: 5, w2: 5, w3: 5)
        XCTAssertThrowsError(try replica.validateBlock(checkpoint)) { error in
            XCTAssertTrue("\(error)".contains("wrong next pool"), "\(error)")
        }
        checkpoint.header.nextPoolHash = nil
        XCTAssertThrowsError(try replica.validateBlock(checkpoint)) { error in
            XCTAssertTrue("\(error)".contains("wrong next pool"), "\(error)")
        }
    }

    func testFeesGoToProposerAndBaseFeeFollowsLoad() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let node = try t.openNode()
        let alice = t.funded[0]
        let bob = TestChain.address(TestChain.key(9))
        let proposer = TestChain.address(t.validator)
        let tx = t.transfer(from: alice, to: bob, amount: 5_000, nonce: 0, maxFee: 10, tip: 2)
        let id = try node.submit(tx)
        let aliceBefore = node.account(TestChain.address(alice)).state.balance
        _ = try node.produceBlock(timestamp: 1_700_000_001_000)
        guard case .included(let height, _, let receipt) = try node.status(of: id) else {
            return XCTFail("not included")
        }
        XCTAssertEqual(height, 1)
        let units = FeeSchedule.standard.units(encodedSize: tx.encoded.count)
        XCTAssertEqual(receipt.unitsUsed, units)
        XCTAssertEqual(receipt.feePaid, units * 3)  // base fee 1 + tip 2
        XCTAssertEqual(node.account(proposer).state.balance, receipt.feePaid)
        XCTAssertEqual(node.account(TestChain.address(alice)).state.balance, aliceBefore - 5_000 - receipt.feePaid)
        XCTAssertEqual(node.account(bob).state.balance, 5_000)
        // A nearly empty block lowers the base fee, but never below the minimum.
        XCTAssertEqual(node.nextBaseFee, 1)
        let fees = FeeSchedule.standard
        XCTAssertEqual(fees.nextBaseFee(baseFee: 800, unitsUsed: fees.maxUnitsPerBlock), 900)
        XCTAssertEqual(fees.nextBaseFee(baseFee: 800, unitsUsed: 0), 700)
        XCTAssertEqual(fees.nextBaseFee(baseFee: 800, unitsUsed: fees.targetUnitsPerBlock), 800)
        XCTAssertEqual(fees.nextBaseFee(baseFee: 1, unitsUsed: fees.maxUnitsPerBlock), 2, "always moves up by >= 1")
        XCTAssertEqual(fees.nextBaseFee(baseFee: fees.maxBaseFee, unitsUsed: fees.maxUnitsPerBlock), fees.maxBaseFee)
    }

    /// The incoming-transfer index behind a device's `v1/inbox`: filled at commit, and rebuilt once from the
    /// blocks for a file written before it existed.
    func testIncomingTransfersAreIndexedAndRebuiltForOlderFiles() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let carol = TestChain.address(TestChain.key(9))
        let dave = TestChain.address(TestChain.key(10))
        var expected: [(UInt64, Int, Bytes32)] = []
        do {
            let node = try t.openNode()
            for round in 0..<3 {
                let toCarol = t.transfer(from: t.funded[0], to: carol, amount: 10 + UInt64(round), nonce: UInt64(round))
                let toDave = t.transfer(from: t.funded[1], to: dave, amount: 5, nonce: UInt64(round))
                _ = try node.submit(toDave)
                _ = try node.submit(toCarol)
                let block = try node.produceBlock(timestamp: 1_700_000_001_000 + UInt64(round) * 1000)
                let position = try XCTUnwrap(block.block.transactions.firstIndex { $0.id == toCarol.id })
                expected.append((block.block.header.height, position, toCarol.id))
            }
            func check(_ node: ChainNode, _ line: UInt = #line) throws {
                let all = try node.incomingTransfers(to: carol, from: 0, limit: 10)
                XCTAssertEqual(all.map(\.height), expected.map(\.0), line: line)
                XCTAssertEqual(all.map(\.position), expected.map(\.1), line: line)
                XCTAssertEqual(all.map(\.transaction.id), expected.map(\.2), line: line)
                XCTAssertEqual(try node.incomingTransfers(to: carol, from: 2, limit: 1).map(\.height), [2], line: line)
                XCTAssertEqual(try node.incomingTransfers(to: carol, from: 4, limit: 10).count, 0, line: line)
                XCTAssertEqual(try node.incomingTransfers(to: dave, from: 0, limit: 10).count, 3, line: line)
                XCTAssertEqual(try node.incomingTransfers(to: carol, from: 0, limit: 0).count, 0, line: line)
            }
            try check(node)
        }
        // A file from before the index: table emptied and its marker gone; reopening rebuilds it from blocks.
        var db: OpaquePointer?
        XCTAssertEqual(sqlite3_open(t.path("chain.sqlite"), &db), SQLITE_OK)
        XCTAssertEqual(
            sqlite3_exec(db, "DELETE FROM incoming_blocks; DELETE FROM meta WHERE key = 'incoming-blocks'", nil, nil, nil),
            SQLITE_OK)
        sqlite3_close(db)
        let reopened = try t.openNode()
        let rebuilt = try reopened.incomingTransfers(to: carol, from: 0, limit: 10)
        XCTAssertEqual(rebuilt.map(\.transaction.id), expected.map(\.2))
        XCTAssertEqual(rebuilt.map(\.position), expected.map(\.1))
    }

    func testReopenDetectsTamperedAccountsAndForeignGenesis() throws {
        let t = TestChain()
        defer { t.cleanup() }
        do {
            let node = try t.openNode()
            _ = try node.submit(
                t.transfer(from: t.funded[0], to: TestChain.address(TestChain.key(9)), amount: 10, nonce: 0))
            _ = try node.produceBlock(timestamp: 1_700_000_001_000)
        }
        // Another genesis on the same file is refused.
        var other = t.genesis
        other.chainName = "other"
        XCTAssertThrowsError(try ChainNode(genesis: other, store: try BlockStore(path: t.path("chain.sqlite")))) {
            guard case ChainNode.NodeError.genesisMismatch = $0 else { return XCTFail("\($0)") }
        }
        // Edit a balance behind the node's back: the state root no longer matches the head.
        var db: OpaquePointer?
        XCTAssertEqual(sqlite3_open(t.path("chain.sqlite"), &db), SQLITE_OK)
        let forged = AccountState(balance: 1, nonce: 0).encoded
        let hex = forged.map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(
            sqlite3_exec(
                db, "UPDATE accounts SET state = x'\(hex)' WHERE address = (SELECT address FROM accounts LIMIT 1)", nil,
                nil, nil), SQLITE_OK)
        sqlite3_close(db)
        XCTAssertThrowsError(try t.openNode()) {
            guard case ChainNode.NodeError.corruptState = $0 else { return XCTFail("\($0)") }
        }
    }
}
