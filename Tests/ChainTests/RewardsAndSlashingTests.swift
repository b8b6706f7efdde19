import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Ledger
import XCTest

@testable import Chain

/// Fees are shared, never minted; a double-signing member is slashed and ejected by evidence anyone can send.
final class RewardsAndSlashingTests: XCTestCase {
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

    @discardableResult
    func send(_ key: PrivateKey, _ payload: TransactionPayload) throws -> Bytes32 {
        let a = TestChain.address(key)
        let body = TransactionBody(
            genesis: node.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonces[a, default: 0],
            maxFeePerUnit: 10, tipPerUnit: 1, payload: payload)
        let id = try node.submit(SignedTransaction(body: body, signer: key))
        nonces[a, default: 0] += 1
        return id
    }

    @discardableResult
    func block() throws -> FinalizedBlock {
        timestamp += 1000
        let b = try node.produceBlock(timestamp: timestamp)
        try replica.importBlock(b)
        XCTAssertEqual(replica.head, node.head)
        let s = node.supply
        XCTAssertEqual(s.inAccounts + s.staked + s.burned, Amount.totalSupply, "height \(b.block.header.height)")
        XCTAssertEqual(node.account(RewardRules.feePool).state.balance, 0, "the fee pool empties every block")
        if b.block.header.height % t.genesis.epochLength == 0 {
            XCTAssertEqual(node.account(RewardRules.voterPool).state.balance, 0, "voters are paid at every epoch end")
        }
        return b
    }

    /// Alice runs the validator's key as a candidate with a 10% reward share; carol delegates to her.
    func registerAliceWithCarolStaking() throws -> (alice: Address, carol: Address) {
        let alice = t.funded[0]
        let carol = t.funded[2]
        try send(
            alice,
            .candidateRegister(
                CandidateRegister(
                    name: Array("alice".utf8), operatorKey: t.validator.xOnlyPublicKey.bytes,
                    rewardAddress: TestChain.address(alice), selfStake: t.genesis.staking.minSelfStake,
                    durationEpochs: 10, rewardShareBps: 1_000)))
        try block()
        try send(
            carol,
            .stake(
                Stake(
                    candidate: TestChain.address(alice), amount: t.genesis.staking.minSelfStake * 3,
                    durationEpochs: 10, autoStake: false)))
        try block()
        return (TestChain.address(alice), TestChain.address(carol))
    }

    func testFeesAreSharedByProposerCommitteeAndVotersWithoutMinting() throws {
        let (alice, carol) = try registerAliceWithCarolStaking()
        // Into epoch 1, whose committee is drawn from the pool: alice's candidate, operated by the validator key.
        while node.head.height < 4 { try block() }
        let committee = try XCTUnwrap(node.committee(epoch: 1))
        XCTAssertEqual(committee.members.map(\.key), [t.validator.xOnlyPublicKey.bytes])
        let validator = TestChain.address(t.validator)
        let before = (v: node.account(validator).state.balance, a: node.account(alice).state.balance)
        let payer = t.funded[5]
        let id = try send(payer, .transfer(Transfer(to: TestChain.address(TestChain.key(9)), amount: 5)))
        try block()
        guard case .included(_, _, let receipt) = try node.status(of: id) else { return XCTFail("not included") }
        let fee = receipt.feePaid
        let committeeCut = fee - fee * RewardRules.proposerBps / 10_000
        let voters = committeeCut * 1_000 / 10_000
        XCTAssertEqual(node.account(validator).state.balance - before.v, fee - committeeCut, "proposer's cut")
        XCTAssertEqual(node.account(alice).state.balance - before.a, committeeCut - voters, "member's share")
        // Voters are paid at the end of the epoch (height 8), by bucket weight.
        let carolBefore = node.account(carol).state.balance
        let aliceBefore = node.account(alice).state.balance
        while node.head.height < 8 { try block() }
        let carolGain = node.account(carol).state.balance - carolBefore
        let aliceGain = node.account(alice).state.balance - aliceBefore
        XCTAssertGreaterThan(carolGain, 0)
        XCTAssertEqual(carolGain + aliceGain, voters, "every accrued unit paid, nothing minted")
        XCTAssertGreaterThan(carolGain, aliceGain, "carol's bucket weighs three times alice's self-stake")
    }

