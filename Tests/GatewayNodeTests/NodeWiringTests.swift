import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger
import Network
import XCTest

@testable import GatewayNode

/// The pieces of a committee node that need no processes: config validation, message encodings, the vote journal.
final class NodeWiringTests: XCTestCase {
    func testConfigParsesRelativePathsAndRefusesMistakes() throws {
        let yaml = """
            data: node-1
            genesis: /abs/genesis.json
            key: keys/v1.key
            p2p: { host: 127.0.0.1, port: 7001 }
            http: { host: 127.0.0.1, port: 0 }
            peers:
              - { host: 127.0.0.1, port: 7002 }
            consensus: { blockInterval: 200, proposeTimeout: 800 }
            """
        let c = try NodeConfig(yaml: yaml, baseDirectory: "/base")
        XCTAssertEqual(c.dataDirectory, "/base/node-1")
        XCTAssertEqual(c.genesisPath, "/abs/genesis.json")
        XCTAssertEqual(c.peers, [NodeConfig.Peer(host: "127.0.0.1", port: 7002)])
        XCTAssertEqual(c.timing.blockInterval, 200)
        XCTAssertEqual(c.timing.schedule.milliseconds(for: .propose, round: 2), 800 + 2 * 500)
        XCTAssertNil(c.coap)
        XCTAssertFalse(c.journalFsync)
        XCTAssertTrue(try NodeConfig(yaml: yaml + "\njournal_fsync: true", baseDirectory: "/base").journalFsync)
        XCTAssertFalse(c.requireDeviceCertificate)
        XCTAssertTrue(
            try NodeConfig(yaml: yaml + "\nrequire_device_certificate: true", baseDirectory: "/")
                .requireDeviceCertificate)

        func refused(_ text: String, _ needle: String, line: UInt = #line) {
            do {
                _ = try NodeConfig(yaml: text, baseDirectory: "/")
                XCTFail("accepted", line: line)
            } catch {
                XCTAssertTrue(error.message.contains(needle), "\(error.message)", line: line)
            }
        }
        refused(yaml.replacingOccurrences(of: "port: 7001", with: "port: 70001"), "p2p.port")
        refused(yaml + "\nblockinterval: 5", "unknown key 'blockinterval'")
        refused(yaml.replacingOccurrences(of: "port: 7002 }", with: "port: 7002, key: abc }"), "64 hex digits")
        refused(yaml.replacingOccurrences(of: "data: node-1\n", with: ""), "missing 'data'")
        refused(yaml.replacingOccurrences(of: "blockInterval: 200", with: "blockInterval: 1"), "blockInterval")
        refused(yaml + "\njournal_fsync: sometimes", "'journal_fsync' must be true or false")
        refused(yaml + "\nrequire_device_certificate: 1", "'require_device_certificate' must be true or false")

        // The CoAP door's limits: requests and submits per device, each with its burst.
        let limited = try NodeConfig(
            yaml: yaml
                + "\ncoap: { host: 127.0.0.1, port: 5683, requests_per_second: 900, burst: 1800, submits_per_second: 90, submit_burst: 180 }",
            baseDirectory: "/")
        XCTAssertEqual(
            [limited.coapRequestsPerSecond, limited.coapBurst, limited.coapSubmitsPerSecond, limited.coapSubmitBurst],
            [900, 1800, 90, 180])
        XCTAssertEqual(
            [c.coapRequestsPerSecond, c.coapBurst, c.coapSubmitsPerSecond, c.coapSubmitBurst], [50, 200, 2, 10])
        refused(
            yaml + "\ncoap: { host: 127.0.0.1, port: 5683, submits_per_second: 0 }",
            "'coap.submits_per_second' must be a number above 0")
        refused(yaml + "\ncoap: { host: 127.0.0.1, port: 5683, submit_rate: 3 }", "submit_rate")
    }

