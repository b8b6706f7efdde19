import AmarsCodec

/// HKDF-Expand (RFC 5869 §2.3) with SHA-256, for one output block: T(1) = HMAC(PRK, info ‖ 0x01).
///
/// Why: a board has no random source to make a fresh key from, but it holds a secret key that is already uniform.
/// Expanding it with a distinct `info` gives keys that are independent to anyone without the secret, the use RFC
/// 5869 names for Expand alone (§3.3, a PRK that is already a strong key).
public enum HKDF {
    public static func expandSHA256(prk: Bytes32, info: [UInt8]) -> Bytes32 {
        var key = (prk.w0.bigEndian, prk.w1.bigEndian, prk.w2.bigEndian, prk.w3.bigEndian)
        let message = info + [1]
        let out = withUnsafeBytes(of: &key) { key in
            message.withUnsafeBytes { HMAC.sha256(key: key, message: $0) }
        }
        withUnsafeMutableBytes(of: &key) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        return out
    }
}
