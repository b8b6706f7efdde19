/// A CoAP message (RFC 7252 §3) and its one wire encoding.
///
/// Options are kept sorted by number, with repeated options in the order they were given: that order carries
/// meaning (Uri-Path segments) and it is the order the wire format needs. Option values and the token are kept
/// as raw bytes, so `decode` followed by `encode` reproduces the input exactly; see ``decode(_:maxMessageSize:)``
/// for the few inputs that mean the same as another encoding.
public struct CoAPMessage: Equatable, Sendable {
    /// The only protocol version RFC 7252 defines.
    public static let version: UInt8 = 1
    /// Largest message accepted or built: RFC 7252 §4.6's 1152 bytes (1024 of payload plus headers), which
    /// fits an unfragmented IPv6 datagram and bounds a device's receive buffer. Larger bodies go block-wise.
    public static let maxMessageSize = 1152
    /// Most options accepted in one message; our requests use fewer than ten, and the cap bounds decode work.
    public static let maxOptions = 32
    /// RFC 7252 §3: token lengths 9–15 are reserved.
    public static let maxTokenLength = 8
    /// The byte that separates options from the payload.
    public static let payloadMarker: UInt8 = 0xFF

    public var type: CoAPMessageType
    public var code: CoAPCode
    public var messageID: UInt16
    /// 0–8 bytes matching a response to its request.
    public var token: [UInt8]
    /// Sorted by number; repeated numbers keep their relative order. ``encode()`` sorts again (stably), so a
    /// caller that appends out of order still gets a valid message.
    public var options: [CoAPOption]
    public var payload: [UInt8]

    /// Sorts `options` by number, keeping the order among equal numbers.
    public init(
        type: CoAPMessageType, code: CoAPCode, messageID: UInt16, token: [UInt8] = [],
        options: [CoAPOption] = [], payload: [UInt8] = []
    ) {
        self.type = type
        self.code = code
        self.messageID = messageID
        self.token = token
        self.options = CoAPMessage.stablySorted(options)
        self.payload = payload
    }

    // MARK: - Encoding

    /// The wire form. Traps on a token over 8 bytes or an option value over 65804 bytes, which only a
    /// programming error can produce; the size limit is the caller's to check (`encode().count`), because a
    /// gateway may build a larger message for a transport without that limit.
    public func encode() -> [UInt8] {
        precondition(token.count <= CoAPMessage.maxTokenLength, "CoAP: token over 8 bytes")
        var out: [UInt8] = []
        out.reserveCapacity(4 + token.count + payload.count + 1 + options.count * 4)
        out.append(CoAPMessage.version << 6 | type.rawValue << 4 | UInt8(token.count))
        out.append(code.rawValue)
        out.append(UInt8(truncatingIfNeeded: messageID >> 8))
        out.append(UInt8(truncatingIfNeeded: messageID))
        out.append(contentsOf: token)
        var previous: UInt32 = 0
        for option in CoAPMessage.stablySorted(options) {
            let number = UInt32(option.number.rawValue)
            let delta = number - previous
            previous = number
            let length = UInt32(option.value.count)
            precondition(length <= 65535 + 269, "CoAP: option value too long")
            let deltaNibble = CoAPMessage.nibble(delta)
            let lengthNibble = CoAPMessage.nibble(length)
            out.append(deltaNibble << 4 | lengthNibble)
            CoAPMessage.appendExtended(delta, nibble: deltaNibble, to: &out)
            CoAPMessage.appendExtended(length, nibble: lengthNibble, to: &out)
            out.append(contentsOf: option.value)
        }
        if !payload.isEmpty {
            out.append(CoAPMessage.payloadMarker)
            out.append(contentsOf: payload)
        }
        return out
    }

    /// 0–12 as is; 13 means one extra byte (value − 13), 14 two extra bytes (value − 269).
    @inline(__always)
    static func nibble(_ value: UInt32) -> UInt8 {
        if value < 13 { return UInt8(value) }
        if value < 269 { return 13 }
        return 14
    }

