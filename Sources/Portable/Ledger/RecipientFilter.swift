import AmarsCodec
import AmarsCrypto

/// A compact filter of every account paid by a transfer in one epoch: a Golomb-coded set as in BIP158, so a
/// device tests its own watched addresses locally and asks for proofs only in epochs that match, without telling
/// any gateway which addresses it watches (SPEC "Payment codes").
///
/// Unlike BIP158's filters, these are committed: the last block of each epoch writes the filter's hash into the
/// state under ``StateNamespace/recipientFilter``, so a gateway that leaves a payment out serves bytes whose hash
/// the device's state proof refuses.
///
/// Parameters are BIP158's basic filter: P = 19 bits of remainder, M = 784,931 (false positives about one in
/// M per watched address). Items are the 20 raw address bytes, each recipient once; they are mapped with
/// SipHash-2-4 to [0, N·M) and sorted, and the deltas are Golomb-Rice coded, most significant bit first, padded
/// with zero bits to a byte. The key is the first 16 bytes of `Domain.recipientFilterKey` over the genesis block
/// hash and the epoch (8 bytes, big-endian), which every device of the chain knows. The encoding is N as 4
/// big-endian bytes, then the bits (BIP158 writes N as a CompactSize; a fixed width is simpler to stream).
public enum RecipientFilter {
    public static let remainderBits: UInt64 = 19
    public static let modulus: UInt64 = 784_931
    /// More recipients than an epoch of full blocks can pay; a count above it is refused before any decoding.
    public static let maxItems: UInt64 = 1 << 24

    public static func key(genesis: Bytes32, epoch: UInt64) -> SipHash24 {
        let message = genesis.bytes + stateIdentifier(epoch: epoch)
        return SipHash24(key: Array(Domain.recipientFilterKey.hash(message).bytes[0..<16]))
    }

    /// The identifier (the epoch, 8 bytes big-endian) under ``StateNamespace/recipientFilter`` at which the hash
    /// of `epoch`'s filter is recorded.
    public static func stateIdentifier(epoch: UInt64) -> [UInt8] {
        var id: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) {
            id.append(UInt8(truncatingIfNeeded: epoch >> UInt64(shift)))
        }
        return id
    }

    /// The state tree key of that record, what a device asks the proof of.
    public static func stateKey(epoch: UInt64) -> Bytes32 {
        StateNamespace.recipientFilter.key(stateIdentifier(epoch: epoch))
    }

    /// The recipients a block adds to its epoch's filter: the payees of its successful transfers, plain and
    /// stealth.
    public static func recipients(of transactions: [SignedTransaction], receipts: [Receipt]) -> [Address] {
        var out: [Address] = []
        for (tx, receipt) in zip(transactions, receipts) where receipt.status == .success {
            switch tx.body.payload {
            case .transfer(let transfer): out.append(transfer.to)
            case .stealthTransfer(let transfer): out.append(transfer.to)
            default: break
            }
        }
        return out
    }

    /// The committed value: a tagged SHA-256 of the filter bytes.
    public static func hash(_ filter: [UInt8]) -> Bytes32 { Domain.recipientFilter.hash(filter) }

    /// Where `address` falls in [0, count·M).
    public static func mapped(_ address: Address, key: SipHash24, count: UInt64) -> UInt64 {
        key.hash(address.raw.bytes).multipliedFullWidth(by: count &* modulus).high
    }

    /// The filter of `recipients` (duplicates are counted once).
    public static func build(_ recipients: [Address], key: SipHash24) -> [UInt8] {
        var distinct = recipients
        distinct.sort()
        var unique: [Address] = []
        for a in distinct where unique.last != a { unique.append(a) }
        let count = UInt64(unique.count)
        var values = unique.map { mapped($0, key: key, count: count) }
        values.sort()
        var writer = BitWriter()
        for shift in stride(from: 24, through: 0, by: -8) {
            writer.bytes.append(UInt8(truncatingIfNeeded: count >> UInt64(shift)))
        }
        var previous: UInt64 = 0
        for value in values {
            let delta = value - previous
            previous = value
            for _ in 0..<(delta >> remainderBits) { writer.write(bit: true) }
            writer.write(bit: false)
            var bit = remainderBits
            while bit > 0 {
                bit -= 1
                writer.write(bit: (delta >> bit) & 1 == 1)
            }
        }
        return writer.finished()
    }

    /// True when `address` is (probably) in `filter`, false when it certainly is not; throws for malformed bytes.
    /// For a gateway or a wallet holding the whole filter; a device streams with ``RecipientFilterMatcher``.
    public static func contains(_ address: Address, filter: [UInt8], key: SipHash24) throws(RecipientFilterError)
        -> Bool
    {
        var matcher = RecipientFilterMatcher(watching: [address], key: key)
        try matcher.feed(filter)
        return try matcher.finish().matched[0]
    }
}

struct BitWriter {
    var bytes: [UInt8] = []
    var current: UInt8 = 0
    var used = 0

