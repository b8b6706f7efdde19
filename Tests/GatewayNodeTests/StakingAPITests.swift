@testable import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import GatewayNode
import Ledger
import XCTest

/// The staking, election, committee and checkpoint routes over real HTTP, against a chain advanced block by
/// block with `produceBlock` (epochs of 100 blocks, the pool of epoch E+1 elected at height 100·E + 51).
final class StakingAPITests: XCTestCase {
    var chain: TestChain!

    override func setUpWithError() throws { chain = try TestChain() }

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    private func json(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> (Int, [String: Any])
    {
        let r = try chain.http.get(path)
        guard let o = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
            XCTFail("\(path): not a JSON object: \(r.text)", file: file, line: line)
            return (r.status, [:])
        }
        return (r.status, o)
    }

    /// Asserts that `path` is refused with `status` and `code`, and that nothing changed.
    private func assertRefused(
        _ path: String, _ status: Int, _ code: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let before = chain.snapshot()
        let (s, o) = try json(path, file: file, line: line)
        XCTAssertEqual(s, status, path, file: file, line: line)
        XCTAssertEqual((o["error"] as? [String: Any])?["code"] as? String, code, path, file: file, line: line)
        XCTAssertFalse(((o["error"] as? [String: Any])?["message"] as? String ?? "").isEmpty, file: file, line: line)
        XCTAssertEqual(chain.snapshot(), before, "a refused request changed the chain", file: file, line: line)
    }

    private func signed(_ key: PrivateKey, nonce: UInt64, _ payload: TransactionPayload) -> SignedTransaction {
        SignedTransaction(
            body: TransactionBody(
                genesis: chain.node.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonce,
                maxFeePerUnit: 100,
                tipPerUnit: 1, payload: payload),
            signer: key)
    }

    private func produce(until height: UInt64) throws {
        while chain.node.head.height < height { try chain.produceBlock() }
    }

    private let selfStake = 10_000 * Amount.unitsPerAMSC
    private let bobStake = 500 * Amount.unitsPerAMSC

    /// Alice registers "alice-node" (bucket 1) and Bob stakes for her (bucket 2), in block 1.
    private func registerAndStake() throws {
        let alice = TestChain.address(chain.alice)
        try chain.client.submit(
            signed(
                chain.alice, nonce: 0,
                .candidateRegister(
                    CandidateRegister(
                        name: Array("alice-node".utf8), operatorKey: chain.validator.xOnlyPublicKey.bytes,
                        rewardAddress: alice, selfStake: selfStake, durationEpochs: 10, rewardShareBps: 1_000))))
        try chain.client.submit(
            signed(
                chain.bob, nonce: 0,
                .stake(Stake(candidate: alice, amount: bobStake, durationEpochs: 20, autoStake: false))))
        try chain.produceBlock()
        XCTAssertEqual(chain.node.head.height, 1)
    }

