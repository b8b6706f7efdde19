import AmarsCodec
import AmarsCrypto
import Synchronization

/// Sender keys this gateway has parsed, by their 32 bytes. A parse is a square root, about a tenth of a signature
/// check, and a device sends from one key for its whole life, so a gateway keeps the parsed form instead of
/// repeating it for every transaction. A parse depends on the bytes alone, so nothing ever needs invalidating;
/// the cache is bounded (a shard that fills is emptied) so a flood of fresh keys costs memory it already
/// budgeted, and keys that do not parse are never kept.
public final class SenderKeyCache: Sendable {
    /// Sharded by a key byte so the cores checking one batch rarely wait on one lock.
    private let shards: [Shard]
    private let perShard: Int

    private final class Shard: Sendable {
        let keys = Mutex<[Bytes32: XOnlyPublicKey]>([:])
    }

    public init(capacity: Int = 65_536, shards: Int = 16) {
        self.shards = (0..<shards).map { _ in Shard() }
        perShard = max(1, capacity / shards)
    }

    /// The parsed key, from the cache or parsed now.
    public func key(_ bytes: Bytes32) throws(CryptoError) -> XOnlyPublicKey {
        let shard = shards[Int(bytes.w3 % UInt64(shards.count))]
        if let hit = shard.keys.withLock({ $0[bytes] }) { return hit }
        let key = try XOnlyPublicKey(bytes: bytes)
        shard.keys.withLock { cached in
            if cached.count >= perShard { cached.removeAll(keepingCapacity: true) }
            cached[bytes] = key
        }
        return key
    }

    /// Keys held now (for tests).
    var count: Int { shards.reduce(0) { $0 + $1.keys.withLock { $0.count } } }
}
