import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import XCTest
import AmarsTestSupport

/// An outsider with no key against real gateways on loopback: relaying two members' handshakes and writing
/// garbage into the relayed streams, holding a restarted member's handshake slots, and replaying a transaction
/// on another network. Finality goes on, the member rejoins, and the replay is refused.
final class HostileDevnetTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-hostile" }

    private func startDevnet() throws {
        nodes = try MultiNodeTests.TestNode.startedDevnet(dir: dir)
        XCTAssertTrue(Harness.wait(40) { self.heights().allSatisfy { $0 >= 3 } }, "heights: \(heights())")
    }

    private func heights() -> [UInt64] { nodes.map { $0.head()?.height ?? 0 } }

    /// Connected committee members and the network counters of node `n` (`/v1/consensus`).
    private func network(_ n: MultiNodeTests.TestNode) -> (connected: Int, bans: Int, disconnects: [String: Int])? {
        guard let j = try? Harness.json(n.client, "/v1/consensus"),
            let members = (j["committee"] as? [String: Any])?["members"] as? [[String: Any]],
            let counters = j["network"] as? [String: Any]
        else { return nil }
        let connected = members.filter { $0["connected"] as? Bool == true }.count
        let bans = (counters["bans"] as? NSNumber)?.intValue ?? -1
        let disconnects = (counters["disconnects"] as? [String: Any] ?? [:]).mapValues {
            ($0 as? NSNumber)?.intValue ?? 0
        }
        return (connected, bans, disconnects)
    }

    /// For ten seconds the attacker dials every ordered pair of members and relays their bytes, injecting a
    /// garbage frame after the handshakes; before the fix, the higher key of each pair dropped its honest
    /// connection for the relayed one and the garbage got the other key banned, leaving every node alone.
    func testRelayedHandshakesAndInjectedFramesNeverHaltFinality() throws {
        try startDevnet()
        let before = heights().min() ?? 0
        // Two members that dial each other at the same instant settle it as a duplicate: an honest start may have
        // some. Only new ones would be the relay's doing.
        let duplicatesBefore = nodes.map { network($0)?.disconnects["duplicate_connection"] ?? 0 }
        let deadline = Date().addingTimeInterval(10)
        var relays = 0
        while Date() < deadline {
            for a in nodes {
                for b in nodes where a.index != b.index {
                    if let relay = RawRelay(ports: (a.p2pPort, b.p2pPort), injectAfter: 209) {
                        relay.runUntilClosed(timeout: 2)
                        relays += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(relays, 24)
        XCTAssertTrue(
            Harness.wait(10) { (self.heights().min() ?? 0) >= before + 10 },
            "finality must go on under the attack: \(before) then \(heights())")
        for n in nodes {
            let status = try XCTUnwrap(network(n), "node \(n.index + 1) has no /v1/consensus")
            XCTAssertEqual(status.connected, 3, "node \(n.index + 1) lost members: \(status)")
            XCTAssertEqual(status.bans, 0, "node \(n.index + 1) banned an honest key: \(status)")
            XCTAssertEqual(
                status.disconnects["duplicate_connection"] ?? 0, duplicatesBefore[n.index],
                "a relay displaced a session")
            XCTAssertGreaterThan(
                status.disconnects["handshake_badSignature"] ?? 0, 0, "relayed handshakes must fail at Auth")
        }
    }

    /// A member restarts while someone holds 80 connections open on its peer port, reopening each as soon as it
    /// is cut: its own dials never wait for a slot, and it is back with the committee within seconds.
    func testHeldHandshakeSlotsDoNotIsolateARestartedMember() throws {
        try startDevnet()
        let member = nodes[3]
        member.kill()
        let holder = SlotHolder(port: member.p2pPort, count: 80)
        holder.start()
        defer { holder.stop() }
        try member.start()
        let rejoined = Harness.wait(8) { self.network(member)?.connected == 3 }
        let status = network(member)
        XCTAssertTrue(rejoined, "the restarted member stayed isolated: \(String(describing: status))")
        XCTAssertGreaterThan(holder.opened, 80, "the holder kept its connections coming")
        let top = heights().max() ?? 0
        XCTAssertTrue(
            Harness.wait(10) { (member.head()?.height ?? 0) >= top + 3 }, "the member follows the chain again")
    }

    /// Two single-node networks with the same chain id and the same funded key: a transfer final on one is
    /// refused by the other as naming another genesis block, and moves nothing there.
    func testATransactionFinalOnOneNetworkIsRefusedOnAnother() throws {
        let sender = try PrivateKey(bytes: Bytes32(w0: 5, w1: 0, w2: 0, w3: 1))
        let recipient = Address(publicKey: try PrivateKey(bytes: Bytes32(w0: 5, w1: 0, w2: 0, w3: 2)).xOnlyPublicKey)
        var daemons: [Harness.Daemon] = []
        defer { for d in daemons { d.process.terminate() } }
        var genesisBlocks: [Bytes32] = []
        for (i, name) in ["replay-a", "replay-b"].enumerated() {
            let data = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: data.appendingPathComponent("keys"), withIntermediateDirectories: true)
            let validator = KeyFile.generate()
            try KeyFile.write(validator, to: data.appendingPathComponent("keys/validator.key").path)
            let allocations = Genesis.Category.allCases.map {
                Genesis.Allocation(category: $0, address: Address(publicKey: sender.xOnlyPublicKey), amount: $0.amount)
            }
            let genesis = Genesis(
                chainID: 7001, chainName: name, timestamp: 1_700_000_000_000 + UInt64(i), epochLength: 10,
                initialBaseFee: 1, validators: [.init(key: validator.xOnlyPublicKey.bytes, weight: 1)],
                allocations: allocations, burned: [:])
            try genesis.jsonData().write(to: data.appendingPathComponent("genesis.json"))
            genesisBlocks.append(genesis.header.hash)
            daemons.append(
                try Harness.startDaemon(
                    data: data, blockInterval: 100, coapPort: Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))))
        }
        XCTAssertNotEqual(genesisBlocks[0], genesisBlocks[1])
        let clients = try daemons.map { try HTTPClient(baseURL: "http://127.0.0.1:\($0.port)", timeoutSeconds: 5) }
        let tx = SignedTransaction(
            body: TransactionBody(
                genesis: genesisBlocks[0], sender: sender.xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 50,
                tipPerUnit: 1, payload: .transfer(Transfer(to: recipient, amount: 1_000_000))),
            signer: sender)
        let accepted = try clients[0].post("/v1/tx", body: tx.encoded, contentType: "application/octet-stream")
        XCTAssertEqual(accepted.status, 202)
        XCTAssertTrue(
            Harness.wait(10) { self.balance(clients[0], recipient) == 1_000_000 }, "final on the network it names")

        let replayed = try clients[1].post("/v1/tx", body: tx.encoded, contentType: "application/octet-stream")
        XCTAssertEqual(replayed.status, 400)
        let error = try JSONSerialization.jsonObject(with: Data(replayed.body)) as? [String: Any]
        XCTAssertEqual((error?["error"] as? [String: Any])?["code"] as? String, "wrongChain")
        let height = try XCTUnwrap((try Harness.json(clients[1], "/v1/head")["height"] as? NSNumber)?.uint64Value)
        XCTAssertTrue(
            Harness.wait(5) {
                ((try? Harness.json(clients[1], "/v1/head"))?["height"] as? NSNumber)?.uint64Value ?? 0 >= height + 3
            })
        XCTAssertEqual(balance(clients[1], recipient), 0, "nothing moved on the other network")
    }

    private func balance(_ client: HTTPClient, _ address: Address) -> UInt64? {
        guard let j = try? Harness.json(client, "/v1/accounts/\(address.bech32)") else { return nil }
        // Base units as a decimal string (JSON numbers cannot hold every UInt64).
        return (j["balance"] as? String).flatMap { UInt64($0) }
    }
}

