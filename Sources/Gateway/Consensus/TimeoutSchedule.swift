/// Round timeouts that grow linearly with the round, so that after the network stabilises some round is long
/// enough for every honest node to hear every other one (the liveness argument of partial synchrony).
public struct TimeoutSchedule: Equatable, Sendable {
    public var proposeBase: UInt64
    public var proposeIncrement: UInt64
    public var prepareBase: UInt64
    public var prepareIncrement: UInt64
    public var commitBase: UInt64
    public var commitIncrement: UInt64

    /// Milliseconds. The defaults suit a wide-area committee of gateways.
    public init(
        proposeBase: UInt64 = 3000, proposeIncrement: UInt64 = 500,
        prepareBase: UInt64 = 1000, prepareIncrement: UInt64 = 500,
        commitBase: UInt64 = 1000, commitIncrement: UInt64 = 500
    ) {
        self.proposeBase = proposeBase
        self.proposeIncrement = proposeIncrement
        self.prepareBase = prepareBase
        self.prepareIncrement = prepareIncrement
        self.commitBase = commitBase
        self.commitIncrement = commitIncrement
    }

    /// base + round × increment, saturating: an absurd round gives a very long timeout, never a trap.
    public func milliseconds(for step: ConsensusStep, round: UInt32) -> UInt64 {
        let (base, increment): (UInt64, UInt64)
        switch step {
        case .propose: (base, increment) = (proposeBase, proposeIncrement)
        case .prepare: (base, increment) = (prepareBase, prepareIncrement)
        case .commit: (base, increment) = (commitBase, commitIncrement)
        }
        let (grow, o1) = increment.multipliedReportingOverflow(by: UInt64(round))
        guard !o1 else { return .max }
        let (total, o2) = base.addingReportingOverflow(grow)
        return o2 ? .max : total
    }
}

/// Tuning of one core. Nothing here affects safety; the windows only bound memory.
public struct ConsensusConfig: Equatable, Sendable {
    public var timeouts: TimeoutSchedule
    /// Rounds below the current one whose votes are still kept (besides the locked and valid rounds).
    public var roundsBehind: UInt32
    /// Rounds above the current one whose votes are kept in full. From farther rounds only the highest round
    /// per member is remembered, which is all the f+1 round-skip rule needs.
    public var roundsAhead: UInt32
    /// Distinct proposals kept per round. More than one only matters when the proposer equivocates; a further
    /// one is admitted only if more than a third of the weight voted for it.
    public var proposalsPerRound: Int

    public init(
        timeouts: TimeoutSchedule = TimeoutSchedule(), roundsBehind: UInt32 = 2, roundsAhead: UInt32 = 2,
        proposalsPerRound: Int = 2
    ) {
        self.timeouts = timeouts
        self.roundsBehind = roundsBehind
        self.roundsAhead = roundsAhead
        self.proposalsPerRound = max(1, proposalsPerRound)
    }
}
