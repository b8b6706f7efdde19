import AmarsCodec
import Foundation
import Ledger

/// What the fleet did, shared by every device's task: actions by kind with their latencies, refusals the
/// devices got right, and failures by reason. The live progress line and the JSON report both read it.
final class FleetStats: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private let started = Date()
    private var actions: [String: Action] = [:]
    private var failures: [String: Int] = [:]
    private var online = 0
    /// Sums the checks at the end need (the fees the owner paid for its closes, in base units).
    private var totals: [String: UInt64] = [:]
    private var receipts: [SaleReceipt] = []
    /// Actions completed per second (Unix time, so the reports of several processes line up), by kind: the last
    /// hour of them.
    private var timeline: [Int: [String: Int]] = [:]
    /// What happened to the fleet from outside (a revocation, a fault), at Unix seconds.
    private var events: [(seconds: Double, text: String)] = []
    static let timelineSeconds = 3_600

    /// What a terminal kept for an order it showed paid.
    struct SaleReceipt {
        let terminal: Address
        let id: Bytes32
        let height: UInt64
        let amount: UInt64
    }

    /// Latencies of one action kind, the most recent `keep` of them (a devnet fleet runs for days).
    struct Action {
        var count = 0
        var latencies: [Double] = []
        var next = 0
        /// Every latency ever recorded, by ``FleetStats/bins``: the histogram survives where the kept samples roll.
        var histogram = [Int](repeating: 0, count: FleetStats.bins.count + 1)
        static let keep = 20_000

        mutating func add(_ millis: Double?) {
            count += 1
            guard let millis else { return }
            histogram[FleetStats.bins.firstIndex { millis < $0 } ?? FleetStats.bins.count] += 1
            if latencies.count < Self.keep {
                latencies.append(millis)
            } else {
                latencies[next] = millis
                next = (next + 1) % Self.keep
            }
        }

        func percentiles(_ ps: [Double]) -> [Int] { FleetStats.percentiles(latencies, ps) }
    }

    /// `ps` of `values`, sorted once (nearest rank; zeros when there are none).
    static func percentiles(_ values: [Double], _ ps: [Double]) -> [Int] {
        let sorted = values.sorted()
        return ps.map { p in sorted.isEmpty ? 0 : Int(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))])
        }
    }

    func deviceOnline() { lock.withLock { online += 1 } }

    /// Upper edges of the latency histogram's bins, in milliseconds (the last bin is everything slower).
    static let bins: [Double] = [25, 50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800]

    /// A completed action of `kind`, with its latency when it has one.
    func record(_ kind: String, millis: Double? = nil) {
        lock.withLock {
            actions[kind, default: Action()].add(millis)
            let second = Int(Date().timeIntervalSince1970)
            timeline[second, default: [:]][kind, default: 0] += 1
            if timeline.count > Self.timelineSeconds + 60 {
                timeline = timeline.filter { $0.key > second - Self.timelineSeconds }
            }
        }
    }

    /// ``mark(_:)``, unless the same text was marked in the last 10 s (many devices see one outage).
    func markOnce(_ text: String) {
        lock.withLock {
            let now = Date().timeIntervalSince1970
            guard !events.contains(where: { $0.text == text && now - $0.seconds < 10 }) else { return }
            events.append((now, text))
        }
    }

    /// Something done to the fleet from outside, marked on the report's timeline.
    func mark(_ text: String) {
        lock.withLock {
            if events.count >= 500 { events.removeFirst(100) }
            events.append((Date().timeIntervalSince1970, text))
        }
    }

    /// Keeps the most recent 10,000 receipts (a devnet fleet runs for days).
    func keep(_ receipt: SaleReceipt) {
        lock.withLock {
            if receipts.count >= 10_000 { receipts.removeFirst(1_000) }
            receipts.append(receipt)
        }
    }

    var saleReceipts: [SaleReceipt] { lock.withLock { receipts } }

    func add(_ amount: UInt64, to total: String) { lock.withLock { totals[total, default: 0] += amount } }

    /// A total read from elsewhere (a transport's counters), replaced at each report.
    func set(_ amount: UInt64, for total: String) { lock.withLock { totals[total] = amount } }

    func fail(_ reason: String) { lock.withLock { failures[reason, default: 0] += 1 } }

    var failureCount: Int { lock.withLock { failures.values.reduce(0, +) } }

    func count(_ kind: String) -> Int { lock.withLock { actions[kind]?.count ?? 0 } }

    /// One line: devices online, actions per kind with p50/p99, failures by reason.
    func progressLine(devices: Int) -> String {
        lock.withLock {
            let seconds = Date().timeIntervalSince(started)
            let total = actions.values.reduce(0) { $0 + $1.count }
            var parts = [
                "t=\(Int(seconds))s", "devices \(online)/\(devices) online",
                String(format: "%.1f actions/s", seconds > 0 ? Double(total) / seconds : 0),
            ]
            for (kind, a) in actions.sorted(by: { $0.key < $1.key }) {
                guard !a.latencies.isEmpty else {
                    parts.append("\(kind) \(a.count)")
                    continue
                }
                let p = a.percentiles([0.5, 0.99])
                parts.append("\(kind) \(a.count) (p50 \(p[0]) ms, p99 \(p[1]) ms)")
            }
            let failed = failures.sorted(by: { $0.key < $1.key }).map { "\($0.key): \($0.value)" }
            parts.append(failed.isEmpty ? "0 failures" : "failures {\(failed.joined(separator: ", "))}")
            return parts.joined(separator: "; ")
        }
    }

    /// The machine-readable summary: per kind count, p50/p90/p99 and max latency; failures by reason.
    func report(configuration: [String: String]) -> [String: Any] {
        lock.withLock {
            var kinds: [String: Any] = [:]
            for (kind, a) in actions {
                var entry: [String: Any] = ["count": a.count]
                if !a.latencies.isEmpty {
                    entry["histogram"] = a.histogram
                    // Enough of the kept latencies, evenly spread, for `merge` to recompute percentiles.
                    let step = max(1, a.latencies.count / 2_000)
                    entry["sample"] = stride(from: 0, to: a.latencies.count, by: step).map { a.latencies[$0].rounded() }
                    let p = a.percentiles([0.5, 0.9, 0.99, 1])
                    (entry["p50Millis"], entry["p90Millis"], entry["p99Millis"], entry["maxMillis"]) = (
                        p[0], p[1], p[2], p[3]
                    )
                }
                kinds[kind] = entry
            }
            let kept = receipts.map {
                [
                    "terminal": $0.terminal.bech32, "transaction": Hex.encode($0.id.bytes), "height": $0.height,
                    "amount": $0.amount,
                ] as [String: Any]
            }
            let seconds = timeline.keys.sorted().map { second in
                ["second": second, "actions": timeline[second] ?? [:]] as [String: Any]
            }
            return [
                "configuration": configuration, "seconds": Date().timeIntervalSince(started), "devicesOnline": online,
                "actions": kinds, "failures": failures, "receipts": kept, "totals": totals,
                "histogramBinsMillis": Self.bins,
                "timeline": seconds, "events": events.map { ["second": $0.seconds, "text": $0.text] as [String: Any] },
            ]
        }
    }
}

/// Milliseconds from `start` to now, on the monotonic clock.
func millis(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
}
