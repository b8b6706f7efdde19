import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

final class CheckpointVerifierTests: XCTestCase {
    static let chain = SyntheticChain(epochs: 10)
    var chain: SyntheticChain { Self.chain }

    func testSyncFromGenesisThroughTenEpochs() throws {
        var trusted = chain.genesisState
        XCTAssertEqual(trusted.epoch, 0)
        XCTAssertEqual(trusted.height, 0)
        XCTAssertEqual(trusted.checkpointHash, chain.headers[0].hash)
        for e in 0..<10 {
            let next = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: chain.checkpoint(epoch: e))
            let h = (e + 1) * Int(SyntheticChain.epochLength)
            XCTAssertEqual(next.epoch, UInt64(e + 1))
            XCTAssertEqual(next.committee, chain.committees[e + 1])
            XCTAssertEqual(next.checkpointHash, chain.headers[h].hash)
            XCTAssertEqual(next.height, UInt64(h))
            XCTAssertEqual(next.stateRoot, chain.headers[h].stateRoot)
            XCTAssertEqual(next.sequence, UInt64(e + 1))
            XCTAssertEqual(next.chainID, SyntheticChain.chainID)
            // The committee really changed: half its members are new every epoch.
            XCTAssertNotEqual(next.committee.members[0].key, trusted.committee.members[0].key)
            // The checkpoint just used cannot be replayed against the new state.
            XCTAssertEqual(
                verifyError(next, chain.checkpoint(epoch: e)), .wrongEpoch(expected: UInt64(e + 1), got: UInt64(e)))
            trusted = next
        }
        XCTAssertEqual(trusted, chain.state(afterEpochs: 10))
    }

    func testResultFormMatchesThrowingForm() {
        let trusted = chain.state(afterEpochs: 2)
        XCTAssertEqual(
            CheckpointVerifier.verifyNextResult(trusted: trusted, checkpoint: chain.checkpoint(epoch: 2)),
            .success(chain.state(afterEpochs: 3)))
        XCTAssertEqual(
            CheckpointVerifier.verifyNextResult(trusted: trusted, checkpoint: chain.checkpoint(epoch: 3)),
            .failure(.wrongEpoch(expected: 2, got: 3)))
    }

    // MARK: forged checkpoints: each refused with its own error, the trusted state unchanged

    /// Runs `checkpoint` against the state trusted after `epoch` epochs, asserts `expected`, and shows the state
    /// is still exactly as before and still accepts the genuine checkpoint.
    private func assertRefused(
        _ checkpoint: Checkpoint, at epoch: Int = 4, _ expected: LightClientError, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let trusted = chain.state(afterEpochs: epoch)
        let before = trusted
        XCTAssertEqual(verifyError(trusted, checkpoint), expected, file: file, line: line)
        XCTAssertEqual(trusted, before, file: file, line: line)
        XCTAssertEqual(
            try? CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: chain.checkpoint(epoch: epoch)),
            chain.state(afterEpochs: epoch + 1), file: file, line: line)
    }

    func testSignedByKeysOutsideTheCommitteeIsRefused() {
        let outsiders = (0..<4).map { SyntheticChain.key(900 + UInt64($0)) }
        assertRefused(chain.resignedCheckpoint(epoch: 4, keys: outsiders), .certificate(.badSignature(index: 0)))
        // One outsider among two genuine signers: still refused, at the forged index.
        var mixed = chain.keys[4]
        mixed[2] = outsiders[2]
        assertRefused(chain.resignedCheckpoint(epoch: 4, keys: mixed), .certificate(.badSignature(index: 2)))
    }

    func testSignerIndexBeyondTheCommitteeIsRefused() {
        var checkpoint = chain.checkpoint(epoch: 4)
        var signatures = checkpoint.certificate.signatures
        signatures.append(CommitCertificate.Signature(memberIndex: 4, signature: signatures[0].signature))
        checkpoint.certificate = CommitCertificate(
            height: checkpoint.certificate.height, round: checkpoint.certificate.round,
            blockHash: checkpoint.certificate.blockHash, signatures: signatures)
        assertRefused(checkpoint, .certificate(.unknownMember(index: 4)))
    }

    func testCommitteeChangeWithExactlyTwoThirdsIsRefused() {
        // Members 0 and 1 hold 2 + 2 = 4 of 6: two thirds, not more.
        assertRefused(
            chain.resignedCheckpoint(epoch: 4, signers: [0, 1]), .certificate(.noQuorum(signed: 4, total: 6)))
        // And 0, 2, 3 hold 4 as well.
        assertRefused(
            chain.resignedCheckpoint(epoch: 4, signers: [0, 2, 3]), .certificate(.noQuorum(signed: 4, total: 6)))
        // 1, 2, 3 hold 4 too; 0, 1, 3 hold 5 and pass.
        let trusted = chain.state(afterEpochs: 4)
        XCTAssertNoThrow(
            try CheckpointVerifier.verifyNext(
                trusted: trusted, checkpoint: chain.resignedCheckpoint(epoch: 4, signers: [0, 1, 3])))
    }

    func testWrongChainIsRefused() {
        // Fully consistent for chain 43, signed by the right keys: still not this device's chain.
        let foreign = chain.resignedCheckpoint(epoch: 4, chainID: 43) { $0.chainID = 43 }
        assertRefused(foreign, .wrongChain(expected: 42, got: 43))
    }

    func testSkippedAndOldEpochsAreRefused() {
        assertRefused(chain.checkpoint(epoch: 5), .wrongEpoch(expected: 4, got: 5))
        assertRefused(chain.checkpoint(epoch: 9), .wrongEpoch(expected: 4, got: 9))
        assertRefused(chain.checkpoint(epoch: 3), .wrongEpoch(expected: 4, got: 3))
        XCTAssertEqual(verifyError(chain.genesisState, chain.checkpoint(epoch: 1)), .wrongEpoch(expected: 0, got: 1))
    }

    func testCheckpointAtTheWrongHeightIsRefused() {
        let early = chain.resignedCheckpoint(epoch: 4) {
            $0.height -= 1
            $0.previousHash = chain.headers[Int($0.height) - 1].hash
        }
        assertRefused(early, .wrongHeight(expected: 15, got: 14))
    }

    func testHeaderWithoutNextCommitteeIsRefused() {
        assertRefused(chain.resignedCheckpoint(epoch: 4) { $0.nextCommitteeHash = nil }, .notACheckpoint)
    }

    func testSubstitutedCommitteeIsRefused() {
        var checkpoint = chain.checkpoint(epoch: 4)
        let attackers = (0..<4).map {
            Committee.Member(key: SyntheticChain.key(800 + UInt64($0)).xOnlyPublicKey.bytes, weight: 1)
        }
        checkpoint.nextCommittee = try! Committee(epoch: 5, members: attackers)
        assertRefused(checkpoint, .committeeMismatch)
    }

    func testCommitteeForAnotherEpochIsRefused() {
        // The header names, and the committee signs, a committee tagged for epoch 7: not the next one.
        let committee = try! Committee(epoch: 7, members: chain.committees[5].members)
        let checkpoint = chain.resignedCheckpoint(epoch: 4, nextCommittee: committee) {
            $0.nextCommitteeHash = committee.hash
        }
        assertRefused(checkpoint, .wrongCommitteeEpoch(expected: 5, got: 7))
    }

    func testTamperedHeaderIsRefused() {
        // Changed after signing, certificate untouched: the certificate is for another block.
        var tampered = chain.checkpoint(epoch: 4)
        tampered.header.stateRoot = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        assertRefused(tampered, .certificateMismatch)
        // Changed, and the certificate's block hash rewritten to match: the signatures no longer verify.
        var rehashed = tampered
        rehashed.certificate.blockHash = tampered.header.hash
        assertRefused(rehashed, .certificate(.badSignature(index: 0)))
        // A certificate claiming a later round than its signatures were made for (a block may be decided in a
        // later round than proposed, but then its votes sign that round): the signatures do not verify.
        var otherRound = chain.checkpoint(epoch: 4)
        otherRound.certificate.round += 1
        assertRefused(otherRound, .certificate(.badSignature(index: 0)))
        // One flipped signature bit.
        var flipped = chain.checkpoint(epoch: 4)
        flipped.certificate.signatures[1].signature.second.w3 ^= 1
        assertRefused(flipped, .certificate(.badSignature(index: 1)))
    }

    func testForgedCheckpointsSurviveEncodingOnlyWhenStructurallyValid() throws {
        // What the network delivers is decoded first; a genuine checkpoint survives the round trip.
        let genuine = chain.checkpoint(epoch: 4)
        XCTAssertEqual(try Checkpoint(decoding: genuine.encoded), genuine)
        // A substituted committee does not even decode (the structural rule is also checked by the verifier).
        var substituted = genuine
        substituted.nextCommittee = chain.committees[7]
        XCTAssertThrowsError(try Checkpoint(decoding: substituted.encoded))
    }

    // MARK: anchors

    func testAnchorMustHashToTheTrustedValue() {
        XCTAssertEqual(
            anchorError(header: chain.headers[0], committee: chain.committees[0], trustedHash: chain.headers[1].hash),
            .untrustedAnchor)
        XCTAssertEqual(
            anchorError(header: chain.headers[0], committee: chain.committees[1], trustedHash: chain.headers[0].hash),
            .committeeMismatch)
        XCTAssertEqual(
            anchorError(header: chain.headers[1], committee: chain.committees[0], trustedHash: chain.headers[1].hash),
            .notACheckpoint)
        XCTAssertThrowsError(
            try TrustedState.anchored(
                header: chain.headers[0], committee: chain.committees[0], epochLength: 0,
                trustedHash: chain.headers[0].hash))
    }

    func testAnchorAtALaterCheckpointSyncsOn() throws {
        // A device provisioned with the hash of epoch 5's checkpoint header trusts the committee of epoch 6.
        let h = 6 * Int(SyntheticChain.epochLength)
        var trusted = try TrustedState.anchored(
            header: chain.headers[h], committee: chain.committees[6], epochLength: SyntheticChain.epochLength,
            trustedHash: chain.headers[h].hash, genesis: chain.headers[0].hash)
        XCTAssertEqual(trusted.epoch, 6)
        XCTAssertEqual(trusted.height, UInt64(h))
        for e in 6..<10 {
            trusted = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: chain.checkpoint(epoch: e))
        }
        XCTAssertEqual(trusted.committee, chain.committees[10])
        XCTAssertEqual(trusted.sequence, 4)
    }

    func testTrustedStateEncodingRoundTripsAndChecksInvariants() throws {
        let trusted = chain.state(afterEpochs: 7)
        XCTAssertEqual(try TrustedState(decoding: trusted.encoded), trusted)
        var inconsistent = trusted
        inconsistent.height += 1
        XCTAssertThrowsError(try TrustedState(decoding: inconsistent.encoded))
        var wrongCommittee = trusted
        wrongCommittee.epoch += 1
        wrongCommittee.height += SyntheticChain.epochLength
        XCTAssertThrowsError(try TrustedState(decoding: wrongCommittee.encoded))
        // A state with a pool hash round-trips it; a version-3 state (before the pool) reads with none, and a
        // version-2 one (before the genesis block hash) with a zero genesis its session fills.
        var pooled = trusted
        pooled.poolHash = Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)
        XCTAssertEqual(try TrustedState(decoding: pooled.encoded), pooled)
        XCTAssertEqual(pooled.encoded.count, trusted.encoded.count + 32)
        var unpooled = trusted
        unpooled.poolHash = nil
        var version3 = Array(unpooled.encoded.dropLast(1))  // no optional pool hash
        version3[0] = 3
        XCTAssertEqual(try TrustedState(decoding: version3), unpooled)
        var version2 = Array(version3.dropLast(32))
        version2[0] = 2
        var old = unpooled
        old.genesis = .zero
        XCTAssertEqual(try TrustedState(decoding: version2), old)
        var version5 = trusted.encoded
        version5[0] = 5
        XCTAssertThrowsError(try TrustedState(decoding: version5))
        // Anchored at a later checkpoint, the genesis block hash must be given: it is in no later header.
        let h = 6 * Int(SyntheticChain.epochLength)
        XCTAssertThrowsError(
            try TrustedState.anchored(
                header: chain.headers[h], committee: chain.committees[6], epochLength: SyntheticChain.epochLength,
                trustedHash: chain.headers[h].hash)
        ) { XCTAssertEqual($0 as? LightClientError, .untrustedAnchor) }
    }

    // MARK: helpers

    private func verifyError(_ trusted: TrustedState, _ checkpoint: Checkpoint) -> LightClientError? {
        do {
            _ = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: checkpoint)
            return nil
        } catch {
            return error
        }
    }

    private func anchorError(header: BlockHeader, committee: Committee, trustedHash: Bytes32) -> LightClientError? {
        do {
            _ = try TrustedState.anchored(
                header: header, committee: committee, epochLength: SyntheticChain.epochLength, trustedHash: trustedHash)
            return nil
        } catch {
            return error
        }
    }
}
