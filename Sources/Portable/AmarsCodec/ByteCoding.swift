/// Appends the canonical encoding of values.
///
/// The encoding has exactly one form per value: fixed-size fields are raw bytes, integers are minimal
/// unsigned LEB128 varints, byte strings and lists carry a varint length, flags are one byte 0 or 1. There
/// is no self-description: the type being decoded says what comes next, so a decoder never chooses.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    @inlinable
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inlinable
    public mutating func write(_ byte: UInt8) { bytes.append(byte) }

    @inlinable
    public mutating func write(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }

    @inlinable
    public mutating func write(_ value: Bytes32) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 32))
        bytes.withUnsafeMutableBytes { value.store(into: $0, offset: start) }
    }

    @inlinable
    public mutating func write(_ value: Bytes20) {
        bytes.append(contentsOf: repeatElement(0, count: 20))
        let start = bytes.count - 20
        bytes.withUnsafeMutableBytes { buf in
            buf.storeBytes(of: value.hi.bigEndian, toByteOffset: start, as: UInt64.self)
            buf.storeBytes(of: value.mid.bigEndian, toByteOffset: start + 8, as: UInt64.self)
            buf.storeBytes(of: value.lo.bigEndian, toByteOffset: start + 16, as: UInt32.self)
        }
    }

    @inlinable
    public mutating func write(_ value: Bytes64) {
        write(value.first)
        write(value.second)
    }

    @inlinable
    public mutating func writeBool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// Minimal unsigned LEB128: seven bits a byte, low bits first, high bit set on all but the last byte.
    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inlinable
    public mutating func writeVarint(_ value: Int) { writeVarint(UInt64(value)) }

    @inlinable
    public mutating func writeLengthPrefixed(_ raw: [UInt8]) {
        writeVarint(UInt64(raw.count))
        bytes.append(contentsOf: raw)
    }

    @inlinable
    public mutating func write<T: CanonicalCodable>(_ value: T) { value.encode(to: &self) }

    @inlinable
    public mutating func write<T: CanonicalCodable>(list: [T]) {
        writeVarint(UInt64(list.count))
        for item in list { item.encode(to: &self) }
    }

    @inlinable
    public mutating func write<T: CanonicalCodable>(optional value: T?) {
        if let value {
            bytes.append(1)
            value.encode(to: &self)
        } else {
            bytes.append(0)
        }
    }
}

