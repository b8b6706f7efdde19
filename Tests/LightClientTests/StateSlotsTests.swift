import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

/// Storage that loses power after a budget of written bytes: the write in progress keeps its first bytes, the
/// rest of the region keeps whatever it held before, and the write reports failure.
struct PowerCutStorage: Storage {
    var inner: MemoryStorage
    /// Bytes that may still be written before the cut; nil for no cut.
    var budget: Int?
    /// The last write requested, whole, even if it was cut.
    var lastWrite: (offset: Int, bytes: [UInt8])?

    var capacity: Int { inner.capacity }

    func read(offset: Int, count: Int) throws(StorageError) -> [UInt8] {
        try inner.read(offset: offset, count: count)
    }

    mutating func write(offset: Int, bytes: [UInt8]) throws(StorageError) {
        lastWrite = (offset, bytes)
        guard let left = budget else { return try inner.write(offset: offset, bytes: bytes) }
        if bytes.count <= left {
            budget = left - bytes.count
            return try inner.write(offset: offset, bytes: bytes)
        }
        try inner.write(offset: offset, bytes: Array(bytes[0..<left]))
        budget = 0
        throw .ioFailure
    }
}

final class StateSlotsTests: XCTestCase {
    static let chain = SyntheticChain(epochs: 4)
    let regionSize = 2 * StateSlots<MemoryStorage>.slotSize

    func state(_ n: Int) -> TrustedState { Self.chain.state(afterEpochs: n) }

    func testBlankStorageLoadsNothing() throws {
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        XCTAssertNil(try slots.load())
        var zeroed = try StateSlots(storage: MemoryStorage(capacity: regionSize, fill: 0))
        XCTAssertNil(try zeroed.load())
    }

    func testStoreAlternatesSlotsAndLoadPicksTheNewest() throws {
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try slots.store(state(0))
        XCTAssertEqual(try slots.load(), state(0))
        let afterFirst = slots.storage.bytes
        try slots.store(state(1))
        // The second write went to slot 1 and left slot 0 byte for byte as it was.
        let size = StateSlots<MemoryStorage>.slotSize
        XCTAssertEqual(Array(slots.storage.bytes[0..<size]), Array(afterFirst[0..<size]))
        try slots.store(state(2))
        try slots.store(state(3))
        // A fresh instance over the same bytes (a reboot) finds the newest.
        var rebooted = try StateSlots(storage: slots.storage)
        XCTAssertEqual(try rebooted.load(), state(3))
        try rebooted.store(state(4))
        var again = try StateSlots(storage: rebooted.storage)
        XCTAssertEqual(try again.load(), state(4))
    }

    /// A record of another kind (a payment-code receiver's cursors on a board) in the slots after the trusted
    /// state's: each region keeps its own records and write order, and a region never reads the other kind.
    func testTwoRecordKindsInOneStorageKeepTheirOwnSlots() throws {
        struct Cursor: CanonicalCodable, Equatable {
            var value: UInt64
            func encode(to w: inout ByteWriter) { w.writeVarint(value) }
            init(value: UInt64) { self.value = value }
            init(from r: inout ByteReader) throws(CodecError) { value = try r.readVarint() }
        }
        let storage = MemoryStorage(capacity: 2 * regionSize)
        var trusted = try StateSlots(storage: storage)
        try trusted.store(state(1))
        var cursors = try RecordSlots<MemoryStorage, Cursor>(storage: trusted.storage, baseOffset: regionSize)
        XCTAssertNil(try cursors.load())
        for value in [7, 8, 9] as [UInt64] { try cursors.store(Cursor(value: value)) }
        // Rebooted: each region finds its newest record; the trusted state's region, read as cursors, holds none
        // (its payload is not one cursor), and the cursors' region holds no trusted state.
        var trustedAgain = try StateSlots(storage: cursors.storage)
        var cursorsAgain = try RecordSlots<MemoryStorage, Cursor>(storage: cursors.storage, baseOffset: regionSize)
        XCTAssertEqual(try trustedAgain.load(), state(1))
        XCTAssertEqual(try cursorsAgain.load(), Cursor(value: 9))
        var misread = try RecordSlots<MemoryStorage, Cursor>(storage: cursors.storage)
        XCTAssertNil(try misread.load())
        var misreadState = try StateSlots(storage: cursors.storage, baseOffset: regionSize)
        XCTAssertNil(try misreadState.load())
        XCTAssertThrowsError(try RecordSlots<MemoryStorage, Cursor>(storage: storage, baseOffset: regionSize + 1))
    }

