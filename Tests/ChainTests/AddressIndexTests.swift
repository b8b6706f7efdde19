import AmarsCodec
import CSQLite
import Foundation
import Ledger
import XCTest

@testable import Chain

/// The address indexes keep a row per address and block: these check that the rows are grouped, that reading
/// them still pages by transaction, and that files with the older row-per-transaction tables are converted.
final class AddressIndexTests: XCTestCase {
    private struct Fixture {
        let alice: Address
        let carol: Address
        /// Ids of the transactions paying carol, oldest first, with where they landed.
        var toCarol: [(height: UInt64, position: Int, id: Bytes32)] = []
        /// Every transaction alice sent, oldest first.
        var fromAlice: [(height: UInt64, position: Int, id: Bytes32)] = []
    }

    /// Block 1: alice pays carol three times and herself once, bob pays carol once. Block 2: bob pays carol.
    private func populate(_ t: TestChain) throws -> Fixture {
        let aliceKey = t.funded[0]
        let bobKey = t.funded[1]
        var f = Fixture(alice: TestChain.address(aliceKey), carol: TestChain.address(TestChain.key(9)))
        let node = try t.openNode()
        var first = (0..<UInt64(3)).map { t.transfer(from: aliceKey, to: f.carol, amount: 10 + $0, nonce: $0) }
        let toSelf = t.transfer(from: aliceKey, to: f.alice, amount: 1, nonce: 3)
        first.append(toSelf)
        first.append(t.transfer(from: bobKey, to: f.carol, amount: 7, nonce: 0))
        for tx in first { _ = try node.submit(tx) }
        let one = try node.produceBlock(timestamp: 1_700_000_001_000).block
        XCTAssertEqual(one.transactions.count, 5)
        let second = t.transfer(from: bobKey, to: f.carol, amount: 8, nonce: 1)
        _ = try node.submit(second)
        let two = try node.produceBlock(timestamp: 1_700_000_002_000).block
        for block in [one, two] {
            for (i, tx) in block.transactions.enumerated() {
                let location = (block.header.height, i, tx.id)
                if case .transfer(let transfer) = tx.body.payload, transfer.to == f.carol { f.toCarol.append(location) }
                if tx.body.sender == aliceKey.xOnlyPublicKey.bytes { f.fromAlice.append(location) }
            }
        }
        XCTAssertEqual(f.toCarol.count, 5)
        XCTAssertEqual(f.fromAlice.count, 4)
        return f
    }

    private func count(_ t: TestChain, _ sql: String) throws -> Int64 {
        var db: OpaquePointer?
        XCTAssertEqual(sqlite3_open(t.path("chain.sqlite"), &db), SQLITE_OK)
        defer { sqlite3_close(db) }
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw StoreError(code: -1, message: String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(stmt) }
        XCTAssertEqual(sqlite3_step(stmt), SQLITE_ROW)
        return sqlite3_column_int64(stmt, 0)
    }

    private func exec(_ t: TestChain, _ sql: String) {
        var db: OpaquePointer?
        XCTAssertEqual(sqlite3_open(t.path("chain.sqlite"), &db), SQLITE_OK)
        XCTAssertEqual(sqlite3_exec(db, sql, nil, nil, nil), SQLITE_OK, String(cString: sqlite3_errmsg(db)))
        sqlite3_close(db)
    }

    func testRowsAreGroupedByBlockAndReadBackByTransaction() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let f = try populate(t)
        let node = try t.openNode()

        // Carol's four payments in block 1 are one row; her payment in block 2 another.
        XCTAssertEqual(try count(t, "SELECT count(*) FROM incoming_blocks WHERE address = x'\(hex(f.carol))'"), 2)
        XCTAssertEqual(try count(t, "SELECT count(*) FROM sent_blocks WHERE address = x'\(hex(f.alice))'"), 1)

