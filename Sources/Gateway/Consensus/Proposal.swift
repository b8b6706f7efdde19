import AmarsCodec
import AmarsCrypto
import Ledger

/// The proposer's signed claim "at (height, round) I propose the block with this hash".
///
/// `validRound` is Tendermint's `vr`: the round in which the proposer saw more than two thirds of the prepare
/// weight for this block (its proof-of-lock), or `nil` (the paper's -1) for a fresh value. A locked node may
/// switch to the block only when such a proof exists, which is what keeps locking both safe and live.
public struct Proposal: Hashable, Sendable, CanonicalCodable {
    /// Domain tag of the proposal signature, so a proposal hash can never be replayed as a vote or a block.
    /// The string is consensus: never change it.
    public static let domain = TaggedHash(tag: "AmarsProposal")

    public var chainID: UInt32
    public var height: UInt64
    public var round: UInt32
    /// Strictly below `round` when present; `nil` encodes the paper's -1.
    public var validRound: UInt32?
    public var blockHash: Bytes32
    /// x-only key of the proposer; must be the committee member whose turn (height, round) is.
    public var proposer: Bytes32

    public init(
        chainID: UInt32, height: UInt64, round: UInt32, validRound: UInt32?, blockHash: Bytes32, proposer: Bytes32
    ) {
        self.chainID = chainID
        self.height = height
        self.round = round
        self.validRound = validRound
        self.blockHash = blockHash
        self.proposer = proposer
    }

    /// What the proposer signs: the tagged hash of the canonical encoding, proposer key included so that one
    /// signature cannot be claimed by another member.
    public var signingHash: Bytes32 {
        var w = ByteWriter(capacity: 96)
        encode(to: &w)
        return Proposal.domain.hash(w.bytes)
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(UInt64(chainID))
        w.writeVarint(height)
        w.writeVarint(UInt64(round))
        if let validRound {
            w.writeBool(true)
            w.writeVarint(UInt64(validRound))
        } else {
            w.writeBool(false)
        }
        w.write(blockHash)
        w.write(proposer)
    }

    /// Refuses a `validRound` that is not below `round`: such a proposal can never be acted on, so it has no
    /// canonical encoding.
    public init(from r: inout ByteReader) throws(CodecError) {
        chainID = try r.readVarint32()
        height = try r.readVarint()
        round = try r.readVarint32()
        if try r.readBool() {
            let vr = try r.readVarint32()
            guard vr < round else { throw .invalidValue(.range) }
            validRound = vr
        } else {
            validRound = nil
        }
        blockHash = try r.readBytes32()
        proposer = try r.readBytes32()
    }
}

/// A ``Proposal`` with the proposer's BIP340 signature over ``Proposal/signingHash``. The block itself travels
/// beside it (see ``ConsensusAction/broadcastProposal(_:_:)``); its hash is what is signed.
public struct SignedProposal: Hashable, Sendable, CanonicalCodable {
    public var proposal: Proposal
    public var signature: Bytes64

    public init(proposal: Proposal, signature: Bytes64) {
        self.proposal = proposal
        self.signature = signature
    }

    /// Signs with a constant auxiliary random (BIP340 stays secure with it), so the core stays deterministic.
    public init(signing proposal: Proposal, with key: PrivateKey) {
        self.proposal = proposal
        self.signature = key.signSchnorr(proposal.signingHash, auxRandom: .zero)
    }

    /// False for a proposer field that is not a curve point as well as for a wrong signature.
    public func verifySignature() -> Bool {
        guard let key = try? XOnlyPublicKey(bytes: proposal.proposer) else { return false }
        return verifySignature(key: key)
    }

    /// With a key the caller has already parsed (the core keeps its committee's keys parsed).
    public func verifySignature(key: XOnlyPublicKey) -> Bool {
        key.bytes == proposal.proposer && key.verifySchnorr(signature, message: proposal.signingHash)
    }

    public func encode(to w: inout ByteWriter) {
        proposal.encode(to: &w)
        w.write(signature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        proposal = try Proposal(from: &r)
        signature = try r.readBytes64()
    }
}
