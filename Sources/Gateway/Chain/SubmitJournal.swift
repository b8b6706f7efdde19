import AmarsCodec
import Foundation
import Ledger

/// What a gateway acknowledged (HTTP 202, CoAP 2.01) and has not yet seen included: kept on disk before the
/// answer leaves, so a SIGKILL or power cut between the answer and the block loses nothing. At start-up the
/// node re-admits every entry (``ChainNode/replayJournal()``); an entry leaves the journal when a block includes
/// it, or when the mempool drops it, and then the reason is kept (`refused`) for `GET /v1/tx/{id}`.
///
/// Writes are group-committed: concurrent submitters queue their entries and one of them writes the whole queue
/// in a single SQLite transaction. By default (WAL, `synchronous=NORMAL`) a written entry survives a crash or
/// SIGKILL of the process, which is what a gateway meets; `fsync: true` (`synchronous=FULL`) also survives a
/// power cut, at a cost measured in the README (a burst still shares one fsync). Removals
/// (included, dropped) are not urgent and run on a background queue without an fsync: losing one only makes
/// the next start-up re-admit a transaction the chain then refuses as included or stale. A drop that overtakes
/// its own entry's write leaves the entry pending until that re-admission, which settles it.
///
/// Entries are stored in the order they were acknowledged (`entries`, keyed by a sequence number), not by id: a
/// group commit then appends to the table's last pages instead of touching one random page per transaction,
/// which under load was most of the journal's cost. The sequence numbers of the entries held are kept in memory,
/// and an entry is removed by its number. A journal written by an earlier version (`pending`, keyed by id) is
/// moved into `entries` when it is opened.
///
/// Thread-safe: `writer` serializes the connection; `queueLock` guards the group-commit queue.
public final class SubmitJournal: @unchecked Sendable {
    private let db: SQLiteDatabase
    private let insert: SQLiteStatement
    private let deletePending: SQLiteStatement
    private let moveToRefused: SQLiteStatement
    private let selectRefusal: SQLiteStatement
    private let selectPending: SQLiteStatement
    private let writer = NSLock()
    /// Removals run here, in order, off the caller's path (a block commit, an admission).
    private let background = DispatchQueue(label: "amars.submit-journal")

    private let queueLock = NSCondition()
    private var queue: [(seq: Int64, id: Bytes32, bytes: [UInt8])] = []
    private var flushing = false
    /// Entries are numbered as they are queued; every entry up to `flushed` has been written (or has failed).
    private var queued: UInt64 = 0
    private var flushed: UInt64 = 0
    /// The last few failed batches (first and last entry number), so each waiter learns its own fate.
    private var failures: [(range: ClosedRange<UInt64>, error: StoreError)] = []
    /// The entries held, by id, with their sequence numbers: every node learns of every block and every drop,
    /// but only the few ids it acknowledged itself cost it a write. The same transaction acknowledged twice has two
    /// entries (the second under `heldAgain`), and both go when it does. Guarded by `queueLock`.
    private var held: [Bytes32: Int64] = [:]
    private var heldAgain: [Bytes32: [Int64]] = [:]
    /// The sequence number of the last entry queued. Guarded by `queueLock`.
    private var lastSeq: Int64 = 0

    /// Refusals older than this are forgotten at open: a client has long had time to ask.
    public static let refusalRetentionMillis: Int64 = 7 * 86_400_000

    public let path: String
    /// Whether each write is flushed to the disk before it returns (power-cut safe), not only to the OS.
    public let fsync: Bool

