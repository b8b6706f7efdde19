import AmarsCodec
import AmarsCrypto
import Ledger

/// What a device believes about the chain: which committee signs the current epoch, and the checkpoint that
/// named it. Everything the light client verifies is measured against one of these.
///
/// A value of this type only comes from a trust anchor (``anchored(header:committee:epochLength:trustedHash:)``),
/// from ``CheckpointVerifier``, or from the device's own storage (``StateSlots``), which wrote it after one of
/// the first two. It is never built from network bytes directly.
public struct TrustedState: Equatable, Sendable, CanonicalCodable {
    /// 2 added ``timestamp``, 3 ``genesis``, 4 ``poolHash``; a version-1 state still decodes with no timestamp,
    /// a version 1 or 2 state with a zero genesis, which ``DeviceSession`` completes from its anchor, and a state
    /// before version 4 with no pool, which the next sequential step supplies (until then it cannot skip).
    public static let currentVersion: UInt8 = 4

    public var chainID: UInt32
    /// The chain's genesis block hash: votes sign it (``Vote/signingHash(genesis:)``), so certificates are
    /// checked against it. Zero only in a state read from before version 3, until its session completes it.
    public var genesis: Bytes32
    /// Blocks per epoch, a chain constant from genesis. Kept here so the epoch boundary rule needs no other
    /// configuration: the last block of epoch E is at height (E + 1) · epochLength.
    public var epochLength: UInt64
    /// The epoch whose committee is trusted.
    public var epoch: UInt64
    /// The committee of ``epoch``; its `epoch` field always equals ``epoch``.
    public var committee: Committee
    /// Hash of the header that named ``committee`` (the genesis header for epoch 0).
    public var checkpointHash: Bytes32
    /// Height of that header: epoch · epochLength.
    public var height: UInt64
    /// State root of that header, against which state proofs can be checked without any further header.
    public var stateRoot: Bytes32
    /// Number of verified advances since the anchor. It orders states a device has held (an anti-rollback
    /// counter for the application); the storage slots keep their own write counter.
    public var sequence: UInt64
    /// Timestamp (ms since the Unix epoch) of the header that named ``committee``: the trusting period runs from
    /// it. Nil only for a state saved before version 2, which the device session completes from that header
    /// (whose hash it trusts) before it follows the chain again.
    public var timestamp: UInt64?
    /// Hash of the delegate pool roster of ``epoch`` (the header that named ``committee`` names it too): skipping
    /// counts the pool's checkpoint attestations against it. Only the hash is kept, so the state stays small on
    /// a board; a gateway sends the roster with each skip offer and the device checks it against this hash.
    /// Nil for a header that names no pool, or a state saved before version 4.
    public var poolHash: Bytes32?

    public init(
        chainID: UInt32, genesis: Bytes32, epochLength: UInt64, epoch: UInt64, committee: Committee,
        checkpointHash: Bytes32, height: UInt64, stateRoot: Bytes32, sequence: UInt64, timestamp: UInt64?,
        poolHash: Bytes32? = nil
    ) {
        self.chainID = chainID
        self.genesis = genesis
        self.epochLength = epochLength
        self.epoch = epoch
        self.committee = committee
        self.checkpointHash = checkpointHash
        self.height = height
        self.stateRoot = stateRoot
        self.sequence = sequence
        self.timestamp = timestamp
        self.poolHash = poolHash
    }