    func testDoubleSignEvidenceSlashesAndEjectsOnce() throws {
        let (alice, _) = try registerAliceWithCarolStaking()
        while node.head.height < 4 { try block() }
        let offenderKey = t.validator
        func vote(
            _ hash: Bytes32, height: UInt64 = 6, signer: PrivateKey? = nil, genesis: Bytes32? = nil
        ) -> Vote {
            let key = signer ?? offenderKey
            let msg = Vote.signingHash(
                chainID: TestChain.chainID, genesis: genesis ?? node.genesisBlockHash, height: height, round: 0,
                step: .prepare, blockHash: hash, voter: key.xOnlyPublicKey.bytes)
            return Vote(
                chainID: TestChain.chainID, height: height, round: 0, step: .prepare, blockHash: hash,
                voter: key.xOnlyPublicKey.bytes, signature: key.signSchnorr(msg, auxRandom: .zero))
        }
        let low = Bytes32(w0: 1, w1: 0, w2: 0, w3: 0)
        let high = Bytes32(w0: 2, w1: 0, w2: 0, w3: 0)
        let evidence = DoubleSignEvidence(first: vote(low), second: vote(high))
        let reporter = t.funded[6]
        let rules = StakingRules(parameters: t.genesis.staking)
        let stakeBefore = try XCTUnwrap(node.bucket(1).state).amount
        // Refusals first (checked directly against the committed state: they name the rule).
        func plan(_ e: DoubleSignEvidence) -> StakingError? {
            let overlay = StateOverlay(base: WorldStateProbe.world(of: node))
            let committee = node.committee(epoch: 1)
            do {
                _ = try rules.planEvidence(
                    e, reporter: TestChain.address(reporter), chainID: TestChain.chainID,
                    genesis: node.genesisBlockHash, committee: committee, state: overlay)
                return nil
            } catch { return error }
        }
        var forged = evidence
        forged.second.signature.first.w0 ^= 1
        XCTAssertEqual(plan(forged), .invalidEvidence)
        let outsider = TestChain.key(321)
        XCTAssertEqual(
            plan(DoubleSignEvidence(first: vote(low, signer: outsider), second: vote(high, signer: outsider))),
            .invalidEvidence, "not a committee member")
        // The same member's double sign on another network (same chain id, same keys) proves nothing here.
        let elsewhere = Bytes32(w0: 0xE1, w1: 0, w2: 0, w3: 0)
        XCTAssertEqual(
            plan(DoubleSignEvidence(first: vote(low, genesis: elsewhere), second: vote(high, genesis: elsewhere))),
            .invalidEvidence, "signed for another genesis")
        XCTAssertNil(plan(evidence))

        let reporterBefore = node.account(TestChain.address(reporter)).state.balance
        try send(reporter, .doubleSignEvidence(evidence))
        let b = try block()
        XCTAssertEqual(b.block.transactions.count, 1)
        let candidate = try XCTUnwrap(node.candidate(alice))
        XCTAssertTrue(candidate.ejected)
        XCTAssertEqual(candidate.totalWeight, 0)
        let slashed = stakeBefore / 2
        XCTAssertEqual(try XCTUnwrap(node.bucket(1).state).amount, stakeBefore - slashed)
        XCTAssertGreaterThan(
            node.account(TestChain.address(reporter)).state.balance, reporterBefore, "half the stake, less the fee")
        // The same offence cannot be punished twice.
        XCTAssertEqual(plan(evidence), .evidenceAlreadyUsed)
        // An ejected candidate is never elected again.
        while node.head.height < 12 { try block() }
        XCTAssertFalse(try XCTUnwrap(node.delegatePool(epoch: 3)).delegates.contains { $0.candidate == alice })
    }

    /// Attesting two checkpoints for one height is a double sign too: the chain slashes the pool member.
    func testConflictingCheckpointAttestationsSlash() throws {
        let (alice, _) = try registerAliceWithCarolStaking()
        while node.head.height < 8 { try block() }
        XCTAssertNotNil(node.poolRoster(epoch: 1)?.index(of: t.validator.xOnlyPublicKey.bytes))
        func attestation(_ hash: Bytes32, signer: PrivateKey) -> Vote {
            let msg = Vote.signingHash(
                chainID: TestChain.chainID, genesis: node.genesisBlockHash, height: 8, round: 0, step: .checkpoint,
                blockHash: hash, voter: signer.xOnlyPublicKey.bytes)
            return Vote(
                chainID: TestChain.chainID, height: 8, round: 0, step: .checkpoint, blockHash: hash,
                voter: signer.xOnlyPublicKey.bytes, signature: signer.signSchnorr(msg, auxRandom: .zero))
        }
        let low = Bytes32(w0: 1, w1: 0, w2: 0, w3: 0)
        let high = Bytes32(w0: 2, w1: 0, w2: 0, w3: 0)
        let reporter = t.funded[6]
        // An outsider's pair proves nothing: it is in no pool, and the transaction fails.
        let outsider = TestChain.key(321)
        try send(
            reporter,
            .doubleSignEvidence(
                DoubleSignEvidence(
                    first: attestation(low, signer: outsider), second: attestation(high, signer: outsider))))
        XCTAssertEqual(try block().block.transactions.count, 0)
        XCTAssertFalse(try XCTUnwrap(node.candidate(alice)).ejected)
        nonces[TestChain.address(reporter)] = node.account(TestChain.address(reporter)).state.nonce
        try send(
            reporter,
            .doubleSignEvidence(
                DoubleSignEvidence(
                    first: attestation(low, signer: t.validator), second: attestation(high, signer: t.validator))))
        XCTAssertEqual(try block().block.transactions.count, 1)
        XCTAssertTrue(try XCTUnwrap(node.candidate(alice)).ejected)
    }
}