    public init(
        path: String, fsync: Bool = false, nowMillis: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) throws(StoreError) {
        self.path = path
        self.fsync = fsync
        db = try SQLiteDatabase(path: path)
        try db.execute(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS entries(seq INTEGER PRIMARY KEY, id BLOB NOT NULL, tx BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS refused(
                id BLOB PRIMARY KEY, code TEXT NOT NULL, at INTEGER NOT NULL
            ) WITHOUT ROWID;
            """)
        try Self.moveEarlierEntries(db)
        insert = try db.prepare("INSERT INTO entries(seq, id, tx) VALUES (?1, ?2, ?3)")
        deletePending = try db.prepare("DELETE FROM entries WHERE seq = ?1")
        moveToRefused = try db.prepare(
            "INSERT OR REPLACE INTO refused(id, code, at) SELECT id, ?2, ?3 FROM entries WHERE seq = ?1")
        selectRefusal = try db.prepare("SELECT code FROM refused WHERE id = ?1")
        selectPending = try db.prepare("SELECT tx FROM entries ORDER BY seq")
        let prune = try db.prepare("DELETE FROM refused WHERE at < ?1")
        prune.bind(1, nowMillis - Self.refusalRetentionMillis)
        try prune.run()
        let rows = try db.prepare("SELECT seq, id FROM entries ORDER BY seq")
        defer { rows.reset() }
        while try rows.step() {
            let seq = rows.int64(0)
            lastSeq = seq
            guard let id = Bytes32(rows.blob(1)) else { continue }
            hold(id, seq)
        }
    }

    /// Moves the entries of a journal written before entries were kept in order (`pending`, keyed by id) into
    /// `entries`, in one transaction, and drops the old table.
    private static func moveEarlierEntries(_ db: SQLiteDatabase) throws(StoreError) {
        let old = try db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pending'")
        let exists = try old.step()
        old.reset()
        guard exists else { return }
        try db.transaction { () throws(StoreError) in
            try db.execute("INSERT INTO entries(id, tx) SELECT id, tx FROM pending; DROP TABLE pending;")
        }
    }

    /// Notes that entry `seq` holds `id`. Under `queueLock` (or in `init`).
    private func hold(_ id: Bytes32, _ seq: Int64) {
        if held[id] == nil { held[id] = seq } else { heldAgain[id, default: []].append(seq) }
    }

    /// The entries of `ids` this journal holds, now no longer held (their removal is about to be written).
    private func release(_ ids: [Bytes32]) -> [(id: Bytes32, seq: Int64)] {
        queueLock.lock()
        defer { queueLock.unlock() }
        guard !held.isEmpty else { return [] }
        var out: [(id: Bytes32, seq: Int64)] = []
        for id in ids {
            guard let seq = held.removeValue(forKey: id) else { continue }
            out.append((id, seq))
            if !heldAgain.isEmpty, let again = heldAgain.removeValue(forKey: id) {
                out += again.map { (id, $0) }
            }
        }
        return out
    }

    /// Keeps `tx` durably; returns once it is on disk (or throws why it is not). Safe to call from many threads:
    /// whoever finds no write in progress writes everything queued so far, the others wait for that write.
    public func record(_ tx: SignedTransaction) throws(StoreError) {
        try record([tx])
    }

    /// Keeps every one of `txs` durably, in the same group commit; returns once all are on disk.
    public func record(_ txs: [SignedTransaction]) throws(StoreError) {
        guard !txs.isEmpty else { return }
        queueLock.lock()
        for tx in txs {
            queued += 1
            lastSeq += 1
            let id = tx.id
            queue.append((lastSeq, id, tx.encoded))
            hold(id, lastSeq)
        }
        let mine = queued
        while flushed < mine {
            if flushing {
                queueLock.wait()
                continue
            }
            flushing = true
            let batch = queue
            let last = queued
            queue = []
            queueLock.unlock()
            let result = write(batch)
            queueLock.lock()
            flushing = false
            if case .failure(let error) = result {
                failures.append((last - UInt64(batch.count) + 1...last, error))
                if failures.count > 16 { failures.removeFirst(failures.count - 16) }
            }
            flushed = last
            queueLock.broadcast()
        }
        let failure = failures.last { $0.range.contains(mine) }
        queueLock.unlock()
        if let failure { throw failure.error }
    }

    private func write(_ batch: [(seq: Int64, id: Bytes32, bytes: [UInt8])]) -> Result<Void, StoreError> {
        Result { () throws(StoreError) in
            try transaction(flushed: fsync) { () throws(StoreError) in
                for entry in batch {
                    insert.bind(1, entry.seq)
                    insert.bind(2, entry.id.bytes)
                    insert.bind(3, entry.bytes)
                    try insert.run()
                }
            }
        }
    }

    /// One write transaction under the writer lock; `flushed`: fsynced before it returns (`synchronous=FULL`).
    private func transaction(flushed: Bool, _ body: () throws(StoreError) -> Void) throws(StoreError) {
        writer.lock()
        defer { writer.unlock() }
        try db.execute(flushed ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        try db.transaction(body)
    }

    /// Forgets entries a block included (in the background).
    public func included(_ ids: [Bytes32]) {
        let mine = release(ids)
        guard !mine.isEmpty else { return }
        background.async { self.remove(mine) }
    }

    private func remove(_ entries: [(id: Bytes32, seq: Int64)]) {
        try? transaction(flushed: false) { () throws(StoreError) in
            for entry in entries {
                deletePending.bind(1, entry.seq)
                try deletePending.run()
            }
        }
    }

    /// Moves entries the mempool dropped to the refusals, with the code a client reads back (in the background).
    /// Ids this journal never held (a peer's transactions) change nothing.
    public func refused(_ drops: [(id: Bytes32, code: String)]) {
        let mine = release(drops.map(\.id))
        guard !mine.isEmpty else { return }
        let codes = Dictionary(drops.map { ($0.id, $0.code) }, uniquingKeysWith: { first, _ in first })
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        background.async { self.refuse(mine.map { ($0.seq, codes[$0.id]!) }, nowMillis: now) }
    }

    private func refuse(_ drops: [(seq: Int64, code: String)], nowMillis: Int64) {
        try? transaction(flushed: false) { () throws(StoreError) in
            for drop in drops {
                moveToRefused.bind(1, drop.seq)
                moveToRefused.bind(2, drop.code)
                moveToRefused.bind(3, nowMillis)
                try moveToRefused.run()
                deletePending.bind(1, drop.seq)
                try deletePending.run()
            }
        }
    }

    /// Why an acknowledged transaction was dropped, if it was (and not longer ago than the retention).
    public func refusal(of id: Bytes32) -> String? {
        writer.lock()
        defer { writer.unlock() }
        selectRefusal.bind(1, id.bytes)
        defer { selectRefusal.reset() }
        guard (try? selectRefusal.step()) == true else { return nil }
        return selectRefusal.text(0)
    }

    /// Waits until every removal asked for so far is done (tests, and the replay at start-up).
    public func settle() { background.sync {} }

    /// Every entry still waiting, as stored (undecodable ones are skipped: this code wrote them).
    public func pending() throws(StoreError) -> [SignedTransaction] {
        writer.lock()
        defer { writer.unlock() }
        defer { selectPending.reset() }
        var out: [SignedTransaction] = []
        while try selectPending.step() {
            if let tx = try? SignedTransaction(decoding: selectPending.blob(0)) { out.append(tx) }
        }
        return out
    }
}
