import AmarsCodec
import CSecp256k1

/// The one libsecp256k1 context of the process.
///
/// Creating a context costs a heap allocation and precomputation, so it is made once, lazily, and shared by every
/// key. libsecp256k1 documents all operations that take a `const` context as safe to run concurrently, which is
/// every call this module makes except `randomize(seed:)`; that is why the shared pointer may be read from any
/// thread and is marked `nonisolated(unsafe)` (Swift 6 mode cannot see that guarantee).
public enum Secp256k1Context {
    /// Never nil: a failed allocation of a few hundred bytes at start-up leaves nothing sensible to do but stop.
    nonisolated(unsafe) static let shared: OpaquePointer = {
        #if hasFeature(Embedded)
            // A board links no generator table (see TablelessSchnorr): the static context verifies, derives and
            // signs through the tableless path; the self-test is what libsecp256k1 asks of its users.
            secp256k1_selftest()
            return amars_secp256k1_static_context()
        #else
            guard let context = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
                fatalError("secp256k1_context_create failed")
            }
            return context
        #endif
    }()

    /// Blinds the context's signing and key-generation tables against side channels with 32 bytes the caller
    /// draws from a real RNG (portable code has none of its own).
    ///
    /// Contract: call it once at start-up, before any thread signs or derives keys, because it mutates the shared
    /// context. Returns false only if libsecp256k1 refuses the seed, in which case the context keeps its previous
    /// (still correct, merely unblinded) state.
    @discardableResult
    public static func randomize(seed: Bytes32) -> Bool {
        #if hasFeature(Embedded)
            return false  // the static context has no table to blind
        #else
            return withBigEndianBytes(seed) { secp256k1_context_randomize(shared, $0) == 1 }
        #endif
    }
}

/// Hands `value` to C as 32 big-endian bytes without a heap allocation, then overwrites the temporary copy.
///
/// The wipe is best effort: Swift offers no volatile store, so it protects against casual reuse of the stack
/// slot, not against an adversary who can read memory while the call is running.
@inline(__always)
func withBigEndianBytes<R>(_ value: Bytes32, _ body: (UnsafePointer<UInt8>) -> R) -> R {
    var words = (value.w0.bigEndian, value.w1.bigEndian, value.w2.bigEndian, value.w3.bigEndian)
    return withUnsafeMutableBytes(of: &words) { raw in
        let result = body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        return result
    }
}

/// Gives C a 64-byte output buffer on the stack and reads it back as a `Bytes64`.
@inline(__always)
func withOutput64(_ body: (UnsafeMutablePointer<UInt8>) -> Void) -> Bytes64 {
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    return withUnsafeMutableBytes(of: &words) { raw in
        body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        let view = UnsafeRawBufferPointer(raw)
        return Bytes64(first: Bytes32(unchecked: view, offset: 0), second: Bytes32(unchecked: view, offset: 32))
    }
}

/// Gives C a 32-byte output buffer on the stack and reads it back as a `Bytes32`, wiping the buffer afterwards
/// because outputs such as derived secrets and ECDH results are sensitive.
@inline(__always)
func withOutput32(_ body: (UnsafeMutablePointer<UInt8>) -> Bool) -> Bytes32? {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    return withUnsafeMutableBytes(of: &words) { raw in
        let ok = body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        let value = Bytes32(unchecked: UnsafeRawBufferPointer(raw), offset: 0)
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        return ok ? value : nil
    }
}
