import AmarsCodec

/// The compact sparse Merkle tree behind the state root: a binary trie over 256-bit keys.
///
/// - The path of a key is its bits, most significant first (`key.bit(depth)`); 0 goes left, 1 goes right.
/// - An empty subtree is `Bytes32.zero`; nothing ever hashes two empty children.
/// - A subtree holding exactly one (key, valueHash) pair is that pair's leaf hash, placed at the shallowest
///   position its key's prefix allows: a leaf sits at depth `d` only when the subtree above it, at depth
///   `d - 1`, holds at least two keys.
/// - Every other subtree (two keys or more) is an inner node `nodeHash(left, right)`; one side may be empty
///   when all its keys share the next bit.
///
/// So the root is a function of the set of pairs alone, never of the order in which they were written,
/// and an update rehashes one leaf and the inner nodes on its path (about log2(n) + 1.3 for random keys).
///
/// - leaf: `TaggedHash("AmarsStateLeaf").hash(key, valueHash)`
/// - node: `TaggedHash("AmarsStateNode").hash(left, right)`
public enum SparseMerkle {
    public static let leafTag = TaggedHash(tag: "AmarsStateLeaf")
    public static let nodeTag = TaggedHash(tag: "AmarsStateNode")

    /// Keys are 256 bits, so no path is longer than 256 inner nodes.
    public static let maxDepth = 256

    @inlinable
    public static func leafHash(key: Bytes32, valueHash: Bytes32) -> Bytes32 { leafTag.hash(key, valueHash) }

    @inlinable
    public static func nodeHash(_ left: Bytes32, _ right: Bytes32) -> Bytes32 { nodeTag.hash(left, right) }

    /// True when `a` and `b` agree on their first `bits` path bits (`bits` in 0...256).
    @inlinable
    public static func sharePrefix(_ a: Bytes32, _ b: Bytes32, bits: Int) -> Bool {
        @inline(__always) func agree(_ x: UInt64, _ y: UInt64, from start: Int) -> Bool {
            let r = bits - start
            if r <= 0 { return true }
            let diff = x ^ y
            return r >= 64 ? diff == 0 : diff >> UInt64(64 - r) == 0
        }
        return agree(a.w0, b.w0, from: 0) && agree(a.w1, b.w1, from: 64) && agree(a.w2, b.w2, from: 128)
            && agree(a.w3, b.w3, from: 192)
    }

    /// True when `value` has any path bit at index `start` or later set (`start` in 0...256).
    @inlinable
    public static func hasBitSet(from start: Int, in value: Bytes32) -> Bool {
        @inline(__always) func any(_ x: UInt64, from wordStart: Int) -> Bool {
            let before = start - wordStart  // bits of this word that come before `start`
            if before >= 64 { return false }
            if before <= 0 { return x != 0 }
            return x & (UInt64.max >> UInt64(before)) != 0
        }
        return any(value.w0, from: 0) || any(value.w1, from: 64) || any(value.w2, from: 128)
            || any(value.w3, from: 192)
    }

    /// `value` with path bit `index` (0...255, ``Bytes32/bit(_:)`` order) set.
    @inlinable
    public static func settingBit(_ index: Int, of value: Bytes32) -> Bytes32 {
        var v = value
        let mask = UInt64(1) << UInt64(63 - index & 63)
        switch index >> 6 {
        case 0: v.w0 |= mask
        case 1: v.w1 |= mask
        case 2: v.w2 |= mask
        default: v.w3 |= mask
        }
        return v
    }
}

