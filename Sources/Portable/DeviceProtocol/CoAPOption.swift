/// One option of a CoAP message: a number and its raw value bytes.
///
/// The value is kept exactly as received, so a decoded message re-encodes to the same bytes even when the
/// sender wrote an integer with leading zero bytes; ``uintValue`` gives the meaning, which is what callers
/// should compare.
public struct CoAPOption: Equatable, Sendable {
    public var number: CoAPOptionNumber
    public var value: [UInt8]

    @inlinable
    public init(number: CoAPOptionNumber, value: [UInt8]) {
        self.number = number
        self.value = value
    }

    /// An unsigned integer option in the minimal form of RFC 7252 §3.2: big-endian, no leading zero bytes, so
    /// 0 is the empty value.
    @inlinable
    public init(number: CoAPOptionNumber, uint: UInt32) {
        self.number = number
        self.value = CoAPOption.minimalBytes(uint)
    }

    /// The value read as a big-endian unsigned integer (leading zeros allowed, empty is 0), or nil when it is
    /// longer than 4 bytes.
    @inlinable
    public var uintValue: UInt32? {
        if value.count > 4 { return nil }
        var result: UInt32 = 0
        for byte in value { result = result << 8 | UInt32(byte) }
        return result
    }

    /// True if the value is an integer without leading zero bytes (the form an encoder should send).
    @inlinable
    public var isMinimalUInt: Bool { value.count <= 4 && value.first != 0 }

    /// Big-endian bytes of `value` without leading zeros (empty for 0).
    @inlinable
    public static func minimalBytes(_ value: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        var shift: UInt32 = 24
        var started = false
        while true {
            let byte = UInt8(truncatingIfNeeded: value >> shift)
            if byte != 0 || started {
                out.append(byte)
                started = true
            }
            if shift == 0 { break }
            shift -= 8
        }
        return out
    }
}
