import AmarsCodec
import AmarsCrypto
import Chain
import Consensus
import Foundation
import Ledger
import Logging
import Network
import Synchronization

/// A block as a consensus value. The hash is computed once: the core asks for it on every vote it counts.
/// `block` nil is the "nothing to propose" value (hash zero), which the core never proposes.
public struct BlockValue: ConsensusValue, Sendable {
    public let block: Block?
    public let hash: Bytes32

    public init(_ block: Block) {
        self.block = block
        self.hash = block.hash
    }

    static let none = BlockValue()

    private init() {
        block = nil
        hash = .zero
    }
}

/// What the consensus core asks of the chain: a block to propose (built from the mempool on the committed head)
/// and whether a proposed block is valid (re-executed on the committed head; the execution is kept so that the
/// commit does not run it again).
public struct ChainApplication: ConsensusApplication, Sendable {
    let chain: ChainNode
    let logger: Logger

    public func proposal(height: UInt64, round: UInt32) -> BlockValue {
        guard chain.head.height &+ 1 == height else { return .none }
        // The timestamp is informative (headers only require it not to go backwards): wall clock is fine here.
        let millis = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        do {
            return BlockValue(try chain.proposeBlock(timestamp: millis, round: round))
        } catch {
            logger.error("cannot build a proposal", metadata: ["height": "\(height)", "error": "\(error)"])
            return .none
        }
    }

    /// How far a proposal's timestamp may run ahead of this node's clock: the clock skew devices allow too
    /// (``SkippingOptions/maxClockDrift``). A checkpoint dated in the future would keep devices' trust fresh past
    /// its real age, so members do not prepare one.
    public static let maxTimestampDrift: UInt64 = 10_000

    public func isTimely(_ value: BlockValue, height: UInt64) -> Bool {
        guard let block = value.block else { return false }
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        guard block.header.timestamp <= now &+ Self.maxTimestampDrift else {
            logger.notice(
                "not preparing a block dated in the future",
                metadata: ["height": "\(height)", "aheadMillis": "\(block.header.timestamp - now)"])
            return false
        }
        return true
    }

    public func isValid(_ value: BlockValue, height: UInt64) -> Bool {
        guard let block = value.block, block.header.height == height else { return false }
        do {
            try chain.validateBlock(block)
            return true
        } catch {
            logger.notice("refused a proposed block", metadata: ["height": "\(height)", "error": "\(error)"])
            return false
        }
    }
}