    @inline(__always)
    static func appendExtended(_ value: UInt32, nibble: UInt8, to out: inout [UInt8]) {
        if nibble == 13 {
            out.append(UInt8(truncatingIfNeeded: value - 13))
        } else if nibble == 14 {
            let extended = value - 269
            out.append(UInt8(truncatingIfNeeded: extended >> 8))
            out.append(UInt8(truncatingIfNeeded: extended))
        }
    }

    // MARK: - Decoding

    /// Parses one message, checking every rule of RFC 7252 §3 and the caps above.
    ///
    /// Unknown options, critical or not, are kept: whether to answer 4.02 depends on what the receiver
    /// implements, so it asks ``firstUnknownCriticalOption(known:)``. A known option whose value length is
    /// outside its registered range is an error (``CoAPError/optionValueLength(number:)``).
    ///
    /// Canonical form: the option delta and length encodings are unique (13 and 14 only cover values 13 and up,
    /// 269 and up), options can only appear in ascending order, and token, values and payload are kept
    /// verbatim, so every accepted input re-encodes to the same bytes. Two accepted inputs can still mean the
    /// same: an integer option with leading zero bytes (Content-Format `00 2A` and `2A`, or `00` for 0).
    /// Those are accepted, as RFC 7252 §3.2 only asks senders to be minimal; compare such messages by
    /// ``CoAPOption/uintValue``, and check ``CoAPOption/isMinimalUInt`` to refuse them where that matters.
    ///
    /// Nothing is allocated from a length read in the input before that length is checked against the bytes
    /// actually present, and the input itself is capped at `maxMessageSize`.
    public static func decode(_ bytes: [UInt8], maxMessageSize: Int = CoAPMessage.maxMessageSize)
        throws(CoAPError) -> CoAPMessage
    {
        let count = bytes.count
        if count > maxMessageSize { throw .messageTooLarge }
        if count < 4 { throw .truncatedHeader }
        let first = bytes[0]
        let version = first >> 6
        if version != CoAPMessage.version { throw .unsupportedVersion(version) }
        let type = CoAPMessageType(rawValue: (first >> 4) & 0x3)!
        let tokenLength = Int(first & 0x0F)
        if tokenLength > CoAPMessage.maxTokenLength { throw .invalidTokenLength(UInt8(tokenLength)) }
        let code = CoAPCode(rawValue: bytes[1])
        let messageID = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        if count < 4 + tokenLength { throw .truncatedToken }
        if code.isEmpty && (tokenLength != 0 || count != 4) { throw .nonEmptyEmptyMessage }
        let token = Array(bytes[4..<(4 + tokenLength)])

        var options: [CoAPOption] = []
        var payload: [UInt8] = []
        var index = 4 + tokenLength
        var number: UInt32 = 0
        while index < count {
            let header = bytes[index]
            index += 1
            if header == payloadMarker {
                if index == count { throw .emptyPayloadAfterMarker }
                payload = Array(bytes[index..<count])
                break
            }
            let deltaNibble = header >> 4
            let lengthNibble = header & 0x0F
            if deltaNibble == 15 || lengthNibble == 15 { throw .reservedOptionNibble }
            let delta = try readExtended(deltaNibble, bytes, &index)
            let length = try readExtended(lengthNibble, bytes, &index)
            number += delta
            if number > 0xFFFF { throw .optionNumberOverflow }
            if options.count == maxOptions { throw .tooManyOptions }
            if UInt32(count - index) < length { throw .truncatedOption }
            let optionNumber = CoAPOptionNumber(rawValue: UInt16(number))
            if let range = optionNumber.valueLengthRange, !range.contains(Int(length)) {
                throw .optionValueLength(number: optionNumber.rawValue)
            }
            let end = index + Int(length)
            options.append(CoAPOption(number: optionNumber, value: Array(bytes[index..<end])))
            index = end
        }
        var message = CoAPMessage(type: type, code: code, messageID: messageID, token: token)
        message.options = options  // already in ascending order
        message.payload = payload
        return message
    }

