import Foundation
import Logging
import NIOCore

/// The connection limits of one ``HTTPServer``: the ``ConnectionTable`` of its open connections, the channels
/// to close when they are evicted, the counters, and the memory trim after a flood.
///
/// `@unchecked Sendable` because the bootstrap's initializer (a `@Sendable` closure) must capture it: every
/// method but ``stats`` runs on `loop` (asserted), which is also the loop of every connection of the server,
/// so no two threads touch the table; the counters are also guarded by `lock` so ``stats`` can be read from
/// anywhere.
final class ConnectionRegistry: @unchecked Sendable {
    let limits: HTTPServer.Limits
    let loop: any EventLoop
    private let logger: Logger
    private var table: ConnectionTable<ObjectIdentifier>
    private var channels: [ObjectIdentifier: any Channel] = [:]
    private let lock = NSLock()
    private var counters = HTTPServer.ConnectionStats()
    /// Most connections open since memory was last handed back, for ``maybeTrimMemory()``.
    private var peak = 0
    private var trimScheduled = false
    /// The counters when connections last started to be shed, while they are: an episode is logged once when it
    /// starts and once when the connections have dropped to an eighth of the cap, never per connection.
    private var sheddingSince: HTTPServer.ConnectionStats?

    /// A flood is this many connections or more; when it has shrunk to an eighth, memory is handed back.
    static let floodSize = 256

    init(limits: HTTPServer.Limits, loop: any EventLoop, logger: Logger) {
        self.limits = limits
        self.loop = loop
        self.logger = logger
        table = ConnectionTable(maxConnections: limits.maxConnections, maxPerSource: limits.maxConnectionsPerSource)
    }

    var stats: HTTPServer.ConnectionStats {
        lock.lock()
        defer { lock.unlock() }
        return counters
    }

    /// Admits a freshly accepted channel or says to refuse it; closes the connection it evicts, if any.
    func admit(_ channel: any Channel) -> Bool {
        loop.preconditionInEventLoop()
        let id = ObjectIdentifier(channel)
        switch table.admit(id, source: Self.source(of: channel.remoteAddress)) {
        case .refused:
            startShedding()
            count { $0.refused += 1 }
            return false
        case .admitted(let evicted):
            channels[id] = channel
            if let evicted, let victim = channels.removeValue(forKey: evicted) {
                startShedding()
                victim.close(promise: nil)
                count { $0.evicted += 1 }
            }
            peak = max(peak, table.count)
            count { $0.open = table.count }
            return true
        }
    }

    func touch(_ id: ObjectIdentifier) {
        loop.preconditionInEventLoop()
        table.touch(id)
    }

    func setBusy(_ id: ObjectIdentifier, _ busy: Bool) {
        loop.preconditionInEventLoop()
        table.setBusy(id, busy)
    }

    func timedOut() { count { $0.timedOut += 1 } }

    /// The connection closed (by either side, or evicted).
    func closed(_ id: ObjectIdentifier) {
        loop.preconditionInEventLoop()
        table.remove(id)
        channels.removeValue(forKey: id)
        count { $0.open = table.count }
        if let since = sheddingSince, table.count <= limits.maxConnections / 8 {
            sheddingSince = nil
            let now = stats
            logger.notice(
                "HTTP connections back under the caps",
                metadata: ["evicted": "\(now.evicted - since.evicted)", "refused": "\(now.refused - since.refused)"])
        }
        maybeTrimMemory()
    }

    /// The connection counters, mirrored into the node's metrics before each export.
    func collectMetrics(into m: GatewayMetrics) {
        let s = stats
        m.gauge("amars_http_connections").record(Int64(s.open))
        m.mirror("amars_http_connections_evicted_total", total: Int(s.evicted))
        m.mirror("amars_http_connections_refused_total", total: Int(s.refused))
        m.mirror("amars_http_requests_timed_out_total", total: Int(s.timedOut))
    }

    private func startShedding() {
        guard sheddingSince == nil else { return }
        sheddingSince = stats
        logger.warning(
            "HTTP connections at a cap: evicting idle ones",
            metadata: [
                "open": "\(table.count)", "max": "\(limits.maxConnections)",
                "perSource": "\(limits.maxConnectionsPerSource)",
            ])
    }

    private func count(_ change: (inout HTTPServer.ConnectionStats) -> Void) {
        lock.lock()
        change(&counters)
        lock.unlock()
    }

    /// After a flood the allocator keeps the memory its connections used (glibc returns little of it by
    /// itself), so a gateway that was flooded once would stay that much larger. Once the connections have
    /// shrunk to an eighth of a flood's peak, and a second later (the closes settle), `malloc_trim` hands the
    /// free memory back. It takes milliseconds, and happens once per flood.
    private func maybeTrimMemory() {
        guard peak >= Self.floodSize, table.count <= peak / 8, !trimScheduled else { return }
        trimScheduled = true
        loop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            self.trimScheduled = false
            self.peak = self.table.count
            if let mallocTrim {
                _ = mallocTrim(0)
                self.count { $0.memoryTrims += 1 }
            }
        }
    }

    /// The rate-limit scope of a peer: its IPv4 address, or its IPv6 /64 (a single host commonly has a whole
    /// /64 to pick addresses from); an IPv4-mapped IPv6 address counts as the IPv4 address.
    static func source(of address: SocketAddress?) -> String {
        switch address {
        case .v4(let v4):
            var sin = v4.address
            return withUnsafeBytes(of: &sin.sin_addr) { $0.map { String($0) }.joined(separator: ".") }
        case .v6(let v6):
            var sin6 = v6.address
            let bytes = withUnsafeBytes(of: &sin6.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return bytes[12...].map { String($0) }.joined(separator: ".")
            }
            return bytes[0..<8].map { String($0, radix: 16) }.joined(separator: ":") + "/64"
        default:
            return "local"
        }
    }
}

/// glibc's `malloc_trim`, which Swift's Glibc module does not import; nil with another C library.
private let mallocTrim: (@convention(c) (Int) -> Int32)? = {
    guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
}()
