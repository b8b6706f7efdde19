import AmarsCodec
import AmarsCrypto

/// What a sender signs: who, which chain, which nonce, what it will pay per resource unit, and the payload.
///
/// The chain is named by the hash of its height-0 block header, which commits to the whole genesis document,
/// not by its chain id alone: two networks may share an id (every devnet once defaulted to 7001), and a
/// transaction signed for one must never be valid on the other.
///
/// The sender appears as its x-only public key so a verifier needs no key recovery; its ``Address`` is
/// derived. The id is a tagged hash of this body alone, so a signature can never change the id.
public struct TransactionBody: Equatable, Sendable, CanonicalCodable {
    /// 2: the chain is named by its genesis block hash instead of its chain id.
    public static let currentVersion: UInt8 = 2

    /// Hash of the chain's height-0 block header (`Genesis.header`; a device's `genesisHeaderHash`).
    public var genesis: Bytes32
    public var sender: Bytes32
    public var nonce: UInt64
    /// The most the sender pays per unit, base fee and tip together.
    public var maxFeePerUnit: UInt64
    /// What the sender offers the proposer per unit above the base fee.
    public var tipPerUnit: UInt64
    public var payload: TransactionPayload

    public init(
        genesis: Bytes32, sender: Bytes32, nonce: UInt64, maxFeePerUnit: UInt64, tipPerUnit: UInt64,
        payload: TransactionPayload
    ) {
        self.genesis = genesis
        self.sender = sender
        self.nonce = nonce
        self.maxFeePerUnit = maxFeePerUnit
        self.tipPerUnit = tipPerUnit
        self.payload = payload
    }

    public func encode(to w: inout ByteWriter) {
        w.write(TransactionBody.currentVersion)
        w.write(genesis)
        w.write(sender)
        w.writeVarint(nonce)
        w.writeVarint(maxFeePerUnit)
        w.writeVarint(tipPerUnit)
        w.write(payload)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let version = try r.readU8()
        guard version == TransactionBody.currentVersion else { throw .invalidValue(.version) }
        genesis = try r.readBytes32()
        sender = try r.readBytes32()
        nonce = try r.readVarint()
        maxFeePerUnit = try r.readVarint()
        tipPerUnit = try r.readVarint()
        guard tipPerUnit <= maxFeePerUnit else { throw .invalidValue(.amount) }
        payload = try r.read()
    }

    public var id: Bytes32 { Domain.transaction.hash(encoded) }
}

/// A transaction with its BIP340 signature over the id.
public struct SignedTransaction: Equatable, Sendable, CanonicalCodable {
    public var body: TransactionBody
    public var signature: Bytes64

    public init(body: TransactionBody, signature: Bytes64) {
        self.body = body
        self.signature = signature
    }

    /// Builds and signs; `auxRandom` is BIP340's auxiliary randomness (zero is valid, fresh is better).
    public init(body: TransactionBody, signer: PrivateKey, auxRandom: Bytes32 = .zero) {
        self.body = body
        self.signature = signer.signSchnorr(body.id, auxRandom: auxRandom)
    }

    public func encode(to w: inout ByteWriter) {
        w.write(body)
        w.write(signature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let start = r.position
        body = try r.read()
        signature = try r.readBytes64()
        guard r.position - start <= Caps.transactionBytes else {
            throw .lengthOverCap(length: UInt64(r.position - start), cap: Caps.transactionBytes)
        }
    }

    public var id: Bytes32 { body.id }
}

/// Everything derived from a transaction that validation needs more than once, computed in one pass:
/// one encoding, one hash, one key parse.
public struct VerifiedTransaction: Sendable {
    public let transaction: SignedTransaction
    public let id: Bytes32
    public let senderAddress: Address
    public let encodedSize: Int

    /// Checks the signature; the result exists only for a transaction whose sender really signed it.
    public init(_ tx: SignedTransaction) throws(TransactionError) {
        try self.init(tx, parseKey: XOnlyPublicKey.init(bytes:))
    }

    /// ``init(_:)`` with the sender's key parsed by `parseKey` (a gateway keeps the keys it parsed before), and
    /// no check when `checkedBefore` says this very signature already passed on this transaction id.
    public init(
        _ tx: SignedTransaction, parseKey: (Bytes32) throws(CryptoError) -> XOnlyPublicKey,
        checkedBefore: (Bytes32, Bytes64) -> Bool = { _, _ in false }
    ) throws(TransactionError) {
        let bodyBytes = tx.body.encoded
        try self.init(
            tx, id: Domain.transaction.hash(bodyBytes), bodySize: bodyBytes.count, parseKey: parseKey,
            checkedBefore: checkedBefore)
    }

