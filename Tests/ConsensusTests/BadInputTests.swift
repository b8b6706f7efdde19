import AmarsTestSupport
import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Consensus

/// Every malformed, forged or misplaced input is dropped with a reason and leaves the state as it was.
final class BadInputTests: XCTestCase {
    let f = Fixture()

    /// What a bad input must not change.
    func fingerprint(_ c: SimCore) -> String {
        var parts = ["h\(c.height) r\(c.round) \(c.step) lock \(String(describing: c.lockedRound))"]
        parts.append("valid \(String(describing: c.validRound)) kept \(c.keptRounds) next \(c.bufferedNextHeight)")
        parts.append("decided \(c.decision != nil)")
        for r in c.keptRounds {
            parts.append("\(r): \(c.voteCount(round: r, step: .prepare))/\(c.voteCount(round: r, step: .commit))")
        }
        return parts.joined(separator: " ")
    }

    /// A core at height 5, round 0, with one honest prepare counted.
    func startedCore() -> SimCore {
        var core = f.core(0)
        _ = core.handle(.start(height: 5, now: 0))
        _ = core.handle(.voteReceived(f.vote(1, 5, 0, .prepare, .zero)))
        return core
    }

    func assertDropped(
        _ event: SimCore.Event, _ reason: DropReason, file: StaticString = #filePath, line: UInt = #line
    ) {
        var core = startedCore()
        let before = fingerprint(core)
        let out = core.handle(event)
        XCTAssertTrue(out.isEmpty, "no action for bad input", file: file, line: line)
        XCTAssertEqual(core.drops[reason], 1, "\(reason)", file: file, line: line)
        XCTAssertEqual(core.drops.total, 1, "exactly one reason", file: file, line: line)
        XCTAssertEqual(fingerprint(core), before, file: file, line: line)
    }

    func testForgedVoteSignature() {
        var vote = f.vote(2, 5, 0, .prepare, .zero)
        vote.signature.first.w0 ^= 1
        assertDropped(.voteReceived(vote), .badSignature)
        // A genuine signature moved to another voter's vote does not verify either.
        var stolen = f.vote(2, 5, 0, .prepare, .zero)
        stolen.voter = f.keys[3].xOnlyPublicKey.bytes
        assertDropped(.voteReceived(stolen), .badSignature)
        // Nor one over another block.
        var moved = f.vote(2, 5, 0, .prepare, .zero)
        moved.blockHash = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        assertDropped(.voteReceived(moved), .badSignature)
    }

    func testVoteFromNonMember() {
        let outsider = SimKeys.keys[20]
        let voter = outsider.xOnlyPublicKey.bytes
        let message = Vote.signingHash(
            chainID: 7, genesis: Fixture.genesis, height: 5, round: 0, step: .prepare, blockHash: .zero, voter: voter)
        let vote = Vote(
            chainID: 7, height: 5, round: 0, step: .prepare, blockHash: .zero, voter: voter,
            signature: outsider.signSchnorr(message, auxRandom: .zero))
        XCTAssertTrue(vote.verifySignature(genesis: Fixture.genesis), "well signed, just not by a member")
        assertDropped(.voteReceived(vote), .notMember)
    }

    func testWrongHeightAndChain() {
        assertDropped(.voteReceived(f.vote(2, 4, 0, .prepare, .zero)), .wrongHeight)
        assertDropped(.voteReceived(f.vote(2, 7, 0, .prepare, .zero)), .wrongHeight)
        var other = f.vote(2, 5, 0, .prepare, .zero)
        other.chainID = 8
        other.signature = f.keys[2].signSchnorr(other.signingHash(genesis: Fixture.genesis), auxRandom: .zero)
        assertDropped(.voteReceived(other), .wrongChain)
    }

    func testDuplicateVoteIsIgnored() {
        assertDropped(.voteReceived(f.vote(1, 5, 0, .prepare, .zero)), .duplicate)
    }

    func testBadProposals() {
        let block = f.block(5, 0, by: 1)
        // Proposer of (5, 0) is member 1; member 2 is not.
        assertDropped(.proposalReceived(f.proposal(2, block, round: 0), block), .wrongProposer)
        // The value does not hash to what is signed.
        let other = f.block(5, 0, by: 1, salt: 3)
        assertDropped(.proposalReceived(f.proposal(1, block, round: 0), other), .valueMismatch)
        // Forged signature.
        var forged = f.proposal(1, block, round: 0)
        forged.signature.second.w3 ^= 0x80
        assertDropped(.proposalReceived(forged, block), .badSignature)
        // A valid round not below the round (only constructible in memory; it has no encoding).
        let p = Proposal(
            chainID: 7, height: 5, round: 0, validRound: 0, blockHash: block.hash,
            proposer: f.keys[1].xOnlyPublicKey.bytes)
        assertDropped(.proposalReceived(SignedProposal(signing: p, with: f.keys[1]), block), .invalidValidRound)
        // Another chain.
        var q = p
        q.validRound = nil
        q.chainID = 99
        assertDropped(.proposalReceived(SignedProposal(signing: q, with: f.keys[1]), block), .wrongChain)
        // A round far below the window after the node moved on.
        var core = startedCore()
        for r in UInt32(0)..<6 { _ = core.handle(.timeout(height: 5, round: r, step: .commit)) }
        let before = fingerprint(core)
        XCTAssertTrue(core.handle(.proposalReceived(f.proposal(1, block, round: 0), block)).isEmpty)
        XCTAssertEqual(core.drops[.staleRound], 1)
        XCTAssertEqual(fingerprint(core), before)
    }

