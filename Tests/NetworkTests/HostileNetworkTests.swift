import AmarsCodec
import AmarsCrypto
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import Network

/// Attacks by an outsider who holds no key, over real TCP on loopback: relaying two members' handshakes,
/// injecting a frame into a fresh session, and holding handshake slots open. Each must leave the members
/// connected, with no key banned.
final class HostileNetworkTests: XCTestCase {
    let honest = [Fixture.key(1), Fixture.key(2)]
    let insider = Fixture.key(4)
    var allowed: [PrivateKey] { honest + [insider] }

    private func startPair(group: any EventLoopGroup) async throws -> (TestNode, TestNode) {
        try await NetworkTests.startPair(keys: honest, allowed: allowed, group: group)
    }

    /// The attacker dials both members and forwards bytes between the two connections. Each member then answers
    /// a handshake that the other really signs; before the dialer was bound into Auth, the higher key dropped
    /// its honest connection for the relayed one, and one bad frame then got the other key banned.
    func testRelayedHandshakesNeverDisplaceOrBan() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, b) = try await startPair(group: group)
        var relays: [Relay] = []
        for _ in 0..<10 {
            relays.append(try await Relay.connect(group: group, ports: (a.port, b.port)))
        }
        let refused = await eventually {
            let failedA = await a.manager.metrics().disconnects(.handshake(.badSignature))
            let failedB = await b.manager.metrics().disconnects(.handshake(.badSignature))
            return failedA >= 10 && failedB >= 10
        }
        XCTAssertTrue(refused, "relayed handshakes must fail at Auth on both ends")
        for relay in relays { await relay.close() }
        let peersA = await a.manager.connectedPeers()
        let peersB = await b.manager.connectedPeers()
        XCTAssertEqual(peersA, [b.publicKey])
        XCTAssertEqual(peersB, [a.publicKey])
        let metricsA = await a.manager.metrics()
        let metricsB = await b.manager.metrics()
        XCTAssertEqual(metricsA.bans + metricsB.bans, 0)
        XCTAssertEqual(metricsA.disconnects(.duplicateConnection) + metricsB.disconnects(.duplicateConnection), 0)
        XCTAssertEqual(metricsA.handshakesCompleted, 1, "the honest connection is the only one ever admitted")
        try b.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [7, 7]))
        let delivered = await eventually { await a.log.count(payload: [7, 7]) == 1 }
        XCTAssertTrue(delivered)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    /// A frame injected where the Confirm belongs (here by the key's own holder, which an outsider writing into
    /// the stream can equally do) fails the handshake without a ban; so does a framing violation after the
    /// session is up, which is judged before any tag. The key connects again at once.
    func testInjectedFramesEndTheConnectionWithoutABan() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, b) = try await startPair(group: group)
        let insiderKey = insider.xOnlyPublicKey.bytes

        // 1. Hello and Auth, then garbage instead of the Confirm.
        let early = try await RawClient.connect(
            port: a.port, group: group, handshake: machine(seed: 1), injectInsteadOfConfirm: true)
        let closedEarly = await early.waitClosed()
        XCTAssertTrue(closedEarly)
        let earlyCounted = await eventually {
            await a.manager.metrics().disconnects(.handshake(.badConfirmation)) == 1
        }
        XCTAssertTrue(earlyCounted)

        // 2. A full session, then an unknown kind (a framing violation, caught before the tag is checked).
        let late = try await RawClient.connect(port: a.port, group: group, handshake: machine(seed: 2))
        let admitted = await eventually { await a.manager.connectedPeers().contains(insiderKey) }
        XCTAssertTrue(admitted)
        late.writeFrame(Frame(kind: 0x7F, payload: [1, 2, 3]))
        let closedLate = await late.waitClosed()
        XCTAssertTrue(closedLate)

        let banned = await a.manager.isBanned(insiderKey)
        XCTAssertFalse(banned, "nothing the tag did not cover is blamed on the key")
        let again = try await RawClient.connect(port: a.port, group: group, handshake: machine(seed: 3))
        let back = await eventually { again.isAuthenticated }
        XCTAssertTrue(back, "the key is welcome again at once")
        let peers = await a.manager.connectedPeers()
        XCTAssertTrue(peers.contains(b.publicKey))
        await again.close()
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    /// 80 silent connections held on a member's port while it restarts: its own dials are not held back by them,
    /// and a member dialing in takes the slot of the oldest silent connection.
    func testHeldHandshakeSlotsDoNotIsolateARestartedMember() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let portB = try freePort(group: group)
        var configurationA = Fixture.configuration(
            allowed: allowed, peers: [PeerAddress(host: "127.0.0.1", port: portB)])
        configurationA.handshakeTimeout = .seconds(60)  // the silent connections are not cut by time here
        let a = try await TestNode.start(key: honest[0], configuration: configurationA, group: group, seed: 1)
        var held: [RawClient] = []
        for _ in 0..<80 { held.append(try await RawClient.connect(port: a.port, group: group)) }
        // One source: the per-source cap (16) holds, the older 64 were cut as the newer arrived.
        let full = await eventually {
            let cut = await a.manager.metrics().disconnects(.tooManyPendingHandshakes)
            let open = await a.manager.connectionCount()
            return cut == 64 && open == 16
        }
        XCTAssertTrue(full)

        // a dials out to b while its inbound slots are full.
        var configurationB = Fixture.configuration(allowed: allowed, port: portB)
        configurationB.listen = true
        let b = try await TestNode.start(key: honest[1], configuration: configurationB, group: group, seed: 2)
        let outbound = await eventually(timeout: .seconds(5)) { await a.manager.connectedPeers() == [b.publicKey] }
        XCTAssertTrue(outbound, "a's own dial must not wait for a handshake slot")

        // And an allowed key dialing in is admitted, evicting a held connection.
        let inbound = try await RawClient.connect(port: a.port, group: group, handshake: machine(seed: 4))
        let admitted = await eventually(timeout: .seconds(5)) { inbound.isAuthenticated }
        XCTAssertTrue(admitted, "an inbound handshake must get a slot")
        let evicted = await a.manager.metrics().disconnects(.tooManyPendingHandshakes)
        XCTAssertEqual(evicted, 65, "the newcomer took the slot of the oldest held connection")
        for client in held { await client.close() }
        await inbound.close()
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    private func machine(seed: UInt64) -> HandshakeMachine {
        HandshakeMachine(
            parameters: Fixture.parameters(allowed: allowed), localKey: insider,
            nonce: Bytes32(w0: seed, w1: 4, w2: 4, w3: 4), auxRandom: Bytes32(w0: seed, w1: 0, w2: 0, w3: 0),
            isInitiator: true)
    }

    private func freePort(group: any EventLoopGroup) throws -> Int {
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress?.port ?? 0
    }
}