    mutating func write(bit: Bool) {
        current = current << 1 | (bit ? 1 : 0)
        used += 1
        if used == 8 {
            bytes.append(current)
            current = 0
            used = 0
        }
    }

    mutating func finished() -> [UInt8] {
        if used > 0 { bytes.append(current << UInt8(8 - used)) }
        current = 0
        used = 0
        return bytes
    }
}

/// Why filter bytes were refused.
public enum RecipientFilterError: Error, Equatable, Sendable {
    /// Fewer than 4 bytes, or the bits end before all items were read.
    case truncated
    /// A count above ``RecipientFilter/maxItems``.
    case tooManyItems(UInt64)
    /// A value at or past N·M, or a unary run longer than any valid delta: the bits are not a filter.
    case outOfRange
    /// Bytes after the last item's padding, or padding bits that are not zero.
    case trailingBits
    /// The bytes decode but their hash is not the one the state commits to.
    case notCommitted
}

/// Tests watched addresses against a filter fed in pieces (as CoAP blocks arrive), in memory bounded by the
/// number of watched addresses, and hashes the bytes as they pass so the caller checks them against the
/// committed hash before trusting any answer.
public struct RecipientFilterMatcher {
    private let key: SipHash24
    private let watched: [Address]
    /// Mapped values of the watched addresses with their index, sorted once the count is known.
    private var targets: [(value: UInt64, index: Int)] = []
    private var nextTarget = 0
    private var matched: [Bool]
    private var hasher = Domain.recipientFilter.hasher()
    private var header: [UInt8] = []
    private var count: UInt64 = 0
    private var decoded: UInt64 = 0
    private var current: UInt64 = 0
    private var quotient: UInt64 = 0
    private var remainder: UInt64 = 0
    private var remainderBitsRead: UInt64 = 0
    private var inRemainder = false
    private var padding = false

    public init(watching addresses: [Address], key: SipHash24) {
        self.key = key
        self.watched = addresses
        self.matched = [Bool](repeating: false, count: addresses.count)
    }

    public mutating func feed(_ bytes: [UInt8]) throws(RecipientFilterError) { try feed(bytes[...]) }

    /// A piece of the filter where it lies, so a board feeds blocks of a buffer it already holds without copying.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(RecipientFilterError) {
        bytes.withUnsafeBytes { hasher.update($0) }
        for byte in bytes { try feed(byte: byte) }
    }

    private mutating func feed(byte: UInt8) throws(RecipientFilterError) {
        if header.count < 4 {
            header.append(byte)
            if header.count == 4 { try start() }
            return
        }
        if decoded == count {
            // Only zero padding may follow the last item, and only inside its byte.
            throw .trailingBits
        }
        var bit: UInt8 = 8
        while bit > 0 {
            bit -= 1
            let one = (byte >> bit) & 1 == 1
            if decoded == count {
                guard !one else { throw .trailingBits }
                continue
            }
            try step(one)
        }
    }

    private mutating func start() throws(RecipientFilterError) {
        count = header.reduce(0) { $0 << 8 | UInt64($1) }
        guard count <= RecipientFilter.maxItems else { throw .tooManyItems(count) }
        targets = watched.indices.map { (RecipientFilter.mapped(watched[$0], key: key, count: count), $0) }
        targets.sort { $0.value < $1.value }
    }

    private mutating func step(_ one: Bool) throws(RecipientFilterError) {
        if !inRemainder {
            if one {
                quotient += 1
                // No valid delta needs more than N·M >> P ones.
                guard quotient <= (count &* RecipientFilter.modulus) >> RecipientFilter.remainderBits else {
                    throw .outOfRange
                }
            } else {
                inRemainder = true
            }
            return
        }
        remainder = remainder << 1 | (one ? 1 : 0)
        remainderBitsRead += 1
        guard remainderBitsRead == RecipientFilter.remainderBits else { return }
        let (value, overflow) = current.addingReportingOverflow(quotient << RecipientFilter.remainderBits | remainder)
        guard !overflow, value < count &* RecipientFilter.modulus else { throw .outOfRange }
        current = value
        decoded += 1
        quotient = 0
        remainder = 0
        remainderBitsRead = 0
        inRemainder = false
        while nextTarget < targets.count, targets[nextTarget].value <= value {
            if targets[nextTarget].value == value { matched[targets[nextTarget].index] = true }
            nextTarget += 1
        }
    }

    /// After the last byte: which watched addresses matched (by their order in `watching`) and the hash of the
    /// bytes, to compare with the committed one.
    public func finish() throws(RecipientFilterError) -> (matched: [Bool], hash: Bytes32) {
        guard header.count == 4, decoded == count else { throw .truncated }
        return (matched, hasher.finalize())
    }

    /// ``finish()`` checked against the hash the state commits to.
    public func finish(committed: Bytes32) throws(RecipientFilterError) -> [Bool] {
        let result = try finish()
        guard result.hash == committed else { throw .notCommitted }
        return result.matched
    }
}
