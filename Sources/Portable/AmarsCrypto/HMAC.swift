import AmarsCodec

/// HMAC (RFC 2104) over SHA-256 and SHA-512. Keys longer than a block are hashed first, shorter ones are
/// zero-padded; the padded key lives in an inline buffer so that only the returned digest may allocate.
public enum HMAC {
    public static func sha256(key: [UInt8], message: [UInt8]) -> Bytes32 {
        key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in sha256(key: key, message: message) }
        }
    }

    public static func sha256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> Bytes32 {
        var pad: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &pad) { pad in
            if key.count > 64 {
                SHA256.hash(key).store(into: pad)
            } else if key.count > 0 {
                pad.copyMemory(from: key)
            }
            xor(pad, 0x36)
        }
        var inner = SHA256()
        withUnsafeBytes(of: &pad) { inner.update($0) }
        inner.update(message)
        let innerDigest = inner.finalize()
        // 0x36 ^ 0x6a == 0x5c: turns the inner pad into the outer pad in place.
        withUnsafeMutableBytes(of: &pad) { xor($0, 0x36 ^ 0x5c) }
        var outer = SHA256()
        withUnsafeBytes(of: &pad) { outer.update($0) }
        outer.update(innerDigest)
        return outer.finalize()
    }

    /// Returns the 64-byte tag.
    public static func sha512(key: [UInt8], message: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in sha512(key: key, message: message) }
        }
    }

    public static func sha512(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> [UInt8] {
        var pad:
            (
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &pad) { pad in
            if key.count > 128 {
                var keyHasher = SHA512()
                keyHasher.update(key)
                keyHasher.finish()
                keyHasher.state.store(into: pad)
            } else if key.count > 0 {
                pad.copyMemory(from: key)
            }
            xor(pad, 0x36)
        }
        var inner = SHA512()
        withUnsafeBytes(of: &pad) { inner.update($0) }
        inner.update(message)
        inner.finish()
        var innerDigest: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &innerDigest) { inner.state.store(into: $0) }
        withUnsafeMutableBytes(of: &pad) { xor($0, 0x36 ^ 0x5c) }
        var outer = SHA512()
        withUnsafeBytes(of: &pad) { outer.update($0) }
        withUnsafeBytes(of: &innerDigest) { outer.update($0) }
        return outer.finalize()
    }

    private static func xor(_ buffer: UnsafeMutableRawBufferPointer, _ value: UInt8) {
        for index in 0..<buffer.count {
            buffer[index] ^= value
        }
    }
}