    /// Trust from an anchor the device obtained out of band: the genesis header (height 0, naming the committee
    /// of epoch 0) or any later checkpoint header (height (E + 1) · L, naming the committee of E + 1).
    ///
    /// `trustedHash` is the one value that must come from somewhere safe (compiled into firmware, provisioned at
    /// the factory); the header and committee may come from the network, because they must hash to it.
    /// `genesis`: the chain's genesis block hash; nil when `header` is the genesis header, whose hash it is.
    public static func anchored(
        header: BlockHeader, committee: Committee, epochLength: UInt64, trustedHash: Bytes32, genesis: Bytes32? = nil
    ) throws(LightClientError) -> TrustedState {
        guard epochLength > 0 else { throw .epochArithmetic }
        let hash = header.hash
        guard hash == trustedHash else { throw .untrustedAnchor }
        guard let namedBy = header.nextCommitteeHash else { throw .notACheckpoint }
        guard namedBy == committee.hash else { throw .committeeMismatch }
        let (height, overflow) = committee.epoch.multipliedReportingOverflow(by: epochLength)
        guard !overflow else { throw .epochArithmetic }
        guard header.height == height else { throw .wrongHeight(expected: height, got: header.height) }
        let headerEpoch = committee.epoch == 0 ? 0 : committee.epoch - 1
        guard header.epoch == headerEpoch else { throw .wrongEpoch(expected: headerEpoch, got: header.epoch) }
        guard let genesis = genesis ?? (height == 0 ? hash : nil) else { throw .untrustedAnchor }
        return TrustedState(
            chainID: header.chainID, genesis: genesis, epochLength: epochLength, epoch: committee.epoch,
            committee: committee, checkpointHash: hash, height: height, stateRoot: header.stateRoot, sequence: 0,
            timestamp: header.timestamp, poolHash: header.nextPoolHash)
    }

    /// Heights of the blocks the trusted committee signs: epoch · L + 1 through (epoch + 1) · L. Nil if the last
    /// one does not fit in 64 bits, which no real chain reaches but a corrupt or hostile value could.
    public var signedHeights: (first: UInt64, last: UInt64)? {
        let (next, o1) = epoch.addingReportingOverflow(1)
        let (last, o2) = next.multipliedReportingOverflow(by: epochLength)
        guard !o1, !o2, epochLength > 0 else { return nil }
        return (height + 1, last)
    }

    /// Upper bound of the encoding, reached by no real state: version 1, chain id 5, epoch length, epoch,
    /// height, sequence, timestamp 10 each, three hashes 32 each, an optional pool hash 33, and the committee
    /// (epoch 10, count 2, and per member a 32-byte key plus a weight of up to 10 bytes) at its cap of
    /// `Caps.committeeMembers` (128): 1 + 5 + 5·10 + 96 + 33 + 12 + 128 · 42 = 5573 bytes. ``StateSlots`` sizes
    /// its slots from this.
    public static let maxEncodedSize = 1 + 5 + 5 * 10 + 3 * 32 + 33 + 10 + 2 + Caps.committeeMembers * (32 + 10)

    public func encode(to w: inout ByteWriter) {
        w.write(timestamp == nil ? 1 : TrustedState.currentVersion)
        w.writeVarint(UInt64(chainID))
        w.writeVarint(epochLength)
        w.writeVarint(epoch)
        w.write(committee)
        w.write(checkpointHash)
        w.writeVarint(height)
        w.write(stateRoot)
        w.writeVarint(sequence)
        // A state without a timestamp is written as version 1, so it is never read back as timestamp 0 (its
        // genesis is completed from the anchor again when it is read).
        if let timestamp {
            w.writeVarint(timestamp)
            w.write(genesis)
            w.write(optional: poolHash)
        }
    }

    /// Decoding re-checks the invariants, so a slot written by older firmware or damaged in a way the checksum
    /// missed still cannot yield a state the verifiers would misread.
    public init(from r: inout ByteReader) throws(CodecError) {
        let version = try r.readU8()
        guard version >= 1, version <= TrustedState.currentVersion else { throw .invalidValue(.version) }
        chainID = try r.readVarint32()
        epochLength = try r.readVarint()
        epoch = try r.readVarint()
        committee = try r.read()
        checkpointHash = try r.readBytes32()
        height = try r.readVarint()
        stateRoot = try r.readBytes32()
        sequence = try r.readVarint()
        timestamp = version == 1 ? nil : try r.readVarint()
        genesis = version >= 3 ? try r.readBytes32() : .zero
        poolHash = version >= 4 ? try r.readOptional() : nil
        let (expectedHeight, overflow) = epoch.multipliedReportingOverflow(by: epochLength)
        guard epochLength > 0, committee.epoch == epoch, !overflow, height == expectedHeight else {
            throw .invalidValue(.range)
        }
    }
}
