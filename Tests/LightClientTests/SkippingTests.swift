import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

/// Checkpoints only (no blocks in between): committees of four equal-weight members, and certificates signed by
/// members 0, 1, 2 (3 of 4, the minimum quorum). The pool of each epoch attests its checkpoint the same way
/// (members 0, 1, 2). `slow`: one member rotates per epoch (committee and pool of epoch e are keys e ... e + 3),
/// so the attesters of epoch E hold trusted weight 2/4 when E = t + 2 and 1/4 when E = t + 3. `fast`: all four
/// change every epoch, so no far checkpoint overlaps at all. `stablePool` keeps one pool for every epoch while
/// the committees rotate as asked: what skipping by the pool is for.
struct RotatingChain {
    static let chainID = SyntheticChain.chainID
    static let epochLength: UInt64 = 2
    static let start: UInt64 = 1_700_000_000_000
    /// One epoch per hour.
    static let epochMillis: UInt64 = 3_600_000

    let epochs: Int
    var keys: [[PrivateKey]] = []
    var committees: [Committee] = []
    var poolKeys: [[PrivateKey]] = []
    var pools: [Committee] = []
    /// `headers[0]` is genesis; `headers[e + 1]` closes epoch e.
    var headers: [BlockHeader] = []
    var certificates: [CommitCertificate] = []

    init(epochs: Int, slow: Bool, stablePool: Bool = false) {
        self.epochs = epochs
        let base: UInt64 = slow ? 20_000 : 30_000
        for e in 0...epochs {
            let first = UInt64(slow ? e : 4 * e)
            let ks = (0..<4).map { SyntheticChain.key(base + first + UInt64($0)) }
            keys.append(ks)
            committees.append(
                try! Committee(epoch: UInt64(e), members: ks.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 1) }))
            let ps = stablePool ? (0..<4).map { SyntheticChain.key(60_000 + UInt64($0)) } : ks
            poolKeys.append(ps)
            pools.append(
                try! Committee(epoch: UInt64(e), members: ps.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 1) }))
        }
        for e in -1..<epochs {
            let height = UInt64(e + 1) * RotatingChain.epochLength
            let header = BlockHeader(
                chainID: RotatingChain.chainID, height: height,
                previousHash: e < 0 ? Domain.genesis.hash([9]) : headers[e].hash,
                timestamp: RotatingChain.start + UInt64(e + 1) * RotatingChain.epochMillis, epoch: UInt64(max(e, 0)),
                round: 0, proposer: keys[max(e, 0)][0].xOnlyPublicKey.bytes, baseFee: 1, unitsUsed: 0,
                transactionsRoot: .zero, stateRoot: Domain.genesis.hash([UInt8(truncatingIfNeeded: e + 7), 1]),
                receiptsRoot: .zero, nextCommitteeHash: committees[e + 1].hash, nextPoolHash: pools[e + 1].hash)
            headers.append(header)
            certificates.append(
                e < 0
                    ? CommitCertificate(height: 0, round: 0, blockHash: header.hash, signatures: [])
                    : SyntheticChain.certify(header, genesis: headers[0].hash, signers: [0, 1, 2], keys: keys[e]))
        }
    }

    func checkpoint(epoch e: Int) -> Checkpoint {
        Checkpoint(header: headers[e + 1], nextCommittee: committees[e + 1], certificate: certificates[e + 1])
    }

    /// `v1/skip?from=t&to=e`: checkpoint e with the attestations of its attesters (pool members 0, 1, 2 of epoch
    /// e) that are in the pool of epoch t, indexed into it.
    func offer(epoch e: Int, trusting t: Int) -> SkippingCheckpoint {
        let checkpoint = checkpoint(epoch: e)
        return SkippingCheckpoint(
            checkpoint: checkpoint, trustedPool: pools[t],
            attestations: attestations(of: checkpoint.header, by: Array(poolKeys[e][0..<3]), trusting: t))
    }

    /// Attestations of `header` by those of `signers` who are in the pool of epoch `t`, at their indices there.
    func attestations(of header: BlockHeader, by signers: [PrivateKey], trusting t: Int) -> CommitCertificate {
        let entries = pools[t].members.indices.compactMap { i -> (Int, PrivateKey)? in
            signers.first { $0.xOnlyPublicKey.bytes == pools[t].members[i].key }.map { (i, $0) }
        }
        return attest(header, entries, trusting: t)
    }

    /// Attestations at pool indices `entries` of the pool of epoch `t`, each made by the key given (which may
    /// not be the member's: a forgery).
    func attest(_ header: BlockHeader, _ entries: [(Int, PrivateKey)], trusting t: Int) -> CommitCertificate {
        let signatures = entries.map { i, key in
            let message = Vote.signingHash(
                chainID: RotatingChain.chainID, genesis: headers[0].hash, height: header.height, round: 0,
                step: .checkpoint, blockHash: header.hash, voter: pools[t].members[i].key)
            return CommitCertificate.Signature(
                memberIndex: UInt16(i), signature: key.signSchnorr(message, auxRandom: .zero))
        }
        return CommitCertificate(height: header.height, round: 0, blockHash: header.hash, signatures: signatures)
    }

    var genesis: TrustedState {
        try! TrustedState.anchored(
            header: headers[0], committee: committees[0], epochLength: RotatingChain.epochLength,
            trustedHash: headers[0].hash)
    }

    /// Sequential sync from genesis through `n` checkpoints, the reference every skipping result must equal.
    func sequential(afterEpochs n: Int) -> TrustedState {
        var s = genesis
        for e in 0..<n { s = try! CheckpointVerifier.verifyNext(trusted: s, checkpoint: checkpoint(epoch: e)) }
        return s
    }

    /// The time of the checkpoint closing epoch `e`, plus a minute: a device syncing right after it.
    func now(afterEpoch e: Int) -> UInt64 { headers[e + 1].timestamp + 60_000 }
}

