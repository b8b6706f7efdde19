/// 32 bytes held inline (four big-endian words), so hashes and keys cost no heap allocation and
/// compare and hash as fast as integers.
public struct Bytes32: Hashable, Comparable, Sendable {
    public var w0: UInt64
    public var w1: UInt64
    public var w2: UInt64
    public var w3: UInt64

    @inlinable
    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    public static let zero = Bytes32(w0: 0, w1: 0, w2: 0, w3: 0)

    /// Reads exactly 32 bytes; returns nil for any other length.
    @inlinable
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var i = 0
        for b in bytes {
            switch i >> 3 {
            case 0: words.0 = words.0 << 8 | UInt64(b)
            case 1: words.1 = words.1 << 8 | UInt64(b)
            case 2: words.2 = words.2 << 8 | UInt64(b)
            default: words.3 = words.3 << 8 | UInt64(b)
            }
            i += 1
        }
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    /// Reads 32 bytes at `offset` of a raw buffer the caller has bounds-checked.
    @inlinable
    public init(unchecked pointer: UnsafeRawBufferPointer, offset: Int = 0) {
        @inline(__always) func word(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<8 { v = v << 8 | UInt64(pointer[at + k]) }
            return v
        }
        self.init(w0: word(offset), w1: word(offset + 8), w2: word(offset + 16), w3: word(offset + 24))
    }

    @inlinable
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { store(into: $0) }
        return out
    }

    /// Writes the 32 bytes big-endian at `offset`; the caller guarantees room.
    @inlinable
    public func store(into buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        buffer.storeBytes(of: w0.bigEndian, toByteOffset: offset, as: UInt64.self)
        buffer.storeBytes(of: w1.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
        buffer.storeBytes(of: w2.bigEndian, toByteOffset: offset + 16, as: UInt64.self)
        buffer.storeBytes(of: w3.bigEndian, toByteOffset: offset + 24, as: UInt64.self)
    }

    /// Byte `index` (0 is the first, most significant byte).
    @inlinable
    public subscript(byte index: Int) -> UInt8 {
        let word: UInt64
        switch index >> 3 {
        case 0: word = w0
        case 1: word = w1
        case 2: word = w2
        default: word = w3
        }
        return UInt8(truncatingIfNeeded: word >> UInt64(56 - (index & 7) * 8))
    }

    /// Bit `index` counted from the most significant bit of the first byte: the path of a key in a binary tree.
    @inlinable
    public func bit(_ index: Int) -> Bool {
        let word: UInt64
        switch index >> 6 {
        case 0: word = w0
        case 1: word = w1
        case 2: word = w2
        default: word = w3
        }
        return (word >> UInt64(63 - (index & 63))) & 1 == 1
    }

    @inlinable
    public static func < (a: Bytes32, b: Bytes32) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }
}

/// 20 bytes held inline: an account address.
public struct Bytes20: Hashable, Comparable, Sendable {
    public var hi: UInt64
    public var mid: UInt64
    public var lo: UInt32

    @inlinable
    public init(hi: UInt64, mid: UInt64, lo: UInt32) {
        self.hi = hi
        self.mid = mid
        self.lo = lo
    }

    public static let zero = Bytes20(hi: 0, mid: 0, lo: 0)

    /// Reads exactly 20 bytes; returns nil for any other length.
    @inlinable
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 20 else { return nil }
        var hi: UInt64 = 0
        var mid: UInt64 = 0
        var lo: UInt32 = 0
        var i = 0
        for b in bytes {
            if i < 8 {
                hi = hi << 8 | UInt64(b)
            } else if i < 16 {
                mid = mid << 8 | UInt64(b)
            } else {
                lo = lo << 8 | UInt32(b)
            }
            i += 1
        }
        self.init(hi: hi, mid: mid, lo: lo)
    }

    @inlinable
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        out.withUnsafeMutableBytes { buf in
            buf.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
            buf.storeBytes(of: mid.bigEndian, toByteOffset: 8, as: UInt64.self)
            buf.storeBytes(of: lo.bigEndian, toByteOffset: 16, as: UInt32.self)
        }
        return out
    }

    @inlinable
    public static func < (a: Bytes20, b: Bytes20) -> Bool {
        if a.hi != b.hi { return a.hi < b.hi }
        if a.mid != b.mid { return a.mid < b.mid }
        return a.lo < b.lo
    }
}

/// 64 bytes held inline: a Schnorr signature.
public struct Bytes64: Hashable, Sendable {
    public var first: Bytes32
    public var second: Bytes32

    @inlinable
    public init(first: Bytes32, second: Bytes32) {
        self.first = first
        self.second = second
    }

    public static let zero = Bytes64(first: .zero, second: .zero)

    /// Reads exactly 64 bytes; returns nil for any other length.
    @inlinable
    public init?(_ bytes: [UInt8]) {
        guard bytes.count == 64, let a = Bytes32(bytes[0..<32]), let b = Bytes32(bytes[32..<64]) else { return nil }
        self.init(first: a, second: b)
    }

    @inlinable
    public var bytes: [UInt8] { first.bytes + second.bytes }
}
