import AmarsCodec
import AmarsCrypto

/// Roll-DPoS step 2 (SPEC.md): the committee of an epoch, drawn from the elected delegate pool by weighted
/// sampling without replacement, with every random choice taken from the epoch seed (``EpochSeed``). It is a
/// pure function of chain data, so a gateway building the checkpoint and a light client checking it compute the
/// same committee, member for member and in the same order.
///
/// The rule, for draws i = 0, 1, ... until `min(size, distinct eligible operator keys)` members are drawn:
/// 1. `r_i` is uniform in `[0, W)`, W the total weight still in the pool, from the tagged hash
///    `AmarsCommitteeDraw(seed || epoch || i || attempt)` (integers 8 bytes big-endian), reduced without modulo
///    bias (see ``uniform(below:seed:epoch:draw:)``);
/// 2. walk the remaining delegates in pool order, summing weights; the first whose running sum exceeds `r_i` is
///    drawn, so each is drawn with probability weight / W;
/// 3. the drawn delegate becomes the next member (key = its operator key, weight = its delegate weight) and
///    leaves the pool, with every other delegate that has the same operator key.
///
/// Member order is draw order, which proposer rotation uses (`committee[(height + round) mod size]`).
///
/// Edge cases:
/// - delegates of weight 0 are never eligible: they carry no votes, so no draw could land on them anyway, and
///   including them would let a zero-weight member into a committee, which ``Committee`` refuses;
/// - two delegates with the same operator key (two candidates run by one key): the first drawn is kept and the
///   others are dropped from the pool at that moment, equivalent to skipping them when drawn later but without
///   wasting draws. Their weight is not merged into the kept member: one key must not count twice in a quorum,
///   and merging would reward running several candidates;
/// - a pool with nothing eligible (no delegates, or all of weight 0) throws ``SelectionError/noEligibleDelegate``
///   rather than returning an empty value: a committee of nobody cannot finalize anything, and the chain must
///   stop loudly, not continue with a committee no one can check;
/// - the sum of eligible weights is computed with overflow checks and a pool whose sum exceeds UInt64 throws
///   ``SelectionError/weightOverflow`` (it cannot happen with the fixed supply, but a light client must not trap
///   on a bad pool).
public enum CommitteeSelection {
    public enum SelectionError: Error, Equatable, Sendable {
        /// The pool has no delegate with a non-zero weight.
        case noEligibleDelegate
        /// `size` is below 1 or above ``Caps/committeeMembers``.
        case invalidSize
        /// The pool was elected for another epoch than the committee asked for.
        case epochMismatch
        /// The eligible weights sum to more than UInt64 holds.
        case weightOverflow
    }

    /// The committee of `epoch`, drawn from `pool` (which must be the pool of that epoch) with `seed` (the seed of
    /// that epoch). `size` is the configured committee size; the committee has `min(size, n)` members, n the
    /// number of distinct operator keys among the delegates of non-zero weight.
    ///
    /// Cost: O(size × pool) comparisons and about `size` hashes; memory: one flag per delegate.
    public static func select(
        pool: DelegatePool, seed: Bytes32, epoch: UInt64, size: Int
    ) throws(SelectionError) -> Committee {
        guard pool.epoch == epoch else { throw .epochMismatch }
        guard size >= 1, size <= Caps.committeeMembers else { throw .invalidSize }
        let delegates = pool.delegates

        // Eligible delegates still in the pool, their total weight, and how many distinct keys they have.
        var remaining = [Bool](repeating: false, count: delegates.count)
        var remainingWeight: UInt64 = 0
        var distinctKeys = 0
        for i in delegates.indices where delegates[i].weight > 0 {
            let (sum, overflow) = remainingWeight.addingReportingOverflow(delegates[i].weight)
            guard !overflow else { throw .weightOverflow }
            remainingWeight = sum
            var seen = false
            for j in 0..<i where remaining[j] && delegates[j].operatorKey == delegates[i].operatorKey {
                seen = true
                break
            }
            if !seen { distinctKeys += 1 }
            remaining[i] = true
        }
        guard remainingWeight > 0 else { throw .noEligibleDelegate }

        let count = min(size, distinctKeys)
        var members: [Committee.Member] = []
        members.reserveCapacity(count)
        for draw in 0..<count {
            // remainingWeight > 0 here: each of the `count` draws removes one distinct key, so a key is left.
            let r = uniform(below: remainingWeight, seed: seed, epoch: epoch, draw: UInt64(draw))
            var cumulative: UInt64 = 0
            var picked = delegates.startIndex
            for i in delegates.indices where remaining[i] {
                // No overflow: the running sum never exceeds remainingWeight.
                cumulative += delegates[i].weight
                if r < cumulative {
                    picked = i
                    break
                }
            }
            // The loop always picks: r < remainingWeight, which is the final value of `cumulative`.
            let key = delegates[picked].operatorKey
            members.append(Committee.Member(key: key, weight: delegates[picked].weight))
            for i in delegates.indices where remaining[i] && delegates[i].operatorKey == key {
                remaining[i] = false
                remainingWeight -= delegates[i].weight
            }
        }

        // Cannot throw: 1 <= count <= Caps.committeeMembers, keys distinct, weights non-zero, sum checked above.
        do {
            return try Committee(epoch: epoch, members: members)
        } catch {
            preconditionFailure("CommitteeSelection built an invalid committee")
        }
    }

