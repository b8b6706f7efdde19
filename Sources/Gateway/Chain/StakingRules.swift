import AmarsCodec
import AmarsCrypto
import Ledger

/// The staking protocol (white paper §8 step 1): candidates, stake buckets and their vote weights, and the
/// mid-epoch election of the delegate pool. Pure: it reads the overlay and returns what to write.
public struct StakingRules: Sendable {
    public let parameters: Genesis.StakingParameters

    public init(parameters: Genesis.StakingParameters) { self.parameters = parameters }

    public struct Effect {
        public var writes: [(ObjectKey, [UInt8]?)] = []
        /// Tokens returned to the sender (a withdrawal).
        public var withdrawn: UInt64 = 0
    }

    // MARK: keys and typed reads

    public static func candidateKey(_ owner: Address) -> ObjectKey { ObjectKey(.candidate, owner.raw.bytes) }
    public static func nameKey(_ name: [UInt8]) -> ObjectKey { ObjectKey(.candidateName, name) }
    public static let nextBucketKey = ObjectKey(.counters, Array("nextBucket".utf8))

    public static func bucketKey(_ id: UInt64) -> ObjectKey { ObjectKey(.bucket, bigEndian(id)) }

    public static func electionKey(epoch: UInt64) -> ObjectKey { ObjectKey(.election, bigEndian(epoch)) }

    /// The committee drawn for an epoch (recorded at the last block of the epoch before).
    public static func committeeKey(epoch: UInt64) -> ObjectKey {
        ObjectKey(.election, Array("c".utf8) + bigEndian(epoch))
    }

    /// The VRF seed of an epoch (recorded with its committee).
    public static func seedKey(epoch: UInt64) -> ObjectKey { ObjectKey(.election, Array("s".utf8) + bigEndian(epoch)) }

