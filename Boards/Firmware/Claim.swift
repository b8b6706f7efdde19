// The HTLC-claiming app (FIRMWARE_APP=claim): a lock that releases against a secret. Someone locked a payment
// for the device under SHA-256 of a secret (`amars htlc lock`); the device holds the secret (provisioned here, as a
// keypad or an NFC tag would hand it over) and releases only once the payment is its own, proven on chain.
//
// After the sync, DeviceCore's `claim` operation (the same one `amars device htlc --secret` runs) proves the HTLC
// open, for this device, unexpired at the next block and locked to the secret's hash, signs the claim, submits it
// and proves it final and successful; the board then prints RELEASED, syncs and saves its trusted state. A
// contract it may not claim (already claimed, another recipient's, expired, another hash) is refused from the
// proven state before anything is signed: exit status 88 with the chain's reason.
//
// The claim is one measured interval for the instruction counter (`make -C Boards sync SYNC_COUNT=1`), with every
// exchange and wait on the link left out: what remains is the session's own work for the claim (headers and proofs
// checked, the claim signed), without CoAP framing.
#if FIRMWARE_SYNC && FIRMWARE_CLAIM
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceCore
    import Ledger
    import LightClient

    /// The mark tag of the claim's interval.
    let claimMark: UInt32 = 0xC1A1

    @inline(never)
    func claimPhase(_ link: inout BoardLink, _ slots: inout StateSlots<BoardStorage>) {
        board_stack_reset_peak()
        guard let lockID = Bytes32(provisionedHTLCID), let secret = Bytes32(provisionedHTLCSecret) else {
            fail(Status.badProvisioning, "no HTLC provisioned: HTLC_ID and HTLC_SECRET")
        }
        session.setWallet(provisionedWallet())
        Console.write("claim: device ")
        Console.text(provisionedDeviceBech32)
        Console.write(" claims HTLC ")
        Console.hex(lockID.bytes)
        Console.newline()
        let aux = Bytes32(w0: UInt64(board_millis()), w1: UInt64(link.link.requests), w2: 0, w3: 0)
        let order = HTLCClaimOrder(
            lockID: lockID, preimage: secret, tipPerUnit: provisionedTipPerUnit, auxRandom: aux,
            finalityMillis: Waits.finalityMillis)
        let requestsBefore = link.link.requests
        link.measuring = claimMark
        board_mark_begin(claimMark)
        let outcome = perform(.claim(order), &session, &link, .claim)
        board_mark_end(claimMark)
        link.measuring = 0
        guard case .claimed(let claimed) = outcome else { fail(Status.badProvisioning, "session") }
        let at = claimed.payment.inclusion
        printInclusion("claim", at)
        Console.write("claim: claimed ")
        Console.decimal(claimed.amount)
        Console.write(" units, nonce ")
        Console.decimal(claimed.payment.nonce)
        Console.write(", final at height ")
        Console.decimal(at.header.height)
        Console.write(" after ")
        Console.decimal(at.polls)
        Console.write(" polls, fee ")
        Console.decimal(at.receipt.feePaid)
        Console.write(", ")
        Console.decimal(link.link.requests &- requestsBefore)
        Console.line(" requests")
        stepDone()
        Console.line("claim: RELEASED")
        let (newHead, _) = syncToHead(&session, &link)
        saveTrustedState(&slots, session.trusted!)
        Console.write("claim: re-synced to height ")
        Console.decimal(newHead.height)
        Console.line(", trusted state saved")
        Console.memory(stackPeak: payStackPeak, " (the deepest step)")
        Console.line("claim: PASS")
    }
#endif
