import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger
import XCTest

@testable import PaymentCodes

/// Stealth addresses: the tweak pinned to BIP47's published one-time keys, the three parties' views of one
/// payment, and every malformed address, view key, transaction and announcement list refused with its reason.
final class StealthAddressTests: XCTestCase {
    /// P = B + SHA256(x(r·A))·G is BIP47's B'_i = B_i + SHA256(x(a_0·B_i))·G when A = B = B_i and r = a_0: with
    /// Alice's notification key as the ephemeral key, Bob's i-th key as both scan and spend key, the payment goes
    /// to the published address of Bob's i-th one-time key, and Bob's side finds it and its secret.
    func testStealthTweakIsBIP47sOneTimeKeyTweak() throws {
        let v = try PaymentCodeVectorTests.bip47()
        let alice = try PaymentCodeKeys(seed: try hex(v["alice.seed"]), coinType: 0)
        let bob = try PaymentCodeKeys(seed: try hex(v["bob.seed"]), coinType: 0)
        let r = try alice.key(at: 0)
        for i in 0..<10 {
            let b = try bob.key(at: UInt32(i))
            let address = StealthAddress(scanKey: b.publicKey, spendKey: b.publicKey)
            let payment = try address.payment(ephemeral: r)
            XCTAssertEqual(payment.ephemeralKey.compressed, try hex(v["alice.A0"]))
            XCTAssertEqual(
                try hash160(payment.key.compressed),
                try p2pkhPayload(try XCTUnwrap(v["pair.\(i)"])), "one-time key \(i)")
            let keys = StealthKeys(scan: b, spend: b)
            XCTAssertEqual(try keys.secret(ephemeralKey: payment.ephemeralKey).publicKey, payment.key)
            XCTAssertEqual(try keys.viewKey.account(ephemeralKey: payment.ephemeralKey), payment.address)
        }
    }

    func testOnlyTheReceiverFindsAndOnlyItsSpendKeySpends() throws {
        let bob = try StealthKeys(seed: [UInt8](repeating: 7, count: 32))
        let carol = try StealthKeys(seed: [UInt8](repeating: 8, count: 32))
        XCTAssertNotEqual(bob.scan.secret, bob.spend.secret)
        let view = try StealthViewKey(text: bob.viewKey.text)
        XCTAssertEqual(view.address, bob.address)
        let address = try StealthAddress(text: bob.address.text)
        XCTAssertEqual(address, bob.address)
        var seen: Set<Address> = []
        for n in 1...20 {
            let r = try PrivateKey(bytes: Bytes32(w0: 3, w1: 0, w2: 0, w3: UInt64(n)))
            let payment = try address.payment(ephemeral: r)
            XCTAssertTrue(seen.insert(payment.address).inserted, "payments share an account")
            XCTAssertNotEqual(payment.address, Address(publicKey: bob.spend.xOnlyPublicKey))
            XCTAssertEqual(try view.account(ephemeralKey: payment.ephemeralKey), payment.address)
            XCTAssertNotEqual(try carol.viewKey.account(ephemeralKey: payment.ephemeralKey), payment.address)
            let secret = try bob.secret(ephemeralKey: payment.ephemeralKey)
            XCTAssertEqual(Address(publicKey: secret.xOnlyPublicKey), payment.address)
            XCTAssertNotEqual(
                Address(publicKey: try carol.secret(ephemeralKey: payment.ephemeralKey).xOnlyPublicKey),
                payment.address)
            // A wrong tweak (another payment's R) gives another account: a spend with it signs for nobody's funds.
            let other = try PrivateKey(bytes: Bytes32(w0: 4, w1: 0, w2: 0, w3: UInt64(n)))
            XCTAssertNotEqual(
                Address(publicKey: try bob.secret(ephemeralKey: other.publicKey).xOnlyPublicKey), payment.address)
        }
        // The view key's bytes hold the scan secret and the spend key's public half, never the spend secret.
        let viewBytes = bob.viewKey.binary
        XCTAssertFalse(
            (0...(viewBytes.count - 32)).contains { Array(viewBytes[$0..<$0 + 32]) == bob.spend.secret.bytes })
    }

