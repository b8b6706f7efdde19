import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import XCTest

/// SIGKILL `amarsd` (a real process on a real SQLite file) at random instants while it produces blocks
/// full of transfers, many times. Each restart must reopen at or after the last block the API reported,
/// with that block unchanged; finally a replica that never crashed re-executes every stored block from
/// genesis and must reach the same state root at every height.
final class CrashRecoveryTests: XCTestCase {
    func testSigkillDuringBlockProductionNeverLosesACommittedBlock() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Genesis: a validator and senders funded through the app-user incentive category.
        let validator = try PrivateKey(bytes: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4))
        try KeyFile.write(validator, to: dir.appendingPathComponent("keys/validator.key").path)
        let senders = (0..<8).map { try! PrivateKey(bytes: Bytes32(w0: 5, w1: 0, w2: 0, w3: UInt64($0 + 1))) }
        var allocations: [Genesis.Allocation] = []
        for c in Genesis.Category.allCases {
            let share = c.amount / UInt64(senders.count)
            for (i, s) in senders.enumerated() {
                let amount = i == 0 ? c.amount - share * UInt64(senders.count - 1) : share
                allocations.append(.init(category: c, address: Address(publicKey: s.xOnlyPublicKey), amount: amount))
            }
        }
        let genesis = Genesis(
            chainID: 31, chainName: "crash", timestamp: 1_700_000_000_000, epochLength: 5, initialBaseFee: 1,
            validators: [.init(key: validator.xOnlyPublicKey.bytes, weight: 1)], allocations: allocations, burned: [:])
        try genesis.jsonData().write(to: dir.appendingPathComponent("genesis.json"))

        var rng = SystemRandomNumberGenerator()
        var lastSeen: (height: UInt64, hash: String)?
        var kills = 0
        for cycle in 0..<20 {
            let daemon = try Harness.startDaemon(data: dir, blockInterval: 40)
            let client = try HTTPClient(baseURL: "http://127.0.0.1:\(daemon.port)", timeoutSeconds: 5)
            let head = try Harness.json(client, "/v1/head")
            let height = (head["height"] as! NSNumber).uint64Value
            if let seen = lastSeen {
                XCTAssertGreaterThanOrEqual(height, seen.height, "cycle \(cycle): reopened below a reported block")
                let block = try Harness.json(client, "/v1/blocks/\(seen.height)")
                XCTAssertEqual(block["hash"] as? String, seen.hash, "cycle \(cycle): a reported block changed")
            }
            // Keep it busy: transfers from every sender, then kill at a random instant.
            let killAt = Date().addingTimeInterval(Double.random(in: 0.2...0.9, using: &rng))
            while Date() < killAt {
                for s in senders {
                    let a = Address(publicKey: s.xOnlyPublicKey)
                    guard let acct = try? Harness.json(client, "/v1/accounts/\(a.bech32)"),
                        let nonce = (acct["nextNonce"] as? NSNumber)?.uint64Value
                    else { continue }
                    let body = TransactionBody(
                        genesis: genesis.header.hash, sender: s.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: 50,
                        tipPerUnit: 1,
                        payload: .transfer(
                            Transfer(
                                to: Address(publicKey: senders.randomElement()!.xOnlyPublicKey),
                                amount: 1 + UInt64.random(in: 0..<1000))))
                    _ = try? client.post(
                        "/v1/tx", body: SignedTransaction(body: body, signer: s).encoded,
                        contentType: "application/octet-stream")
                }
                if let h = try? Harness.json(client, "/v1/head"), let height = (h["height"] as? NSNumber)?.uint64Value,
                    let hash = h["hash"] as? String
                {
                    lastSeen = (height, hash)
                }
            }
            kill(daemon.process.processIdentifier, SIGKILL)
            daemon.process.waitUntilExit()
            kills += 1
        }
        XCTAssertEqual(kills, 20)
        let seen = try XCTUnwrap(lastSeen)
        XCTAssertGreaterThan(seen.height, 10, "the node should have produced blocks between kills")

        // The crashed node's file: reopen in-process (its own root check runs), then replay every block into a
        // replica that never crashed.
        let crashed = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path))
        let replica = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("replica.sqlite").path))
        let top = crashed.head.height
        XCTAssertGreaterThanOrEqual(top, seen.height)
        var transfers = 0
        for h in 1...top {
            let stored = try XCTUnwrap(try crashed.block(at: h))
            transfers += stored.finalized.block.transactions.count
            try replica.importBlock(stored.finalized)
            XCTAssertEqual(replica.head.stateRoot, stored.finalized.block.header.stateRoot, "height \(h)")
        }
        XCTAssertEqual(replica.head, crashed.head)
        XCTAssertEqual(crashed.supply.inAccounts, Amount.totalSupply)
        XCTAssertGreaterThan(transfers, 50, "blocks should have carried transfers")
    }
}
