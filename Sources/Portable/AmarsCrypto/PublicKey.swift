import AmarsCodec
import CSecp256k1

/// A BIP340 public key: the 32-byte x coordinate of a point whose y is taken to be even.
///
/// The key is parsed (the point decompressed) once, here, and the parsed form is kept inline next to the bytes:
/// Schnorr verification is the chain's hot path, and this way it is a single library call with no parsing and
/// no heap allocation. Equality and hashing look at `bytes` only.
public struct XOnlyPublicKey: Hashable, Sendable {
    /// The 32 bytes that go on the wire and into hashes.
    public let bytes: Bytes32
    let parsed: secp256k1_xonly_pubkey

    /// Throws `.invalidPublicKey` unless `bytes` is the x coordinate of a point on the curve (so x >= p, and x
    /// with no matching y, are refused here rather than at every verification).
    public init(bytes: Bytes32) throws(CryptoError) {
        var parsed = secp256k1_xonly_pubkey()
        let ok = withBigEndianBytes(bytes) { secp256k1_xonly_pubkey_parse(Secp256k1Context.shared, &parsed, $0) }
        guard ok == 1 else { throw .invalidPublicKey }
        self.bytes = bytes
        self.parsed = parsed
    }

    /// For keys libsecp256k1 has just produced, whose x coordinate the caller already knows.
    init(parsed: secp256k1_xonly_pubkey, bytes: Bytes32) {
        self.bytes = bytes
        self.parsed = parsed
    }

    /// BIP340 verification of a 32-byte message. Returns false (never traps) for any signature that does not
    /// verify, including r >= p and s >= n.
    public func verifySchnorr(_ signature: Bytes64, message: Bytes32) -> Bool {
        var buffer = (
            signature.first.w0.bigEndian, signature.first.w1.bigEndian,
            signature.first.w2.bigEndian, signature.first.w3.bigEndian,
            signature.second.w0.bigEndian, signature.second.w1.bigEndian,
            signature.second.w2.bigEndian, signature.second.w3.bigEndian,
            message.w0.bigEndian, message.w1.bigEndian, message.w2.bigEndian, message.w3.bigEndian
        )
        return withUnsafePointer(to: parsed) { key in
            withUnsafeBytes(of: &buffer) { raw in
                let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                return secp256k1_schnorrsig_verify(Secp256k1Context.shared, base, base + 64, 32, key) == 1
            }
        }
    }

    /// BIP340 verification of a message of any length (including empty), as in the 2022 revision of BIP340.
    /// Signatures over 32-byte messages verify the same way through either overload.
    public func verifySchnorr(_ signature: Bytes64, message: [UInt8]) -> Bool {
        message.withUnsafeBytes { verifySchnorr(signature, message: $0) }
    }

    /// ``verifySchnorr(_:message:)`` over bytes in place (the board's signer checks its own signatures so).
    func verifySchnorr(_ signature: Bytes64, message: UnsafeRawBufferPointer) -> Bool {
        var sig = (
            signature.first.w0.bigEndian, signature.first.w1.bigEndian,
            signature.first.w2.bigEndian, signature.first.w3.bigEndian,
            signature.second.w0.bigEndian, signature.second.w1.bigEndian,
            signature.second.w2.bigEndian, signature.second.w3.bigEndian
        )
        return withUnsafePointer(to: parsed) { key in
            withUnsafeBytes(of: &sig) { raw in
                secp256k1_schnorrsig_verify(
                    Secp256k1Context.shared, raw.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, key) == 1
            }
        }
    }

    public static func == (a: XOnlyPublicKey, b: XOnlyPublicKey) -> Bool { a.bytes == b.bytes }

    public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}

/// A full secp256k1 public key, kept as its 33-byte compressed encoding (parity byte + x) plus the parsed point.
///
/// Used where the y parity matters: ECDSA certificates, ECDH and payment-code tweaks. Equality and hashing look at
/// the encoding only.
public struct PublicKey: Hashable, Sendable {
    /// 2 for even y, 3 for odd y.
    public let parityPrefix: UInt8
    /// The x coordinate, also the x-only (BIP340) form of this key.
    public let x: Bytes32
    let parsed: secp256k1_pubkey

    /// Accepts exactly 33 bytes, prefix 0x02 or 0x03, with x on the curve; anything else (including the 65-byte
    /// uncompressed and hybrid forms, which the chain never uses) throws `.invalidPublicKey`.
    public init(compressed: [UInt8]) throws(CryptoError) {
        guard compressed.count == 33, compressed[0] == 2 || compressed[0] == 3 else { throw .invalidPublicKey }
        var parsed = secp256k1_pubkey()
        let ok = compressed.withUnsafeBufferPointer {
            secp256k1_ec_pubkey_parse(Secp256k1Context.shared, &parsed, $0.baseAddress!, 33)
        }
        guard ok == 1 else { throw .invalidPublicKey }
        self.init(parsed: parsed)
    }

