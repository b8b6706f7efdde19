import DeviceProtocol
import Foundation

/// Messages a door keeps for whoever fetches them by key (a device's address, a channel's id): in memory, a few per
/// key for a limited time, each numbered. The doors decide what may be posted; this only keeps it bounded.
///
/// Sequence numbers start from the wall clock in microseconds when the mailbox opens, so they keep growing across
/// a gateway restart and a reader's cursor is never ahead of them.
final class Mailbox<Key: Hashable & Sendable>: @unchecked Sendable {
    // @unchecked: `queues` and `next` are only touched under `lock`.
    struct Limits: Sendable, Equatable {
        /// Messages kept per key; a new one pushes the oldest out.
        var perKey: Int
        /// Keys with messages waiting; past it the key whose newest message is oldest is dropped, or, with
        /// `refuseWhenFull`, a new key is refused while every kept key has a message still waiting.
        var keys: Int
        /// Seconds a message waits before it is dropped.
        var lifetimeSeconds: UInt64
        var refuseWhenFull = false
    }

    let limits: Limits
    private let clock: @Sendable () -> UInt64
    private let lock = NSLock()
    private var queues: [Key: [(entry: MailboxPayload.Entry, at: UInt64)]] = [:]
    private var next: UInt64

    /// `clock`: wall-clock seconds, for the messages' lifetime; sequences start after `firstSequence`.
    init(limits: Limits, clock: @escaping @Sendable () -> UInt64, firstSequence: UInt64) {
        self.limits = limits
        self.clock = clock
        next = firstSequence
    }

    /// Keeps `message` for `key` if `admits` passes with the newest message still kept for it (nil: none), in one
    /// step with the keeping; returns the sequence given, or nil when the mailbox refuses a new key (full).
    func post<E: Error>(_ message: [UInt8], to key: Key, admitting admits: ([UInt8]?) throws(E) -> Void) throws(E)
        -> UInt64?
    {
        let now = clock()
        lock.lock()
        defer { lock.unlock() }
        var queue = queues[key] ?? []
        prune(&queue, now: now)
        try admits(queue.last?.entry.message)
        if queues[key] == nil, queues.count >= limits.keys {
            if limits.refuseWhenFull {
                queues = queues.filter { now < ($0.value.last?.at ?? 0) + limits.lifetimeSeconds }
                guard queues.count < limits.keys else { return nil }
            } else if let stalest = queues.min(by: { ($0.value.last?.at ?? 0) < ($1.value.last?.at ?? 0) })?.key {
                queues[stalest] = nil
            }
        }
        next += 1
        queue.append((MailboxPayload.Entry(sequence: next, message: message), now))
        if queue.count > limits.perKey { queue.removeFirst(queue.count - limits.perKey) }
        queues[key] = queue
        return next
    }

    /// Keeps `message` for `key` whatever was kept before it.
    func post(_ message: [UInt8], to key: Key) -> UInt64? {
        post(message, to: key) { (_: [UInt8]?) throws(Never) in }
    }

    /// The messages for `key` after sequence `after`, oldest first, at most `limit`.
    func entries(for key: Key, after: UInt64, limit: Int) -> [MailboxPayload.Entry] {
        let now = clock()
        return lock.withLock {
            guard var queue = queues[key] else { return [] }
            prune(&queue, now: now)
            queues[key] = queue.isEmpty ? nil : queue
            return Array(queue.lazy.map(\.entry).filter { $0.sequence > after }.prefix(limit))
        }
    }

    /// Drops the messages past their lifetime (under `lock`).
    private func prune(_ queue: inout [(entry: MailboxPayload.Entry, at: UInt64)], now: UInt64) {
        queue.removeAll { now >= $0.at + limits.lifetimeSeconds }
    }
}
