import AmarsCodec
import AmarsCrypto
import Ledger

/// BIP47's one-time keys: the i-th payment from A to B goes to B'_i = B_i + s·G with s = SHA256(x(a_0·B_i)).
/// The payer knows a_0 and B's code; the receiver knows b_i and A's code (from the notification) and finds
/// b'_i = b_i + s itself. Nobody else can link B'_i to B's code or to the other B'_j.
///
/// When s is not below the group order BIP47 skips the index on both sides; `.unusableIndex` says so, and the
/// counters here and in the device treat it as used.
public enum OneTimeKey {
    /// The payer's side: the public key of the receiver's i-th one-time account.
    public static func publicKey(payer: PaymentCodeKeys, receiver: PaymentCode, index: UInt32)
        throws(PaymentCodeError) -> PublicKey
    {
        let base = try receiver.key(at: index)
        let s = SHA256.hash(try payer.key(at: 0).sharedX(base).bytes)
        do { return try base.tweakAdded(s) } catch { throw .unusableIndex(index) }
    }

    /// The receiver's side: the secret that spends from its i-th one-time account paid by `payer`.
    public static func secretKey(receiver: PaymentCodeKeys, payer: PaymentCode, index: UInt32)
        throws(PaymentCodeError) -> PrivateKey
    {
        let own = try receiver.key(at: index)
        let s = SHA256.hash(own.sharedX(try payer.key(at: 0)).bytes)
        do { return try own.tweakAdded(s) } catch { throw .unusableIndex(index) }
    }

    /// The account the i-th payment goes to; the same on both sides.
    public static func address(payer: PaymentCodeKeys, receiver: PaymentCode, index: UInt32)
        throws(PaymentCodeError) -> Address
    {
        Address(publicKey: try publicKey(payer: payer, receiver: receiver, index: index).xOnly)
    }
}
