import AmarsCodec
import Synchronization

/// Signatures this gateway has checked and found good, by transaction id. A gateway hears every transaction from
/// each of its peers, and a copy that arrives while a block holds the chain lock, or after its block committed,
/// cannot be matched against the mempool without waiting; with this it costs a hash lookup instead of a check.
///
/// The id is the hash of the body, which names the sender's key, so an id with the same signature bytes verifies
/// the same way every time: nothing here needs invalidating. Only signatures that passed are kept (a forged copy
/// is still checked, and fails). Each shard holds two generations and drops the older when the newer fills, so the
/// memory is bounded and the most recent transactions stay.
public final class SignatureCache: Sendable {
    private let shards: [Shard]
    private let perGeneration: Int

    private struct Entry: Hashable {
        let id: Bytes32
        let signature: Bytes64

        /// An id is a SHA-256 output, already uniform: a quarter of it spreads the set as well as all 96 bytes
        /// would, for a twelfth of the hashing. Equality still compares every byte.
        func hash(into hasher: inout Hasher) { hasher.combine(id.w0) }
    }

    private struct Generations {
        var current: Set<Entry> = []
        var previous: Set<Entry> = []
    }

    private final class Shard: Sendable {
        let entries = Mutex(Generations())
    }

    /// `capacity` signatures at least, twice that at most (about 100 bytes each).
    public init(capacity: Int = 65_536, shards: Int = 16) {
        self.shards = (0..<shards).map { _ in Shard() }
        perGeneration = max(1, capacity / shards)
    }

    private func shard(_ id: Bytes32) -> Shard { shards[Int(id.w3 % UInt64(shards.count))] }

    /// Whether `signature` passed on transaction `id` here before.
    public func contains(_ id: Bytes32, _ signature: Bytes64) -> Bool {
        let entry = Entry(id: id, signature: signature)
        return shard(id).entries.withLock { $0.current.contains(entry) || $0.previous.contains(entry) }
    }

    /// Records a signature that passed its check.
    public func insert(_ id: Bytes32, _ signature: Bytes64) {
        let entry = Entry(id: id, signature: signature)
        shard(id).entries.withLock { g in
            if g.current.count >= perGeneration {
                g.previous = g.current
                g.current.removeAll(keepingCapacity: true)
            }
            g.current.insert(entry)
        }
    }

    /// Signatures held now (for tests).
    var count: Int { shards.reduce(0) { $0 + $1.entries.withLock { $0.current.count + $0.previous.count } } }
}
