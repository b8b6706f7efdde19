import AmarsCodec
import AmarsCrypto
import NIOCore
import NIOPosix
import XCTest

@testable import Network

/// Hostile input over real TCP: every bad client is disconnected and counted, and honest peers never notice.
final class AdversaryTests: XCTestCase {
    let honest = [Fixture.key(1), Fixture.key(2)]
    /// Allowed but never running: a key an attacker can claim without holding.
    let absent = Fixture.key(3)
    let flooder = Fixture.key(4)
    let stranger = Fixture.key(5)

    var allowed: [PrivateKey] { honest + [absent, flooder] }

    private func startPair(
        group: any EventLoopGroup, tune: (inout NetworkConfiguration) -> Void = { _ in }
    ) async throws -> (TestNode, TestNode) {
        try await NetworkTests.startPair(keys: honest, allowed: allowed, group: group, tune: tune)
    }

    private func helloFrame(claiming key: Bytes32, chainID: UInt32 = Fixture.chainID) -> Frame {
        Hello(
            version: HandshakeParameters.currentVersion, chainID: chainID, genesisHash: Fixture.genesis,
            nodeKey: key, nonce: Bytes32(w0: 77, w1: 0, w2: 0, w3: 0)
        ).frame
    }

    func testGarbageClientsAreDisconnectedAndCounted() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, b) = try await startPair(group: group) { $0.handshakeTimeout = .milliseconds(300) }

        struct Case {
            let name: String
            let bytes: [UInt8]
            let reason: DisconnectReason
        }
        var badAuth = helloFrame(claiming: absent.xOnlyPublicKey.bytes).encoded
        badAuth += Frame(kind: ControlKind.auth, payload: [UInt8](repeating: 0x5A, count: 64)).encoded
        let cases = [
            Case(name: "zero length", bytes: [0, 0, 0, 0, 1, 2, 3], reason: .malformedFrame),
            Case(name: "http", bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), reason: .oversizedFrame),
            Case(name: "huge length, no body", bytes: [0xFF, 0xFF, 0xFF, 0xF0], reason: .oversizedFrame),
            Case(name: "unknown kind", bytes: [0, 0, 0, 3, 0x7E, 0, 0], reason: .unknownKind),
            Case(
                name: "data before auth", bytes: Frame(kind: Fixture.gossipKind, payload: [1]).encoded,
                reason: .unexpectedFrame),
            Case(name: "bad signature", bytes: badAuth, reason: .handshake(.badSignature)),
            Case(
                name: "unknown key", bytes: helloFrame(claiming: stranger.xOnlyPublicKey.bytes).encoded,
                reason: .handshake(.unknownKey)),
            Case(
                name: "wrong chain", bytes: helloFrame(claiming: absent.xOnlyPublicKey.bytes, chainID: 1).encoded,
                reason: .handshake(.wrongChain)),
            Case(name: "silent", bytes: [], reason: .handshakeTimeout),
            Case(name: "half a header then silence", bytes: [0, 0], reason: .handshakeTimeout),
        ]
        for test in cases {
            let client = try await RawClient.connect(port: a.port, group: group)
            if !test.bytes.isEmpty { try? await client.writeBytes(test.bytes) }
            let closed = await client.waitClosed()
            XCTAssertTrue(closed, "\(test.name): not disconnected")
            let counted = await eventually { await a.manager.metrics().disconnects(test.reason) >= 1 }
            let seen = await a.manager.metrics().disconnects
            XCTAssertTrue(counted, "\(test.name): \(test.reason) not counted: \(seen)")
        }

        // The honest link never flinched.
        let peers = await a.manager.connectedPeers()
        XCTAssertEqual(peers, [b.publicKey])
        try b.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [1, 2, 3]))
        let delivered = await eventually { await a.log.count(payload: [1, 2, 3]) == 1 }
        XCTAssertTrue(delivered)
        let metrics = await a.manager.metrics()
        XCTAssertEqual(metrics.bans, 0, "unauthenticated garbage has no key to ban")
        XCTAssertEqual(metrics.disconnects(.remoteClosed), 0)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    func testFloodingPeerIsRateLimitedThenBannedWhileOthersAreUnaffected() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, b) = try await startPair(group: group) {
            $0.limits.framesPerSecond = 20
            $0.limits.frameBurst = 40
            $0.limits.banThreshold = 100
            $0.limits.rateLimitPenalty = 1
            $0.limits.scoreDecayPerSecond = 0
        }
        let machine = HandshakeMachine(
            parameters: Fixture.parameters(allowed: allowed), localKey: flooder,
            nonce: Bytes32(w0: 4, w1: 4, w2: 4, w3: 4), auxRandom: .zero, isInitiator: true)
        let client = try await RawClient.connect(port: a.port, group: group, handshake: machine)
        let authenticated = await eventually { client.isAuthenticated }
        XCTAssertTrue(authenticated)
        let flooderKey = flooder.xOnlyPublicKey.bytes
        let admitted = await eventually { await a.manager.connectedPeers().contains(flooderKey) }
        XCTAssertTrue(admitted)

        for i in 0..<400 {
            client.writeFrame(Frame(kind: Fixture.gossipKind, payload: [0xF1, UInt8(i >> 8), UInt8(i & 0xFF)]))
        }
        let closed = await client.waitClosed()
        XCTAssertTrue(closed, "flooder not disconnected")
        let metrics = await a.manager.metrics()
        XCTAssertGreaterThanOrEqual(metrics.drops(.rateLimitedFrames), 100)
        XCTAssertEqual(metrics.disconnects(.scoreExceeded), 1)
        XCTAssertEqual(metrics.bans, 1)
        let banned = await a.manager.isBanned(flooderKey)
        XCTAssertTrue(banned)
        // About the burst got through, no more than that plus the few refilled during the flood.
        let deliveredFromFlooder = await a.log.frames.filter { $0.from == flooderKey }.count
        XCTAssertGreaterThanOrEqual(deliveredFromFlooder, 40)
        XCTAssertLessThan(deliveredFromFlooder, 150)

        // A banned key that comes back authenticates and is refused.
        let again = try await RawClient.connect(
            port: a.port, group: group,
            handshake: HandshakeMachine(
                parameters: Fixture.parameters(allowed: allowed), localKey: flooder,
                nonce: Bytes32(w0: 5, w1: 5, w2: 5, w3: 5), auxRandom: .zero, isInitiator: true))
        let refused = await again.waitClosed()
        XCTAssertTrue(refused)
        let bannedCount = await eventually { await a.manager.metrics().disconnects(.banned) == 1 }
        XCTAssertTrue(bannedCount)

        // The honest peer is unaffected both ways.
        let peers = await a.manager.connectedPeers()
        XCTAssertEqual(peers, [b.publicKey])
        try b.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [9, 9]))
        try a.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [8, 8]))
        let both = await eventually {
            let atA = await a.log.count(payload: [9, 9])
            let atB = await b.log.count(payload: [8, 8])
            return atA == 1 && atB == 1
        }
        XCTAssertTrue(both)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    /// An authenticated peer's frame altered on the way (one bit of its tag) ends that connection, without a ban
    /// (the peer did not write it); frames before it were delivered and the honest link never notices.
    func testFrameWithABadTagEndsTheConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, b) = try await startPair(group: group)
        let machine = HandshakeMachine(
            parameters: Fixture.parameters(allowed: allowed), localKey: flooder,
            nonce: Bytes32(w0: 6, w1: 6, w2: 6, w3: 6), auxRandom: Bytes32(w0: 6, w1: 0, w2: 0, w3: 0),
            isInitiator: true)
        let client = try await RawClient.connect(port: a.port, group: group, handshake: machine)
        let authenticated = await eventually { client.isAuthenticated }
        XCTAssertTrue(authenticated)
        let flooderKey = flooder.xOnlyPublicKey.bytes
        let admitted = await eventually { await a.manager.connectedPeers().contains(flooderKey) }
        XCTAssertTrue(admitted)
        client.writeFrame(Frame(kind: Fixture.gossipKind, payload: [0xB0, 1]))
        let first = await eventually { await a.log.count(payload: [0xB0, 1]) == 1 }
        XCTAssertTrue(first, "a correctly tagged frame is delivered")
        client.writeFrame(Frame(kind: Fixture.gossipKind, payload: [0xB0, 2])) { wire in
            wire.payload[wire.payload.count - 1] ^= 1
        }
        let closed = await client.waitClosed()
        XCTAssertTrue(closed, "a bad tag must end the connection")
        let counted = await eventually { await a.manager.metrics().disconnects(.badFrameTag) == 1 }
        XCTAssertTrue(counted)
        let delivered = await a.log.count(payload: [0xB0, 2])
        XCTAssertEqual(delivered, 0, "the altered frame is never delivered")
        let banned = await a.manager.isBanned(flooderKey)
        XCTAssertFalse(banned, "a bad tag is someone else's doing: the peer's key is not banned")
        let peers = await a.manager.connectedPeers()
        XCTAssertEqual(peers, [b.publicKey])
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    func testNodeReportsLeadToBan() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        // No decay, so four reports of 25 reach the threshold of 100 exactly.
        let (a, b) = try await startPair(group: group) { $0.limits.scoreDecayPerSecond = 0 }
        a.manager.report(peer: b.publicKey, reason: .invalidMessage)
        a.manager.report(peer: b.publicKey, reason: .invalidMessage)
        let stillUp = await a.manager.connectedPeers()
        XCTAssertEqual(stillUp, [b.publicKey])
        a.manager.report(peer: b.publicKey, reason: .invalidMessage)
        a.manager.report(peer: b.publicKey, reason: .invalidMessage)
        let gone = await eventually { await a.manager.connectedPeers().isEmpty }
        XCTAssertTrue(gone)
        let metrics = await a.manager.metrics()
        XCTAssertEqual(metrics.reports, 4)
        XCTAssertEqual(metrics.bans, 1)
        XCTAssertEqual(metrics.disconnects(.scoreExceeded), 1)
        // b keeps redialing but is refused while the ban lasts.
        let refused = await eventually { await a.manager.metrics().disconnects(.banned) >= 1 }
        XCTAssertTrue(refused)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    func testSlowPeerQueueIsBoundedAndDropsOldestGossip() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = Fixture.configuration(allowed: allowed)
        configuration.limits.maxQueuedFrames = 8
        let a = try await TestNode.start(key: honest[0], configuration: configuration, group: group, seed: 1)
        // An authenticated peer that never reads: its socket fills, then a's queue for it.
        let machine = HandshakeMachine(
            parameters: Fixture.parameters(allowed: allowed), localKey: flooder,
            nonce: Bytes32(w0: 6, w1: 6, w2: 6, w3: 6), auxRandom: .zero, isInitiator: true)
        let client = try await RawClient.connect(port: a.port, group: group, handshake: machine)
        let admitted = await eventually { await a.manager.connectedPeers().count == 1 }
        XCTAssertTrue(admitted)
        try await client.channel.setOption(.autoRead, value: false).get()
        let chunk = [UInt8](repeating: 0xCC, count: 60_000)
        for i in 0..<400 {
            try a.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [UInt8(i >> 8), UInt8(i & 0xFF)] + chunk))
        }
        let dropping = await eventually { await a.manager.metrics().drops(.outboundQueueFull) > 0 }
        XCTAssertTrue(dropping)
        let stillConnected = await a.manager.connectedPeers().count
        XCTAssertEqual(stillConnected, 1, "a slow peer is not a misbehaving one")
        await client.close()
        await a.stop()
        try await group.shutdownGracefully()
    }

    /// At the cap the oldest pending handshake is cut, not the newcomer: whoever holds slots open loses them to
    /// the next connection, and an honest handshake (one round trip) is never the oldest for long.
    func testPendingHandshakesAreCappedOldestFirst() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = Fixture.configuration(allowed: allowed)
        configuration.limits.maxPendingHandshakes = 2
        let a = try await TestNode.start(key: honest[0], configuration: configuration, group: group, seed: 1)
        let first = try await RawClient.connect(port: a.port, group: group)
        let second = try await RawClient.connect(port: a.port, group: group)
        let registered = await eventually { await a.manager.connectionCount() == 2 }
        XCTAssertTrue(registered)
        let third = try await RawClient.connect(port: a.port, group: group)
        let evicted = await first.waitClosed()
        XCTAssertTrue(evicted, "the oldest pending handshake is cut")
        XCTAssertTrue(second.channel.isActive && third.channel.isActive)
        let counted = await a.manager.metrics().disconnects(.tooManyPendingHandshakes)
        XCTAssertEqual(counted, 1)
        await second.close()
        await third.close()
        await a.stop()
        try await group.shutdownGracefully()
    }

    func testRemovingAKeyFromTheAllowedSetDisconnectsIt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, b) = try await startPair(group: group)
        a.manager.updateAllowedKeys([honest[0].xOnlyPublicKey.bytes])
        let gone = await eventually { await a.manager.connectedPeers().isEmpty }
        XCTAssertTrue(gone)
        let metrics = await a.manager.metrics()
        XCTAssertEqual(metrics.disconnects(.noLongerAllowed), 1)
        // b's redials now fail the handshake as an unknown key.
        let refused = await eventually { await a.manager.metrics().disconnects(.handshake(.unknownKey)) >= 1 }
        XCTAssertTrue(refused)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }
}
