import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Chain
import DeviceCore
import DeviceProtocol
import Ledger
import LightClient
import XCTest

/// A year of hourly epochs by the benchmark's pool model (`amars-bench lightclient`): 36 delegates of unequal
/// weight, 3 replaced every week, a committee of 24 re-drawn from them each epoch by ``CommitteeSelection``, and
/// each checkpoint attested by the smallest part of its pool above two thirds of the weight (shuffled: the least
/// overlap honest attesters can have). Signatures are made only when a device asks, so a debug build runs it.
struct PoolModelChain {
    static let chainID: UInt32 = 77
    static let epochLength: UInt64 = 3_600
    static let hour: UInt64 = 3_600_000
    static let start: UInt64 = 1_735_689_600_000

    let epochs: Int
    var committees: [Committee] = []
    var rosters: [Committee] = []
    /// `headers[0]` is genesis; `headers[e + 1]` closes epoch e.
    var headers: [BlockHeader] = []
    var attesters: [Set<Bytes32>] = []
    var keys: [Bytes32: PrivateKey] = [:]

    init(epochs: Int, pool: Int = 36, committee: Int = 24, churn: Int = 3) {
        self.epochs = epochs
        var next: UInt64 = 1
        var keys: [Bytes32: PrivateKey] = [:]
        func delegate() -> DelegatePool.Delegate {
            let key = try! PrivateKey(bytes: Bytes32(w0: 13, w1: 0, w2: 0, w3: next))
            next += 1
            let x = key.xOnlyPublicKey.bytes
            keys[x] = key
            return DelegatePool.Delegate(
                candidate: Address(publicKey: key.xOnlyPublicKey), operatorKey: x, weight: 1_000 + x.w3 % 1_000)
        }
        var delegates = (0..<pool).map { _ in delegate() }
        var seed = Domain.genesis.hash([0x53, 0x44])
        var replaced = 0
        for e in 0...epochs {
            if e > 0, e % 168 == 0 {
                for _ in 0..<churn {
                    delegates[replaced % pool] = delegate()
                    replaced += 1
                }
            }
            let elected = DelegatePool(epoch: UInt64(e), delegates: delegates)
            committees.append(
                try! CommitteeSelection.select(pool: elected, seed: seed, epoch: UInt64(e), size: committee))
            rosters.append(PoolRoster.roster(of: elected)!)
            seed = EpochSeed.next(seed: seed, epoch: UInt64(e), outputs: [])
        }
        for e in -1..<epochs {
            headers.append(
                BlockHeader(
                    chainID: Self.chainID, height: UInt64(e + 1) * Self.epochLength,
                    previousHash: e < 0 ? Domain.genesis.hash([0x53]) : headers[e].hash,
                    timestamp: Self.start + UInt64(e + 1) * Self.hour, epoch: UInt64(max(e, 0)), round: 0,
                    proposer: committees[max(e, 0)].members[0].key, baseFee: 1, unitsUsed: 0, transactionsRoot: .zero,
                    stateRoot: Domain.genesis.hash([UInt8(truncatingIfNeeded: e), 0x54]), receiptsRoot: .zero,
                    nextCommitteeHash: committees[e + 1].hash, nextPoolHash: rosters[e + 1].hash))
        }
        for e in 0..<epochs {
            var rng = SplitMix64(seed: UInt64(e) &+ 0xA77E57)
            var order = Array(rosters[e].members.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            var chosen = Set<Bytes32>()
            var weight: UInt64 = 0
            for i in order where !rosters[e].isQuorum(weight) {
                chosen.insert(rosters[e].members[i].key)
                weight += rosters[e].members[i].weight
            }
            attesters.append(chosen)
        }
        self.keys = keys
    }

    var genesisHash: Bytes32 { headers[0].hash }

    func signature(_ key: Bytes32, height: UInt64, hash: Bytes32, step: VoteStep) -> Bytes64 {
        let message = Vote.signingHash(
            chainID: Self.chainID, genesis: genesisHash, height: height, round: 0, step: step, blockHash: hash,
            voter: key)
        return keys[key]!.signSchnorr(message, auxRandom: .zero)
    }

    /// The checkpoint closing epoch `e`, its commit certificate by the smallest quorum of the epoch's committee.
    func checkpoint(_ e: Int) -> Checkpoint {
        let header = headers[e + 1]
        var signatures: [CommitCertificate.Signature] = []
        var weight: UInt64 = 0
        for (i, m) in committees[e].members.enumerated() where !committees[e].isQuorum(weight) {
            signatures.append(
                .init(
                    memberIndex: UInt16(i),
                    signature: signature(m.key, height: header.height, hash: header.hash, step: .commit)))
            weight += m.weight
        }
        return Checkpoint(
            header: header, nextCommittee: committees[e + 1],
            certificate: CommitCertificate(
                height: header.height, round: 0, blockHash: header.hash, signatures: signatures))
    }

    /// What a gateway answers to `v1/skip?from=t&to=e`: the trusted roster and its members' attestations of
    /// checkpoint e, heaviest first until a third of its weight.
    func skipPayload(to e: Int, from t: Int) -> SkipPayload {
        let roster = rosters[t]
        let header = headers[e + 1]
        let (attestations, _) = PoolRoster.attestations(by: roster, height: header.height, blockHash: header.hash) {
            let key = roster.members[$0].key
            return attesters[e].contains(key)
                ? signature(key, height: header.height, hash: header.hash, step: .checkpoint) : nil
        }
        return SkipPayload(checkpoint: checkpoint(e), trustedPool: roster, attestations: attestations)
    }
}

/// A gateway of ``PoolModelChain`` whose newest closed epoch is `head - 1`: it answers `v1/skip` only, as a
/// device that skips asks nothing else, and counts the questions.
struct PoolModelLink: DeviceLink {
    let chain: PoolModelChain
    var head = 0
    var wallClock: UInt64 = 0
    var requests = 0

