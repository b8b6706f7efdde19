import AmarsCodec

/// SplitMix64: tiny, fast and deterministic, so every randomized test runs the same way from its seed and a
/// failure reproduces exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes32() -> Bytes32 { Bytes32(w0: next(), w1: next(), w2: next(), w3: next()) }

    /// Uniform enough below `n` for tests (modulo bias is irrelevant here).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    public mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}
