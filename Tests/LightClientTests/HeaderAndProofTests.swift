import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

final class HeaderAndProofTests: XCTestCase {
    static let chain = SyntheticChain(epochs: 10)
    var chain: SyntheticChain { Self.chain }
    let L = Int(SyntheticChain.epochLength)

    func testEveryHeaderVerifiesUnderItsEpochsCommittee() throws {
        var trusted = chain.genesisState
        for e in 0..<10 {
            for h in (e * L + 1)...((e + 1) * L) {
                let verified = try HeaderVerifier.verify(
                    trusted: trusted, header: chain.headers[h], certificate: chain.certificates[h])
                XCTAssertEqual(verified.hash, chain.headers[h].hash)
                XCTAssertEqual(verified.signedWeight, 5)
            }
            // The next epoch's first header needs the next committee.
            if e < 9 {
                XCTAssertEqual(
                    headerError(trusted, height: (e + 1) * L + 1), .wrongEpoch(expected: UInt64(e), got: UInt64(e + 1)))
            }
            trusted = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: chain.checkpoint(epoch: e))
            // And a header of the epoch just left is no longer checkable.
            XCTAssertEqual(
                headerError(trusted, height: e * L + 1), .wrongEpoch(expected: UInt64(e + 1), got: UInt64(e)))
        }
    }

    func testForgedHeadersAreRefused() {
        let trusted = chain.state(afterEpochs: 3)
        let h = 3 * L + 2
        let header = chain.headers[h]
        // Tampered after signing.
        var tampered = header
        tampered.transactionsRoot = Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)
        XCTAssertEqual(headerError(trusted, header: tampered, certificate: chain.certificates[h]), .certificateMismatch)
        // Exactly two thirds.
        let thin = SyntheticChain.certify(header, genesis: chain.headers[0].hash, signers: [0, 1], keys: chain.keys[3])
        XCTAssertEqual(
            headerError(trusted, header: header, certificate: thin), .certificate(.noQuorum(signed: 4, total: 6)))
        // Signed by the previous epoch's committee.
        let stale = SyntheticChain.certify(
            header, genesis: chain.headers[0].hash, signers: [0, 1, 2], keys: chain.keys[2])
        XCTAssertEqual(headerError(trusted, header: header, certificate: stale), .certificate(.badSignature(index: 0)))
        // Another chain.
        var foreign = header
        foreign.chainID = 43
        let foreignCertificate = SyntheticChain.certify(
            foreign, genesis: chain.headers[0].hash, signers: [0, 1, 2], keys: chain.keys[3], chainID: 43)
        XCTAssertEqual(
            headerError(trusted, header: foreign, certificate: foreignCertificate), .wrongChain(expected: 42, got: 43))
        // Claims the trusted epoch at a height of another one (the epoch's own checkpoint height is 9).
        var misplaced = header
        misplaced.height = 9
        let misplacedCertificate = SyntheticChain.certify(
            misplaced, genesis: chain.headers[0].hash, signers: [0, 1, 2], keys: chain.keys[3])
        XCTAssertEqual(
            headerError(trusted, header: misplaced, certificate: misplacedCertificate),
            .heightOutsideEpoch(height: 9, first: 10, last: 12))
        // A valid certificate of a different header.
        XCTAssertEqual(
            headerError(trusted, header: header, certificate: chain.certificates[h + 1]), .certificateMismatch)
    }

    // MARK: state proofs

    func testAccountProofsAgainstAVerifiedHeader() throws {
        let trusted = chain.state(afterEpochs: 2)
        let h = 2 * L + 2  // height 8
        let verified = try HeaderVerifier.verify(
            trusted: trusted, header: chain.headers[h], certificate: chain.certificates[h])
        for i in 0..<5 {
            let state = SyntheticChain.account(i, height: UInt64(h))
            let proven = try ProofVerifier.verifyAccount(
                state, of: SyntheticChain.address(i), proof: chain.stateProof(height: h, account: i), in: verified)
            XCTAssertEqual(proven, state)
        }
        // An account the tree does not hold proves as empty.
        let absent = SyntheticChain.address(99)
        let absence = ReferenceStateTree.proof(chain.worlds[h], key: StateNamespace.accountKey(absent))
        XCTAssertEqual(try ProofVerifier.verifyAccount(nil, of: absent, proof: absence, in: verified), AccountState())
        // Also against the trusted checkpoint's own root.
        let cp = Int(trusted.height)
        XCTAssertEqual(
            try ProofVerifier.verifyAccount(
                SyntheticChain.account(1, height: UInt64(cp)), of: SyntheticChain.address(1),
                proof: chain.stateProof(height: cp, account: 1), stateRoot: trusted.stateRoot),
            SyntheticChain.account(1, height: UInt64(cp)))
    }

    func testAccountProofsThatDoNotMatchAreRefused() throws {
        let trusted = chain.state(afterEpochs: 2)
        let h = 2 * L + 2
        let verified = try HeaderVerifier.verify(
            trusted: trusted, header: chain.headers[h], certificate: chain.certificates[h])
        let address = SyntheticChain.address(1)
        let state = SyntheticChain.account(1, height: UInt64(h))
        // A proof made for another root (the previous block's), with that block's true balance.
        let older = SyntheticChain.account(1, height: UInt64(h - 1))
        XCTAssertEqual(
            accountError(older, address, chain.stateProof(height: h - 1, account: 1), verified), .stateProofMismatch)
        // The right proof, a claimed balance one unit higher.
        var inflated = state
        inflated.balance += 1
        XCTAssertEqual(
            accountError(inflated, address, chain.stateProof(height: h, account: 1), verified), .stateProofMismatch)
        // Claimed absent with a membership proof; claimed present for another address.
        XCTAssertEqual(
            accountError(nil, address, chain.stateProof(height: h, account: 1), verified), .stateProofMismatch)
        XCTAssertEqual(
            accountError(state, SyntheticChain.address(2), chain.stateProof(height: h, account: 1), verified),
            .stateProofMismatch)
        // Account 4 exists from height 5: before that only absence proves, after that only membership.
        let early = 4
        let newcomer = SyntheticChain.address(4)
        let absence = ReferenceStateTree.proof(chain.worlds[early], key: StateNamespace.accountKey(newcomer))
        XCTAssertNoThrow(
            try ProofVerifier.verifyAccount(
                nil, of: newcomer, proof: absence, stateRoot: chain.headers[early].stateRoot))
        XCTAssertEqual(accountError(nil, newcomer, absence, verified), .stateProofMismatch)
    }

    // MARK: inclusion proofs

    func testTransactionInclusion() throws {
        let trusted = chain.state(afterEpochs: 6)
        let h = 6 * L + 1  // height 19: four transactions
        let verified = try HeaderVerifier.verify(
            trusted: trusted, header: chain.headers[h], certificate: chain.certificates[h])
        let ids = chain.transactionIDs[h]
        XCTAssertEqual(ids.count, 4)
        for (i, id) in ids.enumerated() {
            XCTAssertNoThrow(
                try ProofVerifier.verifyTransaction(
                    id: id, proof: chain.inclusionProof(height: h, index: i), in: verified))
        }
        // Another block's transaction with its own (valid there) proof.
        let otherHeight = h - 1
        XCTAssertEqual(
            inclusionError(
                chain.transactionIDs[otherHeight][0], chain.inclusionProof(height: otherHeight, index: 0), verified),
            .inclusionProofMismatch)
        // A transaction not in the block, presented with a slot's proof.
        XCTAssertEqual(
            inclusionError(Bytes32(w0: 5, w1: 5, w2: 5, w3: 5), chain.inclusionProof(height: h, index: 2), verified),
            .inclusionProofMismatch)
        // The right id at the wrong position.
        XCTAssertEqual(
            inclusionError(ids[1], chain.inclusionProof(height: h, index: 2), verified), .inclusionProofMismatch)
    }

    // MARK: receipt proofs

    func testReceiptProofSeparatesSuccessFromFailure() throws {
        let receipts = (0..<5).map { i in
            Receipt(
                transactionID: Bytes32(w0: UInt64(i), w1: 7, w2: 7, w3: 7), status: i == 3 ? .failed : .success,
                unitsUsed: 21_000 + UInt64(i), feePaid: 1_000 * UInt64(i))
        }
        let root = Receipt.root(receipts)
        let leaves = receipts.map { MerkleTree.leafHash($0.encoded) }
        for (i, receipt) in receipts.enumerated() {
            XCTAssertNoThrow(
                try ProofVerifier.verifyReceipt(
                    receipt, proof: MerkleTree.proof(leaves: leaves, index: i), receiptsRoot: root))
        }
        func refused(_ receipt: Receipt, _ index: Int, _ root: Bytes32) -> LightClientError? {
            do {
                try ProofVerifier.verifyReceipt(
                    receipt, proof: MerkleTree.proof(leaves: leaves, index: index), receiptsRoot: root)
                return nil
            } catch { return error }
        }
        // A gateway claiming the failed transfer succeeded, or moving a receipt to another slot, or another root.
        var forged = receipts[3]
        forged.status = .success
        XCTAssertEqual(refused(forged, 3, root), .receiptProofMismatch)
        XCTAssertEqual(refused(receipts[1], 2, root), .receiptProofMismatch)
        XCTAssertEqual(refused(receipts[0], 0, Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)), .receiptProofMismatch)
    }

    // MARK: helpers

    private func headerError(_ trusted: TrustedState, height: Int) -> LightClientError? {
        headerError(trusted, header: chain.headers[height], certificate: chain.certificates[height])
    }

    private func headerError(_ trusted: TrustedState, header: BlockHeader, certificate: CommitCertificate)
        -> LightClientError?
    {
        do {
            _ = try HeaderVerifier.verify(trusted: trusted, header: header, certificate: certificate)
            return nil
        } catch {
            return error
        }
    }

    private func accountError(
        _ claimed: AccountState?, _ address: Address, _ proof: SparseMerkleProof, _ header: VerifiedHeader
    ) -> LightClientError? {
        do {
            _ = try ProofVerifier.verifyAccount(claimed, of: address, proof: proof, in: header)
            return nil
        } catch {
            return error
        }
    }

    private func inclusionError(_ id: Bytes32, _ proof: MerkleProof, _ header: VerifiedHeader) -> LightClientError? {
        do {
            try ProofVerifier.verifyTransaction(id: id, proof: proof, in: header)
            return nil
        } catch {
            return error
        }
    }
}
