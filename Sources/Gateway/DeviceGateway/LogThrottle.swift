/// Token buckets for log lines a stranger can trigger at will (a received RST, a refused DTLS handshake): each
/// kind of line gets `perKind` and all kinds together `overall`, so a flood costs a few lines a second instead
/// of the disk. Suppressed lines are counted by kind for a summary.
///
/// A kind is the line's text with numbers folded (``kind(of:)``), so lines that differ only in a message id, an
/// address or a port are one kind. Kinds reuse ``DeviceRateLimiter``'s bounded table, and the suppressed counts
/// are bounded the same way (past `maxKinds`, they are counted under one kind, "other").
///
/// Not thread-safe; ``ThrottledLog`` wraps it in a lock.
public struct LogThrottle: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Lines of one kind: a burst, then a steady rate.
        public var perKind: DeviceRateLimiter.Limits
        /// Lines of all kinds together, so many kinds cannot add up to a flood.
        public var overall: DeviceRateLimiter.Limits

        public init(
            perKind: DeviceRateLimiter.Limits = .init(perSecond: 1, burst: 10, maxDevices: 64),
            overall: DeviceRateLimiter.Limits = .init(perSecond: 5, burst: 50, maxDevices: 1)
        ) {
            self.perKind = perKind
            self.overall = overall
        }
    }

    private var kinds: DeviceRateLimiter
    private var overall: DeviceRateLimiter
    private let maxKinds: Int
    private var suppressed: [String: Int] = [:]

    public init(
        limits: Limits = Limits(), clock: @escaping @Sendable () -> UInt64 = DeviceRateLimiter.monotonicNanoseconds
    ) {
        kinds = DeviceRateLimiter(limits: limits.perKind, clock: clock)
        overall = DeviceRateLimiter(limits: limits.overall, clock: clock)
        maxKinds = limits.perKind.maxDevices
    }

    /// Whether to write `line` now; when not, it is counted for ``drainSuppressed()``.
    public mutating func admit(_ line: String) -> Bool {
        let kind = Self.kind(of: line)
        // The kind's token is taken first, so a kind over its own limit does not use up the shared budget.
        if kinds.allow(kind) && overall.allow("") { return true }
        let key = suppressed[kind] != nil || suppressed.count < maxKinds ? kind : "other"
        suppressed[key, default: 0] += 1
        return false
    }

    /// The lines suppressed since the last call, by kind (most first), and forgets them.
    public mutating func drainSuppressed() -> [(kind: String, count: Int)] {
        defer { suppressed = [:] }
        return suppressed.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
            .map { (kind: $0.key, count: $0.value) }
    }

    /// A line's kind: its first 80 characters with every number (decimal, or hex after a digit, as in `0x1a2b`)
    /// folded into `#`.
    public static func kind(of line: String) -> String {
        var kind = String.UnicodeScalarView()
        var inNumber = false
        for scalar in line.unicodeScalars.prefix(80) {
            let isDigit = scalar.value >= 0x30 && scalar.value <= 0x39
            let continuesNumber = inNumber && (scalar.properties.isASCIIHexDigit || scalar == "x" || scalar == "X")
            if isDigit || continuesNumber {
                if !inNumber { kind.append("#") }
                inNumber = true
            } else {
                inNumber = false
                kind.append(scalar)
            }
        }
        return String(kind)
    }
}
