import AmarsCodec
import AmarsCrypto

/// The gateway's in-memory compact sparse Merkle tree over all state (see ``SparseMerkle`` for the shape).
///
/// Writes only restructure the tree and mark the inner nodes on their paths dirty; ``root`` rehashes the
/// dirty nodes once, so a batch of updates that share upper levels pays for each shared node once. The cost
/// of an update is one leaf hash plus one node hash per inner node on its path (about log2(n) + 1.3 for
/// random keys). Deletions collapse a subtree left with a single leaf back into that leaf, so the shape
/// (and the root) is always the canonical one for the current set of pairs.
///
/// Not thread-safe: the owner (the chain's state machine) serialises access.
public final class StateTree {
    private var store = Store()

    public init() {}

    /// Number of keys present.
    public var count: Int { store.count }

    /// Applies `changes` in order as one batch: a value hash sets the key, nil deletes it (deleting an absent
    /// key does nothing). Later entries for the same key win. No hashing happens here.
    public func update(_ changes: [(key: Bytes32, valueHash: Bytes32?)]) {
        store.apply(changes)
    }

    /// Sets one key (`nil` deletes).
    public func set(_ key: Bytes32, _ valueHash: Bytes32?) {
        store.apply(CollectionOfOne((key: key, valueHash: valueHash)))
    }

    /// The value hash stored under `key`, if any.
    public func valueHash(for key: Bytes32) -> Bytes32? { store.lookup(key) }

    /// The state root; rehashes only what changed since the last call.
    public var root: Bytes32 { store.rootHash() }

    /// Proof of the current value of `key`, or of its absence, against ``root``.
    public func proof(for key: Bytes32) -> SparseMerkleProof { store.proof(for: key) }
}

/// The tree's nodes in two arenas addressed by 32-bit references: no reference counting, no per-node
/// allocation, and one exclusivity check per batch rather than per node.
private struct Store {
    /// 0: empty subtree; high bit set: leaf `ref & ~leafBit`; otherwise inner node `ref - 1`.
    typealias Ref = UInt32
    static let leafBit: Ref = 1 << 31
    static let maxInners = Int(leafBit) - 2

    struct Inner {
        var hash: Bytes32
        var left: Ref
        var right: Ref
        /// The cached hash is stale (something below changed).
        var dirty: Bool
    }

    struct Leaf {
        var key: Bytes32
        var valueHash: Bytes32
        var hash: Bytes32
        var dirty: Bool
    }

    var inners: [Inner] = []
    var leaves: [Leaf] = []
    var freeInners: [Ref] = []
    var freeLeaves: [Ref] = []
    var top: Ref = 0
    var count = 0
    /// Scratch for deletions: the inner nodes on the path, top-down.
    var path: [Int] = []

    // MARK: Arena

    @inline(__always) static func isLeaf(_ ref: Ref) -> Bool { ref & leafBit != 0 }
    @inline(__always) static func leafIndex(_ ref: Ref) -> Int { Int(ref & ~leafBit) }
    @inline(__always) static func innerIndex(_ ref: Ref) -> Int { Int(ref) - 1 }

    mutating func newLeaf(key: Bytes32, valueHash: Bytes32) -> Ref {
        let leaf = Leaf(key: key, valueHash: valueHash, hash: .zero, dirty: true)
        if let i = freeLeaves.popLast() {
            leaves[Int(i)] = leaf
            return i | Self.leafBit
        }
        precondition(leaves.count < Int(Self.leafBit), "state tree full")
        leaves.append(leaf)
        return Ref(leaves.count - 1) | Self.leafBit
    }

    mutating func newInner(left: Ref, right: Ref) -> Ref {
        let node = Inner(hash: .zero, left: left, right: right, dirty: true)
        if let i = freeInners.popLast() {
            inners[Int(i)] = node
            return i + 1
        }
        precondition(inners.count < Self.maxInners, "state tree full")
        inners.append(node)
        return Ref(inners.count)
    }

    // MARK: Updates

    mutating func apply<C: Collection>(_ changes: C) where C.Element == (key: Bytes32, valueHash: Bytes32?) {
        for change in changes {
            if let valueHash = change.valueHash {
                insert(key: change.key, valueHash: valueHash)
            } else {
                delete(key: change.key)
            }
        }
    }

    mutating func insert(key: Bytes32, valueHash: Bytes32) {
        var parent = -1
        var side = false
        var ref = top
        var depth = 0
        while ref != 0 && !Self.isLeaf(ref) {
            let i = Self.innerIndex(ref)
            // Marked on the way down even if the write turns out to be a no-op: a cheap over-approximation.
            inners[i].dirty = true
            side = key.bit(depth)
            ref = side ? inners[i].right : inners[i].left
            parent = i
            depth += 1
        }
        let replacement: Ref
        if ref == 0 {
            replacement = newLeaf(key: key, valueHash: valueHash)
        } else {
            let li = Self.leafIndex(ref)
            if leaves[li].key == key {
                if leaves[li].valueHash != valueHash {
                    leaves[li].valueHash = valueHash
                    leaves[li].dirty = true
                }
                return
            }
            let existingKey = leaves[li].key
            let added = newLeaf(key: key, valueHash: valueHash)
            // Inner nodes from `depth` down to the first bit where the two keys differ.
            var d = Self.firstDifference(existingKey, key)
            var node = key.bit(d) ? newInner(left: ref, right: added) : newInner(left: added, right: ref)
            while d > depth {
                d -= 1
                node = key.bit(d) ? newInner(left: 0, right: node) : newInner(left: node, right: 0)
            }
            replacement = node
        }
        count += 1
        if parent < 0 {
            top = replacement
        } else if side {
            inners[parent].right = replacement
        } else {
            inners[parent].left = replacement
        }
    }

