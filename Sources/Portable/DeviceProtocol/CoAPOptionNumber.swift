/// A CoAP option number (RFC 7252 §5.4.6, §12.2) and what the registry says about it.
///
/// A struct over the raw number rather than an enum, so an option this module does not know still decodes
/// and re-encodes; the properties derived from the number's bits hold for every option, known or not.
public struct CoAPOptionNumber: Equatable, Hashable, Comparable, Sendable {
    public var rawValue: UInt16

    @inlinable
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    @inlinable
    public static func < (lhs: CoAPOptionNumber, rhs: CoAPOptionNumber) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Odd numbers are critical: a receiver that does not understand one must not process the message (§5.4.1).
    @inlinable
    public var isCritical: Bool { rawValue & 1 == 1 }

    /// Bit 1: a proxy that does not understand the option must not forward the message (§5.4.2).
    @inlinable
    public var isUnsafe: Bool { rawValue & 2 == 2 }

    /// Bits 2–4 all set: not part of a cache key (§5.4.2).
    @inlinable
    public var isNoCacheKey: Bool { rawValue & 0x1E == 0x1C }

    // MARK: - Registered numbers

    public static let ifMatch = CoAPOptionNumber(rawValue: 1)
    public static let uriHost = CoAPOptionNumber(rawValue: 3)
    public static let eTag = CoAPOptionNumber(rawValue: 4)
    public static let ifNoneMatch = CoAPOptionNumber(rawValue: 5)
    /// RFC 7641.
    public static let observe = CoAPOptionNumber(rawValue: 6)
    public static let uriPort = CoAPOptionNumber(rawValue: 7)
    public static let locationPath = CoAPOptionNumber(rawValue: 8)
    public static let uriPath = CoAPOptionNumber(rawValue: 11)
    public static let contentFormat = CoAPOptionNumber(rawValue: 12)
    public static let maxAge = CoAPOptionNumber(rawValue: 14)
    public static let uriQuery = CoAPOptionNumber(rawValue: 15)
    public static let accept = CoAPOptionNumber(rawValue: 17)
    public static let locationQuery = CoAPOptionNumber(rawValue: 20)
    /// RFC 7959.
    public static let block2 = CoAPOptionNumber(rawValue: 23)
    /// RFC 7959.
    public static let block1 = CoAPOptionNumber(rawValue: 27)
    /// RFC 7959.
    public static let size2 = CoAPOptionNumber(rawValue: 28)
    public static let proxyUri = CoAPOptionNumber(rawValue: 35)
    public static let proxyScheme = CoAPOptionNumber(rawValue: 39)
    public static let size1 = CoAPOptionNumber(rawValue: 60)
    /// RFC 7967.
    public static let noResponse = CoAPOptionNumber(rawValue: 258)

    /// The options this module gives a meaning to; the default "known" set for
    /// ``CoAPMessage/firstUnknownCriticalOption(known:)`` on a gateway.
    public static let registered: [CoAPOptionNumber] = [
        .ifMatch, .uriHost, .eTag, .ifNoneMatch, .observe, .uriPort, .locationPath, .uriPath, .contentFormat,
        .maxAge, .uriQuery, .accept, .locationQuery, .block2, .block1, .size2, .proxyUri, .proxyScheme, .size1,
        .noResponse,
    ]

    /// Allowed value lengths (RFC 7252 §5.10 table, RFC 7641 §2, RFC 7959 §2.1/§4, RFC 7967 §2), or nil for a
    /// number this module does not know, whose length only the message size limits.
    public var valueLengthRange: ClosedRange<Int>? {
        switch rawValue {
        case 1: return 0...8  // If-Match
        case 3: return 1...255  // Uri-Host
        case 4: return 1...8  // ETag
        case 5: return 0...0  // If-None-Match
        case 6: return 0...3  // Observe
        case 7: return 0...2  // Uri-Port
        case 8: return 0...255  // Location-Path
        case 11: return 0...255  // Uri-Path
        case 12: return 0...2  // Content-Format
        case 14: return 0...4  // Max-Age
        case 15: return 0...255  // Uri-Query
        case 17: return 0...2  // Accept
        case 20: return 0...255  // Location-Query
        case 23: return 0...3  // Block2
        case 27: return 0...3  // Block1
        case 28: return 0...4  // Size2
        case 35: return 1...1034  // Proxy-Uri
        case 39: return 1...255  // Proxy-Scheme
        case 60: return 0...4  // Size1
        case 258: return 0...1  // No-Response
        default: return nil
        }
    }

    /// Whether the option may appear more than once (§5.10 "R" column). Unknown options count as repeatable
    /// so that decode keeps every occurrence.
    public var isRepeatable: Bool {
        switch rawValue {
        case 1, 4, 8, 11, 15, 20: return true
        case 3, 5, 6, 7, 12, 14, 17, 23, 27, 28, 35, 39, 60, 258: return false
        default: return true
        }
    }
}
