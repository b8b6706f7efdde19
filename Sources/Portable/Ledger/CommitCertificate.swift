import AmarsCodec
import AmarsCrypto

/// Commit votes of more than two thirds of a committee's weight for one block: what makes a block final.
///
/// Signatures are listed by member index in strictly increasing order, so a certificate has one encoding and
/// no member can be counted twice.
public struct CommitCertificate: Equatable, Sendable, CanonicalCodable {
    public struct Signature: Equatable, Sendable, CanonicalCodable {
        public var memberIndex: UInt16
        public var signature: Bytes64

        public init(memberIndex: UInt16, signature: Bytes64) {
            self.memberIndex = memberIndex
            self.signature = signature
        }

        public func encode(to w: inout ByteWriter) {
            w.writeVarint(UInt64(memberIndex))
            w.write(signature)
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            let i = try r.readVarint()
            guard i < UInt64(Caps.committeeMembers) else { throw .invalidValue(.range) }
            memberIndex = UInt16(i)
            signature = try r.readBytes64()
        }
    }

    public var height: UInt64
    public var round: UInt32
    public var blockHash: Bytes32
    public var signatures: [Signature]

    public init(height: UInt64, round: UInt32, blockHash: Bytes32, signatures: [Signature]) {
        self.height = height
        self.round = round
        self.blockHash = blockHash
        self.signatures = signatures.sorted { $0.memberIndex < $1.memberIndex }
    }

    public enum VerifyError: Error, Equatable, Sendable {
        case wrongBlock
        case unknownMember(index: UInt16)
        case badSignature(index: UInt16)
        case noQuorum(signed: UInt64, total: UInt64)
        case duplicateMember(index: UInt16)
    }

    /// Checks every signature against `committee` and that the signers hold a quorum. Returns the weight
    /// that signed, so a caller can also apply the one-third rule of skipping light clients.
    @discardableResult
    public func verify(
        committee: Committee, chainID: UInt32, genesis: Bytes32, blockHash expected: Bytes32
    ) throws(VerifyError) -> UInt64 {
        guard blockHash == expected else { throw .wrongBlock }
        var signed: UInt64 = 0
        var previous: Int = -1
        for s in signatures {
            let i = Int(s.memberIndex)
            // Strictly increasing, as decoding requires: a certificate built in memory cannot count a member twice.
            guard i > previous else { throw .duplicateMember(index: s.memberIndex) }
            previous = i
            guard i < committee.members.count else { throw .unknownMember(index: s.memberIndex) }
            let member = committee.members[i]
            let message = Vote.signingHash(
                chainID: chainID, genesis: genesis, height: height, round: round, step: .commit, blockHash: blockHash,
                voter: member.key)
            guard let key = try? XOnlyPublicKey(bytes: member.key), key.verifySchnorr(s.signature, message: message)
            else { throw .badSignature(index: s.memberIndex) }
            signed += member.weight  // cannot overflow: the committee's total was checked
        }
        guard committee.isQuorum(signed) else { throw .noQuorum(signed: signed, total: committee.totalWeight) }
        return signed
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.writeVarint(UInt64(round))
        w.write(blockHash)
        w.write(list: signatures)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        height = try r.readVarint()
        round = try r.readVarint32()
        blockHash = try r.readBytes32()
        signatures = try r.readList(cap: Caps.committeeMembers)
        for i in signatures.indices.dropFirst() where signatures[i - 1].memberIndex >= signatures[i].memberIndex {
            throw .invalidValue(.ordering)
        }
    }
}
