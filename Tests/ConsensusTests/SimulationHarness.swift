import AmarsTestSupport
import AmarsCodec
import AmarsCrypto
import Consensus
import Ledger

/// Deterministic multi-node simulation: N consensus cores in one process, a virtual clock, an event queue and a
/// network that delays, drops, duplicates, reorders and partitions, all driven by one seeded PRNG. The same seed
/// replays the same run exactly (the cores are deterministic, and nothing here reads a clock or hashes into a
/// dictionary whose order matters).

// MARK: - Randomness

// MARK: - The simulated application

/// A stand-in block: who proposed it where, plus a salt that byzantine proposers vary to equivocate.
struct SimBlock: ConsensusValue, Equatable, CanonicalCodable {
    static let domain = TaggedHash(tag: "AmarsSimBlock")

    let height: UInt64
    let round: UInt32
    let proposer: UInt16
    let salt: UInt64
    /// Honest proposers make valid blocks; a byzantine one sometimes does not, and no honest node may decide it.
    let valid: Bool
    let hash: Bytes32

    init(height: UInt64, round: UInt32, proposer: UInt16, salt: UInt64, valid: Bool) {
        self.height = height
        self.round = round
        self.proposer = proposer
        self.salt = salt
        self.valid = valid
        var w = ByteWriter()
        w.writeVarint(height)
        w.writeVarint(UInt64(round))
        w.writeVarint(UInt64(proposer))
        w.writeVarint(salt)
        w.writeBool(valid)
        hash = SimBlock.domain.hash(w.bytes)
    }

    func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.writeVarint(UInt64(round))
        w.writeVarint(UInt64(proposer))
        w.writeVarint(salt)
        w.writeBool(valid)
    }

    init(from r: inout ByteReader) throws(CodecError) {
        let height = try r.readVarint()
        let round = try r.readVarint32()
        let proposer = try r.readVarint()
        guard proposer <= UInt64(UInt16.max) else { throw .invalidValue(.range) }
        let salt = try r.readVarint()
        let valid = try r.readBool()
        self.init(height: height, round: round, proposer: UInt16(proposer), salt: salt, valid: valid)
    }
}

struct SimApp: ConsensusApplication {
    let node: Int

    func proposal(height: UInt64, round: UInt32) -> SimBlock {
        SimBlock(height: height, round: round, proposer: UInt16(node), salt: 0, valid: true)
    }

    func isValid(_ value: SimBlock, height: UInt64) -> Bool { value.valid && value.height == height }

    /// Values whose salt is this are "from the future" to this node (tests of the timeliness gate).
    var untimelySalt: UInt64? = nil

    func isTimely(_ value: SimBlock, height: UInt64) -> Bool { value.salt != untimelySalt }
}

typealias SimCore = ConsensusCore<SimApp>

enum SimKeys {
    /// Deterministic member keys, shared by every run (deriving keys is not what we test).
    static let keys: [PrivateKey] = (0..<64).map { i in
        // Small scalars are valid keys; the constant word keeps them away from other test fixtures.
        try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0x5157_0000, w2: 0, w3: UInt64(i + 1)))
    }
}

// MARK: - Scenario

enum Role: Equatable {
    case honest
    /// Stops at the given virtual time and never comes back.
    case crashes(at: UInt64)
    /// Runs an honest core but sends conflicting votes and proposals to different peers.
    case byzantine
}

/// Everything random about one run, drawn from its seed up front so it can be printed.
struct Scenario: CustomStringConvertible {
    var seed: UInt64
    var weights: [UInt64]
    var roles: [Role]
    /// Before GST.
    var dropRate: Double
    var duplicateRate: Double
    var maxLatencyBefore: UInt64
    /// After GST every message arrives within this bound (and none is dropped).
    var maxLatencyAfter: UInt64
    /// Members of one side, and the interval during which the two sides cannot talk.
    var partition: (side: [Bool], from: UInt64, until: UInt64)?
    /// Global stabilisation time; nil means the network never stabilises (safety-only run).
    var gst: UInt64?
    /// Heights every honest node must decide after GST.
    var heightsAfterGST: Int
    /// Virtual time after GST within which they must.
    var livenessBound: UInt64
    var tickInterval: UInt64
    var timeouts: TimeoutSchedule
    /// Byzantine recipients that get the "real" messages; the others get the conflicting ones.
    var byzantineSplit: [Bool]

    var n: Int { weights.count }

    static let simTimeouts = TimeoutSchedule(
        proposeBase: 1000, proposeIncrement: 500, prepareBase: 500, prepareIncrement: 250, commitBase: 500,
        commitIncrement: 250)

