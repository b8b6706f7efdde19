import AmarsCodec
import AmarsCrypto

/// The two voting steps of a round (propose carries a block, not a vote), and the pool's attestation.
public enum VoteStep: UInt8, Sendable {
    case prepare = 1
    case commit = 2
    /// Not a consensus step: a delegate pool member's attestation of a final checkpoint (round 0), which a
    /// sleeping device counts against the pool it trusts. Two for one height with different hashes are a double
    /// sign like any other, so the attestation is slashable evidence.
    case checkpoint = 3
}

/// A committee member's signed vote for a block hash at (height, round, step).
public struct Vote: Equatable, Sendable, CanonicalCodable {
    public var chainID: UInt32
    public var height: UInt64
    public var round: UInt32
    public var step: VoteStep
    public var blockHash: Bytes32
    public var voter: Bytes32
    public var signature: Bytes64

    public init(
        chainID: UInt32, height: UInt64, round: UInt32, step: VoteStep, blockHash: Bytes32, voter: Bytes32,
        signature: Bytes64
    ) {
        self.chainID = chainID
        self.height = height
        self.round = round
        self.step = step
        self.blockHash = blockHash
        self.voter = voter
        self.signature = signature
    }

    /// What a voter signs. The voter key is inside, so one signature cannot be claimed by another member; the
    /// genesis block hash (not carried: every verifier knows its chain's) is inside, so a vote of one network
    /// never counts on another, even with the same chain id and the same validator keys, whether as a vote, in
    /// a certificate a light client checks, or as double-sign evidence.
    public static func signingHash(
        chainID: UInt32, genesis: Bytes32, height: UInt64, round: UInt32, step: VoteStep, blockHash: Bytes32,
        voter: Bytes32
    ) -> Bytes32 {
        var w = ByteWriter(capacity: 128)
        w.writeVarint(UInt64(chainID))
        w.write(genesis)
        w.writeVarint(height)
        w.writeVarint(UInt64(round))
        w.write(step.rawValue)
        w.write(blockHash)
        w.write(voter)
        return Domain.vote.hash(w.bytes)
    }

    /// `key`'s vote, signed over ``signingHash(chainID:genesis:height:round:step:blockHash:voter:)`` (BIP340 with
    /// `auxRandom`; zero makes the signature a function of the vote, which a restarted node relies on).
    public init(
        signing key: PrivateKey, chainID: UInt32, genesis: Bytes32, height: UInt64, round: UInt32, step: VoteStep,
        blockHash: Bytes32, auxRandom: Bytes32 = .zero
    ) {
        let voter = key.xOnlyPublicKey.bytes
        let message = Vote.signingHash(
            chainID: chainID, genesis: genesis, height: height, round: round, step: step, blockHash: blockHash,
            voter: voter)
        self.init(
            chainID: chainID, height: height, round: round, step: step, blockHash: blockHash, voter: voter,
            signature: key.signSchnorr(message, auxRandom: auxRandom))
    }

    /// What the voter signed on the chain whose genesis block hash is `genesis`.
    public func signingHash(genesis: Bytes32) -> Bytes32 {
        Vote.signingHash(
            chainID: chainID, genesis: genesis, height: height, round: round, step: step, blockHash: blockHash,
            voter: voter)
    }

    public func verifySignature(genesis: Bytes32) -> Bool {
        guard let key = try? XOnlyPublicKey(bytes: voter) else { return false }
        return key.verifySchnorr(signature, message: signingHash(genesis: genesis))
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(UInt64(chainID))
        w.writeVarint(height)
        w.writeVarint(UInt64(round))
        w.write(step.rawValue)
        w.write(blockHash)
        w.write(voter)
        w.write(signature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        chainID = try r.readVarint32()
        height = try r.readVarint()
        round = try r.readVarint32()
        let s = try r.readU8()
        guard let step = VoteStep(rawValue: s) else { throw .unknownTag(s) }
        self.step = step
        blockHash = try r.readBytes32()
        voter = try r.readBytes32()
        signature = try r.readBytes64()
    }
}
