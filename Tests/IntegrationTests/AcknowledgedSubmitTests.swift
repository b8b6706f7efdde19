import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import XCTest

/// Nothing a gateway acknowledged is lost (issue 15): a stream of HTTP submits goes to one gateway of the
/// four-node devnet while it is SIGKILLed and restarted ten times, and stopped by SIGTERM three more (which must
/// stop it in order, with status 0); every transfer it answered 202 for ends
/// included (read on another gateway) or refused with a code (read on the gateway that took it), none unknown.
/// Before the submit journal, transfers that sat in the killed node's mempool were lost without a trace.
final class AcknowledgedSubmitTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-acked" }

    func testEveryAcknowledgedSubmitEndsIncludedOrRefusedAcrossKillsAndStops() throws {
        nodes = try MultiNodeTests.TestNode.startedDevnet(dir: dir, epochLength: 20)
        XCTAssertTrue(
            Harness.wait(30) { nodes.allSatisfy { ($0.head()?.height ?? 0) >= 2 } }, "the devnet did not start")
        let victim = nodes[1]
        let witness = nodes[0]
        let keys = dir.appendingPathComponent("keys")
        let senders = try FileManager.default.contentsOfDirectory(atPath: keys.path)
            .filter { $0.hasSuffix(".key") && !$0.hasPrefix("validator") }.sorted().prefix(6)
            .map { try KeyFile.load(keys.appendingPathComponent($0).path) }
        XCTAssertEqual(senders.count, 6)
        let genesis = try Genesis.load(path: dir.appendingPathComponent("genesis.json").path).header.hash
        let recipient = Address(publicKey: try PrivateKey(bytes: Bytes32(w0: 7, w1: 7, w2: 7, w3: 7)).xOnlyPublicKey)
        var nonces = try senders.map { key -> UInt64 in
            let account = try Harness.json(
                witness.client, "/v1/accounts/\(Address(publicKey: key.xOnlyPublicKey).bech32)")
            return try XCTUnwrap((account["nextNonce"] as? NSNumber)?.uint64Value)
        }
        var acknowledged: [String] = []
        var refusedAtSubmit = 0
        var unanswered = 0

        /// One round: each sender's next transfer to the victim; a 202 moves that sender on, anything else
        /// (refused while the node catches up, no answer while it is down) retries the same transfer later.
        func round() {
            for (s, key) in senders.enumerated() {
                let body = TransactionBody(
                    genesis: genesis, sender: key.xOnlyPublicKey.bytes, nonce: nonces[s], maxFeePerUnit: 50,
                    tipPerUnit: 1, payload: .transfer(Transfer(to: recipient, amount: 1_000 + nonces[s])))
                let tx = SignedTransaction(body: body, signer: key)
                guard
                    let answer = try? victim.client.post(
                        "/v1/tx", body: tx.encoded, contentType: "application/octet-stream")
                else {
                    unanswered += 1
                    continue
                }
                let text = String(decoding: answer.body, as: UTF8.self)
                // A 202 lost to a kill and the retry's "alreadyKnown" both mean the node holds it.
                if answer.status == 202 || text.contains("alreadyKnown") {
                    acknowledged.append(Hex.encode(tx.id.bytes))
                    nonces[s] += 1
                } else {
                    refusedAtSubmit += 1
                }
            }
        }

        for i in 0..<13 {
            let until = Date().addingTimeInterval(0.6)
            while Date() < until { round() }
            if i % 4 != 3 {
                victim.kill()
            } else {
                XCTAssertEqual(victim.terminate(), 0, "SIGTERM did not stop the node with status 0")
            }
            round()  // into a dead node: nothing acknowledged
            try victim.start()
        }
        for _ in 0..<5 { round() }
        XCTAssertGreaterThan(acknowledged.count, 100, "too few acknowledged submits to mean anything")

        var unsettled = Set(acknowledged)
        var refused: [String: String] = [:]
        func settle() {
            for id in unsettled {
                if let j = try? Harness.json(witness.client, "/v1/tx/\(id)"), j["status"] as? String == "included" {
                    unsettled.remove(id)
                } else if let j = try? Harness.json(victim.client, "/v1/tx/\(id)"), j["status"] as? String == "refused"
                {
                    refused[id] = j["code"] as? String ?? "?"
                    unsettled.remove(id)
                }
            }
        }
        XCTAssertTrue(
            Harness.wait(60) {
                settle()
                return unsettled.isEmpty
            },
            "\(unsettled.count) of \(acknowledged.count) acknowledged transfers are neither included nor refused")
        XCTAssertTrue(refused.values.allSatisfy { !$0.isEmpty && $0 != "?" }, "refusals without a code: \(refused)")
        // Honest transfers with the right nonces and funds: the chain should have taken every one of them.
        XCTAssertEqual(refused.count, 0, "refused: \(refused)")
        print(
            "acknowledged \(acknowledged.count) (\(refusedAtSubmit) refused at submit, \(unanswered) unanswered), "
                + "all included")
    }
}
