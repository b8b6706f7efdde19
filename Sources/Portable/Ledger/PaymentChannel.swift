import AmarsCodec
import AmarsCrypto

/// A one-way payment channel as the state tree holds it, under ``StateNamespace/channel`` keyed by the id of the
/// transaction that opened it (``StateNamespace/channelKey(_:)``). The sender's deposit sits here while it is
/// open; off chain the sender signs ever larger ``ChannelUpdate``s, and the recipient closes with the best one it
/// holds. One-way channels need no revocation: only the recipient closes with a state, and a later state is never
/// worse for it. It stays after it ends, with what the recipient was paid.
public struct PaymentChannel: Equatable, Sendable, CanonicalCodable {
    public enum Status: UInt8, Sendable {
        case open = 0
        /// The recipient closed it with a signed update; ``paidOut`` went to it and the rest back to the sender.
        case closed = 1
        /// The sender took the whole deposit back after the expiry height.
        case refunded = 2
    }

    public var sender: Address
    /// The sender's x-only key, which signs the updates (the opening transaction's signer).
    public var senderKey: Bytes32
    public var recipient: Address
    public var deposit: UInt64
    /// The last height at which the recipient may close; after it, the sender may take the deposit back.
    public var expiryHeight: UInt64
    public var status: Status
    /// What the close paid the recipient (zero unless closed).
    public var paidOut: UInt64
    /// The preimages the close showed (none unless closed), kept so that whoever is owed against the same hash
    /// upstream (the previous hop of a relayed payment) reads them from the chain, with a proof.
    public var revealed: [Bytes32]

    public init(
        sender: Address, senderKey: Bytes32, recipient: Address, deposit: UInt64, expiryHeight: UInt64,
        status: Status = .open, paidOut: UInt64 = 0, revealed: [Bytes32] = []
    ) {
        self.sender = sender
        self.senderKey = senderKey
        self.recipient = recipient
        self.deposit = deposit
        self.expiryHeight = expiryHeight
        self.status = status
        self.paidOut = paidOut
        self.revealed = revealed
    }

    /// Tokens the channel holds: the deposit while open, nothing once it ended.
    public var held: UInt64 { status == .open ? deposit : 0 }

    /// Whether `update` is one the sender of this channel signed for it, within its deposit. Both the chain (at
    /// close) and the recipient (before it accepts a payment off chain) ask this, so they refuse the same updates.
    public func check(_ update: ChannelUpdate, channelID: Bytes32) throws(ChannelError) {
        guard update.channelID == channelID else { throw .wrongChannel }
        guard let committed = update.committed, committed <= deposit else {
            throw .overDeposit(committed: update.committed ?? .max, deposit: deposit)
        }
        guard update.isSigned(by: senderKey) else { throw .badUpdateSignature }
    }

    /// Blocks before the channel's expiry height after which a recipient takes no more updates: its close must
    /// still reach a block in time.
    public static let closeMargin: UInt64 = 5

    /// The sender's next update at chain height `height`: `amount` more settled on top of `last` (the one it
    /// signed before, nil for the first payment), the conditions still claimable carried over and the expired
    /// ones dropped. The sender refuses to promise more than the deposit, as the recipient and the chain would.
    public func pay(
        _ amount: UInt64, after last: ChannelUpdate?, channelID: Bytes32, height: UInt64, sender: PrivateKey,
        auxRandom: Bytes32 = .zero
    ) throws(ChannelError) -> ChannelUpdate {
        try next(
            after: last, channelID: channelID, height: height, sender: sender, auxRandom: auxRandom, paying: amount)
    }

    /// The sender's next update with `condition` added (a relayed payment's hop), the settled total unchanged.
    public func lock(
        _ condition: ChannelCondition, after last: ChannelUpdate?, channelID: Bytes32, height: UInt64,
        sender: PrivateKey, auxRandom: Bytes32 = .zero
    ) throws(ChannelError) -> ChannelUpdate {
        guard last?.conditions.contains(where: { $0.hashLock == condition.hashLock }) != true else {
            throw .conditionExists
        }
        guard condition.expiryHeight > height else { throw .conditionExpired(expiryHeight: condition.expiryHeight) }
        guard leavesTimeToClaim(condition) else { throw .conditionOutlivesChannel(channelExpiry: expiryHeight) }
        return try next(
            after: last, channelID: channelID, height: height, sender: sender, auxRandom: auxRandom, adding: condition)
    }

