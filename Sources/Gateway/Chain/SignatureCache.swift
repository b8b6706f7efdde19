import AmarsCodec

/// Signatures this gateway has checked and found good, by transaction id. A gateway hears every transaction from
/// each of its peers, and a copy that arrives while a block holds the chain lock, or after its block committed,
/// cannot be matched against the mempool without waiting; with this it costs a hash lookup instead of a check.
///
/// The id is the hash of the body, which names the sender's key, so an id with the same signature bytes verifies
/// the same way every time: nothing here needs invalidating. Only signatures that passed are kept (a forged copy
/// is still checked, and fails); a second valid signature on the same id replaces the first, which is then checked
/// again if it comes back. At most `capacity` are held, about 100 bytes each.
public final class SignatureCache: Sendable {
    private let signatures: RecentCache<Bytes64>

    public init(capacity: Int = 131_072, shards: Int = 64) {
        signatures = RecentCache(capacity: capacity, shards: shards)
    }

    /// Whether `signature` passed on transaction `id` here before.
    public func contains(_ id: Bytes32, _ signature: Bytes64) -> Bool { signatures[id] == signature }

    /// Records a signature that passed its check.
    public func insert(_ id: Bytes32, _ signature: Bytes64) { signatures.insert(signature, for: id) }

    /// Signatures held now (for tests).
    var count: Int { signatures.count }
}
