import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient

/// A small chain built in memory with real signatures: a committee of four keys per epoch (half of it
/// replaced every epoch, weights 2, 2, 1, 1 so that exactly two thirds is reachable), headers linked by hash,
/// real state and transaction roots, and commit certificates signed by members 0, 1, 2 (5 of 6).
struct SyntheticChain {
    static let chainID: UInt32 = 42
    static let epochLength: UInt64 = 3
    static let weights: [UInt64] = [2, 2, 1, 1]

    let epochs: Int
    /// `keys[e]` signs for epoch e; there is one more than `epochs`, named by the last checkpoint.
    var keys: [[PrivateKey]] = []
    var committees: [Committee] = []
    /// Heights 0 ... epochs · epochLength.
    var headers: [BlockHeader] = []
    /// One per header; the genesis certificate is empty (genesis is trusted by hash).
    var certificates: [CommitCertificate] = []
    /// State-tree contents and transaction ids per height, to build proofs from.
    var worlds: [[(key: Bytes32, value: Bytes32)]] = []
    var transactionIDs: [[Bytes32]] = []

    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 7, w3: 500 + n)) }
    static func accountKey(_ i: Int) -> PrivateKey { key(10_000 + UInt64(i)) }
    static func address(_ i: Int) -> Address { Address(publicKey: accountKey(i).xOnlyPublicKey) }

    /// Account `i`'s state at `height`: balances move every block, so each root differs.
    static func account(_ i: Int, height: UInt64) -> AccountState {
        AccountState(balance: 1_000_000 + height * 1_000 + UInt64(i), nonce: height / 2)
    }

    init(epochs: Int = 10) {
        self.epochs = epochs
        let L = SyntheticChain.epochLength
        for e in 0...epochs {
            let ks = (0..<4).map { SyntheticChain.key(UInt64(2 * e + $0)) }
            keys.append(ks)
            let members = (0..<4).map {
                Committee.Member(key: ks[$0].xOnlyPublicKey.bytes, weight: SyntheticChain.weights[$0])
            }
            committees.append(try! Committee(epoch: UInt64(e), members: members))
        }
        for h in 0...UInt64(epochs) * L {
            // Account 4 appears only from height 5 on, so earlier heights can prove its absence.
            let count = h >= 5 ? 5 : 4
            let world = (0..<count).map { i in
                (
                    key: StateNamespace.accountKey(SyntheticChain.address(i)),
                    value: SyntheticChain.account(i, height: h).valueHash
                )
            }
            worlds.append(world)
            let ids = (0..<UInt64(1 + h % 4)).map { Domain.transaction.hash(Bytes32(w0: h, w1: $0, w2: 0, w3: 0)) }
            transactionIDs.append(h == 0 ? [] : ids)
            let epoch = h == 0 ? 0 : (h - 1) / L
            let header = BlockHeader(
                chainID: SyntheticChain.chainID, height: h,
                previousHash: h == 0 ? Domain.genesis.hash([1, 2, 3]) : headers[Int(h) - 1].hash,
                timestamp: 1_700_000_000_000 + h * 1000, epoch: epoch, round: UInt32(h % 2),
                proposer: keys[Int(epoch)][Int(h % 4)].xOnlyPublicKey.bytes, baseFee: 1, unitsUsed: 0,
                transactionsRoot: h == 0 ? .zero : Block.transactionsRoot(ids: ids),
                stateRoot: ReferenceStateTree.root(world), receiptsRoot: .zero,
                nextCommitteeHash: h % L == 0 ? committees[Int(h / L)].hash : nil)
            headers.append(header)
            certificates.append(
                h == 0
                    ? CommitCertificate(height: 0, round: 0, blockHash: header.hash, signatures: [])
                    : SyntheticChain.certify(
                        header, genesis: headers[0].hash, signers: [0, 1, 2], keys: keys[Int(epoch)]))
        }
    }

    /// A certificate for `header` with a signature at member index `i` made by `keys[i]` for each `i` in
    /// `signers`. Passing keys that are not the committee's forges one.
    static func certify(
        _ header: BlockHeader, genesis: Bytes32, signers: [Int], keys: [PrivateKey], chainID: UInt32 = chainID
    ) -> CommitCertificate {
        let hash = header.hash
        let signatures = signers.map { i in
            let voter = keys[i].xOnlyPublicKey.bytes
            let message = Vote.signingHash(
                chainID: chainID, genesis: genesis, height: header.height, round: header.round, step: .commit,
                blockHash: hash, voter: voter)
            return CommitCertificate.Signature(
                memberIndex: UInt16(i), signature: keys[i].signSchnorr(message, auxRandom: .zero))
        }
        return CommitCertificate(height: header.height, round: header.round, blockHash: hash, signatures: signatures)
    }

    /// The checkpoint closing epoch `e`: its last header, the committee of e + 1 and the header's certificate.
    func checkpoint(epoch e: Int) -> Checkpoint {
        let h = (e + 1) * Int(SyntheticChain.epochLength)
        return Checkpoint(header: headers[h], nextCommittee: committees[e + 1], certificate: certificates[h])
    }

    /// A checkpoint of epoch `e` with `change` applied to its header and then re-signed by `signers` of `keys`
    /// (the real committee of e by default): forged content with otherwise valid signatures.
    func resignedCheckpoint(
        epoch e: Int, signers: [Int] = [0, 1, 2], keys: [PrivateKey]? = nil, chainID: UInt32 = chainID,
        nextCommittee: Committee? = nil, _ change: (inout BlockHeader) -> Void = { _ in }
    ) -> Checkpoint {
        var header = checkpoint(epoch: e).header
        change(&header)
        let committee = nextCommittee ?? committees[e + 1]
        let certificate = SyntheticChain.certify(
            header, genesis: headers[0].hash, signers: signers, keys: keys ?? self.keys[e], chainID: chainID)
        return Checkpoint(header: header, nextCommittee: committee, certificate: certificate)
    }

    var genesisState: TrustedState {
        try! TrustedState.anchored(
            header: headers[0], committee: committees[0], epochLength: SyntheticChain.epochLength,
            trustedHash: headers[0].hash)
    }

    /// The trusted state after syncing `n` checkpoints from genesis.
    func state(afterEpochs n: Int) -> TrustedState {
        var s = genesisState
        for e in 0..<n { s = try! CheckpointVerifier.verifyNext(trusted: s, checkpoint: checkpoint(epoch: e)) }
        return s
    }

    func stateProof(height: Int, account i: Int) -> SparseMerkleProof {
        ReferenceStateTree.proof(worlds[height], key: StateNamespace.accountKey(SyntheticChain.address(i)))
    }

    func inclusionProof(height: Int, index: Int) -> MerkleProof {
        MerkleTree.proof(leaves: transactionIDs[height].map { MerkleTree.leafHash($0.bytes) }, index: index)
    }
}

