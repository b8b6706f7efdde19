import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import XCTest

/// Four real `amarsd node` processes on loopback, each a delegate with its own SQLite file, finalizing one chain
/// together over the peer network (Roll-DPoS, instant BFT finality). Equal weights, so any three are a quorum
/// and any two are not.
///
/// One run, three phases (booting four nodes once keeps the whole test well under 90 s):
/// 1. they finalize blocks (past an epoch boundary, so the VRF-drawn committee takes over) and agree on every
///    height; a transfer submitted to node 1 is final on node 4; `GET /v1/consensus` shows the committee, all
///    peers connected and a final head;
/// 2. SIGKILL node 2: the other three go on; restart it: it catches up to the same block and state root;
/// 3. SIGKILL nodes 2 and 3: the chain halts (no quorum) without any disagreement; a transfer submitted to node 1
///    meanwhile is pending on node 4 (gossip: no block can have carried it); restart node 3: the chain resumes
///    and the transfer is final; restart node 2: it is final there too.
///
/// Every wait has a deadline; tearDown kills whatever is still running.
final class MultiNodeTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-multi" }

    static let chainID: UInt32 = 4_077

    final class TestNode {
        let index: Int
        let config: URL
        let log: URL
        var process: Process?
        var port = 0
        /// The peer-to-peer port its config names.
        var p2pPort = 0
        /// Added to the test's environment when the node starts (AMARSD_TEST_EQUIVOCATE, say).
        var environment: [String: String] = [:]
        /// Flags after `--config` (a fixed `--http-port`, say, so a restarted node answers where it did).
        var arguments: [String] = []

        init(index: Int, config: URL, log: URL) {
            self.index = index
            self.config = config
            self.log = log
        }

        var client: HTTPClient { try! HTTPClient(baseURL: "http://127.0.0.1:\(port)", timeoutSeconds: 3) }

        /// Consensus timing for tests: blocks every 200 ms, short timeouts.
        static let fastConsensus = """

              blockInterval: 200
              proposeTimeout: 800
              prepareTimeout: 400
              commitTimeout: 400
              timeoutIncrement: 200
              retransmitInterval: 300
            """

        /// A fresh four-validator genesis in `dir` (epochs of `epochLength` blocks) and its four gateways with
        /// ``fastConsensus``, started.
        static func startedDevnet(dir: URL, epochLength: Int = 20) throws -> [TestNode] {
            let genesis = dir.appendingPathComponent("genesis.json").path
            let keys = dir.appendingPathComponent("keys").path
            let made = try Harness.amars([
                "genesis", "new", "--out", genesis, "--keys", keys, "--validators", "4", "--epoch-length",
                String(epochLength),
            ])
            guard made.status == 0 else { throw Harness.StartFailure(description: "genesis new: \(made.error)") }
            let nodes = try devnet(dir: dir, genesis: genesis, keys: keys, consensus: fastConsensus)
            do { for n in nodes { try n.start() } } catch {
                for n in nodes { n.kill() }
                throw error
            }
            return nodes
        }

        /// Four gateways of the genesis `amars genesis new --validators 4` wrote (keys in `keys`), each in
        /// `dir/node-N` with a YAML config naming the other three as peers; `consensus` is the YAML of its
        /// timing and `extra(i)` is appended to node i's config (a CoAP door, say). Not started.
        static func devnet(
            dir: URL, genesis: String, keys: String, consensus: String, extra: (Int) -> String = { _ in "" }
        ) throws -> [TestNode] {
            let validatorKeys = try (1...4).map { try KeyFile.load("\(keys)/validator-\($0).key") }
            let ports = Harness.freePorts(4)
            var nodes: [TestNode] = []
            for i in 0..<4 {
                let nodeDir = dir.appendingPathComponent("node-\(i + 1)")
                try FileManager.default.createDirectory(at: nodeDir, withIntermediateDirectories: true)
                var yaml = """
                    data: \(nodeDir.path)
                    genesis: \(genesis)
                    key: \(keys)/validator-\(i + 1).key
                    p2p: { host: 127.0.0.1, port: \(ports[i]) }
                    http: { host: 127.0.0.1, port: 0 }
                    consensus:\(consensus)
                    log: warning
                    peers:

                    """
                for j in 0..<4 where j != i {
                    let key = Hex.encode(validatorKeys[j].xOnlyPublicKey.bytes.bytes)
                    yaml += "  - { host: 127.0.0.1, port: \(ports[j]), key: \(key) }\n"
                }
                yaml += extra(i)
                let config = nodeDir.appendingPathComponent("node.yaml")
                try yaml.write(to: config, atomically: true, encoding: .utf8)
                let node = TestNode(index: i, config: config, log: nodeDir.appendingPathComponent("amarsd.log"))
                node.p2pPort = ports[i]
                nodes.append(node)
            }
            return nodes
        }

        func start() throws {
            let p = Process()
            p.executableURL = Harness.binDirectory.appendingPathComponent("amarsd")
            p.arguments = ["node", "--config", config.path] + arguments
            if !environment.isEmpty {
                p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            }
            let out = Pipe()
            p.standardOutput = out
            if !FileManager.default.fileExists(atPath: log.path) {
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            }
            let err = try FileHandle(forWritingTo: log)
            try err.seekToEnd()
            p.standardError = err
            try p.run()
            process = p
            var text = ""
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, !text.contains("P2P") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            guard let range = text.range(of: #"127\.0\.0\.1:(\d+)/v1/head"#, options: .regularExpression) else {
                kill()
                // What the node said on its way out is in its log, which the test's teardown deletes.
                let said = (try? String(contentsOf: log, encoding: .utf8)).map { $0.split(separator: "\n").suffix(5) }
                throw Harness.StartFailure(
                    description:
                        "node \(index + 1) did not start: \(text) (its log: \(said?.joined(separator: " | ") ?? "none"))"
                )
            }
            port = Int(text[range].split(separator: ":")[1].split(separator: "/")[0])!
        }

        func kill() {
            guard let p = process else { return }
            if p.isRunning { sendSignal(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            process = nil
        }

        /// SIGTERM, as systemd stops a node: returns its exit status, or nil if it had not stopped within 10 s
        /// (it is then SIGKILLed).
        func terminate() -> Int32? {
            guard let p = process else { return nil }
            process = nil
            return Harness.signal(p, SIGTERM) ? p.terminationStatus : nil
        }

        var isRunning: Bool { process?.isRunning ?? false }

        func head() -> (height: UInt64, hash: String)? {
            guard let j = try? Harness.json(client, "/v1/head"), let h = (j["height"] as? NSNumber)?.uint64Value,
                let hash = j["hash"] as? String
            else { return nil }
            return (h, hash)
        }

        func block(_ height: UInt64) -> (hash: String, stateRoot: String)? {
            guard let j = try? Harness.json(client, "/v1/blocks/\(height)"), let hash = j["hash"] as? String,
                let header = j["header"] as? [String: Any], let root = header["stateRoot"] as? String
            else { return nil }
            return (hash, root)
        }
    }

    func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool { Harness.wait(seconds, condition) }

    func heights(_ which: [TestNode]) -> [UInt64] { which.map { $0.head()?.height ?? 0 } }

    /// Every height up to the lowest head of `which` has one hash on all of them.
    func assertAgreement(_ which: [TestNode], from: UInt64 = 1, file: StaticString = #filePath, line: UInt = #line) {
        let top = heights(which).min() ?? 0
        guard top >= from else { return }
        for h in from...top {
            let hashes = which.map { $0.block(h)?.hash ?? "missing" }
            XCTAssertEqual(Set(hashes).count, 1, "height \(h): nodes disagree: \(hashes)", file: file, line: line)
            XCTAssertFalse(hashes.contains("missing"), "height \(h) missing on some node", file: file, line: line)
        }
    }

    func testFourGatewaysFinalizeTogetherSurviveACrashAndHaltWithoutQuorum() throws {
        let genesisPath = dir.appendingPathComponent("genesis.json").path
        let keys = dir.appendingPathComponent("keys").path
        let made = try Harness.amars([
            "genesis", "new", "--out", genesisPath, "--keys", keys, "--validators", "4", "--epoch-length", "10",
            "--chain-id", String(Self.chainID), "--chain-name", "multi",
        ])
        XCTAssertEqual(made.status, 0, made.error)
        let validatorKeys = try (1...4).map { try KeyFile.load("\(keys)/validator-\($0).key") }
        nodes = try TestNode.devnet(
            dir: dir, genesis: genesisPath, keys: keys,
            consensus: MultiNodeTests.TestNode.fastConsensus)
        for n in nodes { try n.start() }

        // Phase 1: finality past the first epoch boundary (height 10), agreement, a transfer across nodes.
        XCTAssertTrue(wait(40) { heights(nodes).allSatisfy { $0 >= 12 } }, "heights: \(heights(nodes))")
        assertAgreement(nodes)

        let sender = try KeyFile.load("\(keys)/app-user-incentive.key")
        let recipient = Address(publicKey: try PrivateKey(bytes: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)).xOnlyPublicKey)
        let senderAccount = try Harness.json(
            nodes[0].client, "/v1/accounts/\(Address(publicKey: sender.xOnlyPublicKey).bech32)")
        let nonce = try XCTUnwrap((senderAccount["nextNonce"] as? NSNumber)?.uint64Value)
        let genesisBlock = try Genesis.load(path: genesisPath).header.hash
        func transfer(nonce: UInt64, amount: UInt64) -> SignedTransaction {
            let body = TransactionBody(
                genesis: genesisBlock, sender: sender.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: 50,
                tipPerUnit: 1, payload: .transfer(Transfer(to: recipient, amount: amount)))
            return SignedTransaction(body: body, signer: sender)
        }
        func txStatus(_ node: TestNode, _ tx: SignedTransaction) -> String? {
            (try? Harness.json(node.client, "/v1/tx/\(Hex.encode(tx.id.bytes))"))?["status"] as? String
        }
        let tx = transfer(nonce: nonce, amount: 1_234_567)
        let posted = try nodes[0].client.post("/v1/tx", body: tx.encoded, contentType: "application/octet-stream")
        XCTAssertTrue((200..<300).contains(posted.status), "submit: \(String(decoding: posted.body, as: UTF8.self))")
        let id = Hex.encode(tx.id.bytes)
        XCTAssertTrue(
            wait(20) { ((try? Harness.json(nodes[3].client, "/v1/tx/\(id)"))?["status"] as? String) == "included" },
            "the transfer submitted to node 1 is not final on node 4")
        let account = try Harness.json(nodes[3].client, "/v1/accounts/\(recipient.bech32)")
        XCTAssertEqual("\(account["balance"] ?? "none")", "1234567")
        try checkConsensusStatus(nodes[0], keys: validatorKeys)
        // The pool (the four validators) attests the checkpoint closing epoch 0, and gossip brings every
        // attestation to every gateway: what `v1/skip` serves a sleeping device.
        let pool = Set(validatorKeys.map { Hex.encode($0.xOnlyPublicKey.bytes.bytes) })
        func attesters(_ node: TestNode) -> Set<String> {
            let page = try? Harness.json(node.client, "/v1/checkpoints?from=0&limit=1")
            let first = (page?["checkpoints"] as? [[String: Any]])?.first
            return Set(first?["attesters"] as? [String] ?? [])
        }
        XCTAssertTrue(
            wait(10) { nodes.allSatisfy { attesters($0) == pool } },
            "attesters of checkpoint 0: \(nodes.map { attesters($0).count }) of 4 per node")

        // Phase 2: one of four down — the chain goes on; back up — it catches up to the same state.
        nodes[1].kill()
        let survivors = [nodes[0], nodes[2], nodes[3]]
        let atKill = heights(survivors).max() ?? 0
        XCTAssertTrue(
            wait(20) { heights(survivors).allSatisfy { $0 >= atKill + 5 } },
            "three of four must keep finalizing: \(heights(survivors)) from \(atKill)")
        try nodes[1].start()
        let target = heights(survivors).min() ?? 0
        XCTAssertTrue(wait(20) { (nodes[1].head()?.height ?? 0) >= target }, "node 2 did not catch up to \(target)")
        let restarted = nodes[1].block(target)
        XCTAssertNotNil(restarted)
        XCTAssertEqual(restarted?.hash, nodes[0].block(target)?.hash, "block \(target) differs after catch-up")
        XCTAssertEqual(restarted?.stateRoot, nodes[0].block(target)?.stateRoot, "state root \(target) differs")
        XCTAssertTrue(
            wait(20) { (nodes[1].head()?.height ?? 0) >= target + 3 }, "node 2 does not follow the chain after catch-up"
        )
        assertAgreement(nodes)

        // Phase 3: two of four down — no quorum, the chain halts, and nobody disagrees.
        nodes[1].kill()
        nodes[2].kill()
        let live = [nodes[0], nodes[3]]
        usleep(1_500_000)  // a height whose votes were already out may still finish
        let haltedAt = heights(live)
        // While halted, a transfer submitted to node 1 reaches node 4's mempool: only gossip can carry it there.
        let gossiped = transfer(nonce: nonce + 1, amount: 7_654_321)
        let second = try nodes[0].client.post(
            "/v1/tx", body: gossiped.encoded, contentType: "application/octet-stream")
        XCTAssertTrue((200..<300).contains(second.status), "submit: \(String(decoding: second.body, as: UTF8.self))")
        XCTAssertTrue(wait(3) { txStatus(nodes[3], gossiped) == "pending" }, "the transfer was not gossiped to node 4")
        // The operator's view of the halt: one peer left, the core still at the height after the head.
        XCTAssertTrue(
            wait(3) {
                let c = try? Harness.json(nodes[0].client, "/v1/consensus")
                return ((c?["peers"] as? [String: Any])?["connected"] as? NSNumber)?.intValue == 1
            }, "node 1 should report one connected peer")
        let halted = try Harness.json(nodes[0].client, "/v1/consensus")
        XCTAssertEqual(
            ((halted["core"] as? [String: Any])?["height"] as? NSNumber)?.uint64Value, (haltedAt.first ?? 0) + 1)
        usleep(3_000_000)
        XCTAssertEqual(heights(live), haltedAt, "the chain advanced without a quorum")
        XCTAssertEqual(txStatus(nodes[3], gossiped), "pending")
        assertAgreement(live)
        // One back: three of four again, the chain resumes and the gossiped transfer becomes final.
        try nodes[2].start()
        let top = haltedAt.max() ?? 0
        let running = [nodes[0], nodes[2], nodes[3]]
        XCTAssertTrue(
            wait(40) { heights(running).allSatisfy { $0 >= top + 3 } },
            "the chain did not resume with three of four: \(heights(running)) from \(top)")
        assertAgreement(running)
        XCTAssertTrue(
            wait(20) { running.allSatisfy { txStatus($0, gossiped) == "included" } },
            "the gossiped transfer is not final on nodes 1, 3 and 4")
        // The last one back catches up and holds the same transfer, final.
        try nodes[1].start()
        XCTAssertTrue(wait(20) { txStatus(nodes[1], gossiped) == "included" }, "node 2 lacks the gossiped transfer")
        assertAgreement(nodes)
    }

    /// `GET /v1/consensus` of a committee node in a healthy four-node chain.
    func checkConsensusStatus(_ node: TestNode, keys: [PrivateKey], file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        // Peers are refreshed on the gossip timer (300 ms here): wait until all three are seen.
        XCTAssertTrue(
            wait(5) {
                let c = try? Harness.json(node.client, "/v1/consensus")
                return ((c?["peers"] as? [String: Any])?["connected"] as? NSNumber)?.intValue == 3
            }, "node \(node.index + 1) should see three peers", file: file, line: line)
        let c = try Harness.json(node.client, "/v1/consensus")
        XCTAssertEqual(c["mode"] as? String, "committee", file: file, line: line)
        XCTAssertGreaterThanOrEqual(
            (c["epoch"] as? NSNumber)?.uint64Value ?? 0, 1, "past the first epoch", file: file, line: line)
        let members = (c["committee"] as? [String: Any])?["members"] as? [[String: Any]] ?? []
        let own = Hex.encode(keys[node.index].xOnlyPublicKey.bytes.bytes)
        XCTAssertEqual(
            Set(members.compactMap { $0["key"] as? String }),
            Set(keys.map { Hex.encode($0.xOnlyPublicKey.bytes.bytes) }),
            file: file, line: line)
        for m in members {
            let isSelf = m["key"] as? String == own
            XCTAssertEqual(m["self"] as? Bool, isSelf, file: file, line: line)
            XCTAssertEqual(
                m["connected"] as? Bool, !isSelf, "every other member is a connected peer", file: file, line: line)
        }
        let me = c["node"] as? [String: Any]
        XCTAssertEqual(me?["key"] as? String, own, file: file, line: line)
        XCTAssertEqual(me?["member"] as? Bool, true, file: file, line: line)
        let core = c["core"] as? [String: Any]
        XCTAssertEqual(core?["started"] as? Bool, true, file: file, line: line)
        let finality = c["finality"] as? [String: Any]
        XCTAssertEqual(finality?["final"] as? Bool, true, file: file, line: line)
        XCTAssertGreaterThanOrEqual((finality?["signers"] as? NSNumber)?.intValue ?? 0, 3, file: file, line: line)
        XCTAssertEqual(
            finality?["totalWeight"] as? String, (c["committee"] as? [String: Any])?["totalWeight"] as? String,
            file: file, line: line)
        let finalHeight = (finality?["height"] as? NSNumber)?.uint64Value ?? 0
        XCTAssertGreaterThanOrEqual(
            (core?["height"] as? NSNumber)?.uint64Value ?? 0, finalHeight, file: file, line: line)
        XCTAssertNotNil((c["network"] as? [String: Any])?["drops"] as? [String: Any], file: file, line: line)
    }
}

/// `kill(2)`, named apart from ``MultiNodeTests/TestNode/kill()`` which would shadow it.
private func sendSignal(_ pid: pid_t, _ sig: Int32) {
    _ = kill(pid, sig)
}
