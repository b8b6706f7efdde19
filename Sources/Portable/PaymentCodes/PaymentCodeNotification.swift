import AmarsCodec
import AmarsCrypto
import Ledger

/// BIP47's notification: the payer's payment code with its key and chain code masked, so that only the receiver
/// can read whose code it is.
///
/// The mask is HMAC-SHA512(o, x) where x is the x coordinate of the ECDH point between the payer's designated key
/// and the receiver's notification key. BIP47 takes o from the notification transaction's first outpoint; this
/// chain has accounts, so o is the notification transaction's sender address (20 bytes) followed by its nonce
/// (8 bytes, big-endian): unique per transaction and known to both sides before the transaction exists. The
/// designated key is the transaction's signing key, whose x-only public key every transaction carries.
public enum PaymentCodeNotification {
    /// The 28-byte HMAC key of a notification sent by `sender` with `nonce`.
    public static func bindingKey(sender: Address, nonce: UInt64) -> [UInt8] {
        var key = sender.raw.bytes
        for shift in stride(from: 56, through: 0, by: -8) {
            key.append(UInt8(truncatingIfNeeded: nonce >> UInt64(shift)))
        }
        return key
    }

    /// The payer's code masked for the receiver: `designated` signs the notification, `receiver` is the code paid.
    public static func mask(
        _ code: PaymentCode, designated: PrivateKey, receiver: PaymentCode, binding: [UInt8]
    ) throws(PaymentCodeError) -> [UInt8] {
        let x = designated.sharedX(try receiver.key(at: 0))
        return apply(mask: HMAC.sha512(key: binding, message: x.bytes), to: code.binary)
    }

    /// The receiver's side: `notificationKey` is its key at index 0, `designated` the notification's signer.
    /// Throws `.notificationUnreadable` when the bytes do not unmask to a payment code (sent to someone else, or
    /// forged); nothing about the receiver changes in that case.
    public static func unmask(
        _ masked: [UInt8], designated: XOnlyPublicKey, notificationKey: PrivateKey, binding: [UInt8]
    ) throws(PaymentCodeError) -> PaymentCode {
        guard masked.count == PaymentCode.binaryLength else {
            throw .notificationUnreadable(.wrongLength(masked.count))
        }
        var compressed: [UInt8] = [2]
        compressed.append(contentsOf: designated.bytes.bytes)
        guard let point = try? PublicKey(compressed: compressed) else { throw .notificationUnreadable(.notOnCurve) }
        let x = notificationKey.sharedX(point)
        let plain = apply(mask: HMAC.sha512(key: binding, message: x.bytes), to: masked)
        do { return try PaymentCode.parse(plain) } catch { throw .notificationUnreadable(error) }
    }

    /// XORs the key's x (bytes 3-34) with the mask's first 32 bytes and the chain code (35-66) with the last 32.
    /// Masking twice with the same mask unmasks.
    static func apply(mask: [UInt8], to code: [UInt8]) -> [UInt8] {
        var out = code
        for i in 0..<64 { out[3 + i] ^= mask[i] }
        return out
    }
}
