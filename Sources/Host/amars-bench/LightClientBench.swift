import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger
import LightClient

/// `amars-bench lightclient`: what a year of checkpoints costs a device, sequential sync against skipping.
///
/// The chain is synthetic but drawn by the real rules: a pool of `--pool` delegates (weights differ) loses
/// `--churn` members to fresh ones every week; each hourly epoch's committee of `--committee` is drawn from the
/// pool by ``CommitteeSelection`` with a chained seed, so consecutive committees overlap only as much as VRF
/// draws do; each checkpoint is signed by the smallest quorum (more than two thirds of the weight, members in a
/// shuffled order), the least overlap a real certificate can have. The pool attests each checkpoint the same
/// way (the smallest set of its members above two thirds of its weight, shuffled: as if the rest were offline),
/// and a skip counts those attestations against the pool the device trusts, trimmed as a gateway serves them
/// (``PoolRoster``, `v1/skip`).
///
/// Skipping is bound by the trusting period, measured from the trusted checkpoint, so a device that sleeps
/// longer than that cannot skip at all (it must sync sequentially or be re-anchored). The bench therefore models
/// devices that wake every `--wake-hours` (several intervals) and sync to the head each time.
struct LightClientBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lightclient", abstract: "A year of hourly checkpoints: sequential sync against skipping.")

    @Option(help: "Epochs (one per hour; 8760 = one year).")
    var epochs: Int = 8_760

    @Option(help: "Delegate pool size.")
    var pool: Int = 36

    @Option(help: "Committee size, drawn from the pool every epoch.")
    var committee: Int = 24

    @Option(help: "Pool members replaced per week.")
    var churn: Int = 3

    @Option(help: "Trusting period in days (must be shorter than unbonding); default: the production genesis's.")
    var trustingDays: Int = Int(Genesis.Production.trustingPeriodMillis / 86_400_000)

    @Option(help: "Unbonding period in days; default: the production genesis's.")
    var unbondingDays: Int = Int(Genesis.Production.unbondingMillis / 86_400_000)

    @Option(help: "Device wake intervals to model, hours, comma separated (0: the longest the trusting period allows).")
    var wakeHours: String = "24,168,0"

    @Flag(
        help: """
            Also count executed instructions per checkpoint step on the Cortex-M4 firmware in QEMU \
            (make -C Boards count: needs the board toolchain, make -C Boards deps) and estimate device time.
            """)
    var qemu = false

    @Option(help: "Device clock in MHz for the time estimate (one instruction per cycle).")
    var deviceMhz: Double = 64

    static let epochMillis: UInt64 = Genesis.Production.epochLength * Genesis.Production.blockIntervalMillis
    static let epochLength: UInt64 = Genesis.Production.epochLength
    static let chainID: UInt32 = 7
    static let start: UInt64 = 1_735_689_600_000

    func validate() throws {
        guard epochs > 1, pool >= committee, committee > 0, committee <= Caps.committeeMembers, churn >= 0,
            churn <= pool
        else { throw ValidationError("need epochs > 1, 0 < committee <= pool, churn <= pool") }
        guard trustingDays > 0, trustingDays < unbondingDays else {
            throw ValidationError("the trusting period must be positive and shorter than unbonding")
        }
    }

    func run() throws {
        let t0 = DispatchTime.now()
        let chain = try buildChain()
        print(
            "built \(epochs) hourly checkpoints (pool \(pool), \(churn) replaced per week, committee \(committee)) "
                + "in \(String(format: "%.1f", seconds(t0))) s")

        // Sequential: every checkpoint, every signature.
        var state = chain.genesis
        var sequentialChecks = 0
        let s0 = DispatchTime.now()
        for e in 0..<epochs {
            let checkpoint = chain.checkpoints[e]
            state = try CheckpointVerifier.verifyNext(trusted: state, checkpoint: checkpoint)
            sequentialChecks += checkpoint.certificate.signatures.count
        }
        let sequentialTime = seconds(s0)
        print(
            "sequential: \(sequentialChecks) signature checks, \(String(format: "%.3f", sequentialTime)) s host, "
                + "final epoch \(state.epoch)")

        printOverlap(chain)

        let options = try SkippingOptions(
            trustingPeriod: UInt64(trustingDays) * 86_400_000, unbondingPeriod: UInt64(unbondingDays) * 86_400_000)
        let longest = trustingDays * 24 - 1
        let intervals = wakeHours.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var skippingChecks: [Int: Int] = [:]
        for requested in intervals {
            let wake = requested <= 0 ? longest : requested
            var trust = chain.genesis
            var checks = 0
            var skips = 0
            var steps = 0
            var bisections = 0
            var wakes = 0
            /// Wakes that took more than one checkpoint (a bisection, or a skip then a sequential step).
            var multiStep = 0
            let k0 = DispatchTime.now()
            var head = 0
            while head < epochs {
                head = min(head + wake, epochs)
                wakes += 1
                let now = Self.start + UInt64(head) * Self.epochMillis + 60_000
                let report = try SkippingSync.sync(
                    from: trust, toEpoch: UInt64(head), now: now, options: options
                ) { e, trusted in Int(e) < chain.checkpoints.count ? chain.offer(Int(e), trusting: trusted) : nil }
                trust = report.trusted
                checks += report.signatureChecks
                skips += report.skips
                steps += report.sequentialSteps
                bisections += report.bisections
                if report.fetches > 1 { multiStep += 1 }
            }
            let time = seconds(k0)
            guard trust == state else { throw ValidationError("skipping reached another state") }
            skippingChecks[wake] = checks
            let goal = multiStep * 100 <= wakes ? "goal met" : "goal NOT met"
            print(
                "skipping, wake every \(wake) h (\(wakes) wakes): \(checks) signature checks, "
                    + "\(String(format: "%.3f", time)) s host; \(skips) skips, \(steps) sequential steps, "
                    + "\(bisections) bisections; \(String(format: "%.1f", 100 * Double(multiStep) / Double(wakes)))% of "
                    + "wakes took more than one step; same final state; checks ratio "
                    + "\(String(format: "%.1f", Double(sequentialChecks) / Double(max(checks, 1))))x, time ratio "
                    + "\(String(format: "%.1f", sequentialTime / max(time, 1e-9)))x; \(goal) (one step for >= 99% of wakes)"
            )
        }
        print(
            "a device asleep longer than the trusting period (\(trustingDays) d) cannot skip: "
                + "sequential (\(sequentialChecks) checks) or a fresh anchor")
        if qemu { try deviceCounts(sequentialChecks: sequentialChecks, skippingChecks: skippingChecks) }
    }

    /// `make -C Boards count` on the QEMU Cortex-M4 board, its table printed, and what it means for a device:
    /// instructions per checkpoint step against the 25 M goal, and the year's checks at the device's clock.
    private func deviceCounts(sequentialChecks: Int, skippingChecks: [Int: Int]) throws {
        let table = try BoardCounts.run()
        print(table.joined(separator: "\n"))
        guard let verify = BoardCounts.count("one Schnorr verify", in: table),
            let step = BoardCounts.count("24 members, 17 signatures", in: table),
            let skip = BoardCounts.count("skip step, 36-member pool", in: table)
        else {
            throw ValidationError("no counts in the output of make -C Boards count")
        }
        let perSecond = deviceMhz * 1_000_000
        print(
            "device estimate at \(String(format: "%.0f", deviceMhz)) MHz, one instruction per cycle: checkpoint step "
                + "(24 members) \(String(format: "%.2f", step / perSecond)) s; \(epochs) epochs sequential "
                + "\(String(format: "%.0f", Double(sequentialChecks) * verify / perSecond)) s of signature checks")
        print(
            "a daily wake on the board: one skip step, \(String(format: "%.1f", skip / 1e6)) M instructions "
                + "(\(String(format: "%.2f", skip / perSecond)) s), against \(String(format: "%.0f", 24 * step / 1e6)) M "
                + "for the 24 sequential steps it replaces (ratio \(String(format: "%.0f", 24 * step / skip))x)")
        for (wake, checks) in skippingChecks.sorted(by: { $0.key < $1.key }) {
            print(
                "  skipping, wake every \(wake) h: \(String(format: "%.1f", Double(checks) * verify / perSecond)) s "
                    + "of signature checks over the \(epochs) epochs")
        }
    }

    /// Mean trusted weight (percent) attesting a checkpoint at several distances, for the committee (its commit
    /// signers against the trusted committee) and for the pool (its attesters against the trusted pool): the
    /// overlap skipping needs is at least 33 %.
    private func printOverlap(_ chain: Chain) {
        func line(_ name: String, _ share: (_ trusted: Int, _ signed: Int) -> (weight: UInt64, total: UInt64)) {
            var parts: [String] = []
            for hours in [1, 24, 168, 336, 672, 2_190] where hours < epochs {
                var sum = 0.0
                var n = 0
                var reached = 0
                for t in stride(from: 0, to: epochs - hours, by: 97) {
                    let (weight, total) = share(t, t + hours - 1)
                    sum += Double(weight) / Double(total)
                    if Committee.reachesOneThird(weight, of: total) { reached += 1 }
                    n += 1
                }
                parts.append(
                    "\(hours) h \(String(format: "%.0f", 100 * sum / Double(n)))% (\(100 * reached / n)% >= 1/3)")
            }
            print("trusted \(name) weight signing a checkpoint, by distance: " + parts.joined(separator: ", "))
        }
        line("committee") { t, e in
            let signers = Set(
                chain.checkpoints[e].certificate.signatures.map { chain.committees[e].members[Int($0.memberIndex)].key }
            )
            let trusted = chain.committees[t]
            return (
                trusted.members.filter { signers.contains($0.key) }.reduce(0) { $0 + $1.weight }, trusted.totalWeight
            )
        }
        line("pool") { t, e in
            let trusted = chain.rosters[t]
            return (
                trusted.members.filter { chain.attesters[e].contains($0.key) }.reduce(0) { $0 + $1.weight },
                trusted.totalWeight
            )
        }
    }

    struct Chain {
        var genesis: TrustedState
        /// `committees[e]` signs epoch e; `rosters[e]` is the pool of epoch e.
        var committees: [Committee]
        var rosters: [Committee]
        /// `checkpoints[e]` closes epoch e; `attesters[e]` are the pool members who attested it.
        var checkpoints: [Checkpoint]
        var attesters: [Set<Bytes32>]
        var keys: [Bytes32: PrivateKey]
        var genesisHash: Bytes32

        /// What a gateway answers to `v1/skip?from=<trusted epoch>&to=e`: the trusted pool's attestations of
        /// checkpoint e, heaviest first until a third of its weight (signed here, on demand: only wakes need them).
        func offer(_ e: Int, trusting trusted: TrustedState) -> SkippingCheckpoint {
            let roster = rosters[Int(trusted.epoch)]
            let header = checkpoints[e].header
            let (attestations, _) = PoolRoster.attestations(
                by: roster, height: header.height, blockHash: header.hash
            ) { i in
                let key = roster.members[i].key
                guard attesters[e].contains(key) else { return nil }
                let message = Vote.signingHash(
                    chainID: LightClientBench.chainID, genesis: genesisHash, height: header.height, round: 0,
                    step: .checkpoint, blockHash: header.hash, voter: key)
                return keys[key]!.signSchnorr(message, auxRandom: .zero)
            }
            return SkippingCheckpoint(checkpoint: checkpoints[e], trustedPool: roster, attestations: attestations)
        }
    }

    private func buildChain() throws -> Chain {
        var nextKey: UInt64 = 1
        func freshKey() -> PrivateKey {
            defer { nextKey += 1 }
            return try! PrivateKey(bytes: Bytes32(w0: 11, w1: 0, w2: 0, w3: nextKey))
        }
        var privateKeys: [Bytes32: PrivateKey] = [:]
        func delegate(_ key: PrivateKey) -> DelegatePool.Delegate {
            let x = key.xOnlyPublicKey
            privateKeys[x.bytes] = key
            // Weights differ (1,000 ... 1,999) so that the one-third rule is about weight, not head count.
            let weight = 1_000 + (x.bytes.w3 % 1_000)
            return DelegatePool.Delegate(candidate: Address(publicKey: x), operatorKey: x.bytes, weight: weight)
        }
        var delegates = (0..<pool).map { _ in delegate(freshKey()) }
        var seed = Domain.genesis.hash([0x4c, 0x43])
        var committees: [Committee] = []
        var rosters: [Committee] = []
        committees.reserveCapacity(epochs + 1)
        var replaced = 0
        for e in 0...epochs {
            if e > 0, e % 168 == 0 {
                for _ in 0..<churn {
                    delegates[replaced % pool] = delegate(freshKey())
                    replaced += 1
                }
            }
            let elected = DelegatePool(epoch: UInt64(e), delegates: delegates)
            let drawn = try CommitteeSelection.select(pool: elected, seed: seed, epoch: UInt64(e), size: committee)
            committees.append(drawn)
            rosters.append(PoolRoster.roster(of: elected)!)
            seed = EpochSeed.next(seed: seed, epoch: UInt64(e), outputs: [])
        }
        var headers: [BlockHeader] = []
        headers.reserveCapacity(epochs + 1)
        for e in -1..<epochs {
            let height = UInt64(e + 1) * Self.epochLength
            let epoch = UInt64(max(e, 0))
            headers.append(
                BlockHeader(
                    chainID: Self.chainID, height: height,
                    previousHash: e < 0 ? Domain.genesis.hash([0x4c]) : headers[e].hash,
                    timestamp: Self.start + UInt64(e + 1) * Self.epochMillis, epoch: epoch, round: 0,
                    proposer: committees[Int(epoch)].members[0].key, baseFee: 1, unitsUsed: 0,
                    transactionsRoot: .zero, stateRoot: Domain.genesis.hash([UInt8(truncatingIfNeeded: e), 0x53]),
                    receiptsRoot: .zero, nextCommitteeHash: committees[e + 1].hash, nextPoolHash: rosters[e + 1].hash))
        }
        // Signing dominates the build; spread it over the cores. Each iteration writes only its own slot.
        let keys = privateKeys
        nonisolated(unsafe) let signed = UnsafeMutableBufferPointer<CommitCertificate?>.allocate(capacity: epochs)
        signed.initialize(repeating: nil)
        defer { signed.deallocate() }
        let headerList = headers
        let committeeList = committees
        DispatchQueue.concurrentPerform(iterations: epochs) { e in
            signed[e] = Self.certify(
                headerList[e + 1], genesis: headerList[0].hash, committee: committeeList[e], keys: keys, salt: UInt64(e)
            )
        }
        let checkpoints = (0..<epochs).map { e in
            Checkpoint(header: headers[e + 1], nextCommittee: committees[e + 1], certificate: signed[e]!)
        }
        let attesters = (0..<epochs).map { e in
            Set(Self.smallestQuorum(rosters[e], salt: UInt64(e) &+ 0x5eed).map { rosters[e].members[$0].key })
        }
        let genesisState = try TrustedState.anchored(
            header: headers[0], committee: committees[0], epochLength: Self.epochLength, trustedHash: headers[0].hash)
        return Chain(
            genesis: genesisState, committees: committees, rosters: rosters, checkpoints: checkpoints,
            attesters: attesters, keys: keys, genesisHash: headers[0].hash)
    }

    /// Member indices of `committee` in a shuffled order (SplitMix64 of `salt`) until more than two thirds of the
    /// weight: the least overlap a quorum can have.
    private static func smallestQuorum(_ committee: Committee, salt: UInt64) -> [Int] {
        var order = Array(committee.members.indices)
        var state = salt &* 0x9E37_79B9_7F4A_7C15 &+ 1
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            state = state &+ 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            order.swapAt(i, Int(z % UInt64(i + 1)))
        }
        var chosen: [Int] = []
        var weight: UInt64 = 0
        for i in order where !committee.isQuorum(weight) {
            chosen.append(i)
            weight += committee.members[i].weight
        }
        return chosen
    }

    /// The smallest quorum (``smallestQuorum(_:salt:)``) signs `header`'s commit.
    private static func certify(
        _ header: BlockHeader, genesis: Bytes32, committee: Committee, keys: [Bytes32: PrivateKey], salt: UInt64
    ) -> CommitCertificate {
        let hash = header.hash
        let signatures = smallestQuorum(committee, salt: salt).map { i in
            let member = committee.members[i]
            let message = Vote.signingHash(
                chainID: chainID, genesis: genesis, height: header.height, round: header.round, step: .commit,
                blockHash: hash, voter: member.key)
            return CommitCertificate.Signature(
                memberIndex: UInt16(i), signature: keys[member.key]!.signSchnorr(message, auxRandom: .zero))
        }
        return CommitCertificate(height: header.height, round: header.round, blockHash: hash, signatures: signatures)
    }

    private func seconds(_ since: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - since.uptimeNanoseconds) / 1e9
    }
}

/// `make -C Boards count`: the self-test image run in QEMU under the instruction-counting plugin.
enum BoardCounts {
    /// The table's lines, from "Executed instructions" on.
    static func run() throws -> [Substring] {
        // Sources/Host/amars-bench/LightClientBench.swift → the repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "make", "-s", "-C", root.appendingPathComponent("Boards").path, "count", "BOARD=qemu-mps2-an386",
        ]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ValidationError("make -C Boards count failed (\(p.terminationStatus)):\n\(output.suffix(3000))")
        }
        return Array(output.split(separator: "\n").drop { !$0.hasPrefix("Executed instructions") })
    }

    /// The instructions on the line naming `label`. The columns end "instructions   x one verify": the count is
    /// the next-to-last number of the line.
    static func count(_ label: String, in table: [Substring]) -> Double? {
        guard let line = table.first(where: { $0.contains(label) }) else { return nil }
        let numbers = line.split(separator: " ").compactMap { Double($0) }
        return numbers.count >= 2 ? numbers[numbers.count - 2] : nil
    }
}
