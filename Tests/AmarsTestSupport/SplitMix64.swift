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

    /// Uniform enough below `n` for tests (modulo bias is irrelevant here); 0 for an empty range.
    public mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    public mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }

    public mutating func inRange(_ range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    public mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }

    public mutating func bytes(_ count: Int) -> [UInt8] { (0..<max(count, 0)).map { _ in byte() } }

    public mutating func bool() -> Bool { next() & 1 == 1 }

    /// True with probability `p`, from the top 53 bits.
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(UInt64(1) << 53) < p }

    /// Fisher–Yates with this generator, so a shuffle replays from the seed.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(below(UInt64(i + 1)))) }
        return a
    }
}