    mutating func exchange(_ request: DeviceRequest) -> DeviceAnswer {
        requests += 1
        func decimal(_ key: StaticString) -> Int? {
            request.argument(key).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
        }
        guard request.resource == .skip, let from = decimal("from"), from <= head else {
            return DeviceAnswer(code: .badRequest, body: [])
        }
        let to = decimal("to") ?? head - 1
        return DeviceAnswer(code: .content, body: chain.skipPayload(to: to, from: from).encoded)
    }

    mutating func sleep(millis: UInt32) {}
    var nowMillis: UInt64 { wallClock }
    var wallClockMillis: UInt64? { wallClock }
    var servesHeaders: Bool { false }
}

/// Issue 14's goal on the portable device session itself: within the trusting period, at least 99% of wakes
/// take one skip step, whether the device wakes daily, weekly or every two weeks, for a whole year.
final class SleepingDeviceTests: XCTestCase {
    static let year = PoolModelChain(epochs: 8_760)

    func testAYearOfWakesTakesOneSkipStepEach() throws {
        let chain = Self.year
        let trustingPeriod: UInt64 = 14 * 86_400_000
        let genesis = try TrustedState.anchored(
            header: chain.headers[0], committee: chain.committees[0], epochLength: PoolModelChain.epochLength,
            trustedHash: chain.headers[0].hash)
        let anchor = DeviceTrustAnchor(
            genesisHeader: chain.headers[0], committee: chain.committees[0], epochLength: PoolModelChain.epochLength,
            trustingPeriodMillis: trustingPeriod)
        for hours in [24, 168, 335] {
            var session = DeviceSession(anchor: anchor, trusted: genesis)
            var link = PoolModelLink(chain: chain)
            var wakes = 0
            var multiStep = 0
            var signatures = 0
            while link.head < chain.epochs {
                link.head = min(link.head + hours, chain.epochs)
                link.wallClock = PoolModelChain.start + UInt64(link.head) * PoolModelChain.hour + 60_000
                let before = link.requests
                guard case .synced(let progress) = try session.run(.sync(maxEpochs: .max), over: &link) else {
                    return XCTFail("wake \(wakes) did not sync")
                }
                XCTAssertEqual(progress.toEpoch, UInt64(link.head))
                wakes += 1
                signatures += progress.signaturesChecked
                if link.requests - before > 1 { multiStep += 1 }
            }
            let trusted = try XCTUnwrap(session.trusted)
            XCTAssertEqual(trusted.checkpointHash, chain.headers[chain.epochs].hash, "every \(hours) h")
            XCTAssertEqual(trusted.committee, chain.committees[chain.epochs])
            XCTAssertEqual(trusted.poolHash, chain.rosters[chain.epochs].hash)
            XCTAssertLessThanOrEqual(
                multiStep * 100, wakes, "every \(hours) h: \(multiStep) of \(wakes) wakes took more than one step")
            // A third of the pool's weight, heaviest first: about ten signatures a wake, never a quorum's worth.
            XCTAssertLessThan(signatures, wakes * 14, "every \(hours) h")
        }
    }

    func testAWakePastTheTrustingPeriodRefusesWithoutAskingTheGateway() throws {
        let chain = Self.year
        let genesis = try TrustedState.anchored(
            header: chain.headers[0], committee: chain.committees[0], epochLength: PoolModelChain.epochLength,
            trustedHash: chain.headers[0].hash)
        let anchor = DeviceTrustAnchor(
            genesisHeader: chain.headers[0], committee: chain.committees[0], epochLength: PoolModelChain.epochLength,
            trustingPeriodMillis: 14 * 86_400_000)
        var session = DeviceSession(anchor: anchor, trusted: genesis)
        var link = PoolModelLink(chain: chain, head: 15 * 24)
        link.wallClock = PoolModelChain.start + UInt64(link.head) * PoolModelChain.hour
        XCTAssertThrowsError(try session.run(.sync(maxEpochs: .max), over: &link)) { error in
            guard case .device(.trustExpired) = error as? DeviceRunError<Never> else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(link.requests, 0)
        XCTAssertEqual(session.trusted, genesis)
    }
}
