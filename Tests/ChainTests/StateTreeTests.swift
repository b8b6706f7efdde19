import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import XCTest

@testable import Chain

final class StateTreeTests: XCTestCase {
    private let leafTag = TaggedHash(tag: "AmarsStateLeaf")
    private let nodeTag = TaggedHash(tag: "AmarsStateNode")

    /// The compact tree's definition, computed from scratch from the set of pairs.
    private func referenceRoot(_ pairs: [Bytes32: Bytes32]) -> Bytes32 {
        let sorted = pairs.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
        return reference(sorted[...], depth: 0)
    }

    private func reference(_ pairs: ArraySlice<(key: Bytes32, value: Bytes32)>, depth: Int) -> Bytes32 {
        if pairs.isEmpty { return .zero }
        if pairs.count == 1 {
            let p = pairs[pairs.startIndex]
            return leafTag.hash(p.key, p.value)
        }
        // Sorted by key, so the keys with bit `depth` clear come first.
        let mid = pairs.firstIndex { $0.key.bit(depth) } ?? pairs.endIndex
        return nodeTag.hash(
            reference(pairs[pairs.startIndex..<mid], depth: depth + 1),
            reference(pairs[mid...], depth: depth + 1))
    }

    private func flip(_ b: Bytes32, bit: Int = 255) -> Bytes32 {
        var c = b
        switch bit >> 6 {
        case 0: c.w0 ^= 1 << UInt64(63 - bit & 63)
        case 1: c.w1 ^= 1 << UInt64(63 - bit & 63)
        case 2: c.w2 ^= 1 << UInt64(63 - bit & 63)
        default: c.w3 ^= 1 << UInt64(63 - bit & 63)
        }
        return c
    }

    /// Random keys plus clusters with long shared prefixes (down to keys that differ only in the last bit).
    private func keyPool(_ rng: inout SplitMix64, random: Int) -> [Bytes32] {
        var keys = (0..<random).map { _ in rng.bytes32() }
        let base = rng.bytes32()
        keys.append(base)
        for bit in [255, 254, 200, 130, 64, 63, 10, 1, 0] { keys.append(flip(base, bit: bit)) }
        keys.append(flip(flip(base, bit: 255), bit: 254))
        keys.append(.zero)
        keys.append(Bytes32(w0: .max, w1: .max, w2: .max, w3: .max))
        return keys
    }

    func testEmptyTree() {
        let tree = StateTree()
        XCTAssertEqual(tree.root, .zero)
        XCTAssertEqual(tree.count, 0)
        let key = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        let p = tree.proof(for: key)
        XCTAssertEqual(p, SparseMerkleProof(siblings: [], terminal: .emptySlot))
        XCTAssertTrue(p.verify(root: .zero, key: key, valueHash: nil))
        XCTAssertFalse(p.verify(root: .zero, key: key, valueHash: .zero))
        tree.update([(key: key, valueHash: nil)])
        XCTAssertEqual(tree.root, .zero)
    }

    func testSingleKeyIsItsLeaf() {
        let tree = StateTree()
        let key = Bytes32(w0: 9, w1: 0, w2: 0, w3: 1)
        let value = Bytes32(w0: 7, w1: 7, w2: 7, w3: 7)
        tree.update([(key: key, valueHash: value)])
        XCTAssertEqual(tree.root, leafTag.hash(key, value))
        XCTAssertEqual(SparseMerkle.leafHash(key: key, valueHash: value), leafTag.hash(key, value))
        let p = tree.proof(for: key)
        XCTAssertEqual(p.depth, 0)
        XCTAssertTrue(p.verify(root: tree.root, key: key, valueHash: value))
    }