/// A direct, slow transcription of the compact sparse Merkle tree rules in `SparseMerkleProof`'s documentation,
/// so the test's roots and proofs do not come from the code under test.
enum ReferenceStateTree {
    typealias Pair = (key: Bytes32, value: Bytes32)

    static func root(_ pairs: [Pair], depth: Int = 0) -> Bytes32 {
        if pairs.isEmpty { return .zero }
        if pairs.count == 1 { return SparseMerkle.leafHash(key: pairs[0].key, valueHash: pairs[0].value) }
        let left = pairs.filter { !$0.key.bit(depth) }
        let right = pairs.filter { $0.key.bit(depth) }
        return SparseMerkle.nodeHash(root(left, depth: depth + 1), root(right, depth: depth + 1))
    }

    static func proof(_ pairs: [Pair], key: Bytes32) -> SparseMerkleProof {
        var siblings: [Bytes32] = []
        var current = pairs
        var depth = 0
        while current.count > 1 {
            let right = key.bit(depth)
            let other = current.filter { $0.key.bit(depth) != right }
            current = current.filter { $0.key.bit(depth) == right }
            depth += 1
            siblings.append(root(other, depth: depth))
        }
        let terminal: SparseMerkleProof.Terminal
        if current.isEmpty {
            terminal = .emptySlot
        } else if current[0].key == key {
            terminal = .member
        } else {
            terminal = .otherLeaf(key: current[0].key, valueHash: current[0].value)
        }
        return SparseMerkleProof(siblings: siblings, terminal: terminal)
    }
}
