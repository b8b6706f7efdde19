import Foundation
import XCTest

@testable import GatewayNode

/// Every metric the gateway records has its help text (a metric without one trips an assertion the first time a
/// debug build records it, which only a scrape of a gateway with that door open would show) and is named in the
/// README's metrics list, read from the sources so a new metric cannot skip either.
final class MetricNamesTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testEveryRecordedMetricHasHelpTextAndIsInTheReadme() throws {
        let sources = Self.root.appendingPathComponent("Sources/Gateway/GatewayNode")
        let files = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0.hasSuffix(".swift") }
        let call = #/(?:gauge|mirror|timer|counter|counterFamily|recorder)\(\s*"(amars_[a-z_]+)"/#
        var labels = Set<String>()
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: call) { labels.insert(String(match.1)) }
        }
        // The sources are really read: a few metrics every gateway has.
        XCTAssertTrue(
            labels.isSuperset(of: ["amars_head_height", "amars_http_requests_total", "amars_mqtt_connected"]),
            "\(labels.sorted())")
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        for label in labels.sorted() {
            XCTAssertNotNil(GatewayMetrics.help[label], "\(label) has no help text in GatewayMetrics.help")
            XCTAssertTrue(readme.contains("`\(label)"), "\(label) is not in the README's metrics list")
        }
        // And no help text is left for a metric nobody records.
        XCTAssertEqual(Set(GatewayMetrics.help.keys).subtracting(labels), [])
    }
}
