import ArgumentParser
import Foundation

/// `amars-sim merge`: the reports of one fleet run in several processes (`run --shard I/N`, on one machine or
/// many) joined into one, as if one process had run it: counts, failures and timelines added up, latency
/// percentiles recomputed from the shards' samples, receipts and events put together.
struct MergeReports: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the JSON reports of a fleet's shards into one report (JSON and HTML).",
        discussion: """
              amars-sim run --shard 0/2 --report a.json ...  &  amars-sim run --shard 1/2 --report b.json ...
              amars-sim merge a.json b.json --report fleet.json --html fleet.html
            """)

    @Argument(help: "The shards' JSON reports.")
    var reports: [String]

    @Option(help: "The merged JSON report.")
    var report: String?

    @Option(help: "The merged HTML report.")
    var html: String?

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("name the shards' reports to merge") }
        guard report != nil || html != nil else {
            throw ValidationError("name an output: --report F.json or --html F.html")
        }
    }

    func run() throws {
        var shards: [[String: Any]] = []
        for path in reports {
            do { shards.append(try ReportFiles.read(path)) } catch { throw ValidationError(error.message) }
        }
        let bins = shards[0]["histogramBinsMillis"] as? [Double] ?? []
        for (path, shard) in zip(reports, shards) where (shard["histogramBinsMillis"] as? [Double] ?? []) != bins {
            throw ValidationError("\(path): its latency bins differ from \(reports[0])'s (another amars-sim version)")
        }
        let merged = Self.merge(shards, bins: bins)
        if let report { ReportFiles.write(ReportFiles.json(merged), to: report) }
        if let html { ReportFiles.write(Array(ReportPage.render(merged, live: false).utf8), to: html) }
        let actions = merged["actions"] as? [String: [String: Any]] ?? [:]
        let failures = (merged["failures"] as? [String: Int] ?? [:]).values.reduce(0, +)
        print(
            "merged \(shards.count) reports: \(merged["devicesOnline"] as? Int ?? 0) devices, "
                + "\(actions.values.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }) actions, \(failures) failures")
    }

    static func merge(_ shards: [[String: Any]], bins: [Double]) -> [String: Any] {
        var counts: [String: Int] = [:]
        var histograms: [String: [Int]] = [:]
        var samples: [String: [Double]] = [:]
        var failures: [String: Int] = [:]
        var totals: [String: UInt64] = [:]
        var timeline: [Int: [String: Int]] = [:]
        var events: [[String: Any]] = []
        var receipts: [[String: Any]] = []
        var online = 0
        var seconds = 0.0
        for shard in shards {
            for (kind, a) in shard["actions"] as? [String: [String: Any]] ?? [:] {
                counts[kind, default: 0] += a["count"] as? Int ?? 0
                if let h = a["histogram"] as? [Int] {
                    let old = histograms[kind] ?? [Int](repeating: 0, count: h.count)
                    histograms[kind] = zip(old, h).map { $0 + $1 }
                }
                samples[kind, default: []] += (a["sample"] as? [Double]) ?? []
            }
            for (reason, n) in shard["failures"] as? [String: Int] ?? [:] { failures[reason, default: 0] += n }
            for (name, n) in shard["totals"] as? [String: UInt64] ?? [:] { totals[name, default: 0] += n }
            for entry in shard["timeline"] as? [[String: Any]] ?? [] {
                guard let second = entry["second"] as? Int else { continue }
                for (kind, n) in entry["actions"] as? [String: Int] ?? [:] {
                    timeline[second, default: [:]][kind, default: 0] += n
                }
            }
            events += shard["events"] as? [[String: Any]] ?? []
            receipts += shard["receipts"] as? [[String: Any]] ?? []
            online += shard["devicesOnline"] as? Int ?? 0
            seconds = max(seconds, shard["seconds"] as? Double ?? 0)
        }
        var actions: [String: Any] = [:]
        for (kind, count) in counts {
            var entry: [String: Any] = ["count": count]
            if let h = histograms[kind] { entry["histogram"] = h }
            let sample = samples[kind] ?? []
            if !sample.isEmpty {
                let p = FleetStats.percentiles(sample, [0.5, 0.9, 0.99, 1])
                (entry["p50Millis"], entry["p90Millis"], entry["p99Millis"], entry["maxMillis"]) = (
                    p[0], p[1], p[2], p[3]
                )
                entry["sample"] = sample
            }
            actions[kind] = entry
        }
        var configuration = shards[0]["configuration"] as? [String: String] ?? [:]
        configuration["shard"] = "\(shards.count) reports merged"
        return [
            "configuration": configuration, "seconds": seconds, "devicesOnline": online, "actions": actions,
            "failures": failures, "totals": totals, "receipts": receipts, "histogramBinsMillis": bins,
            "timeline": timeline.keys.sorted().map { ["second": $0, "actions": timeline[$0] ?? [:]] as [String: Any] },
            "events": events.sorted { ($0["second"] as? Double ?? 0) < ($1["second"] as? Double ?? 0) },
        ]
    }
}
