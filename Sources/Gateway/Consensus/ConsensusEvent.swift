import Ledger

/// The three steps of a round: Tendermint's propose / prevote / precommit under the chain's names.
public enum ConsensusStep: UInt8, Sendable, Comparable {
    case propose = 0
    case prepare = 1
    case commit = 2

    public static func < (a: ConsensusStep, b: ConsensusStep) -> Bool { a.rawValue < b.rawValue }
}

/// Everything that can happen to a consensus node. The core reacts only to these: it owns no clock, no socket
/// and no randomness, so a recorded list of events replays to exactly the same actions.
public enum ConsensusEvent<Value> {
    /// Begin `height` at round 0. `now` is the host's clock reading (milliseconds), kept only for reporting:
    /// safety never depends on it. `signedBefore`: votes this node signed at this height before a restart (the
    /// host's durable journal); for those rounds and steps the core sends them again instead of signing anew, so
    /// what it counts as its own vote is what it really sent.
    case start(height: UInt64, now: UInt64, signedBefore: [Vote] = [])
    /// A signed proposal and the value whose hash it names, from the network.
    case proposalReceived(SignedProposal, Value)
    /// A prepare or commit vote from the network.
    case voteReceived(Vote)
    /// A timeout the core asked for with ``ConsensusAction/scheduleTimeout(height:round:step:afterMilliseconds:)``
    /// has expired. Stale timeouts (another height or round) are ignored.
    case timeout(height: UInt64, round: UInt32, step: ConsensusStep)
    /// Catch-up: the value of the current height with a commit certificate learnt from a peer or block sync.
    case decidedElsewhere(Value, CommitCertificate)
    /// The host's gossip timer: the core answers with its own messages of the current height (and the
    /// proof-of-lock votes it holds), so that messages lost before the network stabilised are eventually seen.
    case retransmit
}

extension ConsensusEvent: Sendable where Value: Sendable {}
