import AmarsCodec
import CSecp256k1

/// A secp256k1 secret key with its public forms derived once.
///
/// Signing is frequent on gateways and devices, so the libsecp256k1 keypair (secret plus decompressed public point)
/// and both public encodings are computed at init and stored; no operation re-derives them.
///
/// Deliberately not `CustomStringConvertible`, and its mirror is empty, so `print(key)` or string interpolation
/// cannot leak the secret into a log.
public struct PrivateKey: Sendable {
    /// The 32-byte big-endian scalar. Handle with care: whoever reads it can sign.
    public let secret: Bytes32
    /// The BIP340 public key (x of secret·G); the chain's account identity.
    public let xOnlyPublicKey: XOnlyPublicKey
    /// The compressed public key secret·G, parity included.
    public let publicKey: PublicKey
    #if !hasFeature(Embedded)
        let keypair: secp256k1_keypair
    #endif

    /// Throws `.invalidPrivateKey` for 0 and for any value >= n; all other 32-byte values are valid keys.
    public init(bytes: Bytes32) throws(CryptoError) {
        #if hasFeature(Embedded)
            // A board derives the public key without the generator table (TablelessSchnorr).
            guard let point = TablelessSchnorr.multiplyGenerator(bytes) else { throw .invalidPrivateKey }
            var encoded = [UInt8](repeating: point.oddY ? 3 : 2, count: 33)
            encoded.withUnsafeMutableBytes { point.x.store(into: $0, offset: 1) }
            let publicKey = try PublicKey(compressed: encoded)
            self.secret = bytes
            self.publicKey = publicKey
            self.xOnlyPublicKey = publicKey.xOnly
        #else
            var keypair = secp256k1_keypair()
            let ok = withBigEndianBytes(bytes) { secp256k1_keypair_create(Secp256k1Context.shared, &keypair, $0) }
            guard ok == 1 else { throw .invalidPrivateKey }
            self.init(secret: bytes, keypair: keypair)
        #endif
    }

    #if !hasFeature(Embedded)
        /// For a keypair libsecp256k1 has already validated.
        init(secret: Bytes32, keypair: secp256k1_keypair) {
            let context = Secp256k1Context.shared
            var keypair = keypair
            var full = secp256k1_pubkey()
            var xonly = secp256k1_xonly_pubkey()
            let fullOK = secp256k1_keypair_pub(context, &full, &keypair)
            let xonlyOK = secp256k1_keypair_xonly_pub(context, &xonly, nil, &keypair)
            precondition(fullOK == 1 && xonlyOK == 1, "secp256k1_keypair_pub failed")
            let publicKey = PublicKey(parsed: full)
            self.secret = secret
            self.keypair = keypair
            self.publicKey = publicKey
            self.xOnlyPublicKey = XOnlyPublicKey(parsed: xonly, bytes: publicKey.x)
        }
    #endif

    /// BIP340 signature of a 32-byte message. `auxRandom` should be fresh randomness (it hardens the nonce against
    /// side channels and faults) but the signature is secure even if it is constant; equal inputs give equal
    /// signatures, which the test vectors rely on. On a host the library's result is not re-verified; a board's
    /// (``TablelessSchnorr``) is. A board proves no VRF: that needs the generator table it does not link, and
    /// libsecp256k1 refuses it on its static context.
    public func signSchnorr(_ message: Bytes32, auxRandom: Bytes32) -> Bytes64 {
        #if hasFeature(Embedded)
            var words = (message.w0.bigEndian, message.w1.bigEndian, message.w2.bigEndian, message.w3.bigEndian)
            return withUnsafeBytes(of: &words) { signTableless($0, auxRandom: auxRandom) }
        #else
            var inputs = (
                message.w0.bigEndian, message.w1.bigEndian, message.w2.bigEndian, message.w3.bigEndian,
                auxRandom.w0.bigEndian, auxRandom.w1.bigEndian, auxRandom.w2.bigEndian, auxRandom.w3.bigEndian
            )
            return withUnsafePointer(to: keypair) { keypair in
                withUnsafeBytes(of: &inputs) { raw in
                    let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    return withOutput64 { signature in
                        let ok = secp256k1_schnorrsig_sign32(
                            Secp256k1Context.shared, signature, base, keypair, base + 32)
                        precondition(ok == 1, "secp256k1_schnorrsig_sign32 failed")
                    }
                }
            }
        #endif
    }

    /// BIP340 signature of a message of any length, including empty (the 2022 revision of BIP340). For a 32-byte
    /// message it equals `signSchnorr(_:auxRandom:)`.
    public func signSchnorr(message: [UInt8], auxRandom: Bytes32) -> Bytes64 {
        #if hasFeature(Embedded)
            return message.withUnsafeBytes { signTableless($0, auxRandom: auxRandom) }
        #else
            var aux = (auxRandom.w0.bigEndian, auxRandom.w1.bigEndian, auxRandom.w2.bigEndian, auxRandom.w3.bigEndian)
            return withUnsafePointer(to: keypair) { keypair in
                withUnsafeMutableBytes(of: &aux) { auxBytes in
                    // SECP256K1_SCHNORRSIG_EXTRAPARAMS_INIT is a brace initialiser Swift cannot import; the magic is
                    // spelled out. A nil nonce function selects BIP340's, which reads 32 aux bytes from ndata.
                    var params = secp256k1_schnorrsig_extraparams(
                        magic: (0xda, 0x6f, 0xb3, 0x8c), noncefp: nil, ndata: auxBytes.baseAddress)
                    return message.withUnsafeBufferPointer { msg in
                        withOutput64 { signature in
                            let ok = secp256k1_schnorrsig_sign_custom(
                                Secp256k1Context.shared, signature, msg.baseAddress, msg.count, keypair, &params)
                            precondition(ok == 1, "secp256k1_schnorrsig_sign_custom failed")
                        }
                    }
                }
            }
        #endif
    }

