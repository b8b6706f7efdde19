import AmarsCodec
import AmarsCrypto
import Ledger

/// One committee member's Roll-DPoS finality engine: a sans-I/O state machine.
///
/// The algorithm is Tendermint's (Buchman, Kwon, Milosevic 2018, "The latest gossip on BFT consensus",
/// Algorithm 1) under the chain's names: propose → prepare (prevote) → commit (precommit), with locking
/// (`lockedValue`/`lockedRound`) and the proof-of-lock carried by a proposal's valid round. Quorums are by
/// weight, strictly more than two thirds; more than a third of the weight seen in a higher round makes the node
/// skip to it.
///
/// Feed it ``ConsensusEvent``s, perform the ``ConsensusAction``s it returns. It never reads a clock, never does
/// I/O and never draws randomness, so the same events give the same actions on every machine: that is what lets
/// the simulation tests replay a failing seed exactly. Safety depends on none of the timeouts.
///
/// Memory is bounded whatever peers send: votes are kept only for the current height, for a window of rounds
/// around the current one plus the locked and valid rounds, at most one per member and step; a small buffer
/// holds the next height's first messages. Everything else is dropped and counted in ``drops``.
public struct ConsensusCore<App: ConsensusApplication> {
    public typealias Value = App.Value
    public typealias Action = ConsensusAction<App.Value>
    public typealias Event = ConsensusEvent<App.Value>

    /// A decided value with the certificate that makes it final.
    public struct Decision {
        public var value: Value
        public var certificate: CommitCertificate
    }

    /// A next-height message, already verified against the committee, replayed when that height starts.
    enum FutureMessage {
        case proposal(SignedProposal, Value)
        case vote(Vote)
    }

    public let chainID: UInt32
    /// The genesis block hash every vote signs (``Vote/signingHash(genesis:)``).
    public let genesis: Bytes32
    public let config: ConsensusConfig
    public var app: App
    public private(set) var committee: Committee
    /// This node's committee position, or nil for an observer (no key, or a key outside the committee).
    public private(set) var ownIndex: Int?
    private let signer: PrivateKey?
    /// Parsed once per committee: parsing a key costs a square root, verification is the hot path.
    private var memberKeys: [XOnlyPublicKey?]
    private var memberIndex: [Bytes32: Int]

    public private(set) var height: UInt64 = 0
    public private(set) var round: UInt32 = 0
    public private(set) var step: ConsensusStep = .propose
    public private(set) var isStarted = false
    /// The host's clock reading at `.start`, for reporting only.
    public private(set) var startedAt: UInt64 = 0
    public private(set) var decision: Decision?
    public private(set) var lockedValue: Value?
    public private(set) var lockedRound: UInt32?
    public private(set) var validValue: Value?
    public private(set) var validRound: UInt32?
    public private(set) var drops = DropCounters()

    /// Sorted by round; see ``isKept(_:)`` for which rounds may be here.
    private var rounds: [RoundState<Value>] = []
    /// Per member, the highest round above the current one seen in a verified message of this height.
    private var highestRound: [UInt32?]
    private var prepareTimeoutArmed = false
    private var commitTimeoutArmed = false
    private var lockRuleDone = false
    private var future: [FutureMessage] = []
    /// This node's votes of the current height from before a restart (see ``ConsensusEvent/start(height:now:signedBefore:)``).
    private var signedBefore: [Vote] = []

    /// `privateKey` nil (or not in `committee`) makes an observer that follows, never signs.
    public init(
        chainID: UInt32, genesis: Bytes32, committee: Committee, privateKey: PrivateKey?, app: App,
        config: ConsensusConfig = .init()
    ) {
        self.chainID = chainID
        self.genesis = genesis
        self.config = config
        self.app = app
        self.signer = privateKey
        self.committee = committee
        self.memberKeys = []
        self.memberIndex = [:]
        self.highestRound = []
        installCommittee(committee)
    }

    /// Replaces the committee (epoch boundary). Call between heights: after `.decide`, before `.start`. Buffered
    /// next-height messages are discarded since they were verified against the old members.
    public mutating func setCommittee(_ committee: Committee) {
        installCommittee(committee)
        future = []
    }

    private mutating func installCommittee(_ committee: Committee) {
        self.committee = committee
        memberKeys = committee.members.map { try? XOnlyPublicKey(bytes: $0.key) }
        memberIndex = [:]
        for (i, m) in committee.members.enumerated() { memberIndex[m.key] = i }
        ownIndex = signer.flatMap { memberIndex[$0.xOnlyPublicKey.bytes] }
        highestRound = [UInt32?](repeating: nil, count: committee.members.count)
        rounds = []
    }

