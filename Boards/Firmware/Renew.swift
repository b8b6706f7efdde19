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

    /// What the board keeps of its last renewal, in two slots after the trusted state's: the counter its fresh key
    /// was derived for (so the key can be derived again after a power cycle, for the device's TLS) and the
    /// certificate's id. A counter is never used twice: the next one is past both the head and the last.
    struct RenewalRecord: CanonicalCodable {
        var counter: UInt64
        var certificate: Bytes32

        init(counter: UInt64, certificate: Bytes32) {
            self.counter = counter
            self.certificate = certificate
        }

        func encode(to writer: inout ByteWriter) {
            writer.writeVarint(counter)
            writer.write(certificate)
        }

        init(from reader: inout ByteReader) throws(CodecError) {
            counter = try reader.readVarint()
            certificate = try reader.readBytes32()
        }
    }

    typealias RenewalSlots = RecordSlots<BoardStorage, RenewalRecord>

    @inline(never)
    func renewPhase(_ link: inout BoardLink, _ slots: inout StateSlots<BoardStorage>, after headHeight: UInt64) {
        board_stack_reset_peak()
        let wallet = provisionedWallet()
        session.setWallet(wallet)
        var renewals: RenewalSlots
        do {
            renewals = try RenewalSlots(
                storage: BoardStorage(), baseOffset: 2 * StateSlots<BoardStorage>.slotSize,
                binding: Bytes32(provisionedGenesisHash))
        } catch {
            Console.line("storage: the board's region cannot hold the renewal slots (32 KiB needed)")
            fail(StorageStatus.saveFailed, "storage")
        }
        let last = try? renewals.load()
        if let last {
            // The key of the certificate in use, derived again: what the device's TLS presents until the next one.
            Console.write("renew: last certificate ")
            Console.hex(last.certificate.bytes)
            Console.write(", its key (counter ")
            Console.decimal(last.counter)
            Console.write(") ")
            Console.hex(
                ShortLivedCertificate.freshKey(deviceSecret: wallet.key.secret, counter: last.counter).publicKey
                    .compressed)
            Console.newline()
        }
        // A board has no random source: its fresh key is HKDF-Expand of its secret for a counter, the height it renews
        // after unless its last renewal used that one already: a new key each time that only this device can derive.
        let counter = max(headHeight, (last?.counter ?? 0) &+ 1)
        let fresh = ShortLivedCertificate.freshKey(deviceSecret: wallet.key.secret, counter: counter)
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
        do { try renewals.store(RenewalRecord(counter: counter, certificate: renewed.id)) } catch {
            Console.line("storage: saving the renewal failed")
            fail(StorageStatus.saveFailed, "storage")
        }
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
