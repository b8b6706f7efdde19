import Foundation

/// The report files: JSON as the fleet and `merge` write it, each file replaced whole.
enum ReportFiles {
    static func json(_ report: [String: Any]) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        else { return Array("{}".utf8) }
        return Array(data)
    }

    /// Written whole, then renamed: a reader never sees half a report.
    static func write(_ bytes: [UInt8], to path: String) {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            emit("report: cannot write \(path)")
            return
        }
        _ = rename(temporary, path)
    }

    /// A report file as `run` wrote it; a file that is not one is refused naming the file.
    static func read(_ path: String) throws(ScenarioError) -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScenarioError("\(path): cannot read the file")
        }
        guard let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            report["actions"] is [String: Any], report["configuration"] is [String: String]
        else { throw ScenarioError("\(path): not an amars-sim report (JSON with 'actions' and 'configuration')") }
        return report
    }
}
