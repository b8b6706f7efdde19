import AmarsCodec
import CSecp256k1

/// ECVRF on secp256k1, suite SECP256K1_SHA256_TAI (suite byte 0xFE), in the encoding of
/// draft-irtf-cfrg-vrf-06, so that the public vector set `secp256_k1_sha256_tai.json` of vechain/go-ecvrf
/// checks it byte for byte. Roll-DPoS draws each epoch's committee from these outputs (SPEC.md, "Roll-DPoS").
///
/// Every group and scalar operation is a libsecp256k1 0.2.0 public API call; this file only arranges bytes:
/// - string_to_point: `secp256k1_ec_pubkey_parse` of a 33-byte compressed string (refuses x >= p and x with no
///   square root, which is exactly what try-and-increment needs to skip a candidate);
/// - point addition: `secp256k1_ec_pubkey_combine`; scalar·G: `secp256k1_ec_pubkey_create`;
/// - public scalar·point (verify): `secp256k1_ec_pubkey_tweak_mul`; secret scalar·point (prove):
///   `secp256k1_ecdh` with a hash function that returns the point itself;
/// - scalars mod n: `secp256k1_ec_seckey_tweak_mul`, `_tweak_add`, `_negate`, `_verify`;
/// - the RFC 6979 nonce: `secp256k1_nonce_function_rfc6979`.
///
/// libsecp256k1 refuses zero scalars and cannot represent the point at infinity in a `secp256k1_pubkey`.
/// Zero c and s are handled by leaving their terms out; U or V at infinity, which needs k = 0 and so never
/// comes from an honest prover, makes `verify` answer nil (the draft would hash an encoding of infinity that
/// point_to_string does not define for compressed points).
public enum ECVRF {
    /// The suite_string of SECP256K1_SHA256_TAI (draft-06 §5.5), the first byte of every hash input.
    public static let suite: UInt8 = 0xFE

    /// Length of pi: Gamma (33, compressed) || c (16) || s (32).
    public static let proofLength = 81

    /// pi for `alpha` under `secretKey`, deterministic (ECVRF_prove, draft-06 §5.1).
    ///
    /// Side channels: the two multiplications by secrets other than G (Gamma = x·H and k·H) go through
    /// `secp256k1_ecdh`, libsecp256k1's constant-time variable-base multiplication (`secp256k1_ecmult_const`);
    /// k·G goes through `secp256k1_ec_pubkey_create`, its constant-time, blindable (see
    /// `Secp256k1Context.randomize`) generator multiplication; s = k + c·x uses its constant-time scalar code,
    /// and the nonce is its own RFC 6979 HMAC-SHA256. `secp256k1_ec_pubkey_tweak_mul` is deliberately avoided
    /// here because in 0.2.0 it runs the variable-time `secp256k1_ecmult` (fine for verify, whose inputs are
    /// public; later releases made it constant time). Copies of k in Swift
    /// values are not wiped (Swift offers no volatile store); the C buffers they pass through are.
    ///
    /// Cannot fail except with negligible probability, which is why the result is not optional:
    /// - hash to curve fails only if 256 candidates in a row are not x coordinates, probability about 2^-256;
    /// - k is in [1, n-1] by construction (RFC 6979 retries otherwise), so k·G and k·H are never infinity, and
    ///   x·H is not infinity because x is in [1, n-1] and n is prime;
    /// - c = 0 (probability 2^-128) and s = k + c·x = 0 (probability about 2^-256) are handled exactly (s = k,
    ///   and s emitted as zero), and `verify` accepts such proofs.
    /// The traps below therefore mark broken invariants (a corrupt key), not inputs an attacker controls.
    public static func prove(secretKey: PrivateKey, alpha: [UInt8]) -> [UInt8] {
        let context = Secp256k1Context.shared
        let x = secretKey.secret
        guard var h = hashToCurve(publicKey: secretKey.publicKey, alpha: alpha) else {
            preconditionFailure("ECVRF hash_to_curve found no point in 256 tries")
        }
        let hString = encode(h)
        guard let gamma = constantTimeMultiply(&h, by: x) else { preconditionFailure("ECVRF: x·H failed") }
        let k = nonce(secret: x, h1: hString.withBytes { SHA256.hash($0) })
        var kG = secp256k1_pubkey()
        let createOK = withBigEndianBytes(k) { secp256k1_ec_pubkey_create(context, &kG, $0) }
        guard createOK == 1, let kH = constantTimeMultiply(&h, by: k) else {
            preconditionFailure("ECVRF: k·G or k·H failed")
        }
        let c = hashPoints(hString, gamma, encode(kG), kH)
        let s = scalarMultiplyAdd(k: k, c: c, x: x)

        var pi = [UInt8](repeating: 0, count: proofLength)
        pi.withUnsafeMutableBytes { out in
            gamma.store(into: out, offset: 0)
            out.storeBytes(of: c.w2.bigEndian, toByteOffset: 33, as: UInt64.self)
            out.storeBytes(of: c.w3.bigEndian, toByteOffset: 41, as: UInt64.self)
            s.store(into: out, offset: 49)
        }
        return pi
    }

