import AmarsCodec

#if canImport(CSHA256Accel)
    import CSHA256Accel
#endif

/// SHA-256 as specified in FIPS 180-4, written in portable Swift so that gateways and microcontrollers compute
/// byte-identical transaction ids and tree nodes without a C dependency.
///
/// A value type with the partial block held inline: copying a hasher is how a common prefix is hashed once and
/// reused (see `TaggedHash`), and no update or compression ever allocates.
public struct SHA256: Sendable {
    /// Chaining value, kept apart from the buffer so a midstate can be saved and restarted.
    internal var state: SHA256State
    /// The partial block as eight words, so the buffer lives inside the struct instead of on the heap.
    internal var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
    /// Bytes of `block` in use, always below 64 between calls.
    internal var buffered: Int
    /// Total bytes fed, which the padding encodes; a message of 2^61 bytes or more is out of scope.
    internal var length: UInt64

    public init() {
        self.init(state: .initial, length: 0)
    }

    /// Resumes from a chaining value taken at a block boundary; `length` counts the bytes already absorbed.
    internal init(state: SHA256State, length: UInt64) {
        self.state = state
        self.block = (0, 0, 0, 0, 0, 0, 0, 0)
        self.buffered = 0
        self.length = length
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var source = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        length &+= UInt64(remaining)
        if buffered > 0 {
            let take = min(64 - buffered, remaining)
            let offset = buffered
            withUnsafeMutableBytes(of: &block) { buffer in
                (buffer.baseAddress! + offset).copyMemory(from: source, byteCount: take)
            }
            buffered += take
            source += take
            remaining -= take
            if buffered < 64 { return }
            compressBuffer()
            buffered = 0
        }
        // Whole blocks are compressed straight from the caller's memory: no copy on the bulk path.
        while remaining >= 64 {
            state.compress(source)
            source += 64
            remaining -= 64
        }
        if remaining > 0 {
            let tail = remaining
            withUnsafeMutableBytes(of: &block) { buffer in
                buffer.baseAddress!.copyMemory(from: source, byteCount: tail)
            }
            buffered = tail
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Feeds the 32 bytes in their big-endian (display) order, the same bytes `Bytes32.bytes` returns.
    public mutating func update(_ value: Bytes32) {
        var words = (value.w0.bigEndian, value.w1.bigEndian, value.w2.bigEndian, value.w3.bigEndian)
        withUnsafeBytes(of: &words) { update($0) }
    }

    public mutating func update(_ byte: UInt8) {
        let offset = buffered
        withUnsafeMutableBytes(of: &block) { $0[offset] = byte }
        buffered += 1
        length &+= 1
        if buffered == 64 {
            compressBuffer()
            buffered = 0
        }
    }

    /// Pads a copy, so the receiver stays usable: a prefix state can be finalized and then extended again.
    public func finalize() -> Bytes32 {
        var copy = self
        return copy.finish()
    }

    public static func hash(_ bytes: [UInt8]) -> Bytes32 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Bytes32 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    private mutating func compressBuffer() {
        var chaining = state
        withUnsafeBytes(of: &block) { chaining.compress($0.baseAddress!) }
        state = chaining
    }

    private mutating func finish() -> Bytes32 {
        let bitLength = length &<< 3
        let used = buffered
        withUnsafeMutableBytes(of: &block) { buffer in
            buffer[used] = 0x80
            let base = buffer.baseAddress!
            (base + used + 1).initializeMemory(as: UInt8.self, repeating: 0, count: 63 - used)
        }
        // No room for the 8-byte length after the 0x80 marker: it goes in one more block of zeros.
        if used >= 56 {
            compressBuffer()
            block = (0, 0, 0, 0, 0, 0, 0, 0)
        }
        block.7 = bitLength.bigEndian
        compressBuffer()
        return state.digest
    }
}

#if hasFeature(Embedded)
    /// libsecp256k1's SHA-256 on a board compresses blocks here (Boards/common/secp256k1-hash.h): the image holds
    /// one SHA-256, where the library's own, with its rounds written out, would add 7 KiB of flash.
    @_cdecl("amars_swift_sha256_compress")
    public func amarsSwiftSHA256Compress(_ state: UnsafeMutablePointer<UInt32>, _ block: UnsafeRawPointer) {
        var chaining = SHA256State(
            h0: state[0], h1: state[1], h2: state[2], h3: state[3], h4: state[4], h5: state[5], h6: state[6],
            h7: state[7])
        chaining.compress(block)
        state[0] = chaining.h0
        state[1] = chaining.h1
        state[2] = chaining.h2
        state[3] = chaining.h3
        state[4] = chaining.h4
        state[5] = chaining.h5
        state[6] = chaining.h6
        state[7] = chaining.h7
    }
#endif

/// The eight-word chaining value and the compression function.
internal struct SHA256State: Sendable {
    var h0: UInt32
    var h1: UInt32
    var h2: UInt32
    var h3: UInt32
    var h4: UInt32
    var h5: UInt32
    var h6: UInt32
    var h7: UInt32

    /// Computed rather than stored: a global would need lazy initialization, which Embedded builds avoid.
    static var initial: SHA256State {
        SHA256State(
            h0: 0x6a09_e667, h1: 0xbb67_ae85, h2: 0x3c6e_f372, h3: 0xa54f_f53a,
            h4: 0x510e_527f, h5: 0x9b05_688c, h6: 0x1f83_d9ab, h7: 0x5be0_cd19)
    }

    var digest: Bytes32 {
        Bytes32(
            w0: UInt64(h0) << 32 | UInt64(h1), w1: UInt64(h2) << 32 | UInt64(h3),
            w2: UInt64(h4) << 32 | UInt64(h5), w3: UInt64(h6) << 32 | UInt64(h7))
    }

    /// Compresses the 64 bytes at `block`; any alignment is fine. Never inlined: one copy of the unrolled rounds
    /// serves every caller, which matters for microcontroller flash.
    @inline(never)
    mutating func compress(_ block: UnsafeRawPointer) {
        #if hasFeature(Embedded)
            compressCompact(block)
        #elseif canImport(CSHA256Accel)
            compressAccelerated(block)
        #else
            compressUnrolled(block)
        #endif
    }

    #if canImport(CSHA256Accel)
        /// OpenSSL's compression (SHA-NI on this kind of host: hashing was a tenth of a gateway's CPU under load
        /// with the Swift rounds). Host tests check it against ``compressUnrolled(_:)`` on random blocks and run
        /// the NIST vectors through it.
        mutating func compressAccelerated(_ block: UnsafeRawPointer) {
            // A homogeneous tuple is laid out contiguously, so it passes as `uint32_t[8]`.
            var words = (h0, h1, h2, h3, h4, h5, h6, h7)
            withUnsafeMutableBytes(of: &words) {
                amars_sha256_compress($0.baseAddress!.assumingMemoryBound(to: UInt32.self), block)
            }
            (h0, h1, h2, h3, h4, h5, h6, h7) = words
        }
    #endif

    /// FIPS 180-4's round constants, for the looped rounds (the unrolled ones carry them inline).
    static let roundConstants:
        (
            UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
            UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
            UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
            UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
            UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32
        ) = (
            0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5,
            0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
            0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3,
            0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
            0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc,
            0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
            0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
            0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
            0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13,
            0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
            0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3,
            0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
            0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5,
            0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
            0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208,
            0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2
        )

    /// The same compression with the 64 rounds in a loop over a 16-word schedule window: a tenth of the code of
    /// the unrolled form, which is what a device's flash wants (its time goes to signatures, not hashing). Host
    /// tests check it against ``compressUnrolled(_:)`` on random blocks.
    @inline(never)
    mutating func compressCompact(_ block: UnsafeRawPointer) {
        var window: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
        withUnsafeMutableBytes(of: &window) { w in
            withUnsafeBytes(of: SHA256State.roundConstants) { k in
                for t in 0..<64 {
                    let slot = (t & 15) &* 4
                    var word: UInt32
                    if t < 16 {
                        word = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t &* 4, as: UInt32.self))
                    } else {
                        word = w.load(fromByteOffset: slot, as: UInt32.self)
                        expand256(
                            &word, w.load(fromByteOffset: ((t &- 2) & 15) &* 4, as: UInt32.self),
                            w.load(fromByteOffset: ((t &- 7) & 15) &* 4, as: UInt32.self),
                            w.load(fromByteOffset: ((t &- 15) & 15) &* 4, as: UInt32.self))
                    }
                    w.storeBytes(of: word, toByteOffset: slot, as: UInt32.self)
                    round256(a, b, c, &d, e, f, g, &h, k.load(fromByteOffset: t &* 4, as: UInt32.self), word)
                    (a, b, c, d, e, f, g, h) = (h, a, b, c, d, e, f, g)
                }
            }
        }
        feedForward(a, b, c, d, e, f, g, h)
    }

