/// The slice of DER (X.690) an X.509 certificate needs: definite lengths in their shortest form, nothing after
/// the outermost value. Written for devices (no Foundation, no existentials); the host tests check what it
/// writes against OpenSSL and swift-asn1.
public enum DER {
    public static let boolean: UInt8 = 0x01
    public static let integer: UInt8 = 0x02
    public static let bitString: UInt8 = 0x03
    public static let octetString: UInt8 = 0x04
    public static let objectIdentifier: UInt8 = 0x06
    public static let utf8String: UInt8 = 0x0C
    public static let utcTime: UInt8 = 0x17
    public static let generalizedTime: UInt8 = 0x18
    public static let sequence: UInt8 = 0x30
    public static let set: UInt8 = 0x31

    /// A context-specific constructed tag ([n] EXPLICIT).
    public static func explicit(_ n: UInt8) -> UInt8 { 0xA0 | n }
    /// A context-specific primitive tag ([n] IMPLICIT of a primitive type).
    public static func implicit(_ n: UInt8) -> UInt8 { 0x80 | n }

    /// Tag, length and `content`.
    public static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out = [tag]
        let n = content.count
        if n < 0x80 {
            out.append(UInt8(n))
        } else if n <= 0xFF {
            out += [0x81, UInt8(n)]
        } else {
            out += [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
        }
        return out + content
    }

    public static func sequence(_ parts: [[UInt8]]) -> [UInt8] {
        var content: [UInt8] = []
        for p in parts { content += p }
        return tlv(sequence, content)
    }

    /// A non-negative INTEGER from big-endian magnitude bytes (leading zeros dropped, a 0x00 added when the top
    /// bit is set so the value stays positive).
    public static func unsignedInteger(_ magnitude: [UInt8]) -> [UInt8] {
        var bytes = Array(magnitude.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return tlv(integer, bytes)
    }

    public static func smallInteger(_ value: UInt8) -> [UInt8] { unsignedInteger([value]) }

    /// An OBJECT IDENTIFIER already in its content encoding (the constants in ``OID``).
    public static func oid(_ content: [UInt8]) -> [UInt8] { tlv(objectIdentifier, content) }

    /// A BIT STRING with no unused bits.
    public static func bits(_ bytes: [UInt8]) -> [UInt8] { tlv(bitString, [0] + bytes) }

    /// A named-bit BIT STRING (X.509 key usage) of the first eight bits, bit 0 the most significant, trailing
    /// zero bits dropped as DER requires.
    public static func namedBits(_ byte: UInt8) -> [UInt8] {
        guard byte != 0 else { return tlv(bitString, [0]) }
        return tlv(bitString, [UInt8(byte.trailingZeroBitCount), byte])
    }
}

/// Why DER bytes were refused.
public enum DERError: Error, Equatable, Sendable {
    /// The bytes end inside a value.
    case truncated
    /// A length in long form where the short form fits, with a leading zero byte, indefinite, or over 64 KiB.
    case badLength
    /// Another tag than the one the structure has there.
    case unexpectedTag(expected: UInt8, got: UInt8)
    /// Bytes left after the value that should have ended the input or its parent.
    case trailingBytes
    /// A value whose content breaks its type's DER rules (an INTEGER with a redundant leading byte, a BOOLEAN
    /// that is not 0x00 or 0xFF, a BIT STRING with unused bits where none may be).
    case badContent
}

/// Reads DER values from a buffer, each checked against the shortest-form rules, never past its end.
public struct DERReader {
    public let bytes: [UInt8]
    public private(set) var position: Int
    let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
    }

    init(bytes: [UInt8], start: Int, end: Int) {
        self.bytes = bytes
        self.position = start
        self.end = end
    }

    public var isAtEnd: Bool { position == end }

    /// The next value's tag, without reading it.
    public func peekTag() -> UInt8? { position < end ? bytes[position] : nil }