    /// A random scenario with at most a third of the weight faulty (crashed or byzantine).
    static func random(seed: UInt64, n: Int) -> Scenario {
        var rng = SplitMix64(seed: seed ^ (UInt64(n) &* 0xA24B_AED4_963E_E407))
        let weights: [UInt64] =
            rng.chance(0.5) ? Array(repeating: 1, count: n) : (0..<n).map { _ in rng.inRange(1...10) }
        let total = weights.reduce(0, +)
        let safetyOnly = rng.chance(0.1)
        let gst: UInt64? = safetyOnly ? nil : rng.inRange(0...20_000)
        let horizon = gst ?? 30_000

        var roles = [Role](repeating: .honest, count: n)
        var faultyWeight: UInt64 = 0
        let wantFaults = rng.chance(0.8)
        for i in rng.shuffled(Array(0..<n)) where wantFaults {
            // Keep the faulty weight strictly below a third, so the rest is a quorum.
            guard (faultyWeight + weights[i]) * 3 < total, rng.chance(0.85) else { continue }
            faultyWeight += weights[i]
            roles[i] = rng.chance(0.5) ? .byzantine : .crashes(at: rng.inRange(0...(horizon + 5_000)))
        }

        var partition: (side: [Bool], from: UInt64, until: UInt64)?
        if rng.chance(0.5) {
            let side = (0..<n).map { _ in rng.chance(0.5) }
            let from = rng.inRange(0...(horizon / 2))
            let until = rng.inRange(from...horizon)
            partition = (side, from, until)
        }
        return Scenario(
            seed: seed, weights: weights, roles: roles,
            dropRate: Double(rng.below(31)) / 100, duplicateRate: Double(rng.below(21)) / 100,
            maxLatencyBefore: rng.inRange(10...600), maxLatencyAfter: rng.inRange(5...100),
            partition: partition, gst: gst, heightsAfterGST: 5, livenessBound: 90_000,
            tickInterval: rng.inRange(800...2_000), timeouts: simTimeouts,
            byzantineSplit: (0..<n).map { _ in rng.chance(0.5) })
    }

    var description: String {
        let roleText = roles.enumerated().compactMap { i, r -> String? in
            switch r {
            case .honest: return nil
            case .crashes(let t): return "\(i):crash@\(t)"
            case .byzantine: return "\(i):byz"
            }
        }
        let part = partition.map { "partition \($0.from)-\($0.until)" } ?? "no partition"
        return "seed \(seed) n=\(n) weights=\(weights) faults=\(roleText) drop=\(dropRate) dup=\(duplicateRate) "
            + "lat=\(maxLatencyBefore)/\(maxLatencyAfter) \(part) gst=\(gst.map(String.init) ?? "never")"
    }
}

// MARK: - Simulation

enum SimMessage {
    case proposal(SignedProposal, SimBlock)
    case vote(Vote)
    case decision(SimBlock, CommitCertificate)
    /// Block sync, done by the host's network layer, not the core: "send me your decision at this height".
    case syncRequest(height: UInt64)
}

enum SimEvent {
    case deliver(to: Int, from: Int, SimMessage)
    case timeout(node: Int, height: UInt64, round: UInt32, step: ConsensusStep)
    case tick(node: Int)
    case start(node: Int, height: UInt64)
    case crash(node: Int)
    case gst
}

/// Min-heap on (time, insertion order): equal times run in the order they were scheduled, deterministically.
struct EventQueue<Item> {
    private var heap: [(time: UInt64, seq: UInt64, item: Item)] = []
    private var seq: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }

    private static func less(_ a: (time: UInt64, seq: UInt64, item: Item), _ b: (time: UInt64, seq: UInt64, item: Item))
        -> Bool
    { a.time != b.time ? a.time < b.time : a.seq < b.seq }

    mutating func push(_ time: UInt64, _ item: Item) {
        heap.append((time, seq, item))
        seq += 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (time: UInt64, item: Item)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < heap.count && Self.less(heap[l], heap[m]) { m = l }
            if r < heap.count && Self.less(heap[r], heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return (top.time, top.item)
    }
}

struct SimResult {
    var failures: [String] = []
    var virtualTime: UInt64 = 0
    var messagesDelivered = 0
    var decisions = 0
    var evidence = 0
    var maxRound: UInt32 = 0
    var dropped: UInt64 = 0
}

struct Simulation {
    static let chainID: UInt32 = 7
    static let genesis = Bytes32(w0: 0x5e, w1: 7, w2: 7, w3: 7)