    /// beta when `pi` proves `alpha` under `publicKey` (ECVRF_verify, draft-06 §5.3), nil otherwise.
    ///
    /// Never traps, whatever the bytes. Refused besides proofs that do not check: a length other than 81,
    /// Gamma not a compressed point on the curve, s >= n, and U or V at infinity (see the type's comment).
    /// Variable time: everything it handles is public.
    public static func verify(publicKey: PublicKey, alpha: [UInt8], pi: [UInt8]) -> Bytes32? {
        guard let proof = decodeProof(pi) else { return nil }
        let context = Secp256k1Context.shared
        guard let h = hashToCurve(publicKey: publicKey, alpha: alpha) else { return nil }
        // U = s·B + (-c)·Y and V = s·H + (-c)·Gamma: one multiplication per term and one addition. A zero
        // scalar's term is the point at infinity and is left out (`Term.zero`), since libsecp256k1 refuses it.
        let sB: Term
        if proof.s == .zero {
            sB = .zero
        } else {
            var point = secp256k1_pubkey()
            guard withBigEndianBytes(proof.s, { secp256k1_ec_pubkey_create(context, &point, $0) }) == 1 else {
                return nil
            }
            sB = .point(point)
        }
        var minusC = Bytes32.zero
        if proof.c != .zero {
            // c < 2^128 < n, so it is a valid nonzero scalar and negation cannot fail.
            guard
                let negated = withOutput32({ buffer in
                    proof.c.store(into: UnsafeMutableRawBufferPointer(start: buffer, count: 32))
                    return secp256k1_ec_seckey_negate(context, buffer) == 1
                })
            else { return nil }
            minusC = negated
        }
        guard let minusCY = Term(publicKey.parsed, times: minusC), let sH = Term(h, times: proof.s),
            let minusCGamma = Term(proof.gamma, times: minusC),
            let u = sB.adding(minusCY), let v = sH.adding(minusCGamma)
        else { return nil }
        let cPrime = hashPoints(encode(h), proof.gammaString, encode(u), encode(v))
        guard cPrime == proof.c else { return nil }
        return outputHash(proof.gammaString)
    }

    /// beta of a proof without checking it (ECVRF_proof_to_hash, draft-06 §5.2): only for a pi already
    /// verified, or to predict an output. Nil when pi does not decode (length, Gamma, s >= n).
    public static func proofToHash(_ pi: [UInt8]) -> Bytes32? {
        guard let proof = decodeProof(pi) else { return nil }
        return outputHash(proof.gammaString)
    }

    // MARK: Steps of the draft

    /// A compressed point: parity byte (2 even y, 3 odd y) and x, as point_to_string writes it.
    struct EncodedPoint: Equatable {
        var prefix: UInt8
        var x: Bytes32

        /// Writes the 33 bytes at `offset`; the caller guarantees room.
        func store(into buffer: UnsafeMutableRawBufferPointer, offset: Int) {
            buffer[offset] = prefix
            x.store(into: buffer, offset: offset + 1)
        }

        /// Lends the 33 bytes from a stack buffer.
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
            var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
            return withUnsafeMutableBytes(of: &words) { raw in
                store(into: raw, offset: 0)
                return body(UnsafeRawBufferPointer(rebasing: raw[0..<33]))
            }
        }

