import AmarsCodec
import AmarsCrypto
import Ledger

/// Finalized blocks, receipts and account state in one SQLite file.
///
/// Each block is written in one SQL transaction together with every account it changed, in WAL mode with
/// `synchronous=FULL`: a SIGKILL or power cut at any instant leaves either the previous block or this one,
/// never a block without its state. The state tree is not stored; it is rebuilt from the accounts at open
/// and its root checked against the head header, so a damaged file is detected rather than served.
public final class BlockStore {
    private let db: SQLiteDatabase
    private let insertBlock: SQLiteStatement
    private let insertTx: SQLiteStatement
    private let incoming: AddressIndex
    private let sent: AddressIndex
    private let notified: AddressIndex
    private let selectHeightByHash: SQLiteStatement
    private let upsertAccount: SQLiteStatement
    private let deleteAccount: SQLiteStatement
    private let upsertObject: SQLiteStatement
    private let deleteObject: SQLiteStatement
    private let selectBlock: SQLiteStatement
    private let selectTx: SQLiteStatement
    private let setMeta: SQLiteStatement
    private let getMeta: SQLiteStatement
    private let insertAttestation: SQLiteStatement
    private let selectAttestations: SQLiteStatement

    public let path: String

    public init(path: String) throws(StoreError) {
        self.path = path
        db = try SQLiteDatabase(path: path)
        try db.execute(
            """
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=FULL;
            PRAGMA foreign_keys=ON;
            PRAGMA cache_size=-65536;
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS blocks(
                height INTEGER PRIMARY KEY,
                hash BLOB NOT NULL UNIQUE,
                block BLOB NOT NULL,
                certificate BLOB NOT NULL,
                receipts BLOB NOT NULL
            );
            CREATE TABLE IF NOT EXISTS transactions(
                id BLOB PRIMARY KEY,
                height INTEGER NOT NULL,
                position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS accounts(address BLOB PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS objects(
                namespace INTEGER NOT NULL,
                id BLOB NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY(namespace, id)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS attestations(
                height INTEGER NOT NULL,
                voter BLOB NOT NULL,
                signature BLOB NOT NULL,
                PRIMARY KEY(height, voter)
            ) WITHOUT ROWID;
            """)
        insertBlock = try db.prepare(
            "INSERT INTO blocks(height, hash, block, certificate, receipts) VALUES (?1, ?2, ?3, ?4, ?5)")
        insertTx = try db.prepare("INSERT INTO transactions(id, height, position) VALUES (?1, ?2, ?3)")
        incoming = try AddressIndex(db, table: "incoming_blocks")
        sent = try AddressIndex(db, table: "sent_blocks")
        notified = try AddressIndex(db, table: "notified_blocks")
        selectHeightByHash = try db.prepare("SELECT height FROM blocks WHERE hash = ?1")
        upsertAccount = try db.prepare(
            "INSERT INTO accounts(address, state) VALUES (?1, ?2) ON CONFLICT(address) DO UPDATE SET state = ?2")
        deleteAccount = try db.prepare("DELETE FROM accounts WHERE address = ?1")
        upsertObject = try db.prepare(
            """
            INSERT INTO objects(namespace, id, value) VALUES (?1, ?2, ?3)
            ON CONFLICT(namespace, id) DO UPDATE SET value = ?3
            """)
        deleteObject = try db.prepare("DELETE FROM objects WHERE namespace = ?1 AND id = ?2")
        selectBlock = try db.prepare("SELECT block, certificate, receipts FROM blocks WHERE height = ?1")
        selectTx = try db.prepare("SELECT height, position FROM transactions WHERE id = ?1")
        setMeta = try db.prepare(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2")
        getMeta = try db.prepare("SELECT value FROM meta WHERE key = ?1")
        insertAttestation = try db.prepare(
            "INSERT OR IGNORE INTO attestations(height, voter, signature) VALUES (?1, ?2, ?3)")
        selectAttestations = try db.prepare("SELECT voter, signature FROM attestations WHERE height = ?1")
        try backfill([
            ("incoming-blocks", { (b: Block, h: Int64) throws(StoreError) in try self.indexIncoming(b, height: h) }),
            ("sent-blocks", { (b: Block, h: Int64) throws(StoreError) in try self.indexSent(b, height: h) }),
            (
                "notified-blocks",
                { (b: Block, h: Int64) throws(StoreError) in try self.indexNotifications(b, height: h) }
            ),
        ])
        // The row-per-transaction indexes of earlier files, replaced by the ones just built.
        try db.execute(
            """
            DROP TABLE IF EXISTS incoming;
            DROP TABLE IF EXISTS sent;
            DROP TABLE IF EXISTS notifications;
            DELETE FROM meta WHERE key IN ('incoming-index', 'sent-index', 'notification-index');
            """)
    }

    // MARK: meta

    func meta(_ key: String) throws(StoreError) -> [UInt8]? {
        getMeta.bind(1, key)
        defer { getMeta.reset() }
        return try getMeta.step() ? getMeta.blob(0) : nil
    }

    private func putMeta(_ key: String, _ value: [UInt8]) throws(StoreError) {
        setMeta.bind(1, key)
        setMeta.bind(2, value)
        try setMeta.run()
    }

    /// The genesis hash this file was created for, or nil for a new file.
    public func genesisHash() throws(StoreError) -> Bytes32? {
        try meta("genesis").flatMap { Bytes32($0) }
    }

    /// Height of the last committed block, or nil for a new file.
    public func headHeight() throws(StoreError) -> UInt64? {
        guard let raw = try meta("head") else { return nil }
        var reader = ByteReader(raw)
        guard let h = try? reader.readVarintValue() else { throw StoreError(code: -1, message: "corrupt head marker") }
        return h
    }

    // MARK: writes

    /// Writes the genesis block and initial balances atomically.
    public func initialize(genesisHash: Bytes32, genesisBlock: FinalizedBlock, state: StateChanges)
        throws(StoreError)
    {
        try db.transaction { () throws(StoreError) in
            try putMeta("genesis", genesisHash.bytes)
            try writeBlock(genesisBlock, receipts: [], changes: state)
        }
    }

    /// Writes one finalized block, its receipts and the accounts it changed, atomically.
    public func commit(_ block: FinalizedBlock, receipts: [Receipt], changes: StateChanges)
        throws(StoreError)
    {
        try db.transaction { () throws(StoreError) in try writeBlock(block, receipts: receipts, changes: changes) }
    }

    private func writeBlock(_ fb: FinalizedBlock, receipts: [Receipt], changes: StateChanges)
        throws(StoreError)
    {
        let height = Int64(fb.block.header.height)
        var receiptWriter = ByteWriter(capacity: receipts.count * 48 + 4)
        receiptWriter.write(list: receipts)
        insertBlock.bind(1, height)
        insertBlock.bind(2, fb.block.hash.bytes)
        insertBlock.bind(3, fb.block.encoded)
        insertBlock.bind(4, fb.certificate.encoded)
        insertBlock.bind(5, receiptWriter.bytes)
        try insertBlock.run()
        for (i, r) in receipts.enumerated() {
            insertTx.bind(1, r.transactionID.bytes)
            insertTx.bind(2, height)
            insertTx.bind(3, Int64(i))
            try insertTx.run()
        }
        try indexIncoming(fb.block, height: height)
        try indexSent(fb.block, height: height)
        try indexNotifications(fb.block, height: height)
        for (address, state) in changes.accounts {
            if state.isEmpty {
                deleteAccount.bind(1, address.raw.bytes)
                try deleteAccount.run()
            } else {
                upsertAccount.bind(1, address.raw.bytes)
                upsertAccount.bind(2, state.encoded)
                try upsertAccount.run()
            }
        }
        for (key, value) in changes.objects {
            if value.isEmpty {
                deleteObject.bind(1, Int64(key.namespace.rawValue))
                deleteObject.bind(2, key.id)
                try deleteObject.run()
            } else {
                upsertObject.bind(1, Int64(key.namespace.rawValue))
                upsertObject.bind(2, key.id)
                upsertObject.bind(3, value)
                try upsertObject.run()
            }
        }
        var w = ByteWriter()
        w.writeVarint(UInt64(height))
        try putMeta("head", w.bytes)
    }

    /// Keeps a pool member's attestation of the checkpoint at `height` (checked by the caller); the first one per
    /// member stays. Not part of a block: attestations arrive after finality, and losing some only shortens jumps.
    public func storeAttestation(height: UInt64, voter: Bytes32, signature: Bytes64) throws(StoreError) {
        guard height <= UInt64(Int64.max) else { return }
        insertAttestation.bind(1, Int64(height))
        insertAttestation.bind(2, voter.bytes)
        insertAttestation.bind(3, signature.bytes)
        try insertAttestation.run()
    }

    /// The attestations kept for the checkpoint at `height`, by voter key.
    public func attestations(height: UInt64) throws(StoreError) -> [Bytes32: Bytes64] {
        guard height <= UInt64(Int64.max) else { return [:] }
        selectAttestations.bind(1, Int64(height))
        defer { selectAttestations.reset() }
        var out: [Bytes32: Bytes64] = [:]
        while try selectAttestations.step() {
            guard let voter = Bytes32(selectAttestations.blob(0)), let signature = Bytes64(selectAttestations.blob(1))
            else { throw StoreError(code: -1, message: "corrupt attestation at height \(height)") }
            out[voter] = signature
        }
        return out
    }

    // MARK: reads

    public struct StoredBlock: Sendable {
        public var finalized: FinalizedBlock
        public var receipts: [Receipt]
    }

    /// A stored block; a row that fails to decode is reported as corruption, never served.
    public func block(at height: UInt64) throws(StoreError) -> StoredBlock? {
        guard height <= UInt64(Int64.max) else { return nil }
        selectBlock.bind(1, Int64(height))
        defer { selectBlock.reset() }
        guard try selectBlock.step() else { return nil }
        do {
            let block = try Block(decoding: selectBlock.blob(0))
            let cert = try CommitCertificate(decoding: selectBlock.blob(1))
            var r = ByteReader(selectBlock.blob(2))
            let receipts: [Receipt] = try r.readList(cap: Caps.transactionsPerBlock)
            try r.finish()
            return StoredBlock(finalized: FinalizedBlock(block: block, certificate: cert), receipts: receipts)
        } catch {
            throw StoreError(code: -1, message: "block \(height) is corrupt: \(error)")
        }
    }

    /// Where a transaction was included.
    public func transactionLocation(_ id: Bytes32) throws(StoreError) -> (height: UInt64, position: Int)? {
        selectTx.bind(1, id.bytes)
        defer { selectTx.reset() }
        guard try selectTx.step() else { return nil }
        return (UInt64(selectTx.int64(0)), Int(selectTx.int64(1)))
    }

    /// Where the transfers paying `address` are, from position `position` of block `from` on, oldest first, at
    /// most `limit`.
    public func incomingTransfers(to address: Address, from: UInt64, position: Int = 0, limit: Int) throws(StoreError)
        -> [(height: UInt64, position: Int)]
    {
        try incoming.locations(of: address, from: from, position: position, limit: limit)
    }

    /// Where the payment-code notifications sent to `address` are, like ``incomingTransfers(to:from:position:limit:)``.
    /// Kept apart from transfers so that a notification sent to a device's plain address cannot break its inbox.
    public func notifications(to address: Address, from: UInt64, position: Int = 0, limit: Int) throws(StoreError)
        -> [(height: UInt64, position: Int)]
    {
        try notified.locations(of: address, from: from, position: position, limit: limit)
    }

    private func indexNotifications(_ block: Block, height: Int64) throws(StoreError) {
        try notified.add(block, height: height) {
            guard case .paymentCodeNotify(let notify) = $0.body.payload else { return nil }
            return notify.to
        }
    }

    /// Plain transfers only: devices read this index through the inbox door and decode transfers alone
    /// (``IncomingTransfer``), so a stealth transfer aimed at a device's address cannot stall its inbox.
    private func indexIncoming(_ block: Block, height: Int64) throws(StoreError) {
        try incoming.add(block, height: height) {
            guard case .transfer(let transfer) = $0.body.payload else { return nil }
            return transfer.to
        }
    }

    private func indexSent(_ block: Block, height: Int64) throws(StoreError) {
        // Stored transactions were verified, so the sender key is a key.
        try sent.add(block, height: height) { Address(keyBytes: $0.body.sender) }
    }

    /// Files written before an index existed get it built once, from their blocks: every index whose marker is
    /// missing, in one pass, so converting a file reads each block once however many indexes it lacks.
    private func backfill(_ indexes: [(marker: String, index: (Block, Int64) throws(StoreError) -> Void)])
        throws(StoreError)
    {
        var missing: [(marker: String, index: (Block, Int64) throws(StoreError) -> Void)] = []
        for entry in indexes where try meta(entry.marker) == nil { missing.append(entry) }
        guard !missing.isEmpty else { return }
        try db.transaction { () throws(StoreError) in
            if let head = try headHeight() {
                var height: UInt64 = 0
                while height <= head {
                    guard let stored = try block(at: height) else {
                        throw StoreError(code: -1, message: "missing block \(height) while indexing")
                    }
                    for entry in missing { try entry.index(stored.finalized.block, Int64(height)) }
                    height += 1
                }
            }
            for entry in missing { try putMeta(entry.marker, [1]) }
        }
    }

    /// Where the transactions that `address` sent, or that paid or notified it, are, in blocks above `after` (nil:
    /// any), newest first, at most `limit`. Each index is read backwards and cut at `limit` before the three are
    /// merged, so a busy account's page costs at most `limit` rows per index, not its whole history.
    public func activity(of address: Address, after: UInt64? = nil, limit: Int) throws(StoreError)
        -> [(height: UInt64, position: Int)]
    {
        guard limit > 0 else { return [] }
        let above = after.map { Int64(min($0, UInt64(Int64.max))) } ?? -1
        var all: [(height: UInt64, position: Int)] = []
        for index in [incoming, sent, notified] { all += try index.latest(of: address, after: above, limit: limit) }
        all.sort { ($0.height, $0.position) > ($1.height, $1.position) }
        var found: [(height: UInt64, position: Int)] = []
        // A transfer to oneself is in two indexes and listed once.
        for location in all where found.last.map({ $0 != location }) ?? true {
            found.append(location)
            if found.count == limit { break }
        }
        return found
    }

    /// The height of the block with this hash, if it is stored.
    public func height(ofBlock hash: Bytes32) throws(StoreError) -> UInt64? {
        selectHeightByHash.bind(1, hash.bytes)
        defer { selectHeightByHash.reset() }
        return try selectHeightByHash.step() ? UInt64(selectHeightByHash.int64(0)) : nil
    }

    /// Every account and object, for rebuilding the in-memory state at open.
    public func loadState() throws(StoreError) -> StateChanges {
        var state = StateChanges(accounts: try loadAccounts())
        let stmt = try db.prepare("SELECT namespace, id, value FROM objects")
        defer { stmt.reset() }
        while try stmt.step() {
            let ns = stmt.int64(0)
            guard (0...255).contains(ns), let namespace = StateNamespace(rawValue: UInt8(ns)) else {
                throw StoreError(code: -1, message: "corrupt object row")
            }
            let value = stmt.blob(2)
            guard !value.isEmpty else { throw StoreError(code: -1, message: "empty object row") }
            state.objects[ObjectKey(namespace, stmt.blob(1))] = value
        }
        return state
    }

    private func loadAccounts() throws(StoreError) -> [Address: AccountState] {
        let stmt = try db.prepare("SELECT address, state FROM accounts")
        defer { stmt.reset() }
        var out: [Address: AccountState] = [:]
        while try stmt.step() {
            guard let raw = Bytes20(stmt.blob(0)), let state = try? AccountState(decoding: stmt.blob(1)) else {
                throw StoreError(code: -1, message: "corrupt account row")
            }
            out[Address(raw: raw)] = state
        }
        return out
    }
}

extension ByteReader {
    /// A whole buffer holding exactly one varint.
    mutating func readVarintValue() throws(CodecError) -> UInt64 {
        let v = try readVarint()
        try finish()
        return v
    }
}