    /// Committee position of the proposer of (height, round): members[(height + round) mod count], computed
    /// without overflow for any height and round.
    public static func proposerIndex(height: UInt64, round: UInt32, count: Int) -> Int {
        let n = UInt64(count)
        return Int((height % n + UInt64(round) % n) % n)
    }

    public var proposerIndex: Int {
        Self.proposerIndex(height: height, round: round, count: committee.members.count)
    }

    /// Rounds of the current height for which votes are held, ascending (for tests and metrics).
    public var keptRounds: [UInt32] { rounds.map(\.round) }

    /// Weight of the counted votes for `hash` at (current height, `round`, `step`).
    public func weight(round: UInt32, step: VoteStep, hash: Bytes32) -> UInt64 {
        guard let i = roundIndex(round) else { return 0 }
        return rounds[i].votes(step).weight(for: hash)
    }

    /// Number of votes counted at (current height, `round`, `step`).
    public func voteCount(round: UInt32, step: VoteStep) -> Int {
        guard let i = roundIndex(round) else { return 0 }
        return rounds[i].votes(step).votes.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
    }

    /// Messages of the next height held for replay.
    public var bufferedNextHeight: Int { future.count }

    // MARK: - Events

    public mutating func handle(_ event: Event) -> [Action] {
        var out: [Action] = []
        handle(event, into: &out)
        return out
    }

    /// Appends the reactions to `out`, so a host can reuse one buffer.
    public mutating func handle(_ event: Event, into out: inout [Action]) {
        switch event {
        case .start(let height, let now, let signedBefore):
            start(height: height, now: now, signedBefore: signedBefore, &out)
        case .proposalReceived(let signed, let value):
            receiveProposal(signed, value, preverified: false, &out)
        case .voteReceived(let vote):
            receiveVote(vote, preverified: false, &out)
        case .timeout(let height, let round, let step):
            onTimeout(height: height, round: round, step: step, &out)
        case .decidedElsewhere(let value, let certificate):
            receiveDecision(value, certificate, &out)
        case .retransmit:
            retransmit(&out)
            return
        }
        progress(&out)
    }

    mutating func drop(_ reason: DropReason) { drops.record(reason) }

    private mutating func start(height newHeight: UInt64, now: UInt64, signedBefore: [Vote], _ out: inout [Action]) {
        if isStarted && newHeight <= height {
            drop(.wrongHeight)
            return
        }
        let ownKey = signer?.xOnlyPublicKey.bytes
        self.signedBefore = signedBefore.filter {
            $0.height == newHeight && $0.chainID == chainID && $0.voter == ownKey
        }
        let replay = isStarted && newHeight == height &+ 1 ? future : []
        future = []
        isStarted = true
        height = newHeight
        startedAt = now
        decision = nil
        lockedValue = nil
        lockedRound = nil
        validValue = nil
        validRound = nil
        rounds = []
        for i in highestRound.indices { highestRound[i] = nil }
        startRound(0, &out)
        for message in replay {
            switch message {
            case .proposal(let signed, let value): receiveProposal(signed, value, preverified: true, &out)
            case .vote(let vote): receiveVote(vote, preverified: true, &out)
            }
        }
    }

    private mutating func startRound(_ newRound: UInt32, _ out: inout [Action]) {
        round = newRound
        step = .propose
        prepareTimeoutArmed = false
        commitTimeoutArmed = false
        lockRuleDone = false
        prune()
        if let own = ownIndex, let signer, own == proposerIndex {
            // A valid value from an earlier round is re-proposed with its round as proof-of-lock (line 15).
            let value = validValue ?? app.proposal(height: height, round: newRound)
            let hash = value.hash
            if hash != .zero {
                let proposal = Proposal(
                    chainID: chainID, height: height, round: newRound, validRound: validValue == nil ? nil : validRound,
                    blockHash: hash, proposer: signer.xOnlyPublicKey.bytes)
                let signed = SignedProposal(signing: proposal, with: signer)
                let valid = app.isValid(value, height: height)
                let i = ensureRound(newRound)
                rounds[i].proposals.append(StoredProposal(signed: signed, value: value, isValid: valid))
                out.append(.broadcastProposal(signed, value))
            }
        }
        out.append(
            .scheduleTimeout(
                height: height, round: newRound, step: .propose,
                afterMilliseconds: config.timeouts.milliseconds(for: .propose, round: newRound)))
    }