    /// The sender's next update once the recipient showed `preimage`: its condition leaves the update and its
    /// amount joins the settled total, so the recipient need not close on chain to be paid.
    public func settle(
        _ preimage: Bytes32, after last: ChannelUpdate?, channelID: Bytes32, height: UInt64, sender: PrivateKey,
        auxRandom: Bytes32 = .zero
    ) throws(ChannelError) -> ChannelUpdate {
        let hash = SHA256.hash(preimage.bytes)
        guard let condition = last?.conditions.first(where: { $0.hashLock == hash }) else { throw .unmatchedPreimage }
        // After its expiry the recipient could no longer claim it on chain: it is dropped, not paid.
        guard condition.expiryHeight >= height else { throw .conditionExpired(expiryHeight: condition.expiryHeight) }
        return try next(
            after: last, channelID: channelID, height: height, sender: sender, auxRandom: auxRandom,
            paying: condition.amount, removing: hash)
    }

    private func next(
        after last: ChannelUpdate?, channelID: Bytes32, height: UInt64, sender: PrivateKey, auxRandom: Bytes32,
        paying amount: UInt64 = 0, adding condition: ChannelCondition? = nil, removing hashLock: Bytes32? = nil
    ) throws(ChannelError) -> ChannelUpdate {
        guard status == .open else { throw .notOpen }
        guard sender.xOnlyPublicKey.bytes == senderKey else { throw .notSender }
        var conditions = (last?.conditions ?? []).filter { $0.hashLock != hashLock && $0.expiryHeight >= height }
        if let condition { conditions.append(condition) }
        let (total, overflow) = (last?.paid ?? 0).addingReportingOverflow(amount)
        let unsigned = ChannelUpdate(
            channelID: channelID, paid: overflow ? .max : total, conditions: conditions,
            signature: Bytes64(first: .zero, second: .zero))
        guard !overflow, let committed = unsigned.committed, committed <= deposit else {
            throw .overDeposit(committed: unsigned.committed ?? .max, deposit: deposit)
        }
        guard conditions.count <= Caps.channelConditions else { throw .tooManyConditions }
        return ChannelUpdate(
            channelID: channelID, paid: total, conditions: conditions, sender: sender, auxRandom: auxRandom)
    }

    /// The recipient's check, at chain height `height`, of an update before it takes it instead of `holding`
    /// (the best it held so far): the channel is open and can still be closed in time, the update is this
    /// channel's, signed by its sender, within the deposit, every condition can be claimed on chain before the
    /// channel expires, and it is better for the recipient than what it holds (``ChannelUpdate/supersedes(_:height:)``).
    public func accept(_ update: ChannelUpdate, channelID: Bytes32, holding: ChannelUpdate?, height: UInt64)
        throws(ChannelError)
    {
        guard status == .open else { throw .notOpen }
        // Written as subtractions: the heights are the counterparty's, and a sum could overflow.
        guard expiryHeight >= Self.closeMargin, height <= expiryHeight - Self.closeMargin else {
            throw .closingSoon(expiryHeight: expiryHeight)
        }
        try check(update, channelID: channelID)
        for condition in update.conditions where !leavesTimeToClaim(condition) {
            throw .conditionOutlivesChannel(channelExpiry: expiryHeight)
        }
        if let holding { try update.supersedes(holding, height: height) }
    }

    /// Whether `condition` expires at least ``closeMargin`` blocks before the channel, so a close showing its
    /// preimage can still reach a block.
    public func leavesTimeToClaim(_ condition: ChannelCondition) -> Bool {
        expiryHeight >= Self.closeMargin && condition.expiryHeight <= expiryHeight - Self.closeMargin
    }

    /// What the recipient is paid when it closes with `update` at `height`, revealing `preimages`: the settled
    /// amount and every condition whose preimage is shown up to that condition's expiry height.
    public static func payout(_ update: ChannelUpdate, preimages: [Bytes32], height: UInt64) throws(ChannelError)
        -> UInt64
    {
        var total = update.paid
        for preimage in preimages {
            let hash = SHA256.hash(preimage.bytes)
            guard let condition = update.conditions.first(where: { $0.hashLock == hash }) else {
                throw .unmatchedPreimage
            }
            guard height <= condition.expiryHeight else {
                throw .conditionExpired(expiryHeight: condition.expiryHeight)
            }
            // The update decoded with distinct hash locks and a total that fits, so no condition counts twice and
            // the sum cannot overflow; a preimage given twice is refused here.
            guard preimages.count(where: { $0 == preimage }) == 1 else { throw .unmatchedPreimage }
            total += condition.amount
        }
        return total
    }

