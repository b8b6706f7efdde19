/// Observe (RFC 7641) values and the freshness rule a device uses to ignore stale head notifications.
///
/// Notifications travel over UDP and may be reordered; a device that acted on an older head after a newer one
/// would briefly roll back its view of the chain. §3.4 orders them by a 24-bit sequence number that wraps,
/// with a 128-second escape so a long-silent server's numbers are believed again.
public enum Observe {
    /// Request value: register as an observer.
    public static let register: UInt32 = 0
    /// Request value: deregister.
    public static let deregister: UInt32 = 1
    /// Sequence numbers are 24 bits (the option holds at most 3 bytes).
    public static let sequenceMask: UInt32 = 0xFF_FFFF
    /// Half the sequence space: a newer number is less than this far ahead (modulo 2^24).
    public static let halfRange: UInt32 = 1 << 23
    /// §3.4: after this long, any notification counts as newer whatever its number.
    public static let freshnessSeconds: UInt64 = 128

    /// The sequence number that follows `value`, wrapping at 2^24.
    @inlinable
    public static func next(_ value: UInt32) -> UInt32 { (value &+ 1) & sequenceMask }

    /// RFC 7641 §3.4: whether a notification numbered `new`, received `secondsSincePrevious` seconds after
    /// the one numbered `previous`, is newer. Numbers are compared modulo 2^24 (a difference of exactly 2^23
    /// is neither newer nor older, and is treated as stale unless the time rule applies).
    @inlinable
    public static func isNewer(_ new: UInt32, than previous: UInt32, secondsSincePrevious: UInt64) -> Bool {
        let v1 = previous & sequenceMask
        let v2 = new & sequenceMask
        if v1 < v2 && v2 - v1 < halfRange { return true }
        if v1 > v2 && v1 - v2 > halfRange { return true }
        return secondsSincePrevious > freshnessSeconds
    }
}

/// The freshness state of one observation on the client: the last accepted sequence number and when it came.
///
/// Time is whatever monotonic seconds counter the device has; only differences are used.
public struct ObserveFreshness: Equatable, Sendable {
    public private(set) var lastSequence: UInt32?
    public private(set) var lastTime: UInt64

    public init() {
        lastSequence = nil
        lastTime = 0
    }

    /// Accepts the notification (and remembers it) if it is newer than the last accepted one; the first
    /// notification is always accepted.
    public mutating func accept(sequence: UInt32, now: UInt64) -> Bool {
        if let last = lastSequence {
            let elapsed = now >= lastTime ? now - lastTime : 0
            if !Observe.isNewer(sequence, than: last, secondsSincePrevious: elapsed) { return false }
        }
        lastSequence = sequence & Observe.sequenceMask
        lastTime = now
        return true
    }
}
