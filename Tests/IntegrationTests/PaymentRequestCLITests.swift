import Foundation
import XCTest

/// `amars request`: the URI, and a terminal QR code a phone could scan — checked by drawing the printed half
/// blocks into an image and reading it with `zbarimg`; mistakes are refused before anything is printed.
final class PaymentRequestCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-request" }

    /// The terminal drawing as a PBM image: each character is two stacked modules ("▀" top, "▄" bottom, "█"
    /// both), scaled up so the scanner sees clean edges.
    func image(ofTerminalQR text: String, scale: Int = 4) -> Data {
        let rows = text.split(separator: "\n").map { line in
            Array(line.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression))
        }.filter { !$0.isEmpty }
        var modules: [[Bool]] = []
        for row in rows {
            modules.append(row.map { $0 == "█" || $0 == "▀" })
            modules.append(row.map { $0 == "█" || $0 == "▄" })
        }
        let width = (modules.first?.count ?? 0) * scale
        var pbm = "P1\n\(width) \(modules.count * scale)\n"
        for row in modules {
            let line = row.flatMap { Array(repeating: $0 ? "1" : "0", count: scale) }.joined(separator: " ")
            for _ in 0..<scale { pbm += line + "\n" }
        }
        return Data(pbm.utf8)
    }

    func testTheTerminalQRCodeScansBackToTheRequest() throws {
        guard FileManager.default.fileExists(atPath: "/usr/bin/zbarimg") else {
            return XCTFail("zbarimg is missing: run scripts/install-deps.sh")
        }
        let key = path("shop.key")
        try ok(["key", "new", "--out", key])
        let shop = try ok(["address", "--key", key]).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = try ok([
            "request", "--to", shop, "--amount", "12.345", "--memo", "Bäckerei #9", "--svg", path("qr.svg"),
        ])
        let lines = out.split(separator: "\n", maxSplits: 1)
        let uri = String(lines[0])
        XCTAssertEqual(uri, "amarscity:\(shop)?amount=12.345&memo=B%C3%A4ckerei%20%239")
        let picture = path("terminal.pbm")
        FileManager.default.createFile(atPath: picture, contents: image(ofTerminalQR: String(lines[1])))
        let scanned = try Harness.run("/usr/bin/zbarimg", ["-q", "--raw", picture], timeout: 30)
        XCTAssertTrue(scanned.output.split(separator: "\n").contains(Substring(uri)), scanned.output)
        let svg = try String(contentsOfFile: path("qr.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<path d=\"M"), svg)

        try refused(["request", "--to", "amsc1nothing", "--amount", "1"], "is not an amsc address")
        try refused(["request", "--to", shop, "--amount", "1.0000001"], "6 decimals")
        try refused(["request", "--to", shop, "--memo", String(repeating: "x", count: 65)], "at most 64")
        let uriWithAmount = "amarscity:\(shop)?amount=1"
        try refused(["transfer", "--key", key, "--request", uriWithAmount, "--to", shop], "give one or the other")
        try refused(["transfer", "--key", key, "--request", uriWithAmount, "--amount", "2"], "fixes the amount")
        try refused(["transfer", "--key", key, "--request", "amarscity:\(shop)?req-expiry=5"], "does not understand")
        try refused(["transfer", "--key", key, "--request", "amarscity:\(shop)"], "give --amount")
    }
}