final class SkippingTests: XCTestCase {
    static let slow = RotatingChain(epochs: 40, slow: true)
    static let fast = RotatingChain(epochs: 12, slow: false)
    static let fastCommitteesStablePool = RotatingChain(epochs: 12, slow: false, stablePool: true)
    /// Two weeks of trust, three weeks of unbonding (milliseconds).
    static let options = try! SkippingOptions(trustingPeriod: 14 * 86_400_000, unbondingPeriod: 21 * 86_400_000)
    var slow: RotatingChain { Self.slow }
    var fast: RotatingChain { Self.fast }
    var options: SkippingOptions { Self.options }

    private func skip(_ chain: RotatingChain, from t: Int, offer e: Int, now: UInt64? = nil) throws -> SkipOutcome {
        try CheckpointVerifier.verifySkipping(
            trusted: chain.sequential(afterEpochs: t), checkpoint: chain.offer(epoch: e, trusting: t),
            now: now ?? chain.now(afterEpoch: e), options: options)
    }

    private func skipError(_ trusted: TrustedState, _ offer: SkippingCheckpoint, now: UInt64) -> SkippingError? {
        do {
            _ = try CheckpointVerifier.verifySkipping(trusted: trusted, checkpoint: offer, now: now, options: options)
            return nil
        } catch { return error }
    }

    // MARK: one skipping step

    func testSlowChainAcceptsFarCheckpointWithHalfTheTrustedWeight() throws {
        for t in [0, 5, 17] {
            let outcome = try skip(slow, from: t, offer: t + 2)
            // Two of the four trusted members signed: one third is confirmed after two checks, and the state is
            // exactly the one sequential sync reaches three epochs later.
            XCTAssertEqual(outcome, .advanced(slow.sequential(afterEpochs: t + 3), signatureChecks: 2))
        }
    }

    func testBelowOneThirdNeedsBisectionWithoutSignatureChecks() throws {
        let outcome = try skip(slow, from: 4, offer: 7)
        XCTAssertEqual(
            outcome, .needsBisection(.init(signedTrusted: 1, trustedTotal: 4, trustedSigners: 1, signers: 1)))
        XCTAssertEqual(
            try skip(slow, from: 4, offer: 20),
            .needsBisection(.init(signedTrusted: 0, trustedTotal: 4, trustedSigners: 0, signers: 0)))
    }

    func testAStablePoolSkipsWhereRotatingCommitteesCannot() throws {
        // Every committee is new each epoch, but the pool stays: its attestations carry 3/4 of the trusted pool.
        let chain = Self.fastCommitteesStablePool
        XCTAssertEqual(
            try skip(chain, from: 0, offer: 11), .advanced(chain.sequential(afterEpochs: 12), signatureChecks: 2))
        let report = try plan(chain, to: 12)
        XCTAssertEqual(report.trusted, chain.sequential(afterEpochs: 12))
        XCTAssertEqual(report.skips, 1)
        XCTAssertEqual(report.fetches, 1)
    }

