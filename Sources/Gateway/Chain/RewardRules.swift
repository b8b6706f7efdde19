import AmarsCodec
import AmarsCrypto
import Ledger

/// Where fees go (white paper §11, SPEC.md "Fees"): nothing is minted and nothing is burned. A block's fees
/// collect in a pool account nobody holds a key for; at the block's end the proposer takes its cut and the
/// committee shares the rest by weight. A member that is a candidate keeps its share minus its declared
/// reward-share rate, which accrues for the candidate's voters and is paid to their buckets, by weight, at the
/// end of the epoch (so the per-block cost does not grow with the number of voters).
public enum RewardRules {
    /// An address derived from a tag, not from a key: no signature can ever spend from it.
    public static let feePool: Address = {
        let d = TaggedHash(tag: "AmarsFeePool").hash([])
        return Address(raw: Bytes20(hi: d.w0, mid: d.w1, lo: UInt32(truncatingIfNeeded: d.w2 >> 32)))
    }()

    /// Holds voter rewards accrued during an epoch until they are paid, so every unit stays in an account (the
    /// per-candidate amounts are tracked beside it in the state).
    public static let voterPool: Address = {
        let d = TaggedHash(tag: "AmarsVoterPool").hash([])
        return Address(raw: Bytes20(hi: d.w0, mid: d.w1, lo: UInt32(truncatingIfNeeded: d.w2 >> 32)))
    }()

    /// The proposer's cut of a block's fees, in basis points; the committee shares the rest.
    public static let proposerBps: UInt64 = 2_000

    static func voterRewardKey(_ candidate: Address) -> ObjectKey { ObjectKey(.voterRewards, candidate.raw.bytes) }

    static func credit(_ state: inout StateOverlay, _ address: Address, _ amount: UInt64) {
        guard amount > 0 else { return }
        var account = state[address]
        account.balance += amount  // cannot overflow: every unit comes out of the fee pool
        state[address] = account
    }

    /// `amount × part / whole` without overflow (whole > 0, part <= whole).
    static func share(_ amount: UInt64, _ part: UInt64, _ whole: UInt64) -> UInt64 {
        let product = amount.multipliedFullWidth(by: part)
        return whole.dividingFullWidth(product).quotient
    }

    /// Empties the fee pool into the proposer's and the committee's hands (and the voters' accrual).
    static func distributeBlockFees(
        state: inout StateOverlay, proposer: Address, committee: Committee, rules: StakingRules
    ) {
        let pool = state[feePool].balance
        guard pool > 0 else { return }
        state[feePool] = AccountState(balance: 0, nonce: state[feePool].nonce)
        let byOperator = Dictionary(
            rules.candidates(in: state).map { ($0.state.operatorKey, $0) }, uniquingKeysWith: { first, _ in first })
        let committeeCut = pool - share(pool, proposerBps, 10_000)
        var paid: UInt64 = 0
        for member in committee.members {
            let memberShare = share(committeeCut, member.weight, committee.totalWeight)
            paid += memberShare
            if let (owner, candidate) = byOperator[member.key] {
                let voters = share(memberShare, UInt64(candidate.rewardShareBps), 10_000)
                credit(&state, candidate.rewardAddress, memberShare - voters)
                if voters > 0 {
                    credit(&state, voterPool, voters)
                    let key = voterRewardKey(owner)
                    var accrued: UInt64 = 0
                    if let bytes = state.object(key) {
                        var r = ByteReader(bytes)
                        accrued = (try? r.readVarint()) ?? 0
                    }
                    var w = ByteWriter(capacity: 10)
                    w.writeVarint(accrued + voters)
                    state.setObject(key, w.bytes)
                }
            } else if let key = try? XOnlyPublicKey(bytes: member.key) {
                credit(&state, Address(publicKey: key), memberShare)
            } else {
                paid -= memberShare  // unreachable: committee keys are valid; the proposer gets it below
            }
        }
        // The proposer's cut plus every rounding remainder: the pool always ends at zero.
        credit(&state, proposer, pool - paid)
    }

    /// Pays each candidate's accrued voter rewards to its live buckets by weight; remainders and rewards of a
    /// candidate without live buckets go to the candidate's reward address.
    static func payVoters(state: inout StateOverlay, rules: StakingRules) {
        let accruals =
            state.base.objects(in: .voterRewards).map { ($0.id, $0.value) }
            + state.changes.objects.filter { $0.key.namespace == .voterRewards && state.base.object($0.key) == nil }
            .map { ($0.key.id, $0.value) }
        guard !accruals.isEmpty else { return }
        var bucketsByCandidate: [Address: [(owner: Address, weight: UInt64)]] = [:]
        for bucket in rules.buckets(in: state) where bucket.state.unstakedEpoch == nil {
            bucketsByCandidate[bucket.state.candidate, default: []].append((bucket.state.owner, bucket.state.weight))
        }
        for (id, _) in accruals {
            guard let raw = Bytes20(id) else { continue }
            let candidate = Address(raw: raw)
            let key = voterRewardKey(candidate)
            guard let bytes = state.object(key) else { continue }
            var r = ByteReader(bytes)
            let total = min((try? r.readVarint()) ?? 0, state[voterPool].balance)
            state.setObject(key, nil)
            var pool = state[voterPool]
            pool.balance -= total
            state[voterPool] = pool
            let buckets = bucketsByCandidate[candidate] ?? []
            let weight = buckets.reduce(UInt64(0)) { $0 &+ $1.weight }
            var paid: UInt64 = 0
            if weight > 0 {
                for b in buckets {
                    let amount = share(total, b.weight, weight)
                    credit(&state, b.owner, amount)
                    paid += amount
                }
            }
            let rewardAddress = rules.candidate(candidate, state)?.rewardAddress ?? candidate
            credit(&state, rewardAddress, total - paid)
        }
    }
}