    private mutating func onTimeout(height h: UInt64, round r: UInt32, step s: ConsensusStep, _ out: inout [Action]) {
        guard isStarted, decision == nil, h == height, r == round else { return }
        switch s {
        case .propose:
            if step == .propose {
                castVote(.prepare, .zero, &out)
                step = .prepare
            }
        case .prepare:
            if step == .prepare {
                castVote(.commit, .zero, &out)
                step = .commit
            }
        case .commit:
            if round < UInt32.max { startRound(round + 1, &out) }
        }
    }

    // MARK: - Incoming messages

    private func verify(_ vote: Vote, member: Int) -> Bool {
        guard let key = memberKeys[member] else { return false }
        return key.verifySchnorr(vote.signature, message: vote.signingHash(genesis: genesis))
    }

    private func verify(_ proposal: SignedProposal, member: Int) -> Bool {
        guard let key = memberKeys[member] else { return false }
        return proposal.verifySignature(key: key)
    }

    private mutating func receiveVote(_ vote: Vote, preverified: Bool, _ out: inout [Action]) {
        guard isStarted else { return drop(.notStarted) }
        guard vote.chainID == chainID else { return drop(.wrongChain) }
        // A pool's checkpoint attestation is no consensus vote; the driver routes it to the chain.
        guard vote.step != .checkpoint else { return drop(.malformed) }
        if height < UInt64.max && vote.height == height + 1 { return bufferVote(vote) }
        guard vote.height == height else { return drop(.wrongHeight) }
        guard decision == nil else { return drop(.alreadyDecided) }
        guard let member = memberIndex[vote.voter] else { return drop(.notMember) }
        guard isKept(vote.round) else {
            guard vote.round > round else { return drop(.staleRound) }
            if raisesHighestRound(vote.round, member: member) {
                guard preverified || verify(vote, member: member) else { return drop(.badSignature) }
                noteRound(vote.round, member: member)
            }
            return drop(.roundTooFar)
        }
        let existingIndex = roundIndex(vote.round)
        if let i = existingIndex, let existing = rounds[i].votes(vote.step).vote(of: member) {
            let set = rounds[i].votes(vote.step)
            if set.hasVote(of: member, for: vote.blockHash) { return drop(.duplicate) }
            let weight = committee.members[member].weight
            // Already reported and not worth the second slot: drop before paying for a verification.
            let report = !set.isReported(member)
            let admit = set.wouldAdmitConflicting(vote.blockHash, member: member, weight: weight)
            guard report || admit else { return drop(.equivocation) }
            guard preverified || verify(vote, member: member) else { return drop(.badSignature) }
            drop(.equivocation)
            if rounds[i].update(vote.step, { $0.markReported(member) }) { out.append(.evidence(existing, vote)) }
            if admit { _ = rounds[i].update(vote.step) { $0.addConflicting(vote, member: member, weight: weight) } }
            return
        }
        guard preverified || verify(vote, member: member) else { return drop(.badSignature) }
        let i = existingIndex ?? ensureRound(vote.round)
        let weight = committee.members[member].weight
        rounds[i].update(vote.step) { $0.add(vote, member: member, weight: weight) }
        if vote.round > round { noteRound(vote.round, member: member) }
    }