    /// Reads one value: its tag and the range of its content in ``bytes``; the range of the whole TLV too.
    public mutating func read() throws(CertificateError) -> (tag: UInt8, content: Range<Int>, whole: Range<Int>) {
        let start = position
        guard end - position >= 2 else { throw .malformed(.truncated) }
        let tag = bytes[position]
        // Multi-byte tags (low five bits all set) never occur in a certificate.
        guard tag & 0x1F != 0x1F else { throw .malformed(.badContent) }
        var length = Int(bytes[position + 1])
        position += 2
        if length >= 0x80 {
            let count = length & 0x7F
            guard count >= 1, count <= 2 else { throw .malformed(.badLength) }
            guard end - position >= count else { throw .malformed(.truncated) }
            length = 0
            for i in 0..<count { length = length << 8 | Int(bytes[position + i]) }
            guard bytes[position] != 0, length >= 0x80 else { throw .malformed(.badLength) }
            position += count
        }
        guard end - position >= length else { throw .malformed(.truncated) }
        let content = position..<(position + length)
        position += length
        return (tag, content, start..<position)
    }

    /// Reads a value with tag `tag` and returns its content.
    public mutating func read(_ tag: UInt8) throws(CertificateError) -> Range<Int> {
        let value = try read()
        guard value.tag == tag else { throw .malformed(.unexpectedTag(expected: tag, got: value.tag)) }
        return value.content
    }

    /// A reader over the content of the next value, which must have tag `tag` (a SEQUENCE, a SET, an [n]).
    public mutating func nested(_ tag: UInt8) throws(CertificateError) -> DERReader {
        let content = try read(tag)
        return DERReader(bytes: bytes, start: content.lowerBound, end: content.upperBound)
    }

    public mutating func readBytes(_ tag: UInt8) throws(CertificateError) -> [UInt8] { Array(bytes[try read(tag)]) }

    /// A non-negative INTEGER's magnitude (at most `maxBytes`), in minimal DER form.
    public mutating func readUnsignedInteger(maxBytes: Int) throws(CertificateError) -> [UInt8] {
        let content = try read(DER.integer)
        guard !content.isEmpty else { throw .malformed(.badContent) }
        let first = bytes[content.lowerBound]
        guard first & 0x80 == 0 else { throw .malformed(.badContent) }  // negative
        if content.count > 1 {
            // 0x00 is allowed in front only to keep a top bit clear.
            guard first != 0 || bytes[content.lowerBound + 1] & 0x80 != 0 else { throw .malformed(.badContent) }
        }
        let magnitude = Array(bytes[content].drop { $0 == 0 })
        guard magnitude.count <= maxBytes else { throw .malformed(.badContent) }
        return magnitude
    }

    public mutating func readBoolean() throws(CertificateError) -> Bool {
        let content = try read(DER.boolean)
        guard content.count == 1 else { throw .malformed(.badContent) }
        switch bytes[content.lowerBound] {
        case 0x00: return false
        case 0xFF: return true
        default: throw .malformed(.badContent)
        }
    }

    /// A BIT STRING's bytes when it has no unused bits.
    public mutating func readBits() throws(CertificateError) -> [UInt8] {
        let content = try read(DER.bitString)
        guard !content.isEmpty, bytes[content.lowerBound] == 0 else { throw .malformed(.badContent) }
        return Array(bytes[(content.lowerBound + 1)..<content.upperBound])
    }

    /// A named-bit BIT STRING of at most eight bits (X.509 key usage), in DER's shortest form.
    public mutating func readNamedBits() throws(CertificateError) -> UInt8 {
        let content = try read(DER.bitString)
        guard !content.isEmpty else { throw .malformed(.badContent) }
        let unused = bytes[content.lowerBound]
        if content.count == 1 {
            guard unused == 0 else { throw .malformed(.badContent) }
            return 0
        }
        guard content.count == 2, unused < 8 else { throw .malformed(.badContent) }
        let value = bytes[content.lowerBound + 1]
        // DER: the last bit written is a one, so `unused` is exactly its trailing zero count.
        guard value != 0, Int(unused) == value.trailingZeroBitCount else { throw .malformed(.badContent) }
        return value
    }

    public func finish() throws(CertificateError) { guard isAtEnd else { throw .malformed(.trailingBytes) } }
}
