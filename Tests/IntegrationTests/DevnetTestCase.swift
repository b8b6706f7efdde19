import Foundation
import XCTest

/// A test that runs gateways: a fresh directory for their data (`directoryPrefix`-UUID), and every node killed
/// and the directory removed afterwards, whatever the test did (AMARS_KEEP_TEST_DATA keeps the directory).
class DevnetTestCase: XCTestCase {
    var dir: URL!
    var nodes: [MultiNodeTests.TestNode] = []

    var directoryPrefix: String { "amars-devnet" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(directoryPrefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        for n in nodes { n.kill() }
        if let dir, ProcessInfo.processInfo.environment["AMARS_KEEP_TEST_DATA"] == nil {
            try? FileManager.default.removeItem(at: dir)
        }
        super.tearDown()
    }
}