    private mutating func receiveProposal(
        _ signed: SignedProposal, _ value: Value, preverified: Bool, _ out: inout [Action]
    ) {
        let p = signed.proposal
        guard isStarted else { return drop(.notStarted) }
        guard p.chainID == chainID else { return drop(.wrongChain) }
        if height < UInt64.max && p.height == height + 1 { return bufferProposal(signed, value) }
        guard p.height == height else { return drop(.wrongHeight) }
        guard decision == nil else { return drop(.alreadyDecided) }
        guard let member = memberIndex[p.proposer] else { return drop(.notMember) }
        let expected = Self.proposerIndex(height: height, round: p.round, count: committee.members.count)
        guard member == expected else { return drop(.wrongProposer) }
        if let vr = p.validRound, vr >= p.round { return drop(.invalidValidRound) }
        guard p.blockHash != .zero, value.hash == p.blockHash else { return drop(.valueMismatch) }
        guard isKept(p.round) else {
            guard p.round > round else { return drop(.staleRound) }
            if raisesHighestRound(p.round, member: member) {
                guard preverified || verify(signed, member: member) else { return drop(.badSignature) }
                noteRound(p.round, member: member)
            }
            return drop(.roundTooFar)
        }
        let existingIndex = roundIndex(p.round)
        if let i = existingIndex, rounds[i].proposal(hash: p.blockHash) != nil { return drop(.duplicate) }
        guard preverified || verify(signed, member: member) else { return drop(.badSignature) }
        let i = existingIndex ?? ensureRound(p.round)
        if rounds[i].proposals.count >= config.proposalsPerRound {
            // Only an equivocating proposer gets here. Keep a further block only if more than a third of the
            // weight (so at least one honest member) voted for it, in place of one nobody backs.
            guard isBacked(p.blockHash, in: rounds[i]),
                let evict = rounds[i].proposals.lastIndex(where: {
                    !isBacked($0.signed.proposal.blockHash, in: rounds[i])
                })
            else { return drop(.conflictingProposal) }
            rounds[i].proposals.remove(at: evict)
        }
        let valid = app.isValid(value, height: height)
        rounds[i].proposals.append(
            StoredProposal(
                signed: signed, value: value, isValid: valid,
                isTimely: p.validRound != nil || app.isTimely(value, height: height)))
        if p.round > round { noteRound(p.round, member: member) }
    }

    private mutating func receiveDecision(_ value: Value, _ certificate: CommitCertificate, _ out: inout [Action]) {
        guard isStarted else { return drop(.notStarted) }
        guard certificate.height == height else { return drop(.wrongHeight) }
        guard decision == nil else { return drop(.alreadyDecided) }
        guard certificate.blockHash != .zero, value.hash == certificate.blockHash else { return drop(.valueMismatch) }
        // `CommitCertificate.init` sorts but does not deduplicate; a member listed twice must not count twice.
        for i in certificate.signatures.indices.dropFirst()
        where certificate.signatures[i - 1].memberIndex >= certificate.signatures[i].memberIndex {
            return drop(.badCertificate)
        }
        do {
            try certificate.verify(committee: committee, chainID: chainID, genesis: genesis, blockHash: value.hash)
        } catch {
            return drop(.badCertificate)
        }
        guard app.isValid(value, height: height) else { return drop(.invalidValue) }
        decide(value, certificate, &out)
    }

    /// A message from a round beyond the window is stored nowhere; once verified it may only raise the sender's
    /// highest round, which is all the skip rule needs. Only a raise is worth a signature check.
    private func raisesHighestRound(_ r: UInt32, member: Int) -> Bool {
        highestRound[member].map { $0 < r } ?? true
    }

    private mutating func noteRound(_ r: UInt32, member: Int) {
        if highestRound[member].map({ $0 < r }) ?? true { highestRound[member] = r }
    }

    // MARK: - Next-height buffer

    /// Room for round-0…roundsAhead traffic of the next height: a vote per member and step, a proposal per round.
    private var futureCapacity: Int {
        (committee.members.count * 2 + 1) * (Int(config.roundsAhead) + 1)
    }

    private mutating func bufferVote(_ vote: Vote) {
        guard let member = memberIndex[vote.voter] else { return drop(.notMember) }
        guard vote.round <= config.roundsAhead else { return drop(.roundTooFar) }
        for case .vote(let v) in future where v.voter == vote.voter && v.round == vote.round && v.step == vote.step {
            return drop(.duplicate)
        }
        guard future.count < futureCapacity else { return drop(.futureBufferFull) }
        guard verify(vote, member: member) else { return drop(.badSignature) }
        future.append(.vote(vote))
    }

    private mutating func bufferProposal(_ signed: SignedProposal, _ value: Value) {
        let p = signed.proposal
        guard let member = memberIndex[p.proposer] else { return drop(.notMember) }
        guard p.round <= config.roundsAhead else { return drop(.roundTooFar) }
        guard member == Self.proposerIndex(height: p.height, round: p.round, count: committee.members.count) else {
            return drop(.wrongProposer)
        }
        guard p.blockHash != .zero, value.hash == p.blockHash else { return drop(.valueMismatch) }
        for case .proposal(let s, _) in future where s.proposal.round == p.round { return drop(.duplicate) }
        guard future.count < futureCapacity else { return drop(.futureBufferFull) }
        guard verify(signed, member: member) else { return drop(.badSignature) }
        future.append(.proposal(signed, value))
    }

    // MARK: - Rounds kept

    private func roundIndex(_ r: UInt32) -> Int? { rounds.firstIndex { $0.round == r } }

