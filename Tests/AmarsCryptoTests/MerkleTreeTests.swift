import AmarsCodec
import XCTest

@testable import AmarsCrypto

final class MerkleTreeTests: XCTestCase {
    private let leafTag = TaggedHash(tag: "AmarsMerkleLeaf")
    private let nodeTag = TaggedHash(tag: "AmarsMerkleNode")

    private func leaves(_ n: Int) -> [Bytes32] {
        (0..<n).map { i in leafTag.hash([UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i >> 8), 0xA5]) }
    }

    /// RFC 6962 definition, written out directly: split at the largest power of two below n.
    private func referenceRoot(_ l: ArraySlice<Bytes32>) -> Bytes32 {
        if l.isEmpty { return .zero }
        if l.count == 1 { return l[l.startIndex] }
        var k = 1
        while k * 2 < l.count { k *= 2 }
        let mid = l.startIndex + k
        return nodeTag.hash(referenceRoot(l[l.startIndex..<mid]), referenceRoot(l[mid...]))
    }

    private func flip(_ b: Bytes32) -> Bytes32 {
        var c = b
        c.w3 ^= 1
        return c
    }

    func testLeafAndNodeHashesUseTheirTags() {
        let data: [UInt8] = [1, 2, 3]
        XCTAssertEqual(MerkleTree.leafHash(data), leafTag.hash(data))
        let a = leafTag.hash([1])
        let b = leafTag.hash([2])
        XCTAssertEqual(MerkleTree.nodeHash(a, b), nodeTag.hash(a, b))
        XCTAssertNotEqual(MerkleTree.nodeHash(a, b), MerkleTree.nodeHash(b, a))
    }

    func testRootsMatchReference() {
        XCTAssertEqual(MerkleTree.root(leaves: []), .zero)
        for n in 0...33 {
            let l = leaves(n)
            XCTAssertEqual(MerkleTree.root(leaves: l), referenceRoot(l[...]), "n = \(n)")
        }
        let big = leaves(1000)
        XCTAssertEqual(MerkleTree.root(leaves: big), referenceRoot(big[...]))
    }

    func testNoLastLeafDuplicationAmbiguity() {
        // Bitcoin's tree gives [a, b, c] and [a, b, c, c] the same root; this one must not.
        let l = leaves(3)
        XCTAssertNotEqual(MerkleTree.root(leaves: l), MerkleTree.root(leaves: l + [l[2]]))
        XCTAssertNotEqual(MerkleTree.root(leaves: Array(l[0..<1])), MerkleTree.root(leaves: l[0..<1] + [l[0]]))
    }

    func testEveryProofVerifies() {
        for n in 1...33 {
            let l = leaves(n)
            let root = MerkleTree.root(leaves: l)
            for i in 0..<n {
                let p = MerkleTree.proof(leaves: l, index: i)
                XCTAssertEqual(p.index, UInt64(i))
                XCTAssertEqual(p.count, UInt64(n))
                XCTAssertEqual(p.siblings.count, MerkleTree.proofLength(index: p.index, count: p.count))
                XCTAssertTrue(p.verify(leafHash: l[i], root: root), "n = \(n), i = \(i)")
            }
        }
    }

    func testTamperedProofsFail() {
        for n in 1...33 {
            let l = leaves(n)
            let root = MerkleTree.root(leaves: l)
            for i in 0..<n {
                let p = MerkleTree.proof(leaves: l, index: i)
                // Leaf, root.
                XCTAssertFalse(p.verify(leafHash: flip(l[i]), root: root))
                XCTAssertFalse(p.verify(leafHash: l[i], root: flip(root)))
                if n > 1 { XCTAssertFalse(p.verify(leafHash: l[(i + 1) % n], root: root)) }
                // Each sibling.
                for s in 0..<p.siblings.count {
                    var q = p
                    q.siblings[s] = flip(q.siblings[s])
                    XCTAssertFalse(q.verify(leafHash: l[i], root: root), "n \(n) i \(i) sibling \(s)")
                }
                // Sibling list length.
                var longer = p
                longer.siblings.append(l[0])
                XCTAssertFalse(longer.verify(leafHash: l[i], root: root))
                if !p.siblings.isEmpty {
                    var shorter = p
                    shorter.siblings.removeLast()
                    XCTAssertFalse(shorter.verify(leafHash: l[i], root: root))
                    shorter = p
                    shorter.siblings.removeFirst()
                    XCTAssertFalse(shorter.verify(leafHash: l[i], root: root))
                }
                // Index: any other position of the same tree.
                for j in 0..<n where j != i {
                    var q = p
                    q.index = UInt64(j)
                    XCTAssertFalse(q.verify(leafHash: l[i], root: root), "n \(n) i \(i) as index \(j)")
                }
                var q = p
                q.index = UInt64(n)
                XCTAssertFalse(q.verify(leafHash: l[i], root: root))
                // Count: out of range, or implying another number of siblings.
                q = p
                q.count = UInt64(i)
                XCTAssertFalse(q.verify(leafHash: l[i], root: root))
                q.count = 0
                XCTAssertFalse(q.verify(leafHash: l[i], root: root))
                for c in 1...40 where MerkleTree.proofLength(index: UInt64(i), count: UInt64(c)) != p.siblings.count {
                    q.count = UInt64(c)
                    XCTAssertFalse(q.verify(leafHash: l[i], root: root), "n \(n) i \(i) as count \(c)")
                }
            }
        }
    }

    func testHugeCountsAreBounded() {
        XCTAssertEqual(MerkleTree.proofLength(index: 0, count: UInt64.max), 64)
        XCTAssertEqual(MerkleTree.proofLength(index: UInt64.max - 1, count: UInt64.max), 63)
        XCTAssertNil(MerkleTree.proofLength(index: 5, count: 5))
        let p = MerkleProof(index: 0, count: UInt64.max, siblings: Array(repeating: .zero, count: 64))
        XCTAssertFalse(p.verify(leafHash: .zero, root: .zero))
        let q = MerkleProof(index: 0, count: 2, siblings: Array(repeating: .zero, count: 65))
        XCTAssertFalse(q.verify(leafHash: .zero, root: .zero))
    }

    func testEncodingRoundTrip() throws {
        for n in [1, 2, 3, 7, 16, 33] {
            let l = leaves(n)
            for i in 0..<n {
                let p = MerkleTree.proof(leaves: l, index: i)
                let bytes = p.encoded
                XCTAssertEqual(bytes.count, 3 + 32 * p.siblings.count)
                XCTAssertEqual(try MerkleProof(decoding: bytes), p)
            }
        }
        let big = MerkleProof(index: UInt64.max - 1, count: UInt64.max, siblings: leaves(63))
        XCTAssertEqual(try MerkleProof(decoding: big.encoded), big)
    }

    func testDecodingRejectsMalformed() {
        let l = leaves(5)
        let p = MerkleTree.proof(leaves: l, index: 2)
        let bytes = p.encoded

        XCTAssertThrowsError(try MerkleProof(decoding: bytes + [0])) { error in
            XCTAssertEqual(error as? CodecError, .trailingBytes(count: 1))
        }
        XCTAssertThrowsError(try MerkleProof(decoding: Array(bytes.dropLast()))) { error in
            XCTAssertEqual(error as? CodecError, .truncated)
        }
        // Sibling count over the cap of 64: refused before anything is read or allocated.
        var w = ByteWriter()
        w.writeVarint(0)
        w.writeVarint(UInt64.max)
        w.writeVarint(65)
        XCTAssertThrowsError(try MerkleProof(decoding: w.bytes)) { error in
            XCTAssertEqual(error as? CodecError, .lengthOverCap(length: 65, cap: 64))
        }
        w = ByteWriter()
        w.writeVarint(0)
        w.writeVarint(1)
        w.writeVarint(UInt64(1) << 40)
        XCTAssertThrowsError(try MerkleProof(decoding: w.bytes)) { error in
            XCTAssertEqual(error as? CodecError, .lengthOverCap(length: UInt64(1) << 40, cap: 64))
        }
        // Incoherent: sibling count other than (index, count) imply, index out of range, empty tree.
        for (index, count, n): (UInt64, UInt64, Int) in [(2, 5, 2), (2, 5, 4), (5, 5, 0), (0, 0, 0), (0, 1, 1)] {
            let bad = MerkleProof(index: index, count: count, siblings: Array(l.prefix(n)))
            XCTAssertThrowsError(try MerkleProof(decoding: bad.encoded)) { error in
                XCTAssertEqual(error as? CodecError, .invalidValue(.range))
            }
        }
        // Non-minimal varint.
        XCTAssertThrowsError(try MerkleProof(decoding: [0x80, 0x00, 0x01, 0x00]))
    }
}
