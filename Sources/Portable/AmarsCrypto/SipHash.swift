/// SipHash-2-4 (Aumasson and Bernstein), the keyed 64-bit hash BIP158's Golomb-coded sets map items with.
/// Not a cryptographic commitment by itself: recipient filters are committed by SHA-256 of their bytes.
public struct SipHash24: Sendable {
    public let k0: UInt64
    public let k1: UInt64

    /// The key as two little-endian words, as the reference implementation reads its 16 key bytes.
    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// The key from 16 bytes in the reference implementation's order.
    public init(key: [UInt8]) {
        precondition(key.count == 16, "SipHash keys are 16 bytes")
        k0 = littleEndianWord(key, at: 0, count: 8)
        k1 = littleEndianWord(key, at: 8, count: 8)
    }

    public func hash(_ message: [UInt8]) -> UInt64 {
        var v0 = k0 ^ 0x736f_6d65_7073_6575
        var v1 = k1 ^ 0x646f_7261_6e64_6f6d
        var v2 = k0 ^ 0x6c79_6765_6e65_7261
        var v3 = k1 ^ 0x7465_6462_7974_6573
        @inline(__always) func round() {
            v0 &+= v1
            v1 = rotl(v1, 13)
            v1 ^= v0
            v0 = rotl(v0, 32)
            v2 &+= v3
            v3 = rotl(v3, 16)
            v3 ^= v2
            v0 &+= v3
            v3 = rotl(v3, 21)
            v3 ^= v0
            v2 &+= v1
            v1 = rotl(v1, 17)
            v1 ^= v2
            v2 = rotl(v2, 32)
        }
        let whole = message.count & ~7
        var offset = 0
        while offset < whole {
            let m = littleEndianWord(message, at: offset, count: 8)
            v3 ^= m
            round()
            round()
            v0 ^= m
            offset += 8
        }
        let last =
            UInt64(truncatingIfNeeded: message.count) << 56
            | littleEndianWord(
                message, at: whole, count: message.count - whole)
        v3 ^= last
        round()
        round()
        v0 ^= last
        v2 ^= 0xff
        round()
        round()
        round()
        round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

@inline(__always) private func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 { x << n | x >> (64 - n) }

private func littleEndianWord(_ bytes: [UInt8], at offset: Int, count: Int) -> UInt64 {
    var word: UInt64 = 0
    for i in 0..<count { word |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
    return word
}
