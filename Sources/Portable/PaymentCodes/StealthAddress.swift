import AmarsCodec
import AmarsCrypto
import Ledger

/// A wallet's stealth address (the white paper's Cryptonote-style dual key, SPEC "Payment codes"): a scan key A
/// and a spend key B. A payer picks a fresh ephemeral key r, publishes R = r·G with the payment, and pays the
/// account of P = B + SHA256(x(r·A))·G. The receiver finds P from R with the scan secret a alone (a view-only
/// key), and only the spend secret b gives P's secret b + SHA256(x(a·R)). Nothing on chain links P or R to the
/// stealth address, or two payments to each other.
///
/// The tweak is BIP47's one-time-key tweak (``OneTimeKey``) with r in the payer's and B in the receiver's
/// place, so BIP47's published vectors pin the construction (PaymentCodeTests).
public struct StealthAddress: Equatable, Sendable {
    public static let version: UInt8 = 1
    public static let binaryLength = 67
    public static let humanReadablePart = "amscst"
    /// "amscst1" plus 108 data characters and the 6-character checksum.
    static let maxTextLength = 121

    public let scanKey: PublicKey
    public let spendKey: PublicKey

    public init(scanKey: PublicKey, spendKey: PublicKey) {
        self.scanKey = scanKey
        self.spendKey = spendKey
    }

    /// The 67-byte form: version, the compressed scan key, the compressed spend key.
    public init(binary: [UInt8]) throws(PaymentCodeError) {
        guard binary.count == Self.binaryLength else { throw .malformed(.wrongLength(binary.count)) }
        guard binary[0] == Self.version else { throw .malformed(.unknownVersion(binary[0])) }
        scanKey = try stealthKey(Array(binary[1..<34]))
        spendKey = try stealthKey(Array(binary[34..<67]))
    }

    public init(text: String) throws(PaymentCodeError) {
        try self.init(binary: try bech32Payload(text, Self.humanReadablePart, maxLength: Self.maxTextLength))
    }

    public var binary: [UInt8] { [Self.version] + scanKey.compressed + spendKey.compressed }

    public var text: String { Bech32m.encode(hrp: Self.humanReadablePart, bytes: binary) }

    /// The payer's side: the one-time key a payment with the ephemeral secret `ephemeral` goes to, and R to
    /// publish with it. Throws `.unusableEphemeralKey` in BIP47's 2^-128 case; the payer draws another r.
    public func payment(ephemeral: PrivateKey) throws(PaymentCodeError) -> StealthPayment {
        let s = SHA256.hash(ephemeral.sharedX(scanKey).bytes)
        guard let key = try? spendKey.tweakAdded(s) else { throw .unusableEphemeralKey }
        return StealthPayment(ephemeralKey: ephemeral.publicKey, key: key)
    }
}

/// One stealth payment as the payer makes it: R goes on chain with the payment, the tokens go to P's account.
public struct StealthPayment: Equatable, Sendable {
    public let ephemeralKey: PublicKey
    public let key: PublicKey

    public var address: Address { Address(publicKey: key.xOnly) }
}

/// A compressed key inside a stealth address or view key: its sign byte and its point checked.
func stealthKey(_ bytes: [UInt8]) throws(PaymentCodeError) -> PublicKey {
    guard bytes[0] == 2 || bytes[0] == 3 else { throw .malformed(.invalidSign(bytes[0])) }
    guard let key = try? PublicKey(compressed: bytes) else { throw .malformed(.notOnCurve) }
    return key
}
