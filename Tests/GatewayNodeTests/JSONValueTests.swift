import AmarsCodec
import Foundation
import GatewayNode
import XCTest

/// The API's hand-built JSON: every string a client may read back is escaped as RFC 8259 asks, the plain ones
/// (hex, addresses, decimal amounts: nearly all of them) pass through whole, and a JSON parser nobody here wrote
/// reads back exactly what went in.
final class JSONValueTests: XCTestCase {
    func testStringsAreEscapedAndReadBackExactly() throws {
        let strings = [
            "", "plain", Hex.encode([UInt8](repeating: 0xAB, count: 32)), "quote \" inside", "back\\slash",
            "line\nbreak\r\ttab", "nul \u{0} and \u{1F} and del \u{7F}", "non-ASCII: é ✓ 🚲", "\"\\\"",
        ]
        let value = JSONValue.object(strings.enumerated().map { ("k\($0.offset) \"\u{1}", .string($0.element)) })
        let text = value.rendered
        XCTAssertTrue(text.contains("\"plain\""), text)
        XCTAssertTrue(text.contains("\"quote \\\" inside\""), text)
        XCTAssertTrue(text.contains("\\u0000"), text)
        XCTAssertTrue(text.contains("\\u001f"), text)
        XCTAssertTrue(text.contains("\\u007f"), text)
        XCTAssertTrue(text.contains("\"k0 \\\"\\u0001\""), text)
        XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, text)
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(value.bytes)) as? [String: String])
        for (i, s) in strings.enumerated() { XCTAssertEqual(parsed["k\(i) \"\u{1}"], s) }
        XCTAssertEqual(parsed.count, strings.count)
    }
}
