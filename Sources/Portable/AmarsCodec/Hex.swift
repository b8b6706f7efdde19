/// Why a hex string was refused.
///
/// Hex reaches us from operators (CLI arguments, config files, JSON API bodies), so each case says what to
/// fix without echoing the offending text back.
public enum HexError: Error, Equatable, Sendable {
    /// A byte needs two digits; an odd count means a digit was lost or added.
    case oddLength
    /// The byte at `offset` of the UTF-8 text (counting any "0x" prefix) is not a hex digit, so the caller can
    /// point at it.
    case invalidCharacter(offset: Int)
    /// The text would decode to more than `maxBytes` bytes; refused before anything is allocated.
    case tooLong
}

/// Base 16 for hashes, keys and raw frames in logs, JSON and the CLI.
///
/// Output is always lowercase so that two renderings of the same bytes compare equal as strings; input is
/// lenient (either case, optional "0x") because people paste it from many tools.
public enum Hex {
    /// Lowercase, no prefix, two digits per byte.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount &* 2)
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The same digits appended as ASCII bytes, for a device that builds a query without a String.
    public static func append(_ bytes: some Sequence<UInt8>, to out: inout [UInt8]) {
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0x0f))
        }
    }

    /// Decodes hex digits of either case, with or without a leading "0x" or "0X".
    ///
    /// `maxBytes` bounds the allocation by what the caller expects rather than by what the sender chose to
    /// send; the length is checked before the output buffer is reserved.
    public static func decode(_ text: String, maxBytes: Int = 1 << 20) throws(HexError) -> [UInt8] {
        let utf8 = text.utf8
        let total = utf8.count
        var start = 0
        if total >= 2 {
            var it = utf8.makeIterator()
            if it.next() == 0x30, let x = it.next(), x == 0x78 || x == 0x58 {
                start = 2
            }
        }
        let digits = total - start
        guard digits / 2 <= maxBytes else { throw .tooLong }
        guard digits & 1 == 0 else { throw .oddLength }

        var out: [UInt8] = []
        out.reserveCapacity(digits / 2)
        var offset = 0
        var high: UInt8 = 0
        for char in utf8 {
            if offset >= start {
                guard let value = nibble(char) else { throw .invalidCharacter(offset: offset) }
                if (offset - start) & 1 == 0 {
                    high = value
                } else {
                    out.append(high << 4 | value)
                }
            }
            offset += 1
        }
        return out
    }

    @inline(__always)
    static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? 0x30 + value : 0x61 + value - 10
    }

    @inline(__always)
    static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case 0x30...0x39: return char - 0x30
        case 0x61...0x66: return char - 0x61 + 10
        case 0x41...0x46: return char - 0x41 + 10
        default: return nil
        }
    }
}
