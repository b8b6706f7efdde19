import AmarsCodec
import AmarsCrypto
import Logging
import NIOCore
import NIOPosix

/// Where to dial a peer. `key`, when known (a committee member's published key), lets the dialer skip an address
/// whose peer is already connected the other way; otherwise it is learned from the first handshake.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var key: Bytes32?

    public init(host: String, port: Int, key: Bytes32? = nil) {
        self.host = host
        self.port = port
        self.key = key
    }

    public var description: String { "\(host):\(port)" }
}

/// Randomness the network needs: handshake nonces, signing aux randomness, backoff jitter. Injected so tests are
/// reproducible; production uses the system CSPRNG.
public struct NetworkEntropy: Sendable {
    public var next: @Sendable () -> Bytes32

    public init(next: @escaping @Sendable () -> Bytes32) { self.next = next }

    /// `SystemRandomNumberGenerator` reads the kernel CSPRNG (getrandom on Linux); nonces must be unpredictable.
    public static let system = NetworkEntropy {
        var generator = SystemRandomNumberGenerator()
        return Bytes32(w0: generator.next(), w1: generator.next(), w2: generator.next(), w3: generator.next())
    }

    /// Uniform in [0, 1), for backoff jitter.
    func jitter() -> Double { Double(next().w0 >> 11) / Double(1 << 53) }
}

/// Everything a `PeerManager` needs to know up front.
public struct NetworkConfiguration: Sendable {
    /// Address to listen on; port 0 asks the kernel for a free port (`PeerManager.start` reports it).
    public var host: String
    public var port: Int
    /// Set false for a node that only dials out.
    public var listen = true
    public var handshake: HandshakeParameters
    public var kinds: FrameKinds
    public var peers: [PeerAddress]
    public var limits = PeerLimits()
    public var backoff = Backoff()
    public var handshakeTimeout: TimeAmount = .seconds(5)
    public var connectTimeout: TimeAmount = .seconds(5)
    /// Gossip hashes remembered for deduplication.
    public var gossipCacheSize = 16_384
    /// Events buffered for the node before frames are dropped (counted as `deliveryBufferFull`).
    public var eventBufferSize = 8_192

    public init(
        host: String = "0.0.0.0", port: Int = 0, handshake: HandshakeParameters, kinds: FrameKinds,
        peers: [PeerAddress] = []
    ) {
        self.host = host
        self.port = port
        self.handshake = handshake
        self.kinds = kinds
        self.peers = peers
    }
}

/// The gateway-to-gateway transport: listens, dials configured peers with backoff, authenticates every connection,
/// and moves opaque frames between the node and its authenticated peers.
///
/// All state of one manager, and all its channels, live on one event loop taken from the group: a gateway talks to
/// tens of peers, one core is plenty for framing and signature checks, and confinement means no locks. Methods
/// called from other threads hop to that loop; the fire-and-forget ones (`broadcast`, `send`, `report`) return
/// at once.
///
/// Use: create, iterate `events` in a task, `start()`, then `broadcast`/`send`; `shutdown()` at the end. A
/// manager runs once; to restart, create a new one (it may reuse the port).
public final class PeerManager: Sendable {
    /// Frames from peers and connection changes, in order per peer. Finishes after `shutdown()`.
    public let events: AsyncStream<NetworkEvent>
    /// Our x-only node key, as peers see it.
    public let nodeKey: Bytes32
    public let configuration: NetworkConfiguration
    let registry: PeerRegistry
    let loop: any EventLoop

    public init(
        configuration: NetworkConfiguration, nodeKey: PrivateKey, group: any EventLoopGroup,
        entropy: NetworkEntropy = .system, now: @escaping @Sendable () -> NIODeadline = { .now() },
        logger: Logger = Logger(label: "amars.network")
    ) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: NetworkEvent.self, bufferingPolicy: .bufferingOldest(max(1, configuration.eventBufferSize)))
        self.events = stream
        self.nodeKey = nodeKey.xOnlyPublicKey.bytes
        self.configuration = configuration
        self.loop = group.next()
        self.registry = PeerRegistry(
            loop: loop, configuration: configuration, nodeKey: nodeKey, entropy: entropy, now: now, logger: logger,
            continuation: continuation)
    }

    /// Binds the listener (if `listen`) and starts dialing. Returns the bound port, nil when not listening.
    @discardableResult
    public func start() async throws -> Int? {
        let registry = self.registry
        let configuration = self.configuration
        var port: Int?
        if configuration.listen {
            let server = try await ServerBootstrap(group: loop, childGroup: loop)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try registry.installPipeline(on: channel, direction: .inbound)
                        registry.metrics.connectionsAccepted += 1
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
            port = server.localAddress?.port
            try await loop.submit {
                guard !registry.isStopped, registry.serverChannel == nil else {
                    server.close(promise: nil)
                    throw NetworkError.alreadyStarted
                }
                registry.serverChannel = server
            }.get()
        }
        loop.execute { registry.startDialers() }
        return port
    }

    /// The port the listener is bound to, nil before `start()` or when not listening.
    public func listeningPort() async -> Int? {
        let registry = self.registry
        return try? await loop.submit { registry.serverChannel?.localAddress?.port }.get()
    }

    /// Closes everything and finishes `events`. Safe to call more than once.
    public func shutdown() async {
        let registry = self.registry
        try? await loop.flatSubmit { registry.shutdown() }.get()
    }

    /// Sends `frame` to every authenticated peer except `except`. A gossip kind is also marked seen, so echoes of
    /// it are not delivered back to us. Relaying is the node's call: after validating a gossip frame it received,
    /// it broadcasts it with `except:` set to the sender; the network never forwards what it cannot judge.
    public func broadcast(_ frame: Frame, except: Bytes32? = nil) throws(NetworkError) {
        try configuration.kinds.validateOutgoing(frame)
        let registry = self.registry
        loop.execute { registry.broadcast(frame, except: except) }
    }

    /// Sends `frame` to one peer (request/response, e.g. block sync). Dropped and counted when the peer is not
    /// connected: the node's sync logic retries elsewhere.
    public func send(to peer: Bytes32, _ frame: Frame) throws(NetworkError) {
        try configuration.kinds.validateOutgoing(frame)
        let registry = self.registry
        loop.execute { registry.send(frame, to: peer) }
    }

    /// The node found a message from `peer` invalid; enough of these disconnect and ban the peer.
    public func report(peer: Bytes32, reason: Misbehavior) {
        let registry = self.registry
        loop.execute { registry.report(peer, reason: reason) }
    }

    /// Replaces the allowed key set (the committee changed); peers no longer in it are disconnected.
    public func updateAllowedKeys(_ keys: Set<Bytes32>) {
        let registry = self.registry
        loop.execute { registry.updateAllowedKeys(keys) }
    }

    /// Keys with an authenticated connection right now.
    public func connectedPeers() async -> Set<Bytes32> {
        let registry = self.registry
        return (try? await loop.submit { Set(registry.peers.keys) }.get()) ?? []
    }

    public func metrics() async -> NetworkMetrics {
        let registry = self.registry
        return (try? await loop.submit { registry.metrics }.get()) ?? NetworkMetrics()
    }

    public func isBanned(_ key: Bytes32) async -> Bool {
        let registry = self.registry
        return (try? await loop.submit { registry.isBanned(key) }.get()) ?? false
    }

    /// Open connections, authenticated or not; for tests that wait for duplicate connections to settle.
    func connectionCount() async -> Int {
        let registry = self.registry
        return (try? await loop.submit { registry.connectionCount }.get()) ?? 0
    }
}