    /// Decodes and verifies in one step. The body's canonical encoding is exactly the input minus the trailing
    /// 64-byte signature, so the id is hashed from the bytes in hand instead of re-encoding them.
    public init(decoding bytes: [UInt8]) throws(TransactionError) {
        try self.init(decoding: bytes, unlessKnown: { _ in false })
    }

    /// Decodes, then refuses as `alreadyKnown` a transaction whose id `isKnown` says is already held, before
    /// the signature check: a gateway hears each transaction from several peers, and only the first costs a
    /// verify. (Same id means same body; a copy with another signature is refused too, which loses nothing,
    /// since the held one is the validly signed one.)
    public init(decoding bytes: [UInt8], unlessKnown isKnown: (Bytes32) -> Bool) throws(TransactionError) {
        try self.init(decoding: bytes, unlessKnown: isKnown, parseKey: XOnlyPublicKey.init(bytes:))
    }

    /// ``init(decoding:unlessKnown:)`` with the sender's key parsed by `parseKey`: parsing a key costs a square
    /// root, a tenth of the signature check, and a device sends from the same key again and again. A signature
    /// `checkedBefore` says already passed on this id is not checked again: the id is the hash of the body, which
    /// names the key, so the same id and signature bytes verify the same way every time.
    public init(
        decoding bytes: [UInt8], unlessKnown isKnown: (Bytes32) -> Bool,
        parseKey: (Bytes32) throws(CryptoError) -> XOnlyPublicKey,
        checkedBefore: (Bytes32, Bytes64) -> Bool = { _, _ in false }
    ) throws(TransactionError) {
        let tx: SignedTransaction
        do { tx = try SignedTransaction(decoding: bytes) } catch { throw .malformed(error) }
        let bodySize = bytes.count - 64
        let id = bytes.withUnsafeBytes { Domain.transaction.hash(UnsafeRawBufferPointer(rebasing: $0[0..<bodySize])) }
        guard !isKnown(id) else { throw .alreadyKnown }
        try self.init(tx, id: id, bodySize: bodySize, parseKey: parseKey, checkedBefore: checkedBefore)
    }

    private init(
        _ tx: SignedTransaction, id: Bytes32, bodySize: Int, parseKey: (Bytes32) throws(CryptoError) -> XOnlyPublicKey,
        checkedBefore: (Bytes32, Bytes64) -> Bool
    ) throws(TransactionError) {
        if !checkedBefore(id, tx.signature) {
            let key: XOnlyPublicKey
            do { key = try parseKey(tx.body.sender) } catch { throw .invalidSenderKey }
            guard key.verifySchnorr(tx.signature, message: id) else { throw .badSignature }
        }
        self.transaction = tx
        self.id = id
        self.senderAddress = Address(keyBytes: tx.body.sender)
        self.encodedSize = bodySize + 64
    }
}

/// Why a transaction was refused, before or during execution. Each case is something a sender can fix.
public enum TransactionError: Error, Equatable, Sendable {
    case malformed(CodecError)
    case invalidSenderKey
    case badSignature
    /// The transaction names another chain's genesis block.
    case wrongChain(expected: Bytes32, got: Bytes32)
    case nonceReplayed(expected: UInt64, got: UInt64)
    case nonceGap(expected: UInt64, got: UInt64)
    case feeBelowBaseFee(baseFee: UInt64, maxFeePerUnit: UInt64)
    case insufficientBalance(needed: UInt64, available: UInt64)
    case amountOverflow
    case unsupportedKind(UInt8)
    case mempoolFull
    case senderQueueFull
    case replacementUnderpriced
    case alreadyKnown
    case blockFull
    case staking(StakingError)
    case escrow(EscrowError)
    case certificate(CertificateRefusal)
    case htlc(HTLCError)
    case channel(ChannelError)

