/// A CoAP request method or response code (RFC 7252 §3, §12.1): three bits of class, five of detail.
///
/// Kept as the raw byte rather than an enum so that a code this module has no name for (a new method, a
/// response from a newer gateway) still round-trips through decode and encode unchanged; the named constants
/// are the ones our devices send and our gateway answers with.
public struct CoAPCode: Equatable, Hashable, Sendable {
    /// The byte on the wire: `class << 5 | detail`.
    public var rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Builds `c.dd`; traps on a class over 7 or a detail over 31, which only our own code can pass.
    @inlinable
    public init(codeClass: UInt8, detail: UInt8) {
        precondition(codeClass < 8 && detail < 32, "CoAPCode: class or detail out of range")
        rawValue = codeClass << 5 | detail
    }

    /// The class digit: 0 request, 2 success, 4 client error, 5 server error.
    @inlinable
    public var codeClass: UInt8 { rawValue >> 5 }

    /// The two detail digits.
    @inlinable
    public var detail: UInt8 { rawValue & 0x1F }

    /// 0.00: Empty message (only valid as a bare ACK, RST or CON ping).
    @inlinable
    public var isEmpty: Bool { rawValue == 0 }

    /// 0.01–0.31: a request method.
    @inlinable
    public var isRequest: Bool { codeClass == 0 && detail != 0 }

    /// Classes 2, 4 and 5.
    @inlinable
    public var isResponse: Bool { codeClass == 2 || codeClass == 4 || codeClass == 5 }

    /// Classes 1, 6 and 7 are reserved; RFC 7252 §4.2 says a message carrying one is rejected.
    @inlinable
    public var isReservedClass: Bool { codeClass == 1 || codeClass >= 6 }

    /// 2.xx.
    @inlinable
    public var isSuccess: Bool { codeClass == 2 }

    // MARK: - Methods (RFC 7252 §12.1.1, RFC 8132)

    public static let empty = CoAPCode(rawValue: 0x00)
    public static let get = CoAPCode(rawValue: 0x01)
    public static let post = CoAPCode(rawValue: 0x02)
    public static let put = CoAPCode(rawValue: 0x03)
    public static let delete = CoAPCode(rawValue: 0x04)
    /// RFC 8132: body-carrying GET, used by devices to ask for a proof by a key too long for a Uri-Query.
    public static let fetch = CoAPCode(rawValue: 0x05)

    // MARK: - Responses a gateway answers with

    /// 2.01: a transaction was accepted into the pool.
    public static let created = CoAPCode(rawValue: 0x41)
    /// 2.02.
    public static let deleted = CoAPCode(rawValue: 0x42)
    /// 2.03: the device's ETag still matches.
    public static let valid = CoAPCode(rawValue: 0x43)
    /// 2.04.
    public static let changed = CoAPCode(rawValue: 0x44)
    /// 2.05: a resource representation follows.
    public static let content = CoAPCode(rawValue: 0x45)
    /// 2.31 Continue (RFC 7959 §2.9.1): a Block1 block was stored, send the next.
    public static let `continue` = CoAPCode(rawValue: 0x5F)
    /// 4.00: the request is malformed.
    public static let badRequest = CoAPCode(rawValue: 0x80)
    /// 4.01.
    public static let unauthorized = CoAPCode(rawValue: 0x81)
    /// 4.02: an unrecognized critical option, or a known option with a value out of its range (§5.4.1).
    public static let badOption = CoAPCode(rawValue: 0x82)
    /// 4.03.
    public static let forbidden = CoAPCode(rawValue: 0x83)
    /// 4.04: no such resource (or no such block, proof or checkpoint).
    public static let notFound = CoAPCode(rawValue: 0x84)
    /// 4.05: the resource exists but not with this method.
    public static let methodNotAllowed = CoAPCode(rawValue: 0x85)
    /// 4.06.
    public static let notAcceptable = CoAPCode(rawValue: 0x86)
    /// 4.08 (RFC 7959 §2.9.2): a Block1 block arrived that does not continue the upload in progress.
    public static let requestEntityIncomplete = CoAPCode(rawValue: 0x88)
    /// 4.12.
    public static let preconditionFailed = CoAPCode(rawValue: 0x8C)
    /// 4.13: the body (or the announced Size1) is over what the server will hold.
    public static let requestEntityTooLarge = CoAPCode(rawValue: 0x8D)
    /// 4.15: the Content-Format is not the chain's binary encoding.
    public static let unsupportedContentFormat = CoAPCode(rawValue: 0x8F)
    /// 4.29 Too Many Requests (RFC 8516): a device is over its rate limit; Max-Age says when to retry.
    public static let tooManyRequests = CoAPCode(rawValue: 0x9D)
    /// 5.00.
    public static let internalServerError = CoAPCode(rawValue: 0xA0)
    /// 5.01.
    public static let notImplemented = CoAPCode(rawValue: 0xA1)
    /// 5.03: the gateway is syncing or overloaded; Max-Age says when to retry.
    public static let serviceUnavailable = CoAPCode(rawValue: 0xA3)
}
