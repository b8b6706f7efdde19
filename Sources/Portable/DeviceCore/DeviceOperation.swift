import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import DeviceProtocol
import Ledger
import LightClient

/// What a driver asks the device session to do. Each runs to one ``DeviceOutcome`` or one ``DeviceError``;
/// the session changes its trusted state only through verified checkpoints along the way.
public enum DeviceOperation: Equatable, Sendable {
    /// Fetch the genesis header and anchor trust in it (a device with no saved state).
    case anchor
    /// Follow checkpoints from the trusted epoch until the gateway has none left, or `maxEpochs` were taken.
    case sync(maxEpochs: UInt64)
    /// The gateway's head, verified (following checkpoints first when it is past the trusted epoch).
    case head
    /// An account's state proven against the state root of a verified header.
    case account(Address)
    /// A rental escrow's state (or absence) proven against a header no older than the verified head.
    case escrow(Bytes32)
    /// An HTLC's state (or absence) proven against a header no older than the verified head.
    case htlc(Bytes32)
    /// Claim an HTLC with its secret: the contract proven open, for this device, unexpired for
    /// ``HTLCClaimOrder/marginBlocks`` more blocks and locked to the secret's hash (so no fee is spent on a claim
    /// the chain would refuse), then the claim signed, submitted and
    /// proven final and successful.
    /// (Boxed: the order is the largest operation, and a board copies every operation it starts.)
    indirect case claim(HTLCClaimOrder)
    #if !DEVICE_NO_RENEWAL
        /// Renew the device's short-lived certificate: a certificate for the order's fresh key, issued by the device's
        /// own key (the wallet's) and dated by the verified head's time, published from the device's account and
        /// proven final and successful. A success means the chain took it, so the device's long-lived certificate and
        /// its ancestors were valid at that block.
        indirect case renew(CertificateRenewalOrder)
    #endif
    /// A payment channel's state (or absence) proven against a header no older than the verified head: what the
    /// recipient checks an off-chain update against (``PaymentChannel/accept(_:channelID:holding:height:)``).
    case channel(Bytes32)
    /// A certificate's records up to its root (or its absence) proven against a header no older than the verified
    /// head, and its standing at that header's time: what a device checks before trusting a peer or a controller.
    case certificate(Bytes32)
    /// A transaction proven in a final block, its receipt too; asked again every poll interval until
    /// `waitMillis` pass while the gateway answers "not final yet".
    case inclusion(Bytes32, waitMillis: UInt32)
    /// Submit a signed transaction; the gateway must answer with its id.
    case submit(OutgoingTransaction)
    /// Wait at most `waitMillis` for a final transfer paying `address` listed from block `from`, position
    /// `position` on, and prove it; transfers whose proven receipt says failed are passed over.
    case receive(Address, from: UInt64, position: UInt64, waitMillis: UInt32)
    /// Prove the device's own balance and nonce, sign a transfer, submit it and prove it final and successful.
    case pay(PaymentOrder)
    /// Payment-code notification record `index` of `address` (its notification address), proven against the
    /// state of a verified header; ``DeviceOutcome/notified(_:)`` with nil when the proven count is not past it.
    case notification(Address, index: UInt64)
    /// Test `watching` against epoch `epoch`'s recipient filter, checked against the hash the state of a
    /// verified header commits to. The gateway learns the epoch asked about, never the addresses.
    case recipientFilter(epoch: UInt64, watching: [Address])
    /// The commands waiting for `address` at the gateway's command door after sequence `after`, oldest first.
    /// Nothing about them is proven: the device checks each command's signature and its controller's
    /// certificate (``certificate(_:)``) before it obeys.
    case commands(Address, after: UInt64)
    /// The messages of payment channel `id` waiting at the gateway's channel door after sequence `after`, oldest
    /// first, read with the device's key (it must be the channel's recipient: the read is signed). Nothing about
    /// them is proven: the recipient checks each update against the channel it proved (``channel(_:)``) before it
    /// keeps it.
    case channelMessages(Bytes32, after: UInt64)
}

