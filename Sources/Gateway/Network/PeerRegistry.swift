import AmarsCodec
import AmarsCrypto
import Logging
import NIOCore
import NIOPosix

/// Redials one configured address with backoff for as long as the manager runs.
final class Dialer {
    enum State {
        case idle
        case connecting
        /// Our connection to this address is up (handshaking or authenticated).
        case connected
        /// The address's key is connected through some other connection (it dialed us); nothing to do.
        case satisfied
        case waiting(Scheduled<Void>)
        /// The address leads to ourselves.
        case stopped
    }

    let index: Int
    let address: PeerAddress
    /// The key behind the address: configured, or learned from the first authenticated connection.
    var key: Bytes32?
    var attempt = 0
    var state = State.idle

    init(index: Int, address: PeerAddress) {
        self.index = index
        self.address = address
        self.key = address.key
    }
}

/// Everything a manager knows, confined to its one event loop.
///
/// `@unchecked Sendable` because bootstrap initializers (`@Sendable` closures) must capture it; every method runs
/// on `loop` (asserted), which is also the loop of every channel the manager owns, so no two threads ever touch
/// this state.
final class PeerRegistry: @unchecked Sendable {
    let loop: any EventLoop
    let configuration: NetworkConfiguration
    let nodeKey: PrivateKey
    let ownKey: Bytes32
    let entropy: NetworkEntropy
    let now: @Sendable () -> NIODeadline
    let logger: Logger
    let continuation: AsyncStream<NetworkEvent>.Continuation

    var metrics = NetworkMetrics()
    var allowedKeys: Set<Bytes32>
    /// Every open connection, authenticated or not.
    private var connections: [ObjectIdentifier: PeerHandler] = [:]
    /// The one accepted connection per authenticated key.
    private(set) var peers: [Bytes32: PeerHandler] = [:]
    /// Keys whose registered connection closed while another connection was still in its handshake. Two ends
    /// resolve a duplicate each on its own, so the connection one end keeps may finish its handshake here just
    /// after the other end closed the one this end had registered: if it authenticates as the same key within
    /// ``lossGrace``, the key never really left and neither event is news to the node.
    private var lost: [Bytes32: Scheduled<Void>] = [:]
    static let lossGrace: TimeAmount = .seconds(1)
    private var scores: [Bytes32: PeerScore] = [:]
    private var bans: [Bytes32: NIODeadline] = [:]
    private var gossip: GossipFilter
    private(set) var dialers: [Dialer] = []
    var serverChannel: (any Channel)?
    private(set) var isStopped = false

    init(
        loop: any EventLoop, configuration: NetworkConfiguration, nodeKey: PrivateKey, entropy: NetworkEntropy,
        now: @escaping @Sendable () -> NIODeadline, logger: Logger,
        continuation: AsyncStream<NetworkEvent>.Continuation
    ) {
        self.loop = loop
        self.configuration = configuration
        self.nodeKey = nodeKey
        self.ownKey = nodeKey.xOnlyPublicKey.bytes
        self.entropy = entropy
        self.now = now
        self.logger = logger
        self.continuation = continuation
        self.allowedKeys = configuration.handshake.allowedKeys
        self.gossip = GossipFilter(capacity: configuration.gossipCacheSize)
        self.dialers = configuration.peers.enumerated().map { Dialer(index: $0.offset, address: $0.element) }
    }

    /// Inbound connections still in their handshake, oldest first. Our own dials are not among them: an outsider
    /// can fill inbound slots, and must never stop us from reaching the committee.
    private var pendingInbound: [PeerHandler] {
        connections.values.filter { $0.direction == .inbound && !$0.isEstablished && $0.closeReason == nil }
            .sorted { $0.openedAt < $1.openedAt }
    }
    var pendingCount: Int { pendingInbound.count }
    var connectionCount: Int { connections.count }

    // MARK: Pipelines