    func testAStateWithoutAPoolBisectsToASequentialStepThenSkips() throws {
        var old = slow.genesis
        old.poolHash = nil  // saved before version 4
        XCTAssertEqual(
            try CheckpointVerifier.verifySkipping(
                trusted: old, checkpoint: slow.offer(epoch: 1, trusting: 0), now: slow.now(afterEpoch: 1),
                options: options),
            .needsBisection(.init(signedTrusted: 0, trustedTotal: 0, trustedSigners: 0, signers: 0)))
        // Bisected down to the adjacent checkpoint, whose sequential step names the pool; skips from there on.
        let report = try SkippingSync.sync(
            from: old, toEpoch: 8, now: slow.now(afterEpoch: 7), options: options
        ) { e, trusted in slow.offer(epoch: Int(e), trusting: Int(trusted.epoch)) }
        XCTAssertEqual(report.trusted, slow.sequential(afterEpochs: 8))
        XCTAssertEqual(report.sequentialSteps, 2)
        XCTAssertEqual(report.skips, 3)
    }

    func testFastChainNeverSkips() throws {
        for gap in 1...5 {
            guard case .needsBisection(let overlap) = try skip(fast, from: 2, offer: 2 + gap) else {
                return XCTFail("all members changed, yet gap \(gap) was accepted")
            }
            XCTAssertEqual(overlap.signedTrusted, 0)
        }
    }

    func testOutsideTheTrustingPeriodIsRefused() throws {
        let trusted = slow.sequential(afterEpochs: 3)
        let period = options.trustingPeriod
        XCTAssertEqual(
            skipError(trusted, slow.offer(epoch: 5, trusting: 3), now: trusted.timestamp! + period),
            .outsideTrustingPeriod(age: period, trustingPeriod: period))
        XCTAssertEqual(
            try skip(slow, from: 3, offer: 5, now: trusted.timestamp! + period - 1),
            .advanced(slow.sequential(afterEpochs: 6), signatureChecks: 2))
    }

    func testOptionsRequireTrustingShorterThanUnbonding() {
        XCTAssertThrowsError(try SkippingOptions(trustingPeriod: 10, unbondingPeriod: 10))
        XCTAssertThrowsError(try SkippingOptions(trustingPeriod: 0, unbondingPeriod: 10))
        XCTAssertNoThrow(try SkippingOptions(trustingPeriod: 9, unbondingPeriod: 10))
    }

    func testAdjacentAndPastCheckpointsAreNotSkips() {
        let trusted = slow.sequential(afterEpochs: 4)
        XCTAssertEqual(
            skipError(trusted, slow.offer(epoch: 4, trusting: 4), now: slow.now(afterEpoch: 4)),
            .notAhead(trustedEpoch: 4, got: 4))
        XCTAssertEqual(
            skipError(trusted, slow.offer(epoch: 2, trusting: 4), now: slow.now(afterEpoch: 4)),
            .notAhead(trustedEpoch: 4, got: 2))
    }

    // MARK: forged far checkpoints: refused, trusted state unchanged

    /// Asserts `offer` is refused with `expected` from the state after `t` epochs, and that the state is unchanged
    /// and still accepts the genuine checkpoint two epochs ahead.
    private func assertRefused(
        _ offer: SkippingCheckpoint, from t: Int = 6, _ expected: SkippingError, now: UInt64? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let trusted = slow.sequential(afterEpochs: t)
        let before = trusted
        XCTAssertEqual(
            skipError(trusted, offer, now: now ?? slow.now(afterEpoch: t + 2)), expected, file: file, line: line)
        XCTAssertEqual(trusted, before, file: file, line: line)
        XCTAssertEqual(
            try? CheckpointVerifier.verifySkipping(
                trusted: trusted, checkpoint: slow.offer(epoch: t + 2, trusting: t), now: slow.now(afterEpoch: t + 2),
                options: options),
            .advanced(slow.sequential(afterEpochs: t + 3), signatureChecks: 2), file: file, line: line)
    }

    /// The checkpoint closing epoch `e` with `change` applied to its header, re-signed by members 0, 1, 2 of
    /// `keys`, and attested for a device trusting epoch `t` at the trusted pool's indices `indices`, each
    /// attestation made by `attesters[k]`.
    private func forged(
        epoch e: Int, keys: [PrivateKey], trusting t: Int = 6, attesters: [PrivateKey], indices: [Int],
        _ change: (inout BlockHeader) -> Void
    ) -> SkippingCheckpoint {
        var header = slow.headers[e + 1]
        change(&header)
        let checkpoint = Checkpoint(
            header: header, nextCommittee: slow.committees[e + 1],
            certificate: SyntheticChain.certify(header, genesis: slow.headers[0].hash, signers: [0, 1, 2], keys: keys))
        return SkippingCheckpoint(
            checkpoint: checkpoint, trustedPool: slow.pools[t],
            attestations: slow.attest(header, Array(zip(indices, attesters)), trusting: t))
    }

