import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import LightClient

/// The payee's reading of a signed transfer must agree with the full decoder on every field and the id, and must
/// refuse what is not a transfer or not whole.
final class IncomingTransferTests: XCTestCase {
    let payer = try! PrivateKey(bytes: Bytes32(w0: 3, w1: 1, w2: 4, w3: 1))
    let payee = Address(raw: Bytes20([UInt8](repeating: 0xA7, count: 20))!)

    func signed(_ payload: TransactionPayload, nonce: UInt64 = 7) -> SignedTransaction {
        let body = TransactionBody(
            genesis: Bytes32(w0: 4_242, w1: 0, w2: 0, w3: 1), sender: payer.xOnlyPublicKey.bytes, nonce: nonce,
            maxFeePerUnit: 300, tipPerUnit: 2,
            payload: payload)
        return SignedTransaction(body: body, signer: payer)
    }

    func testAgreesWithTheFullDecoderAndLeavesTheReaderAfterTheTransaction() throws {
        for (amount, memo) in [
            (UInt64(1), [UInt8]()), (1_250_000, [1, 2, 3]), (UInt64.max, Array(repeating: 9, count: 32)),
        ] {
            let tx = signed(.transfer(Transfer(to: payee, amount: amount, memo: memo)))
            var reader = ByteReader(tx.encoded + [0xEE])
            let read = try IncomingTransfer(reading: &reader)
            XCTAssertEqual(read.id, tx.id)
            XCTAssertEqual(read.genesis, Bytes32(w0: 4_242, w1: 0, w2: 0, w3: 1))
            XCTAssertEqual(read.sender, payer.xOnlyPublicKey.bytes)
            XCTAssertEqual(read.nonce, 7)
            XCTAssertEqual(read.to, payee)
            XCTAssertEqual(read.amount, amount)
            XCTAssertEqual(try reader.readU8(), 0xEE, "the reader stops right after the signature")
        }
    }

    func testRefusesOtherKindsTruncationsAndBadFields() throws {
        let stake = signed(.stake(Stake(candidate: payee, amount: 5, durationEpochs: 3, autoStake: false)))
        var reader = ByteReader(stake.encoded)
        XCTAssertThrowsError(try IncomingTransfer(reading: &reader)) {
            XCTAssertEqual($0 as? CodecError, .unknownTag(stake.body.payload.tag))
        }
        let transfer = signed(.transfer(Transfer(to: payee, amount: 10))).encoded
        for cut in 0..<transfer.count {
            var r = ByteReader(Array(transfer[0..<cut]))
            XCTAssertThrowsError(try IncomingTransfer(reading: &r), "cut at \(cut)")
        }
        var badVersion = transfer
        badVersion[0] = TransactionBody.currentVersion + 1
        var r = ByteReader(badVersion)
        XCTAssertThrowsError(try IncomingTransfer(reading: &r))
        // Any byte of the body changed: still readable perhaps, but never the id of the original.
        var whole = ByteReader(transfer)
        let original = try IncomingTransfer(reading: &whole)
        for i in 1..<(transfer.count - 64) {
            var changed = transfer
            changed[i] ^= 0x01
            var reader = ByteReader(changed)
            if let read = try? IncomingTransfer(reading: &reader) {
                XCTAssertNotEqual(read.id, original.id, "byte \(i)")
            }
        }
    }
}
