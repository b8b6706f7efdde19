import AmarsCodec
import CSecp256k1

/// BIP340 key derivation and signing without libsecp256k1's generator table, for boards.
///
/// Why: libsecp256k1 multiplies the generator with a precomputed table of at least 32 KiB (ECMULT_GEN_PREC_BITS=2,
/// its smallest), a quarter of a board's 128 KiB of flash, and a context that can sign builds it in. A device
/// signs a few transactions a day, so it can afford a general multiplication instead: R = k·G and P = d·G here
/// come from the ECDH module's `secp256k1_ecmult_const`, which is constant-time in the scalar and uses only a
/// small table computed on the stack. Everything else is libsecp256k1's constant-time scalar arithmetic (negate,
/// add, multiply modulo n) and the BIP340 tagged hashes; the steps are BIP340's "Default Signing" one by one.
///
/// Nothing new is invented: the output is bit-for-bit BIP340's (the test vectors check it, and random keys and
/// messages against the library's own signer), and every signature is verified before it is returned, as BIP340
/// recommends against faults. Hosts keep the library's signer; `PrivateKey` uses this one in Embedded builds.
public enum TablelessSchnorr {
    /// d·G as its x coordinate and the parity of its y; nil when d is 0 or not below n.
    public static func multiplyGenerator(_ scalar: Bytes32) -> (x: Bytes32, oddY: Bool)? {
        var generator = Self.generator
        var out: (x: Bytes32, oddY: Bool)?
        let product = withOutput64 { output in
            let ok = withBigEndianBytes(scalar) { key in
                secp256k1_ecdh(Secp256k1Context.shared, output, &generator, key, copyPoint, nil)
            }
            if ok != 1 { output[32] = 0xFF }
        }
        let marker = product.second.w0 >> 56
        if marker <= 1 { out = (product.first, marker == 1) }
        return out
    }

    /// BIP340's signature of `message` (any length) by the secret key `secret`, with auxiliary randomness
    /// `auxRandom`; nil when the key is invalid (0 or not below n).
    public static func sign(secret: Bytes32, message: UnsafeRawBufferPointer, auxRandom: Bytes32) -> Bytes64? {
        guard let point = multiplyGenerator(secret), let key = try? XOnlyPublicKey(bytes: point.x) else { return nil }
        return sign(secret: secret, oddY: point.oddY, key: key, message: message, auxRandom: auxRandom)
    }

    /// The same for a key whose public point is known already (a ``PrivateKey`` keeps it): one multiplication
    /// fewer, a third of the signature's cost on a board. `oddY` is the parity of secret·G, `key` its x.
    static func sign(
        secret: Bytes32, oddY: Bool, key: XOnlyPublicKey, message: UnsafeRawBufferPointer, auxRandom: Bytes32
    ) -> Bytes64? {
        var d = secret
        // d = n - d' when P has odd y, so that P is the point of x with even y that verifiers lift.
        if oddY { d = negated(d) }
        let px = key.bytes
        // t = d xor hash_aux(a); rand = hash_nonce(t || P.x || m); k' = rand mod n.
        let t = xor(d, auxTag.hash(auxRandom))
        var nonceHasher = nonceTag.hasher()
        nonceHasher.update(t)
        nonceHasher.update(px)
        nonceHasher.update(message)
        var k = reducedModOrder(nonceHasher.finalize())
        guard k != .zero, let nonceCommitment = multiplyGenerator(k) else { return nil }
        if nonceCommitment.oddY { k = negated(k) }
        let rx = nonceCommitment.x
        // e = hash_challenge(R.x || P.x || m) mod n; s = k + e·d mod n.
        var challengeHasher = challengeTag.hasher()
        challengeHasher.update(rx)
        challengeHasher.update(px)
        challengeHasher.update(message)
        let e = reducedModOrder(challengeHasher.finalize())
        let s = sum(k, product(d, e))
        let signature = Bytes64(first: rx, second: s)
        // BIP340: verify before handing it out; a fault during signing must not leak a bad signature.
        return key.verifySchnorr(signature, message: message) ? signature : nil
    }

    /// The secret of BIP341's x-only tweak: negated first when its point has odd y, then t added; nil when t is
    /// not below n or the sum is zero.
    public static func xOnlyTweaked(_ secret: Bytes32, oddY: Bool, tweak: Bytes32) -> Bytes32? {
        guard tweak < order else { return nil }
        let result = sum(oddY ? negated(secret) : secret, tweak)
        return result == .zero ? nil : result
    }

    // MARK: the pieces

    static let auxTag = TaggedHash(tag: "BIP0340/aux")
    static let nonceTag = TaggedHash(tag: "BIP0340/nonce")
    static let challengeTag = TaggedHash(tag: "BIP0340/challenge")

