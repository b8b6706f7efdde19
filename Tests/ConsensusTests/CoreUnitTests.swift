import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Consensus

/// A four-member committee (equal weights, quorum = 3 members) and helpers to sign as any member.
struct Fixture {
    static let chainID: UInt32 = 7
    static let genesis = Bytes32(w0: 0x67, w1: 7, w2: 7, w3: 7)
    let keys = Array(SimKeys.keys[0..<4])
    let committee: Committee

    init(weights: [UInt64] = [1, 1, 1, 1]) {
        committee = try! Committee(
            epoch: 0,
            members: weights.enumerated().map { .init(key: SimKeys.keys[$0].xOnlyPublicKey.bytes, weight: $1) })
    }

    func core(_ member: Int, config: ConsensusConfig = .init(), untimelySalt: UInt64? = nil) -> SimCore {
        SimCore(
            chainID: Fixture.chainID, genesis: Fixture.genesis, committee: committee, privateKey: keys[member],
            app: SimApp(node: member, untimelySalt: untimelySalt),
            config: config)
    }

    func vote(_ member: Int, _ height: UInt64, _ round: UInt32, _ step: VoteStep, _ hash: Bytes32) -> Vote {
        let key = SimKeys.keys[member]
        let voter = key.xOnlyPublicKey.bytes
        let message = Vote.signingHash(
            chainID: Fixture.chainID, genesis: Fixture.genesis, height: height, round: round, step: step,
            blockHash: hash, voter: voter)
        return Vote(
            chainID: Fixture.chainID, height: height, round: round, step: step, blockHash: hash, voter: voter,
            signature: key.signSchnorr(message, auxRandom: .zero))
    }

    func block(_ height: UInt64, _ round: UInt32, by member: Int, salt: UInt64 = 0) -> SimBlock {
        SimBlock(height: height, round: round, proposer: UInt16(member), salt: salt, valid: true)
    }

    func proposal(_ member: Int, _ block: SimBlock, round: UInt32, validRound: UInt32? = nil) -> SignedProposal {
        let p = Proposal(
            chainID: Fixture.chainID, height: block.height, round: round, validRound: validRound,
            blockHash: block.hash, proposer: SimKeys.keys[member].xOnlyPublicKey.bytes)
        return SignedProposal(signing: p, with: SimKeys.keys[member])
    }
}

extension Array where Element == SimCore.Action {
    /// The votes among the actions, as (round, step, hash).
    var votes: [Vote] {
        compactMap { if case .broadcastVote(let v) = $0 { return v } else { return nil } }
    }

    var timeouts: [(round: UInt32, step: ConsensusStep, ms: UInt64)] {
        compactMap {
            if case .scheduleTimeout(_, let r, let s, let ms) = $0 { return (r, s, ms) } else { return nil }
        }
    }

    var decisions: [(SimBlock, CommitCertificate)] {
        compactMap { if case .decide(let b, let c) = $0 { return (b, c) } else { return nil } }
    }

    var evidence: [(Vote, Vote)] {
        compactMap { if case .evidence(let a, let b) = $0 { return (a, b) } else { return nil } }
    }
}

final class CoreUnitTests: XCTestCase {
    let f = Fixture()

    func testProposerRotationHasNoOverflow() {
        XCTAssertEqual(SimCore.proposerIndex(height: 1, round: 0, count: 4), 1)
        XCTAssertEqual(SimCore.proposerIndex(height: 1, round: 3, count: 4), 0)
        XCTAssertEqual(SimCore.proposerIndex(height: 7, round: 2, count: 24), 9)
        // (2^64 - 1 + 2^32 - 1) mod 5 without wrapping: 2^64 ≡ 1, 2^32 ≡ 1 (mod 5), so 0 + 0 = 0.
        XCTAssertEqual(SimCore.proposerIndex(height: .max, round: .max, count: 5), 0)
        XCTAssertEqual(
            SimCore.proposerIndex(height: .max, round: .max, count: 7), Int((UInt64.max % 7 + 4294967295 % 7) % 7))
    }