        let all = try node.incomingTransfers(to: f.carol, from: 0, limit: 10)
        XCTAssertEqual(all.map(\.transaction.id), f.toCarol.map(\.id))
        XCTAssertEqual(all.map(\.position), f.toCarol.map(\.position))
        // Paging resumes inside a block's row, and a limit cuts inside one.
        let third = f.toCarol[2]
        let page = try node.incomingTransfers(to: f.carol, from: third.height, position: third.position, limit: 2)
        XCTAssertEqual(page.map(\.transaction.id), f.toCarol[2..<4].map(\.id))
        let past = try node.incomingTransfers(
            to: f.carol, from: f.toCarol[3].height, position: f.toCarol[3].position + 1, limit: 10)
        XCTAssertEqual(past.map(\.transaction.id), [f.toCarol[4].id])
        XCTAssertEqual(try node.incomingTransfers(to: f.carol, from: 3, limit: 10).count, 0)
        XCTAssertEqual(try node.incomingTransfers(to: f.carol, from: 0, limit: .max).count, 5)
        XCTAssertEqual(try node.activity(of: f.carol, limit: .max).count, 5)

        // Alice's activity: what she sent, newest first, her transfer to herself once.
        let activity = try node.activity(of: f.alice, limit: 10)
        XCTAssertEqual(activity.map(\.transaction.id), f.fromAlice.reversed().map(\.id))
        XCTAssertEqual(
            try node.activity(of: f.alice, limit: 2).map(\.transaction.id), f.fromAlice.reversed()[0..<2].map(\.id))
        XCTAssertEqual(try node.activity(of: f.carol, after: 1, limit: 10).map(\.transaction.id), [f.toCarol[4].id])
        XCTAssertEqual(try node.activity(of: f.carol, limit: 10).count, 5)
    }

    /// A file from before the grouped rows: the old tables are dropped and the new ones built from the blocks.
    func testOlderRowPerTransactionTablesAreReplaced() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let f = try populate(t)
        exec(
            t,
            """
            DROP TABLE incoming_blocks; DROP TABLE sent_blocks; DROP TABLE notified_blocks;
            DELETE FROM meta WHERE key IN ('incoming-blocks', 'sent-blocks', 'notified-blocks');
            CREATE TABLE incoming(address BLOB NOT NULL, height INTEGER NOT NULL, position INTEGER NOT NULL,
                PRIMARY KEY(address, height, position)) WITHOUT ROWID;
            CREATE TABLE sent(address BLOB NOT NULL, height INTEGER NOT NULL, position INTEGER NOT NULL,
                PRIMARY KEY(address, height, position)) WITHOUT ROWID;
            INSERT INTO incoming VALUES (x'\(hex(f.carol))', 1, 0);
            INSERT INTO meta VALUES ('incoming-index', x'01');
            """)
        let node = try t.openNode()
        XCTAssertEqual(
            try node.incomingTransfers(to: f.carol, from: 0, limit: 10).map(\.transaction.id), f.toCarol.map(\.id))
        XCTAssertEqual(try node.activity(of: f.alice, limit: 10).count, 4)
        XCTAssertEqual(try count(t, "SELECT count(*) FROM sqlite_master WHERE name IN ('incoming', 'sent')"), 0)
        XCTAssertEqual(try count(t, "SELECT count(*) FROM meta WHERE key = 'incoming-index'"), 0)
    }

    /// A damaged row is reported, not read as other positions.
    func testDamagedRowIsAnError() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let f = try populate(t)
        for damaged in ["x''", "x'80'", "x'0302'", "x'0101'", "x'ffffffff0f'"] {
            exec(
                t, "UPDATE incoming_blocks SET positions = \(damaged) WHERE address = x'\(hex(f.carol))' AND height = 1"
            )
            let node = try t.openNode()
            XCTAssertThrowsError(try node.incomingTransfers(to: f.carol, from: 0, limit: 10), damaged) {
                XCTAssertTrue("\($0)".contains("corrupt incoming_blocks row at height 1"), "\($0)")
            }
        }
        XCTAssertEqual(AddressIndex.positions([0, 2, 0x85, 0x01]), [0, 2, 133])
        XCTAssertNil(AddressIndex.positions([]))
    }

    private func hex(_ address: Address) -> String {
        address.raw.bytes.map { String(format: "%02x", $0) }.joined()
    }
}