/// Proof of the value of one key, or of its absence, against a state root.
///
/// Siblings are top-down: the sibling at depth `i` is the hash of the child of the path's inner node at depth
/// `i` that the key's path does not take. `depth` is the depth of the terminal, the first position on the path
/// that is not an inner node:
///
/// - ``Terminal/member``: the key's own leaf (the proven value hash is supplied to ``verify(root:key:valueHash:)``);
/// - ``Terminal/emptySlot``: an empty subtree, so the key is absent;
/// - ``Terminal/otherLeaf(key:valueHash:)``: the leaf of another key that shares the path prefix, so the key
///   is absent.
///
/// In memory as on the wire, only the non-zero siblings are kept (`bitmap` says where they go), so a decoded
/// proof costs 32 bytes per sibling actually sent, about log2(n) of them, however deep its path.
///
/// Encoding (canonical, one byte form per proof):
/// 1. depth: varint, at most 256;
/// 2. bitmap: `(depth + 7) / 8` bytes, bit `i` (most significant bit of byte 0 first) set iff the sibling at
///    depth `i` is not zero; bits at or past `depth` must be clear;
/// 3. the non-zero siblings, 32 bytes each, top-down;
/// 4. terminal tag: 0 member, 1 empty slot, 2 other leaf followed by its key and value hash (32 bytes each).
///
/// A decoder also refuses what no compact tree can produce: a zero sibling written out, a zero last sibling
/// (at depth `depth - 1`: an inner node always has a non-empty other side when the path ends in an empty
/// slot, and always holds another key when it ends in a leaf), an empty slot or another leaf at depth 256.
public struct SparseMerkleProof: CanonicalCodable, Equatable, Sendable {
    public enum Terminal: Equatable, Sendable {
        case member
        case emptySlot
        case otherLeaf(key: Bytes32, valueHash: Bytes32)
    }

    /// Number of inner nodes on the path, 0...256.
    public var depth: Int
    /// Bit `i` (``Bytes32/bit(_:)`` order) set iff the sibling at depth `i` is not zero.
    public var bitmap: Bytes32
    /// The non-zero siblings, top-down.
    public var nonZeroSiblings: [Bytes32]
    public var terminal: Terminal

    /// The parts as given; ``isWellFormed`` tells whether they are coherent.
    @inlinable
    public init(depth: Int, bitmap: Bytes32, nonZeroSiblings: [Bytes32], terminal: Terminal) {
        self.depth = depth
        self.bitmap = bitmap
        self.nonZeroSiblings = nonZeroSiblings
        self.terminal = terminal
    }

    /// From all siblings, top-down, zeros included (at most 256).
    public init(siblings: [Bytes32], terminal: Terminal) {
        self.init(depth: 0, bitmap: .zero, nonZeroSiblings: [], terminal: terminal)
        self.siblings = siblings
    }

    /// All siblings, top-down, zeros included. Setting rebuilds the compact form (at most 256 entries).
    public var siblings: [Bytes32] {
        get {
            var out: [Bytes32] = []
            out.reserveCapacity(depth)
            var j = 0
            for i in 0..<depth {
                if bitmap.bit(i) && j < nonZeroSiblings.count {
                    out.append(nonZeroSiblings[j])
                    j += 1
                } else {
                    out.append(.zero)
                }
            }
            return out
        }
        set {
            precondition(newValue.count <= SparseMerkle.maxDepth, "a sparse Merkle path has at most 256 siblings")
            depth = newValue.count
            bitmap = .zero
            nonZeroSiblings = []
            for (i, s) in newValue.enumerated() where s != .zero {
                bitmap = SparseMerkle.settingBit(i, of: bitmap)
                nonZeroSiblings.append(s)
            }
        }
    }

    /// Structural rules that hold for every proof a compact tree produces, independent of key and root.
    public var isWellFormed: Bool {
        let d = depth
        guard d >= 0, d <= SparseMerkle.maxDepth else { return false }
        if SparseMerkle.hasBitSet(from: d, in: bitmap) { return false }
        let present =
            bitmap.w0.nonzeroBitCount + bitmap.w1.nonzeroBitCount + bitmap.w2.nonzeroBitCount
            + bitmap.w3.nonzeroBitCount
        guard present == nonZeroSiblings.count else { return false }
        for s in nonZeroSiblings where s == .zero { return false }
        if d > 0 && !bitmap.bit(d - 1) { return false }
        switch terminal {
        case .member: return true
        case .emptySlot, .otherLeaf: return d < SparseMerkle.maxDepth
        }
    }

