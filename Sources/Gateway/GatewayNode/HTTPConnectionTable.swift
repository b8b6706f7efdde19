/// Which connections are open, in order of their last activity, and which of them have a request in flight;
/// decides who is admitted and who is evicted at the caps (see ``HTTPServer``). A pure value, so its rules are
/// tested without sockets.
///
/// The order is a doubly linked list threaded through the entries (oldest activity first), so a touch and an
/// eviction of the oldest are O(1). Finding the oldest *idle* connection walks past busy ones, and for a
/// per-source eviction past other sources' ones; both are bounded by the cap and happen only at a cap.
struct ConnectionTable<ID: Hashable> {
    private struct Entry {
        var source: String
        var busy = false
        var older: ID?
        var newer: ID?
    }

    enum Admission: Equatable {
        /// Admitted; `evicting` is the connection to close to make room, if any.
        case admitted(evicting: ID?)
        /// Every connection in the scope that is full has a request in flight.
        case refused
    }

    let maxConnections: Int
    let maxPerSource: Int
    private var entries: [ID: Entry] = [:]
    private var perSource: [String: Int] = [:]
    private var oldest: ID?
    private var newest: ID?

    init(maxConnections: Int, maxPerSource: Int) {
        self.maxConnections = maxConnections
        self.maxPerSource = maxPerSource
    }

    var count: Int { entries.count }
    func contains(_ id: ID) -> Bool { entries[id] != nil }
    func connections(from source: String) -> Int { perSource[source] ?? 0 }

    /// Admits `id` from `source` as the newest connection, evicting (removing from the table) at most one idle
    /// connection: the oldest of the same source when the source is at its cap, else the oldest of all when
    /// the table is at its cap.
    mutating func admit(_ id: ID, source: String) -> Admission {
        remove(id)  // an id is admitted once; should it come again, the stale entry must not be left linked
        var evicted: ID?
        if connections(from: source) >= maxPerSource {
            guard let victim = oldestIdle(from: source) else { return .refused }
            remove(victim)
            evicted = victim
        } else if count >= maxConnections {
            guard let victim = oldestIdle(from: nil) else { return .refused }
            remove(victim)
            evicted = victim
        }
        entries[id] = Entry(source: source, older: newest)
        if let newest { entries[newest]?.newer = id }
        newest = id
        if oldest == nil { oldest = id }
        perSource[source, default: 0] += 1
        return .admitted(evicting: evicted)
    }

    /// Something happened on `id`: it becomes the most recently active.
    mutating func touch(_ id: ID) {
        guard newest != id, let entry = entries[id] else { return }
        unlink(id, entry)
        entries[id] = Entry(source: entry.source, busy: entry.busy, older: newest)
        if let newest { entries[newest]?.newer = id }
        newest = id
        if oldest == nil { oldest = id }
    }

    /// A busy connection (a request in flight) is never evicted. Marking it also counts as activity.
    mutating func setBusy(_ id: ID, _ busy: Bool) {
        touch(id)
        entries[id]?.busy = busy
    }

    mutating func remove(_ id: ID) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        unlink(id, entry)
        let left = (perSource[entry.source] ?? 1) - 1
        perSource[entry.source] = left > 0 ? left : nil
    }

    /// Oldest first.
    var order: [ID] {
        var ids: [ID] = []
        var cursor = oldest
        while let id = cursor {
            ids.append(id)
            cursor = entries[id]?.newer
        }
        return ids
    }

    private func oldestIdle(from source: String?) -> ID? {
        var cursor = oldest
        while let id = cursor, let entry = entries[id] {
            if !entry.busy && (source == nil || entry.source == source) { return id }
            cursor = entry.newer
        }
        return nil
    }

    /// Takes `id` out of the order (its entry stays, with stale links, for the caller to replace or drop).
    private mutating func unlink(_ id: ID, _ entry: Entry) {
        if let older = entry.older { entries[older]?.newer = entry.newer } else { oldest = entry.newer }
        if let newer = entry.newer { entries[newer]?.older = entry.older } else { newest = entry.older }
    }
}
