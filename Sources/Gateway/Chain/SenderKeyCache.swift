import AmarsCodec
import AmarsCrypto

/// Sender keys this gateway has parsed, by their 32 bytes. A parse is a square root, about a tenth of a signature
/// check, and a device sends from one key for its whole life, so a gateway keeps the parsed form instead of
/// repeating it for every transaction. A parse depends on the bytes alone, so nothing ever needs invalidating;
/// the cache is bounded so a flood of fresh keys costs memory it already budgeted, and keys that do not parse are
/// never kept.
public final class SenderKeyCache: Sendable {
    private let keys: RecentCache<XOnlyPublicKey>

    public init(capacity: Int = 65_536, shards: Int = 64) {
        keys = RecentCache(capacity: capacity, shards: shards)
    }

    /// The parsed key, from the cache or parsed now.
    public func key(_ bytes: Bytes32) throws(CryptoError) -> XOnlyPublicKey {
        if let hit = keys[bytes] { return hit }
        let key = try XOnlyPublicKey(bytes: bytes)
        keys.insert(key, for: bytes)
        return key
    }

    /// Keys held now (for tests).
    var count: Int { keys.count }
}
