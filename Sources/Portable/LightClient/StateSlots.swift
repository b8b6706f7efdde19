import AmarsCodec
import AmarsCrypto
import Ledger

/// Why storage refused an operation.
public enum StorageError: Error, Equatable, Sendable {
    /// The range lies outside the storage.
    case outOfBounds
    /// The device reported a failure (or, in tests, the simulated power went out).
    case ioFailure
}

/// Byte-addressed persistent storage: a flash region, an EEPROM, a file, or memory in tests.
///
/// Used as a generic constraint, never as an existential, so Embedded Swift specialises it away. A flash driver
/// that must erase before writing does so inside `write`; it should give each slot of ``StateSlots`` its own
/// erase sectors (slots are ``StateSlots/slotSize`` bytes, a multiple of common 4 KiB sectors) so that erasing one
/// slot never touches the other.
public protocol Storage {
    /// Bytes addressable from offset 0.
    var capacity: Int { get }
    mutating func read(offset: Int, count: Int) throws(StorageError) -> [UInt8]
    mutating func write(offset: Int, bytes: [UInt8]) throws(StorageError)
}

/// Storage in RAM, for tests and for the simulator's virtual devices. Starts erased (0xFF, like NOR flash).
public struct MemoryStorage: Storage, Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int, fill: UInt8 = 0xFF) {
        bytes = [UInt8](repeating: fill, count: capacity)
    }

    public var capacity: Int { bytes.count }

    public func read(offset: Int, count: Int) throws(StorageError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else { throw .outOfBounds }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func write(offset: Int, bytes new: [UInt8]) throws(StorageError) {
        guard offset >= 0, offset <= bytes.count - new.count else { throw .outOfBounds }
        for (i, b) in new.enumerated() { bytes[offset + i] = b }
    }
}

/// Why the slots could not be used.
public enum SlotError: Error, Equatable, Sendable {
    case storage(StorageError)
    /// The storage cannot hold two slots at the given offset.
    case regionTooSmall
    /// A state larger than a slot holds; impossible for a state within the committee cap (see ``StateSlots``).
    case stateTooLarge(Int)
    /// The slot read back differs from what was written: failing or worn-out storage.
    case readBackMismatch
}

/// The trusted state (``StateSlots``), or another record a device must not lose (a payment-code receiver's
/// cursors), persisted in two alternating fixed-size slots, so that a power cut at any instant of a
/// write leaves the device with either the state before the write or the state after it, never garbage
/// (SPEC "Light client": two alternating slots with a sequence number and checksum).
///
/// A write always goes to the slot not holding the newest valid record, so the newest record is never touched
/// while it is the only good copy. A record is valid only if its checksum matches, and the checksum covers
/// every byte of it, so a write cut short, or torn in any order, is simply an invalid slot and ``load()`` falls
/// back to the other one.
///
/// Record layout (big-endian integers), written from offset 0 of its slot:
///
///     magic "AMTS" (4) | write sequence (8) | payload length (4) | payload: the record's encoding
///     | checksum (32): TaggedHash("AmarsTrustedSlot") over the binding (if any), then everything before it
///
/// Slot size: the record overhead is 48 bytes and a ``TrustedState`` encodes to at most
/// ``TrustedState/maxEncodedSize`` = 5573 bytes (a committee at its cap of 128 members, each a 32-byte key and a
/// weight varint of at most 10 bytes, plus fixed fields), so 5621 bytes at most; slots are 8 KiB, two 4 KiB
/// flash sectors, which leaves room for a larger format without moving the slots. Reads are bounded by the
/// slot size, never by a length read from storage.
///
/// The write sequence counts writes and picks the newer slot; it is independent of `TrustedState.sequence`.
public struct RecordSlots<S: Storage, Record: CanonicalCodable> {
    /// Bytes per slot; the region used is twice this.
    public static var slotSize: Int { SlotFormat.slotSize }
    /// The largest state encoding a slot holds.
    public static var maxPayload: Int { SlotFormat.maxPayload }

    /// The slots as bytes: kept apart so a board with two kinds of record holds one copy of that code.
    private var region: SlotRegion<S>

    public var storage: S { region.storage }
    /// Offset of slot 0; slot 1 follows it.
    public var baseOffset: Int { region.baseOffset }
    /// What the records are bound to (the firmware passes its provisioned genesis hash): it is hashed into every
    /// checksum, so a record written for another chain, or by an image provisioned for another genesis, reads as
    /// an invalid slot and the device anchors afresh instead of resuming someone else's trust.
    public var binding: Bytes32? { region.binding }

    public init(storage: S, baseOffset: Int = 0, binding: Bytes32? = nil) throws(SlotError) {
        region = try SlotRegion(storage: storage, baseOffset: baseOffset, binding: binding)
    }

    /// The state in the valid slot with the highest write sequence, or nil when neither slot is valid (a new
    /// device, to be anchored). Storage errors are reported, not taken for an empty device.
    public mutating func load() throws(SlotError) -> Record? {
        let first = try record(0)
        let second = try record(1)
        region.scanned = true
        switch (first, second) {
        case (nil, nil):
            region.newest = nil
            return nil
        case (let a?, nil):
            region.newest = (0, a.sequence)
            return a.state
        case (nil, let b?):
            region.newest = (1, b.sequence)
            return b.state
        case (let a?, let b?):
            // Equal sequences cannot come from `store`; slot 0 wins so the choice is still deterministic.
            if b.sequence > a.sequence {
                region.newest = (1, b.sequence)
                return b.state
            }
            region.newest = (0, a.sequence)
            return a.state
        }
    }

