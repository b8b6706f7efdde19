import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

@testable import Chain

/// The portable light client against a real node's chain: it trusts only the genesis hash, follows every
/// checkpoint the node serves, then checks a transfer's inclusion and the recipient's balance itself.
final class LightClientSyncTests: XCTestCase {
    func testLightClientFollowsTheNodesCheckpointsAndVerifiesAPayment() throws {
        let t = TestChain(epochLength: 5)
        defer { t.cleanup() }
        let node = try t.openNode()
        let device = TestChain.key(4242)
        let deviceAddress = TestChain.address(device)
        var paymentID: Bytes32?
        for i in 0..<23 {
            if i == 20 {
                paymentID = try node.submit(t.transfer(from: t.funded[4], to: deviceAddress, amount: 7_000_000, nonce: 0))
            }
            _ = try node.produceBlock(timestamp: 1_700_000_000_000 + UInt64(i) * 1000)
        }
        // Anchor: the genesis header, trusted by its hash alone.
        let genesisHeader = try XCTUnwrap(node.block(at: 0)).finalized.block.header
        var trusted = try TrustedState.anchored(
            header: genesisHeader, committee: t.genesis.committee(epoch: 0), epochLength: t.genesis.epochLength,
            trustedHash: genesisHeader.hash)
        // Every checkpoint, through their canonical encodings (what a device receives).
        let checkpoints = try node.checkpoints(from: 0, limit: 100)
        XCTAssertEqual(checkpoints.count, 4)
        for c in checkpoints {
            trusted = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: try Checkpoint(decoding: c.encoded))
        }
        XCTAssertEqual(trusted.epoch, 4)
        XCTAssertEqual(trusted.height, 20)
        // A replayed checkpoint leaves the trusted state unchanged.
        XCTAssertThrowsError(try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: checkpoints[0]))

        // The payment (block 21, epoch 4): its header verified with the trusted committee, then the inclusion proof.
        let id = try XCTUnwrap(paymentID)
        let inclusion = try XCTUnwrap(try node.inclusionProof(of: id))
        let verified = try HeaderVerifier.verify(
            trusted: trusted, header: inclusion.block.block.header, certificate: inclusion.block.certificate)
        try ProofVerifier.verifyTransaction(id: id, proof: inclusion.proof, in: verified)
        XCTAssertEqual(inclusion.receipt.status, .success)
        // The balance, against the head's state root once the head is verified too.
        let view = node.account(deviceAddress)
        let head = try XCTUnwrap(node.block(at: view.height)).finalized
        let verifiedHead = try HeaderVerifier.verify(trusted: trusted, header: head.block.header, certificate: head.certificate)
        let state = try ProofVerifier.verifyAccount(view.state, of: deviceAddress, proof: view.proof, in: verifiedHead)
        XCTAssertEqual(state.balance, 7_000_000)
        // A lie about the balance fails against the same proof.
        var inflated = view.state
        inflated.balance += 1
        XCTAssertThrowsError(
            try ProofVerifier.verifyAccount(inflated, of: deviceAddress, proof: view.proof, in: verifiedHead))
    }
}