    private mutating func ensureRound(_ r: UInt32) -> Int {
        if let i = roundIndex(r) { return i }
        let i = rounds.firstIndex { $0.round > r } ?? rounds.count
        rounds.insert(RoundState(round: r, members: committee.members.count), at: i)
        return i
    }

    private func inWindow(_ r: UInt32) -> Bool {
        r >= round ? r - round <= config.roundsAhead : round - r <= config.roundsBehind
    }

    /// The window around the current round, the locked and valid rounds, and any round a proposal held in the
    /// window names as its proof-of-lock (its prepares are what lets this node follow the proposal).
    private func isKept(_ r: UInt32) -> Bool {
        if inWindow(r) || r == lockedRound || r == validRound { return true }
        return rounds.contains { rs in
            inWindow(rs.round) && rs.proposals.contains { $0.signed.proposal.validRound == r }
        }
    }

    private mutating func prune() {
        let keep = rounds.map { isKept($0.round) }
        var i = 0
        rounds.removeAll { _ in
            defer { i += 1 }
            return !keep[i]
        }
    }

    /// More than a third of the weight: at least one honest member among them.
    private func exceedsOneThird(_ weight: UInt64) -> Bool {
        let lhs = weight.multipliedFullWidth(by: 3)
        let rhs = (high: UInt64(0), low: committee.totalWeight)
        return lhs.high > rhs.high || (lhs.high == rhs.high && lhs.low > rhs.low)
    }

    private func isBacked(_ hash: Bytes32, in rs: RoundState<Value>) -> Bool {
        exceedsOneThird(max(rs.prepares.weight(for: hash), rs.commits.weight(for: hash)))
    }

    // MARK: - Acting

    /// Signs and counts this node's vote, then broadcasts it. Never signs a second vote for one
    /// (height, round, step): if one exists it is re-sent instead, so the core cannot equivocate.
    private mutating func castVote(_ voteStep: VoteStep, _ hash: Bytes32, _ out: inout [Action]) {
        guard let own = ownIndex, let signer else { return }
        let i = ensureRound(round)
        if let existing = rounds[i].votes(voteStep).vote(of: own) {
            out.append(.broadcastVote(existing))
            return
        }
        // Signed before a restart, possibly for another block: that vote is this node's, whatever it would choose
        // now. Counting and re-sending it keeps the tally true and the node from equivocating.
        if let prior = signedBefore.first(where: { $0.round == round && $0.step == voteStep }) {
            let weight = committee.members[own].weight
            rounds[i].update(voteStep) { $0.add(prior, member: own, weight: weight) }
            out.append(.broadcastVote(prior))
            return
        }
        let vote = Vote(
            signing: signer, chainID: chainID, genesis: genesis, height: height, round: round, step: voteStep,
            blockHash: hash)
        let weight = committee.members[own].weight
        rounds[i].update(voteStep) { $0.add(vote, member: own, weight: weight) }
        out.append(.broadcastVote(vote))
    }

    private mutating func decide(_ value: Value, _ certificate: CommitCertificate, _ out: inout [Action]) {
        decision = Decision(value: value, certificate: certificate)
        rounds = []
        out.append(.decide(value, certificate))
    }

    /// A valid value with this hash held anywhere at this height.
    private func value(for hash: Bytes32) -> Value? {
        for rs in rounds {
            if let p = rs.proposal(hash: hash), p.isValid { return p.value }
        }
        if let v = validValue, v.hash == hash { return v }
        if let v = lockedValue, v.hash == hash { return v }
        return nil
    }