    func testCandidatesBucketsAndProofs() throws {
        let alice = TestChain.address(chain.alice)
        let bob = TestChain.address(chain.bob)
        var (status, o) = try json("/v1/candidates")
        XCTAssertEqual(status, 200)
        XCTAssertEqual((o["candidates"] as? [Any])?.count, 0)
        (status, o) = try json("/v1/staking")
        XCTAssertEqual(o["minSelfStake"] as? String, String(selfStake))
        XCTAssertEqual(o["epochLength"] as? Int, 100)
        XCTAssertTrue(o["latestCheckpoint"] is NSNull)

        try registerAndStake()
        let selfWeight = BucketState(
            owner: alice, candidate: alice, amount: selfStake, durationEpochs: 10, autoStake: false, startEpoch: 0
        ).weight
        let bobWeight = BucketState(
            owner: bob, candidate: alice, amount: bobStake, durationEpochs: 20, autoStake: false, startEpoch: 0
        ).weight

        (status, o) = try json("/v1/candidates")
        XCTAssertEqual(status, 200)
        let list = try XCTUnwrap(o["candidates"] as? [[String: Any]])
        XCTAssertEqual(list.count, 1)
        let c = list[0]
        XCTAssertEqual(c["owner"] as? String, alice.bech32)
        XCTAssertEqual(c["name"] as? String, "alice-node")
        XCTAssertEqual(c["operatorKey"] as? String, Hex.encode(chain.validator.xOnlyPublicKey.bytes.bytes))
        XCTAssertEqual(c["rewardAddress"] as? String, alice.bech32)
        XCTAssertEqual(c["rewardShareBps"] as? Int, 1_000)
        XCTAssertEqual(c["selfStakeBucket"] as? Int, 1)
        XCTAssertEqual(c["totalWeight"] as? String, String(selfWeight + bobWeight))
        XCTAssertEqual(c["ejected"] as? Bool, false)

        let typed = try chain.client.candidate(alice)
        XCTAssertEqual(typed.state, chain.node.candidate(alice))
        XCTAssertEqual(try chain.client.candidates().map(\.owner), [alice])
        XCTAssertEqual(try chain.client.staking().candidates, 1)
        XCTAssertEqual(try chain.client.staking().staked, selfStake + bobStake)

        // Buckets by owner and by candidate.
        XCTAssertEqual(try chain.client.buckets(owner: alice).map(\.id), [1])
        XCTAssertEqual(try chain.client.buckets(owner: bob).map(\.id), [2])
        XCTAssertEqual(try chain.client.buckets(candidate: alice).map(\.id), [1, 2])
        XCTAssertEqual(try chain.client.buckets(owner: TestChain.address(chain.carol)).count, 0)

        // One bucket, with its proof against the head's state root.
        (status, o) = try json("/v1/buckets/2")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(o["owner"] as? String, bob.bech32)
        XCTAssertEqual(o["candidate"] as? String, alice.bech32)
        XCTAssertEqual(o["amount"] as? String, String(bobStake))
        XCTAssertEqual(o["amountAMSC"] as? String, "500")
        XCTAssertEqual(o["lockEndEpoch"] as? Int, 20)
        XCTAssertEqual(o["weight"] as? String, String(bobWeight))
        XCTAssertTrue(o["unstakedEpoch"] is NSNull)
        let bucket = try chain.client.bucket(2)
        XCTAssertEqual(bucket.stateRoot, chain.node.head.stateRoot)
        XCTAssertTrue(bucket.verifyProof())
        var tampered = bucket
        tampered.state.amount += 1
        XCTAssertFalse(tampered.verifyProof(), "a proof must not verify another amount")

        // An absent bucket: 404 with a proof of its absence under the same root.
        (status, o) = try json("/v1/buckets/99")
        XCTAssertEqual(status, 404)
        XCTAssertEqual((o["error"] as? [String: Any])?["code"] as? String, "notFound")
        let proof = try SparseMerkleProof(decoding: try Hex.decode(try XCTUnwrap(o["proof"] as? String)))
        XCTAssertEqual(o["stateRoot"] as? String, Hex.encode(chain.node.head.stateRoot.bytes))
        XCTAssertTrue(proof.verify(root: chain.node.head.stateRoot, key: BucketInfo.stateKey(id: 99), valueHash: nil))
        XCTAssertFalse(proof.verify(root: chain.node.head.stateRoot, key: BucketInfo.stateKey(id: 2), valueHash: nil))

        // Bad inputs.
        try assertRefused("/v1/candidates/\(bob.bech32)", 404, "notFound")
        try assertRefused("/v1/candidates/amsc1notanaddress", 400, "invalidAddress")
        try assertRefused("/v1/candidates/\(String(repeating: "q", count: 500))", 400, "invalidAddress")
        try assertRefused("/v1/buckets", 400, "invalidQuery")
        try assertRefused("/v1/buckets?owner=amsc1bad", 400, "invalidAddress")
        try assertRefused("/v1/buckets?candidate=", 400, "invalidAddress")
        try assertRefused("/v1/buckets/abc", 400, "invalidBucketID")
        try assertRefused("/v1/buckets/-1", 400, "invalidBucketID")
        try assertRefused("/v1/buckets/99999999999999999999999", 400, "invalidBucketID")
        try assertRefused("/v1/buckets/0", 404, "notFound")
        let post = try chain.http.post("/v1/candidates", body: [], contentType: "application/json")
        XCTAssertEqual(post.status, 405)
    }