    /// Writes `state` to the slot not holding the newest record, with the next write sequence, then reads it
    /// back. If this throws (or power fails during it), ``load()`` still returns the previous state.
    public mutating func store(_ state: Record) throws(SlotError) {
        if !region.scanned { _ = try load() }
        try region.store(state.encoded)
    }

    /// The record of `slot` if it is valid: a valid slot whose payload decodes to exactly one record.
    private mutating func record(_ slot: Int) throws(SlotError) -> (sequence: UInt64, state: Record)? {
        guard let (sequence, payload) = try region.read(slot), let state = try? Record(decoding: payload) else {
            return nil
        }
        return (sequence, state)
    }
}

/// Two slots of records as bytes: the layout, checksums and write order of ``RecordSlots``, whatever the record.
struct SlotRegion<S: Storage> {
    var storage: S
    let baseOffset: Int
    let binding: Bytes32?
    /// The slot holding the newest valid record and its write sequence, once known.
    var newest: (slot: Int, sequence: UInt64)?
    /// Whether `newest` reflects storage (set by a scan or a successful store).
    var scanned = false

    init(storage: S, baseOffset: Int, binding: Bytes32?) throws(SlotError) {
        guard baseOffset >= 0, storage.capacity - baseOffset >= 2 * SlotFormat.slotSize else {
            throw .regionTooSmall
        }
        self.storage = storage
        self.baseOffset = baseOffset
        self.binding = binding
    }

    /// The record's checksum: over the binding (when there is one), then every byte before the checksum.
    private func checksum(_ record: [UInt8]) -> Bytes32 {
        var hasher = SlotFormat.checksumTag.hasher()
        if let binding { hasher.update(binding) }
        hasher.update(record)
        return hasher.finalize()
    }

    /// Writes `payload` to the slot not holding the newest record, with the next write sequence, then reads it
    /// back.
    mutating func store(_ payload: [UInt8]) throws(SlotError) {
        guard payload.count <= SlotFormat.maxPayload else { throw .stateTooLarge(payload.count) }
        let target = newest.map { 1 - $0.slot } ?? 0
        let sequence = (newest?.sequence ?? 0) &+ 1
        var w = ByteWriter(capacity: SlotFormat.headerSize + payload.count + SlotFormat.checksumSize)
        SlotFormat.writeBigEndian(UInt64(SlotFormat.magic), bytes: 4, to: &w)
        SlotFormat.writeBigEndian(sequence, bytes: 8, to: &w)
        SlotFormat.writeBigEndian(UInt64(payload.count), bytes: 4, to: &w)
        w.write(payload)
        w.write(checksum(w.bytes))
        let offset = baseOffset + target * SlotFormat.slotSize
        // On any failure the target slot's contents are unknown, but the other slot is untouched, so `newest`
        // still names the right record and the next store targets the same slot again.
        let back: [UInt8]
        do throws(StorageError) {
            try storage.write(offset: offset, bytes: w.bytes)
            back = try storage.read(offset: offset, count: w.bytes.count)
        } catch {
            throw .storage(error)
        }
        guard back == w.bytes else { throw .readBackMismatch }
        newest = (target, sequence)
    }

    /// The payload of `slot` and its write sequence if the slot is valid: magic, a length within the slot and a
    /// matching checksum.
    mutating func read(_ slot: Int) throws(SlotError) -> (sequence: UInt64, payload: [UInt8])? {
        let offset = baseOffset + slot * SlotFormat.slotSize
        let header: [UInt8]
        do throws(StorageError) {
            header = try storage.read(offset: offset, count: SlotFormat.headerSize)
        } catch {
            throw .storage(error)
        }
        guard SlotFormat.readBigEndian(header, at: 0, bytes: 4) == UInt64(SlotFormat.magic) else { return nil }
        let sequence = SlotFormat.readBigEndian(header, at: 4, bytes: 8)
        let length = Int(SlotFormat.readBigEndian(header, at: 12, bytes: 4))
        guard length <= SlotFormat.maxPayload else { return nil }
        let rest: [UInt8]
        do throws(StorageError) {
            rest = try storage.read(offset: offset + SlotFormat.headerSize, count: length + SlotFormat.checksumSize)
        } catch {
            throw .storage(error)
        }
        let payload = Array(rest[0..<length])
        guard let stored = Bytes32(rest[length...]), checksum(header + payload) == stored else { return nil }
        return (sequence, payload)
    }
}

/// The device's trusted state in two slots: the light client's memory across power cycles.
public typealias StateSlots<S: Storage> = RecordSlots<S, TrustedState>

/// The record format's constants, outside the generic type so the checksum tag is computed once.
enum SlotFormat {
    static let slotSize = 8192
    static let headerSize = 16
    static let checksumSize = 32
    static let maxPayload = slotSize - headerSize - checksumSize
    static let magic: UInt32 = 0x414D_5453  // "AMTS"
    static let checksumTag = TaggedHash(tag: "AmarsTrustedSlot")

    static func writeBigEndian(_ value: UInt64, bytes count: Int, to w: inout ByteWriter) {
        for i in (0..<count).reversed() { w.write(UInt8(truncatingIfNeeded: value >> UInt64(8 * i))) }
    }

    static func readBigEndian(_ bytes: [UInt8], at start: Int, bytes count: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in start..<start + count { v = v << 8 | UInt64(bytes[i]) }
        return v
    }
}
