// The sync firmware's receiving side: a terminal whose proven balance is too low to pay waits to be paid first.
// It polls `v1/inbox?a=<own address>&from=<height>` (final transfers paying it, as the gateway lists them) and
// proves the first one itself before it counts: the transaction pays this device, its id is in the transactions
// root of a header verified with the committee of its epoch, and its receipt (success) is in that header's
// receipts root. A gateway can delay or hide a payment; it cannot invent one.
#if FIRMWARE_SYNC
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceProtocol
    import Ledger
    import LightClient

    enum ReceiveLimits {
        /// How long the device waits for a transfer, and how often it asks.
        static let waitMillis: UInt32 = 120_000
        static let pollMillis: UInt32 = 250
        /// Entries one inbox answer may list (the gateway's cap; more is a protocol violation).
        static let maxEntries: UInt64 = 4
    }

    /// Waits (at most `ReceiveLimits.waitMillis`) for a final transfer paying `address` in block `from` or later,
    /// proves it, and returns its amount. A listed transfer whose proven receipt says failed is passed over.
    @inline(never)
    func awaitIncoming(_ link: inout Link, _ trusted: inout TrustedState, _ address: Address, from: UInt64)
        -> UInt64
    {
        Console.write("receive: waiting for a transfer to ")
        Console.text(provisionedDeviceBech32)
        Console.write(" from height ")
        Console.decimal(from)
        Console.newline()
        let deadline = board_millis() &+ ReceiveLimits.waitMillis
        // The first transfer still to look at: block `from`, position `position`. Every entry must be at or after
        // it (a payment already counted in the proven balance is not a new one), and the cursor moves past each
        // entry looked at.
        var from = from
        var position: UInt64 = 0
        var polls = 0
        while true {
            let code: CoAPCode
            do {
                code = try link.get(
                    DeviceResources.inbox,
                    query: [
                        [UInt8(ascii: "a"), UInt8(ascii: "=")] + provisionedDeviceBech32,
                        DeviceRequest.argument("from", decimal: from),
                        DeviceRequest.argument("pos", decimal: position),
                    ]
                )
            } catch {
                transportFailure(error, DeviceResources.inbox)
            }
            guard code.isSuccess else { transportFailure(.code(code.rawValue), DeviceResources.inbox) }
            polls += 1
            if let entry = firstInboxEntry(link.bodyBytes()) {
                guard entry.height > from || (entry.height == from && entry.position >= position) else {
                    fail(PayStatus.inconsistent, "the inbox lists a transfer before the one asked for")
                }
                Console.write("receive: the gateway lists a transfer at height ")
                Console.decimal(entry.height)
                Console.write(" after ")
                Console.decimal(polls)
                Console.line(" polls")
                if let amount = verifyIncoming(&link, &trusted, address, entry) { return amount }
                from = entry.height
                position = entry.position &+ 1
            } else {
                link.wait(millis: ReceiveLimits.pollMillis)
            }
            guard Int32(bitPattern: deadline &- board_millis()) > 0 else {
                fail(PayStatus.noPaymentReceived, "no transfer arrived in time")
            }
        }
    }

    struct InboxEntry {
        var height: UInt64
        var position: UInt64
        var transfer: IncomingTransfer
    }

    /// The first entry of an inbox answer (a count, then height, position and signed transaction per entry), or
    /// nil for an empty list. A count over the cap or bytes that do not decode end the run.
    func firstInboxEntry(_ body: [UInt8]) -> InboxEntry? {
        var reader = ByteReader(body)
        do {
            let count = try reader.readVarint()
            guard count <= ReceiveLimits.maxEntries else { fail(SyncStatus.undecodable, "inbox lists too many") }
            guard count > 0 else {
                try reader.finish()
                return nil
            }
            let height = try reader.readVarint()
            let position = try reader.readVarint()
            let transfer = try IncomingTransfer(reading: &reader)
            return InboxEntry(height: height, position: position, transfer: transfer)
        } catch .unknownTag {
            fail(PayStatus.inconsistent, "the inbox lists a transaction that is not a transfer")
        } catch {
            fail(SyncStatus.undecodable, "inbox payload does not decode")
        }
    }

    /// The listed transfer proven, or nil when its proven receipt says it failed.
    @inline(never)
    func verifyIncoming(_ link: inout Link, _ trusted: inout TrustedState, _ address: Address, _ entry: InboxEntry)
        -> UInt64?
    {
        let transfer = entry.transfer
        guard transfer.to == address else {
            fail(PayStatus.inconsistent, "the inbox lists a transfer that does not pay this device")
        }
        let id = transfer.id
        let (position, receipt) = provenReceipt(&link, &trusted, id, height: entry.height, "receive")
        guard position == entry.position else { fail(PayStatus.inconsistent, "inbox position is not the proven one") }
        guard receipt.status == .success else {
            Console.line("receive: that transfer failed on chain; waiting for another")
            return nil
        }
        Console.write("receive: ")
        Console.decimal(transfer.amount)
        Console.write(" units from key ")
        Console.hex(transfer.sender.bytes)
        Console.write(", final at height ")
        Console.decimal(entry.height)
        Console.write(", position ")
        Console.decimal(position)
        Console.line(": inclusion and receipt verified")
        return transfer.amount
    }
#endif