/// Two TCP connections, one to each member, with every byte read from one written to the other.
final class Relay: Sendable {
    let first: any Channel
    let second: any Channel

    private init(first: any Channel, second: any Channel) {
        self.first = first
        self.second = second
    }

    static func connect(group: any EventLoopGroup, ports: (Int, Int)) async throws -> Relay {
        let forwardFirst = Forwarder()
        let forwardSecond = Forwarder()
        let first = try await ClientBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(forwardFirst) }
            .connect(host: "127.0.0.1", port: ports.0).get()
        let second = try await ClientBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(forwardSecond) }
            .connect(host: "127.0.0.1", port: ports.1).get()
        forwardFirst.connect(to: second)
        forwardSecond.connect(to: first)
        return Relay(first: first, second: second)
    }

    func close() async {
        try? await first.close().get()
        try? await second.close().get()
    }
}

/// Buffers what arrives until the other side is connected, then forwards everything.
final class Forwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let state = NIOLockedValueBox<(target: (any Channel)?, pending: [ByteBuffer])>((nil, []))

    func connect(to target: any Channel) {
        // Under the lock, so nothing read meanwhile overtakes what was buffered.
        state.withLockedValue { state in
            state.target = target
            for buffer in state.pending { target.writeAndFlush(buffer, promise: nil) }
            state.pending = []
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        state.withLockedValue { state in
            if let target = state.target {
                target.writeAndFlush(buffer, promise: nil)
            } else {
                state.pending.append(buffer)
            }
        }
    }
}
