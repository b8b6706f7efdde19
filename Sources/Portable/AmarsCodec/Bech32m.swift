/// Why a bech32m string was refused.
///
/// The cases follow the failure reasons BIP173/BIP350 list, so a wallet or the CLI can tell a user whether
/// they mistyped (checksum), pasted the wrong kind of string (human-readable part) or truncated it.
public enum Bech32Error: Error, Equatable, Sendable {
    /// Longer than the caller's limit (90 by default), or a human-readable part over 83 characters; checked
    /// before any copy is made.
    case tooLong
    /// Both upper- and lowercase letters: BIP173 allows either case but not both, so a mixed string is
    /// more likely damaged than intended.
    case mixedCase
    /// No '1' at all, so there is no human-readable part to check against.
    case noSeparator
    /// The last '1' is the first character.
    case emptyHumanReadablePart
    /// Nothing after the separator, or (for ``Bech32m/decodeBytes(_:expectedHRP:maxLength:)``) a checksum
    /// with no payload in front of it.
    case emptyData
    /// The byte at `offset` of the UTF-8 text is outside 33...126, or is not in the bech32 alphabet in the
    /// data part.
    case invalidCharacter(offset: Int)
    /// The checksum does not match (a typo, a plain Bech32 string, or fewer than six checksum characters).
    case invalidChecksum
    /// The 5-bit groups do not end on a whole byte with zero fill: another string for the same bytes.
    case invalidPadding
    /// A valid string meant for something else (another network, another kind of key).
    case wrongHumanReadablePart
    /// The payload decoded cleanly but has this many bytes instead of the size the caller asked for.
    case wrongDataLength(Int)
}

/// Bech32m (BIP350): the checksummed base 32 text form of addresses (`amsc1...`).
///
/// Chosen over hex or base58 because its BCH checksum is guaranteed to catch up to four substituted
/// characters, and over plain Bech32 because Bech32m does not accept inserted or deleted 'q's before a
/// final 'p'. All work is on UTF-8 bytes so the same code runs in Embedded Swift on devices.
public enum Bech32m {
    /// XORed into the checksum; the only difference from Bech32 (whose constant is 1), and what makes a
    /// Bech32 string fail here rather than be misread.
    public static let checksumConstant: UInt32 = 0x2bc8_30a3
    /// Longest human-readable part BIP173 allows.
    public static let maxHumanReadablePartLength = 83
    /// Checksum characters at the end of every string.
    public static let checksumLength = 6
    /// Human-readable part of Amarscity account addresses.
    public static let addressHRP = "amsc"

    // MARK: - 5-bit level

    /// Builds a string from 5-bit groups; the output is lowercase whatever the case of `hrp`.
    ///
    /// The inputs come from our own code, never from a peer, so a bad `hrp` (empty, over 83 characters, a
    /// character outside 33...126) or a group over 31 is a programming error and traps.
    /// The total length is not capped here, because callers that raise `maxLength` on decode need to be
    /// able to produce such strings.
    public static func encode(hrp: String, fiveBitData: [UInt8]) -> String {
        String(decoding: encodeASCII(hrp: Array(hrp.utf8), fiveBitData: fiveBitData), as: UTF8.self)
    }

    /// ``encode(hrp:fiveBitData:)`` as ASCII bytes: what a device puts in a request without building a String.
    public static func encodeASCII(hrp: [UInt8], fiveBitData: [UInt8]) -> [UInt8] {
        let hrpCount = hrp.count
        precondition(hrpCount >= 1 && hrpCount <= maxHumanReadablePartLength, "bech32m: bad hrp length")
        var out: [UInt8] = []
        out.reserveCapacity(hrpCount + 1 + fiveBitData.count + checksumLength)
        for char in hrp {
            precondition(char >= 33 && char <= 126, "bech32m: hrp character out of range")
            out.append(lowercased(char))
        }
        var check = hrpChecksumState(out)
        out.append(separator)
        for value in fiveBitData {
            precondition(value < 32, "bech32m: value is not a 5-bit group")
            check = polymodStep(check, value)
            out.append(character(value))
        }
        for _ in 0..<checksumLength {
            check = polymodStep(check, 0)
        }
        check ^= checksumConstant
        for i in 0..<checksumLength {
            out.append(character(UInt8(truncatingIfNeeded: check >> UInt32(5 * (5 - i))) & 31))
        }
        return out
    }