    private static func bigEndian(_ epoch: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: epoch >> UInt64(56 - 8 * $0)) }
    }

    /// Objects were written by this code from canonical encodings, so a decode failure is a corrupt store.
    static func decode<T: CanonicalCodable>(_ type: T.Type, _ bytes: [UInt8]?) -> T? {
        guard let bytes else { return nil }
        guard let value = try? T(decoding: bytes) else { preconditionFailure("corrupt \(T.self) in state") }
        return value
    }

    func candidate(_ owner: Address, _ state: StateOverlay) -> CandidateState? {
        Self.decode(CandidateState.self, state.object(Self.candidateKey(owner)))
    }

    func bucket(_ id: UInt64, _ state: StateOverlay) -> BucketState? {
        Self.decode(BucketState.self, state.object(Self.bucketKey(id)))
    }

    func nextBucketID(_ state: StateOverlay) -> UInt64 {
        guard let bytes = state.object(Self.nextBucketKey) else { return 1 }
        var r = ByteReader(bytes)
        return (try? r.readVarint()) ?? 1
    }

    private static func counter(_ value: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 10)
        w.writeVarint(value)
        return w.bytes
    }

    // MARK: transactions

    /// Checks a staking payload against the state and returns its writes; throws before anything is written.
    public func plan(_ payload: TransactionPayload, sender: Address, state: StateOverlay, epoch: UInt64)
        throws(StakingError) -> Effect
    {
        var effect = Effect()
        switch payload {
        case .candidateRegister(let c):
            guard candidate(sender, state) == nil else { throw .alreadyCandidate }
            guard state.object(Self.nameKey(c.name)) == nil else { throw .nameTaken }
            guard (try? XOnlyPublicKey(bytes: c.operatorKey)) != nil else { throw .invalidOperatorKey }
            guard c.selfStake >= parameters.minSelfStake else {
                throw .selfStakeTooLow(minimum: parameters.minSelfStake)
            }
            guard c.durationEpochs <= parameters.maxDurationEpochs else {
                throw .durationTooLong(maximum: parameters.maxDurationEpochs)
            }
            let id = nextBucketID(state)
            let bucket = BucketState(
                owner: sender, candidate: sender, amount: c.selfStake, durationEpochs: c.durationEpochs,
                autoStake: false, startEpoch: epoch)
            let candidate = CandidateState(
                name: c.name, operatorKey: c.operatorKey, rewardAddress: c.rewardAddress,
                rewardShareBps: c.rewardShareBps, selfStakeBucket: id, totalWeight: bucket.weight)
            effect.writes = [
                (Self.bucketKey(id), bucket.encoded), (Self.nextBucketKey, Self.counter(id + 1)),
                (Self.candidateKey(sender), candidate.encoded), (Self.nameKey(c.name), sender.raw.bytes),
            ]
        case .candidateUpdate(let u):
            guard var candidate = candidate(sender, state) else { throw .notACandidate }
            if let key = u.operatorKey {
                guard (try? XOnlyPublicKey(bytes: key)) != nil else { throw .invalidOperatorKey }
                candidate.operatorKey = key
            }
            if let reward = u.rewardAddress { candidate.rewardAddress = reward }
            if let share = u.rewardShareBps { candidate.rewardShareBps = share }
            effect.writes = [(Self.candidateKey(sender), candidate.encoded)]
        case .stake(let s):
            guard var candidate = candidate(s.candidate, state) else { throw .notACandidate }
            guard !candidate.ejected else { throw .candidateEjected }
            guard s.durationEpochs <= parameters.maxDurationEpochs else {
                throw .durationTooLong(maximum: parameters.maxDurationEpochs)
            }
            let id = nextBucketID(state)
            let bucket = BucketState(
                owner: sender, candidate: s.candidate, amount: s.amount, durationEpochs: s.durationEpochs,
                autoStake: s.autoStake, startEpoch: epoch)
            candidate.totalWeight += bucket.weight
            effect.writes = [
                (Self.bucketKey(id), bucket.encoded), (Self.nextBucketKey, Self.counter(id + 1)),
                (Self.candidateKey(s.candidate), candidate.encoded),
            ]
        case .restake(let r):
            var bucket = try ownBucket(r.bucket, sender, state)
            guard bucket.unstakedEpoch == nil else { throw .alreadyUnstaked }
            guard r.durationEpochs <= parameters.maxDurationEpochs else {
                throw .durationTooLong(maximum: parameters.maxDurationEpochs)
            }
            let remaining =
                bucket.autoStake
                ? UInt64(bucket.durationEpochs) : (bucket.lockEndEpoch > epoch ? bucket.lockEndEpoch - epoch : 0)
            guard UInt64(r.durationEpochs) >= remaining else { throw .durationShortened(remaining: remaining) }
            let oldWeight = bucket.weight
            bucket.durationEpochs = r.durationEpochs
            bucket.autoStake = r.autoStake
            bucket.startEpoch = epoch
            effect.writes = [(Self.bucketKey(r.bucket), bucket.encoded)]
            if var candidate = candidate(bucket.candidate, state) {
                candidate.totalWeight = candidate.totalWeight - oldWeight + bucket.weight
                effect.writes.append((Self.candidateKey(bucket.candidate), candidate.encoded))
            }
        case .unstake(let u):
            var bucket = try ownBucket(u.bucket, sender, state)
            guard bucket.unstakedEpoch == nil else { throw .alreadyUnstaked }
            guard !bucket.autoStake, bucket.lockEndEpoch <= epoch else {
                throw .stillLocked(untilEpoch: bucket.autoStake ? UInt64.max : bucket.lockEndEpoch)
            }
            var candidate = candidate(bucket.candidate, state)
            guard candidate?.selfStakeBucket != u.bucket || bucket.candidate != sender else { throw .selfStakeBucket }
            let oldWeight = bucket.weight
            bucket.unstakedEpoch = epoch
            effect.writes = [(Self.bucketKey(u.bucket), bucket.encoded)]
            if candidate != nil {
                candidate!.totalWeight -= oldWeight
                effect.writes.append((Self.candidateKey(bucket.candidate), candidate!.encoded))
            }
        case .withdraw(let w):
            let bucket = try ownBucket(w.bucket, sender, state)
            guard let unstaked = bucket.unstakedEpoch else { throw .notUnstaked }
            let ready = unstaked + parameters.unbondingEpochs
            guard epoch >= ready else { throw .unbonding(untilEpoch: ready) }
            effect.writes = [(Self.bucketKey(w.bucket), nil)]
            effect.withdrawn = bucket.amount
        default:
            preconditionFailure("not a staking payload")
        }
        return effect
    }

    private func ownBucket(_ id: UInt64, _ sender: Address, _ state: StateOverlay) throws(StakingError) -> BucketState {
        guard let bucket = bucket(id, state) else { throw .unknownBucket(id) }
        guard bucket.owner == sender else { throw .notBucketOwner }
        return bucket
    }

    /// Every candidate, committed or registered in this block, in address order.
    func candidates(in state: StateOverlay) -> [(owner: Address, state: CandidateState)] {
        var owners = Set(state.base.objects(in: .candidate).compactMap { Bytes20($0.id) })
        for key in state.changes.objects.keys where key.namespace == .candidate {
            if let raw = Bytes20(key.id) { owners.insert(raw) }
        }
        return owners.sorted().compactMap { raw in
            candidate(Address(raw: raw), state).map { (Address(raw: raw), $0) }
        }
    }

    /// Every live stake bucket (committed or changed in this block), in id order.
    func buckets(in state: StateOverlay) -> [(id: UInt64, state: BucketState)] {
        var ids = Set(state.base.objects(in: .bucket).map(\.id))
        for key in state.changes.objects.keys where key.namespace == .bucket { ids.insert(key.id) }
        return ids.compactMap { id -> (UInt64, BucketState)? in
            guard id.count == 8 else { return nil }
            let n = id.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return bucket(n, state).map { (n, $0) }
        }.sorted { $0.0 < $1.0 }
    }

    // MARK: slashing

    /// Slashes and ejects the candidate whose operator key double-signed. `committee` is the committee of the
    /// votes' epoch, read from the state by the caller. Half of the offender's self-stake goes to the reporter
    /// (no burning: supply stays whole); the candidate can never be elected again.
    public func planEvidence(
        _ e: DoubleSignEvidence, reporter: Address, chainID: UInt32, genesis: Bytes32, committee: Committee?,
        state: StateOverlay
    ) throws(StakingError) -> Effect {
        guard e.isConflicting, e.first.chainID == chainID else { throw .invalidEvidence }
        guard let committee, committee.index(of: e.first.voter) != nil else { throw .invalidEvidence }
        // Votes sign the genesis: a pair signed on another network with the same keys proves nothing here.
        guard e.first.verifySignature(genesis: genesis), e.second.verifySignature(genesis: genesis) else {
            throw .invalidEvidence
        }
        var w = ByteWriter(capacity: 64)
        w.write(e.first.voter)
        w.writeVarint(e.first.height)
        w.writeVarint(UInt64(e.first.round))
        w.write(e.first.step.rawValue)
        let evidenceKey = ObjectKey(.evidence, w.bytes)
        guard state.object(evidenceKey) == nil else { throw .evidenceAlreadyUsed }
        var effect = Effect()
        effect.writes.append((evidenceKey, [1]))
        guard let (owner, offender) = candidates(in: state).first(where: { $0.state.operatorKey == e.first.voter }),
            !offender.ejected
        else { return effect }  // a genesis validator without a candidate: recorded, nothing at stake
        var ejected = offender
        ejected.ejected = true
        ejected.totalWeight = 0
        effect.writes.append((Self.candidateKey(owner), ejected.encoded))
        if var selfStake = bucket(offender.selfStakeBucket, state) {
            let slashed = selfStake.amount / 2
            selfStake.amount -= slashed
            effect.writes.append((Self.bucketKey(offender.selfStakeBucket), selfStake.encoded))
            effect.withdrawn = slashed  // credited to the reporter by the executor
        }
        return effect
    }

    // MARK: election

    /// The delegate pool for `epoch`: candidates not ejected whose self-stake is still locked at or above the
    /// minimum, by total weight (ties by address), at most `poolSize`. Deterministic: every node computes
    /// the same pool from the same state.
    public func electPool(for epoch: UInt64, state: StateOverlay) -> DelegatePool {
        var eligible: [DelegatePool.Delegate] = []
        for (id, value) in state.base.objects(in: .candidate) {
            guard let raw = Bytes20(id) else { continue }
            let owner = Address(raw: raw)
            // Read through the overlay so this block's own staking changes count.
            guard let c = candidate(owner, state), !c.ejected, c.totalWeight > 0,
                let selfStake = bucket(c.selfStakeBucket, state), selfStake.unstakedEpoch == nil,
                selfStake.amount >= parameters.minSelfStake
            else { continue }
            _ = value
            eligible.append(.init(candidate: owner, operatorKey: c.operatorKey, weight: c.totalWeight))
        }
        // Candidates registered in this very block are only in the overlay's changes.
        for (key, _) in state.changes.objects where key.namespace == .candidate && state.base.object(key) == nil {
            guard let raw = Bytes20(key.id), let c = candidate(Address(raw: raw), state), !c.ejected,
                c.totalWeight > 0, let selfStake = bucket(c.selfStakeBucket, state), selfStake.unstakedEpoch == nil,
                selfStake.amount >= parameters.minSelfStake
            else { continue }
            eligible.append(.init(candidate: Address(raw: raw), operatorKey: c.operatorKey, weight: c.totalWeight))
        }
        eligible.sort { $0.weight != $1.weight ? $0.weight > $1.weight : $0.candidate < $1.candidate }
        return DelegatePool(epoch: epoch, delegates: Array(eligible.prefix(parameters.poolSize)))
    }
}
