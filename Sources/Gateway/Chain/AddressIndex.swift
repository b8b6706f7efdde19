import AmarsCodec
import Ledger

/// Where one kind of address appears in the chain (paid by a transfer, sender, notified): a row per address and
/// block, holding the positions of that block's transactions that name the address.
///
/// A row per transaction was two thirds of a block's index writes, each a B-tree insert at a random place: with
/// 5,000 transfers a block that was 10,000 inserts and, since random inserts dirty most pages, several megabytes
/// of write-ahead log. A terminal paid many times in a block, or a device sending several, now costs one row.
final class AddressIndex {
    private let insert: SQLiteStatement
    private let ascending: SQLiteStatement
    private let descending: SQLiteStatement
    private let table: String

    init(_ db: SQLiteDatabase, table: String) throws(StoreError) {
        self.table = table
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS \(table)(
                address BLOB NOT NULL,
                height INTEGER NOT NULL,
                positions BLOB NOT NULL,
                PRIMARY KEY(address, height)
            ) WITHOUT ROWID;
            """)
        insert = try db.prepare("INSERT INTO \(table)(address, height, positions) VALUES (?1, ?2, ?3)")
        ascending = try db.prepare(
            "SELECT height, positions FROM \(table) WHERE address = ?1 AND height >= ?2 ORDER BY height LIMIT ?3")
        descending = try db.prepare(
            "SELECT height, positions FROM \(table) WHERE address = ?1 AND height > ?2 ORDER BY height DESC LIMIT ?3")
    }

    /// Adds the rows of `block`: each transaction that `address` names an address of, grouped by that address.
    func add(_ block: Block, height: Int64, address: (SignedTransaction) -> Address?) throws(StoreError) {
        var named: [(address: Address, position: Int)] = []
        for (i, tx) in block.transactions.enumerated() {
            if let a = address(tx) { named.append((a, i)) }
        }
        named.sort { $0.address.raw != $1.address.raw ? $0.address.raw < $1.address.raw : $0.position < $1.position }
        var start = 0
        while start < named.count {
            var positions = ByteWriter(capacity: 8)
            var end = start
            while end < named.count, named[end].address == named[start].address {
                positions.writeVarint(UInt64(named[end].position))
                end += 1
            }
            insert.bind(1, named[start].address.raw.bytes)
            insert.bind(2, height)
            insert.bind(3, positions.bytes)
            try insert.run()
            start = end
        }
    }

    /// From position `position` of block `from` on, oldest first, at most `limit`.
    func locations(of address: Address, from: UInt64, position: Int, limit: Int) throws(StoreError)
        -> [(height: UInt64, position: Int)]
    {
        guard limit > 0 else { return [] }
        // A row holds at least one position, so `limit` rows are enough, plus the first, which may hold only
        // positions before `position`.
        let rows = try read(
            ascending, address: address, height: Int64(min(from, UInt64(Int64.max))), rows: min(limit, 1 << 30) + 1)
        var found: [(height: UInt64, position: Int)] = []
        for (height, positions) in rows {
            for p in positions where height > from || p >= position {
                found.append((height, p))
                if found.count == limit { return found }
            }
        }
        return found
    }

    /// In blocks above `after` (-1: any), newest first, at most `limit`.
    func latest(of address: Address, after: Int64, limit: Int) throws(StoreError)
        -> [(height: UInt64, position: Int)]
    {
        guard limit > 0 else { return [] }
        var found: [(height: UInt64, position: Int)] = []
        for (height, positions) in try read(descending, address: address, height: after, rows: limit) {
            for p in positions.reversed() {
                found.append((height, p))
                if found.count == limit { return found }
            }
        }
        return found
    }

    private func read(_ select: SQLiteStatement, address: Address, height: Int64, rows: Int) throws(StoreError)
        -> [(height: UInt64, positions: [Int])]
    {
        select.bind(1, address.raw.bytes)
        select.bind(2, height)
        select.bind(3, Int64(rows))
        defer { select.reset() }
        var out: [(height: UInt64, positions: [Int])] = []
        while try select.step() {
            let height = select.int64(0)
            guard height >= 0, let positions = Self.positions(select.blob(1)) else {
                throw StoreError(code: -1, message: "corrupt \(table) row at height \(height)")
            }
            out.append((UInt64(height), positions))
        }
        return out
    }

    /// A row's positions: at least one, strictly ascending, each a block position; nil for anything else.
    static func positions(_ bytes: [UInt8]) -> [Int]? {
        var reader = ByteReader(bytes)
        var out: [Int] = []
        while reader.remaining > 0 {
            guard let p = try? reader.readVarint(), p <= UInt64(Int32.max), out.last.map({ UInt64($0) < p }) ?? true
            else { return nil }
            out.append(Int(p))
        }
        return out.isEmpty ? nil : out
    }
}