    struct Node {
        var core: SimCore
        var alive = true
        /// Decided blocks with their certificates, by height (the host's block store).
        var store: [UInt64: (SimBlock, CommitCertificate)] = [:]
        var decided = 0
        var lastSyncRequest: UInt64?
    }

    let scenario: Scenario
    let committee: Committee
    var nodes: [Node]
    var queue = EventQueue<SimEvent>()
    var rng: SplitMix64
    var now: UInt64 = 0
    var result = SimResult()
    /// Across honest nodes (crashed ones included, up to their crash): the first value decided at each height.
    var decidedAt: [UInt64: Bytes32] = [:]
    var baselineAtGST: [Int]?
    /// Alternative blocks the byzantine coalition has shown to the "other" side, by (height, round).
    var coalitionAlternative: [UInt64: [UInt32: Bytes32]] = [:]
    private var actions: [SimCore.Action] = []
    /// Prints every event and action of this node (debugging a seed).
    var traceNode: Int?

    init(scenario: Scenario) {
        self.scenario = scenario
        let members = scenario.weights.enumerated().map { i, w in
            Committee.Member(key: SimKeys.keys[i].xOnlyPublicKey.bytes, weight: w)
        }
        let committee = try! Committee(epoch: 0, members: members)
        self.committee = committee
        let config = ConsensusConfig(timeouts: scenario.timeouts)
        nodes = (0..<scenario.n).map { i in
            Node(
                core: SimCore(
                    chainID: Simulation.chainID, genesis: Simulation.genesis, committee: committee,
                    privateKey: SimKeys.keys[i],
                    app: SimApp(node: i), config: config))
        }
        rng = SplitMix64(seed: scenario.seed &* 0xD1B5_4A32_D192_ED03 &+ 1)
    }

    func isByzantine(_ i: Int) -> Bool { scenario.roles[i] == .byzantine }

    /// Honest and never crashing: the nodes liveness is promised to.
    func isCorrect(_ i: Int) -> Bool { scenario.roles[i] == .honest }

    // MARK: Running

    mutating func run() -> SimResult {
        for i in nodes.indices {
            queue.push(rng.below(50), .start(node: i, height: 1))
            queue.push(rng.inRange(1...scenario.tickInterval), .tick(node: i))
            if case .crashes(let t) = scenario.roles[i] { queue.push(t, .crash(node: i)) }
        }
        if let gst = scenario.gst { queue.push(gst, .gst) }
        let end = (scenario.gst ?? 30_000) + (scenario.gst == nil ? 0 : scenario.livenessBound)
        while result.failures.isEmpty, let (time, event) = queue.pop() {
            if time > end { break }
            now = time
            process(event)
            if livenessReached() { break }
        }
        result.virtualTime = now
        if scenario.gst != nil && result.failures.isEmpty && !livenessReached() {
            let counts = nodes.indices.map { i in
                let c = nodes[i].core
                let lock = c.lockedRound.map(String.init) ?? "-"
                let valid = c.validRound.map(String.init) ?? "-"
                let prepares = c.voteCount(round: c.round, step: .prepare)
                let votes = "p\(prepares)/c\(c.voteCount(round: c.round, step: .commit))"
                return "\(i):\(nodes[i].decided) h\(c.height)r\(c.round)\(c.step) lock \(lock) valid \(valid) "
                    + "kept \(c.keptRounds) votes \(votes)"
            }
            result.failures.append(
                "liveness: not every correct node decided \(scenario.heightsAfterGST) heights within "
                    + "\(scenario.livenessBound) ms after GST; decided \(counts), baseline \(baselineAtGST ?? [])")
        }
        for node in nodes {
            result.maxRound = max(result.maxRound, node.core.round)
            result.dropped += node.core.drops.total
        }
        return result
    }

    func livenessReached() -> Bool {
        guard let baseline = baselineAtGST else { return false }
        for i in nodes.indices where isCorrect(i) && nodes[i].decided < baseline[i] + scenario.heightsAfterGST {
            return false
        }
        return true
    }

    mutating func process(_ event: SimEvent) {
        switch event {
        case .gst:
            baselineAtGST = nodes.map(\.decided)
        case .crash(let i):
            nodes[i].alive = false
        case .start(let i, let height):
            guard nodes[i].alive else { return }
            drive(i, .start(height: height, now: now))
        case .tick(let i):
            guard nodes[i].alive else { return }
            drive(i, .retransmit)
            queue.push(now + scenario.tickInterval, .tick(node: i))
        case .timeout(let i, let h, let r, let s):
            guard nodes[i].alive else { return }
            drive(i, .timeout(height: h, round: r, step: s))
        case .deliver(let to, let from, let message):
            guard nodes[to].alive else { return }
            result.messagesDelivered += 1
            deliver(to: to, from: from, message)
        }
    }

