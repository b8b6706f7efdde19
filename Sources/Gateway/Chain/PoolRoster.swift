import AmarsCodec
import Ledger

/// The roster of an epoch's delegate pool: what attests checkpoints for sleeping devices (SPEC "Light client").
///
/// One member per distinct operator key, in pool order, with the weight of its first delegate of non-zero weight:
/// the same rule ``CommitteeSelection`` applies when it draws (one key never counts twice, and running several
/// candidates earns nothing). Kept as a ``Committee`` so devices reuse its encoding and hash; each checkpoint
/// header names the next epoch's roster by that hash.
public enum PoolRoster {
    /// The roster of `pool`; nil when no delegate has weight (the chain then goes on with the genesis validators,
    /// and so does the roster: see ``ChainNode``).
    public static func roster(of pool: DelegatePool) -> Committee? {
        var members: [Committee.Member] = []
        for d in pool.delegates where d.weight > 0 && !members.contains(where: { $0.key == d.operatorKey }) {
            members.append(Committee.Member(key: d.operatorKey, weight: d.weight))
        }
        return try? Committee(epoch: pool.epoch, members: members)
    }

    /// The roster of `epoch` as the state records it: the pool elected for it, else `committee` (the epoch's
    /// committee, which is then the genesis validators). Nil only when neither is known.
    static func roster(epoch: UInt64, object: (ObjectKey) -> [UInt8]?, committee: Committee?) -> Committee? {
        if epoch > 0, let pool = StakingRules.decode(DelegatePool.self, object(StakingRules.electionKey(epoch: epoch))),
            let roster = roster(of: pool)
        {
            return roster
        }
        return committee
    }

    /// What `v1/skip` serves a device trusting `pool`: the attestations `signature(i)` has for members `i` of
    /// the roster, heaviest members first until they reach a third of its weight (`enough`), then listed in index
    /// order as the encoding requires. The device needs no more, and each costs it 66 bytes and a verify.
    public static func attestations(
        by pool: Committee, height: UInt64, blockHash: Bytes32, signature: (Int) -> Bytes64?
    ) -> (certificate: CommitCertificate, enough: Bool) {
        var signatures: [CommitCertificate.Signature] = []
        var weight: UInt64 = 0
        for i in pool.members.indices.sorted(by: { pool.members[$0].weight > pool.members[$1].weight }) {
            guard !pool.reachesOneThird(weight) else { break }
            guard let s = signature(i) else { continue }
            signatures.append(.init(memberIndex: UInt16(i), signature: s))
            weight += pool.members[i].weight
        }
        let certificate = CommitCertificate(height: height, round: 0, blockHash: blockHash, signatures: signatures)
        return (certificate, pool.reachesOneThird(weight))
    }
}
