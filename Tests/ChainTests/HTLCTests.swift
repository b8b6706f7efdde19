import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Chain

/// Hash time-locked contracts through real blocks: claimed with the secret before the timeout, refunded after it,
/// every refusal with its own reason and nothing moved; a replica agrees on every state root, the supply stays
/// whole with open HTLCs counted, a node restarted with an HTLC open opens cleanly, and the status is proven.
final class HTLCTests: ReplicatedChainTestCase {

    var alice: PrivateKey { t.funded[0] }
    var bob: PrivateKey { t.funded[1] }
    let secret = Bytes32(w0: 11, w1: 22, w2: 33, w3: 44)
    var hashLock: Bytes32 { SHA256.hash(secret.bytes) }

    func plan(_ payload: TransactionPayload, sender: PrivateKey) -> HTLCError? {
        let overlay = StateOverlay(base: WorldStateProbe.world(of: node))
        let height = node.head.height + 1
        let from = TestChain.address(sender)
        do {
            switch payload {
            case .htlcLock(let l): _ = try HTLCRules.planLock(l, id: .zero, sender: from, height: height)
            case .htlcClaim(let c): _ = try HTLCRules.planClaim(c, sender: from, height: height, state: overlay)
            case .htlcRefund(let r): _ = try HTLCRules.planRefund(r, sender: from, height: height, state: overlay)
            default: XCTFail("not an HTLC payload")
            }
            return nil
        } catch { return error }
    }

    func lock(amount: UInt64 = 3_000_000, blocks: UInt64) throws -> SignedTransaction {
        try send(
            alice,
            .htlcLock(
                HTLCLock(
                    recipient: TestChain.address(bob), amount: amount, hashLock: hashLock,
                    expiryHeight: node.head.height + blocks)))
    }

    func testClaimedWithTheSecretBeforeTheTimeout() throws {
        let (aliceBefore, bobBefore) = (balance(alice), balance(bob))
        let locked = try lock(blocks: 5)
        try block()
        XCTAssertEqual(node.supply.escrowed, 3_000_000)
        XCTAssertEqual(balance(alice), aliceBefore - 3_000_000 - (try fee(locked)))
        let id = locked.id
        XCTAssertEqual(plan(.htlcClaim(HTLCClaim(lockID: id, preimage: hashLock)), sender: bob), .wrongPreimage)
        XCTAssertEqual(plan(.htlcClaim(HTLCClaim(lockID: id, preimage: secret)), sender: alice), .notRecipient)
        XCTAssertEqual(plan(.htlcRefund(HTLCRefund(lockID: id)), sender: alice), .refundTooEarly(expiryHeight: 5))
        XCTAssertEqual(plan(.htlcRefund(HTLCRefund(lockID: id)), sender: bob), .notSender)
        XCTAssertEqual(
            plan(.htlcClaim(HTLCClaim(lockID: Bytes32(w0: 1, w1: 1, w2: 1, w3: 1), preimage: secret)), sender: bob),
            .unknownHTLC)
        // A node that restarts with the HTLC open counts its amount and opens.
        node = try t.openNode()
        let claimed = try send(bob, .htlcClaim(HTLCClaim(lockID: id, preimage: secret)))
        try block()
        XCTAssertEqual(balance(bob), bobBefore + 3_000_000 - (try fee(claimed)))
        XCTAssertEqual(node.supply.escrowed, 0)
        let view = node.htlc(id)
        XCTAssertEqual(view.state?.status, .claimed)
        XCTAssertEqual(view.state?.preimage, secret)
        XCTAssertTrue(
            view.proof.verify(
                root: node.head.stateRoot, key: StateNamespace.htlcKey(id), valueHash: view.state?.valueHash))
        XCTAssertEqual(plan(.htlcClaim(HTLCClaim(lockID: id, preimage: secret)), sender: bob), .notOpen)
        XCTAssertEqual(replica.head.stateRoot, node.head.stateRoot)
    }

    func testRefundedAfterTheTimeoutAndNotClaimableThen() throws {
        XCTAssertEqual(
            plan(
                .htlcLock(
                    HTLCLock(recipient: TestChain.address(alice), amount: 1, hashLock: hashLock, expiryHeight: 9)),
                sender: alice), .sameParty)
        XCTAssertEqual(
            plan(
                .htlcLock(HTLCLock(recipient: TestChain.address(bob), amount: 1, hashLock: hashLock, expiryHeight: 1)),
                sender: alice), .expiryPassed(height: 1))
        let aliceBefore = balance(alice)
        let locked = try lock(blocks: 2)
        try block()
        try block()
        try block()  // height 3 > expiry 2
        XCTAssertEqual(
            plan(.htlcClaim(HTLCClaim(lockID: locked.id, preimage: secret)), sender: bob),
            .claimTooLate(expiryHeight: 2))
        let refunded = try send(alice, .htlcRefund(HTLCRefund(lockID: locked.id)))
        try block()
        XCTAssertEqual(node.htlc(locked.id).state?.status, .refunded)
        XCTAssertEqual(balance(alice), aliceBefore - (try fee(locked)) - (try fee(refunded)))
        XCTAssertEqual(node.supply.escrowed, 0)
        XCTAssertEqual(plan(.htlcRefund(HTLCRefund(lockID: locked.id)), sender: alice), .notOpen)
    }
}