    mutating func deliver(to i: Int, from: Int, _ message: SimMessage) {
        let height = nodes[i].core.height
        switch message {
        case .syncRequest(let h):
            if let (block, certificate) = nodes[i].store[h] { send(from: i, to: from, .decision(block, certificate)) }
        case .decision(let block, let certificate):
            if certificate.height == height {
                drive(i, .decidedElsewhere(block, certificate))
            } else if certificate.height > height {
                requestSync(i, from: from)
            }
        case .proposal(let signed, let block):
            if signed.proposal.height > height { requestSync(i, from: from) }
            drive(i, .proposalReceived(signed, block))
        case .vote(let vote):
            if vote.height > height { requestSync(i, from: from) }
            drive(i, .voteReceived(vote))
        }
    }

    /// The host noticed a peer ahead: ask it for the decision of our height (rate-limited).
    mutating func requestSync(_ i: Int, from peer: Int) {
        if let last = nodes[i].lastSyncRequest, now < last + 200 { return }
        nodes[i].lastSyncRequest = now
        send(from: i, to: peer, .syncRequest(height: nodes[i].core.height))
    }

    mutating func drive(_ i: Int, _ event: SimCore.Event) {
        actions.removeAll(keepingCapacity: true)
        nodes[i].core.handle(event, into: &actions)
        let batch = actions
        if i == traceNode {
            let c = nodes[i].core
            print("t=\(now) node \(i) h\(c.height) r\(c.round) \(c.step): \(Self.summary(event))")
            for a in batch { print("    -> \(Self.summary(a))") }
        }
        for action in batch { perform(i, action) }
    }

    mutating func perform(_ i: Int, _ action: SimCore.Action) {
        switch action {
        case .broadcastProposal(let signed, let block):
            if isByzantine(i) {
                byzantinePropose(i, signed, block)
            } else {
                broadcast(from: i, .proposal(signed, block))
            }
        case .broadcastVote(let vote):
            if isByzantine(i) { byzantineVote(i, vote) } else { broadcast(from: i, .vote(vote)) }
        case .broadcastDecision(let block, let certificate):
            broadcast(from: i, .decision(block, certificate))
        case .scheduleTimeout(let h, let r, let s, let ms):
            queue.push(now + ms, .timeout(node: i, height: h, round: r, step: s))
        case .decide(let block, let certificate):
            recordDecision(i, block, certificate)
            queue.push(now, .start(node: i, height: certificate.height + 1))
        case .evidence(let a, let b):
            checkEvidence(reporter: i, a, b)
        }
    }

    static func short(_ h: Bytes32) -> String { h == .zero ? "nil" : String(h.w0 >> 48, radix: 16) }

    static func summary(_ e: SimCore.Event) -> String {
        switch e {
        case .start(let h, _, _): return "start \(h)"
        case .proposalReceived(let s, _):
            let p = s.proposal
            return "proposal r\(p.round) vr\(p.validRound.map(String.init) ?? "-") \(short(p.blockHash))"
        case .voteReceived(let v):
            return "vote h\(v.height) r\(v.round) \(v.step) \(short(v.blockHash)) from \(short(v.voter))"
        case .timeout(let h, let r, let s): return "timeout h\(h) r\(r) \(s)"
        case .decidedElsewhere(_, let c): return "decided elsewhere h\(c.height)"
        case .retransmit: return "retransmit"
        }
    }

    static func summary(_ a: SimCore.Action) -> String {
        switch a {
        case .broadcastProposal(let s, _):
            return "propose r\(s.proposal.round) vr\(s.proposal.validRound.map(String.init) ?? "-") "
                + short(s.proposal.blockHash)
        case .broadcastVote(let v): return "vote r\(v.round) \(v.step) \(short(v.blockHash))"
        case .broadcastDecision(_, let c): return "relay decision h\(c.height)"
        case .scheduleTimeout(let h, let r, let s, let ms): return "timeout h\(h) r\(r) \(s) in \(ms)"
        case .decide(_, let c): return "DECIDE h\(c.height) r\(c.round) \(short(c.blockHash))"
        case .evidence(let a, _): return "evidence against \(short(a.voter))"
        }
    }

    // MARK: Checks

