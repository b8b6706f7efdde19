import Ledger

/// What the core asks the host to do. The host performs them in order; none of them loops back into the core
/// (the core has already counted its own proposal and votes).
public enum ConsensusAction<Value> {
    /// Send the proposal and its value to every peer.
    case broadcastProposal(SignedProposal, Value)
    /// Send the vote to every peer.
    case broadcastVote(Vote)
    /// Send a decided value with its certificate to peers (answer to ``ConsensusEvent/retransmit`` while this
    /// node has decided and waits for the host to start the next height).
    case broadcastDecision(Value, CommitCertificate)
    /// Deliver ``ConsensusEvent/timeout(height:round:step:)`` after the given delay.
    case scheduleTimeout(height: UInt64, round: UInt32, step: ConsensusStep, afterMilliseconds: UInt64)
    /// The height is final: apply the value, persist the certificate, then send `.start(height + 1, now)`.
    case decide(Value, CommitCertificate)
    /// Two validly signed, different votes of one member for one (height, round, step): double-sign evidence
    /// for slashing. Only the first of the two was counted.
    case evidence(Vote, Vote)
}

extension ConsensusAction: Sendable where Value: Sendable {}