/// Runs one committee member: the sans-I/O ``ConsensusCore`` wired to the chain, the peer network and a clock.
///
/// Everything that touches the core happens on this actor, one event at a time: network frames (taken from
/// `PeerManager.events` by one task, so the network's bounded event buffer is the input queue), timeouts (each a
/// sleeping task that re-enters the actor) and the gossip timer. The core never sees a socket or a clock; the
/// driver never decides anything about safety — it only moves bytes and time.
///
/// What the driver does around the core (the same roles as the host in Tests/ConsensusTests' simulation):
/// - **Decide → commit.** A decided block is committed with its certificate (`ChainNode.commitBlock` checks the
///   certificate against its epoch's committee), the next height's committee is installed (it changes at epoch
///   boundaries) and the next height starts, no sooner than `blockInterval` after the previous one started.
/// - **Relay.** The network never forwards; a proposal, vote, decision or transaction that the core or the chain
///   accepted is re-broadcast to every other peer, so a partial mesh still floods.
/// - **Catch-up.** Every node announces `status {height, hash}` on the gossip timer and on connect. A node that
///   sees a peer ahead asks it for the missing finalized blocks (one request in flight, 64 blocks at most) and
///   commits them: `commitBlock` verifies each certificate and re-executes each block, so a peer's answer is
///   never trusted. Then the core jumps to the new head.
/// - **Blame.** An undecodable frame or a bad signature is reported to the network, which bans repeat offenders.
/// - **No double sign across restarts.** Own votes go through a ``VoteJournal`` (fsynced) before they are sent.
///
/// Transactions: every transaction the local mempool admits is broadcast through `ChainNode.onAdmit`, whether it
/// came in over HTTP, CoAP, MQTT or from a peer, so every member's mempool holds it before its turn to propose.
/// A peer's transaction is relayed only when the mempool admitted it (a duplicate, stale or refused one stops
/// here, so a flood dies out), and never back to the peer it came from; the network's gossip filter drops the
/// echoes that still cross.
///
/// Status: a snapshot of the core's position, the committee, connected peers and counters is published after
/// every event and refreshed on the gossip timer; ``status()`` reads it without entering the actor, so the HTTP
/// API (`GET /v1/consensus`) never waits behind consensus work.
public actor ConsensusDriver {
    public typealias Core = ConsensusCore<ChainApplication>

    /// Tuning of the driver; nothing here affects safety.
    public struct Settings: Sendable {
        public var timing: NodeConfig.Timing
        /// File of the vote journal (see ``VoteJournal``).
        public var journalPath: String
        /// Keys allowed to connect besides the committee members (configured peers that are not validators).
        public var extraAllowedKeys: Set<Bytes32>
        /// A sync request unanswered for this long is given up and may go to another peer.
        public var syncTimeoutMilliseconds: UInt64 = 2_000
        /// Tests only (`AMARSD_TEST_EQUIVOCATE=1`): after each of its prepare votes this node signs and sends a
        /// second one for another block, so a devnet can prove that double signs are reported and slashed.
        public var equivocate = false
        /// Where step durations and block commit times are recorded (nil: nowhere).
        public var metrics: GatewayMetrics?

        public init(timing: NodeConfig.Timing, journalPath: String, extraAllowedKeys: Set<Bytes32> = []) {
            self.timing = timing
            self.journalPath = journalPath
            self.extraAllowedKeys = extraAllowedKeys
        }
    }

    public enum DriverError: Error, CustomStringConvertible {
        case noCommittee(epoch: UInt64)
        case journal(String)

        public var description: String {
            switch self {
            case .noCommittee(let e): "no committee known for epoch \(e)"
            case .journal(let s): s
            }
        }
    }

    private let chain: ChainNode
    private let network: PeerManager
    private let settings: Settings
    private let logger: Logger
    private let ownKey: Bytes32
    /// Re-signs journaled votes for the core after a restart (BIP340 with zero auxiliary randomness, as the core
    /// signs, gives the same signature).
    private let signingKey: PrivateKey
    private let onCommit: @Sendable (BlockHeader) -> Void
    private var core: Core
    private let journal: VoteJournal
    private let clock = ContinuousClock()
    private var tasks: [Task<Void, Never>] = []
    private var stopped = false
    /// Batches admitted transactions for gossip (nil until the driver is set up).
    private var gossip: TransactionGossip?
    private var heightStartedAt: ContinuousClock.Instant
    /// The step the core was in at the last publish, and since when: its duration is recorded when it changes.
    private var stepEntered: (height: UInt64, round: UInt32, step: ConsensusStep, at: ContinuousClock.Instant)?
    /// The height waiting for its paced start after a decision.
    private var pendingStart: UInt64?
    /// The one block request in flight.
    private var syncRequest: (peer: Bytes32, from: UInt64, at: ContinuousClock.Instant)?
    /// Last head height each peer announced.
    private var peerHeights: [Bytes32: UInt64] = [:]
    /// The last height committed here (decided by this core or synced from a peer), and the round of its
    /// certificate; nil until the first commit since start (the API then reports the head).
    private var lastDecided: (height: UInt64, round: UInt32)?
    /// Peers and network counters as of the last refresh (the network answers those asynchronously).
    private var connectedPeers: Set<Bytes32> = []
    private var networkMetrics = NetworkMetrics()
    /// What ``status()`` returns; written only by the actor.
    private let board: StatusBoard
    /// Voters this node has reported for double signing: one report each is enough to eject them, and every
    /// further one would cost a fee for nothing while the offender stays in the epoch's committee.
    private var reported: Set<Bytes32> = []
    /// Pool attestations of the next checkpoint that arrived before this node committed it, by voter (so a
    /// flood cannot grow it past one per key, and only keys of the pool can fill it; see
    /// ``attestation(_:frame:from:)``).
    private var earlyAttestations: [Bytes32: (vote: Vote, frame: Frame, peer: Bytes32)] = [:]
    /// The highest checkpoint this node has attested (or found itself outside the pool of).
    private var attestedHeight: UInt64 = 0

    /// The peer whose transaction is being submitted, so that the admit hook (which runs inside
    /// `ChainNode.submit`, on the admission queue) relays it to everyone but that peer. Nil for local submissions.
    @TaskLocal private static var relayOrigin: Bytes32?

    /// `key` must be the chain's validator key (it signs proposals and votes; it is also the network identity).
    public init(
        chain: ChainNode, network: PeerManager, key: PrivateKey, settings: Settings, logger: Logger,
        onCommit: @escaping @Sendable (BlockHeader) -> Void = { _ in }
    ) throws(DriverError) {
        self.chain = chain
        self.network = network
        self.settings = settings
        self.logger = logger
        self.ownKey = key.xOnlyPublicKey.bytes
        self.signingKey = key
        self.onCommit = onCommit
        let next = chain.head.height + 1
        let epoch = Self.epoch(of: next, length: chain.genesis.epochLength)
        guard let committee = chain.committee(epoch: epoch) else { throw .noCommittee(epoch: epoch) }
        self.core = Core(
            chainID: chain.genesis.chainID, genesis: chain.genesisBlockHash, committee: committee, privateKey: key,
            app: ChainApplication(chain: chain, logger: logger),
            config: ConsensusConfig(timeouts: settings.timing.schedule))
        do { journal = try VoteJournal(path: settings.journalPath) } catch { throw .journal("\(error)") }
        heightStartedAt = clock.now
        board = StatusBoard(
            ConsensusStatus(
                committee: committee, height: next, round: 0, step: .propose, started: false, lastDecided: nil,
                connectedPeers: [], network: NetworkMetrics(), consensusDrops: []))
        // Set last, once nothing can fail: transactions admitted from now on are gossiped. Before the network
        // starts a broadcast reaches nobody, which is what a node with no peers should do anyway.
        let gossip = TransactionGossip(network: network, logger: logger)
        self.gossip = gossip
        chain.onAdmit = { tx in gossip.add(tx.encoded, except: Self.relayOrigin) }
    }

    static func epoch(of height: UInt64, length: UInt64) -> UInt64 { height == 0 ? 0 : (height - 1) / length }

    /// Keys the network accepts: the current (and, once drawn, the next) committee plus configured extras.
    private func allowedKeys() -> Set<Bytes32> {
        var keys = settings.extraAllowedKeys
        for m in chain.genesis.validators { keys.insert(m.key) }
        for m in core.committee.members { keys.insert(m.key) }
        if let next = chain.committee(epoch: core.committee.epoch + 1) {
            for m in next.members { keys.insert(m.key) }
        }
        return keys
    }

    /// Starts consensus at the head + 1 and the tasks that feed the actor. Call once, after the network started.
    public func start() {
        let events = network.events
        tasks.append(
            Task { [weak self] in
                for await event in events {
                    guard let self else { return }
                    await self.receive(event)
                }
            })
        let period = Duration.milliseconds(Int64(settings.timing.retransmitInterval))
        tasks.append(
            Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: period)
                    guard let self else { return }
                    await self.tick()
                }
            })
        network.updateAllowedKeys(allowedKeys())
        startHeight(chain.head.height + 1)
    }

    /// Stops feeding the core; in-flight timeouts find the driver stopped and do nothing.
    public func stop() {
        stopped = true
        chain.onAdmit = nil
        admission.sync {}
        gossip?.stop()
        for t in tasks { t.cancel() }
        tasks = []
    }

    /// Height and round the core is at, for logs and tests.
    public var position: (height: UInt64, round: UInt32) { (core.height, core.round) }

    /// The last published snapshot, for the HTTP API. Nonisolated: it reads a locked copy, never the actor.
    public nonisolated func status() -> ConsensusStatus { board.read() }

    private func publish() {
        if let metrics = settings.metrics {
            let now = clock.now
            if let entered = stepEntered {
                if (entered.height, entered.round, entered.step) != (core.height, core.round, core.step) {
                    metrics.timer("amars_consensus_step_duration_seconds", [("step", "\(entered.step)")])
                        .recordInterval(since: entered.at, now: now)
                    stepEntered = (core.height, core.round, core.step, now)
                }
            } else {
                stepEntered = (core.height, core.round, core.step, now)
            }
        }
        let drops = Consensus.DropReason.allCases.compactMap { reason -> (reason: String, count: UInt64)? in
            let n = core.drops[reason]
            return n > 0 ? ("\(reason)", n) : nil
        }
        board.write(
            ConsensusStatus(
                committee: core.committee, height: core.height, round: core.round, step: core.step,
                started: core.isStarted, lastDecided: lastDecided, connectedPeers: connectedPeers,
                network: networkMetrics, consensusDrops: drops))
    }

    /// Asks the network for its peers and counters (it answers on its own event loop) and publishes them.
    private func refreshNetworkStatus() {
        let network = self.network
        Task { [weak self] in
            let peers = await network.connectedPeers()
            let metrics = await network.metrics()
            await self?.networkStatus(peers: peers, metrics: metrics)
        }
    }

    private func networkStatus(peers: Set<Bytes32>, metrics: NetworkMetrics) {
        connectedPeers = peers
        networkMetrics = metrics
        publish()
    }

    // MARK: core

    private func drive(_ event: Core.Event) {
        guard !stopped else { return }
        let actions = core.handle(event)
        perform(actions)
        publish()
    }

    private func perform(_ actions: [Core.Action]) {
        for action in actions {
            switch action {
            case .broadcastProposal(let signed, let value):
                guard let block = value.block else { continue }
                broadcast(.proposal(signed, block))
            case .broadcastVote(let vote):
                if vote.voter == ownKey {
                    guard journal.permits(vote) else {
                        logger.warning(
                            "not sending a vote that conflicts with one signed before a restart",
                            metadata: ["height": "\(vote.height)", "round": "\(vote.round)"])
                        continue
                    }
                    do { try journal.record(vote) } catch {
                        logger.error("vote not sent: \(error)")
                        continue
                    }
                }
                broadcast(.vote(vote))
                if settings.equivocate, vote.voter == ownKey, vote.step == .prepare { broadcast(.vote(twin(of: vote))) }
            case .broadcastDecision(let value, let certificate):
                guard let block = value.block else { continue }
                broadcast(.decision(FinalizedBlock(block: block, certificate: certificate)))
            case .scheduleTimeout(let height, let round, let step, let ms):
                let delay = Duration.milliseconds(Int64(min(ms, 3_600_000)))
                Task { [weak self] in
                    try? await Task.sleep(for: delay)
                    await self?.timeout(height: height, round: round, step: step)
                }
            case .decide(let value, let certificate):
                commitDecided(value, certificate)
            case .evidence(let a, let b):
                logger.warning(
                    "double sign seen",
                    metadata: [
                        "voter": "\(Hex.encode(a.voter.bytes))", "height": "\(a.height)", "round": "\(a.round)",
                        "first": "\(Hex.encode(a.encoded))", "second": "\(Hex.encode(b.encoded))",
                    ])
                report(a, b)
            }
        }
    }

    /// Turns a double sign this node saw into an evidence transaction of its own, paid from its operator
    /// account (which the chain rewards with half the offender's self-stake), and gossips it like any other.
    /// Every node that saw it may report it; the chain takes the first and refuses the rest as already used.
    private func report(_ a: Vote, _ b: Vote) {
        let (first, second) = a.blockHash < b.blockHash ? (a, b) : (b, a)
        let evidence = DoubleSignEvidence(first: first, second: second)
        guard evidence.isConflicting, first.voter != ownKey, !reported.contains(first.voter) else { return }
        if chain.candidates().contains(where: { $0.state.operatorKey == first.voter && $0.state.ejected }) { return }
        let sender = Address(publicKey: signingKey.xOnlyPublicKey)
        let account = chain.account(sender)
        let doubled = chain.nextBaseFee.multipliedReportingOverflow(by: 2)
        let body = TransactionBody(
            genesis: chain.genesisBlockHash, sender: ownKey, nonce: account.state.nonce &+ UInt64(account.pending),
            maxFeePerUnit: doubled.overflow ? .max : doubled.partialValue &+ 1, tipPerUnit: 1,
            payload: .doubleSignEvidence(evidence))
        var random = SystemRandomNumberGenerator()
        let aux = Bytes32(w0: random.next(), w1: random.next(), w2: random.next(), w3: random.next())
        let metadata: Logger.Metadata = ["voter": "\(Hex.encode(first.voter.bytes))", "height": "\(first.height)"]
        do {
            let id = try chain.submit(SignedTransaction(body: body, signer: signingKey, auxRandom: aux))
            reported.insert(first.voter)
            logger.warning(
                "double sign reported", metadata: metadata.merging(["tx": "\(Hex.encode(id.bytes))"]) { a, _ in a })
        } catch {
            logger.warning("double sign not reported: \(error)", metadata: metadata)
        }
    }

    /// A second prepare vote for another block at the same height and round (``Settings/equivocate``).
    private func twin(of vote: Vote) -> Vote {
        Vote(
            signing: signingKey, chainID: vote.chainID, genesis: chain.genesisBlockHash, height: vote.height,
            round: vote.round, step: vote.step, blockHash: Domain.header.hash(vote.blockHash))
    }

    private func timeout(height: UInt64, round: UInt32, step: ConsensusStep) {
        drive(.timeout(height: height, round: round, step: step))
    }

    private func commitDecided(_ value: BlockValue, _ certificate: CommitCertificate) {
        guard let block = value.block else { return }
        let head = chain.head.height
        if block.header.height <= head { return }  // already committed through sync
        do {
            let started = clock.now
            try chain.commitBlock(FinalizedBlock(block: block, certificate: certificate))
            settings.metrics?.timer("amars_block_commit_duration_seconds").recordInterval(
                since: started, now: clock.now)
        } catch {
            // Only a chain that disagrees with its own validity check gets here; peers' blocks may still sync.
            logger.error(
                "cannot commit a decided block",
                metadata: ["height": "\(block.header.height)", "error": "\(error)"])
            return
        }
        committed(paced: true)
    }

    /// After the head moved (decision or sync): announce it, install the next height's committee, start it.
    private func committed(paced: Bool) {
        let finalized = chain.finalizedHead
        let head = finalized.block.header
        let previous = lastDecided?.height
        lastDecided = (head.height, finalized.certificate.round)
        attestCheckpoints(upTo: head.height, after: previous)
        onCommit(head)
        logger.debug("committed", metadata: ["height": "\(head.height)", "round": "\(core.round)"])
        let next = head.height + 1
        let epoch = Self.epoch(of: next, length: chain.genesis.epochLength)
        if epoch != core.committee.epoch {
            if let committee = chain.committee(epoch: epoch) {
                core.setCommittee(committee)
                network.updateAllowedKeys(allowedKeys())
                logger.info("new committee", metadata: ["epoch": "\(epoch)", "members": "\(committee.members.count)"])
            } else {
                logger.error("no committee for epoch \(epoch); staying with the old one")
            }
        }
        let elapsed = clock.now - heightStartedAt
        let interval = Duration.milliseconds(Int64(settings.timing.blockInterval))
        pendingStart = next
        if !paced || elapsed >= interval {
            // Through a task even with no delay, so the actions of the batch that decided finish first.
            Task { [weak self] in await self?.startHeight(next) }
        } else {
            let wait = interval - elapsed
            Task { [weak self] in
                try? await Task.sleep(for: wait)
                await self?.startHeight(next)
            }
        }
    }

    private func startHeight(_ height: UInt64) {
        guard !stopped, height == chain.head.height + 1 else { return }
        if core.isStarted && core.height >= height { return }
        if pendingStart == height { pendingStart = nil }
        heightStartedAt = clock.now
        drive(
            .start(
                height: height, now: UInt64(max(0, Date().timeIntervalSince1970 * 1000)),
                signedBefore: journaledVotes(height: height)))
    }

    /// The votes the journal says this node sent at `height` (before a restart), signed again for the core.
    private func journaledVotes(height: UInt64) -> [Vote] {
        let chainID = chain.genesis.chainID
        let genesis = chain.genesisBlockHash
        return journal.entries.compactMap { e in
            guard e.height == height, let step = VoteStep(rawValue: e.step) else { return nil }
            return Vote(
                signing: signingKey, chainID: chainID, genesis: genesis, height: e.height, round: e.round, step: step,
                blockHash: e.hash)
        }
    }

    // MARK: pool attestations

    /// Signs and gossips this node's attestation of each checkpoint committed since `after` (nil: only the
    /// head's), if its key is in that epoch's pool, then checks the attestations that came early for them.
    private func attestCheckpoints(upTo head: UInt64, after previous: UInt64?) {
        let length = chain.genesis.epochLength
        let first = max((previous ?? head &- 1) &+ 1, attestedHeight &+ 1, length)
        guard first <= head else { return }
        var height = (first + length - 1) / length * length
        while height <= head {
            do {
                if let vote = try chain.attest(height: height, key: signingKey) { broadcast(.vote(vote)) }
            } catch {
                logger.error("cannot attest a checkpoint", metadata: ["height": "\(height)", "error": "\(error)"])
            }
            attestedHeight = height
            height += length
        }
        let early = earlyAttestations
        earlyAttestations = [:]
        for (_, e) in early { attestation(e.vote, frame: e.frame, from: e.peer) }
    }

    /// A peer's attestation: kept and relayed when new and valid, held when it is for the next checkpoint (this
    /// node has not committed it yet), dropped otherwise; a bad signature counts against the sender.
    private func attestation(_ vote: Vote, frame: Frame, from peer: Bytes32) {
        let outcome: ChainNode.AttestationOutcome
        do { outcome = try chain.addAttestation(vote) } catch {
            logger.error("cannot keep an attestation", metadata: ["error": "\(error)"])
            return
        }
        switch outcome {
        case .stored: relay(frame, from: peer)
        case .ahead:
            // Only the next checkpoint, and only keys of the pool that will attest it (the roster of the current
            // epoch is known): at most one entry per pool member.
            let length = chain.genesis.epochLength
            let head = chain.head.height
            guard vote.height <= head + length,
                chain.poolRoster(epoch: Self.epoch(of: vote.height, length: length))?.index(of: vote.voter) != nil
            else { return }
            earlyAttestations[vote.voter] = (vote, frame, peer)
        case .badSignature: network.report(peer: peer, reason: .invalidMessage)
        case .known, .notApplicable, .notInPool: break
        }
    }

    // MARK: network

    private func broadcast(_ message: PeerMessage, except: Bytes32? = nil) {
        do { try network.broadcast(message.frame, except: except) } catch {
            logger.error("cannot broadcast: \(error)")
        }
    }

    private func send(_ message: PeerMessage, to peer: Bytes32) {
        do { try network.send(to: peer, message.frame) } catch { logger.error("cannot send: \(error)") }
    }

    private func tick() {
        guard !stopped else { return }
        if let r = syncRequest, clock.now - r.at > .milliseconds(Int64(settings.syncTimeoutMilliseconds)) {
            syncRequest = nil
        }
        if core.isStarted { drive(.retransmit) }
        let head = chain.head
        broadcast(.status(height: head.height, hash: head.hash))
        refreshNetworkStatus()
    }

    func receive(_ event: NetworkEvent) {
        guard !stopped else { return }
        switch event {
        case .peerConnected(let peer):
            let head = chain.head
            send(.status(height: head.height, hash: head.hash), to: peer)
            connectedPeers.insert(peer)
            publish()
        case .peerDisconnected(let peer):
            peerHeights[peer] = nil
            if syncRequest?.peer == peer { syncRequest = nil }
            connectedPeers.remove(peer)
            publish()
        case .frame(let frame, let peer):
            let message: PeerMessage
            do { message = try PeerMessage(frame: frame) } catch {
                network.report(peer: peer, reason: .invalidMessage)
                return
            }
            handle(message, from: peer, frame: frame)
        }
    }

    private func handle(_ message: PeerMessage, from peer: Bytes32, frame: Frame) {
        switch message {
        case .proposal(let signed, let block):
            let height = signed.proposal.height
            feed(.proposalReceived(signed, BlockValue(block)), from: peer, frame: frame)
            if height > chain.head.height + 1 { noteAhead(peer, height: height - 1) }
        case .vote(let vote) where vote.step == .checkpoint:
            attestation(vote, frame: frame, from: peer)
        case .vote(let vote):
            feed(.voteReceived(vote), from: peer, frame: frame)
            if vote.height > chain.head.height + 1 { noteAhead(peer, height: vote.height - 1) }
        case .decision(let finalized):
            let height = finalized.block.header.height
            if height == chain.head.height + 1 {
                if pendingStart == height { startHeight(height) }
                if core.isStarted && core.height == height && core.decision == nil {
                    let value = BlockValue(finalized.block)
                    feed(.decidedElsewhere(value, finalized.certificate), from: peer, frame: frame)
                }
            } else if height > chain.head.height + 1 {
                noteAhead(peer, height: height)
            }
        case .transaction(let bytes):
            queueGossiped([bytes], from: peer)
        case .transactions(let list):
            queueGossiped(list, from: peer)
        case .status(let height, _):
            peerHeights[peer] = height
            if height > chain.head.height { requestBlocks(from: peer) }
        case .blockRequest(let from, let count):
            serve(from: from, count: count, to: peer)
        case .blockResponse(let blocks):
            apply(blocks, from: peer)
        }
    }

    /// Gossiped transactions are admitted on their own queue, not on this actor: checking a frame of them takes
    /// milliseconds, and votes and proposals queued behind a stream of such frames made each height take two to
    /// three block intervals under load. The backlog is bounded: past it a frame is dropped, which loses nothing,
    /// since a transaction a member did not gossip in time reaches every node in the proposal that carries it.
    private let admission = DispatchQueue(label: "amars.gossip-admission")
    private let admissionBacklog = Atomic<Int>(0)
    static let admissionBacklogLimit = 256

    private nonisolated func queueGossiped(_ list: [[UInt8]], from peer: Bytes32) {
        guard admissionBacklog.add(1, ordering: .relaxed).newValue <= Self.admissionBacklogLimit else {
            admissionBacklog.subtract(1, ordering: .relaxed)
            return
        }
        admission.async { [self] in
            admitGossiped(list, from: peer)
            admissionBacklog.subtract(1, ordering: .relaxed)
        }
    }

    /// Admitted → the admit hook relays each to every peer but this one; refused → it goes no further. A batch
    /// with a transaction only a lying peer would send (malformed, badly signed, for another chain) is reported
    /// once; stale nonces, duplicates and a full mempool come from honest peers too.
    private nonisolated func admitGossiped(_ list: [[UInt8]], from peer: Bytes32) {
        let chain = self.chain
        var invalid = false
        Self.$relayOrigin.withValue(peer) {
            for case .failure(let error) in chain.submit(batch: list) {
                switch error {
                case .malformed, .badSignature, .invalidSenderKey, .wrongChain: invalid = true
                default: break
                }
            }
        }
        if invalid { network.report(peer: peer, reason: .invalidMessage) }
    }

    /// Hands a consensus message to the core; relays it when the core kept it (no drop counted), blames the sender
    /// when the core found a bad signature or certificate.
    private func feed(_ event: Core.Event, from peer: Bytes32, frame: Frame) {
        let before = core.drops
        drive(event)
        let after = core.drops
        if after == before {
            relay(frame, from: peer)
            return
        }
        let blamed: [Consensus.DropReason] = [.badSignature, .badCertificate, .valueMismatch, .wrongProposer]
        if blamed.contains(where: { after[$0] > before[$0] }) {
            network.report(peer: peer, reason: .invalidMessage)
        }
    }

    private func relay(_ frame: Frame, from peer: Bytes32) {
        do { try network.broadcast(frame, except: peer) } catch { logger.error("cannot relay: \(error)") }
    }

    // MARK: catch-up

    private func noteAhead(_ peer: Bytes32, height: UInt64) {
        peerHeights[peer] = max(peerHeights[peer] ?? 0, height)
        requestBlocks(from: peer)
    }

    private func requestBlocks(from peer: Bytes32) {
        guard syncRequest == nil, let theirs = peerHeights[peer] else { return }
        let from = chain.head.height + 1
        guard theirs >= from else { return }
        let count = UInt32(min(UInt64(PeerMessage.Limits.blocksPerRequest), theirs - from + 1))
        syncRequest = (peer, from, clock.now)
        logger.debug("requesting blocks", metadata: ["from": "\(from)", "count": "\(count)"])
        send(.blockRequest(from: from, count: count), to: peer)
    }

    private func serve(from: UInt64, count: UInt32, to peer: Bytes32) {
        guard from >= 1 else {
            network.report(peer: peer, reason: .uselessMessage)
            return
        }
        var blocks: [FinalizedBlock] = []
        var size = 16
        let head = chain.head.height
        var h = from
        while h <= head && blocks.count < Int(count) {
            guard let stored = try? chain.block(at: h) else { break }
            let bytes = stored.finalized.encoded.count
            if size + bytes > PeerMessage.Limits.blockResponseBytes { break }
            size += bytes
            blocks.append(stored.finalized)
            h += 1
        }
        send(.blockResponse(blocks), to: peer)
    }

    /// Commits the blocks of a sync answer in order. `commitBlock` checks each certificate against its epoch's
    /// committee and re-executes the block, so nothing the peer sent is trusted.
    private func apply(_ blocks: [FinalizedBlock], from peer: Bytes32) {
        guard let request = syncRequest, request.peer == peer else {
            network.report(peer: peer, reason: .uselessMessage)
            return
        }
        syncRequest = nil
        var applied = 0
        for finalized in blocks {
            let height = finalized.block.header.height
            let head = chain.head.height
            if height <= head { continue }
            guard height == head + 1 else {
                network.report(peer: peer, reason: .invalidMessage)
                break
            }
            do { try chain.commitBlock(finalized) } catch {
                logger.warning("refused a synced block", metadata: ["height": "\(height)", "error": "\(error)"])
                network.report(peer: peer, reason: .uselessMessage)
                break
            }
            applied += 1
        }
        guard applied > 0 else { return }
        logger.info("caught up", metadata: ["blocks": "\(applied)", "head": "\(chain.head.height)"])
        committed(paced: false)
        if let theirs = peerHeights[peer], theirs > chain.head.height { requestBlocks(from: peer) }
    }
}

/// The driver's last published ``ConsensusStatus``. `@unchecked Sendable`: the one stored value is read and
/// written only under the lock; the actor writes, HTTP threads read, and neither waits on the other for long.
final class StatusBoard: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ConsensusStatus

    init(_ value: ConsensusStatus) { self.value = value }

    func read() -> ConsensusStatus {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    func write(_ new: ConsensusStatus) {
        lock.lock()
        value = new
        lock.unlock()
    }
}
