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
/// and an update rehashes one leaf and the inner nodes on its path (about log2(n) + 1.4 for random keys).
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
}

/// Proof of the value of one key, or of its absence, against a state root.
///
/// `siblings` is top-down: `siblings[i]` is the hash of the subtree next to the path at depth `i + 1`,
/// that is the child of the path's inner node at depth `i` that the key's path does not take. Its length
/// is the depth of the terminal, the first position on the path that is not an inner node:
///
/// - ``Terminal/member``: the key's own leaf (the proven value hash is supplied to ``verify(root:key:valueHash:)``);
/// - ``Terminal/emptySlot``: an empty subtree, so the key is absent;
/// - ``Terminal/otherLeaf(key:valueHash:)``: the leaf of another key that shares the path prefix, so the key
///   is absent.
///
/// Encoding (canonical, one byte form per proof):
/// 1. depth: varint, at most 256;
/// 2. bitmap: `(depth + 7) / 8` bytes, bit `i` (most significant bit of byte 0 first) set iff `siblings[i]`
///    is not zero; bits at or past `depth` must be clear;
/// 3. the non-zero siblings, 32 bytes each, top-down;
/// 4. terminal tag: 0 member, 1 empty slot, 2 other leaf followed by its key and value hash (32 bytes each).
///
/// A decoder also refuses what no compact tree can produce: a zero sibling written out, a zero last sibling
/// (`siblings[depth - 1]`: an inner node always has a non-empty other side when the path ends in an empty
/// slot, and always holds another key when it ends in a leaf), an empty slot or another leaf at depth 256.
public struct SparseMerkleProof: CanonicalCodable, Equatable, Sendable {
    public enum Terminal: Equatable, Sendable {
        case member
        case emptySlot
        case otherLeaf(key: Bytes32, valueHash: Bytes32)
    }

    public var siblings: [Bytes32]
    public var terminal: Terminal

    @inlinable
    public init(siblings: [Bytes32], terminal: Terminal) {
        self.siblings = siblings
        self.terminal = terminal
    }

    public var depth: Int { siblings.count }

    /// Structural rules that hold for every proof a compact tree produces, independent of key and root.
    @inlinable
    public var isWellFormed: Bool {
        let d = siblings.count
        guard d <= SparseMerkle.maxDepth else { return false }
        if d > 0 && siblings[d - 1] == .zero { return false }
        switch terminal {
        case .member: return true
        case .emptySlot, .otherLeaf: return d < SparseMerkle.maxDepth
        }
    }

    /// True when this proof shows, against `root`, that `key` holds `valueHash` (or, for `valueHash == nil`,
    /// that `key` is absent). At most 257 hashes; nothing is allocated.
    public func verify(root: Bytes32, key: Bytes32, valueHash: Bytes32?) -> Bool {
        guard isWellFormed else { return false }
        let d = siblings.count
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
        while i > 0 {
            i -= 1
            let s = siblings[i]
            h = key.bit(i) ? SparseMerkle.nodeHash(s, h) : SparseMerkle.nodeHash(h, s)
        }
        return h == root
    }

    public func encode(to writer: inout ByteWriter) {
        let d = siblings.count
        writer.writeVarint(UInt64(d))
        var byteIndex = 0
        while byteIndex * 8 < d {
            var b: UInt8 = 0
            for k in 0..<8 {
                let i = byteIndex * 8 + k
                if i < d && siblings[i] != .zero { b |= 0x80 >> UInt8(k) }
            }
            writer.write(b)
            byteIndex += 1
        }
        for s in siblings where s != .zero { writer.write(s) }
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
        // The bitmap is read into a fixed 32-byte value: no allocation sized by the input beyond the cap.
        var bitmap = Bytes32.zero
        let mapBytes = (d + 7) / 8
        var present = 0
        for byteIndex in 0..<mapBytes {
            let b = try reader.readU8()
            let valid = d - byteIndex * 8  // bits of this byte that are inside the depth
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
        guard present * 32 <= reader.remaining else { throw .truncated }
        var siblings: [Bytes32] = []
        siblings.reserveCapacity(d)
        for i in 0..<d {
            if bitmap.bit(i) {
                let s = try reader.readBytes32()
                guard s != .zero else { throw .invalidValue(.range) }
                siblings.append(s)
            } else {
                siblings.append(.zero)
            }
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
        self.init(siblings: siblings, terminal: terminal)
        guard isWellFormed else { throw .invalidValue(.range) }
    }
}
