import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import XCTest

@testable import Ledger

final class CommitteeSelectionTests: XCTestCase {
    // MARK: Fixtures

    static func delegate(_ n: UInt64, weight: UInt64, key: Bytes32? = nil) -> DelegatePool.Delegate {
        DelegatePool.Delegate(
            candidate: Address(raw: Bytes20(hi: 0, mid: 0, lo: UInt32(n))),
            operatorKey: key ?? Bytes32(w0: 0xA0, w1: 0, w2: 0, w3: n), weight: weight)
    }

    static func pool(epoch: UInt64 = 3, weights: [UInt64]) -> DelegatePool {
        DelegatePool(
            epoch: epoch, delegates: weights.enumerated().map { delegate(UInt64($0.offset), weight: $0.element) })
    }

    static func seed(_ n: UInt64) -> Bytes32 { Bytes32(w0: 0x5EED, w1: 0, w2: 0, w3: n) }

    // MARK: Selection

    func testSameInputsGiveSameCommitteeAndSeedsDiffer() throws {
        var rng = SplitMix(seed: 41)
        let weights = (0..<12).map { _ in 1 + rng.below(UInt64(1_000_000)) }
        let pool = Self.pool(weights: weights)
        var seen: Set<[Bytes32]> = []
        for n in 0..<100 as Range<UInt64> {
            let a = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 6)
            let b = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 6)
            XCTAssertEqual(a, b)
            XCTAssertEqual(a.epoch, 3)
            seen.insert(a.members.map(\.key))
        }
        // 12 choose 6 ordered is ~665,280 outcomes; 100 seeds collide rarely.
        XCTAssertGreaterThanOrEqual(seen.count, 97)
    }

    func testEpochIsBoundIntoTheDraw() throws {
        let weights: [UInt64] = Array(repeating: 10, count: 16)
        var differ = 0
        for n in 0..<20 as Range<UInt64> {
            let a = try CommitteeSelection.select(
                pool: Self.pool(epoch: 3, weights: weights), seed: Self.seed(n),
                epoch: 3, size: 8)
            let b = try CommitteeSelection.select(
                pool: Self.pool(epoch: 4, weights: weights), seed: Self.seed(n),
                epoch: 4, size: 8)
            if a.members != b.members { differ += 1 }
        }
        XCTAssertGreaterThanOrEqual(differ, 19)
    }

    func testNoDuplicatesAndSizeClampedToPool() throws {
        var rng = SplitMix(seed: 7)
        for n in 0..<300 as Range<UInt64> {
            let count = 1 + rng.below(40)
            let weights = (0..<count).map { _ in rng.below(4) == 0 ? 0 : 1 + rng.below(UInt64(1) << 50) }
            let eligible = weights.filter { $0 > 0 }.count
            let size = 1 + rng.below(Caps.committeeMembers)
            let pool = Self.pool(weights: weights)
            guard eligible > 0 else {
                XCTAssertThrowsError(
                    try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: size))
                continue
            }
            let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: size)
            XCTAssertEqual(committee.members.count, min(size, eligible))
            XCTAssertEqual(Set(committee.members.map(\.key)).count, committee.members.count)
            for member in committee.members {
                let d = pool.delegates.first { $0.operatorKey == member.key }
                XCTAssertEqual(d?.weight, member.weight)
                XCTAssertGreaterThan(member.weight, 0)
            }
            XCTAssertTrue(
                CommitteeSelection.verify(
                    committee: committee, pool: pool, seed: Self.seed(n), epoch: 3,
                    size: size))
        }
    }

    func testSizeEqualToPoolReturnsEveryone() throws {
        let pool = Self.pool(weights: [5, 1, 9, 3, 7, 2, 8])
        for n in 0..<20 as Range<UInt64> {
            for size in [7, 8, Caps.committeeMembers] {
                let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: size)
                XCTAssertEqual(Set(committee.members.map(\.key)), Set(pool.delegates.map(\.operatorKey)))
                XCTAssertEqual(committee.totalWeight, 35)
            }
        }
    }

    /// Size 1 over weights [1, 2, 3, 4]: each delegate is drawn with probability weight / 10. Fixed seed range,
    /// so the test is deterministic; chi-square with 3 degrees of freedom below 16.27 (p = 0.001) and every
    /// frequency within 1.5 points of its expectation.
    func testSingleDrawFollowsWeights() throws {
        let pool = Self.pool(weights: [1, 2, 3, 4])
        let trials = 20_000
        var counts = [Int](repeating: 0, count: 4)
        for n in 0..<UInt64(trials) {
            let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 1)
            let index = try XCTUnwrap(pool.delegates.firstIndex { $0.operatorKey == committee.members[0].key })
            counts[index] += 1
        }
        var chi2 = 0.0
        for i in 0..<4 {
            let expected = Double(trials) * Double(i + 1) / 10
            chi2 += (Double(counts[i]) - expected) * (Double(counts[i]) - expected) / expected
            XCTAssertEqual(Double(counts[i]) / Double(trials), Double(i + 1) / 10, accuracy: 0.015, "delegate \(i)")
        }
        XCTAssertLessThan(chi2, 16.27, "counts \(counts)")
    }

    /// Without replacement: the second member is drawn from what is left, P(a then b) = w_a / W · w_b / (W − w_a).
    func testSecondDrawIsWithoutReplacement() throws {
        let weights: [UInt64] = [1, 2, 3, 4]
        let pool = Self.pool(weights: weights)
        let trials = 20_000
        var counts = [[Int]](repeating: [Int](repeating: 0, count: 4), count: 4)
        for n in 0..<UInt64(trials) {
            let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 2)
            let keys = pool.delegates.map(\.operatorKey)
            let a = try XCTUnwrap(keys.firstIndex(of: committee.members[0].key))
            let b = try XCTUnwrap(keys.firstIndex(of: committee.members[1].key))
            XCTAssertNotEqual(a, b)
            counts[a][b] += 1
        }
        var chi2 = 0.0
        for a in 0..<4 {
            for b in 0..<4 where a != b {
                let p = Double(weights[a]) / 10 * Double(weights[b]) / Double(10 - weights[a])
                let expected = Double(trials) * p
                chi2 += (Double(counts[a][b]) - expected) * (Double(counts[a][b]) - expected) / expected
            }
        }
        // 11 degrees of freedom: 31.26 is the p = 0.001 critical value.
        XCTAssertLessThan(chi2, 31.26, "counts \(counts)")
    }

    func testZeroWeightsAreNeverDrawn() throws {
        let pool = Self.pool(weights: [0, 4, 0, 1, 0])
        for n in 0..<50 as Range<UInt64> {
            let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 5)
            XCTAssertEqual(committee.members.count, 2)
            XCTAssertEqual(
                Set(committee.members.map(\.key)), [pool.delegates[1].operatorKey, pool.delegates[3].operatorKey])
        }
    }

    func testDuplicateOperatorKeyKeepsTheFirstDrawn() throws {
        let shared = Bytes32(w0: 0xDD, w1: 0, w2: 0, w3: 0)
        let pool = DelegatePool(
            epoch: 3,
            delegates: [
                Self.delegate(0, weight: 5, key: shared), Self.delegate(1, weight: 3),
                Self.delegate(2, weight: 7, key: shared), Self.delegate(3, weight: 2),
            ])
        var sawFirst = false
        var sawSecond = false
        for n in 0..<200 as Range<UInt64> {
            let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 4)
            XCTAssertEqual(committee.members.count, 3, "one member per distinct key")
            let member = try XCTUnwrap(committee.members.first { $0.key == shared })
            XCTAssertTrue(member.weight == 5 || member.weight == 7, "weight of the drawn candidate, not merged")
            if member.weight == 5 { sawFirst = true } else { sawSecond = true }
        }
        XCTAssertTrue(sawFirst && sawSecond, "either candidate of the shared key can be the one drawn")
    }

    func testRefusals() {
        let seed = Self.seed(1)
        XCTAssertThrowsError(
            try CommitteeSelection.select(pool: DelegatePool(epoch: 3, delegates: []), seed: seed, epoch: 3, size: 4)
        ) { XCTAssertEqual($0 as? CommitteeSelection.SelectionError, .noEligibleDelegate) }
        XCTAssertThrowsError(
            try CommitteeSelection.select(pool: Self.pool(weights: [0, 0]), seed: seed, epoch: 3, size: 4)
        ) { XCTAssertEqual($0 as? CommitteeSelection.SelectionError, .noEligibleDelegate) }
        XCTAssertThrowsError(
            try CommitteeSelection.select(pool: Self.pool(weights: [UInt64.max, 1]), seed: seed, epoch: 3, size: 1)
        ) { XCTAssertEqual($0 as? CommitteeSelection.SelectionError, .weightOverflow) }
        for size in [0, -1, Caps.committeeMembers + 1] {
            XCTAssertThrowsError(
                try CommitteeSelection.select(pool: Self.pool(weights: [1]), seed: seed, epoch: 3, size: size)
            ) { XCTAssertEqual($0 as? CommitteeSelection.SelectionError, .invalidSize) }
        }
        XCTAssertThrowsError(
            try CommitteeSelection.select(pool: Self.pool(epoch: 2, weights: [1]), seed: seed, epoch: 3, size: 1)
        ) { XCTAssertEqual($0 as? CommitteeSelection.SelectionError, .epochMismatch) }
    }

    func testHugeWeightsStillSelectExactly() throws {
        // Total UInt64.max, the largest bound (a word is rejected with probability 2^-64), and a total just above
        // 2^63, where about half of all words are rejected: both draw exactly, without overflow.
        for weights: [UInt64] in [[UInt64.max - 1, 1], [1 << 63, 1], [(1 << 62) + 3, (1 << 62) + 5, 7]] {
            let pool = Self.pool(weights: weights)
            for n in 0..<50 as Range<UInt64> {
                let committee = try CommitteeSelection.select(pool: pool, seed: Self.seed(n), epoch: 3, size: 2)
                XCTAssertEqual(committee.members.count, 2)
            }
        }
    }

    func testUniformIsBelowBoundAndRejectsTheSurplus() {
        for bound: UInt64 in [1, 2, 3, 10, (1 << 63) + 1, UInt64.max] {
            for n in 0..<200 as Range<UInt64> {
                let r = CommitteeSelection.uniform(below: bound, seed: Self.seed(n), epoch: 1, draw: 0)
                XCTAssertLessThan(r, bound)
            }
        }
        // Bound 2^63 + 1: 2^64 mod bound = 2^63 − 1, so about half of all words are rejected and later words or
        // attempts are used; the results still spread over both halves of the range.
        var high = 0
        for n in 0..<400 as Range<UInt64> {
            if CommitteeSelection.uniform(below: (1 << 63) + 1, seed: Self.seed(n), epoch: 1, draw: 0) >= 1 << 62 {
                high += 1
            }
        }
        XCTAssertGreaterThan(high, 200)
        XCTAssertLessThan(high, 400)
    }

    func testVerifyRejectsAnyDifference() throws {
        let pool = Self.pool(weights: [5, 1, 9, 3, 7, 2, 8, 4])
        let seed = Self.seed(9)
        let committee = try CommitteeSelection.select(pool: pool, seed: seed, epoch: 3, size: 5)
        XCTAssertTrue(CommitteeSelection.verify(committee: committee, pool: pool, seed: seed, epoch: 3, size: 5))
        XCTAssertFalse(
            CommitteeSelection.verify(
                committee: committee, pool: pool, seed: Self.seed(10), epoch: 3,
                size: 5))
        XCTAssertFalse(CommitteeSelection.verify(committee: committee, pool: pool, seed: seed, epoch: 3, size: 4))
        XCTAssertFalse(CommitteeSelection.verify(committee: committee, pool: pool, seed: seed, epoch: 4, size: 5))
        var reordered = committee.members
        reordered.swapAt(0, 1)
        XCTAssertFalse(
            CommitteeSelection.verify(
                committee: try Committee(epoch: 3, members: reordered), pool: pool,
                seed: seed, epoch: 3, size: 5))
        var reweighted = committee.members
        reweighted[2].weight += 1
        XCTAssertFalse(
            CommitteeSelection.verify(
                committee: try Committee(epoch: 3, members: reweighted), pool: pool,
                seed: seed, epoch: 3, size: 5))
    }

    // MARK: Seed chain

    func testSeedChainDependsOnEveryOutput() {
        var rng = SplitMix(seed: 3)
        let seed = rng.bytes32()
        let outputs = (0..<8).map { _ in rng.bytes32() }
        let next = EpochSeed.next(seed: seed, epoch: 5, outputs: outputs)
        XCTAssertEqual(next, EpochSeed.next(seed: seed, epoch: 5, outputs: outputs))
        for i in outputs.indices {
            var changed = outputs
            changed[i].w3 ^= 1
            XCTAssertNotEqual(EpochSeed.next(seed: seed, epoch: 5, outputs: changed), next, "output \(i)")
        }
        XCTAssertNotEqual(EpochSeed.next(seed: seed, epoch: 5, outputs: Array(outputs.reversed())), next)
        XCTAssertNotEqual(EpochSeed.next(seed: seed, epoch: 5, outputs: Array(outputs.dropLast())), next)
        XCTAssertNotEqual(EpochSeed.next(seed: seed, epoch: 6, outputs: outputs), next)
        var otherSeed = seed
        otherSeed.w0 ^= 1
        XCTAssertNotEqual(EpochSeed.next(seed: otherSeed, epoch: 5, outputs: outputs), next)

        var accumulator = EpochSeed.Accumulator(seed: seed, epoch: 5)
        for output in outputs { accumulator.absorb(output) }
        XCTAssertEqual(accumulator.count, 8)
        XCTAssertEqual(accumulator.finalize(), next)
        XCTAssertEqual(accumulator.finalize(), next, "finalize leaves the accumulator usable")
    }

    func testEmptyEpochStillAdvances() {
        let genesis = EpochSeed.genesis(genesisHash: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4))
        XCTAssertNotEqual(genesis, Bytes32(w0: 1, w1: 2, w2: 3, w3: 4))
        var seeds: Set<Bytes32> = [genesis]
        var seed = genesis
        for epoch in 0..<10 as Range<UInt64> {
            seed = EpochSeed.next(seed: seed, epoch: epoch, outputs: [])
            seeds.insert(seed)
        }
        XCTAssertEqual(seeds.count, 11, "empty epochs never repeat a seed")
        XCTAssertEqual(
            EpochSeed.next(seed: genesis, epoch: 0, outputs: []), EpochSeed.next(seed: genesis, epoch: 0, outputs: []))
    }

    func testVrfInputBindsSeedEpochAndHeight() {
        let seed = Self.seed(1)
        let alpha = EpochSeed.vrfInput(seed: seed, epoch: 2, height: 100)
        XCTAssertEqual(alpha.count, 32)
        XCTAssertEqual(alpha, EpochSeed.vrfInput(seed: seed, epoch: 2, height: 100))
        XCTAssertNotEqual(alpha, EpochSeed.vrfInput(seed: Self.seed(2), epoch: 2, height: 100))
        XCTAssertNotEqual(alpha, EpochSeed.vrfInput(seed: seed, epoch: 3, height: 100))
        XCTAssertNotEqual(alpha, EpochSeed.vrfInput(seed: seed, epoch: 2, height: 101))
        // Swapping epoch and height must not collide (fixed-width fields).
        XCTAssertNotEqual(
            EpochSeed.vrfInput(seed: seed, epoch: 100, height: 2), EpochSeed.vrfInput(seed: seed, epoch: 2, height: 100)
        )
    }

    /// Golden values: the tags and byte layouts are consensus, so any change to them must fail here.
    func testGoldenValues() throws {
        let genesis = EpochSeed.genesis(genesisHash: .zero)
        let next = EpochSeed.next(seed: genesis, epoch: 0, outputs: [Bytes32(w0: 0, w1: 0, w2: 0, w3: 1)])
        let alpha = EpochSeed.vrfInput(seed: genesis, epoch: 0, height: 1)
        let committee = try CommitteeSelection.select(
            pool: Self.pool(epoch: 1, weights: [1, 2, 3, 4, 5]), seed: next, epoch: 1, size: 3)
        // Independent recomputation of the byte layouts with SHA256 alone.
        func tagged(_ tag: String, _ message: [UInt8]) -> Bytes32 {
            let t = SHA256.hash(Array(tag.utf8)).bytes
            return SHA256.hash(t + t + message)
        }
        func be(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
        XCTAssertEqual(genesis, tagged("AmarsEpochSeed", Bytes32.zero.bytes))
        XCTAssertEqual(
            next,
            tagged(
                "AmarsEpochSeed",
                genesis.bytes + be(0) + Bytes32(w0: 0, w1: 0, w2: 0, w3: 1).bytes
                    + be(1)))
        XCTAssertEqual(alpha, tagged("AmarsVrfInput", genesis.bytes + be(0) + be(1)).bytes)
        let draw0 = tagged("AmarsCommitteeDraw", next.bytes + be(1) + be(0) + be(0))
        XCTAssertEqual(
            CommitteeSelection.uniform(below: 15, seed: next, epoch: 1, draw: 0),
            draw0.w0.multipliedFullWidth(by: 15).high)
        XCTAssertEqual(committee.members.count, 3)
        XCTAssertEqual(committee.members.map(\.weight), [4, 2, 5])
    }

    // MARK: Full flow with real VRF proofs

    struct PublishedBlock {
        var height: UInt64
        var proposer: Bytes32
        var proof: [UInt8]
    }

    func testFullFlowVerifierRecomputesTheNextCommittee() throws {
        let keys = (0..<5).map { Fixtures.key(UInt64(200 + $0)) }
        XCTAssertTrue(keys.contains { $0.publicKey.parityPrefix == 0x03 }, "exercise the odd-y normalisation")
        XCTAssertTrue(keys.contains { $0.publicKey.parityPrefix == 0x02 })
        let weights: [UInt64] = [40, 25, 15, 12, 8]
        func pool(_ epoch: UInt64) -> DelegatePool {
            DelegatePool(
                epoch: epoch,
                delegates: keys.enumerated().map {
                    DelegatePool.Delegate(
                        candidate: Address(publicKey: $0.element.xOnlyPublicKey),
                        operatorKey: $0.element.xOnlyPublicKey.bytes, weight: weights[$0.offset])
                })
        }
        let secrets = Dictionary(uniqueKeysWithValues: keys.map { ($0.xOnlyPublicKey.bytes, $0) })
        let size = 4
        let epoch: UInt64 = 7
        let seed = EpochSeed.next(seed: EpochSeed.genesis(genesisHash: Self.seed(77)), epoch: 6, outputs: [])
        let committee = try CommitteeSelection.select(pool: pool(epoch), seed: seed, epoch: epoch, size: size)
        XCTAssertEqual(committee.members.count, size)

        // The producers: each height's proposer (round 0) proves the height's alpha and publishes the proof.
        var published: [PublishedBlock] = []
        var producerOutputs: [Bytes32] = []
        for height in 70..<80 as Range<UInt64> {
            let proposer = committee.members[Int(height % UInt64(size))].key
            let secret = try XCTUnwrap(secrets[proposer])
            let proof = EpochSeed.prove(secretKey: secret, seed: seed, epoch: epoch, height: height)
            XCTAssertEqual(proof.count, ECVRF.proofLength)
            let beta = try XCTUnwrap(
                EpochSeed.verifiedOutput(operatorKey: proposer, seed: seed, epoch: epoch, height: height, proof: proof))
            producerOutputs.append(beta)
            published.append(PublishedBlock(height: height, proposer: proposer, proof: proof))
        }
        let nextSeed = EpochSeed.next(seed: seed, epoch: epoch, outputs: producerOutputs)
        let nextCommittee = try CommitteeSelection.select(
            pool: pool(epoch + 1), seed: nextSeed, epoch: epoch + 1, size: size)

        // The verifier: only the pool, the published (height, proposer, proof) and the previous seed.
        func verifier(_ blocks: [PublishedBlock]) -> Committee? {
            let verifierPool = pool(epoch)
            var accumulator = EpochSeed.Accumulator(seed: seed, epoch: epoch)
            for block in blocks {
                guard verifierPool.delegates.contains(where: { $0.operatorKey == block.proposer }),
                    let beta = EpochSeed.verifiedOutput(
                        operatorKey: block.proposer, seed: seed, epoch: epoch, height: block.height,
                        proof: block.proof)
                else { return nil }
                accumulator.absorb(beta)
            }
            return try? CommitteeSelection.select(
                pool: pool(epoch + 1), seed: accumulator.finalize(), epoch: epoch + 1, size: size)
        }
        XCTAssertEqual(verifier(published), nextCommittee)
        XCTAssertTrue(
            CommitteeSelection.verify(
                committee: try XCTUnwrap(verifier(published)), pool: pool(epoch + 1), seed: nextSeed,
                epoch: epoch + 1, size: size))

        // A tampered proof, a proof moved to another height, or one claimed by another key does not verify.
        var tampered = published
        tampered[3].proof[60] ^= 1
        XCTAssertNil(verifier(tampered))
        var moved = published
        moved[2].height = 1000
        XCTAssertNil(verifier(moved))
        var stolen = published
        stolen[0].proposer = keys.map(\.xOnlyPublicKey.bytes).first { $0 != published[0].proposer }!
        XCTAssertNil(verifier(stolen))

        // The same member proving twice at one height gets the same output: nothing to grind by retrying.
        let again = EpochSeed.prove(
            secretKey: try XCTUnwrap(secrets[published[0].proposer]), seed: seed, epoch: epoch, height: 70)
        XCTAssertEqual(again, published[0].proof)
    }

    /// Why ``EpochSeed/prove(secretKey:seed:epoch:height:)`` normalises parity: a raw proof by an odd-y key does
    /// not verify against the even-y key a verifier rebuilds from the x-only operator key.
    func testOddParityKeyNeedsNormalisation() throws {
        let odd = try XCTUnwrap(
            (0..<20).map { Fixtures.key(UInt64(300 + $0)) }.first {
                $0.publicKey.parityPrefix == 0x03
            })
        let seed = Self.seed(5)
        let alpha = EpochSeed.vrfInput(seed: seed, epoch: 1, height: 2)
        let raw = ECVRF.prove(secretKey: odd, alpha: alpha)
        let operatorKey = odd.xOnlyPublicKey.bytes
        XCTAssertNil(EpochSeed.verifiedOutput(operatorKey: operatorKey, seed: seed, epoch: 1, height: 2, proof: raw))
        let normalised = EpochSeed.prove(secretKey: odd, seed: seed, epoch: 1, height: 2)
        XCTAssertNotNil(
            EpochSeed.verifiedOutput(operatorKey: operatorKey, seed: seed, epoch: 1, height: 2, proof: normalised))
        XCTAssertNil(
            EpochSeed.verifiedOutput(operatorKey: operatorKey, seed: seed, epoch: 1, height: 2, proof: [1, 2]))
    }
}
