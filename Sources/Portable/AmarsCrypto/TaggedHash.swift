import AmarsCodec

/// BIP340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || msg). Every signed or committed object of the chain
/// hashes under its own tag, so a byte string valid as one kind can never be replayed as another.
///
/// The 64-byte prefix is exactly one block, so it is compressed once here and every hash starts from a copy of
/// that midstate: a tagged hash costs no more than a plain one.
public struct TaggedHash: Sendable {
    /// Chaining value after the two tag digests.
    internal let midstate: SHA256State

    public init(tag: StaticString) {
        self = tag.withUTF8Buffer { TaggedHash(tag: UnsafeRawBufferPointer($0)) }
    }

    public init(tag: [UInt8]) {
        self = tag.withUnsafeBytes { TaggedHash(tag: $0) }
    }

    public init(tag: UnsafeRawBufferPointer) {
        let tagDigest = SHA256.hash(tag)
        var prefix = SHA256()
        prefix.update(tagDigest)
        prefix.update(tagDigest)
        midstate = prefix.state
    }

    /// A hasher positioned after the prefix, for messages assembled piece by piece.
    public func hasher() -> SHA256 {
        SHA256(state: midstate, length: 64)
    }

    public func hash(_ bytes: [UInt8]) -> Bytes32 {
        var hasher = hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    public func hash(_ bytes: UnsafeRawBufferPointer) -> Bytes32 {
        var hasher = hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// A single 32-byte message (a key, a leaf value) fits with its padding in one block: one compression.
    public func hash(_ value: Bytes32) -> Bytes32 {
        var state = midstate
        // value || 0x80 || zeros || bit length of prefix and value (96 bytes).
        var block = (
            value.w0.bigEndian, value.w1.bigEndian, value.w2.bigEndian, value.w3.bigEndian,
            UInt64(0x8000_0000_0000_0000).bigEndian, UInt64(0), UInt64(0), UInt64(96 * 8).bigEndian
        )
        withUnsafeBytes(of: &block) { state.compress($0.baseAddress!) }
        return state.digest
    }

    /// The 64-byte message a||b, for Merkle and state-tree inner nodes: one compression of the data, read from
    /// an inline block, and one of a padding block whose schedule is fixed at compile time.
    public func hash(_ a: Bytes32, _ b: Bytes32) -> Bytes32 {
        var state = midstate
        var block = (
            a.w0.bigEndian, a.w1.bigEndian, a.w2.bigEndian, a.w3.bigEndian,
            b.w0.bigEndian, b.w1.bigEndian, b.w2.bigEndian, b.w3.bigEndian
        )
        withUnsafeBytes(of: &block) { state.compress($0.baseAddress!) }
        state.compressFinalPaddingAfter128()
        return state.digest
    }
}
