import Foundation

/// The fleet's report as one self-contained HTML page: inline CSS and SVG plots, no script and nothing fetched,
/// so it opens from a file on a machine with no network. It is drawn from the JSON report itself (one source for
/// both). A live page (a run with no end) reloads itself every few seconds.
enum ReportPage {
    static func render(_ report: [String: Any], live: Bool) -> String {
        let configuration = report["configuration"] as? [String: String] ?? [:]
        let actions = report["actions"] as? [String: [String: Any]] ?? [:]
        let failures = report["failures"] as? [String: Int] ?? [:]
        let seconds = report["seconds"] as? Double ?? 0
        let total = actions.values.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        let failed = failures.values.reduce(0, +)
        let name = configuration["scenario"] ?? "fleet"

        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            \(live ? "<meta http-equiv=\"refresh\" content=\"5\">" : "")
            <title>amars-sim: \(escape(name))</title>
            <style>
            body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #1d2330; }
            h1 { font-size: 1.5em; margin-bottom: .2em } h2 { font-size: 1.15em; margin-top: 1.8em }
            table { border-collapse: collapse } td, th { padding: .25em .8em; border-bottom: 1px solid #dde; text-align: right }
            td:first-child, th:first-child { text-align: left }
            .ok { color: #17803d } .bad { color: #b3261e } .muted { color: #667 }
            svg { background: #fafbfd; border: 1px solid #e4e7ef; margin: .3em 0 } svg text { font: 11px system-ui, sans-serif; fill: #445 }
            .grid { display: flex; flex-wrap: wrap; gap: 1em }
            </style></head><body>
            <h1>amars-sim: \(escape(name))</h1>
            <p class="muted">\(escape(configuration.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: " · ")))</p>
            <p id="summary"><b>\(report["devicesOnline"] as? Int ?? 0)</b> devices online · <b>\(total)</b> actions in \(Int(seconds)) s
            (\(String(format: "%.1f", seconds > 0 ? Double(total) / seconds : 0)) per second) ·
            <b class="\(failed == 0 ? "ok" : "bad")">\(failed) failures</b>\(live ? " · <span class=\"muted\">live, reloads every 5 s</span>" : "")</p>

            """
        html +=
            "<h2>Actions</h2>\n<table id=\"actions\"><tr><th>action</th><th>count</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>\n"
        for (kind, a) in actions.sorted(by: { $0.key < $1.key }) {
            func cell(_ key: String) -> String { a[key].map { "\($0)" } ?? "" }
            html += "<tr><td>\(escape(kind))</td><td>\(cell("count"))</td><td>\(cell("p50Millis"))</td>"
            html += "<td>\(cell("p90Millis"))</td><td>\(cell("p99Millis"))</td><td>\(cell("maxMillis"))</td></tr>\n"
        }
        html += "</table>\n"

        html += "<h2>Throughput</h2>\n" + throughput(report)
        html += "<h2>Outcomes</h2>\n" + outcomes(actions, failures)
        html += "<h2>Latency</h2>\n<div class=\"grid\">\n"
        let bins = report["histogramBinsMillis"] as? [Double] ?? []
        for (kind, a) in actions.sorted(by: { $0.key < $1.key }) {
            guard let histogram = a["histogram"] as? [Int] else { continue }
            html += latency(kind, histogram, bins)
        }
        html += "</div>\n"
        if !failures.isEmpty {
            html += "<h2>Failures</h2>\n<ul id=\"failures\">\n"
            for (reason, n) in failures.sorted(by: { $0.key < $1.key }) {
                html += "<li class=\"bad\">\(n) × \(escape(reason))</li>\n"
            }
            html += "</ul>\n"
        }
        html += "</body></html>\n"
        return html
    }

    /// Actions per second over the run, with the events marked.
    private static func throughput(_ report: [String: Any]) -> String {
        let timeline = report["timeline"] as? [[String: Any]] ?? []
        let events = report["events"] as? [[String: Any]] ?? []
        let width = 960.0
        let height = 220.0
        let pad = 36.0
        var perSecond: [Int: Int] = [:]
        for entry in timeline {
            perSecond[entry["second"] as? Int ?? 0] = (entry["actions"] as? [String: Int] ?? [:]).values.reduce(0, +)
        }
        // Every second from the first to the last, a quiet one (an outage) at zero.
        let seconds = perSecond.keys.sorted()
        let points: [(Double, Double)] =
            seconds.isEmpty
            ? [] : (seconds[0]...seconds[seconds.count - 1]).map { (Double($0), Double(perSecond[$0] ?? 0)) }
        let first = points.first?.0 ?? 0
        // A second's slot runs to the next second: an event late in the last one is still on the plot.
        let last = max((points.last?.0 ?? 0) + 1, first + 1)
        let top = max(points.map(\.1).max() ?? 1, 1)
        func x(_ s: Double) -> Double { pad + (s - first) / (last - first) * (width - 2 * pad) }
        func y(_ v: Double) -> Double { height - pad - v / top * (height - 2 * pad) }
        var svg =
            "<svg id=\"throughput\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        svg +=
            "<text x=\"4\" y=\"14\">actions/s (max \(Int(top)))</text><text x=\"\(Int(width - 120))\" y=\"\(Int(height - 8))\">\(Int(last - first)) s shown</text>\n"
        svg +=
            "<line x1=\"\(pad)\" y1=\"\(height - pad)\" x2=\"\(width - pad)\" y2=\"\(height - pad)\" stroke=\"#99a\"/>\n"
        if !points.isEmpty {
            let path = points.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            svg +=
                "<polyline class=\"series\" fill=\"none\" stroke=\"#2f6fdf\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
        }
        for event in events {
            let s = event["second"] as? Double ?? 0
            guard s >= first, s <= last else { continue }
            let ex = x(s)
            svg +=
                "<line class=\"event\" x1=\"\(ex)\" y1=\"\(pad)\" x2=\"\(ex)\" y2=\"\(height - pad)\" stroke=\"#b3261e\" stroke-dasharray=\"4 3\">"
            svg += "<title>\(escape(event["text"] as? String ?? "")) at \(Int(s - first)) s</title></line>\n"
        }
        return svg + "</svg>\n"
    }

    /// A bar per action kind, and one per failure reason.
    private static func outcomes(_ actions: [String: [String: Any]], _ failures: [String: Int]) -> String {
        let rows =
            actions.sorted { $0.key < $1.key }.map { ($0.key, $0.value["count"] as? Int ?? 0, false) }
            + failures.sorted { $0.key < $1.key }.map { ($0.key, $0.value, true) }
        let top = Double(max(rows.map(\.1).max() ?? 1, 1))
        let rowHeight = 20
        var svg = "<svg id=\"outcomes\" width=\"960\" height=\"\(rows.count * rowHeight + 10)\">\n"
        for (i, row) in rows.enumerated() {
            let y = i * rowHeight + 5
            let w = Int(Double(row.1) / top * 560)
            svg += "<text x=\"4\" y=\"\(y + 14)\">\(escape(row.0))</text>"
            svg +=
                "<rect class=\"bar\" x=\"320\" y=\"\(y + 3)\" width=\"\(max(w, 1))\" height=\"14\" fill=\"\(row.2 ? "#b3261e" : "#2f9e60")\"/>"
            svg += "<text x=\"\(326 + w)\" y=\"\(y + 14)\">\(row.1)</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// One action kind's latency histogram.
    private static func latency(_ kind: String, _ histogram: [Int], _ bins: [Double]) -> String {
        let width = 330.0
        let height = 150.0
        let top = Double(max(histogram.max() ?? 1, 1))
        let barWidth = (width - 20) / Double(max(histogram.count, 1))
        var svg =
            "<svg class=\"latency\" width=\"\(Int(width))\" height=\"\(Int(height))\"><text x=\"6\" y=\"14\">\(escape(kind)) (ms)</text>\n"
        for (i, n) in histogram.enumerated() {
            let h = Double(n) / top * (height - 50)
            let x = 10 + Double(i) * barWidth
            let label = i < bins.count ? "<\(Int(bins[i]))" : "slower"
            svg += String(
                format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#2f6fdf\">", x,
                height - 30 - h, barWidth - 2, h)
            svg += "<title>\(escape(label)) ms: \(n)</title></rect>"
            if i % 2 == 0 {
                svg += String(format: "<text x=\"%.1f\" y=\"%.1f\">", x, height - 16) + escape(label) + "</text>"
            }
            svg += "\n"
        }
        return svg + "</svg>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