    /// The group order n.
    static let order = Bytes32(
        w0: 0xFFFF_FFFF_FFFF_FFFF, w1: 0xFFFF_FFFF_FFFF_FFFE, w2: 0xBAAE_DCE6_AF48_A03B, w3: 0xBFD2_5E8C_D036_4141)

    /// G, parsed once from its compressed encoding (SEC 2, 2.4.1).
    static let generator: secp256k1_pubkey = {
        let encoded: [UInt8] = [
            0x02, 0x79, 0xBE, 0x66, 0x7E, 0xF9, 0xDC, 0xBB, 0xAC, 0x55, 0xA0, 0x62, 0x95, 0xCE, 0x87, 0x0B, 0x07,
            0x02, 0x9B, 0xFC, 0xDB, 0x2D, 0xCE, 0x28, 0xD9, 0x59, 0xF2, 0x81, 0x5B, 0x16, 0xF8, 0x17, 0x98,
        ]
        var point = secp256k1_pubkey()
        let ok = secp256k1_ec_pubkey_parse(Secp256k1Context.shared, &point, encoded, 33)
        precondition(ok == 1, "the generator does not parse")
        return point
    }()

    /// The ECDH hash function that hashes nothing: x, then a byte 0 or 1 for the parity of y.
    static let copyPoint: secp256k1_ecdh_hash_function = { output, x32, y32, _ in
        guard let output, let x32, let y32 else { return 0 }
        output.update(from: x32, count: 32)
        output[32] = y32[31] & 1
        return 1
    }

    /// x mod n for a 256-bit x: x < 2n, so one conditional subtraction, done without a branch on x.
    static func reducedModOrder(_ x: Bytes32) -> Bytes32 {
        let (difference, borrow) = subtract(x, order)
        // borrow 1: x < n, keep x; borrow 0: take x - n.
        let keep = UInt64(0) &- borrow
        return Bytes32(
            w0: (x.w0 & keep) | (difference.w0 & ~keep), w1: (x.w1 & keep) | (difference.w1 & ~keep),
            w2: (x.w2 & keep) | (difference.w2 & ~keep), w3: (x.w3 & keep) | (difference.w3 & ~keep))
    }

    static func subtract(_ a: Bytes32, _ b: Bytes32) -> (Bytes32, UInt64) {
        var borrow: UInt64 = 0
        func limb(_ x: UInt64, _ y: UInt64) -> UInt64 {
            let (d1, o1) = x.subtractingReportingOverflow(y)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            borrow = (o1 ? 1 : 0) | (o2 ? 1 : 0)
            return d2
        }
        let w3 = limb(a.w3, b.w3)
        let w2 = limb(a.w2, b.w2)
        let w1 = limb(a.w1, b.w1)
        let w0 = limb(a.w0, b.w0)
        return (Bytes32(w0: w0, w1: w1, w2: w2, w3: w3), borrow)
    }

    static func xor(_ a: Bytes32, _ b: Bytes32) -> Bytes32 {
        Bytes32(w0: a.w0 ^ b.w0, w1: a.w1 ^ b.w1, w2: a.w2 ^ b.w2, w3: a.w3 ^ b.w3)
    }

    /// n - x for 0 < x < n (libsecp256k1's constant-time negation).
    static func negated(_ x: Bytes32) -> Bytes32 {
        scalarOperation(x, nil) { context, scalar, _ in secp256k1_ec_seckey_negate(context, scalar) }
    }

    /// a·b mod n for a, b < n; 0 when either is 0.
    static func product(_ a: Bytes32, _ b: Bytes32) -> Bytes32 {
        if a == .zero || b == .zero { return .zero }
        return scalarOperation(a, b) { context, scalar, tweak in secp256k1_ec_seckey_tweak_mul(context, scalar, tweak) }
    }

    /// a + b mod n for a, b < n (libsecp256k1 reports a zero sum as a failure; it is zero all the same).
    static func sum(_ a: Bytes32, _ b: Bytes32) -> Bytes32 {
        if a == .zero { return b }
        if b == .zero { return a }
        return scalarOperation(a, b) { context, scalar, tweak in secp256k1_ec_seckey_tweak_add(context, scalar, tweak) }
    }

    /// Runs a libsecp256k1 seckey operation on `a` (in place) with the tweak `b`; a failure leaves zero, which is
    /// what every caller here means by it.
    private static func scalarOperation(
        _ a: Bytes32, _ b: Bytes32?,
        _ operation: (OpaquePointer, UnsafeMutablePointer<UInt8>, UnsafePointer<UInt8>) -> Int32
    ) -> Bytes32 {
        let result = withBigEndianBytes(b ?? .zero) { tweak in
            withOutput32 { scalar in
                a.store(into: UnsafeMutableRawBufferPointer(start: scalar, count: 32))
                return operation(Secp256k1Context.shared, scalar, tweak) == 1
            }
        }
        return result ?? .zero
    }
}
