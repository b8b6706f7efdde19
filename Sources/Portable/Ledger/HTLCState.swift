import AmarsCodec
import AmarsCrypto

/// A hash time-locked contract as the state tree holds it, under ``StateNamespace/htlc`` keyed by the id of the
/// transaction that locked it (``StateNamespace/htlcKey(_:)``). It stays after it ends, with its outcome and,
/// once claimed, the preimage: whoever is owed against the same hash (the next hop of a relayed payment) reads it
/// from the chain, with a proof. While open it holds the amount, which no account holds meanwhile.
public struct HTLCState: Equatable, Sendable, CanonicalCodable {
    public enum Status: UInt8, Sendable {
        case open = 0
        /// The recipient showed the preimage up to the expiry height and was paid.
        case claimed = 1
        /// The sender took the amount back after the expiry height.
        case refunded = 2
    }

    public var sender: Address
    public var recipient: Address
    public var amount: UInt64
    /// SHA-256 of the preimage.
    public var hashLock: Bytes32
    /// The last height at which the recipient may claim; after it, the sender may refund.
    public var expiryHeight: UInt64
    public var status: Status
    /// The preimage the claim revealed (zero unless claimed).
    public var preimage: Bytes32

    public init(
        sender: Address, recipient: Address, amount: UInt64, hashLock: Bytes32, expiryHeight: UInt64,
        status: Status = .open, preimage: Bytes32 = .zero
    ) {
        self.sender = sender
        self.recipient = recipient
        self.amount = amount
        self.hashLock = hashLock
        self.expiryHeight = expiryHeight
        self.status = status
        self.preimage = preimage
    }

    /// Tokens the contract holds: the amount while open, nothing once it ended.
    public var held: UInt64 { status == .open ? amount : 0 }

    public func encode(to w: inout ByteWriter) {
        w.write(sender)
        w.write(recipient)
        w.writeVarint(amount)
        w.write(hashLock)
        w.writeVarint(expiryHeight)
        w.write(status.rawValue)
        w.write(preimage)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        sender = try r.read()
        recipient = try r.read()
        amount = try r.readVarint()
        hashLock = try r.readBytes32()
        expiryHeight = try r.readVarint()
        let raw = try r.readU8()
        guard let status = Status(rawValue: raw) else { throw .unknownTag(raw) }
        self.status = status
        preimage = try r.readBytes32()
        // Only a claim reveals a preimage.
        guard status == .claimed || preimage == .zero else { throw .invalidValue(.range) }
    }

    public var valueHash: Bytes32 { Domain.stateValue.hash(encoded) }

    /// Whether `claimer` may claim this contract with `preimage` in a block at `height`: the chain's rule, which a
    /// device also applies to the proven state before it signs a claim the chain would refuse.
    public func checkClaim(by claimer: Address, preimage: Bytes32, height: UInt64) throws(HTLCError) {
        guard status == .open else { throw .notOpen }
        guard claimer == recipient else { throw .notRecipient }
        guard height <= expiryHeight else { throw .claimTooLate(expiryHeight: expiryHeight) }
        guard SHA256.hash(preimage.bytes) == hashLock else { throw .wrongPreimage }
    }
}

extension StateNamespace {
    /// The tree key of the HTLC locked by transaction `id`.
    public static func htlcKey(_ id: Bytes32) -> Bytes32 { StateNamespace.htlc.key(id.bytes) }
}

/// Why an HTLC lock, claim or refund was refused; each case names the rule broken.
public enum HTLCError: Error, Equatable, Sendable {
    /// The recipient is the sender.
    case sameParty
    /// The expiry height is not after the block the lock would be in.
    case expiryPassed(height: UInt64)
    case unknownHTLC
    case notOpen
    /// Only the recipient claims; only the sender refunds.
    case notRecipient
    case notSender
    /// SHA-256 of the preimage is not the lock's hash.
    case wrongPreimage
    /// The claim comes after the expiry height.
    case claimTooLate(expiryHeight: UInt64)
    /// The refund comes at or before the expiry height.
    case refundTooEarly(expiryHeight: UInt64)

    public var code: StaticString {
        switch self {
        case .sameParty: "htlcSameParty"
        case .expiryPassed: "expiryPassed"
        case .unknownHTLC: "unknownHTLC"
        case .notOpen: "htlcNotOpen"
        case .notRecipient: "notRecipient"
        case .notSender: "notSender"
        case .wrongPreimage: "wrongPreimage"
        case .claimTooLate: "claimTooLate"
        case .refundTooEarly: "refundTooEarly"
        }
    }
}
