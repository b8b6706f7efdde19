import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger
import XCTest

@testable import Chain

/// An acknowledged submit survives the node: kept before the answer, re-admitted after a restart, and settled
/// as included or refused with a code, never silently gone.
final class SubmitJournalTests: XCTestCase {
    var t: TestChain!

    override func setUp() { t = TestChain() }
    override func tearDown() { t.cleanup() }

    func journaledNode(_ name: String = "chain.sqlite") throws -> ChainNode {
        try ChainNode(
            genesis: t.genesis, store: try BlockStore(path: t.path(name)), validatorKey: t.validator,
            journal: try SubmitJournal(path: t.path("submits.sqlite")))
    }

    func testAnAcknowledgedSubmitSurvivesARestartAndSettlesWhenIncluded() throws {
        let bob = TestChain.address(TestChain.key(9))
        var ids: [Bytes32] = []
        do {
            let node = try journaledNode()
            for n in 0..<3 {
                ids.append(
                    try node.submitAcknowledged(
                        encoded: t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: UInt64(n)).encoded))
            }
            // Not acknowledged (refused): not journaled.
            XCTAssertThrowsError(
                try node.submitAcknowledged(
                    encoded: t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: 9).encoded))
            XCTAssertEqual(try XCTUnwrap(node.journal).pending().map(\.id).sorted { $0 < $1 }, ids.sorted { $0 < $1 })
        }  // the node is gone with its mempool, as after a SIGKILL
        let node = try journaledNode()
        XCTAssertEqual(node.pendingCount, 0)
        let replay = node.replayJournal()
        XCTAssertEqual(replay.readmitted, 3)
        XCTAssertEqual(node.pendingCount, 3)
        for id in ids { guard case .pending = try node.status(of: id) else { return XCTFail("\(id) not pending") } }
        try node.produceBlock(timestamp: 1_700_000_001_000)
        node.journal?.settle()
        XCTAssertTrue(try XCTUnwrap(node.journal).pending().isEmpty, "included entries leave the journal")
        for id in ids { guard case .included = try node.status(of: id) else { return XCTFail("\(id) not included") } }
        XCTAssertEqual(node.account(bob).state.balance, 15)
    }

    /// A batch (`POST /v1/txs`): the admitted ones are journaled together and come back after a restart; the
    /// refused one is not journaled.
    func testAnAcknowledgedBatchSurvivesARestart() throws {
        let bob = TestChain.address(TestChain.key(9))
        let batch = [0, 1, 7, 2].map { t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: UInt64($0)).encoded }
        var admitted: [Bytes32] = []
        do {
            let node = try journaledNode()
            let results = node.submitAcknowledged(batch: batch)
            admitted = results.compactMap { try? $0.get() }
            XCTAssertEqual(admitted.count, 3)
            guard case .failure(.refused(.nonceGap)) = results[2] else { return XCTFail("nonce 7 was not refused") }
        }
        let node = try journaledNode()
        XCTAssertEqual(node.replayJournal().readmitted, 3)
        XCTAssertEqual(Set(try XCTUnwrap(node.journal).pending().map(\.id)), Set(admitted))
    }

    func testADroppedSubmitReadsBackAsRefusedWithItsCode() throws {
        let node = try journaledNode()
        let bob = TestChain.address(TestChain.key(9))
        let first = t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: 0, maxFee: 10, tip: 1)
        XCTAssertEqual(try node.submitAcknowledged(encoded: first.encoded), first.id)
        // The same nonce paying more replaces it: the first was acknowledged, so its fate must be readable.
        let better = t.transfer(from: t.funded[0], to: bob, amount: 6, nonce: 0, maxFee: 20, tip: 2)
        XCTAssertEqual(try node.submitAcknowledged(encoded: better.encoded), better.id)
        node.journal?.settle()
        guard case .refused(let code) = try node.status(of: first.id) else { return XCTFail("not refused") }
        XCTAssertEqual(code, "replaced")
        guard case .pending = try node.status(of: better.id) else { return XCTFail("the replacement is pending") }
        // A transaction never acknowledged here stays unknown.
        guard case .unknown = try node.status(of: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)) else { return XCTFail() }
    }

    func testReplaySettlesWhatTheChainAlreadyIncludedOrNoLongerTakes() throws {
        let bob = TestChain.address(TestChain.key(9))
        let included = t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: 0)
        let stale = t.transfer(from: t.funded[1], to: bob, amount: 5, nonce: 0)
        let rival = t.transfer(from: t.funded[1], to: bob, amount: 7, nonce: 0, maxFee: 30, tip: 3)
        do {
            let journal = try SubmitJournal(path: t.path("submits.sqlite"))
            try journal.record(included)
            try journal.record(stale)
        }
        // The chain moved on without the journal's knowledge (a crash before its removals were written):
        // `included` is in a block, and `stale`'s nonce was used by another transaction.
        do {
            let plain = try t.openNode()
            _ = try plain.submit(included)
            _ = try plain.submit(rival)
            try plain.produceBlock(timestamp: 1_700_000_001_000)
        }
        let node = try journaledNode()
        let replay = node.replayJournal()
        XCTAssertEqual(replay.readmitted, 0)
        XCTAssertEqual(replay.included, 1)
        XCTAssertEqual(replay.refused, 1)
        XCTAssertTrue(try XCTUnwrap(node.journal).pending().isEmpty)
        guard case .refused(let code) = try node.status(of: stale.id) else { return XCTFail("stale not refused") }
        XCTAssertEqual(code, "nonceReplayed")
    }

    func testConcurrentSubmittersAreAllKept() throws {
        let journal = try SubmitJournal(path: t.path("submits.sqlite"), fsync: true)
        let senders = (0..<8).map { TestChain.key(500 + UInt64($0)) }
        let bob = TestChain.address(TestChain.key(9))
        let txs = senders.map { key in (0..<50).map { t.transfer(from: key, to: bob, amount: 1, nonce: UInt64($0)) } }
        DispatchQueue.concurrentPerform(iterations: senders.count) { s in
            for tx in txs[s] { try! journal.record(tx) }
        }
        XCTAssertEqual(try journal.pending().count, 400)
        XCTAssertEqual(try SubmitJournal(path: t.path("submits.sqlite")).pending().count, 400, "on disk")
    }

    /// Entries come back in the order they were acknowledged, a transaction acknowledged twice has two entries
    /// and both leave when it is included, and what a restart finds is numbered on from the last entry.
    func testEntriesKeepTheirOrderAndARepeatLeavesWithTheFirst() throws {
        let bob = TestChain.address(TestChain.key(9))
        let txs = (0..<4).map {
            t.transfer(from: t.funded[UInt64($0) % 2 == 0 ? 0 : 1], to: bob, amount: 5, nonce: UInt64($0 / 2))
        }
        do {
            let journal = try SubmitJournal(path: t.path("submits.sqlite"))
            try journal.record([txs[2], txs[0]])
            try journal.record(txs[2])
            try journal.record(txs[1])
            XCTAssertEqual(try journal.pending().map(\.id), [txs[2].id, txs[0].id, txs[2].id, txs[1].id])
            journal.included([txs[2].id])
            journal.settle()
            XCTAssertEqual(try journal.pending().map(\.id), [txs[0].id, txs[1].id])
        }
        let journal = try SubmitJournal(path: t.path("submits.sqlite"))
        try journal.record(txs[3])
        XCTAssertEqual(try journal.pending().map(\.id), [txs[0].id, txs[1].id, txs[3].id])
        journal.refused([(txs[0].id, "evicted"), (txs[3].id, "nonceUsed")])
        journal.included([txs[1].id])
        journal.settle()
        XCTAssertEqual(try journal.pending().map(\.id), [])
        XCTAssertEqual(journal.refusal(of: txs[0].id), "evicted")
        XCTAssertEqual(journal.refusal(of: txs[3].id), "nonceUsed")
        XCTAssertNil(journal.refusal(of: txs[1].id))
    }

    /// A journal an earlier version wrote (entries keyed by id, in `pending`) is taken over whole when opened:
    /// every acknowledged transaction is still there, and leaves as it is included.
    func testAJournalFromTheEarlierLayoutIsMovedOver() throws {
        let bob = TestChain.address(TestChain.key(9))
        let txs = (0..<3).map { t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: UInt64($0)) }
        do {
            let db = try SQLiteDatabase(path: t.path("submits.sqlite"))
            try db.execute(
                """
                PRAGMA journal_mode=WAL;
                CREATE TABLE pending(id BLOB PRIMARY KEY, tx BLOB NOT NULL) WITHOUT ROWID;
                CREATE TABLE refused(id BLOB PRIMARY KEY, code TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
                """)
            let insert = try db.prepare("INSERT INTO pending(id, tx) VALUES (?1, ?2)")
            for tx in txs {
                insert.bind(1, tx.id.bytes)
                insert.bind(2, tx.encoded)
                try insert.run()
            }
        }
        let sorted = txs.map(\.id).sorted { $0 < $1 }
        do {
            let journal = try SubmitJournal(path: t.path("submits.sqlite"))
            XCTAssertEqual(try journal.pending().map(\.id).sorted { $0 < $1 }, sorted)
            journal.included([txs[1].id])
            journal.settle()
        }
        let journal = try SubmitJournal(path: t.path("submits.sqlite"))
        XCTAssertEqual(try journal.pending().map(\.id).sorted { $0 < $1 }, [txs[0].id, txs[2].id].sorted { $0 < $1 })
        let db = try SQLiteDatabase(path: t.path("submits.sqlite"))
        let old = try db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'pending'")
        XCTAssertFalse(try old.step(), "the earlier table is gone")
    }

    func testOldRefusalsAreForgottenAtOpen() throws {
        let bob = TestChain.address(TestChain.key(9))
        let tx = t.transfer(from: t.funded[0], to: bob, amount: 5, nonce: 0)
        do {
            let journal = try SubmitJournal(path: t.path("submits.sqlite"))
            try journal.record(tx)
            journal.refused([(tx.id, "evicted")])
            journal.settle()
            XCTAssertEqual(journal.refusal(of: tx.id), "evicted")
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(try SubmitJournal(path: t.path("submits.sqlite"), nowMillis: now).refusal(of: tx.id), "evicted")
        let later = now + SubmitJournal.refusalRetentionMillis + 60_000
        XCTAssertNil(try SubmitJournal(path: t.path("submits.sqlite"), nowMillis: later).refusal(of: tx.id))
    }
}
