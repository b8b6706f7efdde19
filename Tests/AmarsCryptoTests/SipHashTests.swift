import AmarsCodec
import Foundation
import XCTest

@testable import AmarsCrypto

/// SipHash-2-4 against all 64 outputs of the reference implementation (Vectors/siphash24_sip64.txt).
final class SipHashTests: XCTestCase {
    func testReferenceVectors() throws {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: "siphash24_sip64", withExtension: "txt", subdirectory: "Vectors"))
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(lines.count, 64)
        let key = (0..<16).map { UInt8($0) }
        let sip = SipHash24(key: key)
        for (i, line) in lines.enumerated() {
            let message = (0..<i).map { UInt8($0) }
            var expected: UInt64 = 0
            let bytes = try Hex.decode(String(line))
            for (j, b) in bytes.enumerated() { expected |= UInt64(b) << UInt64(8 * j) }
            XCTAssertEqual(sip.hash(message), expected, "message of \(i) bytes")
        }
        XCTAssertNotEqual(SipHash24(k0: 1, k1: 0).hash([]), sip.hash([]), "the key matters")
    }
}
