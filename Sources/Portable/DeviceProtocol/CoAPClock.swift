/// Time on a client's clock: milliseconds in a `UInt32` that wraps (a board's tick counter does after 49
/// days), so deadlines are compared by their signed distance and no interval may exceed ``maxInterval``.
public enum CoAPClock {
    /// About 12 days: every timeout, back-off and pause is capped here, far inside the 2^31 ms within which
    /// wrapped times still compare correctly.
    public static let maxInterval: UInt32 = 1 << 30

    /// Milliseconds left until `deadline`, 0 when it has come.
    @inlinable
    public static func remaining(until deadline: UInt32, now: UInt32) -> UInt32 {
        let left = Int32(bitPattern: deadline &- now)
        return left > 0 ? UInt32(left) : 0
    }

    /// `now` plus `interval`, capped at ``maxInterval``.
    @inlinable
    public static func deadline(after interval: UInt32, now: UInt32) -> UInt32 {
        now &+ min(interval, maxInterval)
    }
}
