import AmarsCodec

/// Why a payment code, a BIP32 derivation, a notification or a one-time key was refused. Each case names what
/// the caller can do: ask for another code, skip an index, or drop a notification.
public enum PaymentCodeError: Error, Equatable, Sendable {
    /// Bytes that are not a payment code, with the reason.
    case malformed(PaymentCodeFault)
    /// The text form is not bech32m with this chain's payment-code prefix (checksum, characters or length).
    case badText(Bech32Error)
    /// BIP32: the derived scalar is not below the group order or the key is zero. BIP32 says use the next index.
    case invalidChild(index: UInt32)
    /// BIP32: a hardened child cannot be derived from a public key alone.
    case hardenedFromPublicKey(index: UInt32)
    /// BIP47: SHA256 of the shared secret is not below the group order; sender and receiver both skip this index.
    case unusableIndex(UInt32)
    /// Stealth payments: SHA256 of the shared secret is not below the group order (2^-128); the payer draws
    /// another ephemeral key.
    case unusableEphemeralKey
    /// A view key whose scan secret is zero or not below the group order.
    case invalidScanSecret
    /// A notification whose payload does not unmask to a payment code (wrong recipient, or garbage).
    case notificationUnreadable(PaymentCodeFault)
    /// A relayed notification that unmasks, but whose hash lock is not SHA-256 twice of the unmasked chain code:
    /// not for this receiver, or forged. Claiming it would reveal nothing anyone upstream could use.
    case relayHashMismatch
}

/// What is wrong with 80 bytes that claim to be a payment code. Kept apart from ``PaymentCodeError`` so that a
/// notification that unmasks to garbage ("not for me, or forged") reads differently from a malformed code given
/// by a user.
public enum PaymentCodeFault: Error, Equatable, Sendable {
    /// Not exactly 80 bytes.
    case wrongLength(Int)
    /// A version this chain does not read (only BIP47's version 1 is defined).
    case unknownVersion(UInt8)
    /// The key's sign byte is neither 0x02 nor 0x03.
    case invalidSign(UInt8)
    /// The 32 bytes after the sign byte are not the x coordinate of a point on secp256k1.
    case notOnCurve
    /// Bytes 67-79 are reserved and must be zero; a code that sets them was made for a version we do not know.
    case reservedBytesSet
}
