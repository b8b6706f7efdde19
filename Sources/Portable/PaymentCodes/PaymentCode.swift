import AmarsCodec
import AmarsCrypto
import Ledger

/// A BIP47 version-1 payment code: the public key and chain code of a wallet's BIP32 node m/47'/coin'/account'.
///
/// Publishing it lets anyone derive addresses that only its owner can spend from and that nobody else can link
/// to the code. The binary form is BIP47's 80 bytes, unchanged, so BIP47's vectors apply; the text form is
/// bech32m with the prefix ``humanReadablePart`` instead of BIP47's base58 "PM8T…", like every other text this
/// chain shows.
public struct PaymentCode: Equatable, Sendable {
    public static let version: UInt8 = 1
    public static let binaryLength = 80
    public static let humanReadablePart = "amscpc"
    /// BIP32 coin type in the derivation path m/47'/coin'/account' (BIP47's vectors use Bitcoin's 0).
    public static let coinType: UInt32 = 1717

    /// BIP47's feature bits; bit 0 asks for Bitmessage notification, which this chain does not use.
    public let features: UInt8
    public let publicKey: PublicKey
    public let chainCode: Bytes32

    public init(node: ExtendedPublicKey, features: UInt8 = 0) {
        self.features = features
        self.publicKey = node.key
        self.chainCode = node.chainCode
    }

    /// The 80-byte form: version, features, sign, x, chain code, 13 reserved zero bytes.
    public init(binary: [UInt8]) throws(PaymentCodeError) {
        do { self = try Self.parse(binary) } catch { throw .malformed(error) }
    }

    static func parse(_ bytes: [UInt8]) throws(PaymentCodeFault) -> PaymentCode {
        guard bytes.count == binaryLength else { throw .wrongLength(bytes.count) }
        guard bytes[0] == version else { throw .unknownVersion(bytes[0]) }
        guard bytes[2] == 2 || bytes[2] == 3 else { throw .invalidSign(bytes[2]) }
        guard bytes[67..<80].allSatisfy({ $0 == 0 }) else { throw .reservedBytesSet }
        guard let key = try? PublicKey(compressed: Array(bytes[2..<35])) else { throw .notOnCurve }
        return PaymentCode(node: ExtendedPublicKey(key: key, chainCode: Bytes32(bytes[35..<67])!), features: bytes[1])
    }

    public init(text: String) throws(PaymentCodeError) {
        try self.init(binary: try bech32Payload(text, Self.humanReadablePart, maxLength: Self.maxTextLength))
    }

    /// "amscpc1" plus 128 data characters and the 6-character checksum.
    static let maxTextLength = 141

    public var binary: [UInt8] {
        var out = [Self.version, features]
        out.append(contentsOf: publicKey.compressed)
        out.append(contentsOf: chainCode.bytes)
        out.append(contentsOf: [UInt8](repeating: 0, count: 13))
        return out
    }

    public var text: String { Bech32m.encode(hrp: Self.humanReadablePart, bytes: binary) }

    public var node: ExtendedPublicKey { ExtendedPublicKey(key: publicKey, chainCode: chainCode) }

    /// The public key at `index` (BIP47's B_i): the base of the i-th one-time key; index 0 is also the
    /// notification key.
    public func key(at index: UInt32) throws(PaymentCodeError) -> PublicKey { try node.child(index).key }

    /// Where payers send their notification: the account of the key at index 0.
    public var notificationAddress: Address {
        // Index 0 fails only in BIP32's 2^-127 case; such a code has no notification key and can never be paid.
        guard let key = try? key(at: 0) else { return Address(raw: .zero) }
        return Address(publicKey: key.xOnly)
    }
}

/// The secret side of a payment code: the BIP32 node m/47'/coin'/account' of a wallet's seed.
public struct PaymentCodeKeys: Sendable {
    public let node: ExtendedPrivateKey

    public init(node: ExtendedPrivateKey) { self.node = node }

    /// The payment code node of `seed` at BIP47's path for `coinType` (this chain's by default).
    public init(seed: [UInt8], coinType: UInt32 = PaymentCode.coinType, account: UInt32 = 0)
        throws(PaymentCodeError)
    {
        let h = ExtendedPrivateKey.hardened
        node = try ExtendedPrivateKey(seed: seed).derive([47 | h, coinType | h, account | h])
    }

    public var code: PaymentCode { PaymentCode(node: node.publicNode) }

    /// The secret key at `index` (BIP47's b_i).
    public func key(at index: UInt32) throws(PaymentCodeError) -> PrivateKey { try node.child(index).key }
}

/// The bytes of a bech32m text with prefix `hrp` (payment codes, stealth addresses, view keys).
func bech32Payload(_ text: String, _ hrp: String, maxLength: Int) throws(PaymentCodeError) -> [UInt8] {
    do { return try Bech32m.decodeBytes(text, expectedHRP: hrp, maxLength: maxLength) } catch { throw .badText(error) }
}