    /// Installs framing and a `PeerHandler` on a fresh channel of this manager's loop.
    func installPipeline(on channel: any Channel, direction: ConnectionDirection) throws {
        loop.preconditionInEventLoop()
        let policy = FramePolicy(kinds: configuration.kinds)
        var parameters = configuration.handshake
        parameters.allowedKeys = allowedKeys
        let machine = HandshakeMachine(
            parameters: parameters, localKey: nodeKey, nonce: entropy.next(), auxRandom: entropy.next(),
            isInitiator: direction != .inbound)
        let handler = PeerHandler(registry: self, policy: policy, direction: direction, machine: machine)
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(FrameDecoder(policy: policy)),
            MessageToByteHandler(FrameEncoder()),
            handler,
        ])
    }

    // MARK: Connection lifecycle

    /// A connection came up. Returns a reason to refuse it at once, nil to start the handshake.
    ///
    /// Inbound handshakes are capped in total and per source address. At a cap the *oldest* pending handshake
    /// of that scope is cut, not the newcomer: an honest handshake finishes in one round trip, so the connections
    /// that have waited longest are the ones held open on purpose, and someone holding slots must out-dial every
    /// honest handshake to keep one out (the way a SYN queue sheds its oldest entries).
    func connectionOpened(_ handler: PeerHandler) -> DisconnectReason? {
        loop.preconditionInEventLoop()
        let pending = handler.direction == .inbound ? pendingInbound : []
        connections[ObjectIdentifier(handler)] = handler
        if isStopped { return .shutdown }
        guard handler.direction == .inbound else { return nil }
        let limits = configuration.limits
        let sameSource = pending.filter { $0.remoteHost == handler.remoteHost }
        if sameSource.count >= limits.maxPendingHandshakesPerSource, let oldest = sameSource.first {
            oldest.close(.tooManyPendingHandshakes)
        } else if pending.count >= limits.maxPendingHandshakes, let oldest = pending.first {
            oldest.close(.tooManyPendingHandshakes)
        }
        return nil
    }

    enum Admission {
        case refuse(DisconnectReason)
        /// `replacing`: the key was already connected through a connection now closed as stale or losing.
        case accept(replacing: Bool)
    }

    /// The peer proved `key`: admit the connection or say why not (then `peerEstablished` follows an admission).
    /// Resolves duplicates: of two connections between the same pair of keys, both ends keep the one initiated by
    /// the lower key, so they agree without talking; a newer connection in the same direction replaces the older,
    /// which must be stale (the peer would not dial again while its connection worked).
    func authenticated(_ handler: PeerHandler, key: Bytes32) -> Admission {
        loop.preconditionInEventLoop()
        if isStopped { return .refuse(.shutdown) }
        if !allowedKeys.contains(key) { return .refuse(.handshake(.unknownKey)) }
        if isBanned(key) { return .refuse(.banned) }
        if let existing = peers[key], existing !== handler {
            let keepNew =
                initiator(of: existing, key: key) == initiator(of: handler, key: key)
                || initiator(of: handler, key: key) == min(ownKey, key)
            guard keepNew else { return .refuse(.duplicateConnection) }
            peers[key] = handler
            existing.close(.duplicateConnection)
            return .accept(replacing: true)
        }
        if peers.count >= configuration.limits.maxPeers { return .refuse(.tooManyPeers) }
        peers[key] = handler
        return .accept(replacing: false)
    }

    private func initiator(of handler: PeerHandler, key: Bytes32) -> Bytes32 {
        handler.direction == .inbound ? key : ownKey
    }

    /// Called once the handler switched to the authenticated phase.
    func peerEstablished(_ handler: PeerHandler, key: Bytes32, replacing: Bool) {
        metrics.handshakesCompleted += 1
        if case .outbound(let index) = handler.direction, dialers.indices.contains(index) {
            dialers[index].key = key
            dialers[index].attempt = 0
        }
        logger.debug("peer authenticated", metadata: ["peer": "\(hex(key))", "remote": "\(handler.remoteDescription)"])
        // A replacement of a stale connection is not news to the node: the key never stopped being connected;
        // nor is a connection that takes over within the grace after a loss (see ``lost``).
        if let loss = lost.removeValue(forKey: key) {
            loss.cancel()
            return
        }
        if !replacing {
            continuation.yield(.peerConnected(key))
        }
    }

    func connectionClosed(_ handler: PeerHandler, reason: DisconnectReason) {
        loop.preconditionInEventLoop()
        guard connections.removeValue(forKey: ObjectIdentifier(handler)) != nil else { return }
        metrics.disconnects[reason, default: 0] += 1
        // A framing violation ends the connection but never bans the key: framing is judged before a frame's tag
        // is checked, so anyone who can write into the TCP stream could commit it in the peer's name. Keys are
        // blamed only for frames whose tag opened (rate limits, the node's reports).
        logger.debug(
            "connection closed",
            metadata: [
                "reason": "\(reason)", "remote": "\(handler.remoteDescription)",
                "peer": "\(handler.verifiedKey.map(hex) ?? "-")",
            ])
        if let key = handler.verifiedKey, peers[key] === handler {
            peers[key] = nil
            let handshaking = connections.values.contains { !$0.isEstablished && $0.closeReason == nil }
            if handshaking && !isStopped {
                lost[key]?.cancel()
                lost[key] = loop.assumeIsolated().scheduleTask(in: Self.lossGrace) {
                    guard self.lost.removeValue(forKey: key) != nil, self.peers[key] == nil else { return }
                    self.continuation.yield(.peerDisconnected(key))
                }
            } else {
                continuation.yield(.peerDisconnected(key))
            }
        }
        if case .outbound(let index) = handler.direction, dialers.indices.contains(index) {
            let dialer = dialers[index]
            if let key = handler.verifiedKey { dialer.key = key }
            switch dialer.state {
            case .connected, .connecting: dialer.state = .idle
            default: break
            }
        }
        reviewDialers()
    }

    // MARK: Traffic

    func deliver(_ frame: Frame, from handler: PeerHandler) {
        guard let key = handler.verifiedKey else { return }
        if configuration.kinds.delivery(of: frame.kind) == .gossip {
            guard gossip.insert(GossipFilter.hash(frame)) else {
                countDrop(.duplicateGossip)
                return
            }
        }
        switch continuation.yield(.frame(frame, from: key)) {
        case .dropped:
            countDrop(.deliveryBufferFull)
        case .enqueued, .terminated:
            metrics.framesDelivered += 1
        @unknown default:
            metrics.framesDelivered += 1
        }
    }

    func broadcast(_ frame: Frame, except: Bytes32?) {
        loop.preconditionInEventLoop()
        let isGossip = configuration.kinds.delivery(of: frame.kind) == .gossip
        if isGossip { _ = gossip.insert(GossipFilter.hash(frame)) }
        for (key, handler) in peers where key != except {
            handler.send(frame, isGossip: isGossip)
        }
    }

    func send(_ frame: Frame, to key: Bytes32) {
        loop.preconditionInEventLoop()
        guard let handler = peers[key] else {
            countDrop(.peerNotConnected)
            return
        }
        handler.send(frame, isGossip: configuration.kinds.delivery(of: frame.kind) == .gossip)
    }

    func countDrop(_ reason: DropReason) {
        metrics.drops[reason, default: 0] += 1
    }

    /// A frame from `handler` was dropped for a reason that is the peer's fault.
    func dropped(_ reason: DropReason, by handler: PeerHandler) {
        countDrop(reason)
        if let key = handler.verifiedKey {
            penalize(key, points: configuration.limits.rateLimitPenalty)
        }
    }

    // MARK: Scores and bans

    func report(_ key: Bytes32, reason: Misbehavior) {
        loop.preconditionInEventLoop()
        metrics.reports += 1
        penalize(key, points: reason.penalty)
    }

    private func penalize(_ key: Bytes32, points: Int) {
        let time = now()
        var score = scores[key] ?? PeerScore(decayPerSecond: configuration.limits.scoreDecayPerSecond, now: time)
        let value = score.add(points, now: time)
        scores[key] = score
        if value >= Double(configuration.limits.banThreshold) {
            ban(key)
            peers[key]?.close(.scoreExceeded)
        }
    }

    private func ban(_ key: Bytes32) {
        scores[key] = nil
        bans[key] = now() + configuration.limits.banDuration
        metrics.bans += 1
        logger.info("peer banned", metadata: ["peer": "\(hex(key))"])
    }

    func isBanned(_ key: Bytes32) -> Bool {
        guard let until = bans[key] else { return false }
        if now() < until { return true }
        bans[key] = nil
        return false
    }

    func updateAllowedKeys(_ keys: Set<Bytes32>) {
        loop.preconditionInEventLoop()
        allowedKeys = keys
        for (key, handler) in peers where !keys.contains(key) {
            handler.close(.noLongerAllowed)
        }
    }

    // MARK: Dialing

    /// Starts or restarts dialers whose key is not connected. Called after every disconnect, which is the only
    /// event that can make a dialer's work necessary again.
    func reviewDialers() {
        guard !isStopped else { return }
        for dialer in dialers {
            switch dialer.state {
            case .idle:
                scheduleRetry(dialer)
            case .satisfied:
                if let key = dialer.key, peers[key] == nil { scheduleRetry(dialer) }
            case .connecting, .connected, .waiting, .stopped:
                break
            }
        }
    }

    func startDialers() {
        for dialer in dialers { dial(dialer) }
    }

    private func dial(_ dialer: Dialer) {
        loop.preconditionInEventLoop()
        guard !isStopped else { return }
        if let key = dialer.key {
            if key == ownKey {
                dialer.state = .stopped
                return
            }
            if peers[key] != nil {
                dialer.state = .satisfied
                return
            }
        }
        dialer.state = .connecting
        metrics.connectionsDialed += 1
        let index = dialer.index
        let connectFuture = ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.installPipeline(on: channel, direction: .outbound(dialer: index))
                }
            }
            .connect(host: dialer.address.host, port: dialer.address.port)
        connectFuture.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                if self.isStopped {
                    channel.close(promise: nil)
                } else if case .connecting = dialer.state {
                    // If the connection already ended (closed during the handshake), connectionClosed set .idle.
                    dialer.state = channel.isActive ? .connected : .idle
                    if !channel.isActive { self.reviewDialers() }
                }
            case .failure(let error):
                self.metrics.dialFailures += 1
                self.logger.debug(
                    "dial failed", metadata: ["address": "\(dialer.address)", "error": "\(error)"])
                dialer.state = .idle
                self.reviewDialers()
            }
        }
    }

    private func scheduleRetry(_ dialer: Dialer) {
        if let key = dialer.key {
            if key == ownKey {
                dialer.state = .stopped
                return
            }
            if peers[key] != nil {
                dialer.state = .satisfied
                return
            }
        }
        var delay = configuration.backoff.delay(attempt: dialer.attempt, jitter: entropy.jitter())
        if let key = dialer.key, let until = bans[key] {
            let remaining = until - now()
            if remaining > delay { delay = remaining }
        }
        dialer.attempt += 1
        let task = loop.assumeIsolated().scheduleTask(in: delay) {
            self.dial(dialer)
        }
        dialer.state = .waiting(task)
    }

    // MARK: Shutdown

    /// Stops dialing, closes the listener and every connection; the future completes when all are closed.
    func shutdown() -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        guard !isStopped else { return loop.makeSucceededVoidFuture() }
        isStopped = true
        for dialer in dialers {
            if case .waiting(let task) = dialer.state { task.cancel() }
            dialer.state = .stopped
        }
        var closing: [EventLoopFuture<Void>] = []
        if let serverChannel {
            closing.append(serverChannel.close().recover { _ in })
        }
        for handler in connections.values {
            handler.close(.shutdown)
        }
        return EventLoopFuture.andAllComplete(closing, on: loop).flatMap {
            self.waitForConnectionsToClose(deadline: self.now() + .seconds(5))
        }.map {
            self.continuation.finish()
        }
    }

    private func waitForConnectionsToClose(deadline: NIODeadline) -> EventLoopFuture<Void> {
        if connections.isEmpty || now() > deadline { return loop.makeSucceededVoidFuture() }
        return loop.scheduleTask(in: .milliseconds(5)) {}.futureResult.flatMap {
            self.waitForConnectionsToClose(deadline: deadline)
        }
    }
}

/// Short hex of a key for logs.
func hex(_ key: Bytes32) -> String {
    let digits = Array("0123456789abcdef")
    return String(key.bytes.prefix(6).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}
