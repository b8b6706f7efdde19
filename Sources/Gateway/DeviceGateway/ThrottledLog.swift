import Foundation
import Logging

/// A logger whose lines go through a ``LogThrottle``, with a summary of what it suppressed each time
/// ``summarize()`` is called (the CoAP server does once a second). Callable from any thread: libcoap's log
/// handler is process-wide.
///
/// `@unchecked Sendable`: the throttle, the logger and the level of the suppressed lines are guarded by `lock`.
public final class ThrottledLog: @unchecked Sendable {
    private let lock = NSLock()
    private var logger: Logger
    private var throttle: LogThrottle
    /// The highest level among the lines suppressed since the last summary, which the summary is logged at.
    private var suppressedLevel: Logger.Level?

    public init(
        logger: Logger, limits: LogThrottle.Limits = LogThrottle.Limits(),
        clock: @escaping @Sendable () -> UInt64 = DeviceRateLimiter.monotonicNanoseconds
    ) {
        self.logger = logger
        self.throttle = LogThrottle(limits: limits, clock: clock)
    }

    /// Where the lines go from now on.
    public func setLogger(_ logger: Logger) {
        lock.lock()
        self.logger = logger
        lock.unlock()
    }

    public func log(_ level: Logger.Level, _ line: String) {
        lock.lock()
        let logger = self.logger
        // A line the logger would drop anyway neither spends a token nor counts as suppressed.
        guard level >= logger.logLevel else {
            lock.unlock()
            return
        }
        let write = throttle.admit(line)
        if !write { suppressedLevel = max(suppressedLevel ?? level, level) }
        lock.unlock()
        if write { logger.log(level: level, "\(line)") }
    }

    /// Logs one line counting the lines suppressed since the last call, naming the commonest kinds; nothing
    /// if none were.
    public func summarize() {
        lock.lock()
        let kinds = throttle.drainSuppressed()
        let level = suppressedLevel
        suppressedLevel = nil
        let logger = self.logger
        lock.unlock()
        guard let level, !kinds.isEmpty else { return }
        let total = kinds.reduce(0) { $0 + $1.count }
        var named = kinds.prefix(3).map { "\($0.count) × \"\($0.kind)\"" }.joined(separator: ", ")
        if kinds.count > 3 { named += ", …" }
        logger.log(level: level, "\(total) similar lines suppressed (\(named))")
    }
}
