import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import Network

/// Shared fixtures: keys, kinds, entropy, and polling with a deadline instead of fixed sleeps.
enum Fixture {
    static let chainID: UInt32 = 0xA3A5_0001
    static let genesis = Bytes32(w0: 0x6765_6e65_7369_7321, w1: 1, w2: 2, w3: 3)
    static let gossipKind: UInt8 = 0x10
    static let requestKind: UInt8 = 0x20
    static let responseKind: UInt8 = 0x21

    static func key(_ n: UInt64) -> PrivateKey {
        // Small scalars are valid secp256k1 keys; a fixed offset keeps them away from 1 and 2.
        try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0x5eed, w3: n + 100))
    }

    static var kinds: FrameKinds {
        var kinds = FrameKinds(maxFrameSize: 1 << 20)
        try! kinds.register(kind: gossipKind, maxPayload: 64 << 10, delivery: .gossip)
        try! kinds.register(kind: requestKind, maxPayload: 1_024, delivery: .direct)
        try! kinds.register(kind: responseKind, delivery: .direct)
        return kinds
    }

    static func parameters(allowed: [PrivateKey]) -> HandshakeParameters {
        HandshakeParameters(
            chainID: chainID, genesisHash: genesis, allowedKeys: Set(allowed.map(\.xOnlyPublicKey.bytes)))
    }

    /// Deterministic entropy per seed, so handshakes and backoff repeat exactly.
    static func entropy(seed: UInt64) -> NetworkEntropy {
        let generator = NIOLockedValueBox(SplitMix64(seed: seed))
        return NetworkEntropy { generator.withLockedValue { $0.bytes32() } }
    }

    static func configuration(
        allowed: [PrivateKey], peers: [PeerAddress] = [], port: Int = 0
    ) -> NetworkConfiguration {
        var configuration = NetworkConfiguration(
            host: "127.0.0.1", port: port, handshake: parameters(allowed: allowed), kinds: kinds, peers: peers)
        configuration.backoff = Backoff(initial: .milliseconds(40), maximum: .milliseconds(300))
        configuration.handshakeTimeout = .seconds(3)
        configuration.connectTimeout = .seconds(1)
        return configuration
    }
}

