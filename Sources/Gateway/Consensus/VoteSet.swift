import AmarsCodec
import Ledger

/// The votes of one step of one round: for each member its first vote, plus at most one conflicting vote, and
/// the weight of the members that signed each hash.
///
/// Why keep a conflicting vote at all: an equivocating member may show block A to some nodes and B to others;
/// if B then gathers a quorum somewhere (and an honest node locks on it), everyone else must be able to count
/// that member's B vote too, or the lock can never be released (CometBFT solves the same problem with its
/// "peer maj23" votes). Counting a member under two hashes is safe: two quorums of more than two thirds still
/// overlap in more than a third of the weight, so in at least one honest member, and honest members never sign
/// two hashes. Memory stays at two slots per member; the second slot holds the conflicting hash that the other
/// members back most, so junk votes cannot crowd out the one that matters.
///
/// Indexed by committee position; tallies are a small array rather than a dictionary (honest rounds have one or
/// two distinct hashes, and array order is deterministic where a dictionary's is not).
struct VoteSet {
    struct Tally {
        var hash: Bytes32
        var weight: UInt64
    }

    private(set) var votes: [Vote?]
    /// A second, different vote of the same member, counted for its own hash only.
    private(set) var conflicting: [Vote?]
    private(set) var tallies: [Tally] = []
    /// Weight of the members that voted at all, each once, nil votes included: the "2f+1 of anything" trigger
    /// for timeouts.
    private(set) var totalWeight: UInt64 = 0
    /// Members already reported as equivocating here, so a spammer yields one evidence action, not thousands.
    private var reported: [Bool]

    init(members: Int) {
        votes = [Vote?](repeating: nil, count: members)
        conflicting = [Vote?](repeating: nil, count: members)
        reported = [Bool](repeating: false, count: members)
    }

    func vote(of member: Int) -> Vote? { votes[member] }

    /// Whether the member's first or conflicting vote names `hash`.
    func hasVote(of member: Int, for hash: Bytes32) -> Bool {
        votes[member]?.blockHash == hash || conflicting[member]?.blockHash == hash
    }

    /// Counts a member's first vote, whose signature the caller has verified. The slot must be empty.
    mutating func add(_ vote: Vote, member: Int, weight: UInt64) {
        precondition(votes[member] == nil, "a member's first vote is counted once")
        votes[member] = vote
        totalWeight += weight  // bounded by the committee total, which was checked for overflow
        addWeight(weight, to: vote.blockHash)
    }

    /// Whether ``addConflicting(_:member:weight:)`` would count a vote for `hash`: checked before paying for a
    /// signature verification.
    func wouldAdmitConflicting(_ hash: Bytes32, member: Int, weight: UInt64) -> Bool {
        guard let old = conflicting[member] else { return true }
        return self.weight(for: hash) > self.weight(for: old.blockHash) - weight
    }

    /// Offers a verified vote of a member that already voted another hash here. It takes the conflicting slot if
    /// that is empty or holds a hash the other members back less. Returns whether it is now counted.
    mutating func addConflicting(_ vote: Vote, member: Int, weight: UInt64) -> Bool {
        precondition(votes[member] != nil && !hasVote(of: member, for: vote.blockHash))
        guard wouldAdmitConflicting(vote.blockHash, member: member, weight: weight) else { return false }
        if let old = conflicting[member] { removeWeight(weight, from: old.blockHash) }
        conflicting[member] = vote
        addWeight(weight, to: vote.blockHash)
        return true
    }

    private mutating func addWeight(_ weight: UInt64, to hash: Bytes32) {
        if let i = tallies.firstIndex(where: { $0.hash == hash }) {
            tallies[i].weight += weight
        } else {
            tallies.append(Tally(hash: hash, weight: weight))
        }
    }

    private mutating func removeWeight(_ weight: UInt64, from hash: Bytes32) {
        guard let i = tallies.firstIndex(where: { $0.hash == hash }) else { return }
        tallies[i].weight -= weight
        if tallies[i].weight == 0 { tallies.remove(at: i) }
    }

    func isReported(_ member: Int) -> Bool { reported[member] }

    /// True the first time a member's equivocation is reported.
    mutating func markReported(_ member: Int) -> Bool {
        if reported[member] { return false }
        reported[member] = true
        return true
    }

    func weight(for hash: Bytes32) -> UInt64 {
        tallies.first { $0.hash == hash }?.weight ?? 0
    }

    /// The non-nil hash holding a quorum, if any. With at most a third of the weight faulty there is at most one.
    func quorumHash(_ committee: Committee) -> Bytes32? {
        tallies.first { $0.hash != .zero && committee.isQuorum($0.weight) }?.hash
    }

    /// Every counted vote for `hash`, in member order.
    func votes(for hash: Bytes32) -> [(member: Int, vote: Vote)] {
        var out: [(member: Int, vote: Vote)] = []
        for i in votes.indices {
            if let v = votes[i], v.blockHash == hash {
                out.append((i, v))
            } else if let v = conflicting[i], v.blockHash == hash {
                out.append((i, v))
            }
        }
        return out
    }

    /// Commit signatures for `hash`, in member order: the body of a ``CommitCertificate``.
    func signatures(for hash: Bytes32) -> [CommitCertificate.Signature] {
        votes(for: hash).map { .init(memberIndex: UInt16($0.member), signature: $0.vote.signature) }
    }
}

/// A proposal this node holds, with the application's verdict computed once on arrival.
struct StoredProposal<Value> {
    var signed: SignedProposal
    var value: Value
    var isValid: Bool
    /// ``ConsensusApplication/isTimely(_:height:)`` when it was received (own proposals are timely).
    var isTimely = true
}

/// Everything kept for one round of the current height.
struct RoundState<Value> {
    let round: UInt32
    var prepares: VoteSet
    var commits: VoteSet
    /// In arrival order; the first is the one this node prepares on.
    var proposals: [StoredProposal<Value>] = []

    init(round: UInt32, members: Int) {
        self.round = round
        prepares = VoteSet(members: members)
        commits = VoteSet(members: members)
    }

    func votes(_ step: VoteStep) -> VoteSet { step == .prepare ? prepares : commits }

    /// In-place access to one step's set (no copy of its arrays).
    mutating func update<R>(_ step: VoteStep, _ body: (inout VoteSet) -> R) -> R {
        step == .prepare ? body(&prepares) : body(&commits)
    }

    func proposal(hash: Bytes32) -> StoredProposal<Value>? {
        proposals.first { $0.signed.proposal.blockHash == hash }
    }
}

extension VoteSet: Sendable {}
extension StoredProposal: Sendable where Value: Sendable {}
extension RoundState: Sendable where Value: Sendable {}
