import NIOCore

/// Per-peer budgets and the misbehaviour policy. Defaults suit a committee of a few dozen gateways exchanging
/// blocks of at most a few MiB; tests shrink them.
public struct PeerLimits: Sendable {
    /// Sustained frames per second a peer may send us, and the burst above it.
    public var framesPerSecond: Double = 1_000
    public var frameBurst: Double = 2_000
    /// Sustained bytes per second, and the burst; the burst must hold the largest frame or it could never pass.
    public var bytesPerSecond: Double = 16 * 1_048_576
    public var byteBurst: Double = 32 * 1_048_576

    /// Outbound queue per peer, used while the socket is not writable. When full, the oldest gossip goes first.
    public var maxQueuedFrames = 4_096
    public var maxQueuedBytes = 64 << 20

    /// Score at which a peer is disconnected and banned.
    public var banThreshold = 100
    /// Score points forgiven per second, so rare honest mistakes (a frame dropped by the rate limit during a burst
    /// of sync traffic) never add up to a ban over days.
    public var scoreDecayPerSecond: Double = 1
    public var banDuration: TimeAmount = .seconds(600)
    /// Points for one frame dropped by a rate limit.
    public var rateLimitPenalty = 1

    /// Inbound connections that have not finished the handshake, in all and from one source address.
    /// Unauthenticated peers have no key to ban, so these caps (with the handshake timeout) bound their cost; at a
    /// cap the oldest pending handshake is cut (``PeerRegistry/connectionOpened(_:)``). Our own dials never count.
    public var maxPendingHandshakes = 64
    public var maxPendingHandshakesPerSource = 16
    /// Authenticated peers at once.
    public var maxPeers = 256

    public init() {}
}

/// What the node can report about a peer's message (`PeerManager.report`). The network cannot judge payloads,
/// so the node tells it which peer sent something invalid and how bad that was.
public struct Misbehavior: Sendable, Hashable {
    public var penalty: Int

    public init(penalty: Int) { self.penalty = max(0, penalty) }

    /// Undecodable payload, bad signature on a block or vote: no honest node sends it.
    public static let invalidMessage = Misbehavior(penalty: 25)
    /// Valid but useless (an old vote, an unrequested response): honest nodes do this occasionally.
    public static let uselessMessage = Misbehavior(penalty: 2)
    /// Proof of malice (equivocation): disconnect and ban at once.
    public static let fatal = Misbehavior(penalty: Int.max / 2)
}

/// Classic token bucket over a monotonic clock. `take` never blocks: a frame that does not fit is dropped by the
/// caller, so a flood costs us the decode and nothing more.
struct TokenBucket: Sendable {
    let capacity: Double
    let ratePerNanosecond: Double
    private(set) var tokens: Double
    private var last: NIODeadline

    init(capacity: Double, perSecond: Double, now: NIODeadline) {
        self.capacity = capacity
        self.ratePerNanosecond = perSecond / 1e9
        self.tokens = capacity
        self.last = now
    }

    mutating func take(_ amount: Double, now: NIODeadline) -> Bool {
        if now > last {
            let elapsed = Double(now.uptimeNanoseconds - last.uptimeNanoseconds)
            tokens = min(capacity, tokens + elapsed * ratePerNanosecond)
            last = now
        }
        guard tokens >= amount else { return false }
        tokens -= amount
        return true
    }
}

/// A misbehaviour score that leaks away over time.
struct PeerScore: Sendable {
    private(set) var value: Double = 0
    private var last: NIODeadline
    let decayPerNanosecond: Double

    init(decayPerSecond: Double, now: NIODeadline) {
        self.decayPerNanosecond = decayPerSecond / 1e9
        self.last = now
    }

    /// Adds `points` (after applying the decay since the last change) and returns the new score.
    mutating func add(_ points: Int, now: NIODeadline) -> Double {
        if now > last {
            value = max(0, value - Double(now.uptimeNanoseconds - last.uptimeNanoseconds) * decayPerNanosecond)
            last = now
        }
        value += Double(points)
        return value
    }
}

/// Exponential backoff for redialing, with "equal jitter": half the delay is fixed, half random, so peers that lost
/// each other at the same instant do not redial in lockstep forever.
public struct Backoff: Sendable {
    public var initial: TimeAmount
    public var maximum: TimeAmount
    public var multiplier: Double

    public init(initial: TimeAmount = .milliseconds(250), maximum: TimeAmount = .seconds(30), multiplier: Double = 2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// Delay before attempt number `attempt` (0 for the first retry); `jitter` in [0, 1).
    public func delay(attempt: Int, jitter: Double) -> TimeAmount {
        let base = Double(initial.nanoseconds) * pow(multiplier, Double(min(attempt, 62)))
        let capped = min(base, Double(maximum.nanoseconds))
        let jittered = capped * (0.5 + 0.5 * min(max(jitter, 0), 1))
        return .nanoseconds(Int64(jittered))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 && result < 1e18 {
            result *= base
            remaining -= 1
        }
        return result
    }
}