    func testTimeoutsGrowWithTheRound() {
        let t = TimeoutSchedule(
            proposeBase: 1000, proposeIncrement: 500, prepareBase: 300, prepareIncrement: 100, commitBase: 200,
            commitIncrement: 50)
        XCTAssertEqual(t.milliseconds(for: .propose, round: 0), 1000)
        XCTAssertEqual(t.milliseconds(for: .propose, round: 4), 3000)
        XCTAssertEqual(t.milliseconds(for: .prepare, round: 2), 500)
        XCTAssertEqual(t.milliseconds(for: .commit, round: 10), 700)
        let huge = TimeoutSchedule(proposeBase: .max - 1, proposeIncrement: .max)
        XCTAssertEqual(huge.milliseconds(for: .propose, round: 2), .max)

        // The core asks for a longer propose timeout in every round it enters through commit timeouts.
        var core = f.core(0, config: ConsensusConfig(timeouts: t))
        var proposeTimeouts = core.handle(.start(height: 1, now: 0)).timeouts.map(\.ms)
        for r in UInt32(0)..<5 {
            proposeTimeouts += core.handle(.timeout(height: 1, round: r, step: .commit)).timeouts.map(\.ms)
        }
        XCTAssertEqual(proposeTimeouts, [1000, 1500, 2000, 2500, 3000, 3500])
        XCTAssertEqual(core.round, 5)
    }

    func testHappyPathDecidesWithAVerifyingCertificate() throws {
        var core = f.core(0)
        let start = core.handle(.start(height: 1, now: 0))
        XCTAssertTrue(start.votes.isEmpty, "member 0 is not the proposer of (1, 0)")
        let block = f.block(1, 0, by: 1)
        let prepared = core.handle(.proposalReceived(f.proposal(1, block, round: 0), block))
        XCTAssertEqual(prepared.votes.map(\.blockHash), [block.hash])
        XCTAssertEqual(prepared.votes.first?.step, .prepare)
        _ = core.handle(.voteReceived(f.vote(1, 1, 0, .prepare, block.hash)))
        let committed = core.handle(.voteReceived(f.vote(2, 1, 0, .prepare, block.hash)))
        XCTAssertEqual(committed.votes.map(\.step), [.commit])
        XCTAssertEqual(core.lockedRound, 0)
        XCTAssertEqual(core.lockedValue, block)
        XCTAssertEqual(core.validRound, 0)
        _ = core.handle(.voteReceived(f.vote(1, 1, 0, .commit, block.hash)))
        let decided = core.handle(.voteReceived(f.vote(3, 1, 0, .commit, block.hash)))
        let (value, certificate) = try XCTUnwrap(decided.decisions.first)
        XCTAssertEqual(value, block)
        XCTAssertEqual(certificate.signatures.map(\.memberIndex), [0, 1, 3])
        XCTAssertEqual(
            try certificate.verify(
                committee: f.committee, chainID: Fixture.chainID, genesis: Fixture.genesis, blockHash: block.hash), 3)
        XCTAssertNotNil(core.decision)

        // Retransmission after the decision sends the decision, for peers that missed the commits.
        let again = core.handle(.retransmit)
        guard case .broadcastDecision(let b, _)? = again.first else { return XCTFail("expected the decision") }
        XCTAssertEqual(b, block)
    }