    #if hasFeature(Embedded)
        private func signTableless(_ message: UnsafeRawBufferPointer, auxRandom: Bytes32) -> Bytes64 {
            guard
                let signature = TablelessSchnorr.sign(
                    secret: secret, oddY: publicKey.parityPrefix == 3, key: xOnlyPublicKey, message: message,
                    auxRandom: auxRandom)
            else {
                preconditionFailure("BIP340 signing failed")
            }
            return signature
        }
    #endif

    /// ECDSA signature of a 32-byte digest (the caller hashes; certificates use SHA-256), DER encoded, at most 72
    /// bytes. The nonce is RFC 6979's, so equal inputs give equal signatures, and S is always the low form.
    public func signECDSA(digest: Bytes32) -> [UInt8] {
        #if hasFeature(Embedded)
            // A board signs without the generator table (TablelessECDSA), to the same bytes.
            guard let der = TablelessECDSA.sign(secret: secret, publicKey: publicKey, digest: digest) else {
                preconditionFailure("ECDSA signing failed")
            }
            return der
        #else
            return signECDSAWithTable(digest: digest)
        #endif
    }

    #if !hasFeature(Embedded)
        private func signECDSAWithTable(digest: Bytes32) -> [UInt8] {
            let context = Secp256k1Context.shared
            var signature = secp256k1_ecdsa_signature()
            let ok = withBigEndianBytes(secret) { key in
                withBigEndianBytes(digest) { message in
                    secp256k1_ecdsa_sign(context, &signature, message, key, nil, nil)
                }
            }
            precondition(ok == 1, "secp256k1_ecdsa_sign failed")
            var der = [UInt8](repeating: 0, count: 72)
            var length = 72
            let serialized = der.withUnsafeMutableBufferPointer {
                secp256k1_ecdsa_signature_serialize_der(context, $0.baseAddress!, &length, &signature)
            }
            precondition(serialized == 1, "secp256k1_ecdsa_signature_serialize_der failed")
            der.removeLast(72 - length)
            return der
        }
    #endif

    /// ECDH shared secret with libsecp256k1's default hash: SHA256 of the compressed shared point (0x02/0x03 || x).
    /// Symmetric: a.ecdh(B) == b.ecdh(A).
    public func ecdh(_ other: PublicKey) -> Bytes32 {
        let shared = withUnsafePointer(to: other.parsed) { point in
            withBigEndianBytes(secret) { key in
                withOutput32 { output in
                    secp256k1_ecdh(Secp256k1Context.shared, output, point, key, nil, nil) == 1
                }
            }
        }
        guard let shared else { preconditionFailure("secp256k1_ecdh failed") }
        return shared
    }

    /// The x coordinate of secret·other, unhashed: BIP47's shared secret S, which payment codes hash and use as
    /// HMAC input themselves. Like `ecdh(_:)` it is symmetric, and it ignores the other point's y parity, so an
    /// x-only key gives the same result as either of its full forms.
    public func sharedX(_ other: PublicKey) -> Bytes32 {
        let shared = withUnsafePointer(to: other.parsed) { point in
            withBigEndianBytes(secret) { key in
                withOutput32 { output in
                    secp256k1_ecdh(
                        Secp256k1Context.shared, output, point, key,
                        { output, x, _, _ in
                            guard let output, let x else { return 0 }
                            output.update(from: x, count: 32)
                            return 1
                        }, nil) == 1
                }
            }
        }
        guard let shared else { preconditionFailure("secp256k1_ecdh failed") }
        return shared
    }

    /// (b + t) mod n, the secret of `publicKey.tweakAdded(t)`: used by payment codes, where y parity is kept.
    /// Throws `.invalidTweak` when t >= n or the sum is zero.
    public func tweakAdded(_ tweak: Bytes32) throws(CryptoError) -> PrivateKey {
        let sum = withBigEndianBytes(tweak) { tweakBytes in
            withOutput32 { key in
                secret.store(into: UnsafeMutableRawBufferPointer(start: key, count: 32))
                return secp256k1_ec_seckey_tweak_add(Secp256k1Context.shared, key, tweakBytes) == 1
            }
        }
        guard let sum else { throw .invalidTweak }
        return try PrivateKey(bytes: sum)
    }

    /// BIP341-style x-only tweak: the secret is first negated if its public point has odd y, then t is added, so
    /// that the result's x-only key equals `xonly_pubkey_tweak_add(P, t)`. Throws `.invalidTweak` when t >= n or
    /// the result is zero.
    public func xOnlyTweakAdded(_ tweak: Bytes32) throws(CryptoError) -> PrivateKey {
        #if hasFeature(Embedded)
            guard let tweaked = TablelessSchnorr.xOnlyTweaked(secret, oddY: publicKey.parityPrefix == 3, tweak: tweak)
            else { throw .invalidTweak }
            return try PrivateKey(bytes: tweaked)
        #else
            let context = Secp256k1Context.shared
            var tweaked = keypair
            let ok = withBigEndianBytes(tweak) { secp256k1_keypair_xonly_tweak_add(context, &tweaked, $0) }
            guard ok == 1 else { throw .invalidTweak }
            guard let secret = withOutput32({ secp256k1_keypair_sec(context, $0, &tweaked) == 1 }) else {
                throw .invalidTweak
            }
            return PrivateKey(secret: secret, keypair: tweaked)
        #endif
    }
}

#if !hasFeature(Embedded)
    extension PrivateKey: CustomReflectable {
        /// Empty, so that `print`, `dump` and `String(describing:)` show the type name and never the secret.
        public var customMirror: Mirror { Mirror(self, children: []) }
    }
#endif
