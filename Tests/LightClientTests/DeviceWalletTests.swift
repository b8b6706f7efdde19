import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

final class DeviceWalletTests: XCTestCase {
    let key = SyntheticChain.accountKey(0)
    let recipient = SyntheticChain.address(1)
    let genesis = Bytes32(w0: 42, w1: 0, w2: 0, w3: 42)

    func testTransferIsSignedByTheDeviceAndDecodes() throws {
        let wallet = DeviceWallet(key: key, nextNonce: 7)
        let tx = try wallet.transfer(
            genesis: genesis, to: recipient, amount: 1_500, maxFeePerUnit: 30, tipPerUnit: 2,
            memo: [0x6C, 0x6F, 0x63, 0x6B],
            auxRandom: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4))
        let verified = try VerifiedTransaction(tx)
        XCTAssertEqual(verified.senderAddress, wallet.address)
        XCTAssertEqual(tx.body.genesis, genesis)
        XCTAssertEqual(tx.body.nonce, 7)
        XCTAssertEqual(tx.body.maxFeePerUnit, 30)
        XCTAssertEqual(tx.body.tipPerUnit, 2)
        XCTAssertEqual(
            tx.body.payload, .transfer(Transfer(to: recipient, amount: 1_500, memo: [0x6C, 0x6F, 0x63, 0x6B])))
        XCTAssertEqual(try SignedTransaction(decoding: tx.encoded), tx)
        // A changed body no longer verifies.
        var changed = tx
        changed.body.nonce += 1
        XCTAssertThrowsError(try VerifiedTransaction(changed))
    }

    func testNonceAdvancesOnlyWhenAccepted() throws {
        var wallet = DeviceWallet(key: key, nextNonce: 0)
        let first = try wallet.transfer(genesis: genesis, to: recipient, amount: 1, maxFeePerUnit: 10, tipPerUnit: 1)
        // Not accepted (lost on the radio): signing again reuses the nonce.
        let retry = try wallet.transfer(genesis: genesis, to: recipient, amount: 1, maxFeePerUnit: 12, tipPerUnit: 1)
        XCTAssertEqual(first.body.nonce, 0)
        XCTAssertEqual(retry.body.nonce, 0)
        XCTAssertEqual(wallet.nextNonce, 0)
        try wallet.markAccepted(retry)
        XCTAssertEqual(wallet.nextNonce, 1)
        // A duplicate acknowledgement cannot skip a nonce.
        XCTAssertThrowsError(try wallet.markAccepted(retry)) {
            XCTAssertEqual($0 as? WalletError, .notNextTransaction(expectedNonce: 1, got: 0))
        }
        XCTAssertEqual(wallet.nextNonce, 1)
        // Nor can someone else's transaction with the right nonce.
        let stranger = try DeviceWallet(key: SyntheticChain.accountKey(3), nextNonce: 1).transfer(
            genesis: genesis, to: recipient, amount: 1, maxFeePerUnit: 10, tipPerUnit: 1)
        XCTAssertThrowsError(try wallet.markAccepted(stranger))
        XCTAssertEqual(wallet.nextNonce, 1)
        let second = try wallet.transfer(genesis: genesis, to: recipient, amount: 2, maxFeePerUnit: 10, tipPerUnit: 1)
        XCTAssertEqual(second.body.nonce, 1)
        try wallet.markAccepted(second)
        XCTAssertEqual(wallet.nextNonce, 2)
        // A verified account state resets it (e.g. after pending transactions were dropped).
        wallet.resync(verifiedAccount: AccountState(balance: 10, nonce: 1))
        XCTAssertEqual(wallet.nextNonce, 1)
    }

    func testInvalidTransfersAreRefusedBeforeSigning() {
        let wallet = DeviceWallet(key: key, nextNonce: 0)
        XCTAssertThrowsError(
            try wallet.transfer(genesis: genesis, to: recipient, amount: 0, maxFeePerUnit: 10, tipPerUnit: 1)
        ) {
            XCTAssertEqual($0 as? WalletError, .zeroAmount)
        }
        XCTAssertThrowsError(
            try wallet.transfer(genesis: genesis, to: recipient, amount: 5, maxFeePerUnit: 10, tipPerUnit: 11)
        ) {
            XCTAssertEqual($0 as? WalletError, .tipAboveFeeCap)
        }
        let longMemo = [UInt8](repeating: 0x61, count: Caps.memoBytes + 1)
        XCTAssertThrowsError(
            try wallet.transfer(
                genesis: genesis, to: recipient, amount: 5, maxFeePerUnit: 10, tipPerUnit: 1, memo: longMemo)
        ) { XCTAssertEqual($0 as? WalletError, .memoTooLong) }
    }
}
