// The sync firmware's memory across power cycles: the trusted state in the board's persistent storage (flash on
// a real board, a host file through semihosting on QEMU), kept by LightClient's StateSlots in two alternating
// slots. At boot the newest valid slot is loaded and the device resumes from it instead of genesis; after each
// sync the new state goes to the other slot, so a power cut during that write leaves the previous state.
#if FIRMWARE_SYNC
    import Board
    import LightClient

    /// The board's storage driver (board.h) as LightClient's ``Storage``: byte reads, and writes that erase the
    /// sectors they cover first (each slot has sectors of its own, so a write never touches the other slot).
    struct BoardStorage: Storage {
        var capacity: Int { Int(board_storage_size()) }

        mutating func read(offset: Int, count: Int) throws(StorageError) -> [UInt8] {
            guard offset >= 0, count >= 0, offset <= capacity - count else { throw .outOfBounds }
            var out = [UInt8](repeating: 0, count: count)
            let status = out.withUnsafeMutableBufferPointer { board_storage_read(offset, $0.baseAddress, count) }
            guard status == 0 else { throw .ioFailure }
            return out
        }

        mutating func write(offset: Int, bytes: [UInt8]) throws(StorageError) {
            guard offset >= 0, offset <= capacity - bytes.count else { throw .outOfBounds }
            let status = bytes.withUnsafeBufferPointer { board_storage_write(offset, $0.baseAddress, bytes.count) }
            guard status == 0 else { throw .ioFailure }
        }
    }

    enum StorageStatus {
        static let saveFailed: Int32 = 83
    }

    /// The saved trusted state if one is valid and belongs to the provisioned chain (the slots' checksums are
    /// bound to the provisioned genesis hash), else nil: a new device, or storage left by an image of another
    /// chain; it anchors at genesis and overwrites it.
    @inline(never)
    func loadTrustedState(_ slots: inout StateSlots<BoardStorage>) -> TrustedState? {
        let saved: TrustedState?
        do { saved = try slots.load() } catch {
            Console.line("storage: unreadable, starting from genesis")
            return nil
        }
        guard let saved else {
            Console.line("storage: no saved trusted state")
            return nil
        }
        guard saved.chainID == provisionedChainID, saved.epochLength == provisionedEpochLength else {
            Console.line("storage: saved state is of another chain, starting from genesis")
            return nil
        }
        Console.write("storage: resumed trusted epoch ")
        Console.decimal(saved.epoch)
        Console.write(" (checkpoint at height ")
        Console.decimal(saved.height)
        Console.line(")")
        return saved
    }

    /// Saves `trusted` to the older slot; a failure ends the run (the device would forget what it verified).
    @inline(never)
    func saveTrustedState(_ slots: inout StateSlots<BoardStorage>, _ trusted: TrustedState) {
        do { try slots.store(trusted) } catch {
            Console.line("storage: saving the trusted state failed")
            fail(StorageStatus.saveFailed, "storage")
        }
        Console.write("storage: saved trusted epoch ")
        Console.decimal(trusted.epoch)
        Console.newline()
    }
#endif
