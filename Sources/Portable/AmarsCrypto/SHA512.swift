/// SHA-512 as specified in FIPS 180-4. The chain itself hashes with SHA-256; SHA-512 is here for HMAC-SHA-512,
/// which key derivation (BIP32-style wallets) needs, so devices can derive keys without a C library.
///
/// Like `SHA256`, a value type whose 128-byte partial block is held inline.
public struct SHA512: Sendable {
    internal var state: SHA512State
    /// The partial block as sixteen words, inline so that updates never allocate.
    internal var block:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
        )
    /// Bytes of `block` in use, always below 128 between calls.
    internal var buffered: Int
    /// Total bytes fed. The padding has a 128-bit bit count; its high part is derived from this, which covers
    /// every message a UInt64 byte count can describe.
    internal var length: UInt64

    public init() {
        state = .initial
        block = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        buffered = 0
        length = 0
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var source = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        length &+= UInt64(remaining)
        if buffered > 0 {
            let take = min(128 - buffered, remaining)
            let offset = buffered
            withUnsafeMutableBytes(of: &block) { buffer in
                (buffer.baseAddress! + offset).copyMemory(from: source, byteCount: take)
            }
            buffered += take
            source += take
            remaining -= take
            if buffered < 128 { return }
            compressBuffer()
            buffered = 0
        }
        while remaining >= 128 {
            state.compress(source)
            source += 128
            remaining -= 128
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

    /// Pads a copy, so the receiver can still be extended afterwards. Returns the 64-byte digest.
    public func finalize() -> [UInt8] {
        var copy = self
        copy.finish()
        var out = [UInt8](repeating: 0, count: 64)
        out.withUnsafeMutableBytes { copy.state.store(into: $0) }
        return out
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA512()
        hasher.update(bytes)
        return hasher.finalize()
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA512()
        hasher.update(bytes)
        return hasher.finalize()
    }

    private mutating func compressBuffer() {
        var chaining = state
        withUnsafeBytes(of: &block) { chaining.compress($0.baseAddress!) }
        state = chaining
    }

    /// Pads and compresses the last block(s); afterwards `state` holds the digest.
    internal mutating func finish() {
        let used = buffered
        withUnsafeMutableBytes(of: &block) { buffer in
            buffer[used] = 0x80
            (buffer.baseAddress! + used + 1).initializeMemory(as: UInt8.self, repeating: 0, count: 127 - used)
        }
        // The 16-byte length does not fit after the marker: it goes in one more block of zeros.
        if used >= 112 {
            compressBuffer()
            block = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        }
        block.14 = (length &>> 61).bigEndian
        block.15 = (length &<< 3).bigEndian
        compressBuffer()
    }
}

internal struct SHA512State: Sendable {
    var h0: UInt64
    var h1: UInt64
    var h2: UInt64
    var h3: UInt64
    var h4: UInt64
    var h5: UInt64
    var h6: UInt64
    var h7: UInt64

    /// Computed rather than stored: a global would need lazy initialization, which Embedded builds avoid.
    static var initial: SHA512State {
        SHA512State(
            h0: 0x6a09_e667_f3bc_c908, h1: 0xbb67_ae85_84ca_a73b, h2: 0x3c6e_f372_fe94_f82b,
            h3: 0xa54f_f53a_5f1d_36f1, h4: 0x510e_527f_ade6_82d1, h5: 0x9b05_688c_2b3e_6c1f,
            h6: 0x1f83_d9ab_fb41_bd6b, h7: 0x5be0_cd19_137e_2179)
    }

    /// Writes the 64-byte digest big-endian; the caller guarantees room.
    func store(into buffer: UnsafeMutableRawBufferPointer) {
        buffer.storeBytes(of: h0.bigEndian, toByteOffset: 0, as: UInt64.self)
        buffer.storeBytes(of: h1.bigEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: h2.bigEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: h3.bigEndian, toByteOffset: 24, as: UInt64.self)
        buffer.storeBytes(of: h4.bigEndian, toByteOffset: 32, as: UInt64.self)
        buffer.storeBytes(of: h5.bigEndian, toByteOffset: 40, as: UInt64.self)
        buffer.storeBytes(of: h6.bigEndian, toByteOffset: 48, as: UInt64.self)
        buffer.storeBytes(of: h7.bigEndian, toByteOffset: 56, as: UInt64.self)
    }

    /// Compresses the 128 bytes at `block`. A device runs the looped rounds (about a twentieth of the flash of
    /// the unrolled ones, 26 KiB on a Cortex-M4: 64-bit words take register pairs there); a host the unrolled.
    @inline(never)
    mutating func compress(_ block: UnsafeRawPointer) {
        #if hasFeature(Embedded)
            compressCompact(block)
        #else
            compressUnrolled(block)
        #endif
    }

    /// FIPS 180-4's SHA-512 round constants, for the looped rounds (the unrolled ones carry them inline).
    static let roundConstants:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64
        ) = (
            0x428a_2f98_d728_ae22, 0x7137_4491_23ef_65cd, 0xb5c0_fbcf_ec4d_3b2f, 0xe9b5_dba5_8189_dbbc,
            0x3956_c25b_f348_b538, 0x59f1_11f1_b605_d019, 0x923f_82a4_af19_4f9b, 0xab1c_5ed5_da6d_8118,
            0xd807_aa98_a303_0242, 0x1283_5b01_4570_6fbe, 0x2431_85be_4ee4_b28c, 0x550c_7dc3_d5ff_b4e2,
            0x72be_5d74_f27b_896f, 0x80de_b1fe_3b16_96b1, 0x9bdc_06a7_25c7_1235, 0xc19b_f174_cf69_2694,
            0xe49b_69c1_9ef1_4ad2, 0xefbe_4786_384f_25e3, 0x0fc1_9dc6_8b8c_d5b5, 0x240c_a1cc_77ac_9c65,
            0x2de9_2c6f_592b_0275, 0x4a74_84aa_6ea6_e483, 0x5cb0_a9dc_bd41_fbd4, 0x76f9_88da_8311_53b5,
            0x983e_5152_ee66_dfab, 0xa831_c66d_2db4_3210, 0xb003_27c8_98fb_213f, 0xbf59_7fc7_beef_0ee4,
            0xc6e0_0bf3_3da8_8fc2, 0xd5a7_9147_930a_a725, 0x06ca_6351_e003_826f, 0x1429_2967_0a0e_6e70,
            0x27b7_0a85_46d2_2ffc, 0x2e1b_2138_5c26_c926, 0x4d2c_6dfc_5ac4_2aed, 0x5338_0d13_9d95_b3df,
            0x650a_7354_8baf_63de, 0x766a_0abb_3c77_b2a8, 0x81c2_c92e_47ed_aee6, 0x9272_2c85_1482_353b,
            0xa2bf_e8a1_4cf1_0364, 0xa81a_664b_bc42_3001, 0xc24b_8b70_d0f8_9791, 0xc76c_51a3_0654_be30,
            0xd192_e819_d6ef_5218, 0xd699_0624_5565_a910, 0xf40e_3585_5771_202a, 0x106a_a070_32bb_d1b8,
            0x19a4_c116_b8d2_d0c8, 0x1e37_6c08_5141_ab53, 0x2748_774c_df8e_eb99, 0x34b0_bcb5_e19b_48a8,
            0x391c_0cb3_c5c9_5a63, 0x4ed8_aa4a_e341_8acb, 0x5b9c_ca4f_7763_e373, 0x682e_6ff3_d6b2_b8a3,
            0x748f_82ee_5def_b2fc, 0x78a5_636f_4317_2f60, 0x84c8_7814_a1f0_ab72, 0x8cc7_0208_1a64_39ec,
            0x90be_fffa_2363_1e28, 0xa450_6ceb_de82_bde9, 0xbef9_a3f7_b2c6_7915, 0xc671_78f2_e372_532b,
            0xca27_3ece_ea26_619c, 0xd186_b8c7_21c0_c207, 0xeada_7dd6_cde0_eb1e, 0xf57d_4f7f_ee6e_d178,
            0x06f0_67aa_7217_6fba, 0x0a63_7dc5_a2c8_98a6, 0x113f_9804_bef9_0dae, 0x1b71_0b35_131c_471b,
            0x28db_77f5_2304_7d84, 0x32ca_ab7b_40c7_2493, 0x3c9e_be0a_15c9_bebc, 0x431d_67c4_9c10_0d4c,
            0x4cc5_d4be_cb3e_42b6, 0x597f_299c_fc65_7e2a, 0x5fcb_6fab_3ad6_faec, 0x6c44_198c_4a47_5817
        )

    /// The same compression with the 80 rounds in a loop over a 16-word schedule window. Host tests check it
    /// against ``compressUnrolled(_:)`` on random blocks.
    @inline(never)
    mutating func compressCompact(_ block: UnsafeRawPointer) {
        var window:
            (
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
        withUnsafeMutableBytes(of: &window) { w in
            withUnsafeBytes(of: SHA512State.roundConstants) { k in
                for t in 0..<80 {
                    let slot = (t & 15) &* 8
                    var word: UInt64
                    if t < 16 {
                        word = UInt64(bigEndian: block.loadUnaligned(fromByteOffset: t &* 8, as: UInt64.self))
                    } else {
                        word = w.load(fromByteOffset: slot, as: UInt64.self)
                        expand512(
                            &word, w.load(fromByteOffset: ((t &- 2) & 15) &* 8, as: UInt64.self),
                            w.load(fromByteOffset: ((t &- 7) & 15) &* 8, as: UInt64.self),
                            w.load(fromByteOffset: ((t &- 15) & 15) &* 8, as: UInt64.self))
                    }
                    w.storeBytes(of: word, toByteOffset: slot, as: UInt64.self)
                    round512(a, b, c, &d, e, f, g, &h, k.load(fromByteOffset: t &* 8, as: UInt64.self), word)
                    (a, b, c, d, e, f, g, h) = (h, a, b, c, d, e, f, g)
                }
            }
        }
        h0 &+= a
        h1 &+= b
        h2 &+= c
        h3 &+= d
        h4 &+= e
        h5 &+= f
        h6 &+= g
        h7 &+= h
    }

    /// Compresses the 128 bytes at `block`: 80 rounds unrolled, working variables renamed rather than shifted,
    /// the schedule kept as a 16-word window of locals. Never inlined, so only one copy exists.
    @inline(never)
    mutating func compressUnrolled(_ block: UnsafeRawPointer) {
        @inline(__always) func word(_ index: Int) -> UInt64 {
            UInt64(bigEndian: block.loadUnaligned(fromByteOffset: index &* 8, as: UInt64.self))
        }
        var (w0, w1, w2, w3, w4, w5, w6, w7) = (word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7))
        var (w8, w9, w10, w11) = (word(8), word(9), word(10), word(11))
        var (w12, w13, w14, w15) = (word(12), word(13), word(14), word(15))
        var (a, b, c, d, e, f, g, h) = (h0, h1, h2, h3, h4, h5, h6, h7)
        round512(a, b, c, &d, e, f, g, &h, 0x428a_2f98_d728_ae22, w0)
        round512(h, a, b, &c, d, e, f, &g, 0x7137_4491_23ef_65cd, w1)
        round512(g, h, a, &b, c, d, e, &f, 0xb5c0_fbcf_ec4d_3b2f, w2)
        round512(f, g, h, &a, b, c, d, &e, 0xe9b5_dba5_8189_dbbc, w3)
        round512(e, f, g, &h, a, b, c, &d, 0x3956_c25b_f348_b538, w4)
        round512(d, e, f, &g, h, a, b, &c, 0x59f1_11f1_b605_d019, w5)
        round512(c, d, e, &f, g, h, a, &b, 0x923f_82a4_af19_4f9b, w6)
        round512(b, c, d, &e, f, g, h, &a, 0xab1c_5ed5_da6d_8118, w7)
        round512(a, b, c, &d, e, f, g, &h, 0xd807_aa98_a303_0242, w8)
        round512(h, a, b, &c, d, e, f, &g, 0x1283_5b01_4570_6fbe, w9)
        round512(g, h, a, &b, c, d, e, &f, 0x2431_85be_4ee4_b28c, w10)
        round512(f, g, h, &a, b, c, d, &e, 0x550c_7dc3_d5ff_b4e2, w11)
        round512(e, f, g, &h, a, b, c, &d, 0x72be_5d74_f27b_896f, w12)
        round512(d, e, f, &g, h, a, b, &c, 0x80de_b1fe_3b16_96b1, w13)
        round512(c, d, e, &f, g, h, a, &b, 0x9bdc_06a7_25c7_1235, w14)
        round512(b, c, d, &e, f, g, h, &a, 0xc19b_f174_cf69_2694, w15)
        expand512(&w0, w14, w9, w1)
        round512(a, b, c, &d, e, f, g, &h, 0xe49b_69c1_9ef1_4ad2, w0)
        expand512(&w1, w15, w10, w2)
        round512(h, a, b, &c, d, e, f, &g, 0xefbe_4786_384f_25e3, w1)
        expand512(&w2, w0, w11, w3)
        round512(g, h, a, &b, c, d, e, &f, 0x0fc1_9dc6_8b8c_d5b5, w2)
        expand512(&w3, w1, w12, w4)
        round512(f, g, h, &a, b, c, d, &e, 0x240c_a1cc_77ac_9c65, w3)
        expand512(&w4, w2, w13, w5)
        round512(e, f, g, &h, a, b, c, &d, 0x2de9_2c6f_592b_0275, w4)
        expand512(&w5, w3, w14, w6)
        round512(d, e, f, &g, h, a, b, &c, 0x4a74_84aa_6ea6_e483, w5)
        expand512(&w6, w4, w15, w7)
        round512(c, d, e, &f, g, h, a, &b, 0x5cb0_a9dc_bd41_fbd4, w6)
        expand512(&w7, w5, w0, w8)
        round512(b, c, d, &e, f, g, h, &a, 0x76f9_88da_8311_53b5, w7)
        expand512(&w8, w6, w1, w9)
        round512(a, b, c, &d, e, f, g, &h, 0x983e_5152_ee66_dfab, w8)
        expand512(&w9, w7, w2, w10)
        round512(h, a, b, &c, d, e, f, &g, 0xa831_c66d_2db4_3210, w9)
        expand512(&w10, w8, w3, w11)
        round512(g, h, a, &b, c, d, e, &f, 0xb003_27c8_98fb_213f, w10)
        expand512(&w11, w9, w4, w12)
        round512(f, g, h, &a, b, c, d, &e, 0xbf59_7fc7_beef_0ee4, w11)
        expand512(&w12, w10, w5, w13)
        round512(e, f, g, &h, a, b, c, &d, 0xc6e0_0bf3_3da8_8fc2, w12)
        expand512(&w13, w11, w6, w14)
        round512(d, e, f, &g, h, a, b, &c, 0xd5a7_9147_930a_a725, w13)
        expand512(&w14, w12, w7, w15)
        round512(c, d, e, &f, g, h, a, &b, 0x06ca_6351_e003_826f, w14)
        expand512(&w15, w13, w8, w0)
        round512(b, c, d, &e, f, g, h, &a, 0x1429_2967_0a0e_6e70, w15)
        expand512(&w0, w14, w9, w1)
        round512(a, b, c, &d, e, f, g, &h, 0x27b7_0a85_46d2_2ffc, w0)
        expand512(&w1, w15, w10, w2)
        round512(h, a, b, &c, d, e, f, &g, 0x2e1b_2138_5c26_c926, w1)
        expand512(&w2, w0, w11, w3)
        round512(g, h, a, &b, c, d, e, &f, 0x4d2c_6dfc_5ac4_2aed, w2)
        expand512(&w3, w1, w12, w4)
        round512(f, g, h, &a, b, c, d, &e, 0x5338_0d13_9d95_b3df, w3)
        expand512(&w4, w2, w13, w5)
        round512(e, f, g, &h, a, b, c, &d, 0x650a_7354_8baf_63de, w4)
        expand512(&w5, w3, w14, w6)
        round512(d, e, f, &g, h, a, b, &c, 0x766a_0abb_3c77_b2a8, w5)
        expand512(&w6, w4, w15, w7)
        round512(c, d, e, &f, g, h, a, &b, 0x81c2_c92e_47ed_aee6, w6)
        expand512(&w7, w5, w0, w8)
        round512(b, c, d, &e, f, g, h, &a, 0x9272_2c85_1482_353b, w7)
        expand512(&w8, w6, w1, w9)
        round512(a, b, c, &d, e, f, g, &h, 0xa2bf_e8a1_4cf1_0364, w8)
        expand512(&w9, w7, w2, w10)
        round512(h, a, b, &c, d, e, f, &g, 0xa81a_664b_bc42_3001, w9)
        expand512(&w10, w8, w3, w11)
        round512(g, h, a, &b, c, d, e, &f, 0xc24b_8b70_d0f8_9791, w10)
        expand512(&w11, w9, w4, w12)
        round512(f, g, h, &a, b, c, d, &e, 0xc76c_51a3_0654_be30, w11)
        expand512(&w12, w10, w5, w13)
        round512(e, f, g, &h, a, b, c, &d, 0xd192_e819_d6ef_5218, w12)
        expand512(&w13, w11, w6, w14)
        round512(d, e, f, &g, h, a, b, &c, 0xd699_0624_5565_a910, w13)
        expand512(&w14, w12, w7, w15)
        round512(c, d, e, &f, g, h, a, &b, 0xf40e_3585_5771_202a, w14)
        expand512(&w15, w13, w8, w0)
        round512(b, c, d, &e, f, g, h, &a, 0x106a_a070_32bb_d1b8, w15)
        expand512(&w0, w14, w9, w1)
        round512(a, b, c, &d, e, f, g, &h, 0x19a4_c116_b8d2_d0c8, w0)
        expand512(&w1, w15, w10, w2)
        round512(h, a, b, &c, d, e, f, &g, 0x1e37_6c08_5141_ab53, w1)
        expand512(&w2, w0, w11, w3)
        round512(g, h, a, &b, c, d, e, &f, 0x2748_774c_df8e_eb99, w2)
        expand512(&w3, w1, w12, w4)
        round512(f, g, h, &a, b, c, d, &e, 0x34b0_bcb5_e19b_48a8, w3)
        expand512(&w4, w2, w13, w5)
        round512(e, f, g, &h, a, b, c, &d, 0x391c_0cb3_c5c9_5a63, w4)
        expand512(&w5, w3, w14, w6)
        round512(d, e, f, &g, h, a, b, &c, 0x4ed8_aa4a_e341_8acb, w5)
        expand512(&w6, w4, w15, w7)
        round512(c, d, e, &f, g, h, a, &b, 0x5b9c_ca4f_7763_e373, w6)
        expand512(&w7, w5, w0, w8)
        round512(b, c, d, &e, f, g, h, &a, 0x682e_6ff3_d6b2_b8a3, w7)
        expand512(&w8, w6, w1, w9)
        round512(a, b, c, &d, e, f, g, &h, 0x748f_82ee_5def_b2fc, w8)
        expand512(&w9, w7, w2, w10)
        round512(h, a, b, &c, d, e, f, &g, 0x78a5_636f_4317_2f60, w9)
        expand512(&w10, w8, w3, w11)
        round512(g, h, a, &b, c, d, e, &f, 0x84c8_7814_a1f0_ab72, w10)
        expand512(&w11, w9, w4, w12)
        round512(f, g, h, &a, b, c, d, &e, 0x8cc7_0208_1a64_39ec, w11)
        expand512(&w12, w10, w5, w13)
        round512(e, f, g, &h, a, b, c, &d, 0x90be_fffa_2363_1e28, w12)
        expand512(&w13, w11, w6, w14)
        round512(d, e, f, &g, h, a, b, &c, 0xa450_6ceb_de82_bde9, w13)
        expand512(&w14, w12, w7, w15)
        round512(c, d, e, &f, g, h, a, &b, 0xbef9_a3f7_b2c6_7915, w14)
        expand512(&w15, w13, w8, w0)
        round512(b, c, d, &e, f, g, h, &a, 0xc671_78f2_e372_532b, w15)
        expand512(&w0, w14, w9, w1)
        round512(a, b, c, &d, e, f, g, &h, 0xca27_3ece_ea26_619c, w0)
        expand512(&w1, w15, w10, w2)
        round512(h, a, b, &c, d, e, f, &g, 0xd186_b8c7_21c0_c207, w1)
        expand512(&w2, w0, w11, w3)
        round512(g, h, a, &b, c, d, e, &f, 0xeada_7dd6_cde0_eb1e, w2)
        expand512(&w3, w1, w12, w4)
        round512(f, g, h, &a, b, c, d, &e, 0xf57d_4f7f_ee6e_d178, w3)
        expand512(&w4, w2, w13, w5)
        round512(e, f, g, &h, a, b, c, &d, 0x06f0_67aa_7217_6fba, w4)
        expand512(&w5, w3, w14, w6)
        round512(d, e, f, &g, h, a, b, &c, 0x0a63_7dc5_a2c8_98a6, w5)
        expand512(&w6, w4, w15, w7)
        round512(c, d, e, &f, g, h, a, &b, 0x113f_9804_bef9_0dae, w6)
        expand512(&w7, w5, w0, w8)
        round512(b, c, d, &e, f, g, h, &a, 0x1b71_0b35_131c_471b, w7)
        expand512(&w8, w6, w1, w9)
        round512(a, b, c, &d, e, f, g, &h, 0x28db_77f5_2304_7d84, w8)
        expand512(&w9, w7, w2, w10)
        round512(h, a, b, &c, d, e, f, &g, 0x32ca_ab7b_40c7_2493, w9)
        expand512(&w10, w8, w3, w11)
        round512(g, h, a, &b, c, d, e, &f, 0x3c9e_be0a_15c9_bebc, w10)
        expand512(&w11, w9, w4, w12)
        round512(f, g, h, &a, b, c, d, &e, 0x431d_67c4_9c10_0d4c, w11)
        expand512(&w12, w10, w5, w13)
        round512(e, f, g, &h, a, b, c, &d, 0x4cc5_d4be_cb3e_42b6, w12)
        expand512(&w13, w11, w6, w14)
        round512(d, e, f, &g, h, a, b, &c, 0x597f_299c_fc65_7e2a, w13)
        expand512(&w14, w12, w7, w15)
        round512(c, d, e, &f, g, h, a, &b, 0x5fcb_6fab_3ad6_faec, w14)
        expand512(&w15, w13, w8, w0)
        round512(b, c, d, &e, f, g, h, &a, 0x6c44_198c_4a47_5817, w15)
        h0 &+= a
        h1 &+= b
        h2 &+= c
        h3 &+= d
        h4 &+= e
        h5 &+= f
        h6 &+= g
        h7 &+= h
    }
}

@inline(__always)
private func rotr(_ x: UInt64, _ n: UInt64) -> UInt64 {
    (x &>> n) | (x &<< (64 &- n))
}

/// One round: `d` and `h` are the two working variables that change; the caller rotates the names.
@inline(__always)
private func round512(
    _ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: inout UInt64,
    _ e: UInt64, _ f: UInt64, _ g: UInt64, _ h: inout UInt64,
    _ k: UInt64, _ w: UInt64
) {
    let sigma1 = rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41)
    let choose = g ^ (e & (f ^ g))
    let t1 = h &+ sigma1 &+ choose &+ k &+ w
    let sigma0 = rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39)
    let majority = (a & b) | (c & (a | b))
    d &+= t1
    h = t1 &+ sigma0 &+ majority
}

/// Schedule step in a 16-word window; the slot being overwritten still holds w[t-16].
@inline(__always)
private func expand512(_ w: inout UInt64, _ back2: UInt64, _ back7: UInt64, _ back15: UInt64) {
    let s0 = rotr(back15, 1) ^ rotr(back15, 8) ^ (back15 &>> 7)
    let s1 = rotr(back2, 19) ^ rotr(back2, 61) ^ (back2 &>> 6)
    w = w &+ s1 &+ back7 &+ s0
}
