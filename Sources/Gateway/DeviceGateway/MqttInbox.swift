import AmarsCodec
import CSQLite
import Foundation
import Ledger

/// Why the inbox failed, with SQLite's own message.
public struct MqttInboxError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    public var description: String { "mqtt inbox error \(code): \(message)" }
}

/// The submits the MQTT bridge has taken responsibility for and not yet seen final or refused.
///
/// Why it exists: the mempool lives in memory, and once the broker has our PUBACK for a QoS 1 submit it forgets
/// the message (see ``MqttBridge``), so the gateway must hold it somewhere that survives its own crash. The
/// bridge writes the submits it reads in one loop turn with ``stage(id:device:raw:)`` and makes them durable
/// with one ``commit()`` (one fsync) before it lets libmosquitto write any of their PUBACKs; on start-up every
/// entry is submitted again.
///
/// Why SQLite: `CSQLite` is already linked for the chain store and SQLite gives atomic, fsynced commits (WAL,
/// `synchronous=FULL`) and torn-write detection for free, which an append-only file would have to re-implement
/// with per-record checksums and compaction. The database is a separate file from the chain's, so the bridge
/// never contends with block commits for its lock.
///
/// Thread-safe: one lock around the connection (SQLite is opened without its own mutex). A staged batch is an
/// open transaction on that connection until ``commit()``: readers through this object see it early, so the
/// batch API is for one writer (the bridge's loop thread), which commits within the same loop turn.
public final class MqttInbox: @unchecked Sendable {
    public struct Entry: Equatable, Sendable {
        public var id: Bytes32
        public var device: Address
        /// The submit exactly as received, so a replay is byte-for-byte what the device signed.
        public var raw: [UInt8]
    }

    private let db: OpaquePointer
    private let lock = NSLock()
    public let path: String
    /// Prepared once: a batch of thousands of rows should not parse its SQL thousands of times.
    private var insertStmt: OpaquePointer?
    private var deleteStmt: OpaquePointer?
    /// A `BEGIN` is open (guarded by `lock`).
    private var inTransaction = false

    public init(path: String) throws(MqttInboxError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close_v2(handle) }
            throw MqttInboxError(code: rc, message: "\(path): \(message)")
        }
        db = handle
        sqlite3_busy_timeout(db, 5_000)
        do {
            // FULL: a commit returns only after the WAL is fsynced, which is the whole point of this file.
            try execute("PRAGMA journal_mode=WAL")
            try execute("PRAGMA synchronous=FULL")
            try execute(
                """
                CREATE TABLE IF NOT EXISTS inbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id BLOB NOT NULL UNIQUE,
                    device BLOB NOT NULL,
                    raw BLOB NOT NULL
                )
                """)
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    deinit {
        sqlite3_finalize(insertStmt)
        sqlite3_finalize(deleteStmt)
        sqlite3_close_v2(db)
    }

    private static let insertSQL = "INSERT OR IGNORE INTO inbox (id, device, raw) VALUES (?, ?, ?)"
    private static let deleteSQL = "DELETE FROM inbox WHERE id = ?"

    /// Records a submit durably; a second add of the same id keeps the first. Returns once synced to disk
    /// (with a staged batch open, the row joins the batch and is durable at its ``commit()``).
    public func add(id: Bytes32, device: Address, raw: [UInt8]) throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        try run(cached: &insertStmt, Self.insertSQL, [id.bytes, device.raw.bytes, raw])
    }

    /// Forgets a submit that became final or was refused for good.
    public func remove(id: Bytes32) throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        try run(cached: &deleteStmt, Self.deleteSQL, [id.bytes])
    }

    // MARK: batches

    /// Adds a submit to the open batch (opening one if needed). Not durable until ``commit()`` returns.
    public func stage(id: Bytes32, device: Address, raw: [UInt8]) throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        try beginIfNeeded()
        try run(cached: &insertStmt, Self.insertSQL, [id.bytes, device.raw.bytes, raw])
    }

    /// Adds a removal to the open batch (opening one if needed). A removal lost in a crash only costs a
    /// harmless replay, but it still becomes durable with the batch.
    public func stageRemoval(id: Bytes32) throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        try beginIfNeeded()
        try run(cached: &deleteStmt, Self.deleteSQL, [id.bytes])
    }

    /// Whether a staged batch is open.
    public var hasStaged: Bool { lock.withLock { inTransaction } }

    /// Makes the staged batch durable: returns once the WAL is synced (`synchronous=FULL`), one fsync for the
    /// whole batch. Nothing staged: nothing to do. On failure the batch is rolled back and the error thrown.
    public func commit() throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        guard inTransaction else { return }
        inTransaction = false
        do { try execute("COMMIT") } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// Drops the staged batch.
    public func rollback() {
        lock.lock()
        defer { lock.unlock() }
        guard inTransaction else { return }
        inTransaction = false
        _ = try? execute("ROLLBACK")
    }

    private func beginIfNeeded() throws(MqttInboxError) {
        guard !inTransaction else { return }
        try execute("BEGIN")
        inTransaction = true
    }

    /// Every entry in arrival order, so a replay keeps each device's nonces in order. Rows that no longer
    /// parse (a foreign or damaged file) are skipped rather than trusted.
    public func entries() throws(MqttInboxError) -> [Entry] {
        lock.lock()
        defer { lock.unlock() }
        let stmt = try prepare("SELECT id, device, raw FROM inbox ORDER BY seq")
        defer { sqlite3_finalize(stmt) }
        var out: [Entry] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            guard let id = Bytes32(blob(stmt, 0)), let device = Bytes20(blob(stmt, 1)) else { continue }
            out.append(Entry(id: id, device: Address(raw: device), raw: blob(stmt, 2)))
        }
        return out
    }

    public var count: Int {
        (try? entries().count) ?? 0
    }

    // MARK: SQLite plumbing (the caller holds the lock)

    private func error(_ rc: Int32) -> MqttInboxError {
        MqttInboxError(code: rc, message: String(cString: sqlite3_errmsg(db)))
    }

    private func execute(_ sql: String) throws(MqttInboxError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        guard rc == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "failed"
            sqlite3_free(message)
            throw MqttInboxError(code: rc, message: text)
        }
    }

    private func prepare(_ sql: String) throws(MqttInboxError) -> OpaquePointer {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        return stmt
    }

    private func run(cached: inout OpaquePointer?, _ sql: String, _ blobs: [[UInt8]]) throws(MqttInboxError) {
        if cached == nil { cached = try prepare(sql) }
        guard let stmt = cached else { return }
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, value) in blobs.enumerated() {
            let rc = value.withUnsafeBytes {
                // A zero-length blob still needs a non-null pointer, or SQLite stores NULL.
                sqlite3_bind_blob(
                    stmt, Int32(i + 1), $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(value.count),
                    amars_sqlite_transient())
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE else { throw error(rc) }
    }

    private func blob(_ stmt: OpaquePointer, _ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(stmt, column))
        guard count > 0, let base = sqlite3_column_blob(stmt, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }
}