    func testElectionCommitteeAndCheckpoints() throws {
        let alice = TestChain.address(chain.alice)
        try registerAndStake()
        let committee0 = chain.genesis.committee(epoch: 0)

        // The pool of epoch 1 is elected at height 51.
        try assertRefused("/v1/election/1", 404, "notFound")
        try assertRefused("/v1/election/0", 404, "notFound")
        try assertRefused("/v1/election/x", 400, "invalidEpoch")
        try assertRefused("/v1/election/18446744073709551615", 404, "notFound")
        try produce(until: 51)
        var (status, o) = try json("/v1/election/1")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(o["electedAtHeight"] as? Int, 51)
        let delegates = try XCTUnwrap(o["delegates"] as? [[String: Any]])
        XCTAssertEqual(delegates.first?["candidate"] as? String, alice.bech32)
        XCTAssertEqual(delegates.first?["name"] as? String, "alice-node")
        let election = try chain.client.election(epoch: 1)
        XCTAssertEqual(election.pool, chain.node.delegatePool(epoch: 1))
        XCTAssertEqual(election.names, ["alice-node"])
        try assertRefused("/v1/election/2", 404, "notFound")

        // Committee: the head's epoch by default; the next one only once the epoch's last block names it.
        (status, o) = try json("/v1/committee")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(o["epoch"] as? Int, 0)
        XCTAssertEqual(o["hash"] as? String, Hex.encode(committee0.hash.bytes))
        XCTAssertEqual(o["totalWeight"] as? String, "1")
        let members = try XCTUnwrap(o["members"] as? [[String: Any]])
        XCTAssertEqual(members.first?["key"] as? String, Hex.encode(chain.validator.xOnlyPublicKey.bytes.bytes))
        XCTAssertEqual(try chain.client.committee().committee, committee0)
        try assertRefused("/v1/committee?epoch=1", 404, "notFound")
        try assertRefused("/v1/committee?epoch=abc", 400, "invalidEpoch")
        try assertRefused("/v1/committee?epoch=-1", 400, "invalidEpoch")
        try assertRefused("/v1/checkpoints?limit=0", 400, "invalidQuery")
        try assertRefused("/v1/checkpoints?from=x", 400, "invalidQuery")
        XCTAssertEqual(try chain.client.checkpoints().count, 0)

        try produce(until: 100)
        let named = try chain.client.committee(epoch: 1)
        XCTAssertEqual(named.committee, chain.node.committee(epoch: 1))
        XCTAssertEqual(named.committee.members.map(\.key), [chain.validator.xOnlyPublicKey.bytes])
        XCTAssertTrue(named.source.contains("delegate pool"), named.source)
        XCTAssertEqual(named.namedAtHeight, 100)
        XCTAssertEqual(chain.node.head.nextCommitteeHash, named.committee.hash)
        try assertRefused("/v1/committee?epoch=2", 404, "notFound")

        try produce(until: 200)
        (status, o) = try json("/v1/checkpoints")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(o["finishedEpochs"] as? Int, 2)
        let rows = try XCTUnwrap(o["checkpoints"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["height"] as? Int }, [100, 200])
        XCTAssertEqual(rows.map { $0["epoch"] as? Int }, [0, 1])
        XCTAssertNotNil(rows.first?["nextCommittee"] as? [String: Any])
        XCTAssertNotNil(rows.first?["certificate"] as? [String: Any])
        let checkpoints = try chain.client.checkpoints()
        XCTAssertEqual(checkpoints, try chain.node.checkpoints(from: 0, limit: 16))
        // Each link: the certificate of the epoch's committee over the block naming the next committee.
        for cp in checkpoints {
            XCTAssertNoThrow(
                try cp.certificate.verify(
                    committee: try XCTUnwrap(chain.node.committee(epoch: cp.header.epoch)), chainID: TestChain.chainID,
                    genesis: chain.node.genesisBlockHash, blockHash: cp.header.hash))
            XCTAssertEqual(cp.header.nextCommitteeHash, cp.nextCommittee.hash)
        }
        XCTAssertEqual(try chain.client.checkpoints(from: 1).map(\.header.height), [200])
        XCTAssertEqual(try chain.client.checkpoints(limit: 1).map(\.header.height), [100])
        XCTAssertEqual(try chain.client.checkpoints(from: 5).count, 0)
        XCTAssertEqual(try chain.client.checkpoints(from: UInt64.max).count, 0)
        (status, o) = try json("/v1/checkpoints?limit=100000")
        XCTAssertEqual(status, 200, "a large limit is capped, not refused")
        let overview = try chain.client.staking()
        XCTAssertEqual(overview.latestCheckpoint?.epoch, 1)
        XCTAssertEqual(overview.latestCheckpoint?.height, 200)

        let page = try chain.http.get("/")
        XCTAssertTrue(page.text.contains("Delegate pool of epoch"))
        XCTAssertTrue(page.text.contains("/v1/candidates"))
    }

    /// The mempool admits a staking transaction that will fail (it checks only nonce, fees and funds); the
    /// block builder then drops it: not included, status unknown, nothing charged. The CLI's --wait relies on it.
    func testFailingStakingTransactionIsDroppedNotIncluded() throws {
        let carol = TestChain.address(chain.carol)
        let before = chain.node.account(carol).state
        let tx = signed(
            chain.carol, nonce: 0,
            .stake(
                Stake(
                    candidate: TestChain.address(chain.bob), amount: Amount.unitsPerAMSC, durationEpochs: 1,
                    autoStake: false)))
        let id = try chain.client.submit(tx)
        XCTAssertEqual(try chain.client.transactionStatus(id).state, .pending)
        let block = try chain.produceBlock()
        XCTAssertTrue(block.block.transactions.isEmpty)
        XCTAssertThrowsError(try chain.client.transactionStatus(id)) { error in
            XCTAssertEqual((error as? NodeClientError)?.code, "notFound")
        }
        XCTAssertEqual(chain.node.account(carol).state, before)
        XCTAssertEqual(chain.node.pendingCount, 0)
        XCTAssertTrue(chain.node.candidates().isEmpty)
    }
}