    @inline(__always)
    static func readExtended(_ nibble: UInt8, _ bytes: [UInt8], _ index: inout Int) throws(CoAPError) -> UInt32 {
        switch nibble {
        case 13:
            if index + 1 > bytes.count { throw .truncatedOption }
            let value = UInt32(bytes[index]) + 13
            index += 1
            return value
        case 14:
            if index + 2 > bytes.count { throw .truncatedOption }
            let value = (UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])) + 269
            index += 2
            return value
        default:
            return UInt32(nibble)
        }
    }

    // MARK: - Rejecting what cannot be decoded

    /// The fixed header and token, read without looking at options or payload.
    public struct Header: Equatable, Sendable {
        public var type: CoAPMessageType
        public var code: CoAPCode
        public var messageID: UInt16
        public var token: [UInt8]
    }

    /// Reads the header of a message that ``decode(_:maxMessageSize:)`` refused, so a server can still answer
    /// errors that are not format errors (4.02, 4.13) with the request's token, or Reset a Confirmable
    /// message. Nil when even the header and token are unusable.
    public static func peekHeader(_ bytes: [UInt8]) -> Header? {
        if bytes.count < 4 || bytes[0] >> 6 != version { return nil }
        let tokenLength = Int(bytes[0] & 0x0F)
        if tokenLength > maxTokenLength || bytes.count < 4 + tokenLength { return nil }
        return Header(
            type: CoAPMessageType(rawValue: (bytes[0] >> 4) & 0x3)!, code: CoAPCode(rawValue: bytes[1]),
            messageID: UInt16(bytes[2]) << 8 | UInt16(bytes[3]), token: Array(bytes[4..<(4 + tokenLength)]))
    }

    /// The Reset RFC 7252 §4.2 asks for when a Confirmable message cannot be processed: empty, same
    /// Message ID. Nil when the input is not a readable Confirmable message (§4.3: others are just ignored).
    public static func resetReply(to bytes: [UInt8]) -> CoAPMessage? {
        if bytes.count < 4 || bytes[0] >> 6 != version || (bytes[0] >> 4) & 0x3 != 0 { return nil }
        return CoAPMessage(type: .reset, code: .empty, messageID: UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
    }

    /// A piggybacked response to this (Confirmable) request: ACK, same Message ID and token.
    public func acknowledgement(code: CoAPCode, options: [CoAPOption] = [], payload: [UInt8] = []) -> CoAPMessage {
        CoAPMessage(
            type: .acknowledgement, code: code, messageID: messageID, token: token, options: options,
            payload: payload)
    }

    // MARK: - Options

    /// The first unknown critical option, if any: the number a server answers 4.02 Bad Option about
    /// (RFC 7252 §5.4.1). A second occurrence of a critical option that is not repeatable counts as unknown
    /// too (§5.4.5). Elective options are skipped, as the RFC says to ignore them.
    public func firstUnknownCriticalOption(known: [CoAPOptionNumber] = CoAPOptionNumber.registered)
        -> CoAPOptionNumber?
    {
        var previous: CoAPOptionNumber?
        for option in options where option.number.isCritical {
            if !known.contains(option.number) { return option.number }
            if option.number == previous && !option.number.isRepeatable { return option.number }
            previous = option.number
        }
        return nil
    }

    /// The first option with this number.
    public func option(_ number: CoAPOptionNumber) -> CoAPOption? {
        for option in options where option.number == number { return option }
        return nil
    }

    /// All values of a (repeatable) option, in order.
    public func optionValues(_ number: CoAPOptionNumber) -> [[UInt8]] {
        var values: [[UInt8]] = []
        for option in options where option.number == number { values.append(option.value) }
        return values
    }

    /// Inserts after every option with a number not above this one, keeping `options` sorted.
    public mutating func addOption(_ option: CoAPOption) {
        var index = options.count
        while index > 0 && options[index - 1].number > option.number { index -= 1 }
        options.insert(option, at: index)
    }

    /// Removes every option with this number.
    public mutating func removeOptions(_ number: CoAPOptionNumber) {
        options.removeAll { $0.number == number }
    }

    /// Replaces every option with this number by one option.
    public mutating func setOption(_ option: CoAPOption) {
        removeOptions(option.number)
        addOption(option)
    }

    /// An integer option's value; nil if absent or longer than 4 bytes.
    public func uintOption(_ number: CoAPOptionNumber) -> UInt32? {
        option(number)?.uintValue
    }

    /// Sets an integer option in minimal form, or removes it for nil.
    public mutating func setUIntOption(_ number: CoAPOptionNumber, _ value: UInt32?) {
        if let value {
            setOption(CoAPOption(number: number, uint: value))
        } else {
            removeOptions(number)
        }
    }

    /// Content-Format (see ``ContentFormat``); nil if absent or longer than its 2-byte maximum.
    public var contentFormat: UInt16? {
        get {
            guard let value = uintOption(.contentFormat), value <= 0xFFFF else { return nil }
            return UInt16(value)
        }
        set { setUIntOption(.contentFormat, newValue.map { UInt32($0) }) }
    }

    /// Observe (RFC 7641): 0 register / 1 deregister in requests, a 24-bit sequence number in notifications.
    public var observe: UInt32? {
        get { uintOption(.observe) }
        set { setUIntOption(.observe, newValue.map { $0 & Observe.sequenceMask }) }
    }

    /// Uri-Path segments in order (each without '/'; the path `v1/head` is `["v1", "head"]` in UTF-8).
    public var uriPath: [[UInt8]] {
        get { optionValues(.uriPath) }
        set {
            removeOptions(.uriPath)
            for segment in newValue { addOption(CoAPOption(number: .uriPath, value: segment)) }
        }
    }

    /// Uri-Query arguments in order (`key=value` each, UTF-8).
    public var uriQuery: [[UInt8]] {
        get { optionValues(.uriQuery) }
        set {
            removeOptions(.uriQuery)
            for argument in newValue { addOption(CoAPOption(number: .uriQuery, value: argument)) }
        }
    }

    /// Sets Uri-Path from a '/'-separated path such as ``DeviceResources/head``; a leading '/' and empty
    /// segments are skipped (RFC 7252 §6.4 makes `/a//b` differ from `/a/b`, but no resource of ours has an
    /// empty segment).
    public mutating func setUriPath(_ path: StaticString) {
        uriPath = CoAPMessage.segments(of: path)
    }

    /// Whether Uri-Path is exactly the segments of `path` (as ``setUriPath(_:)`` would set them).
    public func uriPathMatches(_ path: StaticString) -> Bool {
        optionValues(.uriPath) == CoAPMessage.segments(of: path)
    }

    /// Splits a static path on '/' into byte segments, skipping empty ones.
    public static func segments(of path: StaticString) -> [[UInt8]] {
        var result: [[UInt8]] = []
        path.withUTF8Buffer { buffer in
            var current: [UInt8] = []
            for byte in buffer {
                if byte == UInt8(ascii: "/") {
                    if !current.isEmpty { result.append(current) }
                    current = []
                } else {
                    current.append(byte)
                }
            }
            if !current.isEmpty { result.append(current) }
        }
        return result
    }

    /// Insertion sort by number: stable, allocation-free, and quick for the handful of options a message has.
    static func stablySorted(_ options: [CoAPOption]) -> [CoAPOption] {
        var sorted = options
        if sorted.count < 2 { return sorted }
        for i in 1..<sorted.count {
            var j = i
            while j > 0 && sorted[j - 1].number > sorted[j].number {
                sorted.swapAt(j - 1, j)
                j -= 1
            }
        }
        return sorted
    }
}
