import AmarsCodec
import AmarsCrypto
import DeviceProtocol
import Ledger
import LightClient

/// Every case holds plain values, so errors cost a board no copy code.
///
/// Why a device operation stopped, apart from the link failing (that is the driver's error). Verification
/// failures, contradictions and gateway refusals are separate cases, so a caller retries the first kind of
/// trouble and raises an alarm on the second.
public enum DeviceError: Error, Equatable, Sendable {
    /// What the light client was checking when it refused.
    public enum Stage: Equatable, Sendable {
        case anchor
        case checkpoint(epoch: UInt64)
        case header(height: UInt64)
        case accountProof
        case transactionProof
        case receiptProof
        case escrowProof
        case htlcProof
        case channelProof
        case certificateProof
        /// The proof of an epoch's committed recipient filter hash, or the filter against that hash.
        case filterProof
        /// The proof of a notification address's record count or of one record.
        case notificationProof
    }

    /// Answers that each decode but contradict each other or the question: a faulty or lying gateway.
    public enum Inconsistency: Equatable, Sendable {
        /// A proof names another state root than the header of its block.
        case stateRootMismatch(DeviceResource, height: UInt64)
        /// The header served for height `asked` is of another height.
        case headerHeight(asked: UInt64, got: UInt64)
        /// An escrow, HTLC or channel proof from a block older than the head the device verified first: the
        /// object's status may have changed since (closed, claimed, refunded).
        case staleObjectProof(DeviceResource, proofHeight: UInt64, headHeight: UInt64)
        /// A certificate proof from a block before the verified head (a revocation since would not show).
        case staleCertificateProof(proofHeight: UInt64, headHeight: UInt64)
        /// The records sent are not one chain from the certificate asked for to a root.
        case certificateChain
        /// A transaction proof's receipt, position or block is not the proven transaction's.
        case transactionProof
        /// The inbox lists a transfer before the one asked for, one that does not pay the device, or another kind
        /// of transaction.
        case inboxEntry
        /// `v1/tx` answered with the id of another transaction (or no id).
        case submittedID
        /// `v1/skip` answered with a checkpoint of another epoch than asked, dated before the trusted one or in
        /// the future, or with a committee of another epoch.
        case skipOffer
        /// `v1/headers` served another header than the trusted checkpoint at its height.
        case trustedHeader
        /// `v1/notifications` answered for another index, or with a record past the count (or none below it).
        case notificationEntry
        /// `v1/filter` answered with another epoch's filter than asked.
        case filterEpoch
        /// `v1/commands` or `v1/channel/messages` listed a message not newer than the last one seen, or out of order.
        case messageSequence
    }

    /// The session has no trusted state: anchor first.
    case notAnchored
    /// The operation is compiled out of this image. A board links only what its firmware app runs, each left out
    /// by a compile switch: `DEVICE_NO_ESCROW`, `DEVICE_NO_INBOX`, `DEVICE_NO_COMMANDS`, `DEVICE_NO_CERTIFICATES` (proving a
    /// peer's certificate), `DEVICE_NO_RENEWAL` (renewing the device's own),
    /// `DEVICE_NO_PAYMENT_CODES`, `DEVICE_NO_HTLC`, `DEVICE_NO_CHANNELS`, `DEVICE_NO_SKIP` and
    /// `DEVICE_NO_REANCHOR` (Boards/Makefile sets them per app).
    case notBuiltIn
    /// The recipient filter's bytes do not decode, or do not hash to the committed value the proof showed.
    case filter(RecipientFilterError)
    /// The gateway answered `resource` with an error code; `diagnostic` is the start of its ASCII text.
    case gateway(DeviceResource, code: CoAPCode, diagnostic: ShortText)
    /// The answer to `resource` does not decode as the payload it promises.
    case undecodable(DeviceResource, CodecError)
    /// The light client refused the gateway's data; the trusted state is as it was before that item.
    case rejected(LightClientError, stage: Stage)
    case inconsistent(Inconsistency)
    /// A header older than the trusted epoch: its committee is no longer known, so it cannot be checked.
    case outsideTrust(height: UInt64)
    /// A header past the trusted epoch, and the gateway has no checkpoint leading to it.
    case noCheckpointTo(height: UInt64)
    /// Why a re-anchor statement was refused; the trusted state is as it was.
    public enum ReanchorRefusal: Equatable, Sendable {
        /// The device was provisioned with no operator key.
        case noOperatorKey
        /// Not signed by the provisioned operator key.
        case badSignature
        /// For an epoch before the one the device trusts: a rollback.
        case behindTrust(trusted: UInt64, offered: UInt64)
        /// Its checkpoint is itself older than the trusting period.
        case stale(ageMillis: UInt64)
        /// Its checkpoint is dated ahead of the device's clock by more than the allowed drift.
        case future(aheadMillis: UInt64)
        /// The header and committee do not form a checkpoint of this chain.
        case checkpoint(LightClientError)
    }

    /// The trusted committee is as old as the trusting period or older: its members may have unbonded, so a
    /// history they sign proves nothing. The device must be re-anchored.
    case trustExpired(ageMillis: UInt64, trustingPeriodMillis: UInt64)
    case reanchorRefused(ReanchorRefusal)
    /// The gateway serves another chain: its genesis header hashes to `genesisHeaderHash`, not to the anchor's.
    /// Nothing it said was trusted; the device is pointed at the wrong gateway (or provisioned for another chain).
    case otherChain(genesisHeaderHash: Bytes32)
    /// The gateway refused the transaction; `code` is the chain's refusal name (ASCII).
    case transactionRefused(code: ShortText)
    /// Not final within the wait.
    case notFinal(Bytes32)
    /// No transfer to the device arrived within the wait.
    case nothingReceived
    /// The session has no key to pay with.
    case noWallet
    /// The proven balance does not cover the amount (the fee comes on top).
    case insufficientFunds(balance: UInt64, amount: UInt64)
    /// The wallet refused to sign (zero amount, tip above the fee cap, ...).
    case wallet(WalletError)
    /// The proven HTLC cannot be claimed by this device with this secret (unknown, not open, another recipient's,
    /// expired, or locked to another hash): nothing was signed.
    case htlc(HTLCError)
    /// Final, but the proven receipt says the transaction failed.
    case failedOnChain(Receipt)
    /// An operation was started while another one is still running.
    case busy
}

/// The first 32 bytes of a gateway's text (a refusal code, a diagnostic), held inline so an error that carries
/// it stays a plain value.
public struct ShortText: Equatable, Sendable {
    public static let capacity = 32
    private let storage: Bytes32
    public let count: UInt8

    /// Not inlined: every refusal and diagnostic builds one, and a board has no flash for a copy at each.
    @inline(never)
    public init(_ bytes: [UInt8]) {
        let n = min(bytes.count, Self.capacity)
        var padded = [UInt8](repeating: 0, count: Self.capacity)
        for i in 0..<n { padded[i] = bytes[i] }
        storage = Bytes32(padded) ?? .zero
        count = UInt8(n)
    }

    public var bytes: [UInt8] { Array(storage.bytes.prefix(Int(count))) }
}
