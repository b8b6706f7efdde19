import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Ledger

typealias SplitMix = SplitMix64

extension SplitMix64 {
    mutating func address() -> Address {
        Address(raw: Bytes20(hi: next(), mid: next(), lo: UInt32(truncatingIfNeeded: next())))
    }
}

enum Fixtures {
    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 1000 + n)) }

    /// The genesis block hash the fixtures' votes and transactions name.
    static let genesis = Bytes32(w0: 7, w1: 7, w2: 7, w3: 7)

    static func vote(_ rng: inout SplitMix, voter: PrivateKey, hash: Bytes32) -> Vote {
        let height: UInt64 = rng.below(1 << 40)
        let msg = Vote.signingHash(
            chainID: 7, genesis: genesis, height: height, round: 3, step: .prepare, blockHash: hash,
            voter: voter.xOnlyPublicKey.bytes)
        return Vote(
            chainID: 7, height: height, round: 3, step: .prepare, blockHash: hash, voter: voter.xOnlyPublicKey.bytes,
            signature: voter.signSchnorr(msg, auxRandom: .zero))
    }

    /// One payload of every kind, with random contents.
    static func payloads(_ rng: inout SplitMix) -> [TransactionPayload] {
        let voter = key(5)
        var a = rng.bytes32()
        var b = rng.bytes32()
        if b < a { swap(&a, &b) }
        let v1 = vote(&rng, voter: voter, hash: a)
        var v2 = v1
        v2.blockHash = b
        return [
            .transfer(Transfer(to: rng.address(), amount: 1 + rng.below(1 << 50), memo: [1, 2, 3])),
            .candidateRegister(
                CandidateRegister(
                    name: Array("gateway-7".utf8), operatorKey: rng.bytes32(), rewardAddress: rng.address(),
                    selfStake: 1 + rng.below(1 << 50), durationEpochs: 90, rewardShareBps: 2500)),
            .candidateUpdate(CandidateUpdate(rewardShareBps: 100)),
            .stake(Stake(candidate: rng.address(), amount: 5, durationEpochs: 7, autoStake: true)),
            .restake(Restake(bucket: rng.below(1000), durationEpochs: 30, autoStake: false)),
            .unstake(BucketAction(bucket: 12)),
            .withdraw(BucketAction(bucket: 300)),
            .certificatePublish(CertificatePublish(der: [0x30, 0x82, 0x01, 0x00])),
            .certificateRevoke(CertificateRevoke(certificateID: rng.bytes32(), reason: 1)),
            .htlcLock(HTLCLock(recipient: rng.address(), amount: 9, hashLock: rng.bytes32(), expiryHeight: 100)),
            .htlcClaim(HTLCClaim(lockID: rng.bytes32(), preimage: rng.bytes32())),
            .htlcRefund(HTLCRefund(lockID: rng.bytes32())),
            .escrowOpen(
                EscrowOpen(device: rng.address(), owner: rng.address(), deposit: 50, rentalFee: 5, expiryHeight: 9)),
            .escrowClose(
                EscrowClose(
                    escrowID: rng.bytes32(), damages: 0, deviceKey: rng.bytes32(),
                    deviceSignature: Bytes64(first: a, second: b))),
            .doubleSignEvidence(DoubleSignEvidence(first: v1, second: v2)),
        ]
    }

    static func signed(_ payload: TransactionPayload, nonce: UInt64, signer: PrivateKey = key(1)) -> SignedTransaction {
        let body = TransactionBody(
            genesis: genesis, sender: signer.xOnlyPublicKey.bytes, nonce: nonce,
            maxFeePerUnit: 40, tipPerUnit: 2,
            payload: payload)
        return SignedTransaction(body: body, signer: signer)
    }

    static func header(_ rng: inout SplitMix, height: UInt64, boundary: Bool) -> BlockHeader {
        BlockHeader(
            chainID: 7, height: height, previousHash: rng.bytes32(), timestamp: 1_700_000_000_000 + height,
            epoch: height / 10, round: UInt32(rng.below(3)), proposer: key(2).xOnlyPublicKey.bytes, baseFee: 17,
            unitsUsed: rng.below(1 << 20), transactionsRoot: rng.bytes32(), stateRoot: rng.bytes32(),
            receiptsRoot: rng.bytes32(), nextCommitteeHash: boundary ? rng.bytes32() : nil)
    }
}
