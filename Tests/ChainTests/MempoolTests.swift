import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Chain

/// Every refusal has its reason, and a refused transaction leaves the pool and the chain as they were.
final class MempoolTests: XCTestCase {
    var t: TestChain!
    var node: ChainNode!
    var alice: PrivateKey { t.funded[0] }
    let bob = TestChain.address(TestChain.key(9))

    override func setUpWithError() throws {
        t = TestChain()
        node = try t.openNode(limits: .init(maxTransactions: 6, maxPerSender: 4))
    }

    override func tearDown() { t.cleanup() }

    func assertRefused(
        _ tx: SignedTransaction, _ expected: TransactionError, file: StaticString = #filePath, line: UInt = #line
    ) {
        let pending = node.pendingCount
        let head = node.head
        XCTAssertThrowsError(try node.submit(tx), file: file, line: line) { error in
            XCTAssertEqual(error as? TransactionError, expected, file: file, line: line)
        }
        XCTAssertEqual(node.pendingCount, pending, "pool changed", file: file, line: line)
        XCTAssertEqual(node.head, head, file: file, line: line)
    }

    func testNonceRulesReplacementAndRefusals() throws {
        _ = try node.submit(t.transfer(from: alice, to: bob, amount: 1, nonce: 0))
        assertRefused(t.transfer(from: alice, to: bob, amount: 1, nonce: 0), .alreadyKnown)
        assertRefused(t.transfer(from: alice, to: bob, amount: 1, nonce: 5), .nonceGap(expected: 1, got: 5))
        // Same nonce, different content, not 10% more: refused; 10% more: replaces.
        assertRefused(
            t.transfer(from: alice, to: bob, amount: 2, nonce: 0, maxFee: 10, tip: 1), .replacementUnderpriced)
        let replacement = t.transfer(from: alice, to: bob, amount: 2, nonce: 0, maxFee: 11, tip: 2)
        _ = try node.submit(replacement)
        XCTAssertEqual(node.pendingCount, 1)
        _ = try node.produceBlock(timestamp: 1_700_000_001_000)
        XCTAssertEqual(node.account(bob).state.balance, 2, "the replacement, not the original, executed")
        assertRefused(t.transfer(from: alice, to: bob, amount: 1, nonce: 0), .nonceReplayed(expected: 1, got: 0))
        assertRefused(
            t.transfer(from: alice, to: bob, amount: 1, nonce: 1, genesis: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)),
            .wrongChain(expected: node.genesisBlockHash, got: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)))
        assertRefused(
            t.transfer(from: alice, to: bob, amount: 1, nonce: 1, maxFee: 0, tip: 0),
            .feeBelowBaseFee(baseFee: 1, maxFeePerUnit: 0))
        // Bad signature: sign, then change the body.
        var forged = t.transfer(from: alice, to: bob, amount: 1, nonce: 1)
        if case .transfer(var p) = forged.body.payload { p.amount = 1_000_000; forged.body.payload = .transfer(p) }
        assertRefused(forged, .badSignature)
        // Not a valid x-only key (x = 5 is not on the curve... try until one is not).
        var badKey = t.transfer(from: alice, to: bob, amount: 1, nonce: 1)
        badKey.body.sender = Bytes32(w0: UInt64.max, w1: UInt64.max, w2: UInt64.max, w3: UInt64.max)
        assertRefused(badKey, .invalidSenderKey)
        // A refund of an HTLC that does not exist is judged against the state at the door.
        var htlc = t.transfer(from: alice, to: bob, amount: 1, nonce: 1)
        htlc.body.payload = .htlcRefund(HTLCRefund(lockID: .zero))
        htlc = SignedTransaction(body: htlc.body, signer: alice)
        assertRefused(htlc, .htlc(.unknownHTLC))
    }

    func testFundsAreCheckedForTheWholeRunAndOverflow() throws {
        let poor = TestChain.key(500)
        _ = try node.submit(t.transfer(from: alice, to: TestChain.address(poor), amount: 100_000, nonce: 0))
        _ = try node.produceBlock(timestamp: 1_700_000_001_000)
        let poorBalance = node.account(TestChain.address(poor)).state.balance
        XCTAssertEqual(poorBalance, 100_000)
        let tx0 = t.transfer(from: poor, to: bob, amount: 60_000, nonce: 0)
        _ = try node.submit(tx0)
        let cost0 = 60_000 + FeeSchedule.standard.units(encodedSize: tx0.encoded.count) * 10
        let tx1 = t.transfer(from: poor, to: bob, amount: 60_000, nonce: 1)
        let cost1 = 60_000 + FeeSchedule.standard.units(encodedSize: tx1.encoded.count) * 10
        assertRefused(tx1, .insufficientBalance(needed: cost0 + cost1, available: poorBalance))
        assertRefused(t.transfer(from: poor, to: bob, amount: UInt64.max - 10, nonce: 1), .amountOverflow)
        assertRefused(
            t.transfer(from: poor, to: bob, amount: 10, nonce: 1, maxFee: UInt64.max, tip: 1), .amountOverflow)
    }

    func testBoundedPoolEvictsCheapestAndPerSenderCap() throws {
        for n in 0..<4 { _ = try node.submit(t.transfer(from: alice, to: bob, amount: 1, nonce: UInt64(n), maxFee: 5)) }
        assertRefused(t.transfer(from: alice, to: bob, amount: 1, nonce: 4), .senderQueueFull)
        let carol = t.funded[1]
        _ = try node.submit(t.transfer(from: carol, to: bob, amount: 1, nonce: 0, maxFee: 5))
        _ = try node.submit(t.transfer(from: carol, to: bob, amount: 1, nonce: 1, maxFee: 5))
        XCTAssertEqual(node.pendingCount, 6)
        let dave = t.funded[2]
        // Full: a transaction paying no more than the cheapest tail is refused ...
        assertRefused(t.transfer(from: dave, to: bob, amount: 1, nonce: 0, maxFee: 5), .mempoolFull)
        // ... one paying more evicts a cheapest tail (ties broken by id), keeping runs gap-free.
        _ = try node.submit(t.transfer(from: dave, to: bob, amount: 1, nonce: 0, maxFee: 6, tip: 3))
        XCTAssertEqual(node.pendingCount, 6)
        let block = try node.produceBlock(timestamp: 1_700_000_001_000)
        XCTAssertEqual(block.block.transactions.count, 6)
        // Highest price first across senders, nonce order within one.
        XCTAssertEqual(block.block.transactions.first?.body.sender, dave.xOnlyPublicKey.bytes)
        var lastNonce: [Bytes32: UInt64] = [:]
        for tx in block.block.transactions {
            if let prev = lastNonce[tx.body.sender] { XCTAssertEqual(tx.body.nonce, prev + 1) }
            lastNonce[tx.body.sender] = tx.body.nonce
        }
        XCTAssertEqual(node.pendingCount, 0)
    }

    func testMalformedBytesAreRefusedWithTheCodecReason() throws {
        let good = t.transfer(from: alice, to: bob, amount: 1, nonce: 0).encoded
        XCTAssertThrowsError(try node.submit(encoded: Array(good.dropLast()))) {
            XCTAssertEqual($0 as? TransactionError, .malformed(.truncated))
        }
        XCTAssertThrowsError(try node.submit(encoded: good + [0])) {
            XCTAssertEqual($0 as? TransactionError, .malformed(.trailingBytes(count: 1)))
        }
        XCTAssertThrowsError(try node.submit(encoded: [])) {
            XCTAssertEqual($0 as? TransactionError, .malformed(.truncated))
        }
        XCTAssertEqual(node.pendingCount, 0)
    }
}