    /// Parses and verifies a string; returns the lowercase human-readable part and the 5-bit groups without
    /// the checksum.
    ///
    /// The length is checked against `maxLength` before anything is copied, so an attacker's megabyte string
    /// costs one comparison. An empty payload (a bare checksum) is valid at this level, as in BIP350's
    /// `A1LQFN3A`.
    public static func decode(
        _ text: String,
        maxLength: Int = 90
    ) throws(Bech32Error) -> (hrp: String, fiveBitData: [UInt8]) {
        let utf8 = text.utf8
        let count = utf8.count
        guard count <= maxLength else { throw .tooLong }

        var hasLower = false
        var hasUpper = false
        var separatorOffset = -1
        var offset = 0
        for char in utf8 {
            guard char >= 33 && char <= 126 else { throw .invalidCharacter(offset: offset) }
            if char >= 0x61 && char <= 0x7a {
                hasLower = true
            } else if char >= 0x41 && char <= 0x5a {
                hasUpper = true
            }
            if char == separator { separatorOffset = offset }
            offset += 1
        }
        if hasLower && hasUpper { throw .mixedCase }
        guard separatorOffset >= 0 else { throw .noSeparator }
        guard separatorOffset > 0 else { throw .emptyHumanReadablePart }
        guard separatorOffset <= maxHumanReadablePartLength else { throw .tooLong }
        let dataCount = count - separatorOffset - 1
        guard dataCount > 0 else { throw .emptyData }
        guard dataCount >= checksumLength else { throw .invalidChecksum }

        var hrp: [UInt8] = []
        hrp.reserveCapacity(separatorOffset)
        var data: [UInt8] = []
        data.reserveCapacity(dataCount)
        offset = 0
        for char in utf8 {
            if offset < separatorOffset {
                hrp.append(lowercased(char))
            } else if offset > separatorOffset {
                guard let group = value(of: lowercased(char)) else { throw .invalidCharacter(offset: offset) }
                data.append(group)
            }
            offset += 1
        }

        var check = hrpChecksumState(hrp)
        for value in data {
            check = polymodStep(check, value)
        }
        guard check == checksumConstant else { throw .invalidChecksum }
        data.removeLast(checksumLength)
        return (String(decoding: hrp, as: UTF8.self), data)
    }

    // MARK: - 8-bit level

    /// Encodes bytes (8 -> 5 bits, zero-filled at the end) under `hrp`.
    public static func encode(hrp: String, bytes: [UInt8]) -> String {
        encode(hrp: hrp, fiveBitData: fiveBitGroups(from: bytes))
    }

    /// Decodes a string that must carry `expectedHRP` (compared without regard to case) and a non-empty
    /// byte payload.
    ///
    /// The human-readable part is checked before the payload is converted so that a valid string of the
    /// wrong kind is reported as such rather than as a padding or length problem.
    public static func decodeBytes(
        _ text: String,
        expectedHRP: String,
        maxLength: Int = 90
    ) throws(Bech32Error) -> [UInt8] {
        let decoded = try decode(text, maxLength: maxLength)
        guard equalIgnoringASCIICase(decoded.hrp, expectedHRP) else { throw .wrongHumanReadablePart }
        guard !decoded.fiveBitData.isEmpty else { throw .emptyData }
        return try bytes(fromFiveBitGroups: decoded.fiveBitData)
    }

    /// Encodes a 20-byte account address or key hash.
    public static func encode(hrp: String, bytes20: Bytes20) -> String {
        encode(hrp: hrp, bytes: bytes20.bytes)
    }

    /// Decodes exactly 20 bytes, so a truncated or over-long address is refused here and never reaches the
    /// ledger as a different account.
    public static func decodeBytes20(_ text: String, expectedHRP: String) throws(Bech32Error) -> Bytes20 {
        let bytes = try decodeBytes(text, expectedHRP: expectedHRP)
        guard let value = Bytes20(bytes) else { throw .wrongDataLength(bytes.count) }
        return value
    }

