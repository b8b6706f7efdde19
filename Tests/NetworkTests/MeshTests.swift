import AmarsCodec
import AmarsCrypto
import NIOCore
import NIOPosix
import XCTest

@testable import Network

/// Real managers on 127.0.0.1: mesh, gossip, request/response, crash and restart.
final class MeshTests: XCTestCase {
    /// Four nodes; node i dials nodes 0..<i (ports are only known once those are listening), which gives a full mesh.
    func testMeshGossipSendKillAndRestart() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let keys = (0..<4).map { Fixture.key(UInt64($0 + 1)) }
        var started: [TestNode] = []
        for (i, key) in keys.enumerated() {
            let configuration = Fixture.configuration(allowed: keys, peers: started.map(\.address))
            started.append(
                try await TestNode.start(key: key, configuration: configuration, group: group, seed: UInt64(i)))
        }
        let nodes = started
        try await waitForMesh(nodes)

        // Gossip from node 1: every other node delivers it exactly once although relays echo it around.
        let payload: [UInt8] = Array("block-1".utf8)
        try nodes[1].manager.broadcast(Frame(kind: Fixture.gossipKind, payload: payload))
        // 3 direct copies + 2 relays by each of the 3 receivers = 9 copies; 3 delivered, so 6 are duplicates.
        let settled = await eventually {
            var delivered = 0
            var duplicates = 0
            for node in nodes {
                delivered += await node.log.count(payload: payload)
                duplicates += await node.manager.metrics().drops(.duplicateGossip)
            }
            return delivered == 3 && duplicates == 6
        }
        XCTAssertTrue(settled, "gossip did not settle to 3 deliveries and 6 duplicates")
        for (i, node) in nodes.enumerated() {
            let count = await node.log.count(payload: payload)
            XCTAssertEqual(count, i == 1 ? 0 : 1, "node \(i) deliveries")
        }

        // Request/response: node 0 asks node 3 directly; node 3's logic answers with send(to:).
        try nodes[0].manager.send(to: nodes[3].publicKey, Frame(kind: Fixture.requestKind, payload: [42]))
        let answered = await eventually { await nodes[0].log.frames(kind: Fixture.responseKind).count == 1 }
        XCTAssertTrue(answered)
        let response = await nodes[0].log.frames(kind: Fixture.responseKind).first
        XCTAssertEqual(response?.from, nodes[3].publicKey)
        XCTAssertEqual(response?.frame.payload, Array("re:".utf8) + [42])
        let requestsElsewhere = await nodes[1].log.frames(kind: Fixture.requestKind).count
        XCTAssertEqual(requestsElsewhere, 0)

        // Kill node 0 (everyone else dials it). The rest keep going.
        let killed = nodes[0]
        let killedPort = killed.port
        await killed.stop()
        for node in nodes[1...] {
            let dropped = await eventually { await !node.manager.connectedPeers().contains(killed.publicKey) }
            XCTAssertTrue(dropped)
        }
        let payload2: [UInt8] = Array("block-2".utf8)
        try nodes[2].manager.broadcast(Frame(kind: Fixture.gossipKind, payload: payload2))
        for i in [1, 3] {
            let got = await eventually { await nodes[i].log.count(payload: payload2) == 1 }
            XCTAssertTrue(got, "node \(i) after the crash")
        }
        // Let the survivors fail a few redials against the closed port.
        let failing = await eventually { await nodes[1].manager.metrics().dialFailures >= 2 }
        XCTAssertTrue(failing)