    func testMalformedAddressesAndViewKeysAreRefusedEachWithItsReason() throws {
        let keys = try StealthKeys(seed: [UInt8](repeating: 9, count: 32))
        let good = keys.address.binary
        func fault(_ bytes: [UInt8]) -> PaymentCodeError? {
            do {
                _ = try StealthAddress(binary: bytes)
                return nil
            } catch { return error }
        }
        XCTAssertNil(fault(good))
        XCTAssertEqual(fault(Array(good.dropLast())), .malformed(.wrongLength(66)))
        var bad = good
        bad[0] = 2
        XCTAssertEqual(fault(bad), .malformed(.unknownVersion(2)))
        bad = good
        bad[34] = 5
        XCTAssertEqual(fault(bad), .malformed(.invalidSign(5)))
        var offCurve = false
        for candidate in 0...255 where !offCurve {
            bad = good
            bad[2] = UInt8(candidate)
            offCurve = fault(bad) == .malformed(.notOnCurve)
        }
        XCTAssertTrue(offCurve)
        var text = Array(keys.address.text)
        text[40] = text[40] == "q" ? "p" : "q"
        XCTAssertThrowsError(try StealthAddress(text: String(text))) {
            guard case .badText = $0 as? PaymentCodeError else { return XCTFail("\($0)") }
        }
        // Another kind of text (a payment code, a view key) is refused by its prefix.
        let code = try PaymentCodeKeys(seed: [UInt8](repeating: 9, count: 32)).code
        XCTAssertThrowsError(try StealthAddress(text: code.text))
        XCTAssertThrowsError(try StealthAddress(text: keys.viewKey.text))
        XCTAssertThrowsError(try StealthViewKey(text: keys.address.text))
        // A view key with a zero scan secret or one at the group order.
        var view = keys.viewKey.binary
        for i in 1..<33 { view[i] = 0 }
        XCTAssertThrowsError(try StealthViewKey(binary: view)) {
            XCTAssertEqual($0 as? PaymentCodeError, .invalidScanSecret)
        }
        let order = try Hex.decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
        view.replaceSubrange(1..<33, with: order)
        XCTAssertThrowsError(try StealthViewKey(binary: view)) {
            XCTAssertEqual($0 as? PaymentCodeError, .invalidScanSecret)
        }
        XCTAssertThrowsError(try StealthViewKey(binary: Array(view.dropFirst()))) {
            XCTAssertEqual($0 as? PaymentCodeError, .malformed(.wrongLength(65)))
        }
    }

    func testStealthTransfersAndAnnouncementListsDecodeOnlyWhenWellFormed() throws {
        let r = try PrivateKey(bytes: Bytes32(w0: 5, w1: 0, w2: 0, w3: 1))
        let transfer = StealthTransfer(to: Address(raw: .zero), amount: 10, ephemeralKey: r.publicKey)
        let payload = TransactionPayload.stealthTransfer(transfer)
        XCTAssertEqual(try TransactionPayload(decoding: payload.encoded), payload)
        XCTAssertEqual(payload.debitedAmount, 10)
        var zero = transfer
        zero.amount = 0
        XCTAssertThrowsError(try TransactionPayload(decoding: TransactionPayload.stealthTransfer(zero).encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.amount))
        }
        var bytes = payload.encoded
        bytes[bytes.count - 33] = 4  // not a compressed key's sign byte
        XCTAssertThrowsError(try TransactionPayload(decoding: bytes)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.publicKey))
        }
        XCTAssertThrowsError(try TransactionPayload(decoding: Array(payload.encoded.dropLast()))) {
            XCTAssertEqual($0 as? CodecError, .truncated)
        }

        let list = (1...3).map { n in
            StealthAnnouncement(
                transaction: Bytes32(w0: UInt64(n), w1: 0, w2: 0, w3: 0),
                ephemeralKey: (try! PrivateKey(bytes: Bytes32(w0: 6, w1: 0, w2: 0, w3: UInt64(n)))).publicKey)
        }
        let encoded = StealthAnnouncements.encode(list)
        XCTAssertEqual(try StealthAnnouncements.decode(encoded), list)
        XCTAssertThrowsError(try StealthAnnouncements.decode(Array(encoded.dropLast()))) {
            XCTAssertEqual($0 as? CodecError, .truncated)
        }
        var offCurve = encoded
        offCurve[32] = 7
        XCTAssertThrowsError(try StealthAnnouncements.decode(offCurve)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.publicKey))
        }
        // Leaving one out, or reordering, changes the committed hash.
        let hash = StealthAnnouncements.hash(list)
        XCTAssertNotEqual(StealthAnnouncements.hash(Array(list.dropFirst())), hash)
        XCTAssertNotEqual(StealthAnnouncements.hash(list.reversed()), hash)
    }
}
