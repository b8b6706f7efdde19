import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger
import XCTest

@testable import PaymentCodes

/// The relayable payment code's notification: BIP47's masking between the published Alice and Bob wallets with
/// the hash lock as the mask's key; only Bob unmasks it, and only he and Alice can compute the preimage that opens
/// the relay's condition, new with each designated key; a changed chain code or hash lock is refused.
final class RelayedNotificationTests: XCTestCase {
    func testOnlyTheReceiverUnmasksItAndLearnsThePreimage() throws {
        let v = try PaymentCodeVectorTests.bip47()
        let alice = try PaymentCodeKeys(seed: try hex(v["alice.seed"]), coinType: 0)
        let bob = try PaymentCodeKeys(seed: try hex(v["bob.seed"]), coinType: 0)
        let carol = try PaymentCodeKeys(seed: [UInt8](repeating: 3, count: 32))
        let designated = try PrivateKey(bytes: Bytes32(w0: 5, w1: 6, w2: 7, w3: 8))
        let notification = try RelayedNotification(code: alice.code, designated: designated, receiver: bob.code)
        XCTAssertEqual(notification.to, bob.code.notificationAddress)
        // The lock comes from the ECDH point, which only Alice and Bob can compute, and Alice's code; not from
        // anything public (her code's chain code, say).
        let shared = designated.sharedX(try bob.code.key(at: 0))
        XCTAssertEqual(
            notification.hashLock,
            SHA256.hash(RelayedNotification.preimage(shared: shared, code: alice.code).bytes))
        XCTAssertNotEqual(notification.hashLock, SHA256.hash(SHA256.hash(alice.code.chainCode.bytes).bytes))
        let another = try RelayedNotification(
            code: alice.code, designated: try PrivateKey(bytes: Bytes32(w0: 5, w1: 6, w2: 7, w3: 9)),
            receiver: bob.code)
        XCTAssertNotEqual(another.hashLock, notification.hashLock, "a fresh designated key, a fresh secret")
        XCTAssertNotEqual(notification.maskedCode, alice.code.binary, "the code travels masked")

        let (payer, preimage) = try notification.unmask(notificationKey: try bob.key(at: 0))
        XCTAssertEqual(payer, alice.code)
        XCTAssertEqual(SHA256.hash(preimage.bytes), notification.hashLock)
        // A designated key with odd y gives the same shared x: any fresh key works.
        var odd = 1 as UInt64
        while (try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: odd))).publicKey.parityPrefix != 3 { odd += 1 }
        let fromOdd = try RelayedNotification(
            code: alice.code, designated: try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: odd)),
            receiver: bob.code)
        XCTAssertEqual(try fromOdd.unmask(notificationKey: try bob.key(at: 0)).payer, alice.code)

        XCTAssertThrowsError(try notification.unmask(notificationKey: try carol.key(at: 0)), "not Carol's")
        var changedChainCode = notification
        changedChainCode.maskedCode[40] ^= 1
        XCTAssertThrowsError(try changedChainCode.unmask(notificationKey: try bob.key(at: 0))) {
            XCTAssertEqual($0 as? PaymentCodeError, .relayHashMismatch)
        }
        var changedLock = notification
        changedLock.hashLock = SHA256.hash([1])
        XCTAssertThrowsError(try changedLock.unmask(notificationKey: try bob.key(at: 0)))
        var badKey = notification
        badKey.designated = Bytes32(w0: .max, w1: .max, w2: .max, w3: .max)
        XCTAssertThrowsError(try badKey.unmask(notificationKey: try bob.key(at: 0))) {
            XCTAssertEqual($0 as? PaymentCodeError, .notificationUnreadable(.notOnCurve))
        }
    }

    func testARelayMessageHasOneEncoding() throws {
        let alice = try PaymentCodeKeys(seed: [UInt8](repeating: 1, count: 32))
        let bob = try PaymentCodeKeys(seed: [UInt8](repeating: 2, count: 32))
        let notification = try RelayedNotification(
            code: alice.code, designated: try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 9)),
            receiver: bob.code)
        let sender = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 1, w3: 1))
        let update = ChannelUpdate(
            channelID: Bytes32(w0: 4, w1: 4, w2: 4, w3: 4), paid: 0,
            conditions: [ChannelCondition(hashLock: notification.hashLock, amount: 20_000, expiryHeight: 300)],
            sender: sender)
        let message = RelayMessage(update: update, notification: notification)
        XCTAssertEqual(message.condition?.amount, 20_000)
        XCTAssertEqual(try RelayMessage(decoding: message.encoded), message)
        XCTAssertThrowsError(try RelayMessage(decoding: Array(message.encoded.dropLast())))
        XCTAssertThrowsError(try RelayMessage(decoding: message.encoded + [0]))
        let unrelated = RelayMessage(
            update: ChannelUpdate(channelID: update.channelID, paid: 5, sender: sender), notification: notification)
        XCTAssertNil(unrelated.condition, "an update without the notification's lock pays no relay")
    }
}
