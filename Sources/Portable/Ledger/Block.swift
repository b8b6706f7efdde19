import AmarsCodec
import AmarsCrypto

/// A header and its transactions. The commit certificate travels beside it (``FinalizedBlock``) because it
/// is produced after the block and signs the block's hash.
public struct Block: Equatable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    public var transactions: [SignedTransaction]

    public init(header: BlockHeader, transactions: [SignedTransaction]) {
        self.header = header
        self.transactions = transactions
    }

    public var hash: Bytes32 { header.hash }

    /// Merkle root over the transaction ids, in block order.
    public static func transactionsRoot(ids: [Bytes32]) -> Bytes32 {
        MerkleTree.root(leaves: ids.map { MerkleTree.leafHash($0.bytes) })
    }

    public func encode(to w: inout ByteWriter) {
        w.write(header)
        w.write(list: transactions)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        guard r.bytes.count <= Caps.blockBytes else {
            throw .lengthOverCap(length: UInt64(r.bytes.count), cap: Caps.blockBytes)
        }
        header = try r.read()
        transactions = try r.readList(cap: Caps.transactionsPerBlock)
    }
}

/// A block with the certificate that made it final.
public struct FinalizedBlock: Equatable, Sendable, CanonicalCodable {
    public var block: Block
    public var certificate: CommitCertificate

    public init(block: Block, certificate: CommitCertificate) {
        self.block = block
        self.certificate = certificate
    }

    public func encode(to w: inout ByteWriter) {
        w.write(block)
        w.write(certificate)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        block = try r.read()
        certificate = try r.read()
        guard certificate.height == block.header.height else { throw .invalidValue(.range) }
    }
}

/// The last header of an epoch, the next committee it names, and the certificate that finalized it: all a
/// light client needs to move its trust one epoch forward.
public struct Checkpoint: Equatable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    public var nextCommittee: Committee
    public var certificate: CommitCertificate

    public init(header: BlockHeader, nextCommittee: Committee, certificate: CommitCertificate) {
        self.header = header
        self.nextCommittee = nextCommittee
        self.certificate = certificate
    }

    public func encode(to w: inout ByteWriter) {
        w.write(header)
        w.write(nextCommittee)
        w.write(certificate)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        header = try r.read()
        nextCommittee = try r.read()
        certificate = try r.read()
        // Internal consistency is structural, so it is checked at decoding; signatures are checked by the verifier.
        guard header.nextCommitteeHash == nextCommittee.hash, certificate.blockHash == header.hash,
            certificate.height == header.height
        else { throw .invalidValue(.range) }
    }
}