    func testInvalidValueIsProposedButNeverPrepared() {
        var core = startedCore()
        let invalid = SimBlock(height: 5, round: 0, proposer: 1, salt: 0, valid: false)
        let out = core.handle(.proposalReceived(f.proposal(1, invalid, round: 0), invalid))
        XCTAssertEqual(out.votes.map(\.blockHash), [.zero], "an invalid block gets a nil prepare")
    }

    func testInputBeforeStart() {
        var core = f.core(0)
        let out = core.handle(.voteReceived(f.vote(1, 1, 0, .prepare, .zero)))
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(core.drops[.notStarted], 1)
        XCTAssertFalse(core.isStarted)
    }

    func testBadCertificates() {
        let block = f.block(5, 0, by: 1)
        let good = (1...3).map { m in
            CommitCertificate.Signature(
                memberIndex: UInt16(m), signature: f.vote(m, 5, 0, .commit, block.hash).signature)
        }
        // Too little weight.
        let thin = CommitCertificate(height: 5, round: 0, blockHash: block.hash, signatures: Array(good.prefix(2)))
        assertDropped(.decidedElsewhere(block, thin), .badCertificate)
        // One member listed three times: `CommitCertificate.init` keeps duplicates, the core must not count them.
        let same = CommitCertificate(
            height: 5, round: 0, blockHash: block.hash, signatures: [good[0], good[0], good[0]])
        assertDropped(.decidedElsewhere(block, same), .badCertificate)
        // A prepare signature is not a commit signature.
        var prepares = good
        prepares[0].signature = f.vote(1, 5, 0, .prepare, block.hash).signature
        let wrongStep = CommitCertificate(height: 5, round: 0, blockHash: block.hash, signatures: prepares)
        assertDropped(.decidedElsewhere(block, wrongStep), .badCertificate)
        // Right certificate, wrong block.
        let other = f.block(5, 0, by: 1, salt: 1)
        let right = CommitCertificate(height: 5, round: 0, blockHash: block.hash, signatures: good)
        assertDropped(.decidedElsewhere(other, right), .valueMismatch)
        // Another height.
        let later = CommitCertificate(height: 6, round: 0, blockHash: block.hash, signatures: good)
        assertDropped(.decidedElsewhere(block, later), .wrongHeight)
    }

    func testGarbageBytes() {
        var core = startedCore()
        let before = fingerprint(core)
        var rng = SplitMix64(seed: 42)
        var out: [SimCore.Action] = []
        var garbage: [[UInt8]] = [
            [], [0], [9, 1, 2], [2], [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ]
        for _ in 0..<500 {
            garbage.append((0..<Int(rng.below(200))).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
        // Truncations and one-byte extensions of a genuine vote message.
        let genuine = ConsensusMessage<SimBlock>.vote(f.vote(2, 5, 0, .prepare, .zero)).encoded
        for cut in 0..<genuine.count { garbage.append(Array(genuine.prefix(cut))) }
        garbage.append(genuine + [0])
        for bytes in garbage { core.handle(message: bytes, into: &out) }
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(core.drops[.malformed], UInt64(garbage.count))
        XCTAssertEqual(fingerprint(core), before)
        // The genuine message itself is accepted.
        core.handle(message: genuine, into: &out)
        XCTAssertEqual(core.voteCount(round: 0, step: .prepare), 2)
    }

    func testRandomlyCorruptedVotesNeverCount() {
        var core = startedCore()
        let before = fingerprint(core)
        var rng = SplitMix64(seed: 7)
        let genuine = ConsensusMessage<SimBlock>.vote(f.vote(2, 5, 0, .prepare, .zero)).encoded
        var out: [SimCore.Action] = []
        for _ in 0..<300 {
            var bytes = genuine
            let i = Int(rng.below(UInt64(bytes.count)))
            bytes[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            core.handle(message: bytes, into: &out)
        }
        XCTAssertTrue(out.isEmpty)
        XCTAssertEqual(fingerprint(core), before)
        XCTAssertEqual(core.drops.total, 300)
        XCTAssertEqual(core.drops[.duplicate] + core.drops[.alreadyDecided], 0)
    }
}