        func feed(_ hasher: inout SHA256) {
            hasher.update(prefix)
            hasher.update(x)
        }
    }

    /// The decoded fields of pi (ECVRF_decode_proof, draft-06 §5.4.4). c keeps its 16 bytes in the low half
    /// of a 32-byte big-endian value, the form libsecp256k1's scalar functions take.
    struct Proof {
        var gamma: secp256k1_pubkey
        var gammaString: EncodedPoint
        var c: Bytes32
        var s: Bytes32
    }

    /// Nil for a length other than 81, Gamma not on the curve or not compressed, and s >= n (draft-06 leaves s
    /// unchecked; RFC 9381's decode_proof refuses s >= n, which no honest prover emits). Because
    /// `secp256k1_ec_pubkey_parse` refuses x >= p, an accepted Gamma string is the canonical encoding of its
    /// point, so hashing the received bytes equals hashing point_to_string(Gamma).
    static func decodeProof(_ pi: [UInt8]) -> Proof? {
        guard pi.count == proofLength, pi[0] == 2 || pi[0] == 3 else { return nil }
        return pi.withUnsafeBytes { raw -> Proof? in
            var gamma = secp256k1_pubkey()
            guard
                secp256k1_ec_pubkey_parse(
                    Secp256k1Context.shared, &gamma, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), 33) == 1
            else { return nil }
            let gammaString = EncodedPoint(prefix: raw[0], x: Bytes32(unchecked: raw, offset: 1))
            let c = Bytes32(w0: 0, w1: 0, w2: readWord(raw, at: 33), w3: readWord(raw, at: 41))
            let s = Bytes32(unchecked: raw, offset: 49)
            // seckey_verify accepts exactly 1...n-1; zero is a valid s too.
            guard s == .zero || withBigEndianBytes(s, { secp256k1_ec_seckey_verify(Secp256k1Context.shared, $0) }) == 1
            else { return nil }
            return Proof(gamma: gamma, gammaString: gammaString, c: c, s: s)
        }
    }

    /// ECVRF_hash_to_curve_try_and_increment (draft-06 §5.4.1.1): the first ctr in 0...255 for which
    /// 0x02 || SHA256(suite || 0x01 || PK || alpha || ctr) is a point. The draft's loop is unbounded; 256
    /// misses in a row have probability about 2^-256, and stopping there keeps verify free of traps.
    static func hashToCurve(publicKey: PublicKey, alpha: [UInt8]) -> secp256k1_pubkey? {
        var prefix = SHA256()
        prefix.update(suite)
        prefix.update(0x01)
        prefix.update(publicKey.parityPrefix)
        prefix.update(publicKey.x)
        prefix.update(alpha)
        var candidate: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        var point = secp256k1_pubkey()
        for counter in 0...255 {
            var hasher = prefix
            hasher.update(UInt8(counter))
            let digest = hasher.finalize()
            let ok = withUnsafeMutableBytes(of: &candidate) { raw in
                raw[0] = 0x02
                digest.store(into: raw, offset: 1)
                return secp256k1_ec_pubkey_parse(
                    Secp256k1Context.shared, &point, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), 33)
            }
            if ok == 1 { return point }
        }
        return nil
    }

    /// ECVRF_nonce_generation_RFC6979 (draft-06 §5.4.2.1): RFC 6979 §3.2 with HMAC-SHA256, x as int2octets and
    /// h1 = SHA256(point_to_string(H)). libsecp256k1's RFC 6979 function reduces h1 mod n (bits2octets; qlen
    /// = hlen = 256, so bits2int is the identity) and, given counter i, returns the (i+1)-th candidate of
    /// step h; the loop keeps the first candidate in [1, n-1], as step h.3 does.
    static func nonce(secret: Bytes32, h1: Bytes32) -> Bytes32 {
        let context = Secp256k1Context.shared
        guard let rfc6979 = secp256k1_nonce_function_rfc6979 else { preconditionFailure("no RFC 6979 function") }
        var counter: UInt32 = 0
        while true {
            let k = withBigEndianBytes(h1) { message in
                withBigEndianBytes(secret) { key in
                    withOutput32 { out in
                        rfc6979(out, message, key, nil, nil, counter) == 1
                            && secp256k1_ec_seckey_verify(context, out) == 1
                    }
                }
            }
            if let k { return k }
            counter += 1
        }
    }

    /// ECVRF_hash_points (draft-06 §5.4.3): the first 16 bytes of SHA256(suite || 0x02 || P1 || P2 || P3 || P4),
    /// returned as the low half of a 32-byte value so that it is ready as a scalar.
    static func hashPoints(
        _ p1: EncodedPoint, _ p2: EncodedPoint, _ p3: EncodedPoint, _ p4: EncodedPoint
    ) -> Bytes32 {
        var hasher = SHA256()
        hasher.update(suite)
        hasher.update(0x02)
        p1.feed(&hasher)
        p2.feed(&hasher)
        p3.feed(&hasher)
        p4.feed(&hasher)
        let digest = hasher.finalize()
        return Bytes32(w0: 0, w1: 0, w2: digest.w0, w3: digest.w1)
    }

    /// ECVRF_proof_to_hash's last step: SHA256(suite || 0x03 || point_to_string(cofactor·Gamma)), cofactor 1.
    static func outputHash(_ gamma: EncodedPoint) -> Bytes32 {
        var hasher = SHA256()
        hasher.update(suite)
        hasher.update(0x03)
        gamma.feed(&hasher)
        return hasher.finalize()
    }

    // MARK: libsecp256k1 glue

    /// One term of U or V: a point, or the point at infinity that a zero scalar gives.
    enum Term {
        case zero
        case point(secp256k1_pubkey)

        /// scalar·point for a public scalar below n (variable time); nil only if libsecp256k1 refuses.
        init?(_ point: secp256k1_pubkey, times scalar: Bytes32) {
            if scalar == .zero {
                self = .zero
            } else if let product = multiply(point, by: scalar) {
                self = .point(product)
            } else {
                return nil
            }
        }

        /// The sum as a finite point; nil when it is the point at infinity.
        func adding(_ other: Term) -> secp256k1_pubkey? {
            switch (self, other) {
            case (.zero, .zero): return nil
            case (.point(let a), .zero): return a
            case (.zero, .point(let b)): return b
            case (.point(let a), .point(let b)): return add(a, b)
            }
        }
    }

    /// point_to_string of a point libsecp256k1 holds (never infinity: the type cannot hold it).
    static func encode(_ point: secp256k1_pubkey) -> EncodedPoint {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        var copy = point
        return withUnsafeMutableBytes(of: &words) { raw in
            var length = 33
            let ok = secp256k1_ec_pubkey_serialize(
                Secp256k1Context.shared, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, &copy,
                UInt32(SECP256K1_EC_COMPRESSED))
            precondition(ok == 1 && length == 33, "secp256k1_ec_pubkey_serialize failed")
            return EncodedPoint(prefix: raw[0], x: Bytes32(unchecked: UnsafeRawBufferPointer(raw), offset: 1))
        }
    }

    /// scalar·point for public scalars (variable time). Nil when the scalar is 0 or >= n.
    static func multiply(_ point: secp256k1_pubkey, by scalar: Bytes32) -> secp256k1_pubkey? {
        var result = point
        let ok = withBigEndianBytes(scalar) { secp256k1_ec_pubkey_tweak_mul(Secp256k1Context.shared, &result, $0) }
        return ok == 1 ? result : nil
    }

    /// a + b; nil when the sum is the point at infinity.
    static func add(_ a: secp256k1_pubkey, _ b: secp256k1_pubkey) -> secp256k1_pubkey? {
        var sum = secp256k1_pubkey()
        var first = a
        var second = b
        let ok = withUnsafePointer(to: &first) { pa in
            withUnsafePointer(to: &second) { pb in
                var inputs: (UnsafePointer<secp256k1_pubkey>?, UnsafePointer<secp256k1_pubkey>?) = (pa, pb)
                return withUnsafeMutableBytes(of: &inputs) { raw in
                    secp256k1_ec_pubkey_combine(
                        Secp256k1Context.shared, &sum,
                        raw.baseAddress!.assumingMemoryBound(to: UnsafePointer<secp256k1_pubkey>?.self), 2)
                }
            }
        }
        return ok == 1 ? sum : nil
    }

    /// secret·point in constant time, as point_to_string. `secp256k1_ecdh` multiplies with
    /// `secp256k1_ecmult_const` and hands the affine x and y to a caller-chosen function; this one writes the
    /// compressed encoding instead of hashing. Nil when the scalar is 0 or >= n.
    static func constantTimeMultiply(_ point: inout secp256k1_pubkey, by secret: Bytes32) -> EncodedPoint? {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &words) { raw -> EncodedPoint? in
            let ok = withBigEndianBytes(secret) { key in
                secp256k1_ecdh(
                    Secp256k1Context.shared, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &point, key,
                    compressedPointHashFunction, nil)
            }
            guard ok == 1 else { return nil }
            return EncodedPoint(prefix: raw[0], x: Bytes32(unchecked: UnsafeRawBufferPointer(raw), offset: 1))
        }
    }

    /// s = (k + c·x) mod n with libsecp256k1's scalar functions. c = 0 gives s = k (tweak_mul refuses a zero
    /// factor); a zero sum comes back as zero (tweak_add refuses it and clears the buffer).
    static func scalarMultiplyAdd(k: Bytes32, c: Bytes32, x: Bytes32) -> Bytes32 {
        if c == .zero { return k }
        let context = Secp256k1Context.shared
        let s = withBigEndianBytes(c) { cBytes in
            withBigEndianBytes(k) { kBytes in
                withOutput32 { buffer in
                    x.store(into: UnsafeMutableRawBufferPointer(start: buffer, count: 32))
                    precondition(secp256k1_ec_seckey_tweak_mul(context, buffer, cBytes) == 1, "ECVRF: c·x failed")
                    return secp256k1_ec_seckey_tweak_add(context, buffer, kBytes) == 1
                }
            }
        }
        return s ?? .zero
    }

    @inline(__always)
    static func readWord(_ raw: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in offset..<(offset + 8) { value = value << 8 | UInt64(raw[index]) }
        return value
    }
}

/// The `secp256k1_ecdh` hash function of `ECVRF.constantTimeMultiply`: writes (2 | y parity) || x, 33 bytes.
/// A C function pointer with no captures, so Embedded Swift can pass it.
private let compressedPointHashFunction: secp256k1_ecdh_hash_function = { output, x32, y32, _ in
    guard let output, let x32, let y32 else { return 0 }
    output[0] = 0x02 | (y32[31] & 1)
    (output + 1).update(from: x32, count: 32)
    return 1
}