    public func encode(to w: inout ByteWriter) {
        w.write(sender)
        w.write(senderKey)
        w.write(recipient)
        w.writeVarint(deposit)
        w.writeVarint(expiryHeight)
        w.write(status.rawValue)
        w.writeVarint(paidOut)
        w.write(list: revealed)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        sender = try r.read()
        senderKey = try r.readBytes32()
        recipient = try r.read()
        deposit = try r.readVarint()
        expiryHeight = try r.readVarint()
        let raw = try r.readU8()
        guard let status = Status(rawValue: raw) else { throw .unknownTag(raw) }
        self.status = status
        paidOut = try r.readVarint()
        guard paidOut <= deposit, status == .closed || paidOut == 0 else { throw .invalidValue(.amount) }
        revealed = try r.readList(cap: Caps.channelConditions)
        guard status == .closed || revealed.isEmpty else { throw .invalidValue(.range) }
    }

    public var valueHash: Bytes32 { Domain.stateValue.hash(encoded) }
}

extension StateNamespace {
    /// The tree key of the channel opened by transaction `id`.
    public static func channelKey(_ id: Bytes32) -> Bytes32 { StateNamespace.channel.key(id.bytes) }
}

/// Why a channel open, close, refund or off-chain update was refused; each case names the rule broken.
public enum ChannelError: Error, Equatable, Sendable {
    /// The recipient is the sender.
    case sameParty
    /// The expiry height is not after the block the open would be in.
    case expiryPassed(height: UInt64)
    case unknownChannel
    case notOpen
    /// Only the recipient closes; only the sender takes the deposit back.
    case notRecipient
    case notSender
    /// The update names another channel.
    case wrongChannel
    /// The update is not signed by the channel's sender.
    case badUpdateSignature
    /// The update's settled amount and conditions together exceed the deposit.
    case overDeposit(committed: UInt64, deposit: UInt64)
    /// A preimage that opens none of the update's conditions (or is given twice).
    case unmatchedPreimage
    /// A condition's preimage shown after that condition's expiry height.
    case conditionExpired(expiryHeight: UInt64)
    /// The close comes after the channel's expiry height.
    case closeTooLate(expiryHeight: UInt64)
    /// The refund comes at or before the channel's expiry height.
    case refundTooEarly(expiryHeight: UInt64)
    /// Off chain: the update pays the recipient no more than the one it already holds.
    case staleUpdate(held: UInt64, offered: UInt64)
    /// Off chain: the sender has as many conditions pending as an update holds (``Caps/channelConditions``).
    case tooManyConditions
    /// Off chain: a condition with this hash lock is already pending in the channel.
    case conditionExists
    /// Off chain: the channel expires too soon for a close to reach a block (``PaymentChannel/closeMargin``).
    case closingSoon(expiryHeight: UInt64)
    /// Off chain: a condition expires after the channel can still be closed, so it could never be claimed.
    case conditionOutlivesChannel(channelExpiry: UInt64)
    /// Off chain: the update drops or shrinks a condition that can still be claimed, without settling it.
    case conditionDropped

    public var code: StaticString {
        switch self {
        case .sameParty: "channelSameParty"
        case .expiryPassed: "channelExpiryPassed"
        case .unknownChannel: "unknownChannel"
        case .notOpen: "channelNotOpen"
        case .notRecipient: "channelNotRecipient"
        case .notSender: "channelNotSender"
        case .wrongChannel: "wrongChannel"
        case .badUpdateSignature: "badUpdateSignature"
        case .overDeposit: "overDeposit"
        case .unmatchedPreimage: "unmatchedPreimage"
        case .conditionExpired: "conditionExpired"
        case .closeTooLate: "closeTooLate"
        case .refundTooEarly: "channelRefundTooEarly"
        case .staleUpdate: "staleUpdate"
        case .tooManyConditions: "tooManyConditions"
        case .conditionExists: "conditionExists"
        case .closingSoon: "channelClosingSoon"
        case .conditionOutlivesChannel: "conditionOutlivesChannel"
        case .conditionDropped: "conditionDropped"
        }
    }
}