    /// Applies the paper's upon-rules until none fires. Every rule moves the state forward (step, round or a
    /// once-per-round flag), so the loop ends.
    private mutating func progress(_ out: inout [Action]) {
        while isStarted && decision == nil {
            if tryDecide(&out) { return }
            if trySkipRound(&out) { continue }
            guard let ri = roundIndex(round) else { return }
            let rs = rounds[ri]

            // Lines 22 and 28: prepare on the round's proposal.
            if step == .propose, let first = rs.proposals.first {
                let p = first.signed.proposal
                var acted = false
                var accept = false
                if let vr = p.validRound {
                    if let vi = roundIndex(vr), committee.isQuorum(rounds[vi].prepares.weight(for: p.blockHash)) {
                        acted = true
                        accept =
                            first.isValid && (lockedRound.map { $0 <= vr } ?? true || lockedValue?.hash == p.blockHash)
                    }
                } else {
                    acted = true
                    // A fresh value must also be timely here; one with a proof-of-lock needs no clock.
                    accept =
                        first.isValid && first.isTimely && (lockedRound == nil || lockedValue?.hash == p.blockHash)
                }
                if acted {
                    castVote(.prepare, accept ? p.blockHash : .zero, &out)
                    step = .prepare
                    continue
                }
            }

            // Line 34: a quorum of prepares of any kind starts the prepare timeout.
            if step == .prepare && !prepareTimeoutArmed && committee.isQuorum(rs.prepares.totalWeight) {
                prepareTimeoutArmed = true
                out.append(
                    .scheduleTimeout(
                        height: height, round: round, step: .prepare,
                        afterMilliseconds: config.timeouts.milliseconds(for: .prepare, round: round)))
            }

            // Line 36: a quorum of prepares for a valid proposal locks it (if still preparing) and makes it valid.
            if step >= .prepare && !lockRuleDone, let hash = rs.prepares.quorumHash(committee),
                let p = rs.proposal(hash: hash), p.isValid
            {
                lockRuleDone = true
                if step == .prepare {
                    lockedValue = p.value
                    lockedRound = round
                    castVote(.commit, hash, &out)
                    step = .commit
                }
                validValue = p.value
                validRound = round
                continue
            }

            // Line 44: a quorum of nil prepares: commit nil.
            if step == .prepare && committee.isQuorum(rs.prepares.weight(for: .zero)) {
                castVote(.commit, .zero, &out)
                step = .commit
                continue
            }

            // Line 47: a quorum of commits of any kind starts the commit timeout.
            if !commitTimeoutArmed && committee.isQuorum(rs.commits.totalWeight) {
                commitTimeoutArmed = true
                out.append(
                    .scheduleTimeout(
                        height: height, round: round, step: .commit,
                        afterMilliseconds: config.timeouts.milliseconds(for: .commit, round: round)))
            }
            return
        }
    }

    /// Line 49: a quorum of commits for a value this node holds (in any kept round) decides it.
    private mutating func tryDecide(_ out: inout [Action]) -> Bool {
        for rs in rounds {
            guard let hash = rs.commits.quorumHash(committee), let value = value(for: hash) else { continue }
            let certificate = CommitCertificate(
                height: height, round: rs.round, blockHash: hash, signatures: rs.commits.signatures(for: hash))
            decide(value, certificate, &out)
            return true
        }
        return false
    }

    /// Line 55: if members holding more than a third of the weight are in rounds above ours, at least one honest
    /// member is; jump to the highest round that such a set has reached.
    private mutating func trySkipRound(_ out: inout [Action]) -> Bool {
        var ahead: [(round: UInt32, weight: UInt64)] = []
        for (i, r) in highestRound.enumerated() {
            if let r, r > round { ahead.append((r, committee.members[i].weight)) }
        }
        guard !ahead.isEmpty else { return false }
        ahead.sort { $0.round > $1.round }
        var weight: UInt64 = 0
        for entry in ahead {
            weight += entry.weight
            if exceedsOneThird(weight) {
                startRound(entry.round, &out)
                return true
            }
        }
        return false
    }

    /// The gossip timer: re-send what peers may have missed. A decided node sends its decision; otherwise the
    /// current round's proposals, this node's own votes in every kept round, and the prepares that prove its
    /// valid value (so a later proposal of that value can be followed even if its first senders are gone).
    private func retransmit(_ out: inout [Action]) {
        guard isStarted else { return }
        if let decision {
            out.append(.broadcastDecision(decision.value, decision.certificate))
            return
        }
        if let i = roundIndex(round) {
            for p in rounds[i].proposals { out.append(.broadcastProposal(p.signed, p.value)) }
        }
        if let own = ownIndex {
            for rs in rounds {
                if let v = rs.prepares.vote(of: own) { out.append(.broadcastVote(v)) }
                if let v = rs.commits.vote(of: own) { out.append(.broadcastVote(v)) }
            }
        }
        if let vr = validRound, let value = validValue, let i = roundIndex(vr) {
            for (member, vote) in rounds[i].prepares.votes(for: value.hash) where member != ownIndex {
                out.append(.broadcastVote(vote))
            }
        }
    }
}

/// A core may move between isolation domains (a host actor, a test thread) when its application and values can.
extension ConsensusCore: Sendable where App: Sendable, App.Value: Sendable {}
extension ConsensusCore.Decision: Sendable where App.Value: Sendable {}
extension ConsensusCore.FutureMessage: Sendable where App.Value: Sendable {}
