/// The value of a Block1 or Block2 option (RFC 7959 §2.2): block number, "more" flag and size exponent.
///
/// Block-wise transfer is how a proof or a batch of headers larger than one 1152-byte message reaches a
/// device, and how a device uploads a large transaction, without IP fragmentation.
public struct BlockOption: Equatable, Sendable {
    /// NUM: the block's index in units of ``size``; 20 bits fit in the option's 3 bytes.
    public var number: UInt32
    /// M: more blocks follow (Block2 response, Block1 request), or, in a Block1 response, the server's echo.
    public var more: Bool
    /// SZX: block size is 2^(SZX+4), 16 to 1024 bytes. 7 is reserved.
    public var szx: UInt8

    /// Largest NUM a 3-byte option can carry.
    public static let maxNumber: UInt32 = 0xF_FFFF
    /// Largest valid SZX (1024-byte blocks).
    public static let maxSZX: UInt8 = 6
    /// Payloads above this size are sent block-wise.
    public static let blockwiseThreshold = 1024

    /// Traps on SZX 7 or a NUM over 20 bits: our own code chooses these.
    @inlinable
    public init(number: UInt32, more: Bool, szx: UInt8) {
        precondition(szx <= BlockOption.maxSZX && number <= BlockOption.maxNumber, "BlockOption out of range")
        self.number = number
        self.more = more
        self.szx = szx
    }

    /// Bytes per block: 16 << SZX.
    @inlinable
    public var size: Int { 16 << Int(szx) }

    /// Where this block starts in the whole body: NUM × size, at most 2^30 − 1024, so it fits a 32-bit Int.
    @inlinable
    public var offset: Int { Int(number) * size }

    /// The SZX for a block size of 16, 32, … 1024 bytes, or nil for any other size.
    public static func szx(forSize size: Int) -> UInt8? {
        var szx: UInt8 = 0
        while szx <= maxSZX {
            if 16 << Int(szx) == size { return szx }
            szx += 1
        }
        return nil
    }

    /// The option value as an unsigned integer: NUM << 4 | M << 3 | SZX.
    @inlinable
    public var uintValue: UInt32 { number << 4 | (more ? 8 : 0) | UInt32(szx) }

    /// The option carrying this value (minimal bytes: 0/0/16 is the empty value).
    public func option(_ optionNumber: CoAPOptionNumber) -> CoAPOption {
        CoAPOption(number: optionNumber, uint: uintValue)
    }

    /// Reads a Block1 or Block2 option value. Over 3 bytes is ``CoAPError/optionValueLength(number:)``;
    /// SZX 7 is ``CoAPError/reservedBlockSize`` (RFC 7959: answer 4.00).
    public init(option: CoAPOption) throws(CoAPError) {
        guard option.value.count <= 3, let value = option.uintValue else {
            throw .optionValueLength(number: option.number.rawValue)
        }
        let szx = UInt8(value & 0x7)
        if szx == 7 { throw .reservedBlockSize }
        self.init(number: value >> 4, more: value & 0x8 != 0, szx: szx)
    }

    /// The SZX a server uses when the client asked for `requested` (nil: no preference) and the server wants
    /// at most `preferred`: RFC 7959 lets the server pick the same or a smaller size, never a larger one.
    @inlinable
    public static func negotiatedSZX(requested: UInt8?, preferred: UInt8) -> UInt8 {
        guard let requested else { return preferred }
        return requested < preferred ? requested : preferred
    }

    /// How many Block2 responses a body of `totalSize` bytes takes (at least one, for an empty body).
    @inlinable
    public static func blockCount(totalSize: Int, szx: UInt8) -> Int {
        let size = 16 << Int(szx)
        return totalSize == 0 ? 1 : (totalSize + size - 1) / size
    }

    /// Block `number` of `payload` at block size `szx`, with the Block2 value to send with it (M set when more
    /// bytes follow). A block starting at or past the end is ``CoAPError/blockOutOfRange`` (answer 4.02),
    /// except block 0 of an empty body.
    public static func block2(_ number: UInt32, of payload: [UInt8], szx: UInt8) throws(CoAPError)
        -> (option: BlockOption, bytes: [UInt8])
    {
        if szx > maxSZX { throw .reservedBlockSize }
        if number > maxNumber { throw .blockOutOfRange }
        let block = BlockOption(number: number, more: false, szx: szx)
        let start = block.offset
        if start >= payload.count && !(number == 0 && payload.isEmpty) { throw .blockOutOfRange }
        let end = min(start + block.size, payload.count)
        return (BlockOption(number: number, more: end < payload.count, szx: szx), Array(payload[start..<end]))
    }
}