    /// True when this proof shows, against `root`, that `key` holds `valueHash` (or, for `valueHash == nil`,
    /// that `key` is absent). At most 257 hashes; nothing is allocated.
    public func verify(root: Bytes32, key: Bytes32, valueHash: Bytes32?) -> Bool {
        guard isWellFormed else { return false }
        let d = depth
        var h: Bytes32
        switch terminal {
        case .member:
            guard let valueHash else { return false }
            h = SparseMerkle.leafHash(key: key, valueHash: valueHash)
        case .emptySlot:
            guard valueHash == nil else { return false }
            h = .zero
        case .otherLeaf(let otherKey, let otherValue):
            guard valueHash == nil, otherKey != key, SparseMerkle.sharePrefix(otherKey, key, bits: d) else {
                return false
            }
            h = SparseMerkle.leafHash(key: otherKey, valueHash: otherValue)
        }
        var i = d
        var j = nonZeroSiblings.count
        while i > 0 {
            i -= 1
            var s = Bytes32.zero
            if bitmap.bit(i) {
                j -= 1
                s = nonZeroSiblings[j]
            }
            h = key.bit(i) ? SparseMerkle.nodeHash(s, h) : SparseMerkle.nodeHash(h, s)
        }
        return h == root
    }

    public func encode(to writer: inout ByteWriter) {
        let d = depth
        writer.writeVarint(UInt64(d))
        for byteIndex in 0..<(d + 7) / 8 { writer.write(bitmap[byte: byteIndex]) }
        for s in nonZeroSiblings { writer.write(s) }
        switch terminal {
        case .member:
            writer.write(UInt8(0))
        case .emptySlot:
            writer.write(UInt8(1))
        case .otherLeaf(let key, let valueHash):
            writer.write(UInt8(2))
            writer.write(key)
            writer.write(valueHash)
        }
    }

    public init(from reader: inout ByteReader) throws(CodecError) {
        let d = try reader.readCount(cap: SparseMerkle.maxDepth)
        var bitmap = Bytes32.zero
        var present = 0
        for byteIndex in 0..<(d + 7) / 8 {
            let b = try reader.readU8()
            let valid = d - byteIndex * 8  // bits of this byte that lie inside the depth
            if valid < 8 && b & (0xFF >> UInt8(valid)) != 0 { throw .invalidValue(.range) }
            present += b.nonzeroBitCount
            let shift = UInt64(56 - (byteIndex & 7) * 8)
            switch byteIndex >> 3 {
            case 0: bitmap.w0 |= UInt64(b) << shift
            case 1: bitmap.w1 |= UInt64(b) << shift
            case 2: bitmap.w2 |= UInt64(b) << shift
            default: bitmap.w3 |= UInt64(b) << shift
            }
        }
        // Allocation follows the input actually present, never the claimed count alone.
        guard present * 32 <= reader.remaining else { throw .truncated }
        var siblings: [Bytes32] = []
        siblings.reserveCapacity(present)
        for _ in 0..<present {
            let s = try reader.readBytes32()
            guard s != .zero else { throw .invalidValue(.range) }
            siblings.append(s)
        }
        let tag = try reader.readU8()
        let terminal: Terminal
        switch tag {
        case 0: terminal = .member
        case 1: terminal = .emptySlot
        case 2:
            let key = try reader.readBytes32()
            let valueHash = try reader.readBytes32()
            terminal = .otherLeaf(key: key, valueHash: valueHash)
        default: throw .unknownTag(tag)
        }
        self.init(depth: d, bitmap: bitmap, nonZeroSiblings: siblings, terminal: terminal)
        guard isWellFormed else { throw .invalidValue(.range) }
    }
}
