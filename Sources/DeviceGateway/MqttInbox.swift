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
/// Why it exists: the mempool lives in memory, and libmosquitto acknowledges a QoS 1 PUBLISH as soon as the
/// message callback returns (see ``MqttBridge``). Once the broker has our PUBACK it forgets the message, so
/// the gateway must hold it somewhere that survives its own crash. Each submit is written here, and the write
/// is synced to disk, before the callback returns; on start-up every entry is submitted again.
///
/// Why SQLite: `CSQLite` is already linked for the chain store and SQLite gives atomic, fsynced commits (WAL,
/// `synchronous=FULL`) and torn-write detection for free, which an append-only file would have to re-implement
/// with per-record checksums and compaction. The database is a separate file from the chain's, so the bridge
/// never contends with block commits for its lock.
///
/// Thread-safe: one lock around the connection (SQLite is opened without its own mutex).
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

    deinit { sqlite3_close_v2(db) }

    /// Records a submit durably; a second add of the same id keeps the first. Returns once synced to disk.
    public func add(id: Bytes32, device: Address, raw: [UInt8]) throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        try run("INSERT OR IGNORE INTO inbox (id, device, raw) VALUES (?, ?, ?)", [id.bytes, device.raw.bytes, raw])
    }

    /// Forgets a submit that became final or was refused for good.
    public func remove(id: Bytes32) throws(MqttInboxError) {
        lock.lock()
        defer { lock.unlock() }
        try run("DELETE FROM inbox WHERE id = ?", [id.bytes])
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

    private func run(_ sql: String, _ blobs: [[UInt8]]) throws(MqttInboxError) {
        let stmt = try prepare(sql)
        defer { sqlite3_finalize(stmt) }
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