    /// After a restart the host hands the core the votes its journal says were sent at this height. Offered
    /// another block in that round, the core re-sends (and counts) the journaled vote instead of signing a
    /// conflicting one. Without the journal it would equivocate.
    func testRestartedMemberResendsItsJournaledVoteInsteadOfEquivocating() throws {
        let before = f.block(1, 0, by: 1, salt: 1)
        let now = f.block(1, 0, by: 1, salt: 2)
        let journaled = f.vote(0, 1, 0, .prepare, before.hash)
        // Votes of other heights or voters in the list are ignored.
        let noise = [f.vote(0, 2, 0, .prepare, now.hash), f.vote(1, 1, 0, .prepare, now.hash)]
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0, signedBefore: [journaled] + noise))
        let offered = core.handle(.proposalReceived(f.proposal(1, now, round: 0), now))
        XCTAssertEqual(offered.votes, [journaled], "the journaled vote, not a vote for the new block")
        // Two more prepares for the new block: with the journaled vote for the old one, no quorum of three.
        _ = core.handle(.voteReceived(f.vote(1, 1, 0, .prepare, now.hash)))
        let two = core.handle(.voteReceived(f.vote(2, 1, 0, .prepare, now.hash)))
        XCTAssertTrue(two.votes.filter { $0.step == .commit }.isEmpty, "commits need three prepares")
        XCTAssertNil(core.lockedValue)

        // A fresh core (no journal) signs for the new block: the equivocation the journal prevents.
        var forgetful = f.core(0)
        _ = forgetful.handle(.start(height: 1, now: 0))
        let fresh = forgetful.handle(.proposalReceived(f.proposal(1, now, round: 0), now))
        XCTAssertEqual(fresh.votes.map(\.blockHash), [now.hash])
    }

    func testProposerProposesAndReproposesItsValidValue() throws {
        var core = f.core(1)
        let actions = core.handle(.start(height: 1, now: 0))
        guard case .broadcastProposal(let signed, let value)? = actions.first else {
            return XCTFail("member 1 proposes (1, 0)")
        }
        XCTAssertTrue(signed.verifySignature())
        XCTAssertNil(signed.proposal.validRound)
        XCTAssertEqual(actions.votes.map(\.blockHash), [value.hash], "the proposer prepares its own block")
        // Two more prepares: locked and valid at round 0.
        _ = core.handle(.voteReceived(f.vote(2, 1, 0, .prepare, value.hash)))
        _ = core.handle(.voteReceived(f.vote(3, 1, 0, .prepare, value.hash)))
        XCTAssertEqual(core.validRound, 0)
        // Rounds 1..3 pass by commit timeouts; at round 4 member 1 proposes again: the same block, vr = 0.
        for r in UInt32(0)..<3 { _ = core.handle(.timeout(height: 1, round: r, step: .commit)) }
        let again = core.handle(.timeout(height: 1, round: 3, step: .commit))
        guard case .broadcastProposal(let signed4, let value4)? = again.first else {
            return XCTFail("member 1 proposes (1, 4)")
        }
        XCTAssertEqual(value4, value)
        XCTAssertEqual(signed4.proposal.round, 4)
        XCTAssertEqual(signed4.proposal.validRound, 0)
    }

    /// Locked on A at round 0: a fresh proposal B gets a nil prepare; B with a proof-of-lock from a later round
    /// (a quorum of prepares for B at its valid round) gets a prepare for B.
    /// A fresh proposal this node finds untimely (dated ahead of its clock) gets a nil prepare; the same value
    /// re-proposed with a proof-of-lock, or decided by a certificate, needs no clock.
    func testAnUntimelyFreshProposalIsPreparedNil() throws {
        var core = f.core(0, untimelySalt: 99)
        _ = core.handle(.start(height: 1, now: 0))
        let late = f.block(1, 0, by: 1, salt: 99)
        XCTAssertEqual(
            core.handle(.proposalReceived(f.proposal(1, late, round: 0), late)).votes.map(\.blockHash), [.zero])
        // The others prepared it anyway (their clocks agree with the proposer): in round 1 it comes back with
        // its proof-of-lock, and this node prepares it.
        for m in 1...3 { _ = core.handle(.voteReceived(f.vote(m, 1, 0, .prepare, late.hash))) }
        for m in 1...3 { _ = core.handle(.voteReceived(f.vote(m, 1, 0, .commit, .zero))) }
        _ = core.handle(.timeout(height: 1, round: 0, step: .commit))
        XCTAssertEqual(core.round, 1)
        let again = core.handle(.proposalReceived(f.proposal(2, late, round: 1, validRound: 0), late))
        XCTAssertEqual(again.votes.map(\.blockHash), [late.hash])
        // A timely fresh proposal is prepared as always.
        var other = f.core(0, untimelySalt: 99)
        _ = other.handle(.start(height: 1, now: 0))
        let timely = f.block(1, 0, by: 1, salt: 1)
        XCTAssertEqual(
            other.handle(.proposalReceived(f.proposal(1, timely, round: 0), timely)).votes.map(\.blockHash),
            [timely.hash])
    }

    func testLockingAndProofOfLock() throws {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        let a = f.block(1, 0, by: 1)
        _ = core.handle(.proposalReceived(f.proposal(1, a, round: 0), a))
        _ = core.handle(.voteReceived(f.vote(1, 1, 0, .prepare, a.hash)))
        let lock = core.handle(.voteReceived(f.vote(2, 1, 0, .prepare, a.hash)))
        XCTAssertEqual(lock.votes.map(\.blockHash), [a.hash])
        XCTAssertEqual(core.lockedRound, 0)
        // Nil commits from two others: a quorum of commits of any kind arms the commit timeout; it moves to r1.
        _ = core.handle(.voteReceived(f.vote(2, 1, 0, .commit, .zero)))
        let armed = core.handle(.voteReceived(f.vote(3, 1, 0, .commit, .zero)))
        XCTAssertEqual(armed.timeouts.map(\.step), [.commit])
        _ = core.handle(.timeout(height: 1, round: 0, step: .commit))
        XCTAssertEqual(core.round, 1)

        // Round 1, proposer 2: a fresh B. Locked on A, the node prepares nil.
        let b = f.block(1, 1, by: 2)
        let fresh = core.handle(.proposalReceived(f.proposal(2, b, round: 1), b))
        XCTAssertEqual(fresh.votes.map(\.blockHash), [.zero])
        XCTAssertEqual(core.lockedValue, a)

        // The others prepare B at round 1 (this node does not learn from that alone: it already prepared).
        for m in 1...3 { _ = core.handle(.voteReceived(f.vote(m, 1, 1, .prepare, b.hash))) }
        XCTAssertEqual(core.step, .commit, "a quorum for a held valid proposal in the current round locks it")
        XCTAssertEqual(core.lockedRound, 1)
        XCTAssertEqual(core.lockedValue, b)
        XCTAssertEqual(core.validRound, 1)
    }

    func testProofOfLockFromAnEarlierRoundReleasesTheLock() throws {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        let a = f.block(1, 0, by: 1)
        _ = core.handle(.proposalReceived(f.proposal(1, a, round: 0), a))
        _ = core.handle(.voteReceived(f.vote(1, 1, 0, .prepare, a.hash)))
        _ = core.handle(.voteReceived(f.vote(2, 1, 0, .prepare, a.hash)))
        XCTAssertEqual(core.lockedRound, 0)
        _ = core.handle(.timeout(height: 1, round: 0, step: .commit))

        // Round 1: the proposal never reaches this node; it times out and prepares nil, while the others
        // prepare B (seen here, but without B's value it cannot lock).
        let b = f.block(1, 1, by: 2)
        let nilVote = core.handle(.timeout(height: 1, round: 1, step: .propose))
        XCTAssertEqual(nilVote.votes.map(\.blockHash), [.zero])
        for m in 1...3 { _ = core.handle(.voteReceived(f.vote(m, 1, 1, .prepare, b.hash))) }
        XCTAssertEqual(core.lockedRound, 0)
        _ = core.handle(.timeout(height: 1, round: 1, step: .prepare))
        _ = core.handle(.timeout(height: 1, round: 1, step: .commit))
        XCTAssertEqual(core.round, 2)

        // Round 2, proposer 3, re-proposes B with vr = 1: the quorum at round 1 is the proof, and 1 >= lockedRound.
        let withProof = core.handle(.proposalReceived(f.proposal(3, b, round: 2, validRound: 1), b))
        XCTAssertEqual(withProof.votes.map(\.blockHash), [b.hash])
        XCTAssertEqual(withProof.votes.map(\.round), [2])
    }

    func testClaimedProofOfLockWithoutTheVotesIsNotFollowed() {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        let a = f.block(1, 0, by: 1)
        _ = core.handle(.proposalReceived(f.proposal(1, a, round: 0), a))
        for m in 1...2 { _ = core.handle(.voteReceived(f.vote(m, 1, 0, .prepare, a.hash))) }
        _ = core.handle(.timeout(height: 1, round: 0, step: .commit))
        _ = core.handle(.timeout(height: 1, round: 1, step: .commit))
        XCTAssertEqual(core.round, 2)
        // B claims vr = 1, but only two prepares for B at round 1 exist: no quorum, so no prepare for B ...
        let b = f.block(1, 1, by: 2)
        for m in 1...2 { _ = core.handle(.voteReceived(f.vote(m, 1, 1, .prepare, b.hash))) }
        let waiting = core.handle(.proposalReceived(f.proposal(3, b, round: 2, validRound: 1), b))
        XCTAssertTrue(waiting.votes.isEmpty)
        // ... and at the propose timeout it prepares nil.
        let timedOut = core.handle(.timeout(height: 1, round: 2, step: .propose))
        XCTAssertEqual(timedOut.votes.map(\.blockHash), [.zero])
    }

    func testLockFromALaterRoundBeatsAnOlderProof() {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        // Quorum for B at round 0 (seen, not held), then a lock on A at round 1.
        let b = f.block(1, 0, by: 1)
        for m in 1...3 { _ = core.handle(.voteReceived(f.vote(m, 1, 0, .prepare, b.hash))) }
        _ = core.handle(.timeout(height: 1, round: 0, step: .propose))
        _ = core.handle(.timeout(height: 1, round: 0, step: .commit))
        let a = f.block(1, 1, by: 2)
        _ = core.handle(.proposalReceived(f.proposal(2, a, round: 1), a))
        for m in 2...3 { _ = core.handle(.voteReceived(f.vote(m, 1, 1, .prepare, a.hash))) }
        XCTAssertEqual(core.lockedRound, 1)
        _ = core.handle(.timeout(height: 1, round: 1, step: .commit))
        // Round 2: B with vr = 0 has a valid proof, but 0 < lockedRound 1: prepare nil.
        let old = core.handle(.proposalReceived(f.proposal(3, b, round: 2, validRound: 0), b))
        XCTAssertEqual(old.votes.map(\.blockHash), [.zero])
    }

    func testRoundSkipNeedsMoreThanAThirdOfTheWeight() {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        // One member of four (a quarter) in round 5: not enough.
        _ = core.handle(.voteReceived(f.vote(2, 1, 5, .prepare, .zero)))
        XCTAssertEqual(core.round, 0)
        // A second one in round 6: two members are at round >= 5, so jump to 5 (not 6: only one member is there).
        let skipped = core.handle(.voteReceived(f.vote(3, 1, 6, .prepare, .zero)))
        XCTAssertEqual(core.round, 5)
        XCTAssertEqual(skipped.timeouts.map(\.round), [5])
        XCTAssertEqual(skipped.timeouts.map(\.ms), [TimeoutSchedule().milliseconds(for: .propose, round: 5)])
        // Far beyond the window: the votes are not stored, but their rounds still count for skipping.
        _ = core.handle(.voteReceived(f.vote(1, 1, 90, .commit, .zero)))
        _ = core.handle(.voteReceived(f.vote(2, 1, 80, .commit, .zero)))
        XCTAssertEqual(core.round, 80)
        XCTAssertEqual(core.drops[.roundTooFar], 4)
        XCTAssertEqual(core.voteCount(round: 90, step: .commit), 0)
    }

    func testWeightedQuorumAndSkip() {
        // Weights 1, 1, 1, 6 (total 9): member 3 alone is more than a third, and with any other one a quorum.
        let w = Fixture(weights: [1, 1, 1, 6])
        var core = w.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        _ = core.handle(.voteReceived(w.vote(3, 1, 4, .prepare, .zero)))
        XCTAssertEqual(core.round, 4, "6 of 9 is more than a third")
        XCTAssertEqual(core.step, .propose)
        // The vote itself was beyond the window and not kept; its retransmission now is.
        _ = core.handle(.voteReceived(w.vote(3, 1, 4, .prepare, .zero)))
        // Round 4, proposer (1 + 4) mod 4 = 1. Member 3 prepared nil: with this node's nil, 7 of 9 > 2/3.
        _ = core.handle(.timeout(height: 1, round: 4, step: .propose))
        XCTAssertEqual(core.step, .commit)
    }

    func testEquivocationIsEvidenceAndCountsOnce() throws {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        let a = f.block(1, 0, by: 1)
        let b = f.block(1, 0, by: 1, salt: 9)
        let first = f.vote(2, 1, 0, .prepare, a.hash)
        let second = f.vote(2, 1, 0, .prepare, b.hash)
        XCTAssertTrue(core.handle(.voteReceived(first)).evidence.isEmpty)
        let reported = core.handle(.voteReceived(second))
        let (x, y) = try XCTUnwrap(reported.evidence.first)
        XCTAssertEqual(x, first)
        XCTAssertEqual(y, second)
        XCTAssertEqual(core.voteCount(round: 0, step: .prepare), 1, "the member is one voter")
        XCTAssertEqual(core.weight(round: 0, step: .prepare, hash: a.hash), 1)
        // The same conflicting vote again is a duplicate; a third hash is no new evidence.
        XCTAssertTrue(core.handle(.voteReceived(second)).evidence.isEmpty)
        XCTAssertTrue(core.handle(.voteReceived(f.vote(2, 1, 0, .prepare, .zero))).evidence.isEmpty)
        XCTAssertEqual(core.drops[.duplicate], 1)
        XCTAssertEqual(core.drops[.equivocation], 2)
        XCTAssertEqual(core.weight(round: 0, step: .prepare, hash: a.hash), 1)
    }

    func testHonestCoreNeverSignsTwoVotesForOneStep() {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        var signed: [Vote] = core.handle(.timeout(height: 1, round: 0, step: .propose)).votes
        let a = f.block(1, 0, by: 1)
        signed += core.handle(.proposalReceived(f.proposal(1, a, round: 0), a)).votes
        signed += core.handle(.timeout(height: 1, round: 0, step: .propose)).votes
        XCTAssertEqual(signed.map(\.blockHash), [.zero])
    }

    func testDecisionLearntElsewhere() throws {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        let block = f.block(1, 0, by: 1)
        let sigs = (1...3).map { m in
            CommitCertificate.Signature(
                memberIndex: UInt16(m), signature: f.vote(m, 1, 2, .commit, block.hash).signature)
        }
        let certificate = CommitCertificate(height: 1, round: 2, blockHash: block.hash, signatures: sigs)
        let out = core.handle(.decidedElsewhere(block, certificate))
        XCTAssertEqual(out.decisions.first?.0, block)
        XCTAssertEqual(core.decision?.certificate, certificate)
        // Next height starts clean.
        _ = core.handle(.start(height: 2, now: 10))
        XCTAssertNil(core.decision)
        XCTAssertEqual(core.height, 2)
        XCTAssertNil(core.lockedRound)
    }

    func testNextHeightMessagesAreBufferedAndReplayed() {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        // Height 2, round 0: proposer is member 2.
        let next = f.block(2, 0, by: 2)
        _ = core.handle(.proposalReceived(f.proposal(2, next, round: 0), next))
        _ = core.handle(.voteReceived(f.vote(2, 2, 0, .prepare, next.hash)))
        XCTAssertEqual(core.bufferedNextHeight, 2)
        XCTAssertEqual(core.round, 0)
        _ = core.handle(.timeout(height: 1, round: 0, step: .commit))
        XCTAssertEqual(core.height, 1)
        let started = core.handle(.start(height: 2, now: 0))
        XCTAssertEqual(started.votes.map(\.blockHash), [next.hash], "replayed proposal is prepared at once")
        XCTAssertEqual(core.weight(round: 0, step: .prepare, hash: next.hash), 2)
        XCTAssertEqual(core.bufferedNextHeight, 0)
    }

    func testMemoryIsBoundedByTheRoundWindow() {
        let config = ConsensusConfig(roundsBehind: 2, roundsAhead: 2)
        var core = f.core(0, config: config)
        _ = core.handle(.start(height: 1, now: 0))
        for r in UInt32(0)..<40 {
            for m in 1...3 { _ = core.handle(.voteReceived(f.vote(m, 1, r, .prepare, .zero))) }
            XCTAssertLessThanOrEqual(core.keptRounds.count, 5 + 3)
        }
        // Thanks to round skipping the node followed to round 39; only the window around it is held.
        XCTAssertEqual(core.round, 39)
        XCTAssertTrue(core.keptRounds.allSatisfy { $0 + 2 >= 39 }, "\(core.keptRounds)")
    }

    func testRetransmitResendsOwnVotesAndTheRoundProposal() {
        var core = f.core(0)
        _ = core.handle(.start(height: 1, now: 0))
        let a = f.block(1, 0, by: 1)
        _ = core.handle(.proposalReceived(f.proposal(1, a, round: 0), a))
        let out = core.handle(.retransmit)
        guard case .broadcastProposal(_, let v)? = out.first else { return XCTFail("round proposal first") }
        XCTAssertEqual(v, a)
        XCTAssertEqual(out.votes.map(\.voter), [f.keys[0].xOnlyPublicKey.bytes])
    }

    func testObserverFollowsWithoutSigning() throws {
        var observer = SimCore(
            chainID: Fixture.chainID, genesis: Fixture.genesis, committee: f.committee, privateKey: SimKeys.keys[9],
            app: SimApp(node: 9))
        XCTAssertNil(observer.ownIndex)
        _ = observer.handle(.start(height: 1, now: 0))
        let a = f.block(1, 0, by: 1)
        var out = observer.handle(.proposalReceived(f.proposal(1, a, round: 0), a))
        for m in 1...3 { out += observer.handle(.voteReceived(f.vote(m, 1, 0, .prepare, a.hash))) }
        for m in 1...3 { out += observer.handle(.voteReceived(f.vote(m, 1, 0, .commit, a.hash))) }
        XCTAssertTrue(out.votes.isEmpty)
        XCTAssertEqual(out.decisions.first?.0, a)
    }

    func testProposalEncodingAndDomain() throws {
        let block = f.block(3, 2, by: 1)
        let signed = f.proposal(1, block, round: 2, validRound: 1)
        XCTAssertEqual(try SignedProposal(decoding: signed.encoded), signed)
        let fresh = f.proposal(1, block, round: 2)
        XCTAssertEqual(try SignedProposal(decoding: fresh.encoded), fresh)
        XCTAssertEqual(fresh.encoded.count, signed.encoded.count - 1, "no valid round is one flag byte")
        XCTAssertTrue(signed.verifySignature())
        var tampered = signed
        tampered.proposal.validRound = 0
        XCTAssertFalse(tampered.verifySignature())
        // A valid round not below the round has no encoding.
        var bad = signed.proposal
        bad.validRound = 2
        XCTAssertThrowsError(try Proposal(decoding: bad.encoded))
        // The proposal tag differs from the vote tag: the same fields never hash alike across kinds.
        XCTAssertNotEqual(signed.proposal.signingHash, Domain.vote.hash(signed.proposal.encoded))
        XCTAssertEqual(signed.proposal.signingHash, TaggedHash(tag: "AmarsProposal").hash(signed.proposal.encoded))
        // Wire envelope round trip.
        let message = ConsensusMessage<SimBlock>.proposal(signed, block)
        guard case .proposal(let s, let v) = try ConsensusMessage<SimBlock>(decoding: message.encoded) else {
            return XCTFail("tag")
        }
        XCTAssertEqual(s, signed)
        XCTAssertEqual(v, block)
    }
}
