import AmarsCodec

/// The list Merkle tree behind the transaction root and the receipts root of a block.
///
/// Shape (RFC 6962 / RFC 9162): a list of `n > 1` leaves splits into the first `k` leaves and the rest,
/// where `k` is the largest power of two strictly below `n`; a single leaf is its own root; the empty list
/// has the root `Bytes32.zero`. The last leaf of an odd level is never duplicated, so two different lists
/// never share a root (no CVE-2012-2459 style ambiguity).
///
/// - leaf: `TaggedHash("AmarsMerkleLeaf").hash(data)`
/// - node: `TaggedHash("AmarsMerkleNode").hash(left, right)` (the 64 bytes `left || right`)
///
/// Leaf and node hashes live in separate domains, so an inner node can never be presented as a leaf.
///
/// The root does not commit to the number of leaves by itself: for some pairs of sizes (5 and 6, say) the
/// proof of the first leaf has the same shape. Whoever needs the count authenticated (a block header)
/// commits it next to the root.
public enum MerkleTree {
    public static let leafTag = TaggedHash(tag: "AmarsMerkleLeaf")
    public static let nodeTag = TaggedHash(tag: "AmarsMerkleNode")

    /// The most siblings any proof can carry: a tree of at most 2^64 - 1 leaves is at most 64 levels deep.
    public static let maxProofSiblings = 64

    /// Hash of one list element (a transaction's or a receipt's canonical encoding).
    @inlinable
    public static func leafHash(_ data: [UInt8]) -> Bytes32 { leafTag.hash(data) }

    /// Hash of an inner node.
    @inlinable
    public static func nodeHash(_ left: Bytes32, _ right: Bytes32) -> Bytes32 { nodeTag.hash(left, right) }

    /// Root over `leaves`, which are already leaf hashes (see ``leafHash(_:)``).
    ///
    /// Computed level by level, carrying an unpaired last node up unchanged; this yields exactly the
    /// largest-power-of-two split described above, with `n - 1` node hashes and one buffer of `n / 2` hashes.
    public static func root(leaves: [Bytes32]) -> Bytes32 {
        let n = leaves.count
        if n == 0 { return .zero }
        if n == 1 { return leaves[0] }
        var level: [Bytes32] = []
        level.reserveCapacity((n + 1) / 2)
        var i = 0
        while i + 1 < n {
            level.append(nodeHash(leaves[i], leaves[i + 1]))
            i += 2
        }
        if i < n { level.append(leaves[i]) }
        var m = level.count
        while m > 1 {
            var w = 0
            var r = 0
            while r + 1 < m {
                level[w] = nodeHash(level[r], level[r + 1])
                w += 1
                r += 2
            }
            if r < m {
                level[w] = level[r]
                w += 1
            }
            m = w
        }
        return level[0]
    }

    /// Inclusion proof for `leaves[index]`. `index` must be a valid index of `leaves` (a programming error
    /// otherwise).
    public static func proof(leaves: [Bytes32], index: Int) -> MerkleProof {
        precondition(index >= 0 && index < leaves.count, "Merkle proof index out of range")
        var siblings: [Bytes32] = []
        var level = leaves
        var i = index
        while level.count > 1 {
            let m = level.count
            if i & 1 == 1 {
                siblings.append(level[i - 1])
            } else if i + 1 < m {
                siblings.append(level[i + 1])
            }
            // The unpaired last node of an odd level is carried up without a sibling.
            var next: [Bytes32] = []
            next.reserveCapacity((m + 1) / 2)
            var r = 0
            while r + 1 < m {
                next.append(nodeHash(level[r], level[r + 1]))
                r += 2
            }
            if r < m { next.append(level[r]) }
            level = next
            i >>= 1
        }
        return MerkleProof(index: UInt64(index), count: UInt64(leaves.count), siblings: siblings)
    }

    /// Number of siblings that a proof for leaf `index` of a `count`-leaf tree carries, or nil when
    /// `index >= count`.
    @inlinable
    public static func proofLength(index: UInt64, count: UInt64) -> Int? {
        guard index < count else { return nil }
        var i = index
        var m = count
        var length = 0
        while m > 1 {
            if i & 1 == 1 || i + 1 < m { length += 1 }
            i >>= 1
            m = m / 2 + m % 2
        }
        return length
    }
}

/// Proof that a leaf hash sits at position `index` of a list of `count` leaves with a given root.
///
/// `siblings` run bottom-up (the leaf's neighbour first); levels where the path node is the unpaired last
/// node are skipped, so the number of siblings is exactly what `(index, count)` imply.
///
/// Encoding: `index` (varint), `count` (varint), sibling count (varint, at most 64), the siblings (32 bytes
/// each). Decoding refuses `count == 0`, `index >= count`, and a sibling count other than the implied one.
public struct MerkleProof: CanonicalCodable, Equatable, Sendable {
    public var index: UInt64
    public var count: UInt64
    public var siblings: [Bytes32]

    @inlinable
    public init(index: UInt64, count: UInt64, siblings: [Bytes32]) {
        self.index = index
        self.count = count
        self.siblings = siblings
    }

    /// True when `leafHash` at `index` of a `count`-leaf list hashes up to `root` through `siblings`.
    /// Work is bounded by 64 node hashes; nothing is allocated.
    public func verify(leafHash: Bytes32, root: Bytes32) -> Bool {
        guard index < count, siblings.count <= MerkleTree.maxProofSiblings else { return false }
        // RFC 9162 section 2.1.3.2.
        var fn = index
        var sn = count - 1
        var r = leafHash
        for p in siblings {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = MerkleTree.nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = MerkleTree.nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    public func encode(to writer: inout ByteWriter) {
        writer.writeVarint(index)
        writer.writeVarint(count)
        writer.writeVarint(UInt64(siblings.count))
        for s in siblings { writer.write(s) }
    }

    public init(from reader: inout ByteReader) throws(CodecError) {
        let index = try reader.readVarint()
        let count = try reader.readVarint()
        let n = try reader.readCount(cap: MerkleTree.maxProofSiblings)
        guard let expected = MerkleTree.proofLength(index: index, count: count) else {
            throw .invalidValue(.range)
        }
        guard n == expected else { throw .invalidValue(.range) }
        var siblings: [Bytes32] = []
        siblings.reserveCapacity(n)
        for _ in 0..<n { siblings.append(try reader.readBytes32()) }
        self.init(index: index, count: count, siblings: siblings)
    }
}
