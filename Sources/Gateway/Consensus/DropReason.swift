/// Why an incoming message changed nothing. Counted rather than logged, so that a flood of bad input costs a
/// counter increment and cannot fill a log; a node exports them as metrics and may score peers with them.
public enum DropReason: Int, CaseIterable, Sendable {
    /// Nothing started yet (no `.start` event).
    case notStarted
    /// The message names another chain.
    case wrongChain
    /// The message is for a height other than the current one (or the next, which is buffered).
    case wrongHeight
    /// The signer is not a member of the committee.
    case notMember
    /// The signature does not verify (or the member's key is not a curve point).
    case badSignature
    /// The proposal is not from the proposer of its (height, round).
    case wrongProposer
    /// The proposal's valid round is not below its round.
    case invalidValidRound
    /// The value's hash differs from the hash the proposal signs, or is the reserved zero hash.
    case valueMismatch
    /// An identical message was already counted.
    case duplicate
    /// A second, different vote of a member for one (height, round, step); surfaced as evidence.
    case equivocation
    /// A second, different proposal of the proposer for one round beyond the per-round cap.
    case conflictingProposal
    /// A round below the kept window.
    case staleRound
    /// A round above the kept window: only its round number was noted for round skipping.
    case roundTooFar
    /// The height is already decided here.
    case alreadyDecided
    /// The next-height buffer is full.
    case futureBufferFull
    /// A commit certificate that does not verify against the committee.
    case badCertificate
    /// The application refused the value of a certificate.
    case invalidValue
    /// Bytes that do not decode as a consensus message.
    case malformed
}

/// One counter per ``DropReason``, in a fixed-size array (no hashing, deterministic iteration).
public struct DropCounters: Equatable, Sendable {
    private var counts = [UInt64](repeating: 0, count: DropReason.allCases.count)

    public init() {}

    public subscript(reason: DropReason) -> UInt64 { counts[reason.rawValue] }

    public var total: UInt64 { counts.reduce(0, &+) }

    mutating func record(_ reason: DropReason) { counts[reason.rawValue] &+= 1 }
}
