import NIOCore

/// Frames waiting for a peer's socket to become writable.
///
/// Bounded in frames and bytes. When a slow peer lets it fill, the oldest gossip is dropped first: a newer block
/// or vote supersedes an older one, while a sync response the peer asked for is worth keeping. The queue never
/// grows past its bounds, whatever the peer does.
struct OutboundQueue {
    struct Entry {
        var frame: Frame
        var isGossip: Bool
    }

    let maxFrames: Int
    let maxBytes: Int
    private var entries = CircularBuffer<Entry>()
    private(set) var bytes = 0

    init(maxFrames: Int, maxBytes: Int) {
        self.maxFrames = max(1, maxFrames)
        self.maxBytes = max(1, maxBytes)
    }

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Appends `frame`, evicting old gossip if needed. Returns how many frames were dropped (evicted ones, or the
    /// new frame itself when only non-gossip frames stand in the way).
    mutating func enqueue(_ frame: Frame, isGossip: Bool) -> Int {
        let size = frame.wireSize
        var dropped = 0
        while entries.count >= maxFrames || bytes + size > maxBytes {
            guard let index = entries.firstIndex(where: { $0.isGossip }) else {
                return dropped + 1
            }
            let evicted = entries.remove(at: index)
            bytes -= evicted.frame.wireSize
            dropped += 1
        }
        entries.append(Entry(frame: frame, isGossip: isGossip))
        bytes += size
        return dropped
    }

    mutating func dequeue() -> Frame? {
        guard let entry = entries.popFirst() else { return nil }
        bytes -= entry.frame.wireSize
        return entry.frame
    }

    mutating func removeAll() {
        entries.removeAll()
        bytes = 0
    }
}
