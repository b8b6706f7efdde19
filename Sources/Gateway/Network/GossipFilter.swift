import AmarsCodec
import AmarsCrypto

/// Recently seen gossip, by SHA-256 of (kind, payload), bounded and least-recently-used first out.
///
/// In a mesh every peer echoes what it relays, so the same vote arrives once per neighbour; the node should see
/// it once. The bound keeps memory fixed however much a peer sends; an entry pushed out only means a very late
/// echo is delivered again, which the node's own validation tolerates.
struct GossipFilter {
    let capacity: Int
    /// Hash → generation of its last use. Ring entries whose generation no longer matches are stale.
    private var generations: [Bytes32: UInt64] = [:]
    private var ring: [(hash: Bytes32, generation: UInt64)] = []
    private var ringStart = 0
    private var nextGeneration: UInt64 = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { generations.count }

    static func hash(_ frame: Frame) -> Bytes32 {
        var hasher = SHA256()
        hasher.update(frame.kind)
        hasher.update(frame.payload)
        return hasher.finalize()
    }

    /// Records `hash` as just used; returns true when it was not present (the frame is new).
    mutating func insert(_ hash: Bytes32) -> Bool {
        let isNew = generations[hash] == nil
        nextGeneration += 1
        generations[hash] = nextGeneration
        ring.append((hash, nextGeneration))
        while generations.count > capacity { evictOldest() }
        if ring.count > 2 * capacity + 16 { compact() }
        return isNew
    }

    func contains(_ hash: Bytes32) -> Bool { generations[hash] != nil }

    private mutating func evictOldest() {
        while ringStart < ring.count {
            let entry = ring[ringStart]
            ringStart += 1
            if generations[entry.hash] == entry.generation {
                generations[entry.hash] = nil
                return
            }
        }
    }

    /// Drops stale ring entries so the ring stays within a constant factor of `capacity`.
    private mutating func compact() {
        ring = ring[ringStart...].filter { generations[$0.hash] == $0.generation }
        ringStart = 0
    }
}