/// A signed transaction as the device sends it: its bytes, and the id and nonce the answers are checked against.
/// Kept apart from ``SignedTransaction`` so a board copies one array, not every payload kind's fields.
public struct OutgoingTransaction: Equatable, Sendable {
    public let id: Bytes32
    public let nonce: UInt64
    public let encoded: [UInt8]

    public init(_ transaction: SignedTransaction) {
        id = transaction.id
        nonce = transaction.body.nonce
        encoded = transaction.encoded
    }
}

/// A payment the device makes from its own account (the session's wallet).
public struct PaymentOrder: Equatable, Sendable {
    public var recipient: Address
    public var amount: UInt64
    public var tipPerUnit: UInt64
    /// Most the device pays per resource unit; nil: twice the next base fee plus the tip, so the payment still
    /// fits if the base fee doubles before it lands.
    public var maxFeePerUnit: UInt64?
    /// BIP340 auxiliary randomness for the signature: fresh bytes from the device's RNG when it has one.
    public var auxRandom: Bytes32
    /// How long to wait for the payment to become final.
    public var finalityMillis: UInt32

    public init(
        recipient: Address, amount: UInt64, tipPerUnit: UInt64 = 1, maxFeePerUnit: UInt64? = nil,
        auxRandom: Bytes32 = .zero, finalityMillis: UInt32 = 30_000
    ) {
        self.recipient = recipient
        self.amount = amount
        self.tipPerUnit = tipPerUnit
        self.maxFeePerUnit = maxFeePerUnit
        self.auxRandom = auxRandom
        self.finalityMillis = finalityMillis
    }
}

/// An HTLC claim the device makes from its own account (the session's wallet), which pays the fee.
public struct HTLCClaimOrder: Equatable, Sendable {
    /// Blocks between the contract's proof and the latest block the claim is expected in: a contract that
    /// expires sooner is not claimed (its claim could land too late and fail with its fee spent).
    public static let marginBlocks: UInt64 = 3

    public var claim: HTLCClaim
    public var tipPerUnit: UInt64
    /// Most the device pays per resource unit; nil: twice the next base fee plus the tip.
    public var maxFeePerUnit: UInt64?
    public var auxRandom: Bytes32
    public var finalityMillis: UInt32

    public init(
        lockID: Bytes32, preimage: Bytes32, tipPerUnit: UInt64 = 1, maxFeePerUnit: UInt64? = nil,
        auxRandom: Bytes32 = .zero, finalityMillis: UInt32 = 30_000
    ) {
        claim = HTLCClaim(lockID: lockID, preimage: preimage)
        self.tipPerUnit = tipPerUnit
        self.maxFeePerUnit = maxFeePerUnit
        self.auxRandom = auxRandom
        self.finalityMillis = finalityMillis
    }

    /// The claim's fee terms in the form the session signs every transaction of its own with.
    var terms: PaymentOrder {
        PaymentOrder(
            recipient: .init(raw: .zero), amount: 0, tipPerUnit: tipPerUnit, maxFeePerUnit: maxFeePerUnit,
            auxRandom: auxRandom, finalityMillis: finalityMillis)
    }
}

/// A short-lived certificate the device issues for `publicKey` and publishes from its own account (the session's
/// wallet), which pays the fee.
public struct CertificateRenewalOrder: Equatable, Sendable {
    public let publicKey: PublicKey
    /// Seconds, within ``ShortLivedCertificate/lifetimes`` (the chain's bounds).
    public let lifetimeSeconds: UInt64
    /// The publication's fee terms, in the form the session signs every transaction of its own with.
    let terms: PaymentOrder