    func testRandomOperationsMatchReference() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        let keys = keyPool(&rng, random: 300)
        let tree = StateTree()
        var model: [Bytes32: Bytes32] = [:]
        for step in 0..<3000 {
            var batch: [(key: Bytes32, valueHash: Bytes32?)] = []
            for _ in 0..<(1 + rng.below(4)) {
                let key = keys[rng.below(keys.count)]
                // Delete a third of the time, so the tree grows and shrinks.
                let value: Bytes32? = rng.below(3) == 0 ? nil : rng.bytes32()
                batch.append((key: key, valueHash: value))
                model[key] = value
            }
            tree.update(batch)
            XCTAssertEqual(tree.count, model.count)
            if step % 25 == 0 || step > 2950 {
                XCTAssertEqual(tree.root, referenceRoot(model), "step \(step)")
            }
        }
        for (key, value) in model { XCTAssertEqual(tree.valueHash(for: key), value) }
    }

    func testOrderIndependence() {
        var rng = SplitMix64(seed: 0x5EED_0002)
        let keys = keyPool(&rng, random: 500)
        let pairs = keys.map { (key: $0, valueHash: Optional(rng.bytes32())) }

        let a = StateTree()
        a.update(pairs)
        let expected = referenceRoot(Dictionary(uniqueKeysWithValues: pairs.map { ($0.key, $0.valueHash!) }))
        XCTAssertEqual(a.root, expected)

        for round in 0..<5 {
            var shuffled = pairs
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.below(i + 1)) }
            let b = StateTree()
            // Different batching each round, hashing in between on some rounds, and detours: write junk values
            // then overwrite them, insert junk keys and delete them later.
            var junk: [Bytes32] = []
            var i = 0
            while i < shuffled.count {
                let n = 1 + rng.below(50)
                let chunk = Array(shuffled[i..<min(i + n, shuffled.count)])
                b.update(chunk.map { (key: $0.key, valueHash: Optional(rng.bytes32())) })
                let extra = rng.bytes32()
                junk.append(extra)
                b.update([(key: extra, valueHash: rng.bytes32())])
                if round % 2 == 0 { _ = b.root }
                b.update(chunk)
                i += n
            }
            XCTAssertEqual(b.count, keys.count + junk.count)
            _ = b.root
            b.update(junk.map { (key: $0, valueHash: nil) })
            XCTAssertEqual(b.count, keys.count)
            XCTAssertEqual(b.root, expected, "round \(round)")
        }
    }

    func testInsertThenDeleteAllReturnsToZero() {
        var rng = SplitMix64(seed: 0x5EED_0003)
        let keys = keyPool(&rng, random: 1000)
        let tree = StateTree()
        tree.update(keys.map { (key: $0, valueHash: Optional(rng.bytes32())) })
        XCTAssertNotEqual(tree.root, .zero)
        XCTAssertEqual(tree.count, keys.count)
        var order = keys
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
        // Delete half, check the shape is canonical, then the rest.
        let half = order.count / 2
        tree.update(order[..<half].map { (key: $0, valueHash: nil) })
        let fresh = StateTree()
        var model: [Bytes32: Bytes32] = [:]
        for key in order[half...] { model[key] = tree.valueHash(for: key) }
        fresh.update(model.map { (key: $0.key, valueHash: Optional($0.value)) })
        XCTAssertEqual(tree.root, fresh.root)
        XCTAssertEqual(tree.root, referenceRoot(model))
        tree.update(order[half...].map { (key: $0, valueHash: nil) })
        XCTAssertEqual(tree.count, 0)
        XCTAssertEqual(tree.root, .zero)
    }

    func testProofs() throws {
        var rng = SplitMix64(seed: 0x5EED_0004)
        let keys = keyPool(&rng, random: 400)
        let tree = StateTree()
        var model: [Bytes32: Bytes32] = [:]
        for key in keys { model[key] = rng.bytes32() }
        tree.update(model.map { (key: $0.key, valueHash: Optional($0.value)) })
        let root = tree.root
        let otherRoot = flip(root)
        var maxDepth = 0

        // Sorted, so that the run does not depend on the dictionary's per-process order.
        let members = model.sorted { $0.key < $1.key }
        for (key, value) in members {
            let p = tree.proof(for: key)
            XCTAssertEqual(p.terminal, .member)
            maxDepth = max(maxDepth, p.depth)
            XCTAssertTrue(p.verify(root: root, key: key, valueHash: value))
            XCTAssertFalse(p.verify(root: otherRoot, key: key, valueHash: value))
            XCTAssertFalse(p.verify(root: root, key: key, valueHash: flip(value)))
            XCTAssertFalse(p.verify(root: root, key: key, valueHash: nil))
            XCTAssertFalse(p.verify(root: root, key: flip(key), valueHash: value))
            XCTAssertFalse(p.verify(root: root, key: flip(key, bit: 0), valueHash: value))
            XCTAssertEqual(try SparseMerkleProof(decoding: p.encoded), p)
        }
        // The cluster includes keys that differ only in bit 255: their leaves sit at depth 256.
        XCTAssertEqual(maxDepth, 256)

        var sawEmpty = 0
        var sawOther = 0
        var absent = (0..<2000).map { _ in rng.bytes32() }
        // Near misses of present keys end at the other key's leaf or in an empty slot deep down.
        for key in keys.prefix(40) { absent.append(flip(key, bit: 255)) }
        for key in keys.prefix(40) { absent.append(flip(key, bit: 20)) }
        for key in absent where model[key] == nil {
            let p = tree.proof(for: key)
            switch p.terminal {
            case .member:
                XCTFail("member proof for an absent key")
                continue
            case .emptySlot:
                sawEmpty += 1
            case .otherLeaf(let otherKey, let otherValue):
                sawOther += 1
                XCTAssertEqual(model[otherKey], otherValue)
                // The same proof does not show the other key absent, nor this key present.
                XCTAssertFalse(p.verify(root: root, key: otherKey, valueHash: nil))
                XCTAssertFalse(p.verify(root: root, key: key, valueHash: otherValue))
                // A different leaf that does not share the prefix is refused.
                if p.depth > 0 {
                    var q = p
                    q.terminal = .otherLeaf(key: flip(otherKey, bit: p.depth - 1), valueHash: otherValue)
                    XCTAssertFalse(q.verify(root: root, key: key, valueHash: nil))
                }
            }
            XCTAssertTrue(p.verify(root: root, key: key, valueHash: nil))
            XCTAssertFalse(p.verify(root: otherRoot, key: key, valueHash: nil))
            XCTAssertFalse(p.verify(root: root, key: key, valueHash: rng.bytes32()))
            if let present = keys.first(where: { $0 != key }) {
                XCTAssertFalse(p.verify(root: root, key: present, valueHash: nil) && model[present] != nil)
            }
            XCTAssertEqual(try SparseMerkleProof(decoding: p.encoded), p)
        }
        XCTAssertGreaterThan(sawEmpty, 0)
        XCTAssertGreaterThan(sawOther, 0)

        // Absence proofs of present keys do not verify; nor does swapping the terminal kind.
        for (key, value) in members.prefix(50) {
            let p = tree.proof(for: key)
            var q = p
            q.terminal = .emptySlot
            XCTAssertFalse(q.verify(root: root, key: key, valueHash: nil))
            q.terminal = .otherLeaf(key: key, valueHash: value)
            XCTAssertFalse(q.verify(root: root, key: key, valueHash: nil))
            // Tampering with any sibling breaks it.
            let all = p.siblings
            XCTAssertEqual(SparseMerkleProof(siblings: all, terminal: .member), p)
            for i in 0..<p.depth where all[i] != .zero {
                var t = p
                t.siblings[i] = flip(all[i])
                XCTAssertFalse(t.verify(root: root, key: key, valueHash: value))
            }
        }

        // After an update the old proof no longer verifies against the new root.
        let (key, value) = members[0]
        let before = tree.proof(for: key)
        tree.update([(key: key, valueHash: flip(value))])
        XCTAssertFalse(before.verify(root: tree.root, key: key, valueHash: value))
        XCTAssertTrue(tree.proof(for: key).verify(root: tree.root, key: key, valueHash: flip(value)))
        tree.update([(key: key, valueHash: nil)])
        let gone = tree.proof(for: key)
        XCTAssertTrue(gone.verify(root: tree.root, key: key, valueHash: nil))
        XCTAssertFalse(before.verify(root: tree.root, key: key, valueHash: value))
    }

    func testOtherLeafMustShareThePathPrefix() {
        // Hand-built roots whose hash chain is valid, so only the prefix and key checks can refuse them.
        let key = Bytes32(w0: 0, w1: 0, w2: 0, w3: 5)
        let sibling = Bytes32(w0: 3, w1: 3, w2: 3, w3: 3)
        let value = Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)
        let sharing = Bytes32(w0: 1 << 62, w1: 0, w2: 0, w3: 0)  // bit 0 clear like `key`, differs at bit 1
        let notSharing = Bytes32(w0: 1 << 63, w1: 0, w2: 0, w3: 0)  // bit 0 set
        for (other, accepted) in [(sharing, true), (notSharing, false), (key, false)] {
            let root = nodeTag.hash(leafTag.hash(other, value), sibling)
            let p = SparseMerkleProof(siblings: [sibling], terminal: .otherLeaf(key: other, valueHash: value))
            XCTAssertEqual(p.verify(root: root, key: key, valueHash: nil), accepted)
        }
        // Prefix checks across word boundaries.
        var a = Bytes32(w0: 7, w1: 8, w2: 9, w3: 10)
        XCTAssertTrue(SparseMerkle.sharePrefix(a, a, bits: 256))
        a.w2 ^= 1  // bit 191
        XCTAssertTrue(SparseMerkle.sharePrefix(a, Bytes32(w0: 7, w1: 8, w2: 9, w3: 10), bits: 191))
        XCTAssertFalse(SparseMerkle.sharePrefix(a, Bytes32(w0: 7, w1: 8, w2: 9, w3: 10), bits: 192))
        XCTAssertTrue(SparseMerkle.sharePrefix(a, .zero, bits: 0))
    }

    func testProofEncoding() throws {
        let a = Bytes32(w0: 1, w1: 0, w2: 0, w3: 0)
        let b = Bytes32(w0: 2, w1: 0, w2: 0, w3: 0)
        // depth 3: siblings zero, a, b (the last must be non-zero).
        let p = SparseMerkleProof(siblings: [.zero, a, b], terminal: .member)
        XCTAssertEqual(p.encoded, [3, 0b0110_0000] + a.bytes + b.bytes + [0])
        XCTAssertEqual(try SparseMerkleProof(decoding: p.encoded), p)
        let o = SparseMerkleProof(siblings: [a], terminal: .otherLeaf(key: b, valueHash: a))
        XCTAssertEqual(o.encoded, [1, 0x80] + a.bytes + [2] + b.bytes + a.bytes)
        XCTAssertEqual(try SparseMerkleProof(decoding: o.encoded), o)
        let e = SparseMerkleProof(siblings: [], terminal: .emptySlot)
        XCTAssertEqual(e.encoded, [0, 1])
        XCTAssertEqual(try SparseMerkleProof(decoding: e.encoded), e)
        let deep = SparseMerkleProof(siblings: Array(repeating: .zero, count: 255) + [a], terminal: .member)
        XCTAssertEqual(deep.encoded.count, 2 + 32 + 32 + 1)
        XCTAssertEqual(try SparseMerkleProof(decoding: deep.encoded), deep)

        // The compact form in memory: only non-zero siblings, placed by the bitmap.
        XCTAssertEqual(p.depth, 3)
        XCTAssertEqual(p.nonZeroSiblings, [a, b])
        XCTAssertEqual(p.bitmap, Bytes32(w0: 0b011 << 61, w1: 0, w2: 0, w3: 0))
        XCTAssertEqual(p.siblings, [.zero, a, b])
        XCTAssertTrue(p.isWellFormed)
        // Incoherent compact forms are refused by verify as well as by the decoder.
        let leaf = SparseMerkle.leafHash(key: b, valueHash: a)
        let good = SparseMerkleProof(siblings: [a], terminal: .member)
        let root = SparseMerkle.nodeHash(leaf, a)  // key b's bit 0 is 0
        XCTAssertTrue(good.verify(root: root, key: b, valueHash: a))
        for bad in [
            SparseMerkleProof(depth: 1, bitmap: good.bitmap, nonZeroSiblings: [a, a], terminal: .member),
            SparseMerkleProof(depth: 1, bitmap: good.bitmap, nonZeroSiblings: [], terminal: .member),
            SparseMerkleProof(depth: 1, bitmap: good.bitmap, nonZeroSiblings: [.zero], terminal: .member),
            SparseMerkleProof(depth: 1, bitmap: .zero, nonZeroSiblings: [], terminal: .member),
            SparseMerkleProof(
                depth: 1, bitmap: Bytes32(w0: 0b11 << 62, w1: 0, w2: 0, w3: 0), nonZeroSiblings: [a, a],
                terminal: .member),
            SparseMerkleProof(depth: 257, bitmap: good.bitmap, nonZeroSiblings: [a], terminal: .member),
            SparseMerkleProof(depth: -1, bitmap: .zero, nonZeroSiblings: [], terminal: .member),
        ] {
            XCTAssertFalse(bad.isWellFormed)
            XCTAssertFalse(bad.verify(root: root, key: b, valueHash: a))
        }

        func rejects(_ bytes: [UInt8], _ expected: CodecError, line: UInt = #line) {
            XCTAssertThrowsError(try SparseMerkleProof(decoding: bytes), line: line) { error in
                XCTAssertEqual(error as? CodecError, expected, line: line)
            }
        }
        rejects(p.encoded + [0], .trailingBytes(count: 1))
        rejects(Array(p.encoded.dropLast()), .truncated)
        // Depth over 256.
        rejects([0x81, 0x02], .lengthOverCap(length: 257, cap: 256))
        // Bitmap bit past the depth.
        rejects([3, 0b0111_0000] + a.bytes + b.bytes + a.bytes + [0], .invalidValue(.range))
        // A zero sibling written out instead of a clear bitmap bit.
        rejects([3, 0b1110_0000] + Bytes32.zero.bytes + a.bytes + b.bytes + [0], .invalidValue(.range))
        // Last sibling zero: no compact tree has it.
        rejects([2, 0b1000_0000] + a.bytes + [0], .invalidValue(.range))
        // Unknown terminal.
        rejects([0, 3], .unknownTag(3))
        // Empty slot or other leaf at depth 256.
        let full = Array(repeating: UInt8(0xFF), count: 32)
        var at256: [UInt8] = [0x80, 0x02] + full
        for _ in 0..<256 { at256 += a.bytes }
        XCTAssertNoThrow(try SparseMerkleProof(decoding: at256 + [0]))
        rejects(at256 + [1], .invalidValue(.range))
        // Many set bitmap bits with little data: refused as truncated before reading siblings.
        rejects([0x80, 0x02] + full + [0], .truncated)
    }

    func testTimingOf100kUpdates() {
        var rng = SplitMix64(seed: 0x5EED_0005)
        let tree = StateTree()
        let n = 100_000
        let keys = (0..<n).map { _ in rng.bytes32() }
        let clock = ContinuousClock()
        // One batch: every node of the final tree is hashed once.
        let insert = clock.measure {
            tree.update(keys.map { (key: $0, valueHash: Optional(rng.bytes32())) })
            _ = tree.root
        }
        // Steady state: 50k transactions of 2 keys each, root once per 1000 updates (a block).
        let updates = (0..<n).map { _ in (key: keys[rng.below(n)], valueHash: Optional(rng.bytes32())) }
        let update = clock.measure {
            var i = 0
            while i < n {
                tree.update(Array(updates[i..<i + 1000]))
                _ = tree.root
                i += 1000
            }
        }
        let proofs = clock.measure {
            for i in 0..<10_000 { _ = tree.proof(for: keys[i]) }
        }
        #if DEBUG
            let build = "debug build"
        #else
            let build = "optimized build"
        #endif
        print(
            "StateTree (\(build)): 100k inserts in one batch \(insert); 100k updates of 100k keys, root every 1000: \(update); 10k proofs \(proofs)"
        )
        XCTAssertEqual(tree.count, n)
    }
}