/// Two nodes with `keys[0]` and `keys[1]`, the second dialing the first, connected to each other (asserted).
/// `tune` adjusts the first one's configuration.
func startPair(
    keys: [PrivateKey], allowed: [PrivateKey], group: any EventLoopGroup,
    tune: (inout NetworkConfiguration) -> Void = { _ in }
) async throws -> (TestNode, TestNode) {
    var configurationA = Fixture.configuration(allowed: allowed)
    tune(&configurationA)
    let a = try await TestNode.start(key: keys[0], configuration: configurationA, group: group, seed: 1)
    let b = try await TestNode.start(
        key: keys[1], configuration: Fixture.configuration(allowed: allowed, peers: [a.address]), group: group,
        seed: 2)
    let meshed = await eventually {
        let countA = await a.manager.connectedPeers().count
        let countB = await b.manager.connectedPeers().count
        return countA == 1 && countB == 1
    }
    XCTAssertTrue(meshed, "the pair did not connect")
    return (a, b)
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
func eventually(
    timeout: Duration = .seconds(8), _ condition: @Sendable () async -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

/// What a node received, recorded from its event stream.
actor EventLog {
    private(set) var frames: [(frame: Frame, from: Bytes32)] = []
    private(set) var connected: [Bytes32] = []
    private(set) var disconnected: [Bytes32] = []

    func record(_ event: NetworkEvent) {
        switch event {
        case .frame(let frame, let from): frames.append((frame, from))
        case .peerConnected(let key): connected.append(key)
        case .peerDisconnected(let key): disconnected.append(key)
        }
    }

    func count(payload: [UInt8]) -> Int { frames.filter { $0.frame.payload == payload }.count }
    func frames(kind: UInt8) -> [(frame: Frame, from: Bytes32)] { frames.filter { $0.frame.kind == kind } }
}

/// A manager plus the little node logic the tests need: record everything, relay gossip after "validating" it
/// (as a real node does), and answer requests.
final class TestNode: Sendable {
    let key: PrivateKey
    let manager: PeerManager
    let log = EventLog()
    let port: Int
    private let consumer: Task<Void, Never>

    static func start(
        key: PrivateKey, configuration: NetworkConfiguration, group: any EventLoopGroup, seed: UInt64,
        relay: Bool = true
    ) async throws -> TestNode {
        var logger = Logger(label: "test.network.\(seed)")
        logger.logLevel = .warning
        let manager = PeerManager(
            configuration: configuration, nodeKey: key, group: group, entropy: Fixture.entropy(seed: seed),
            logger: logger)
        let port = try await manager.start() ?? -1
        return TestNode(key: key, manager: manager, port: port, relay: relay)
    }

    private init(key: PrivateKey, manager: PeerManager, port: Int, relay: Bool) {
        self.key = key
        self.manager = manager
        self.port = port
        let log = self.log
        consumer = Task {
            for await event in manager.events {
                await log.record(event)
                guard case .frame(let frame, let from) = event else { continue }
                if relay && frame.kind == Fixture.gossipKind {
                    try? manager.broadcast(frame, except: from)
                }
                if frame.kind == Fixture.requestKind {
                    try? manager.send(
                        to: from, Frame(kind: Fixture.responseKind, payload: Array("re:".utf8) + frame.payload))
                }
            }
        }
    }

    var publicKey: Bytes32 { key.xOnlyPublicKey.bytes }
    var address: PeerAddress { PeerAddress(host: "127.0.0.1", port: port) }

    func stop() async {
        await manager.shutdown()
        await consumer.value
    }
}

/// A bare TCP client for speaking (or mangling) the protocol by hand.
///
/// In bytes mode it writes whatever the test gives it, so any garbage can reach the server. In peer mode it runs a
/// `HandshakeMachine` of its own (a real key, maybe a misbehaving one after authentication) and frames its writes.
final class RawClient: Sendable {
    let channel: any Channel
    let inbox: NIOLockedValueBox<[Frame]>
    let established: NIOLockedValueBox<Bytes32?>
    /// The frame keys once authenticated (peer mode): frames written are sealed, frames read are opened.
    let session: NIOLockedValueBox<PeerSession?>

    private init(
        channel: any Channel, inbox: NIOLockedValueBox<[Frame]>, established: NIOLockedValueBox<Bytes32?>,
        session: NIOLockedValueBox<PeerSession?>
    ) {
        self.channel = channel
        self.inbox = inbox
        self.established = established
        self.session = session
    }

    /// Connects in bytes mode (no `handshake`) or peer mode (runs `handshake`, sending Hello at once).
    /// `injectInsteadOfConfirm`: after the Auths, sends a Confirm whose tag is wrong (what an outsider writing
    /// into the stream would produce).
    static func connect(
        port: Int, group: any EventLoopGroup, handshake: HandshakeMachine? = nil, injectInsteadOfConfirm: Bool = false
    ) async throws -> RawClient {
        let inbox = NIOLockedValueBox<[Frame]>([])
        let established = NIOLockedValueBox<Bytes32?>(nil)
        let session = NIOLockedValueBox<PeerSession?>(nil)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let handshake else {
                        try channel.pipeline.syncOperations.addHandler(DiscardHandler())
                        return
                    }
                    let policy = FramePolicy(kinds: Fixture.kinds)
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(policy: policy)),
                        MessageToByteHandler(FrameEncoder()),
                        RawPeerHandler(
                            policy: policy, machine: handshake, inbox: inbox, established: established,
                            session: session, injectInsteadOfConfirm: injectInsteadOfConfirm),
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, inbox: inbox, established: established, session: session)
    }

    /// Bytes mode: sends raw bytes.
    func writeBytes(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// Peer mode: sends one frame through the encoder, sealed with the session's next tag once authenticated
    /// (`tamper` changes the sealed frame on the way, as a man in the middle would).
    func writeFrame(_ frame: Frame, tamper: ((inout Frame) -> Void)? = nil) {
        var wire = session.withLockedValue { s -> Frame in
            guard var current = s else { return frame }
            let sealed = current.seal(frame)
            s = current
            return sealed
        }
        tamper?(&wire)
        channel.writeAndFlush(wire, promise: nil)
    }

    var isAuthenticated: Bool { established.withLockedValue { $0 != nil } }

    /// Waits until the server closes the connection; false on timeout.
    func waitClosed(timeout: Duration = .seconds(5)) async -> Bool {
        await eventually(timeout: timeout) { !self.channel.isActive }
    }

    func close() async {
        try? await channel.close().get()
    }
}

/// Bytes mode: reads and forgets whatever the server sends.
final class DiscardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Peer mode: answers the server's handshake like a real peer, then records what it receives.
final class RawPeerHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    let policy: FramePolicy
    var machine: HandshakeMachine
    let inbox: NIOLockedValueBox<[Frame]>
    let established: NIOLockedValueBox<Bytes32?>
    let session: NIOLockedValueBox<PeerSession?>
    let injectInsteadOfConfirm: Bool

    init(
        policy: FramePolicy, machine: HandshakeMachine, inbox: NIOLockedValueBox<[Frame]>,
        established: NIOLockedValueBox<Bytes32?>, session: NIOLockedValueBox<PeerSession?>,
        injectInsteadOfConfirm: Bool = false
    ) {
        self.injectInsteadOfConfirm = injectInsteadOfConfirm
        self.policy = policy
        self.machine = machine
        self.inbox = inbox
        self.established = established
        self.session = session
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(machine.start()), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard policy.authenticated else {
            switch machine.receive(frame) {
            case .send(var reply):
                if injectInsteadOfConfirm && reply.kind == ControlKind.confirm {
                    reply.payload = [UInt8](repeating: 0xEE, count: PeerSession.tagSize)
                }
                context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
            case .established(let key):
                policy.authenticated = true
                let keys = machine.session
                session.withLockedValue { $0 = keys }
                established.withLockedValue { $0 = key }
            case .fail:
                context.close(promise: nil)
            }
            return
        }
        let opened = session.withLockedValue { s -> Frame? in
            guard var current = s, let opened = current.open(frame) else { return nil }
            s = current
            return opened
        }
        guard let opened else {
            context.close(promise: nil)
            return
        }
        inbox.withLockedValue { $0.append(opened) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