/// Two TCP connections, one to each port, with each side's bytes written to the other: a relay that holds no
/// key. After `injectAfter` bytes from a side, a frame of an unknown kind is written into the other direction.
private final class RawRelay: @unchecked Sendable {  // each fd is touched by its two threads only via read/write
    let first: Int32
    let second: Int32
    let injectAfter: Int

    init?(ports: (Int, Int), injectAfter: Int) {
        guard let a = LoopbackSocket.connectTCP(port: ports.0) else { return nil }
        guard let b = LoopbackSocket.connectTCP(port: ports.1) else {
            close(a)
            return nil
        }
        first = a
        second = b
        self.injectAfter = injectAfter
    }

    /// Pumps both directions until either side closes or `timeout` passes, then closes both.
    func runUntilClosed(timeout: TimeInterval) {
        let done = DispatchGroup()
        for (from, to) in [(first, second), (second, first)] {
            done.enter()
            Thread.detachNewThread { [injectAfter] in
                defer { done.leave() }
                var buffer = [UInt8](repeating: 0, count: 4096)
                var forwarded = 0
                var injected = false
                while true {
                    let n = read(from, &buffer, buffer.count)
                    if n <= 0 { break }
                    if write(to, buffer, n) != n { break }
                    forwarded += n
                    if !injected && forwarded >= injectAfter {
                        injected = true
                        let garbage: [UInt8] = [0, 0, 0, 3, 0x7F, 1, 2]
                        _ = write(to, garbage, garbage.count)
                    }
                }
                shutdown(to, Int32(SHUT_RDWR))
            }
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            shutdown(first, Int32(SHUT_RDWR))
            shutdown(second, Int32(SHUT_RDWR))
            done.wait()
        }
        close(first)
        close(second)
    }
}

/// Keeps `count` silent connections open on a port, reopening each as soon as it is closed.
private final class SlotHolder: @unchecked Sendable {  // `lock` guards every mutable field
    let port: Int
    let count: Int
    private let lock = NSLock()
    private var running = true
    private var openedCount = 0
    private let finished = DispatchGroup()

    init(port: Int, count: Int) {
        self.port = port
        self.count = count
    }

    var opened: Int { lock.withLock { openedCount } }
    private var isRunning: Bool { lock.withLock { running } }

    func start() {
        for _ in 0..<count {
            finished.enter()
            Thread.detachNewThread { [self] in
                defer { finished.leave() }
                while isRunning {
                    guard let fd = LoopbackSocket.connectTCP(port: port) else {
                        usleep(5_000)
                        continue
                    }
                    lock.withLock { openedCount += 1 }
                    var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    // Hold it until the gateway cuts it (or the test ends); read nothing, send nothing.
                    while isRunning {
                        if poll(&pollfd, 1, 50) > 0 {
                            var byte: UInt8 = 0
                            // Its Hello arrives first; a closed connection reads 0.
                            if read(fd, &byte, 1) <= 0 { break }
                        }
                    }
                    close(fd)
                    usleep(2_000)
                }
            }
        }
    }

    func stop() {
        lock.withLock { running = false }
        finished.wait()
    }
}