/// Reads a canonical encoding from untrusted bytes.
///
/// Every read is bounds-checked and every length is checked against a cap chosen by the caller before
/// anything is allocated, so a hostile length field can neither crash the reader nor make it allocate.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// Settable only so that inlined readers can advance it; callers outside the codec should not.
    public var position: Int

    @inlinable
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
    }

    @inlinable
    public var remaining: Int { bytes.count - position }

    @inlinable
    public mutating func readU8() throws(CodecError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        let b = bytes[position]
        position += 1
        return b
    }

    @inlinable
    public mutating func readBytes(_ count: Int) throws(CodecError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw .truncated }
        let out = Array(bytes[position..<position + count])
        position += count
        return out
    }

    @inlinable
    public mutating func readBytes32() throws(CodecError) -> Bytes32 {
        guard remaining >= 32 else { throw .truncated }
        let start = position
        position += 32
        return bytes.withUnsafeBytes { Bytes32(unchecked: $0, offset: start) }
    }

    @inlinable
    public mutating func readBytes20() throws(CodecError) -> Bytes20 {
        guard remaining >= 20 else { throw .truncated }
        let start = position
        position += 20
        return bytes.withUnsafeBytes { buf in
            var hi: UInt64 = 0
            var mid: UInt64 = 0
            var lo: UInt32 = 0
            for k in 0..<8 { hi = hi << 8 | UInt64(buf[start + k]) }
            for k in 8..<16 { mid = mid << 8 | UInt64(buf[start + k]) }
            for k in 16..<20 { lo = lo << 8 | UInt32(buf[start + k]) }
            return Bytes20(hi: hi, mid: mid, lo: lo)
        }
    }

    @inlinable
    public mutating func readBytes64() throws(CodecError) -> Bytes64 {
        let a = try readBytes32()
        let b = try readBytes32()
        return Bytes64(first: a, second: b)
    }

    @inlinable
    public mutating func readBool() throws(CodecError) -> Bool {
        let b = try readU8()
        switch b {
        case 0: return false
        case 1: return true
        default: throw .invalidFlag(b)
        }
    }

    /// Rejects anything but the shortest encoding, so each number has exactly one byte form.
    @inlinable
    public mutating func readVarint() throws(CodecError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var count = 0
        while true {
            let b = try readU8()
            count += 1
            if count == 10 && b > 1 { throw .varintOverflow }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if b == 0 && count > 1 { throw .nonMinimalVarint }
                return result
            }
            shift += 7
            if count == 10 { throw .varintOverflow }
        }
    }

    /// A varint that must fit `UInt32` (heights within an epoch, small indices, enum-like numbers).
    @inlinable
    public mutating func readVarint32() throws(CodecError) -> UInt32 {
        let v = try readVarint()
        guard v <= UInt64(UInt32.max) else { throw .lengthOverCap(length: v, cap: Int(UInt32.max)) }
        return UInt32(v)
    }

    /// A count or length, refused above `cap` before anything is allocated for it.
    @inlinable
    public mutating func readCount(cap: Int) throws(CodecError) -> Int {
        let v = try readVarint()
        guard v <= UInt64(cap) else { throw .lengthOverCap(length: v, cap: cap) }
        return Int(v)
    }

    @inlinable
    public mutating func readLengthPrefixed(cap: Int) throws(CodecError) -> [UInt8] {
        let n = try readCount(cap: cap)
        return try readBytes(n)
    }

    @inlinable
    public mutating func read<T: CanonicalCodable>(_ type: T.Type = T.self) throws(CodecError) -> T {
        try T(from: &self)
    }

    /// A list whose count is capped, and whose items each decode under their own caps.
    @inlinable
    public mutating func readList<T: CanonicalCodable>(_ type: T.Type = T.self, cap: Int) throws(CodecError) -> [T] {
        let n = try readCount(cap: cap)
        // Each item takes at least one byte, so a count beyond the remaining input is truncation, not a reason
        // to reserve memory.
        guard n <= remaining else { throw .truncated }
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try T(from: &self)) }
        return out
    }

    @inlinable
    public mutating func readOptional<T: CanonicalCodable>(_ type: T.Type = T.self) throws(CodecError) -> T? {
        try readBool() ? try T(from: &self) : nil
    }

    /// Call after the last field: a canonical value is followed by nothing.
    @inlinable
    public func finish() throws(CodecError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }
}

/// A value with exactly one byte encoding, decodable from untrusted input.
public protocol CanonicalCodable {
    func encode(to writer: inout ByteWriter)
    init(from reader: inout ByteReader) throws(CodecError)
}

extension CanonicalCodable {
    @inlinable
    public var encoded: [UInt8] {
        var w = ByteWriter()
        encode(to: &w)
        return w.bytes
    }

    /// Decodes a whole buffer: truncation and trailing bytes are both errors.
    @inlinable
    public init(decoding bytes: [UInt8]) throws(CodecError) {
        var r = ByteReader(bytes)
        self = try Self(from: &r)
        try r.finish()
    }
}

extension Bytes32: CanonicalCodable {
    @inlinable
    public func encode(to writer: inout ByteWriter) { writer.write(self) }
    @inlinable
    public init(from reader: inout ByteReader) throws(CodecError) { self = try reader.readBytes32() }
}

extension Bytes20: CanonicalCodable {
    @inlinable
    public func encode(to writer: inout ByteWriter) { writer.write(self) }
    @inlinable
    public init(from reader: inout ByteReader) throws(CodecError) { self = try reader.readBytes20() }
}

extension Bytes64: CanonicalCodable {
    @inlinable
    public func encode(to writer: inout ByteWriter) { writer.write(self) }
    @inlinable
    public init(from reader: inout ByteReader) throws(CodecError) { self = try reader.readBytes64() }
}
