/// Reads one sample from Prometheus text: `series` is the metric name with its labels exactly as exported
/// (`amars_http_requests_total{code="200"}`), the value a number in any of the format's spellings (`3`, `3.0`).
/// Nil when the series is absent or its value is not a number.
public enum PrometheusSample {
    public static func value(_ series: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1).split(separator: " ").first ?? "")
        }
        return nil
    }
}