        // Restart node 0 on its old port with no peers of its own: the survivors' backoff redials bring it back.
        let restarted = try await TestNode.start(
            key: keys[0], configuration: Fixture.configuration(allowed: keys, port: killedPort), group: group,
            seed: 100)
        let healed = [restarted] + nodes[1...]
        try await waitForMesh(healed)
        let accepted = await restarted.manager.metrics().connectionsAccepted
        XCTAssertGreaterThanOrEqual(accepted, 3)
        let payload3: [UInt8] = Array("block-3".utf8)
        try nodes[3].manager.broadcast(Frame(kind: Fixture.gossipKind, payload: payload3))
        let receivedAfterRestart = await eventually { await restarted.log.count(payload: payload3) == 1 }
        XCTAssertTrue(receivedAfterRestart)
        let reconnectedEvents = await nodes[1].log.connected.filter { $0 == killed.publicKey }.count
        XCTAssertEqual(reconnectedEvents, 2)

        // No violations anywhere in an honest mesh.
        for node in healed {
            let metrics = await node.manager.metrics()
            XCTAssertEqual(metrics.bans, 0)
            XCTAssertEqual(metrics.handshakeFailures, 0, "\(metrics.disconnects)")
        }
        for node in healed { await node.stop() }
        try await group.shutdownGracefully()
    }

    func testSimultaneousDialsSettleOnOneConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let keys = [Fixture.key(1), Fixture.key(2)]
        // Both dial each other: start both listening first, then give each the other's address.
        let probeA = try await TestNode.start(
            key: keys[0], configuration: Fixture.configuration(allowed: keys), group: group, seed: 1)
        let probeB = try await TestNode.start(
            key: keys[1], configuration: Fixture.configuration(allowed: keys), group: group, seed: 2)
        let portA = probeA.port
        let portB = probeB.port
        await probeA.stop()
        await probeB.stop()
        let a = try await TestNode.start(
            key: keys[0],
            configuration: Fixture.configuration(
                allowed: keys, peers: [PeerAddress(host: "127.0.0.1", port: portB)],
                port: portA),
            group: group, seed: 3)
        let b = try await TestNode.start(
            key: keys[1],
            configuration: Fixture.configuration(
                allowed: keys, peers: [PeerAddress(host: "127.0.0.1", port: portA)],
                port: portB),
            group: group, seed: 4)
        try await waitForMesh([a, b])
        // a dialed b's port before b listened and failed; b then reached a. a's redial (its dialer does not know
        // b's key yet) makes a second connection between the pair, which both ends must resolve the same way.
        let resolved = await eventually {
            let duplicates =
                await a.manager.metrics().disconnects(.duplicateConnection)
                + b.manager.metrics().disconnects(.duplicateConnection)
            return duplicates >= 1
        }
        XCTAssertTrue(resolved, "no duplicate connection was made and resolved")
        try await waitForMesh([a, b])
        try a.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [7]))
        try b.manager.broadcast(Frame(kind: Fixture.gossipKind, payload: [6]))
        let got = await eventually {
            let atB = await b.log.count(payload: [7])
            let atA = await a.log.count(payload: [6])
            return atA == 1 && atB == 1
        }
        XCTAssertTrue(got)
        // Exactly one peerConnected each: the replacement of a connection is not news to the node.
        let connectedA = await a.log.connected.count
        let connectedB = await b.log.connected.count
        XCTAssertEqual(connectedA, 1)
        XCTAssertEqual(connectedB, 1)
        let disconnectedA = await a.log.disconnected.count
        XCTAssertEqual(disconnectedA, 0)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    /// Waits until every node has all others authenticated and no extra (duplicate or handshaking) connections.
    func waitForMesh(_ nodes: [TestNode], file: StaticString = #filePath, line: UInt = #line) async throws {
        let expected = nodes.count - 1
        let ok = await eventually {
            for node in nodes {
                guard await node.manager.connectedPeers().count == expected,
                    await node.manager.connectionCount() == expected
                else { return false }
            }
            return true
        }
        if !ok {
            for node in nodes {
                let peers = await node.manager.connectedPeers().count
                let connections = await node.manager.connectionCount()
                let metrics = await node.manager.metrics()
                print("node \(node.port): peers \(peers) connections \(connections) \(metrics)")
            }
        }
        XCTAssertTrue(ok, "mesh did not form", file: file, line: line)
    }
}