    mutating func delete(key: Bytes32) {
        path.removeAll(keepingCapacity: true)
        var ref = top
        var depth = 0
        while ref != 0 && !Self.isLeaf(ref) {
            let i = Self.innerIndex(ref)
            path.append(i)
            ref = key.bit(depth) ? inners[i].right : inners[i].left
            depth += 1
        }
        guard ref != 0, leaves[Self.leafIndex(ref)].key == key else { return }
        freeLeaves.append(ref & ~Self.leafBit)
        count -= 1
        // Walk back up: a node left with no leaf, or with one leaf and an empty side, is replaced by what it
        // holds (nothing, or that leaf); the first node that keeps two or more keys stops the collapse.
        var replacement: Ref = 0
        var k = path.count
        while k > 0 {
            k -= 1
            let i = path[k]
            let side = key.bit(k)
            if side { inners[i].right = replacement } else { inners[i].left = replacement }
            let l = inners[i].left
            let r = inners[i].right
            let collapses = (l == 0 && (r == 0 || Self.isLeaf(r))) || (r == 0 && Self.isLeaf(l))
            if !collapses {
                inners[i].dirty = true
                for j in 0..<k { inners[path[j]].dirty = true }
                return
            }
            replacement = l == 0 ? r : l
            freeInners.append(Ref(i))
        }
        top = replacement
    }

    /// Index of the first path bit where two different keys disagree.
    static func firstDifference(_ a: Bytes32, _ b: Bytes32) -> Int {
        if a.w0 != b.w0 { return (a.w0 ^ b.w0).leadingZeroBitCount }
        if a.w1 != b.w1 { return 64 + (a.w1 ^ b.w1).leadingZeroBitCount }
        if a.w2 != b.w2 { return 128 + (a.w2 ^ b.w2).leadingZeroBitCount }
        precondition(a.w3 != b.w3, "equal keys have no differing bit")
        return 192 + (a.w3 ^ b.w3).leadingZeroBitCount
    }

    // MARK: Reads

    func lookup(_ key: Bytes32) -> Bytes32? {
        var ref = top
        var depth = 0
        while ref != 0 {
            if Self.isLeaf(ref) {
                let leaf = leaves[Self.leafIndex(ref)]
                return leaf.key == key ? leaf.valueHash : nil
            }
            let i = Self.innerIndex(ref)
            ref = key.bit(depth) ? inners[i].right : inners[i].left
            depth += 1
        }
        return nil
    }

    mutating func rootHash() -> Bytes32 { hash(top) }

    /// Hash of the subtree at `ref`, refreshing stale hashes below it.
    mutating func hash(_ ref: Ref) -> Bytes32 {
        if ref == 0 { return .zero }
        if Self.isLeaf(ref) {
            let li = Self.leafIndex(ref)
            if leaves[li].dirty {
                leaves[li].hash = SparseMerkle.leafHash(key: leaves[li].key, valueHash: leaves[li].valueHash)
                leaves[li].dirty = false
            }
            return leaves[li].hash
        }
        let i = Self.innerIndex(ref)
        if inners[i].dirty {
            let l = hash(inners[i].left)
            let r = hash(inners[i].right)
            inners[i].hash = SparseMerkle.nodeHash(l, r)
            inners[i].dirty = false
        }
        return inners[i].hash
    }

    /// Hash of a subtree whose hashes are up to date.
    func cachedHash(_ ref: Ref) -> Bytes32 {
        if ref == 0 { return .zero }
        if Self.isLeaf(ref) { return leaves[Self.leafIndex(ref)].hash }
        return inners[Self.innerIndex(ref)].hash
    }

    mutating func proof(for key: Bytes32) -> SparseMerkleProof {
        _ = rootHash()
        var bitmap = Bytes32.zero
        var siblings: [Bytes32] = []
        var ref = top
        var depth = 0
        while ref != 0 {
            if Self.isLeaf(ref) {
                let leaf = leaves[Self.leafIndex(ref)]
                let terminal: SparseMerkleProof.Terminal =
                    leaf.key == key ? .member : .otherLeaf(key: leaf.key, valueHash: leaf.valueHash)
                return SparseMerkleProof(depth: depth, bitmap: bitmap, nonZeroSiblings: siblings, terminal: terminal)
            }
            let node = inners[Self.innerIndex(ref)]
            let sibling: Ref
            if key.bit(depth) {
                sibling = node.left
                ref = node.right
            } else {
                sibling = node.right
                ref = node.left
            }
            if sibling != 0 {
                bitmap = SparseMerkle.settingBit(depth, of: bitmap)
                siblings.append(cachedHash(sibling))
            }
            depth += 1
        }
        return SparseMerkleProof(depth: depth, bitmap: bitmap, nonZeroSiblings: siblings, terminal: .emptySlot)
    }
}
