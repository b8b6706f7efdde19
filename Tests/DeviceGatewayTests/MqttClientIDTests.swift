import Foundation
import XCTest

@testable import DeviceGateway

/// The bridge's client id: created once per data directory, the same after a restart, different elsewhere, and
/// a file someone edited is refused rather than used.
final class MqttClientIDTests: XCTestCase {
    func testTheIdIsPersistentUniqueAndChecked() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("clientid-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let dirs = ["a", "b"].map { base.appendingPathComponent($0).path }
        for dir in dirs { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let first = try MqttClientID.persistent(in: dirs[0])
        XCTAssertTrue(MqttClientID.isValid(first), first)
        XCTAssertEqual(try MqttClientID.persistent(in: dirs[0]), first)
        XCTAssertNotEqual(try MqttClientID.persistent(in: dirs[1]), first)

        for bad in ["amars-gateway", "amars-gateway-XYZ", first.uppercased(), first + "0", "amars gateway"] {
            try bad.write(toFile: "\(dirs[1])/\(MqttClientID.fileName)", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try MqttClientID.persistent(in: dirs[1]), bad) {
                XCTAssertTrue("\($0)".contains("delete it"), "\($0)")
            }
        }
        XCTAssertThrowsError(try MqttClientID.persistent(in: base.appendingPathComponent("missing").path))
    }
}
