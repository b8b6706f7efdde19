import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Chain

/// Candidates, buckets, weights, unbonding and the mid-epoch election, executed through real blocks; a replica
/// that imports the same blocks agrees on every state root, and the supply stays whole with stakes counted.
final class StakingTests: XCTestCase {
    var t: TestChain!
    var node: ChainNode!
    var replica: ChainNode!
    var nonces: [Address: UInt64] = [:]
    var timestamp: UInt64 = 1_700_000_001_000

    override func setUpWithError() throws {
        t = TestChain(epochLength: 4)
        node = try t.openNode()
        replica = try t.openNode("replica.sqlite", validator: false)
    }

    override func tearDown() { t.cleanup() }

    func send(_ key: PrivateKey, _ payload: TransactionPayload) throws {
        let a = TestChain.address(key)
        let body = TransactionBody(
            genesis: node.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonces[a, default: 0],
            maxFeePerUnit: 10, tipPerUnit: 1, payload: payload)
        _ = try node.submit(SignedTransaction(body: body, signer: key))
        nonces[a, default: 0] += 1
    }

    /// Executes `payload` in a block of its own and returns the refusal, if any.
    func refusal(_ key: PrivateKey, _ payload: TransactionPayload) throws -> TransactionError? {
        do { try send(key, payload) } catch let e as TransactionError { return e }
        try block()
        return nil
    }

    @discardableResult
    func block() throws -> FinalizedBlock {
        timestamp += 1000
        let b = try node.produceBlock(timestamp: timestamp)
        try replica.importBlock(b)
        XCTAssertEqual(replica.head, node.head)
        let s = node.supply
        XCTAssertEqual(s.inAccounts + s.staked + s.burned, Amount.totalSupply, "height \(b.block.header.height)")
        return b
    }

    func testCandidatesStakesUnbondingAndElection() throws {
        let alice = t.funded[0]  // 91 B AMSC
        let bob = t.funded[1]
        let carol = t.funded[2]
        let aliceAddress = TestChain.address(alice)
        // Operated by the test validator, so the drawn committees keep the single test node finalizing.
        let op = t.validator.xOnlyPublicKey.bytes
        let min = t.genesis.staking.minSelfStake
        func register(_ key: PrivateKey, _ name: String, _ stake: UInt64) -> TransactionPayload {
            .candidateRegister(
                CandidateRegister(
                    name: Array(name.utf8), operatorKey: op, rewardAddress: TestChain.address(key), selfStake: stake,
                    durationEpochs: 2, rewardShareBps: 1000))
        }
        // Separate blocks, so the bucket ids (1 for alice, 2 for bob) do not depend on ordering within a block.
        try send(alice, register(alice, "alice-gw", min))
        try block()
        try send(bob, register(bob, "bob-gw", min * 2))
        try block()
        let a = try XCTUnwrap(node.candidate(aliceAddress))
        XCTAssertEqual(a.name, Array("alice-gw".utf8))
        XCTAssertEqual(node.supply.staked, min * 3)
        // Carol stakes on alice with a long auto-staked lock: more weight than bob's larger self-stake.
        try send(carol, .stake(Stake(candidate: aliceAddress, amount: min * 2, durationEpochs: 500, autoStake: true)))
        try block()
        let weighted = try XCTUnwrap(node.candidate(aliceAddress)).totalWeight
        let carolBucket = BucketState(
            owner: TestChain.address(carol), candidate: aliceAddress, amount: min * 2, durationEpochs: 500,
            autoStake: true, startEpoch: 0)
        XCTAssertEqual(carolBucket.weight, min * 2 * 16_000 / 10_000, "+50% duration, +10% auto-stake")
        XCTAssertEqual(
            weighted,
            BucketState(
                owner: aliceAddress, candidate: aliceAddress, amount: min, durationEpochs: 2,
                autoStake: false, startEpoch: 0
            ).weight + carolBucket.weight)
        // The election at the middle of epoch 0 (height 3 with epochs of 4) records the pool of epoch 1.
        while node.head.height < 3 { try block() }
        let pool = try XCTUnwrap(node.delegatePool(epoch: 1))
        XCTAssertEqual(pool.delegates.map(\.candidate), [aliceAddress, TestChain.address(bob)])
        XCTAssertEqual(pool.delegates.first?.weight, weighted)
        XCTAssertEqual(replica.delegatePool(epoch: 1), pool)

        // Carol's bucket (id 3) is auto-staked: it cannot be unstaked until restaked without auto-stake.
        let carolAddress = TestChain.address(carol)
        XCTAssertEqual(node.bucket(3).state?.owner, carolAddress)
        try send(carol, .unstake(BucketAction(bucket: 3)))
        XCTAssertTrue(try block().block.transactions.isEmpty, "locked bucket stays")
        nonces[carolAddress]! -= 1
        try send(carol, .restake(Restake(bucket: 3, durationEpochs: 0, autoStake: false)))
        XCTAssertTrue(try block().block.transactions.isEmpty, "cannot shorten below the remaining lock")
        nonces[carolAddress]! -= 1
        try send(carol, .restake(Restake(bucket: 3, durationEpochs: 500, autoStake: false)))
        XCTAssertEqual(try block().block.transactions.count, 1)
        // Alice's self-stake bucket can never be unstaked; bob cannot touch carol's bucket.
        try send(alice, .unstake(BucketAction(bucket: 1)))
        XCTAssertTrue(try block().block.transactions.isEmpty)
        nonces[aliceAddress]! -= 1
        try send(bob, .withdraw(BucketAction(bucket: 3)))
        XCTAssertTrue(try block().block.transactions.isEmpty)
        nonces[TestChain.address(bob)]! -= 1

        // A short bucket: stake, wait out the lock, unstake, wait out unbonding, withdraw.
        let dave = t.funded[3]
        let daveAddress = TestChain.address(dave)
        try send(
            dave,
            .stake(Stake(candidate: TestChain.address(bob), amount: 5_000_000, durationEpochs: 1, autoStake: false)))
        try block()
        let daveBucket: UInt64 = 4
        XCTAssertEqual(node.bucket(daveBucket).state?.amount, 5_000_000)
        let balanceAfterStake = node.account(daveAddress).state.balance
        while node.head.epoch < node.bucket(daveBucket).state!.lockEndEpoch { try block() }
        try send(dave, .unstake(BucketAction(bucket: daveBucket)))
        try block()
        let unstakedAt = try XCTUnwrap(node.bucket(daveBucket).state?.unstakedEpoch)
        try send(dave, .withdraw(BucketAction(bucket: daveBucket)))
        XCTAssertTrue(try block().block.transactions.isEmpty, "still unbonding")
        nonces[daveAddress]! -= 1
        while node.head.epoch < unstakedAt + t.genesis.staking.unbondingEpochs { try block() }
        try send(dave, .withdraw(BucketAction(bucket: daveBucket)))
        try block()
        XCTAssertNil(node.bucket(daveBucket).state, "bucket deleted")
        let proof = node.bucket(daveBucket)
        XCTAssertTrue(
            proof.proof.verify(root: proof.stateRoot, key: StakingRules.bucketKey(daveBucket).treeKey, valueHash: nil))
        XCTAssertGreaterThan(node.account(daveAddress).state.balance, balanceAfterStake, "5 AMSC came back minus fees")
        // A bucket's proof verifies against the state root.
        let live = node.bucket(3)
        XCTAssertTrue(
            live.proof.verify(
                root: live.stateRoot, key: StakingRules.bucketKey(3).treeKey,
                valueHash: Domain.stateValue.hash(try XCTUnwrap(live.state).encoded)))
        // Reopen from disk: stakes and candidates come back, the root matches.
        let reopened = try t.openNode()
        XCTAssertEqual(reopened.head, node.head)
        XCTAssertEqual(reopened.supply.staked, node.supply.staked)
    }