    /// Nil when the lifetime is one the chain refuses. `maxFeePerUnit` nil: twice the next base fee plus the tip.
    public init?(
        publicKey: PublicKey, lifetimeSeconds: UInt64, tipPerUnit: UInt64 = 1, maxFeePerUnit: UInt64? = nil,
        auxRandom: Bytes32 = .zero, finalityMillis: UInt32 = 30_000
    ) {
        guard ShortLivedCertificate.lifetimes.contains(lifetimeSeconds) else { return nil }
        self.publicKey = publicKey
        self.lifetimeSeconds = lifetimeSeconds
        terms = PaymentOrder(
            recipient: .init(raw: .zero), amount: 0, tipPerUnit: tipPerUnit, maxFeePerUnit: maxFeePerUnit,
            auxRandom: auxRandom, finalityMillis: finalityMillis)
    }
}

/// What an operation proved.
///
/// Every case holds plain values (no arrays), boxed: a board passes outcomes up through its driver, and each
/// copy of a few hundred bytes would cost it stack and copy code. The trusted state itself is
/// ``DeviceSession/trusted``.
public indirect enum DeviceOutcome: Equatable, Sendable {
    /// Trust is anchored at the genesis header (``DeviceSession/trusted`` holds the new state).
    case anchored
    case synced(SyncProgress)
    case head(TrustedHeader)
    case account(VerifiedAccount)
    case escrow(VerifiedEscrow)
    case htlc(VerifiedHTLC)
    case channel(VerifiedChannel)
    /// The HTLC claimed: its amount is the device's, proven.
    case claimed(VerifiedClaim)
    #if !DEVICE_NO_RENEWAL
        case renewed(VerifiedRenewal)
    #endif
    case certificate(VerifiedCertificate)
    case included(VerifiedInclusion)
    case submitted(Bytes32)
    case received(VerifiedIncoming)
    case paid(VerifiedPayment)
    /// Nil: the proven count of notifications is not past the index asked.
    case notified(VerifiedNotification?)
    case filtered(VerifiedFilterMatch)
    case commands(CommandsPayload)
    case channelMessages(MailboxPayload)
}

/// A header the device now trusts, and why: what a caller reads of it (the proofs it vouched for were checked
/// against its roots already), without the header's variable-length parts.
public struct TrustedHeader: Equatable, Sendable {
    public enum Basis: Equatable, Sendable {
        /// Its certificate carried `signatures` valid signatures of the trusted committee, `weight` of
        /// `totalWeight`, more than two thirds.
        case certificate(signatures: Int, weight: UInt64, totalWeight: UInt64)
        /// It is the checkpoint (or genesis header) the trusted state itself was advanced to.
        case trustedCheckpoint
    }

    public let hash: Bytes32
    public let chainID: UInt32
    public let height: UInt64
    public let epoch: UInt64
    public let timestamp: UInt64
    public let stateRoot: Bytes32
    public let baseFee: UInt64
    public let unitsUsed: UInt64
    public let basis: Basis

    public init(_ header: BlockHeader, hash: Bytes32, basis: Basis) {
        self.hash = hash
        chainID = header.chainID
        height = header.height
        epoch = header.epoch
        timestamp = header.timestamp
        stateRoot = header.stateRoot
        baseFee = header.baseFee
        unitsUsed = header.unitsUsed
        self.basis = basis
    }

    /// The base fee of the block after this one: what a transaction signed now should be ready to pay.
    public var nextBaseFee: UInt64 { FeeSchedule.standard.nextBaseFee(baseFee: baseFee, unitsUsed: unitsUsed) }
}

/// How far a sync moved trust.
public struct SyncProgress: Equatable, Sendable {
    public var fromEpoch: UInt64
    public var toEpoch: UInt64
    /// Checkpoints verified, skips included.
    public var checkpoints: Int
    /// Schnorr signatures checked across those checkpoints' certificates.
    public var signaturesChecked: Int
    /// Of ``checkpoints``, those accepted by skipping (a third of the trusted weight, not every epoch).
    public var skips: Int