    /// Normalises a point libsecp256k1 produced or accepted into the stored encoding.
    init(parsed: secp256k1_pubkey) {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        var parsedCopy = parsed
        let (prefix, x) = withUnsafeMutableBytes(of: &words) { raw in
            var length = 33
            let ok = secp256k1_ec_pubkey_serialize(
                Secp256k1Context.shared, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, &parsedCopy,
                UInt32(SECP256K1_EC_COMPRESSED))
            precondition(ok == 1 && length == 33, "secp256k1_ec_pubkey_serialize failed")
            return (raw[0], Bytes32(unchecked: UnsafeRawBufferPointer(raw), offset: 1))
        }
        self.parityPrefix = prefix
        self.x = x
        self.parsed = parsed
    }

    /// The 33-byte SEC1 compressed encoding.
    public var compressed: [UInt8] {
        var out = [UInt8](repeating: parityPrefix, count: 33)
        out.withUnsafeMutableBytes { x.store(into: $0, offset: 1) }
        return out
    }

    /// The BIP340 key with the same x (the parity is dropped, as BIP340 does).
    public var xOnly: XOnlyPublicKey {
        var xonly = secp256k1_xonly_pubkey()
        var full = parsed
        let ok = secp256k1_xonly_pubkey_from_pubkey(Secp256k1Context.shared, &xonly, nil, &full)
        precondition(ok == 1, "secp256k1_xonly_pubkey_from_pubkey failed")
        return XOnlyPublicKey(parsed: xonly, bytes: x)
    }

    /// ECDSA verification for certificates. Returns false for anything but a strictly canonical DER signature
    /// (minimal lengths and integers, no trailing bytes), for high-S signatures (only the low-S form of each
    /// signature is accepted, so signatures are not malleable), and for a signature over another digest.
    public func verifyECDSA(derSignature: [UInt8], digest: Bytes32) -> Bool {
        guard derSignature.count >= 8, derSignature.count <= 72 else { return false }
        let context = Secp256k1Context.shared
        var signature = secp256k1_ecdsa_signature()
        let parsedOK = derSignature.withUnsafeBufferPointer {
            secp256k1_ecdsa_signature_parse_der(context, &signature, $0.baseAddress!, $0.count)
        }
        guard parsedOK == 1 else { return false }
        // libsecp256k1 parses r or s >= n as zero instead of failing; re-encoding and comparing refuses those and
        // any other encoding that is not the one canonical form.
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0)
        let canonical = withUnsafeMutableBytes(of: &words) { raw in
            var length = 72
            guard
                secp256k1_ecdsa_signature_serialize_der(
                    context, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, &signature) == 1,
                length == derSignature.count
            else { return false }
            for i in 0..<length where raw[i] != derSignature[i] { return false }
            return true
        }
        guard canonical else { return false }
        // normalize returns 1 when the input had a high S; secp256k1_ecdsa_verify would refuse it too, but the
        // explicit check keeps the contract independent of that library detail.
        guard secp256k1_ecdsa_signature_normalize(context, nil, &signature) == 0 else { return false }
        return withBigEndianBytes(digest) { message in
            withUnsafePointer(to: parsed) { secp256k1_ecdsa_verify(context, &signature, message, $0) == 1 }
        }
    }

    /// P + t·G, the public half of `PrivateKey.tweakAdded`. Throws `.invalidTweak` when t >= n or the sum is the
    /// point at infinity (the tweak was the negated secret key).
    public func tweakAdded(_ tweak: Bytes32) throws(CryptoError) -> PublicKey {
        var point = parsed
        let ok = withBigEndianBytes(tweak) { secp256k1_ec_pubkey_tweak_add(Secp256k1Context.shared, &point, $0) }
        guard ok == 1 else { throw .invalidTweak }
        return PublicKey(parsed: point)
    }

    /// P + Q. Throws `.invalidPublicKey` when the sum is the point at infinity (Q = −P).
    public func adding(_ other: PublicKey) throws(CryptoError) -> PublicKey {
        var sum = secp256k1_pubkey()
        let ok = withUnsafePointer(to: parsed) { a in
            withUnsafePointer(to: other.parsed) { b in
                var inputs: (UnsafePointer<secp256k1_pubkey>?, UnsafePointer<secp256k1_pubkey>?) = (a, b)
                return withUnsafeMutableBytes(of: &inputs) { raw in
                    secp256k1_ec_pubkey_combine(
                        Secp256k1Context.shared, &sum,
                        raw.baseAddress!.assumingMemoryBound(to: UnsafePointer<secp256k1_pubkey>?.self), 2)
                }
            }
        }
        guard ok == 1 else { throw .invalidPublicKey }
        return PublicKey(parsed: sum)
    }

    public static func == (a: PublicKey, b: PublicKey) -> Bool { a.parityPrefix == b.parityPrefix && a.x == b.x }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(parityPrefix)
        hasher.combine(x)
    }
}
