import AmarsCodec

/// A value the committee agrees on (a block, in the node). Only its hash is signed and counted, so the core
/// never needs to look inside: two values with one hash are the same value as far as consensus is concerned.
public protocol ConsensusValue {
    /// Identity of the value. `Bytes32.zero` is reserved for "nil" votes and is never a valid value hash.
    var hash: Bytes32 { get }
}

/// What the core asks of the layer above: a value to propose and a validity check for values others propose.
///
/// Used only as a generic parameter of ``ConsensusCore`` (never as an existential), so the calls are
/// specialised and the core stays allocation-light on the vote path.
public protocol ConsensusApplication {
    associatedtype Value: ConsensusValue

    /// A fresh value to propose when this node is proposer of (height, round) and holds no valid value from an
    /// earlier round. Must not fail: an empty block is a fine proposal.
    func proposal(height: UInt64, round: UInt32) -> Value

    /// Whether `value` may be decided at `height`. Called once per received proposal (the answer is cached), and
    /// for a decision learnt from a certificate. Must be deterministic for a given application state.
    func isValid(_ value: Value, height: UInt64) -> Bool

    /// Whether a freshly proposed `value` (no proof-of-lock) is timely, e.g. its timestamp not ahead of this
    /// node's clock (CometBFT's proposer-based timestamps). Unlike ``isValid(_:height:)`` it may read a clock: it
    /// only decides this node's prepare vote for a fresh proposal, never a decision, a re-proposal backed by a
    /// quorum or a certified value, so a skewed clock costs liveness, never safety. Default: always timely.
    func isTimely(_ value: Value, height: UInt64) -> Bool
}

extension ConsensusApplication {
    public func isTimely(_ value: Value, height: UInt64) -> Bool { true }
}
