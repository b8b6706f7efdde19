// The certificate-renewing app (FIRMWARE_APP=renew): a device that keeps its own short-lived TLS certificate
// (SPEC "Device identity"). Its long-lived certificate was enrolled under the operator's root (`amars cert
// enroll`); the board derives a fresh key, and DeviceCore's `renew` operation (the same one `amars device renew`
// runs) signs a certificate for it with the device's long-lived key, dated by the verified head's time, publishes
// it from the device's account and proves it final and successful. A peer checks it with the `peer` app.
//
// The renewal is one measured interval for the instruction counter (`make -C Boards sync SYNC_COUNT=1`), with every
// exchange and wait on the link left out.
#if FIRMWARE_SYNC && FIRMWARE_RENEW
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceCore
    import DeviceIdentity
    import Ledger
    import LightClient

    /// The mark tag of the renewal's interval.
    let renewMark: UInt32 = 0xCE27

    @inline(never)
    func renewPhase(_ link: inout BoardLink, _ slots: inout StateSlots<BoardStorage>, after headHeight: UInt64) {
        board_stack_reset_peak()
        let wallet = provisionedWallet()
        session.setWallet(wallet)
        // A board has no random source: its fresh key is HKDF-Expand of its secret for the height it renews after,
        // a new key at each renewal that only this device can derive again.
        let fresh = ShortLivedCertificate.freshKey(deviceSecret: wallet.key.secret, counter: headHeight)
        let aux = Bytes32(w0: UInt64(board_millis()), w1: UInt64(link.link.requests), w2: 0, w3: 0)
        guard
            let order = CertificateRenewalOrder(
                publicKey: fresh.publicKey, lifetimeSeconds: provisionedCertLifetime, tipPerUnit: provisionedTipPerUnit,
                auxRandom: aux, finalityMillis: Waits.finalityMillis)
        else { fail(Status.badProvisioning, "CERT_LIFETIME must be 300 to 86400 seconds") }
        Console.write("renew: device ")
        Console.text(provisionedDeviceBech32)
        Console.write(" renews its certificate for fresh key ")
        Console.hex(fresh.publicKey.compressed)
        Console.write(", lifetime ")
        Console.decimal(provisionedCertLifetime)
        Console.line(" s")
        let requestsBefore = link.link.requests
        link.measuring = renewMark
        board_mark_begin(renewMark)
        let outcome = perform(.renew(order), &session, &link, .renew)
        board_mark_end(renewMark)
        link.measuring = 0
        guard case .renewed(let renewed) = outcome else { fail(Status.badProvisioning, "session") }
        printInclusion("renew", renewed.payment.inclusion)
        Console.write("renew: certificate ")
        Console.hex(renewed.id.bytes)
        Console.write(" valid ")
        Console.decimal(renewed.notBefore)
        Console.write(" to ")
        Console.decimal(renewed.notAfter)
        Console.write(", fee ")
        Console.decimal(renewed.payment.inclusion.receipt.feePaid)
        Console.write(", ")
        Console.decimal(link.link.requests &- requestsBefore)
        Console.line(" requests")
        stepDone()
        Console.line("renew: RENEWED")
        let (newHead, _) = syncToHead(&session, &link)
        saveTrustedState(&slots, session.trusted!)
        Console.write("renew: re-synced to height ")
        Console.decimal(newHead.height)
        Console.line(", trusted state saved")
        Console.memory(stackPeak: payStackPeak, " (the deepest step)")
        Console.line("renew: PASS")
    }
#endif
