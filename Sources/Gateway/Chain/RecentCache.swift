import AmarsCodec
import Synchronization

/// What a gateway computed from 32 bytes and may be asked again (a parsed sender key, a signature that passed),
/// held for the cores that check one batch together. Sharded so they rarely wait on one lock; each shard keeps two
/// generations and drops the older when the newer fills, so at most `capacity` values are held and the most recent
/// stay. The keys are hashes or curve points, uniform enough that one word picks the shard.
final class RecentCache<Value: Sendable>: Sendable {
    private struct Generations {
        var current: [Bytes32: Value] = [:]
        var previous: [Bytes32: Value] = [:]
    }

    private final class Shard: Sendable {
        let generations = Mutex(Generations())
    }

    private let shards: [Shard]
    private let perGeneration: Int

    init(capacity: Int, shards: Int) {
        self.shards = (0..<shards).map { _ in Shard() }
        perGeneration = max(1, capacity / shards / 2)
    }

    private func shard(_ key: Bytes32) -> Shard { shards[Int(key.w3 % UInt64(shards.count))] }

    subscript(key: Bytes32) -> Value? {
        shard(key).generations.withLock { $0.current[key] ?? $0.previous[key] }
    }

    func insert(_ value: Value, for key: Bytes32) {
        shard(key).generations.withLock { g in
            if g.current.count >= perGeneration {
                // The older generation's table is emptied in place and becomes the newer one: a copy would
                // allocate (and fault in) a whole table while the shard is locked.
                swap(&g.previous, &g.current)
                g.current.removeAll(keepingCapacity: true)
            }
            g.current[key] = value
        }
    }

    /// Values held now (for tests).
    var count: Int { shards.reduce(0) { $0 + $1.generations.withLock { $0.current.count + $0.previous.count } } }
}