    public init(
        fromEpoch: UInt64, toEpoch: UInt64, checkpoints: Int = 0, signaturesChecked: Int = 0, skips: Int = 0
    ) {
        self.fromEpoch = fromEpoch
        self.toEpoch = toEpoch
        self.checkpoints = checkpoints
        self.signaturesChecked = signaturesChecked
        self.skips = skips
    }
}

/// An account state proven against a trusted header's state root.
public struct VerifiedAccount: Equatable, Sendable {
    public let address: Address
    public let state: AccountState
    public let header: TrustedHeader
}

/// A state object kept by the id of the transaction that made it (an escrow, an HTLC, a channel), or its absence,
/// proven against a trusted header's state root.
public struct VerifiedObject<State: Equatable & Sendable>: Equatable, Sendable {
    public let id: Bytes32
    /// Nil: proven that no such object has this id.
    public let state: State?
    public let header: TrustedHeader
}

/// What a lock acts on.
public typealias VerifiedEscrow = VerifiedObject<EscrowState>
public typealias VerifiedHTLC = VerifiedObject<HTLCState>
public typealias VerifiedChannel = VerifiedObject<PaymentChannel>

/// An HTLC claimed by the device: the contract as proven open before the claim, and the claim proven final.
public struct VerifiedClaim: Equatable, Sendable {
    public let lockID: Bytes32
    public let amount: UInt64
    public let payment: VerifiedPayment
}

/// A short-lived certificate the device issued and published, proven final and successful.
public struct VerifiedRenewal: Equatable, Sendable {
    /// The certificate (DER): what the device's TLS stack presents, with its long-lived certificate after it.
    public let der: [UInt8]
    public let id: Bytes32
    /// Unix seconds, inclusive.
    public let notBefore: UInt64
    public let notAfter: UInt64
    public let payment: VerifiedPayment
}

/// A certificate's standing proven against a trusted header: nil when the state proves no certificate has the id.
public struct VerifiedCertificate: Equatable, Sendable {
    public let id: Bytes32
    public let standing: CertificateStanding?
    /// The account of the certificate's key (its subject key identifier).
    public let account: Address?
    public let header: TrustedHeader
    /// The id of the root the chain ends at. Anyone may anchor a root, so a device trusts a peer only under the
    /// root it was provisioned with (the operator's).
    public var root: Bytes32? = nil

    public var isValid: Bool { standing == .valid }
}

/// A transaction proven to be in a trusted (hence final) block.
public struct VerifiedInclusion: Equatable, Sendable {
    public let id: Bytes32
    public let header: TrustedHeader
    /// Proven: it is the index the Merkle path was checked at.
    public let position: UInt64
    /// Proven too: its Merkle path to the header's receipts root was checked at the same position, so status
    /// and fee are the chain's word, not the gateway's.
    public let receipt: Receipt
    /// How many times the gateway was asked before it was final.
    public let polls: Int
}

/// A transfer to the device, proven final and successful.
public struct VerifiedIncoming: Equatable, Sendable {
    public let transfer: IncomingTransfer
    public let inclusion: VerifiedInclusion
}

/// A payment-code notification record of the device's notification address, proven against a trusted header's
/// state root (what it unmasks next).
public struct VerifiedNotification: Equatable, Sendable {
    public let index: UInt64
    /// How many records the address had at that header.
    public let count: UInt64
    public let record: PaymentNotificationRecord
    public let header: TrustedHeader
}

/// Which watched addresses an epoch's committed recipient filter matched (in the order they were given). A
/// match may be a false positive (about one in 784,931 per address); no match is certain.
public struct VerifiedFilterMatch: Equatable, Sendable {
    public let epoch: UInt64
    public let matched: [Bool]
    public let filterBytes: Int
    public let header: TrustedHeader
}

/// A payment the device made, proven final and successful.
public struct VerifiedPayment: Equatable, Sendable {
    /// The payment's transaction id and nonce.
    public let id: Bytes32
    public let nonce: UInt64
    public let inclusion: VerifiedInclusion
}
