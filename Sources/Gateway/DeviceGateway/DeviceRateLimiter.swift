/// A token bucket per device, so one chatty or hostile device cannot take the gateway's signature checks and
/// mempool away from the others.
///
/// A device is identified by a key the transport chooses (over plain UDP the source IP address, since a
/// device that changes ports must not get a fresh bucket). Each bucket holds up to `burst` tokens and refills
/// at `perSecond`; a request takes one token or is refused. Time comes from an injected clock in nanoseconds so
/// tests step it by hand.
///
/// The table is bounded: UDP source addresses cost an attacker nothing, so at `maxDevices` the bucket that was
/// used longest ago is dropped. A dropped device starts again with a full bucket, which is the same as one that
/// has been quiet long enough to refill, so eviction never makes the limiter stricter than intended.
///
/// Not thread-safe: the CoAP server uses it only on its own I/O thread.
public struct DeviceRateLimiter: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Tokens added per second.
        public var perSecond: Double
        /// Bucket capacity: how many requests a quiet device may send at once.
        public var burst: Double
        /// Most devices tracked at a time.
        public var maxDevices: Int

        public init(perSecond: Double, burst: Double, maxDevices: Int = 4096) {
            precondition(perSecond >= 0 && burst >= 1 && maxDevices >= 1, "rate limiter: invalid limits")
            self.perSecond = perSecond
            self.burst = burst
            self.maxDevices = maxDevices
        }
    }

    struct Bucket: Sendable {
        var tokens: Double
        var updated: UInt64
    }

    public let limits: Limits
    private let clock: @Sendable () -> UInt64
    private var buckets: [String: Bucket] = [:]

    /// `clock` returns monotonic nanoseconds; the default is the system's monotonic clock.
    public init(limits: Limits, clock: @escaping @Sendable () -> UInt64 = DeviceRateLimiter.monotonicNanoseconds) {
        self.limits = limits
        self.clock = clock
    }

    /// Devices currently tracked.
    public var trackedDevices: Int { buckets.count }

    /// Takes one token from `device`'s bucket; false (and nothing taken) when the bucket is empty.
    public mutating func allow(_ device: String) -> Bool {
        let now = clock()
        var bucket = buckets[device] ?? Bucket(tokens: limits.burst, updated: now)
        if now > bucket.updated {
            let seconds = Double(now - bucket.updated) / 1e9
            bucket.tokens = min(limits.burst, bucket.tokens + seconds * limits.perSecond)
        }
        bucket.updated = max(bucket.updated, now)
        let allowed = bucket.tokens >= 1
        if allowed { bucket.tokens -= 1 }
        if buckets[device] == nil && buckets.count >= limits.maxDevices { evictOldest() }
        buckets[device] = bucket
        return allowed
    }

    /// Linear, but it runs only when the table is full, and then once per new device.
    private mutating func evictOldest() {
        guard let oldest = buckets.min(by: { $0.value.updated < $1.value.updated })?.key else { return }
        buckets.removeValue(forKey: oldest)
    }

    @Sendable
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