    func testPeerMessagesRoundTripAndRefuseBadPayloads() throws {
        let messages: [PeerMessage] = [
            .status(height: 42, hash: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)),
            .blockRequest(from: 7, count: 64),
            .blockResponse([]),
            .transaction([1, 2, 3]),
            .transactions([[1, 2, 3], [4], Array(repeating: 9, count: 300)]),
        ]
        for m in messages { XCTAssertEqual(try PeerMessage(frame: m.frame), m) }
        // A batch: not empty, not over the count cap, no empty or over-long item, nothing after its last item.
        func batch(_ count: UInt64, _ items: [[UInt8]], extra: [UInt8] = []) -> Frame {
            var w = ByteWriter()
            w.writeVarint(count)
            for item in items { w.writeLengthPrefixed(item) }
            return Frame(kind: PeerMessage.Kind.transactions, payload: w.bytes + extra)
        }
        XCTAssertThrowsError(try PeerMessage(frame: batch(0, [])))
        XCTAssertThrowsError(try PeerMessage(frame: batch(1025, [[1]])))
        XCTAssertThrowsError(try PeerMessage(frame: batch(2, [[1]])), "a count above the items is truncation")
        XCTAssertThrowsError(try PeerMessage(frame: batch(1, [[]])))
        XCTAssertThrowsError(try PeerMessage(frame: batch(1, [Array(repeating: 1, count: Caps.transactionBytes + 1)])))
        XCTAssertThrowsError(try PeerMessage(frame: batch(1, [[1]], extra: [0])))
        XCTAssertEqual(try PeerMessage(frame: batch(1, [[7, 7]])), .transactions([[7, 7]]))
        XCTAssertThrowsError(try PeerMessage(frame: PeerMessage.blockRequest(from: 7, count: 65).frame))
        var trailing = PeerMessage.status(height: 1, hash: .zero).frame
        trailing.payload.append(0)
        XCTAssertThrowsError(try PeerMessage(frame: trailing))
        XCTAssertThrowsError(try PeerMessage(frame: Frame(kind: 0x7F, payload: [])))
        // Every kind is registered with a cap the global ceiling admits.
        let kinds = PeerMessage.frameKinds()
        for k in PeerMessage.Kind.proposal...PeerMessage.Kind.transactions { XCTAssertNotNil(kinds.maxPayload(of: k)) }
    }

    func testVoteJournalRefusesAConflictingVoteAfterReopening() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let key = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 7, w3: 7))
        func vote(_ h: UInt64, _ r: UInt32, _ step: VoteStep, _ hash: Bytes32) -> Vote {
            let message = Vote.signingHash(
                chainID: 1, genesis: .zero, height: h, round: r, step: step, blockHash: hash,
                voter: key.xOnlyPublicKey.bytes)
            return Vote(
                chainID: 1, height: h, round: r, step: step, blockHash: hash, voter: key.xOnlyPublicKey.bytes,
                signature: key.signSchnorr(message, auxRandom: .zero))
        }
        let a = Bytes32(w0: 0xA, w1: 0, w2: 0, w3: 0)
        let b = Bytes32(w0: 0xB, w1: 0, w2: 0, w3: 0)
        do {
            let j = try VoteJournal(path: path)
            try j.record(vote(5, 0, .prepare, .zero))
            try j.record(vote(6, 1, .commit, a))
        }
        // A torn last line (power loss mid-append) is ignored.
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seekToEnd()
        try h.write(contentsOf: Data("6 2 1 ab".utf8))
        try h.close()
        let j = try VoteJournal(path: path)
        XCTAssertEqual(j.entries.count, 1, "only the highest height is kept")
        XCTAssertTrue(j.permits(vote(6, 1, .commit, a)), "re-sending the same vote is fine")
        XCTAssertFalse(j.permits(vote(6, 1, .commit, b)), "a different block in the same round is a double sign")
        XCTAssertTrue(j.permits(vote(6, 2, .commit, b)), "another round is another vote")
        XCTAssertFalse(j.permits(vote(5, 3, .prepare, b)), "below the journal's height nothing is known: refuse")
        XCTAssertTrue(j.permits(vote(7, 0, .prepare, b)))
    }
}