    /// A stable camelCase name for every refusal: the same word in HTTP answers, CoAP diagnostics, MQTT
    /// receipts and logs, so a device log and a gateway log can be matched.
    public var code: StaticString {
        switch self {
        case .malformed: "malformed"
        case .invalidSenderKey: "invalidSenderKey"
        case .badSignature: "badSignature"
        case .wrongChain: "wrongChain"
        case .nonceReplayed: "nonceReplayed"
        case .nonceGap: "nonceGap"
        case .feeBelowBaseFee: "feeBelowBaseFee"
        case .insufficientBalance: "insufficientBalance"
        case .amountOverflow: "amountOverflow"
        case .unsupportedKind: "unsupportedKind"
        case .mempoolFull: "mempoolFull"
        case .senderQueueFull: "senderQueueFull"
        case .replacementUnderpriced: "replacementUnderpriced"
        case .alreadyKnown: "alreadyKnown"
        case .blockFull: "blockFull"
        case .staking(let e): e.code
        case .escrow(let e): e.code
        case .certificate(let e): e.code
        case .htlc(let e): e.code
        case .channel(let e): e.code
        }
    }
}

/// Why a certificate publish or revoke was refused (SPEC "Device identity"); each case names the rule broken.
public enum CertificateRefusal: Error, Equatable, Sendable {
    /// Not a certificate of the chain's X.509 profile (`amars cert inspect` names the fault).
    case unreadable
    case alreadyPublished
    /// The issuer already has a certificate on chain with this serial number (RFC 5280: unique per issuer).
    case serialReused
    /// Its validity has ended at the block's time.
    case expired
    /// A root (self-signed) is anchored only by a transaction its own key signed.
    case rootNotSentByItsKey
    /// A root, or the issuer of a certificate, that is not a CA allowed to sign certificates.
    case notACertificateAuthority
    /// No CA certificate on chain has the key the certificate names as its issuer.
    case unknownIssuer
    /// The issuer, or one of its ancestors, is revoked, expired or not yet valid.
    case issuerNotValid
    /// The issuer's key did not sign it, or the signature is not in low-S DER.
    case badSignature
    /// The issuer name is not the issuer certificate's subject name.
    case issuerNameMismatch
    /// An ancestor's path length allows fewer CA levels below it.
    case pathLengthExceeded
    /// A short-lived (end-entity) certificate must last 5 minutes to 24 hours.
    case lifetimeOutOfRange(seconds: UInt64)
    /// A device CA's subject must be the account of its own key (amsc1…).
    case subjectNotItsAccount
    /// A short-lived certificate names the device that issued it as its subject.
    case subjectNotTheIssuer
    case unknownCertificate
    case alreadyRevoked
    /// Only the key of an ancestor (or a root's own key, for a root) revokes a certificate.
    case notAnAncestor
    /// A device door that requires certificates: the sender has no valid, unrevoked device certificate on chain.
    case noValidCertificate

    public var code: StaticString {
        switch self {
        case .unreadable: "certificateUnreadable"
        case .alreadyPublished: "certificateAlreadyPublished"
        case .serialReused: "serialReused"
        case .expired: "certificateExpired"
        case .rootNotSentByItsKey: "rootNotSentByItsKey"
        case .notACertificateAuthority: "notACertificateAuthority"
        case .unknownIssuer: "unknownIssuer"
        case .issuerNotValid: "issuerNotValid"
        case .badSignature: "certificateBadSignature"
        case .issuerNameMismatch: "issuerNameMismatch"
        case .pathLengthExceeded: "pathLengthExceeded"
        case .lifetimeOutOfRange: "lifetimeOutOfRange"
        case .subjectNotItsAccount: "subjectNotItsAccount"
        case .subjectNotTheIssuer: "subjectNotTheIssuer"
        case .unknownCertificate: "unknownCertificate"
        case .alreadyRevoked: "alreadyRevoked"
        case .notAnAncestor: "notAnAncestor"
        case .noValidCertificate: "certificateRequired"
        }
    }
}

/// Why a staking transaction was refused; each case names the rule the sender broke.
public enum StakingError: Error, Equatable, Sendable {
    case alreadyCandidate
    case nameTaken
    case notACandidate
    case candidateEjected
    case invalidOperatorKey
    case selfStakeTooLow(minimum: UInt64)
    case durationTooLong(maximum: UInt32)
    case durationShortened(remaining: UInt64)
    case unknownBucket(UInt64)
    case notBucketOwner
    case alreadyUnstaked
    case stillLocked(untilEpoch: UInt64)
    case selfStakeBucket
    case notUnstaked
    case unbonding(untilEpoch: UInt64)
    case invalidEvidence
    case evidenceAlreadyUsed

    /// A stable camelCase name for APIs and logs.
    public var code: StaticString {
        switch self {
        case .alreadyCandidate: "alreadyCandidate"
        case .nameTaken: "nameTaken"
        case .notACandidate: "notACandidate"
        case .candidateEjected: "candidateEjected"
        case .invalidOperatorKey: "invalidOperatorKey"
        case .selfStakeTooLow: "selfStakeTooLow"
        case .durationTooLong: "durationTooLong"
        case .durationShortened: "durationShortened"
        case .unknownBucket: "unknownBucket"
        case .notBucketOwner: "notBucketOwner"
        case .alreadyUnstaked: "alreadyUnstaked"
        case .stillLocked: "stillLocked"
        case .selfStakeBucket: "selfStakeBucket"
        case .notUnstaked: "notUnstaked"
        case .unbonding: "unbonding"
        case .invalidEvidence: "invalidEvidence"
        case .evidenceAlreadyUsed: "evidenceAlreadyUsed"
        }
    }
}
