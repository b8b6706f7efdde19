import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Chain

/// What the rule tests through real blocks share (escrows, certificates, HTLCs): a validator node and a
/// replica that imports each block and must agree on it, transactions signed with per-sender nonces, and the
/// supply checked whole after every block.
class ReplicatedChainTestCase: XCTestCase {
    var t: TestChain!
    var node: ChainNode!
    var replica: ChainNode!
    var nonces: [Address: UInt64] = [:]
    var timestamp: UInt64 = 1_700_000_001_000

    override func setUpWithError() throws {
        t = TestChain(epochLength: 50)
        node = try t.openNode()
        replica = try t.openNode("replica.sqlite", validator: false)
    }

    override func tearDown() { t.cleanup() }

    @discardableResult
    func send(_ key: PrivateKey, _ payload: TransactionPayload) throws -> SignedTransaction {
        let a = TestChain.address(key)
        let body = TransactionBody(
            genesis: node.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonces[a, default: 0],
            maxFeePerUnit: 10, tipPerUnit: 1, payload: payload)
        let tx = SignedTransaction(body: body, signer: key)
        _ = try node.submit(tx)
        nonces[a, default: 0] += 1
        return tx
    }

    /// The next block, `seconds` after the last; the replica must reach the same head and the supply stay whole.
    @discardableResult
    func block(advance seconds: UInt64 = 1) throws -> FinalizedBlock {
        timestamp += seconds * 1000
        let b = try node.produceBlock(timestamp: timestamp)
        try replica.importBlock(b)
        XCTAssertEqual(replica.head, node.head)
        let s = node.supply
        XCTAssertEqual(
            s.inAccounts + s.staked + s.escrowed + s.burned, Amount.totalSupply, "height \(b.block.header.height)")
        return b
    }

    func balance(_ key: PrivateKey) -> UInt64 { node.account(TestChain.address(key)).state.balance }

    func fee(_ tx: SignedTransaction) throws -> UInt64 {
        guard case .included(_, _, let receipt) = try node.status(of: tx.id) else {
            XCTFail("not included")
            return 0
        }
        XCTAssertEqual(receipt.status, .success)
        return receipt.feePaid
    }
}
