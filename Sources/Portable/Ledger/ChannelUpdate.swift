import AmarsCodec
import AmarsCrypto

/// An amount promised inside a channel update on a condition: the recipient gets it only by showing the preimage
/// of `hashLock` (SHA-256) by `expiryHeight`. This is how a payment is relayed along channels (white paper §7.1):
/// each hop locks to the same hash, and the secret released at the end unlocks every hop.
public struct ChannelCondition: Equatable, Sendable, CanonicalCodable {
    public var hashLock: Bytes32
    public var amount: UInt64
    public var expiryHeight: UInt64

    public init(hashLock: Bytes32, amount: UInt64, expiryHeight: UInt64) {
        self.hashLock = hashLock
        self.amount = amount
        self.expiryHeight = expiryHeight
    }

    public func encode(to w: inout ByteWriter) {
        w.write(hashLock)
        w.writeVarint(amount)
        w.writeVarint(expiryHeight)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        hashLock = try r.readBytes32()
        amount = try r.readVarint()
        guard amount > 0 else { throw .invalidValue(.amount) }
        expiryHeight = try r.readVarint()
    }
}

/// An off-chain state of a one-way channel, signed by its sender: the cumulative amount settled to the recipient
/// and any amounts still pending on conditions. It travels between the parties with the chain's encoding and
/// reaches the chain once, in the recipient's ``ChannelClose``.
public struct ChannelUpdate: Equatable, Sendable, CanonicalCodable {
    /// The id of the transaction that opened the channel. It binds the update to one channel on one chain (the
    /// id is a hash over a body that names the genesis block).
    public var channelID: Bytes32
    /// Settled so far, in total: each payment raises it, and the recipient keeps only the highest.
    public var paid: UInt64
    /// Pending conditional amounts, by strictly increasing hash lock (so none appears twice).
    public var conditions: [ChannelCondition]
    public var signature: Bytes64

    public init(channelID: Bytes32, paid: UInt64, conditions: [ChannelCondition] = [], signature: Bytes64) {
        self.channelID = channelID
        self.paid = paid
        self.conditions = conditions
        self.signature = signature
    }

    /// The update the sender signs with its key. Conditions are put in hash-lock order.
    public init(
        channelID: Bytes32, paid: UInt64, conditions: [ChannelCondition] = [], sender: PrivateKey,
        auxRandom: Bytes32 = .zero
    ) {
        let sorted = conditions.sorted { $0.hashLock < $1.hashLock }
        self.init(
            channelID: channelID, paid: paid, conditions: sorted,
            signature: sender.signSchnorr(
                Self.signingHash(channelID: channelID, paid: paid, conditions: sorted), auxRandom: auxRandom))
    }

    /// What the sender signs: everything but the signature, under its own tag.
    public static func signingHash(channelID: Bytes32, paid: UInt64, conditions: [ChannelCondition]) -> Bytes32 {
        var w = ByteWriter()
        writeUnsigned(channelID: channelID, paid: paid, conditions: conditions, to: &w)
        return Domain.channelUpdate.hash(w.bytes)
    }

    /// What a channel's recipient signs to read its messages at a gateway's channel door after sequence `after`:
    /// only the recipient may, since a relay message names the next hop's notification address. Bound to the chain
    /// and the channel, so a signature is good for nothing else.
    public static func readHash(genesis: Bytes32, channelID: Bytes32, after: UInt64) -> Bytes32 {
        var w = ByteWriter()
        w.write(genesis)
        w.write(channelID)
        w.writeVarint(after)
        return Domain.channelRead.hash(w.bytes)
    }

    public func isSigned(by senderKey: Bytes32) -> Bool {
        guard let key = try? XOnlyPublicKey(bytes: senderKey) else { return false }
        return key.verifySchnorr(
            signature, message: Self.signingHash(channelID: channelID, paid: paid, conditions: conditions))
    }

    /// The settled amount plus every pending condition: the most a close with this update can pay (nil if it
    /// does not fit in 64 bits, which decoding already refuses).
    public var committed: UInt64? {
        var total = paid
        for condition in conditions {
            let (sum, overflow) = total.addingReportingOverflow(condition.amount)
            if overflow { return nil }
            total = sum
        }
        return total
    }

    /// Whether the recipient, holding `held`, should take this update instead at chain height `height`: every
    /// condition of `held` that can still be claimed is kept as it was, or settled (the settled total grew by at
    /// least what left); and it settles more, or settles the same and promises more. Anything else is stale or
    /// takes something away, and a recipient that took it would lose (a relay, what it owes downstream).
    public func supersedes(_ held: ChannelUpdate, height: UInt64) throws(ChannelError) {
        var removed: UInt64 = 0
        for condition in held.conditions where condition.expiryHeight >= height && !conditions.contains(condition) {
            removed = removed.addingReportingOverflow(condition.amount).overflow ? .max : removed + condition.amount
        }
        guard paid >= held.paid else { throw .staleUpdate(held: held.paid, offered: paid) }
        guard paid - held.paid >= removed else { throw .conditionDropped }
        // Only conditions still claimable count: an expired one is worth nothing to either side.
        guard paid > held.paid || held.claimable(at: height) < claimable(at: height) else {
            throw .staleUpdate(held: held.paid, offered: paid)
        }
    }

    /// The amounts pending on conditions that can still be claimed at `height` (saturating).
    func claimable(at height: UInt64) -> UInt64 {
        var total: UInt64 = 0
        for condition in conditions where condition.expiryHeight >= height {
            total = total.addingReportingOverflow(condition.amount).overflow ? .max : total + condition.amount
        }
        return total
    }

    private static func writeUnsigned(
        channelID: Bytes32, paid: UInt64, conditions: [ChannelCondition], to w: inout ByteWriter
    ) {
        w.write(channelID)
        w.writeVarint(paid)
        w.write(list: conditions)
    }

    public func encode(to w: inout ByteWriter) {
        Self.writeUnsigned(channelID: channelID, paid: paid, conditions: conditions, to: &w)
        w.write(signature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        channelID = try r.readBytes32()
        paid = try r.readVarint()
        conditions = try r.readList(cap: Caps.channelConditions)
        for i in conditions.indices.dropFirst() where !(conditions[i - 1].hashLock < conditions[i].hashLock) {
            throw .invalidValue(.ordering)
        }
        signature = try r.readBytes64()
        guard committed != nil else { throw .invalidValue(.amount) }
    }
}