    mutating func fail(_ text: String) { result.failures.append("t=\(now) \(text)") }

    mutating func recordDecision(_ i: Int, _ block: SimBlock, _ certificate: CommitCertificate) {
        result.decisions += 1
        result.maxRound = max(result.maxRound, certificate.round)
        let h = certificate.height
        if block.hash != certificate.blockHash { fail("node \(i) decided a block whose hash its certificate lacks") }
        do {
            try certificate.verify(
                committee: committee, chainID: Simulation.chainID, genesis: Simulation.genesis, blockHash: block.hash)
        } catch {
            fail("node \(i) decision at height \(h) carries a certificate that does not verify: \(error)")
        }
        nodes[i].store[h] = (block, certificate)
        nodes[i].decided += 1
        guard !isByzantine(i) else { return }
        if !block.valid || block.height != h { fail("honest node \(i) decided an invalid block at height \(h)") }
        if let first = decidedAt[h] {
            if first != block.hash { fail("SAFETY: two different blocks decided at height \(h) (node \(i))") }
        } else {
            decidedAt[h] = block.hash
        }
    }

    mutating func checkEvidence(reporter: Int, _ a: Vote, _ b: Vote) {
        result.evidence += 1
        let same = a.voter == b.voter && a.height == b.height && a.round == b.round && a.step == b.step
        guard same, a.blockHash != b.blockHash, a.verifySignature(genesis: Simulation.genesis),
            b.verifySignature(genesis: Simulation.genesis)
        else {
            return fail("node \(reporter) reported evidence that is not a valid double sign")
        }
        guard let who = committee.index(of: a.voter), isByzantine(who) else {
            return fail("node \(reporter) reported an honest member for double signing")
        }
    }

    // MARK: Network

    func partitioned(_ a: Int, _ b: Int) -> Bool {
        guard let p = scenario.partition, now >= p.from, now < p.until else { return false }
        return p.side[a] != p.side[b]
    }

    mutating func send(from: Int, to: Int, _ message: SimMessage) {
        let stable = scenario.gst.map { now >= $0 } ?? false
        if !stable {
            if rng.chance(scenario.dropRate) || partitioned(from, to) { return }
        }
        let bound = stable ? scenario.maxLatencyAfter : scenario.maxLatencyBefore
        queue.push(now + rng.inRange(1...bound), .deliver(to: to, from: from, message))
        if rng.chance(scenario.duplicateRate) {
            queue.push(now + rng.inRange(1...bound), .deliver(to: to, from: from, message))
        }
    }

    mutating func broadcast(from i: Int, _ message: SimMessage) {
        for peer in nodes.indices where peer != i { send(from: i, to: peer, message) }
    }

    // MARK: Byzantine behaviour

    /// The coalition shows one block to one side of the network and another to the other side; a third of the
    /// alternatives are invalid blocks.
    mutating func byzantinePropose(_ i: Int, _ signed: SignedProposal, _ block: SimBlock) {
        let p = signed.proposal
        let alt = SimBlock(
            height: p.height, round: p.round, proposer: UInt16(i), salt: rng.next() | 1, valid: !rng.chance(0.3))
        var altProposal = p
        altProposal.blockHash = alt.hash
        let altSigned = SignedProposal(signing: altProposal, with: SimKeys.keys[i])
        coalitionAlternative[p.height, default: [:]][p.round] = alt.hash
        for peer in nodes.indices where peer != i {
            let real = scenario.byzantineSplit[peer]
            send(from: i, to: peer, real ? .proposal(signed, block) : .proposal(altSigned, alt))
            if rng.chance(0.15) { send(from: i, to: peer, real ? .proposal(altSigned, alt) : .proposal(signed, block)) }
        }
    }

    mutating func byzantineVote(_ i: Int, _ vote: Vote) {
        var altHash = coalitionAlternative[vote.height]?[vote.round] ?? .zero
        if altHash == vote.blockHash {
            altHash =
                vote.blockHash == .zero ? SimBlock.domain.hash(vote.signingHash(genesis: Simulation.genesis)) : .zero
        }
        var alt = vote
        alt.blockHash = altHash
        alt.signature = SimKeys.keys[i].signSchnorr(alt.signingHash(genesis: Simulation.genesis), auxRandom: .zero)
        for peer in nodes.indices where peer != i {
            let real = scenario.byzantineSplit[peer]
            send(from: i, to: peer, .vote(real ? vote : alt))
            if rng.chance(0.15) { send(from: i, to: peer, .vote(real ? alt : vote)) }
        }
    }
}
