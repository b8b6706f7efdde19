import AmarsCodec
import AmarsCrypto

/// A block header: everything a light client needs to check a block without its transactions.
public struct BlockHeader: Equatable, Sendable, CanonicalCodable {
    /// 2 added ``nextPoolHash``; a version-1 header is refused (its hash would commit to no pool).
    public static let currentVersion: UInt8 = 2

    public var chainID: UInt32
    public var height: UInt64
    public var previousHash: Bytes32
    /// Milliseconds since the Unix epoch, as proposed; informative, never used for safety.
    public var timestamp: UInt64
    public var epoch: UInt64
    public var round: UInt32
    /// The proposer's x-only consensus key.
    public var proposer: Bytes32
    /// Base fee per unit in force for this block's transactions.
    public var baseFee: UInt64
    /// Resource units the block's transactions used; with `baseFee` it fixes the next base fee.
    public var unitsUsed: UInt64
    public var transactionsRoot: Bytes32
    public var stateRoot: Bytes32
    public var receiptsRoot: Bytes32
    /// Present only on the last block of an epoch: the hash of the next epoch's committee.
    public var nextCommitteeHash: Bytes32?
    /// Present only on the last block of an epoch: the hash of the next epoch's delegate pool roster (distinct
    /// operator keys and weights, as a ``Committee``). The pool changes slowly and attests every checkpoint, so a
    /// device that slept for weeks still finds a third of the pool it trusts among the attesters (SPEC "Light
    /// client"); the committee alone, re-drawn every epoch, overlaps too little after two weeks.
    public var nextPoolHash: Bytes32?
    /// The proposer's ECVRF proof over the epoch seed and height (``EpochSeed/prove(secretKey:seed:epoch:height:)``):
    /// its output feeds the next epoch's seed. 81 bytes; empty only in the genesis header.
    public var vrfProof: [UInt8]

    public init(
        chainID: UInt32, height: UInt64, previousHash: Bytes32, timestamp: UInt64, epoch: UInt64, round: UInt32,
        proposer: Bytes32, baseFee: UInt64, unitsUsed: UInt64, transactionsRoot: Bytes32, stateRoot: Bytes32,
        receiptsRoot: Bytes32, nextCommitteeHash: Bytes32?, nextPoolHash: Bytes32? = nil, vrfProof: [UInt8] = []
    ) {
        self.chainID = chainID
        self.height = height
        self.previousHash = previousHash
        self.timestamp = timestamp
        self.epoch = epoch
        self.round = round
        self.proposer = proposer
        self.baseFee = baseFee
        self.unitsUsed = unitsUsed
        self.transactionsRoot = transactionsRoot
        self.stateRoot = stateRoot
        self.receiptsRoot = receiptsRoot
        self.nextCommitteeHash = nextCommitteeHash
        self.nextPoolHash = nextPoolHash
        self.vrfProof = vrfProof
    }

    public var hash: Bytes32 { Domain.header.hash(encoded) }

    public func encode(to w: inout ByteWriter) {
        w.write(BlockHeader.currentVersion)
        w.writeVarint(UInt64(chainID))
        w.writeVarint(height)
        w.write(previousHash)
        w.writeVarint(timestamp)
        w.writeVarint(epoch)
        w.writeVarint(UInt64(round))
        w.write(proposer)
        w.writeVarint(baseFee)
        w.writeVarint(unitsUsed)
        w.write(transactionsRoot)
        w.write(stateRoot)
        w.write(receiptsRoot)
        w.write(optional: nextCommitteeHash)
        w.write(optional: nextPoolHash)
        w.writeLengthPrefixed(vrfProof)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let version = try r.readU8()
        guard version == BlockHeader.currentVersion else { throw .invalidValue(.version) }
        chainID = try r.readVarint32()
        height = try r.readVarint()
        previousHash = try r.readBytes32()
        timestamp = try r.readVarint()
        epoch = try r.readVarint()
        round = try r.readVarint32()
        proposer = try r.readBytes32()
        baseFee = try r.readVarint()
        unitsUsed = try r.readVarint()
        transactionsRoot = try r.readBytes32()
        stateRoot = try r.readBytes32()
        receiptsRoot = try r.readBytes32()
        nextCommitteeHash = try r.readOptional()
        nextPoolHash = try r.readOptional()
        vrfProof = try r.readLengthPrefixed(cap: ECVRF.proofLength)
        guard vrfProof.isEmpty || vrfProof.count == ECVRF.proofLength else { throw .invalidValue(.range) }
    }
}
