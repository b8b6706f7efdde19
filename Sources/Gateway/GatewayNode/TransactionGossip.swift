import AmarsCodec
import Dispatch
import Logging
import Network
import Synchronization

/// Gossips admitted transactions in batches: what the chain admits within a few milliseconds leaves as one
/// `transactions` frame per origin instead of one frame per transaction. Each frame costs a tag (HMAC), a write
/// and a gossip-filter entry on both sides, which at thousands of transactions a second was most of the network
/// thread's work; the window adds at most `window` to a transaction's way to the other members, against block
/// intervals of a second.
///
/// Batches are kept per origin (the peer a relayed transaction came from, or nil for this node's own doors) so a
/// relay still skips the peer it came from. A batch leaves when its window ends or when it is full.
final class TransactionGossip: Sendable {
    private struct Batch {
        var items: [[UInt8]] = []
        var bytes = 0

        mutating func append(_ encoded: [UInt8]) {
            items.append(encoded)
            bytes += encoded.count
        }
    }

    private struct State {
        var batches: [Bytes32?: Batch] = [:]
        var flushScheduled = false
        var stopped = false
    }

    static let window = DispatchTimeInterval.milliseconds(5)

    private let state = Mutex(State())
    private let network: PeerManager
    private let logger: Logger

    init(network: PeerManager, logger: Logger) {
        self.network = network
        self.logger = logger
    }

    /// Queues one admitted transaction (its encoding) for every peer but `origin`.
    func add(_ encoded: [UInt8], except origin: Bytes32?) {
        let (full, schedule) = state.withLock { s -> (Batch?, Bool) in
            guard !s.stopped else { return (nil, false) }
            // Changed in place: a copy taken out and stored back made every append copy the whole batch.
            let (bytes, count) = s.batches[origin].map { ($0.bytes, $0.items.count) } ?? (0, 0)
            // The length prefix and the count take a few bytes more than the items themselves.
            if bytes + encoded.count + 8 > PeerMessage.Limits.transactionBatchBytes
                || count == PeerMessage.Limits.transactionsPerBatch
            {
                let full = s.batches.updateValue(Batch(items: [encoded], bytes: encoded.count), forKey: origin)
                return (full, false)
            }
            s.batches[origin, default: Batch()].append(encoded)
            let schedule = !s.flushScheduled
            s.flushScheduled = true
            return (nil, schedule)
        }
        if let full { send(full, except: origin) }
        if schedule { DispatchQueue.global().asyncAfter(deadline: .now() + Self.window) { self.flush() } }
    }

    /// Sends every pending batch now.
    func flush() {
        let batches = state.withLock { s in
            s.flushScheduled = false
            defer { s.batches = [:] }
            return s.batches
        }
        for (origin, batch) in batches where !batch.items.isEmpty { send(batch, except: origin) }
    }

    /// Sends what is pending and takes no more (the driver is stopping, the network next).
    func stop() {
        flush()
        state.withLock { $0.stopped = true }
    }

    private func send(_ batch: Batch, except origin: Bytes32?) {
        do { try network.broadcast(PeerMessage.transactions(batch.items).frame, except: origin) } catch {
            logger.error("cannot gossip \(batch.items.count) transaction(s): \(error)")
        }
    }
}
