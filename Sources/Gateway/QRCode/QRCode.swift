import CQREncode

/// A QR code symbol encoded by libqrencode (Debian's), drawn for a terminal or as SVG. Only the drawing is
/// ours: which modules are dark is libqrencode's answer, so what a scanner reads is what it encoded.
public struct QRCode: Sendable {
    /// Modules per side, without the quiet zone.
    public let size: Int
    /// Row-major, `true` for a dark module.
    public let modules: [Bool]
    /// The quiet zone the standard asks for around the symbol, in modules.
    public static let quietZone = 4

    public enum Failure: Error, CustomStringConvertible {
        /// Too long for the largest symbol at level M, or libqrencode could not allocate.
        case tooLong(Int)

        public var description: String {
            switch self {
            case .tooLong(let n): "\(n) bytes do not fit in a QR code"
            }
        }
    }

    /// Encodes `text` (as 8-bit bytes, case kept) at error-correction level M, in the smallest version it fits.
    public init(_ text: String) throws(Failure) {
        guard let symbol = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else {
            throw .tooLong(text.utf8.count)
        }
        defer { QRcode_free(symbol) }
        let width = Int(symbol.pointee.width)
        size = width
        modules = (0..<(width * width)).map { symbol.pointee.data[$0] & 1 == 1 }
    }

    public func isDark(x: Int, y: Int) -> Bool {
        x >= 0 && y >= 0 && x < size && y < size && modules[y * size + x]
    }

    /// Two rows per line with half blocks, dark on light whatever the terminal's colours (ANSI black on white),
    /// with the quiet zone, so a phone can scan it off the screen.
    public var terminal: String {
        let q = Self.quietZone
        var out = ""
        var y = -q
        while y < size + q {
            out += "\u{1B}[30;107m"
            for x in -q..<(size + q) {
                switch (isDark(x: x, y: y), isDark(x: x, y: y + 1)) {
                case (true, true): out += "█"
                case (true, false): out += "▀"
                case (false, true): out += "▄"
                case (false, false): out += " "
                }
            }
            out += "\u{1B}[0m\n"
            y += 2
        }
        return out
    }

    /// A standalone SVG: one path of unit squares on a white background with the quiet zone, scaled by the
    /// viewer (`shape-rendering` keeps module edges crisp).
    public func svg(pixelsPerModule: Int = 6) -> String {
        let side = size + 2 * Self.quietZone
        var path = ""
        for y in 0..<size {
            var x = 0
            while x < size {
                guard isDark(x: x, y: y) else {
                    x += 1
                    continue
                }
                var run = 1
                while isDark(x: x + run, y: y) { run += 1 }
                path += "M\(x + Self.quietZone) \(y + Self.quietZone)h\(run)v1h-\(run)z"
                x += run
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(side * pixelsPerModule)" height="\(side * pixelsPerModule)" \
            viewBox="0 0 \(side) \(side)" shape-rendering="crispEdges"><rect width="\(side)" height="\(side)" fill="#fff"/>\
            <path d="\(path)" fill="#000"/></svg>

            """
    }
}