    /// Encodes a 32-byte key or hash.
    public static func encode(hrp: String, bytes32: Bytes32) -> String {
        encode(hrp: hrp, bytes: bytes32.bytes)
    }

    /// Decodes exactly 32 bytes; see ``decodeBytes20(_:expectedHRP:)``.
    public static func decodeBytes32(_ text: String, expectedHRP: String) throws(Bech32Error) -> Bytes32 {
        let bytes = try decodeBytes(text, expectedHRP: expectedHRP)
        guard let value = Bytes32(bytes) else { throw .wrongDataLength(bytes.count) }
        return value
    }

    /// 8 -> 5 bit regrouping, big-endian, the last group filled with zero bits.
    public static func fiveBitGroups(from bytes: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count &* 8 &+ 4) / 5)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in bytes {
            accumulator = (accumulator << 8 | UInt32(byte)) & 0xfff
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)) & 31)
            }
        }
        if bits > 0 {
            out.append(UInt8(truncatingIfNeeded: accumulator << UInt32(5 - bits)) & 31)
        }
        return out
    }

    /// 5 -> 8 bit regrouping that accepts only the one padding ``fiveBitGroups(from:)`` produces.
    ///
    /// Refusing a fill of five bits or more, or fill bits that are not zero, keeps the encoding unique:
    /// otherwise several strings would name the same address.
    public static func bytes(fromFiveBitGroups groups: some Collection<UInt8>) throws(Bech32Error) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(groups.count &* 5 / 8)
        var accumulator: UInt32 = 0
        var bits = 0
        var index = 0
        for group in groups {
            guard group < 32 else { throw .invalidCharacter(offset: index) }
            accumulator = (accumulator << 5 | UInt32(group)) & 0xfff
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
            index += 1
        }
        guard bits < 5 else { throw .invalidPadding }
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { throw .invalidPadding }
        return out
    }

    // MARK: - Internals

    static let separator: UInt8 = 0x31

    /// The 32 data characters in value order; chosen by BIP173 so that likely visual confusions differ in
    /// only one bit, and it leaves out '1', 'b', 'i' and 'o'.
    static let alphabet: StaticString = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

    @inline(__always)
    static func character(_ value: UInt8) -> UInt8 {
        alphabet.utf8Start[Int(value)]
    }

    /// Linear search: 32 comparisons at most, and no lookup table to keep in a device's RAM.
    @inline(__always)
    static func value(of char: UInt8) -> UInt8? {
        let start = alphabet.utf8Start
        for i in 0..<32 where start[i] == char {
            return UInt8(truncatingIfNeeded: i)
        }
        return nil
    }

    @inline(__always)
    static func lowercased(_ char: UInt8) -> UInt8 {
        char >= 0x41 && char <= 0x5a ? char | 0x20 : char
    }

    static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        var other = b.utf8.makeIterator()
        for char in a.utf8 {
            guard let otherChar = other.next(), lowercased(char) == lowercased(otherChar) else { return false }
        }
        return true
    }

    /// One step of the BCH code's generator over GF(32); the five constants are BIP173's generator.
    @inline(__always)
    static func polymodStep(_ check: UInt32, _ value: UInt8) -> UInt32 {
        let top = check >> 25
        var next = (check & 0x1ff_ffff) << 5 ^ UInt32(value)
        if top & 1 != 0 { next ^= 0x3b6a_57b2 }
        if top & 2 != 0 { next ^= 0x2650_8e6d }
        if top & 4 != 0 { next ^= 0x1ea1_19fa }
        if top & 8 != 0 { next ^= 0x3d42_33dd }
        if top & 16 != 0 { next ^= 0x2a14_62b3 }
        return next
    }

    /// Feeds the expanded human-readable part (high bits, a zero, low bits) so the checksum also protects
    /// which network or key kind the string is for.
    static func hrpChecksumState(_ hrp: [UInt8]) -> UInt32 {
        var check: UInt32 = 1
        for char in hrp {
            check = polymodStep(check, char >> 5)
        }
        check = polymodStep(check, 0)
        for char in hrp {
            check = polymodStep(check, char & 31)
        }
        return check
    }
}