    /// Records bound to one genesis read as empty slots under another binding (or none), and writing under the
    /// new binding then works as on a blank device.
    func testRecordsOfAnotherBindingAreInvalid() throws {
        let genesisA = Bytes32(w0: 0xA, w1: 0, w2: 0, w3: 1)
        let genesisB = Bytes32(w0: 0xB, w1: 0, w2: 0, w3: 1)
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize), binding: genesisA)
        try slots.store(state(0))
        try slots.store(state(1))
        var sameChain = try StateSlots(storage: slots.storage, binding: genesisA)
        XCTAssertEqual(try sameChain.load(), state(1))
        var otherChain = try StateSlots(storage: slots.storage, binding: genesisB)
        XCTAssertNil(try otherChain.load())
        var unbound = try StateSlots(storage: slots.storage)
        XCTAssertNil(try unbound.load())
        try otherChain.store(state(2))
        var rebooted = try StateSlots(storage: otherChain.storage, binding: genesisB)
        XCTAssertEqual(try rebooted.load(), state(2))
        var old = try StateSlots(storage: otherChain.storage, binding: genesisA)
        // Chain B's first record went to slot 0 (no valid slot under B); slot 1 still holds A's newest.
        XCTAssertEqual(try old.load(), state(1))
    }

    func testStoreWithoutLoadFindsTheCurrentSlotItself() throws {
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try slots.store(state(0))
        try slots.store(state(1))
        var rebooted = try StateSlots(storage: slots.storage)
        try rebooted.store(state(2))  // must overwrite slot 0 (state 0), not slot 1 (state 1)
        var check = try StateSlots(storage: rebooted.storage)
        XCTAssertEqual(try check.load(), state(2))
        var slot1Only = rebooted.storage
        for i in 0..<StateSlots<MemoryStorage>.slotSize { slot1Only.bytes[i] = 0xFF }
        var fallback = try StateSlots(storage: slot1Only)
        XCTAssertEqual(try fallback.load(), state(1))
    }

    func testCorruptionAnywhereInTheNewestRecordFallsBackToTheOlder() throws {
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try slots.store(state(1))
        try slots.store(state(2))  // slot 1
        let recordSize = 16 + state(2).encoded.count + 32
        let base = StateSlots<MemoryStorage>.slotSize
        for offset in 0..<recordSize {
            var damaged = slots.storage
            damaged.bytes[base + offset] ^= 0x01
            var reloaded = try StateSlots(storage: damaged)
            XCTAssertEqual(try reloaded.load(), state(1), "bit flip at record byte \(offset)")
        }
    }

    func testRegionMustHoldTwoSlots() {
        XCTAssertThrowsError(try StateSlots(storage: MemoryStorage(capacity: regionSize - 1)))
        XCTAssertThrowsError(try StateSlots(storage: MemoryStorage(capacity: regionSize + 10), baseOffset: 11))
        XCTAssertNoThrow(try StateSlots(storage: MemoryStorage(capacity: regionSize + 10), baseOffset: 10))
    }

    func testSlotsAtAnOffsetLeaveTheRestAlone() throws {
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize + 200, fill: 0xAB), baseOffset: 100)
        try slots.store(state(1))
        try slots.store(state(2))
        XCTAssertEqual(Array(slots.storage.bytes[0..<100]), [UInt8](repeating: 0xAB, count: 100))
        XCTAssertEqual(Array(slots.storage.bytes[(100 + regionSize)...]), [UInt8](repeating: 0xAB, count: 100))
        var rebooted = try StateSlots(storage: slots.storage, baseOffset: 100)
        XCTAssertEqual(try rebooted.load(), state(2))
    }

    // MARK: power cuts

    /// Cuts power after every possible number of written bytes of the store of `new` over `storage`, reboots,
    /// and checks that load returns `old` (nil for a blank device) or, only once every byte is written, `new`.
    /// After each cut it also checks that the device recovers: the next full store becomes the state.
    private func assertPowerCutSafe(
        storage: MemoryStorage, old: TrustedState?, new: TrustedState, file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let recordSize = 16 + new.encoded.count + 32
        for cut in 0...recordSize {
            var slots = try StateSlots(storage: PowerCutStorage(inner: storage, budget: cut))
            XCTAssertEqual((try? slots.store(new)) != nil, cut == recordSize, file: file, line: line)
            var rebooted = try StateSlots(storage: slots.storage.inner)
            let loaded = try rebooted.load()
            if cut < recordSize {
                XCTAssertEqual(loaded, old, "power cut after \(cut) bytes", file: file, line: line)
            } else {
                XCTAssertEqual(loaded, new, file: file, line: line)
            }
            // Whatever survived, the next store succeeds and becomes the state.
            try rebooted.store(new)
            var third = try StateSlots(storage: rebooted.storage)
            XCTAssertEqual(try third.load(), new, file: file, line: line)
        }
    }

    func testPowerCutAtEveryByteOfTheFirstStore() throws {
        try assertPowerCutSafe(storage: MemoryStorage(capacity: regionSize), old: nil, new: state(0))
    }

    func testPowerCutAtEveryByteOverAnOlderRecord() throws {
        // Slot 0 holds state 1 (sequence 1), slot 1 state 2 (sequence 2): the store of state 3 goes over state 1,
        // whose bytes stay in place past the cut.
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try slots.store(state(1))
        try slots.store(state(2))
        try assertPowerCutSafe(storage: slots.storage, old: state(2), new: state(3))
        // Same again with the older record being the very same state, so most old and new bytes coincide.
        var same = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try same.store(state(3))
        try same.store(state(2))
        try assertPowerCutSafe(storage: same.storage, old: state(2), new: state(3))
    }

    func testPowerCutAtEveryByteWithTheLargestCommittee() throws {
        // 128 members with 9-byte weights and every integer field at its longest: the largest state there is.
        let members = (0..<Caps.committeeMembers).map {
            Committee.Member(
                key: Bytes32(w0: UInt64($0) + 1, w1: 0, w2: 0, w3: 0), weight: UInt64.max / 128 - UInt64($0))
        }
        let big = TrustedState(
            chainID: UInt32.max, genesis: Bytes32(w0: 3, w1: 3, w2: 3, w3: 3), epochLength: 1, epoch: UInt64.max / 2,
            committee: try Committee(epoch: UInt64.max / 2, members: members),
            checkpointHash: Bytes32(w0: 1, w1: 1, w2: 1, w3: 1), height: UInt64.max / 2,
            stateRoot: Bytes32(w0: 2, w1: 2, w2: 2, w3: 2), sequence: UInt64.max, timestamp: UInt64.max,
            poolHash: Bytes32(w0: 4, w1: 4, w2: 4, w3: 4))
        let encoded = big.encoded
        XCTAssertLessThanOrEqual(encoded.count, TrustedState.maxEncodedSize)
        XCTAssertGreaterThan(encoded.count, TrustedState.maxEncodedSize - 200)
        XCTAssertLessThanOrEqual(encoded.count, StateSlots<MemoryStorage>.maxPayload)
        XCTAssertEqual(try TrustedState(decoding: encoded), big)
        var slots = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try slots.store(state(1))
        try slots.store(big)
        try assertPowerCutSafe(storage: slots.storage, old: big, new: state(2))
        var bigAgain = try StateSlots(storage: MemoryStorage(capacity: regionSize))
        try bigAgain.store(state(1))
        try assertEveryPrefixSafe(storage: bigAgain.storage, old: state(1), new: big)
    }

    /// The same property as ``assertPowerCutSafe``, cheaper for large records (debug builds hash slowly): the
    /// store runs once, its write is captured, and each cut is the storage image with a prefix of that write.
    private func assertEveryPrefixSafe(storage: MemoryStorage, old: TrustedState, new: TrustedState) throws {
        var recorder = try StateSlots(storage: PowerCutStorage(inner: storage, budget: nil))
        try recorder.store(new)
        let write = try XCTUnwrap(recorder.storage.lastWrite)
        XCTAssertEqual(write.bytes.count, 16 + new.encoded.count + 32)
        var image = storage
        for cut in 0...write.bytes.count {
            if cut > 0 { image.bytes[write.offset + cut - 1] = write.bytes[cut - 1] }
            var rebooted = try StateSlots(storage: image)
            XCTAssertEqual(try rebooted.load(), cut == write.bytes.count ? new : old, "power cut after \(cut) bytes")
        }
    }

    func testTrustedStateFitsASlotByConstruction() {
        XCTAssertEqual(TrustedState.maxEncodedSize, 5573)
        XCTAssertLessThanOrEqual(TrustedState.maxEncodedSize, StateSlots<MemoryStorage>.maxPayload)
    }
}
