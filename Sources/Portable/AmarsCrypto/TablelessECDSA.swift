import AmarsCodec
import CSecp256k1

/// ECDSA signing (SEC 1 §4.1.3, RFC 6979 nonces, low S) without libsecp256k1's generator table, for boards: a
/// device signs its own short-lived certificate with its long-lived key (SPEC "Device identity").
///
/// Why: the library's `secp256k1_ecdsa_sign` multiplies the generator with the table a board does not link
/// (``TablelessSchnorr`` says why). The steps are the library's own, in the same order, so the output is its
/// output bit for bit: the nonce is the library's `secp256k1_nonce_function_rfc6979` with a counter for retries;
/// R = k·G comes from ``TablelessSchnorr/multiplyGenerator(_:)``; r = R.x mod n; s = k⁻¹·(z + r·d) mod n with the
/// inverse by Fermat (k^(n−2), the exponent public, so the steps do not depend on k); s is negated when above n/2.
/// The signature is verified before it is returned, against faults, as the Schnorr signer does.
public enum TablelessECDSA {
    /// The DER signature of the 32-byte `digest` by `secret` (0 < secret < n), at most 72 bytes; nil for an invalid
    /// key or when the signature does not verify under `publicKey` (a fault).
    public static func sign(secret: Bytes32, publicKey: PublicKey, digest: Bytes32) -> [UInt8]? {
        guard secret != .zero, secret < TablelessSchnorr.order,
            let nonceFunction = secp256k1_nonce_function_rfc6979
        else { return nil }
        let z = TablelessSchnorr.reducedModOrder(digest)
        var counter: UInt32 = 0
        while counter < 16 {
            defer { counter += 1 }
            let candidate = withBigEndianBytes(digest) { message in
                withBigEndianBytes(secret) { key in
                    withOutput32 { out in nonceFunction(out, message, key, nil, nil, counter) == 1 }
                }
            }
            guard let k = candidate else { return nil }
            guard k != .zero, k < TablelessSchnorr.order, let point = TablelessSchnorr.multiplyGenerator(k) else {
                continue
            }
            let r = TablelessSchnorr.reducedModOrder(point.x)
            guard r != .zero else { continue }
            var s = TablelessSchnorr.product(inverse(k), TablelessSchnorr.sum(z, TablelessSchnorr.product(r, secret)))
            guard s != .zero else { continue }
            if s > halfOrder { s = TablelessSchnorr.negated(s) }
            guard let der = derEncoded(r: r, s: s), publicKey.verifyECDSA(derSignature: der, digest: digest) else {
                return nil
            }
            return der
        }
        return nil
    }

    /// n − 2, the exponent of the inverse modulo the prime n.
    static let inverseExponent = Bytes32(
        w0: 0xFFFF_FFFF_FFFF_FFFF, w1: 0xFFFF_FFFF_FFFF_FFFE, w2: 0xBAAE_DCE6_AF48_A03B, w3: 0xBFD2_5E8C_D036_413F)

    /// ⌊n / 2⌋: a larger s is replaced by n − s (BIP62's low S, which the library produces and its verifier wants).
    static let halfOrder = Bytes32(
        w0: 0x7FFF_FFFF_FFFF_FFFF, w1: 0xFFFF_FFFF_FFFF_FFFF, w2: 0x5D57_6E73_57A4_501D, w3: 0xDFE9_2F46_681B_20A0)

    /// x⁻¹ mod n for 0 < x < n: x^(n−2), square and multiply over the public exponent's bits, high to low.
    static func inverse(_ x: Bytes32) -> Bytes32 {
        var result = Bytes32(w0: 0, w1: 0, w2: 0, w3: 1)
        let words = [inverseExponent.w0, inverseExponent.w1, inverseExponent.w2, inverseExponent.w3]
        for word in words {
            var bit = 63
            while bit >= 0 {
                result = TablelessSchnorr.product(result, result)
                if (word >> UInt64(bit)) & 1 == 1 { result = TablelessSchnorr.product(result, x) }
                bit -= 1
            }
        }
        return result
    }

    /// r ‖ s as the library's DER encoding (its compact parser takes both below n).
    static func derEncoded(r: Bytes32, s: Bytes32) -> [UInt8]? {
        let context = Secp256k1Context.shared
        var words = (
            r.w0.bigEndian, r.w1.bigEndian, r.w2.bigEndian, r.w3.bigEndian,
            s.w0.bigEndian, s.w1.bigEndian, s.w2.bigEndian, s.w3.bigEndian
        )
        var signature = secp256k1_ecdsa_signature()
        let parsed = withUnsafeBytes(of: &words) { raw in
            secp256k1_ecdsa_signature_parse_compact(
                context, &signature, raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard parsed == 1 else { return nil }
        var der = [UInt8](repeating: 0, count: 72)
        var length = 72
        let serialized = der.withUnsafeMutableBufferPointer {
            secp256k1_ecdsa_signature_serialize_der(context, $0.baseAddress!, &length, &signature)
        }
        guard serialized == 1 else { return nil }
        der.removeLast(72 - length)
        return der
    }
}
