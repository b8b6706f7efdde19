import AmarsCodec
import AmarsCrypto
import Ledger

/// A stealth address's secrets: the scan secret a and the spend secret b, each a BIP32 node of the wallet's seed
/// (m/1717'/1'/0'/0' and m/1717'/1'/0'/1'; hardened, so the view key reveals nothing about the spend secret).
public struct StealthKeys: Sendable {
    public let scan: PrivateKey
    public let spend: PrivateKey

    public init(scan: PrivateKey, spend: PrivateKey) {
        self.scan = scan
        self.spend = spend
    }

    public init(seed: [UInt8], account: UInt32 = 0) throws(PaymentCodeError) {
        let h = ExtendedPrivateKey.hardened
        let node = try ExtendedPrivateKey(seed: seed).derive([PaymentCode.coinType | h, 1 | h, account | h])
        scan = try node.child(0 | h).key
        spend = try node.child(1 | h).key
    }

    public var address: StealthAddress { StealthAddress(scanKey: scan.publicKey, spendKey: spend.publicKey) }

    public var viewKey: StealthViewKey { StealthViewKey(scan: scan, spendKey: spend.publicKey) }

    /// The secret of the one-time account a payment with ephemeral key `ephemeralKey` went to: b + SHA256(x(a·R)).
    public func secret(ephemeralKey: PublicKey) throws(PaymentCodeError) -> PrivateKey {
        let s = SHA256.hash(scan.sharedX(ephemeralKey).bytes)
        guard let key = try? spend.tweakAdded(s) else { throw .unusableEphemeralKey }
        return key
    }
}

/// The view-only half of ``StealthKeys``: the scan secret a and the spend key B. It finds every payment to the
/// stealth address and cannot spend any (b is not in it, and the hardened derivation keeps it out of reach).
public struct StealthViewKey: Sendable {
    public static let version: UInt8 = 1
    public static let binaryLength = 66
    public static let humanReadablePart = "amscsv"
    /// "amscsv1" plus 106 data characters and the 6-character checksum.
    static let maxTextLength = 119

    public let scan: PrivateKey
    public let spendKey: PublicKey

    public init(scan: PrivateKey, spendKey: PublicKey) {
        self.scan = scan
        self.spendKey = spendKey
    }

    /// The 66-byte form: version, the scan secret, the compressed spend key.
    public init(binary: [UInt8]) throws(PaymentCodeError) {
        guard binary.count == Self.binaryLength else { throw .malformed(.wrongLength(binary.count)) }
        guard binary[0] == Self.version else { throw .malformed(.unknownVersion(binary[0])) }
        guard let secret = Bytes32(binary[1..<33]), let scan = try? PrivateKey(bytes: secret) else {
            throw .invalidScanSecret
        }
        self.scan = scan
        spendKey = try stealthKey(Array(binary[33..<66]))
    }

    public init(text: String) throws(PaymentCodeError) {
        try self.init(binary: try bech32Payload(text, Self.humanReadablePart, maxLength: Self.maxTextLength))
    }

    public var binary: [UInt8] { [Self.version] + scan.secret.bytes + spendKey.compressed }

    public var text: String { Bech32m.encode(hrp: Self.humanReadablePart, bytes: binary) }

    public var address: StealthAddress { StealthAddress(scanKey: scan.publicKey, spendKey: spendKey) }

    /// The account a payment with ephemeral key `ephemeralKey` went to if it was made to this stealth address.
    public func account(ephemeralKey: PublicKey) throws(PaymentCodeError) -> Address {
        let s = SHA256.hash(scan.sharedX(ephemeralKey).bytes)
        guard let key = try? spendKey.tweakAdded(s) else { throw .unusableEphemeralKey }
        return Address(publicKey: key.xOnly)
    }
}
