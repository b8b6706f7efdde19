// The payment-code firmware (FIRMWARE_APP=paycode): after the sync, the device is paid by payment code and spends
// from a one-time account. The receiving logic is DeviceCore's PaymentCodeReceiver, the one `amars device paycode`
// and the simulator run; this file only drives its rounds, prints what it found and keeps its cursors in the
// board's storage, in the two slots after the trusted state's.
//
// The device's payment code is BIP47's node m/47'/1717'/0' of its provisioned secret taken as a BIP32 seed, as
// `amars paycode show --key` derives it; the device derives it itself and refuses to run if it is not the code
// the image was provisioned with. It proves and unmasks every new notification to its notification address,
// tests each finished epoch's committed recipient filter for its payers' one-time addresses (asking the gateway
// only for the epoch), and proves the accounts that matched. It waits until it has found the provisioned number
// of payments (PAYCODE_EXPECT) in this run, then pays the provisioned recipient from the one-time account that
// holds the most, and proves that payment final. A second run resumes from the saved cursors: payments found
// before are not found again.
//
// Exit statuses besides Device.swift's: 82 when the payments did not arrive in time, 86 when the payment-code
// keys are not the provisioned code, 87 when the receiver's cursors cannot be saved.
#if FIRMWARE_PAYCODE
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceCore
    import Ledger
    import LightClient
    import PaymentCodes

    enum PaycodeStatus {
        static let wrongCode: Int32 = 86
        static let saveFailed: Int32 = 87
    }

    typealias ReceiverSlots = RecordSlots<BoardStorage, PaymentCodeReceiver.State>

    /// The receiver's cursors: two slots after the trusted state's, bound to the provisioned genesis too.
    @inline(never)
    func receiverSlots() -> ReceiverSlots {
        do {
            return try ReceiverSlots(
                storage: BoardStorage(), baseOffset: 2 * StateSlots<BoardStorage>.slotSize,
                binding: Bytes32(provisionedGenesisHash))
        } catch {
            Console.line("storage: the board's region cannot hold the payment-code slots (32 KiB needed)")
            fail(PaycodeStatus.saveFailed, "storage")
        }
    }

    @inline(never)
    func loadReceiverState(_ slots: inout ReceiverSlots) -> PaymentCodeReceiver.State {
        let loaded: PaymentCodeReceiver.State?
        do { loaded = try slots.load() } catch {
            // Reading from the first again finds nothing twice on chain, only reports it again.
            Console.line("storage: the payment-code cursors are unreadable, reading notifications from the first")
            return PaymentCodeReceiver.State()
        }
        guard let saved = loaded else {
            Console.line("paycode: no saved cursors, reading notifications from the first")
            return PaymentCodeReceiver.State()
        }
        Console.write("paycode: resumed ")
        Console.decimal(saved.payers.count)
        Console.write(" payers, next notification ")
        Console.decimal(saved.notificationIndex)
        Console.write(", next epoch ")
        Console.decimal(saved.nextEpoch)
        for payer in saved.payers {
            Console.write(", next index ")
            Console.decimal(UInt64(payer.nextIndex))
        }
        Console.newline()
        return saved
    }

    @inline(never)
    func saveReceiverState(_ slots: inout ReceiverSlots, _ state: PaymentCodeReceiver.State) {
        do { try slots.store(state) } catch {
            Console.line("storage: saving the payment-code cursors failed")
            fail(PaycodeStatus.saveFailed, "storage")
        }
    }

    /// The device's payment-code keys, derived from its secret; they must give the provisioned code.
    @inline(never)
    func provisionedPaycodeKeys() -> PaymentCodeKeys {
        guard let keys = try? PaymentCodeKeys(seed: provisionedDeviceSecret),
            keys.code.binary == provisionedPaymentCode
        else { fail(PaycodeStatus.wrongCode, "payment-code keys do not give the provisioned code") }
        Console.write("paycode: payment code ")
        Console.text(provisionedPaymentCodeText)
        Console.newline()
        return keys
    }

    func showReceiverEvent(_ event: PaymentCodeReceiver.Event) {
        switch event {
        case .payerAdded(let sender), .payerKnown(let sender), .payersFull(let sender):
            Console.write("paycode: notification from ")
            Console.hex(sender.raw.bytes)
            if case .payerAdded = event {
                Console.line(" proven and unmasked: payer added")
            } else if case .payerKnown = event {
                Console.line(" again: payer already known")
            } else {
                Console.line(" not kept: the device keeps 8 payers")  // PaymentCodeReceiver.maxPayers
            }
        case .notificationSkipped(let index, _):
            Console.write("paycode: notification ")
            Console.decimal(index)
            Console.line(" does not unmask to a payment code: skipped")
        case .epochTested(let epoch, let matches, let bytes):
            Console.write("paycode: epoch ")
            Console.decimal(epoch)
            Console.write(": filter of ")
            Console.decimal(bytes)
            Console.write(" bytes checked against its committed hash, ")
            Console.decimal(matches)
            Console.line(" match(es)")
        case .emptyMatch(let address):
            Console.write("paycode: ")
            Console.hex(address.raw.bytes)
            Console.line(" matched but holds nothing (a false positive)")
        case .payment(let p):
            Console.write("paycode: paid ")
            Console.decimal(p.account.state.balance)
            Console.write(" units at one-time account ")
            Console.hex(p.address.raw.bytes)
            Console.write(" (payer ")
            Console.decimal(p.payer)
            Console.write(", index ")
            Console.decimal(UInt64(p.index))
            Console.write(", epoch ")
            Console.decimal(p.epoch)
            Console.write("), balance proven against the state root of block ")
            Console.decimal(p.account.header.height)
            Console.newline()
        }
    }

    // The receiver's steps out of line: their key derivations (HMAC-SHA512, ECDH) need a few KiB of stack, which
    // must be free again before `perform` verifies the next answer, the deepest path of the image.
    @inline(never)
    func nextOperation(_ receiver: inout PaymentCodeReceiver) -> DeviceOperation? { receiver.next() }

    @inline(never)
    func handled(_ outcome: DeviceOutcome, _ receiver: inout PaymentCodeReceiver) -> [PaymentCodeReceiver.Event] {
        do { return try receiver.handle(outcome) } catch { refused(error, during: .receive) }
    }

    /// Rounds of the receiver until `expected` payments were found in this run, saving the cursors after each.
    @inline(never)
    func receivePayments(
        _ receiver: inout PaymentCodeReceiver, _ link: inout BoardLink, _ slots: inout ReceiverSlots,
        expected: Int
    ) -> [PaymentCodeReceiver.Payment] {
        var found: [PaymentCodeReceiver.Payment] = []
        let start = board_millis()
        while true {
            // Every change to the cursors comes with an event: a round without one leaves the flash alone.
            var changed = false
            while let operation = nextOperation(&receiver) {
                let outcome = perform(operation, &session, &link, .receive)
                for event in handled(outcome, &receiver) {
                    changed = true
                    showReceiverEvent(event)
                    if case .payment(let p) = event { found.append(p) }
                }
            }
            if changed { saveReceiverState(&slots, receiver.state) }
            if found.count >= expected { return found }
            if board_millis() &- start > Waits.receiveMillis {
                Console.write("paycode: found ")
                Console.decimal(found.count)
                Console.write(" of ")
                Console.decimal(expected)
                Console.line(" payments in time")
                fail(Status.noPaymentReceived, "payments")
            }
            link.sleep(millis: Waits.roundPauseMillis)
            receiver.newRound()
        }
    }

    /// The receiver over the saved cursors. Out of line, like ``oneTimeWallet(_:_:)``: their key derivations
    /// need kilobytes of stack, which must not stay reserved while the session verifies answers.
    @inline(never)
    func makeReceiver(_ saved: PaymentCodeReceiver.State) -> PaymentCodeReceiver {
        guard
            let receiver = try? PaymentCodeReceiver(
                keys: provisionedPaycodeKeys(), state: saved, epochLength: provisionedEpochLength)
        else { fail(PaycodeStatus.wrongCode, "payment-code keys") }
        return receiver
    }

    /// The wallet of the one-time account that holds the most of `found`.
    @inline(never)
    func oneTimeWallet(_ receiver: PaymentCodeReceiver, _ found: [PaymentCodeReceiver.Payment]) -> DeviceWallet {
        var richest = found[0]
        for p in found where p.account.state.balance > richest.account.state.balance { richest = p }
        guard let key = try? receiver.spendingKey(richest) else { fail(Status.cannotPay, "one-time key") }
        Console.write("pay: from one-time account ")
        Console.hex(richest.address.raw.bytes)
        Console.newline()
        return DeviceWallet(key: key, nextNonce: 0)
    }

    /// Be paid by payment code (resuming the saved cursors), then pay the provisioned recipient from the richest
    /// one-time account found, prove it final, sync and save.
    @inline(never)
    func paycodePhase(_ link: inout BoardLink, _ trustedSlots: inout StateSlots<BoardStorage>) {
        board_stack_reset_peak()
        var slots = receiverSlots()
        var receiver = makeReceiver(loadReceiverState(&slots))
        let found = receivePayments(&receiver, &link, &slots, expected: Int(provisionedExpectedPayments))
        Console.write("paycode: found ")
        Console.decimal(found.count)
        Console.write(" payment(s) from ")
        Console.decimal(receiver.state.payers.count)
        Console.line(" payer(s), each proven")
        stepDone()
        session.setWallet(oneTimeWallet(receiver, found))
        let payment = pay(&session, &link)
        let (newHead, _) = syncToHead(&session, &link)
        saveTrustedState(&trustedSlots, session.trusted!)
        Console.write("pay: paid ")
        Console.decimal(provisionedPayAmount)
        Console.write(" units from a one-time account, nonce ")
        Console.decimal(payment.nonce)
        Console.write(", final at height ")
        Console.decimal(payment.inclusion.header.height)
        Console.write(", synced to ")
        Console.decimal(newHead.height)
        Console.newline()
        Console.memory(stackPeak: payStackPeak, " (the deepest step)")
        Console.line("paycode: PASS")
    }
#endif
