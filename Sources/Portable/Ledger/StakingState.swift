import AmarsCodec
import AmarsCrypto

/// A delegate candidate as the state tree holds it (namespace ``StateNamespace/candidate``, keyed by the
/// owner's address), so a light client can check a candidate with a state proof.
public struct CandidateState: Equatable, Sendable, CanonicalCodable {
    public var name: [UInt8]
    public var operatorKey: Bytes32
    public var rewardAddress: Address
    public var rewardShareBps: UInt16
    /// The bucket holding the candidate's own stake; its amount must stay at or above the minimum.
    public var selfStakeBucket: UInt64
    /// Sum of the vote weights of every bucket delegated to this candidate, self-stake included.
    public var totalWeight: UInt64
    /// Set by double-sign evidence: an ejected candidate is never elected again.
    public var ejected: Bool

    public init(
        name: [UInt8], operatorKey: Bytes32, rewardAddress: Address, rewardShareBps: UInt16, selfStakeBucket: UInt64,
        totalWeight: UInt64, ejected: Bool = false
    ) {
        self.name = name
        self.operatorKey = operatorKey
        self.rewardAddress = rewardAddress
        self.rewardShareBps = rewardShareBps
        self.selfStakeBucket = selfStakeBucket
        self.totalWeight = totalWeight
        self.ejected = ejected
    }

    public func encode(to w: inout ByteWriter) {
        w.writeLengthPrefixed(name)
        w.write(operatorKey)
        w.write(rewardAddress)
        w.writeVarint(UInt64(rewardShareBps))
        w.writeVarint(selfStakeBucket)
        w.writeVarint(totalWeight)
        w.writeBool(ejected)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        name = try r.readLengthPrefixed(cap: Caps.candidateNameBytes)
        operatorKey = try r.readBytes32()
        rewardAddress = try r.read()
        let share = try r.readVarint()
        guard share <= 10_000 else { throw .invalidValue(.range) }
        rewardShareBps = UInt16(share)
        selfStakeBucket = try r.readVarint()
        totalWeight = try r.readVarint()
        ejected = try r.readBool()
    }
}

/// A stake bucket (namespace ``StateNamespace/bucket``, keyed by its id): tokens locked for a duration and
/// delegated to a candidate.
public struct BucketState: Equatable, Sendable, CanonicalCodable {
    public var owner: Address
    public var candidate: Address
    public var amount: UInt64
    public var durationEpochs: UInt32
    public var autoStake: Bool
    /// Epoch from which the lock runs (restarted by restake).
    public var startEpoch: UInt64
    /// Epoch of the unstake, if any: the tokens are withdrawable once the unbonding period has passed.
    public var unstakedEpoch: UInt64?

    public init(
        owner: Address, candidate: Address, amount: UInt64, durationEpochs: UInt32, autoStake: Bool, startEpoch: UInt64,
        unstakedEpoch: UInt64? = nil
    ) {
        self.owner = owner
        self.candidate = candidate
        self.amount = amount
        self.durationEpochs = durationEpochs
        self.autoStake = autoStake
        self.startEpoch = startEpoch
        self.unstakedEpoch = unstakedEpoch
    }

    /// Vote weight: the amount plus a bonus for commitment, +0.1% per epoch of lock up to +50%, and +10% while
    /// auto-staking (the lock never runs down). Nothing once unstaked. 128-bit, so no amount can overflow it.
    public var weight: UInt64 {
        guard unstakedEpoch == nil else { return 0 }
        let bonusBps = UInt64(min(UInt64(durationEpochs) * 10, 5_000)) + (autoStake ? 1_000 : 0)
        let product = amount.multipliedFullWidth(by: 10_000 + bonusBps)
        guard product.high < 10_000 else { return UInt64.max }  // unreachable with a 5×10^17 supply
        return UInt64(10_000).dividingFullWidth(product).quotient
    }

    /// The epoch at which the lock ends; auto-staked buckets never reach it.
    public var lockEndEpoch: UInt64 { startEpoch + UInt64(durationEpochs) }

    public func encode(to w: inout ByteWriter) {
        w.write(owner)
        w.write(candidate)
        w.writeVarint(amount)
        w.writeVarint(UInt64(durationEpochs))
        w.writeBool(autoStake)
        w.writeVarint(startEpoch)
        w.writeBool(unstakedEpoch != nil)
        if let e = unstakedEpoch { w.writeVarint(e) }
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        owner = try r.read()
        candidate = try r.read()
        amount = try r.readVarint()
        durationEpochs = try r.readVarint32()
        autoStake = try r.readBool()
        startEpoch = try r.readVarint()
        unstakedEpoch = try r.readBool() ? try r.readVarint() : nil
    }
}

/// The delegate pool elected for an epoch: the top candidates by weight at the mid-epoch snapshot of the
/// epoch before, recorded on chain (namespace ``StateNamespace/election``) so anyone can recompute it.
public struct DelegatePool: Equatable, Sendable, CanonicalCodable {
    public struct Delegate: Equatable, Sendable, CanonicalCodable {
        public var candidate: Address
        public var operatorKey: Bytes32
        public var weight: UInt64

        public init(candidate: Address, operatorKey: Bytes32, weight: UInt64) {
            self.candidate = candidate
            self.operatorKey = operatorKey
            self.weight = weight
        }

        public func encode(to w: inout ByteWriter) {
            w.write(candidate)
            w.write(operatorKey)
            w.writeVarint(weight)
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            candidate = try r.read()
            operatorKey = try r.readBytes32()
            weight = try r.readVarint()
        }
    }

    public var epoch: UInt64
    public var delegates: [Delegate]

    public init(epoch: UInt64, delegates: [Delegate]) {
        self.epoch = epoch
        self.delegates = delegates
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(epoch)
        w.write(list: delegates)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        epoch = try r.readVarint()
        delegates = try r.readList(cap: Caps.committeeMembers)
    }
}