    func testRefusalsNameTheRule() throws {
        let alice = t.funded[0]
        let aliceAddress = TestChain.address(alice)
        // Operated by the test validator, so the drawn committees keep the single test node finalizing.
        let op = t.validator.xOnlyPublicKey.bytes
        let min = t.genesis.staking.minSelfStake
        let rules = StakingRules(parameters: t.genesis.staking)
        func plan(_ payload: TransactionPayload, _ sender: Address) -> StakingError? {
            let overlay = StateOverlay(base: WorldStateProbe.world(of: node))
            do {
                _ = try rules.plan(payload, sender: sender, state: overlay, epoch: node.head.epoch)
                return nil
            } catch { return error }
        }
        let reg = CandidateRegister(
            name: Array("gw".utf8), operatorKey: op, rewardAddress: aliceAddress, selfStake: min - 1, durationEpochs: 1,
            rewardShareBps: 0)
        XCTAssertEqual(plan(.candidateRegister(reg), aliceAddress), .selfStakeTooLow(minimum: min))
        var bad = reg
        bad.selfStake = min
        bad.operatorKey = Bytes32(w0: .max, w1: .max, w2: .max, w3: .max)
        XCTAssertEqual(plan(.candidateRegister(bad), aliceAddress), .invalidOperatorKey)
        bad.operatorKey = op
        bad.durationEpochs = t.genesis.staking.maxDurationEpochs + 1
        XCTAssertEqual(
            plan(.candidateRegister(bad), aliceAddress), .durationTooLong(maximum: t.genesis.staking.maxDurationEpochs))
        XCTAssertEqual(plan(.candidateUpdate(CandidateUpdate(rewardShareBps: 5)), aliceAddress), .notACandidate)
        XCTAssertEqual(
            plan(.stake(Stake(candidate: aliceAddress, amount: 1, durationEpochs: 1, autoStake: false)), aliceAddress),
            .notACandidate)
        XCTAssertEqual(plan(.unstake(BucketAction(bucket: 42)), aliceAddress), .unknownBucket(42))
        var good = reg
        good.selfStake = min
        try send(alice, .candidateRegister(good))
        try block()
        XCTAssertEqual(plan(.candidateRegister(good), aliceAddress), .alreadyCandidate)
        XCTAssertEqual(plan(.candidateRegister(good), TestChain.address(t.funded[1])), .nameTaken)
        XCTAssertEqual(plan(.withdraw(BucketAction(bucket: 1)), aliceAddress), .notUnstaked)
        XCTAssertEqual(plan(.unstake(BucketAction(bucket: 1)), TestChain.address(t.funded[1])), .notBucketOwner)
        XCTAssertEqual(plan(.unstake(BucketAction(bucket: 1)), aliceAddress), .stillLocked(untilEpoch: 1))
        // Every kind executes now; an HTLC refund of nothing is refused at the door with its own reason.
        XCTAssertEqual(try refusal(alice, .htlcRefund(HTLCRefund(lockID: .zero))), .htlc(.unknownHTLC))
    }
}

/// Test access to a node's committed world state.
enum WorldStateProbe {
    static func world(of node: ChainNode) -> WorldState { node.worldForTesting }
}
