import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

/// Checkpoints only (no blocks in between): committees of four equal-weight members, and certificates signed by
/// members 0, 1, 2 (3 of 4, the minimum quorum). `slow`: one member rotates per epoch (committee e is keys
/// e ... e + 3), so the signers of epoch E hold trusted weight 2/4 when E = t + 2 and 1/4 when E = t + 3.
/// `fast`: all four change every epoch, so no far checkpoint overlaps at all.
struct RotatingChain {
    static let chainID = SyntheticChain.chainID
    static let epochLength: UInt64 = 2
    static let start: UInt64 = 1_700_000_000_000
    /// One epoch per hour.
    static let epochMillis: UInt64 = 3_600_000

    let epochs: Int
    var keys: [[PrivateKey]] = []
    var committees: [Committee] = []
    /// `headers[0]` is genesis; `headers[e + 1]` closes epoch e.
    var headers: [BlockHeader] = []
    var certificates: [CommitCertificate] = []

    init(epochs: Int, slow: Bool) {
        self.epochs = epochs
        let base: UInt64 = slow ? 20_000 : 30_000
        for e in 0...epochs {
            let first = UInt64(slow ? e : 4 * e)
            let ks = (0..<4).map { SyntheticChain.key(base + first + UInt64($0)) }
            keys.append(ks)
            committees.append(
                try! Committee(epoch: UInt64(e), members: ks.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 1) }))
        }
        for e in -1..<epochs {
            let height = UInt64(e + 1) * RotatingChain.epochLength
            let header = BlockHeader(
                chainID: RotatingChain.chainID, height: height,
                previousHash: e < 0 ? Domain.genesis.hash([9]) : headers[e].hash,
                timestamp: RotatingChain.start + UInt64(e + 1) * RotatingChain.epochMillis, epoch: UInt64(max(e, 0)),
                round: 0, proposer: keys[max(e, 0)][0].xOnlyPublicKey.bytes, baseFee: 1, unitsUsed: 0,
                transactionsRoot: .zero, stateRoot: Domain.genesis.hash([UInt8(truncatingIfNeeded: e + 7), 1]),
                receiptsRoot: .zero, nextCommitteeHash: committees[e + 1].hash)
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

    func offer(epoch e: Int) -> SkippingCheckpoint {
        SkippingCheckpoint(checkpoint: checkpoint(epoch: e), signingCommittee: committees[e])
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
    /// Two weeks of trust, three weeks of unbonding (milliseconds).
    static let options = try! SkippingOptions(trustingPeriod: 14 * 86_400_000, unbondingPeriod: 21 * 86_400_000)
    var slow: RotatingChain { Self.slow }
    var fast: RotatingChain { Self.fast }
    var options: SkippingOptions { Self.options }

    private func skip(_ chain: RotatingChain, from t: Int, offer e: Int, now: UInt64? = nil) throws -> SkipOutcome {
        try CheckpointVerifier.verifySkipping(
            trusted: chain.sequential(afterEpochs: t), checkpoint: chain.offer(epoch: e),
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
            outcome, .needsBisection(.init(signedTrusted: 1, trustedTotal: 4, trustedSigners: 1, signers: 3)))
        XCTAssertEqual(
            try skip(slow, from: 4, offer: 20),
            .needsBisection(.init(signedTrusted: 0, trustedTotal: 4, trustedSigners: 0, signers: 3)))
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
            skipError(trusted, slow.offer(epoch: 5), now: trusted.timestamp! + period),
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
            skipError(trusted, slow.offer(epoch: 4), now: slow.now(afterEpoch: 4)), .notAhead(trustedEpoch: 4, got: 4))
        XCTAssertEqual(
            skipError(trusted, slow.offer(epoch: 2), now: slow.now(afterEpoch: 4)), .notAhead(trustedEpoch: 4, got: 2))
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
                trusted: trusted, checkpoint: slow.offer(epoch: t + 2), now: slow.now(afterEpoch: t + 2),
                options: options),
            .advanced(slow.sequential(afterEpochs: t + 3), signatureChecks: 2), file: file, line: line)
    }

    /// The checkpoint closing epoch `e` with `change` applied to its header, re-signed by members 0, 1, 2 of
    /// `keys`, offered with `hint` as its signing committee.
    private func forged(
        epoch e: Int, keys: [PrivateKey], hint: Committee, _ change: (inout BlockHeader) -> Void
    ) -> SkippingCheckpoint {
        var header = slow.headers[e + 1]
        change(&header)
        let checkpoint = Checkpoint(
            header: header, nextCommittee: slow.committees[e + 1],
            certificate: SyntheticChain.certify(header, genesis: slow.headers[0].hash, signers: [0, 1, 2], keys: keys))
        return SkippingCheckpoint(checkpoint: checkpoint, signingCommittee: hint)
    }

    func testForkSignedByOutsidersClaimingTrustedKeysIsRefused() {
        // The hint names the real signers (two of them trusted), but outsiders made the signatures.
        let outsiders = (0..<4).map { SyntheticChain.key(90_000 + UInt64($0)) }
        let offer = forged(epoch: 8, keys: outsiders, hint: slow.committees[8]) { $0.stateRoot = .zero }
        assertRefused(offer, .rejected(.certificate(.badSignature(index: 0))))
    }

    func testForkSignedByAnOutsiderCommitteeCountsNothing() {
        let outsiders = (0..<4).map { SyntheticChain.key(90_000 + UInt64($0)) }
        let hint = try! Committee(
            epoch: 8, members: outsiders.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 1_000) })
        let offer = forged(epoch: 8, keys: outsiders, hint: hint) { $0.stateRoot = .zero }
        // Valid signatures, huge claimed weights, but no key the device trusts: no weight, no signature checked.
        XCTAssertEqual(
            try CheckpointVerifier.verifySkipping(
                trusted: slow.sequential(afterEpochs: 6), checkpoint: offer, now: slow.now(afterEpoch: 8),
                options: options),
            .needsBisection(.init(signedTrusted: 0, trustedTotal: 4, trustedSigners: 0, signers: 3)))
    }

    func testForkWithOneTrustedSignerAndOutsidersIsNotEnough() {
        // Trusted member key(20_008) (index 2 of committee 6) turns traitor with outsiders: 1/4 < 1/3.
        var keys = (0..<4).map { SyntheticChain.key(90_000 + UInt64($0)) }
        keys[0] = slow.keys[6][2]
        let hint = try! Committee(epoch: 8, members: keys.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 50) })
        let offer = forged(epoch: 8, keys: keys, hint: hint) { $0.stateRoot = .zero }
        let trusted = slow.sequential(afterEpochs: 6)
        XCTAssertEqual(
            try CheckpointVerifier.verifySkipping(
                trusted: trusted, checkpoint: offer, now: slow.now(afterEpoch: 8), options: options),
            .needsBisection(.init(signedTrusted: 1, trustedTotal: 4, trustedSigners: 1, signers: 3)))
    }

    func testHintListingATrustedKeyTwiceCountsItOnce() {
        var offer = slow.offer(epoch: 9)
        // Committee 9 is keys 9...12; trusted (after 6) is 6...9: only key 9 overlaps. Listing it at every index
        // must not multiply its weight.
        let k9 = offer.signingCommittee.members[0]
        offer.signingCommittee.members = [k9, k9, k9, k9]
        let trusted = slow.sequential(afterEpochs: 6)
        XCTAssertEqual(
            try CheckpointVerifier.verifySkipping(
                trusted: trusted, checkpoint: offer, now: slow.now(afterEpoch: 9), options: options),
            .needsBisection(.init(signedTrusted: 1, trustedTotal: 4, trustedSigners: 1, signers: 3)))
    }

    func testStructuralForgeriesAreRefused() {
        let genuine = slow.offer(epoch: 8)
        var tampered = genuine
        tampered.checkpoint.header.stateRoot = .zero  // not re-signed
        assertRefused(tampered, .rejected(.certificateMismatch))
        var swapped = genuine
        swapped.checkpoint.nextCommittee = slow.committees[2]
        assertRefused(swapped, .rejected(.committeeMismatch))
        var wrongHint = genuine
        wrongHint.signingCommittee = slow.committees[7]
        assertRefused(wrongHint, .signingCommitteeEpoch(expected: 8, got: 7))
        let otherChain = forged(epoch: 8, keys: slow.keys[8], hint: slow.committees[8]) { $0.chainID = 7 }
        assertRefused(otherChain, .rejected(.wrongChain(expected: RotatingChain.chainID, got: 7)))
        let midEpoch = forged(epoch: 8, keys: slow.keys[8], hint: slow.committees[8]) { $0.height -= 1 }
        assertRefused(midEpoch, .rejected(.wrongHeight(expected: 18, got: 17)))
        let now = slow.now(afterEpoch: 8)
        let future = forged(epoch: 8, keys: slow.keys[8], hint: slow.committees[8]) { $0.timestamp = now + 3_600_000 }
        assertRefused(future, .badTimestamp(trusted: slow.headers[6].timestamp, got: now + 3_600_000, now: now))
        let past = forged(epoch: 8, keys: slow.keys[8], hint: slow.committees[8]) { $0.timestamp = 5 }
        assertRefused(past, .badTimestamp(trusted: slow.headers[6].timestamp, got: 5, now: now))
    }

    // MARK: the planner

    private func plan(_ chain: RotatingChain, to target: Int, offers: (UInt64) -> SkippingCheckpoint? = { _ in nil })
        throws(SkippingSyncError) -> SkippingSyncReport
    {
        try SkippingSync.sync(
            from: chain.genesis, toEpoch: UInt64(target), now: chain.now(afterEpoch: min(target, chain.epochs) - 1),
            options: options
        ) { e in offers(e) ?? (Int(e) < chain.epochs ? chain.offer(epoch: Int(e)) : nil) }
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
        // From epoch 20 on, the provider serves a fork signed by outsiders under the real committees' names.
        let bad: (UInt64) -> SkippingCheckpoint? = { e in
            e >= 20 ? self.forged(epoch: Int(e), keys: outsiders, hint: self.slow.committees[Int(e)]) { _ in } : nil
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