    /// True when `committee` is exactly the committee ``select(pool:seed:epoch:size:)`` draws: same members, same
    /// weights, same order, same epoch. False as well when the selection itself refuses the inputs.
    public static func verify(
        committee: Committee, pool: DelegatePool, seed: Bytes32, epoch: UInt64, size: Int
    ) -> Bool {
        guard let expected = try? select(pool: pool, seed: seed, epoch: epoch, size: size) else { return false }
        return expected == committee
    }

    /// A value uniform in `[0, bound)` for draw `draw`, without modulo bias (`bound` > 0).
    ///
    /// Lemire's multiply-and-reject (ACM TOMACS 2019): for a uniform 64-bit x, the high word of the 128-bit
    /// product x·bound is in `[0, bound)`; each value is hit by either ⌊2^64 / bound⌋ or one more x, and the x
    /// whose low word is below `2^64 mod bound` are exactly the surplus ones, so rejecting them leaves every value
    /// with the same number of preimages: exactly uniform, not merely close. (A plain `x mod bound` would favour
    /// small values by up to bound / 2^64, which for stake-sized bounds is not negligible.)
    ///
    /// The x are the four 64-bit words (big-endian) of `AmarsCommitteeDraw(seed || epoch || draw || attempt)`,
    /// tried in order, with attempt 0, 1, ... A word is rejected with probability below bound / 2^64; for real
    /// stake totals (below 2^61) a whole hash is rejected with probability below 2^-12, so the loop almost always
    /// ends at the first word and terminates with probability 1. The seed comes from VRF outputs no one can
    /// grind, so no one can aim at a long run of rejections.
    static func uniform(below bound: UInt64, seed: Bytes32, epoch: UInt64, draw: UInt64) -> UInt64 {
        precondition(bound > 0, "uniform(below: 0)")
        // 2^64 mod bound, computed in 64 bits: (2^64 - bound) mod bound.
        let threshold = (0 &- bound) % bound
        var attempt: UInt64 = 0
        while true {
            var hasher = Domain.committeeDraw.hasher()
            hasher.update(seed)
            hasher.absorbBigEndian(epoch)
            hasher.absorbBigEndian(draw)
            hasher.absorbBigEndian(attempt)
            let h = hasher.finalize()
            if let r = reduce(h.w0, bound, threshold) { return r }
            if let r = reduce(h.w1, bound, threshold) { return r }
            if let r = reduce(h.w2, bound, threshold) { return r }
            if let r = reduce(h.w3, bound, threshold) { return r }
            attempt &+= 1
        }
    }

    @inline(__always)
    private static func reduce(_ x: UInt64, _ bound: UInt64, _ threshold: UInt64) -> UInt64? {
        let product = x.multipliedFullWidth(by: bound)
        return product.low >= threshold ? product.high : nil
    }
}