    /// ``forged(epoch:keys:trusting:attesters:indices:_:)`` attested by the genuine members 2 and 3 of pool 6
    /// (keys 20_008 and 20_009): one third and more, so only the header's change can make it fail.
    private func forgedByTrusted(epoch e: Int, _ change: (inout BlockHeader) -> Void) -> SkippingCheckpoint {
        forged(
            epoch: e, keys: slow.keys[e], attesters: [slow.poolKeys[6][2], slow.poolKeys[6][3]], indices: [2, 3], change
        )
    }

    func testForkAttestedByOutsidersUnderTrustedIndicesIsRefused() {
        // The attestations sit at trusted members' indices, but outsiders made the signatures.
        let outsiders = (0..<4).map { SyntheticChain.key(90_000 + UInt64($0)) }
        let offer = forged(epoch: 8, keys: outsiders, attesters: outsiders, indices: [1, 2, 3]) { $0.stateRoot = .zero }
        assertRefused(offer, .rejected(.certificate(.badSignature(index: 1))))
    }

    func testAPoolOtherThanTheTrustedOneIsRefused() {
        // Outsiders offer their own roster, in which their attestations would carry all the weight.
        let outsiders = (0..<4).map { SyntheticChain.key(90_000 + UInt64($0)) }
        var offer = forged(epoch: 8, keys: outsiders, attesters: [], indices: []) { $0.stateRoot = .zero }
        offer.trustedPool = try! Committee(
            epoch: 6, members: outsiders.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 1_000) })
        offer.attestations = CommitCertificate(
            height: offer.checkpoint.header.height, round: 0, blockHash: offer.checkpoint.header.hash,
            signatures: outsiders.indices.map { i in
                .init(
                    memberIndex: UInt16(i),
                    signature: outsiders[i].signSchnorr(
                        Vote.signingHash(
                            chainID: RotatingChain.chainID, genesis: slow.headers[0].hash,
                            height: offer.checkpoint.header.height, round: 0, step: .checkpoint,
                            blockHash: offer.checkpoint.header.hash, voter: outsiders[i].xOnlyPublicKey.bytes),
                        auxRandom: .zero))
            })
        assertRefused(offer, .untrustedPool)
    }

    func testForkWithOneTrustedAttesterIsNotEnough() {
        // Trusted member key(20_008) (index 2 of pool 6) turns traitor: 1/4 < 1/3, and nothing is verified.
        let offer = forged(epoch: 8, keys: slow.keys[8], attesters: [slow.poolKeys[6][2]], indices: [2]) {
            $0.stateRoot = .zero
        }
        XCTAssertEqual(
            try CheckpointVerifier.verifySkipping(
                trusted: slow.sequential(afterEpochs: 6), checkpoint: offer, now: slow.now(afterEpoch: 8),
                options: options),
            .needsBisection(.init(signedTrusted: 1, trustedTotal: 4, trustedSigners: 1, signers: 1)))
    }

    func testAnAttestationRepeatedCountsOnce() {
        // Member 3 of pool 6 (key 20_009) attested checkpoint 9 genuinely; listed four times it is still 1/4.
        var offer = slow.offer(epoch: 9, trusting: 6)
        XCTAssertEqual(offer.attestations.signatures.map(\.memberIndex), [3])
        let only = offer.attestations.signatures[0]
        offer.attestations.signatures = [only, only, only, only]
        XCTAssertEqual(
            try CheckpointVerifier.verifySkipping(
                trusted: slow.sequential(afterEpochs: 6), checkpoint: offer, now: slow.now(afterEpoch: 9),
                options: options),
            .needsBisection(.init(signedTrusted: 1, trustedTotal: 4, trustedSigners: 1, signers: 4)))
    }

    func testStructuralForgeriesAreRefused() {
        let genuine = slow.offer(epoch: 8, trusting: 6)
        var tampered = genuine
        tampered.checkpoint.header.stateRoot = .zero  // not re-attested
        assertRefused(tampered, .rejected(.certificateMismatch))
        var swapped = genuine
        swapped.checkpoint.nextCommittee = slow.committees[2]
        assertRefused(swapped, .rejected(.committeeMismatch))
        var wrongPool = genuine
        wrongPool.trustedPool = slow.pools[7]
        assertRefused(wrongPool, .untrustedPool)
        var otherRound = genuine
        otherRound.attestations.round = 1
        assertRefused(otherRound, .rejected(.certificateMismatch))
        // Commit signatures are not attestations: the same keys signing the commit step count nothing.
        var commitNotAttest = genuine
        commitNotAttest.attestations = SyntheticChain.certify(
            genuine.checkpoint.header, genesis: slow.headers[0].hash, signers: [2, 3], keys: slow.poolKeys[6])
        commitNotAttest.attestations.round = 0
        assertRefused(commitNotAttest, .rejected(.certificate(.badSignature(index: 2))))
        let otherChain = forgedByTrusted(epoch: 8) { $0.chainID = 7 }
        assertRefused(otherChain, .rejected(.wrongChain(expected: RotatingChain.chainID, got: 7)))
        let midEpoch = forgedByTrusted(epoch: 8) { $0.height -= 1 }
        assertRefused(midEpoch, .rejected(.wrongHeight(expected: 18, got: 17)))
        let now = slow.now(afterEpoch: 8)
        let future = forgedByTrusted(epoch: 8) { $0.timestamp = now + 3_600_000 }
        assertRefused(future, .badTimestamp(trusted: slow.headers[6].timestamp, got: now + 3_600_000, now: now))
        let past = forgedByTrusted(epoch: 8) { $0.timestamp = 5 }
        assertRefused(past, .badTimestamp(trusted: slow.headers[6].timestamp, got: 5, now: now))
    }

    // MARK: the planner

    private func plan(
        _ chain: RotatingChain, to target: Int, offers: (UInt64, TrustedState) -> SkippingCheckpoint? = { _, _ in nil }
    ) throws(SkippingSyncError) -> SkippingSyncReport {
        try SkippingSync.sync(
            from: chain.genesis, toEpoch: UInt64(target), now: chain.now(afterEpoch: min(target, chain.epochs) - 1),
            options: options
        ) { e, trusted in
            offers(e, trusted)
                ?? (Int(e) < chain.epochs ? chain.offer(epoch: Int(e), trusting: Int(trusted.epoch)) : nil)
        }
    }

    func testBisectionReachesTheSequentialStateOnTheSlowChain() throws {
        let report = try plan(slow, to: 40)
        XCTAssertEqual(report.trusted, slow.sequential(afterEpochs: 40))
        // Each jump covers three epochs for two signature checks, against three per sequential step.
        XCTAssertGreaterThan(report.skips, 10)
        XCTAssertLessThanOrEqual(report.signatureChecks, 2 * report.skips + 3 * report.sequentialSteps)
        XCTAssertLessThan(report.signatureChecks, 40 * 3 / 2)
    }

    func testBisectionDegradesToSequentialOnTheFastChain() throws {
        let report = try plan(fast, to: 12)
        XCTAssertEqual(report.trusted, fast.sequential(afterEpochs: 12))
        XCTAssertEqual(report.skips, 0)
        XCTAssertEqual(report.sequentialSteps, 12)
        XCTAssertEqual(report.signatureChecks, 12 * 3)
    }

    func testPlannerStopsAtAForgedCheckpointWithTheLastVerifiedState() {
        let outsiders = (0..<4).map { SyntheticChain.key(90_000 + UInt64($0)) }
        // From epoch 20 on, the provider serves a fork attested by outsiders under the trusted members' indices.
        let bad: (UInt64, TrustedState) -> SkippingCheckpoint? = { e, trusted in
            e >= 20
                ? self.forged(
                    epoch: Int(e), keys: outsiders, trusting: Int(trusted.epoch), attesters: outsiders,
                    indices: [0, 1, 2]
                ) { _ in } : nil
        }
        do {
            _ = try plan(slow, to: 30, offers: bad)
            XCTFail("a forged checkpoint was accepted")
        } catch .refused(let error, let trusted) {
            XCTAssertEqual(error, .rejected(.certificate(.badSignature(index: 0))))
            // Whatever was reached before is a genuine, sequentially reachable state, short of the fork.
            XCTAssertLessThanOrEqual(trusted.epoch, 20)
            XCTAssertEqual(trusted, slow.sequential(afterEpochs: Int(trusted.epoch)))
        } catch {
            XCTFail("unexpected \(error)")
        }
    }

    func testPlannerReportsAMissingCheckpoint() {
        XCTAssertThrowsError(try plan(slow, to: 45)) { error in
            XCTAssertEqual(error as? SkippingSyncError, .unavailable(epoch: 44))
        }
    }
}