    /// Adds the working variables after the last round into the chaining value.
    @inline(__always)
    mutating func feedForward(
        _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: UInt32
    ) {
        h0 &+= a
        h1 &+= b
        h2 &+= c
        h3 &+= d
        h4 &+= e
        h5 &+= f
        h6 &+= g
        h7 &+= h
    }

    /// The 64 rounds unrolled (the host's form: everything stays in registers).
    @inline(never)
    mutating func compressUnrolled(_ block: UnsafeRawPointer) {
        @inline(__always) func word(_ index: Int) -> UInt32 {
            UInt32(bigEndian: block.loadUnaligned(fromByteOffset: index &* 4, as: UInt32.self))
        }
        compress(
            word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7),
            word(8), word(9), word(10), word(11), word(12), word(13), word(14), word(15))
    }

    /// Compresses the padding-only block that ends a 128-byte message (a tagged prefix and two 32-byte values).
    /// On the host every word is a constant, so the whole message schedule is computed at compile time; on a
    /// device that second copy of the rounds would cost 4.5 KiB of flash, so the block goes the general way.
    @inline(never)
    mutating func compressFinalPaddingAfter128() {
        #if hasFeature(Embedded)
            var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &block) { bytes in
                bytes[0] = 0x80
                bytes[62] = UInt8((128 * 8) >> 8)  // the length, 1024 bits, big-endian in the last 8 bytes
            }
            withUnsafeBytes(of: &block) { compress($0.baseAddress!) }
        #else
            compress(0x8000_0000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128 * 8)
        #endif
    }

    /// The 64 rounds, unrolled with the working variables renamed instead of shifted each round; the schedule
    /// is a 16-word window of locals, so everything can stay in registers.
    @inline(__always)
    mutating func compress(
        _ w0: UInt32, _ w1: UInt32, _ w2: UInt32, _ w3: UInt32,
        _ w4: UInt32, _ w5: UInt32, _ w6: UInt32, _ w7: UInt32,
        _ w8: UInt32, _ w9: UInt32, _ w10: UInt32, _ w11: UInt32,
        _ w12: UInt32, _ w13: UInt32, _ w14: UInt32, _ w15: UInt32
    ) {
        var (w0, w1, w2, w3, w4, w5, w6, w7) = (w0, w1, w2, w3, w4, w5, w6, w7)
        var (w8, w9, w10, w11, w12, w13, w14, w15) = (w8, w9, w10, w11, w12, w13, w14, w15)
        var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
        round256(a, b, c, &d, e, f, g, &h, 0x428a_2f98, w0)
        round256(h, a, b, &c, d, e, f, &g, 0x7137_4491, w1)
        round256(g, h, a, &b, c, d, e, &f, 0xb5c0_fbcf, w2)
        round256(f, g, h, &a, b, c, d, &e, 0xe9b5_dba5, w3)
        round256(e, f, g, &h, a, b, c, &d, 0x3956_c25b, w4)
        round256(d, e, f, &g, h, a, b, &c, 0x59f1_11f1, w5)
        round256(c, d, e, &f, g, h, a, &b, 0x923f_82a4, w6)
        round256(b, c, d, &e, f, g, h, &a, 0xab1c_5ed5, w7)
        round256(a, b, c, &d, e, f, g, &h, 0xd807_aa98, w8)
        round256(h, a, b, &c, d, e, f, &g, 0x1283_5b01, w9)
        round256(g, h, a, &b, c, d, e, &f, 0x2431_85be, w10)
        round256(f, g, h, &a, b, c, d, &e, 0x550c_7dc3, w11)
        round256(e, f, g, &h, a, b, c, &d, 0x72be_5d74, w12)
        round256(d, e, f, &g, h, a, b, &c, 0x80de_b1fe, w13)
        round256(c, d, e, &f, g, h, a, &b, 0x9bdc_06a7, w14)
        round256(b, c, d, &e, f, g, h, &a, 0xc19b_f174, w15)
        expand256(&w0, w14, w9, w1)
        round256(a, b, c, &d, e, f, g, &h, 0xe49b_69c1, w0)
        expand256(&w1, w15, w10, w2)
        round256(h, a, b, &c, d, e, f, &g, 0xefbe_4786, w1)
        expand256(&w2, w0, w11, w3)
        round256(g, h, a, &b, c, d, e, &f, 0x0fc1_9dc6, w2)
        expand256(&w3, w1, w12, w4)
        round256(f, g, h, &a, b, c, d, &e, 0x240c_a1cc, w3)
        expand256(&w4, w2, w13, w5)
        round256(e, f, g, &h, a, b, c, &d, 0x2de9_2c6f, w4)
        expand256(&w5, w3, w14, w6)
        round256(d, e, f, &g, h, a, b, &c, 0x4a74_84aa, w5)
        expand256(&w6, w4, w15, w7)
        round256(c, d, e, &f, g, h, a, &b, 0x5cb0_a9dc, w6)
        expand256(&w7, w5, w0, w8)
        round256(b, c, d, &e, f, g, h, &a, 0x76f9_88da, w7)
        expand256(&w8, w6, w1, w9)
        round256(a, b, c, &d, e, f, g, &h, 0x983e_5152, w8)
        expand256(&w9, w7, w2, w10)
        round256(h, a, b, &c, d, e, f, &g, 0xa831_c66d, w9)
        expand256(&w10, w8, w3, w11)
        round256(g, h, a, &b, c, d, e, &f, 0xb003_27c8, w10)
        expand256(&w11, w9, w4, w12)
        round256(f, g, h, &a, b, c, d, &e, 0xbf59_7fc7, w11)
        expand256(&w12, w10, w5, w13)
        round256(e, f, g, &h, a, b, c, &d, 0xc6e0_0bf3, w12)
        expand256(&w13, w11, w6, w14)
        round256(d, e, f, &g, h, a, b, &c, 0xd5a7_9147, w13)
        expand256(&w14, w12, w7, w15)
        round256(c, d, e, &f, g, h, a, &b, 0x06ca_6351, w14)
        expand256(&w15, w13, w8, w0)
        round256(b, c, d, &e, f, g, h, &a, 0x1429_2967, w15)
        expand256(&w0, w14, w9, w1)
        round256(a, b, c, &d, e, f, g, &h, 0x27b7_0a85, w0)
        expand256(&w1, w15, w10, w2)
        round256(h, a, b, &c, d, e, f, &g, 0x2e1b_2138, w1)
        expand256(&w2, w0, w11, w3)
        round256(g, h, a, &b, c, d, e, &f, 0x4d2c_6dfc, w2)
        expand256(&w3, w1, w12, w4)
        round256(f, g, h, &a, b, c, d, &e, 0x5338_0d13, w3)
        expand256(&w4, w2, w13, w5)
        round256(e, f, g, &h, a, b, c, &d, 0x650a_7354, w4)
        expand256(&w5, w3, w14, w6)
        round256(d, e, f, &g, h, a, b, &c, 0x766a_0abb, w5)
        expand256(&w6, w4, w15, w7)
        round256(c, d, e, &f, g, h, a, &b, 0x81c2_c92e, w6)
        expand256(&w7, w5, w0, w8)
        round256(b, c, d, &e, f, g, h, &a, 0x9272_2c85, w7)
        expand256(&w8, w6, w1, w9)
        round256(a, b, c, &d, e, f, g, &h, 0xa2bf_e8a1, w8)
        expand256(&w9, w7, w2, w10)
        round256(h, a, b, &c, d, e, f, &g, 0xa81a_664b, w9)
        expand256(&w10, w8, w3, w11)
        round256(g, h, a, &b, c, d, e, &f, 0xc24b_8b70, w10)
        expand256(&w11, w9, w4, w12)
        round256(f, g, h, &a, b, c, d, &e, 0xc76c_51a3, w11)
        expand256(&w12, w10, w5, w13)
        round256(e, f, g, &h, a, b, c, &d, 0xd192_e819, w12)
        expand256(&w13, w11, w6, w14)
        round256(d, e, f, &g, h, a, b, &c, 0xd699_0624, w13)
        expand256(&w14, w12, w7, w15)
        round256(c, d, e, &f, g, h, a, &b, 0xf40e_3585, w14)
        expand256(&w15, w13, w8, w0)
        round256(b, c, d, &e, f, g, h, &a, 0x106a_a070, w15)
        expand256(&w0, w14, w9, w1)
        round256(a, b, c, &d, e, f, g, &h, 0x19a4_c116, w0)
        expand256(&w1, w15, w10, w2)
        round256(h, a, b, &c, d, e, f, &g, 0x1e37_6c08, w1)
        expand256(&w2, w0, w11, w3)
        round256(g, h, a, &b, c, d, e, &f, 0x2748_774c, w2)
        expand256(&w3, w1, w12, w4)
        round256(f, g, h, &a, b, c, d, &e, 0x34b0_bcb5, w3)
        expand256(&w4, w2, w13, w5)
        round256(e, f, g, &h, a, b, c, &d, 0x391c_0cb3, w4)
        expand256(&w5, w3, w14, w6)
        round256(d, e, f, &g, h, a, b, &c, 0x4ed8_aa4a, w5)
        expand256(&w6, w4, w15, w7)
        round256(c, d, e, &f, g, h, a, &b, 0x5b9c_ca4f, w6)
        expand256(&w7, w5, w0, w8)
        round256(b, c, d, &e, f, g, h, &a, 0x682e_6ff3, w7)
        expand256(&w8, w6, w1, w9)
        round256(a, b, c, &d, e, f, g, &h, 0x748f_82ee, w8)
        expand256(&w9, w7, w2, w10)
        round256(h, a, b, &c, d, e, f, &g, 0x78a5_636f, w9)
        expand256(&w10, w8, w3, w11)
        round256(g, h, a, &b, c, d, e, &f, 0x84c8_7814, w10)
        expand256(&w11, w9, w4, w12)
        round256(f, g, h, &a, b, c, d, &e, 0x8cc7_0208, w11)
        expand256(&w12, w10, w5, w13)
        round256(e, f, g, &h, a, b, c, &d, 0x90be_fffa, w12)
        expand256(&w13, w11, w6, w14)
        round256(d, e, f, &g, h, a, b, &c, 0xa450_6ceb, w13)
        expand256(&w14, w12, w7, w15)
        round256(c, d, e, &f, g, h, a, &b, 0xbef9_a3f7, w14)
        expand256(&w15, w13, w8, w0)
        round256(b, c, d, &e, f, g, h, &a, 0xc671_78f2, w15)
        feedForward(a, b, c, d, e, f, g, h)
    }
}

@inline(__always)
private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
    (x &>> n) | (x &<< (32 &- n))
}

/// One round: `d` and `h` are the two working variables that change; the caller rotates the names.
@inline(__always)
private func round256(
    _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
    _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32,
    _ k: UInt32, _ w: UInt32
) {
    let sigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
    let choose = g ^ (e & (f ^ g))
    let t1 = h &+ sigma1 &+ choose &+ k &+ w
    let sigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
    let majority = (a & b) | (c & (a | b))
    d &+= t1
    h = t1 &+ sigma0 &+ majority
}

/// Schedule step in a 16-word window: w[t] = s1(w[t-2]) + w[t-7] + s0(w[t-15]) + w[t-16], where the slot being
/// overwritten still holds w[t-16].
@inline(__always)
private func expand256(_ w: inout UInt32, _ back2: UInt32, _ back7: UInt32, _ back15: UInt32) {
    let s0 = rotr(back15, 7) ^ rotr(back15, 18) ^ (back15 &>> 3)
    let s1 = rotr(back2, 17) ^ rotr(back2, 19) ^ (back2 &>> 10)
    w = w &+ s1 &+ back7 &+ s0
}
