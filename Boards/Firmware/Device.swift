// The sync firmware (built with FIRMWARE_SYNC, `make -C Boards sync`): the board's driver of the device session
// (DeviceCore), the same flow `amars device` and the simulator run. This file only sequences operations, prints
// what the session reports and turns its errors into exit statuses; every check is the session's.
//
// Resume from the trusted state saved in the board's storage (Storage.swift), or anchor at the genesis header
// (its hash and the committee of epoch 0 are compiled in, see Provisioned.swift); follow the checkpoints one per
// request until the gateway has none left, verify the head, save the new trusted state. With a device key
// compiled in: prove the balance; when it is short, wait to be paid (a transfer proven final and successful) and
// prove the balance again; pay the provisioned recipient and prove the payment final; sync and save again.
//
// Exit statuses (0-6 are the board's, see board.h):
//   0        synced and the head verified (and paid, with a device key)
//   7        transport: no answer, a reset, an error code, a protocol violation, a body over the buffer
//   8        an answer did not decode as the payload its resource promises
//   9        the provisioned trust anchor itself does not decode (a build problem)
//   10       the gateway refused the payment (a claim, a certificate's publication) and the chain agrees: its
//            nonce unused, or used by another transaction (the gateway's code is printed, e.g. issuerNotValid)
//   11       the account proof was refused
//   12       the inclusion proof was refused
//   13       answers that each decode but contradict each other (a root, an id, a receipt for another transaction)
//   14       the device cannot pay: its key, address or balance, or the wallet refused the transfer
//   15       not final in time
//   16 + r   the genesis header was refused (anchor)
//   32 + r   a checkpoint was refused
//   48 + r   the head header was refused (48: older than the trusted epoch, or no checkpoint leads to it)
//   64 + r   the header a proof refers to was refused (64: older than the trusted epoch, or no checkpoint to it)
//   80       final, but the receipt says the transaction failed
//   81       the receipt proof was refused
//   82       no transfer to the device arrived while it waited
//   83       the trusted state could not be saved to the board's storage (Storage.swift)
//   84       the trusted committee is older than the trusting period: the device must be re-anchored
//   85       the gateway serves another chain (its genesis block is not the provisioned one)
//   88       the claim app's HTLC is not this device's to claim with its secret (not open, another recipient's,
//            expired, locked to another hash, or unknown): nothing was signed
//   89       the peer app's peer does not verify: its certificate is unknown, revoked (or under a revoked
//            ancestor), expired, not valid yet, its chain is broken, or it ends at another root than the operator's
// where r is the LightClientError (see refusalCode): each refusal has its own status.
#if FIRMWARE_SYNC
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceCore
    import DeviceProtocol
    import Ledger
    import LightClient

    enum Status {
        static let transport: Int32 = 7
        static let undecodable: Int32 = 8
        static let badProvisioning: Int32 = 9
        static let gatewayRefused: Int32 = 10
        static let accountProofRefused: Int32 = 11
        static let inclusionRefused: Int32 = 12
        static let inconsistent: Int32 = 13
        static let cannotPay: Int32 = 14
        static let notFinal: Int32 = 15
        static let anchorRefused: Int32 = 16
        static let checkpointRefused: Int32 = 32
        static let headRefused: Int32 = 48
        static let proofHeaderRefused: Int32 = 64
        static let receiptFailed: Int32 = 80
        static let receiptRefused: Int32 = 81
        static let noPaymentReceived: Int32 = 82
        static let trustExpired: Int32 = 84
        static let otherChain: Int32 = 85
        static let cannotClaim: Int32 = 88
    }

    /// How long the device waits for a payment to it, and for its own to become final.
    enum Waits {
        static let receiveMillis: UInt32 = 120_000
        static let finalityMillis: UInt32 = 30_000
        /// Between the payment-code app's rounds while payments are still to come.
        static let roundPauseMillis: UInt32 = 2_000
    }

    /// 1...15, one per refusal rule.
    func refusalCode(_ error: LightClientError) -> Int32 {
        switch error {
        case .wrongChain: 1
        case .wrongEpoch: 2
        case .wrongHeight: 3
        case .heightOutsideEpoch: 4
        case .notACheckpoint: 5
        case .committeeMismatch: 6
        case .wrongCommitteeEpoch: 7
        case .certificateMismatch: 8
        case .certificate(.wrongBlock): 9
        case .certificate(.unknownMember): 10
        case .certificate(.badSignature): 11
        case .certificate(.noQuorum): 12
        case .certificate(.duplicateMember): 13
        case .untrustedAnchor: 14
        case .epochArithmetic, .stateProofMismatch, .inclusionProofMismatch, .receiptProofMismatch: 15
        }
    }

    /// What the device was doing: the prefix of its console lines, and which statuses a header refusal takes.
    enum Step {
        case sync
        case pay
        case receive
        case claim
        #if FIRMWARE_RENEW
            case renew
        #endif
        #if FIRMWARE_PEER
            case peer
        #endif

        var prefix: StaticString {
            switch self {
            case .sync: "sync"
            case .pay: "pay"
            case .receive: "receive"
            case .claim: "claim"
            #if FIRMWARE_RENEW
                case .renew: "renew"
            #endif
            #if FIRMWARE_PEER
                case .peer: "peer"
            #endif
            }
        }
    }

    func fail(_ status: Int32, _ what: StaticString) -> Never {
        Console.write("sync: FAIL (")
        Console.write(what)
        Console.write("), exit status ")
        Console.decimal(Int(status))
        Console.newline()
        board_exit(status)
    }

    /// The board's UART link as the session's link, remembering the last resource asked for its failure line.
    /// `measuring` (a mark's tag, 0: none) leaves each exchange and wait out of the interval the instruction
    /// counter is measuring (`make -C Boards sync SYNC_COUNT=1`): what is left is the device's own work.
    struct BoardLink: DeviceLink {
        var link = Link()
        var last: DeviceResource = .head
        var measuring: UInt32 = 0

        mutating func exchange(_ request: DeviceRequest) throws(LinkError) -> DeviceAnswer {
            last = request.resource
            if measuring != 0 { board_mark_end(measuring) }
            defer { if measuring != 0 { board_mark_begin(measuring) } }
            let path = request.resource.path
            let code =
                request.resource.method == .post
                ? try link.post(path, payload: request.payload) : try link.get(path, query: request.query)
            return DeviceAnswer(code: code, body: link.bodyBytes())
        }

        mutating func sleep(millis: UInt32) {
            if measuring != 0 { board_mark_end(measuring) }
            link.wait(millis: millis)
            if measuring != 0 { board_mark_begin(measuring) }
        }

        var nowMillis: UInt64 { UInt64(board_millis()) }

        /// The board's real-time clock (the host's, on QEMU): nil without one, and the device syncs in sequence.
        var wallClockMillis: UInt64? {
            let now = board_wall_clock_ms()
            return now == 0 ? nil : now
        }
    }

    /// "4.04" for a CoAP code.
    func printCode(_ code: CoAPCode) {
        Console.decimal(Int(code.codeClass))
        Console.write(".")
        Console.decimal(Int(code.detail) / 10)
        Console.decimal(Int(code.detail) % 10)
    }

    func transportFailure(_ error: LinkError, _ resource: DeviceResource) -> Never {
        Console.write("sync: no usable answer to ")
        Console.write(resource.path)
        switch error {
        case .timeout: Console.line(": timeout")
        case .reset: Console.line(": reset")
        case .code(let raw):
            Console.write(": code ")
            printCode(CoAPCode(rawValue: raw))
            Console.newline()
        case .protocolViolation: Console.line(": protocol violation")
        case .bodyTooLarge: Console.line(": body too large")
        }
        fail(Status.transport, "transport")
    }

    /// The exit for a refusal by the session, with its line: the stage and rule for a light-client refusal,
    /// the session's one-line summary for anything else.
    func refused(_ error: DeviceError, during step: Step) -> Never {
        if case .gateway(let resource, let code, _) = error { transportFailure(.code(code.rawValue), resource) }
        Console.write(step.prefix)
        Console.write(": ")
        if case .rejected(let reason, let stage) = error {
            Console.write(stage.name)
            Console.write(" refused: ")
            Console.line(reason.summary)
        } else {
            Console.line(error.summary)
        }
        if case .transactionRefused(let code) = error {
            Console.write("pay: gateway's code: ")
            Console.text(code.bytes)
            Console.newline()
        }
        #if !DEVICE_NO_HTLC
            if case .htlc(let rule) = error {
                Console.write("claim: the chain's rule: ")
                Console.line(rule.code)
            }
        #endif
        fail(status(of: error, during: step), "refused")
    }

    /// Each refusal's exit status (see the table at the top).
    func status(of error: DeviceError, during step: Step) -> Int32 {
        let header = step == .sync ? Status.headRefused : Status.proofHeaderRefused
        switch error {
        case .rejected(let reason, let stage):
            let r = refusalCode(reason)
            switch stage {
            case .anchor: return Status.anchorRefused + r
            case .checkpoint: return Status.checkpointRefused + r
            case .header: return header + r
            case .accountProof, .escrowProof, .notificationProof, .filterProof, .certificateProof, .htlcProof,
                .channelProof:
                return Status.accountProofRefused
            case .transactionProof: return Status.inclusionRefused
            case .receiptProof: return Status.receiptRefused
            }
        case .outsideTrust, .noCheckpointTo: return header
        case .trustExpired, .reanchorRefused: return Status.trustExpired
        case .otherChain: return Status.otherChain
        case .inconsistent, .filter: return Status.inconsistent
        case .undecodable: return Status.undecodable
        case .gateway: return Status.transport
        case .transactionRefused: return Status.gatewayRefused
        case .notFinal: return Status.notFinal
        case .nothingReceived: return Status.noPaymentReceived
        case .noWallet, .insufficientFunds, .wallet: return Status.cannotPay
        case .failedOnChain: return Status.receiptFailed
        case .htlc: return Status.cannotClaim
        case .notAnchored, .busy, .notBuiltIn: return Status.badProvisioning
        }
    }

    /// One operation, its reports printed as they come; any failure ends the run with its status.
    @inline(never)
    func perform(_ operation: DeviceOperation, _ session: inout DeviceSession, _ link: inout BoardLink, _ step: Step)
        -> DeviceOutcome
    {
        do {
            return try session.run(operation, over: &link) { report in show(report, step) }
        } catch {
            switch error {
            case .link(let e): transportFailure(e, link.last)
            case .device(let e): refused(e, during: step)
            }
        }
    }

    func show(_ report: DeviceReport, _ step: Step) {
        switch report {
        case .checkpointVerified(let epoch, let height, let signatures, let trusted):
            Console.write("sync: checkpoint of epoch ")
            Console.decimal(epoch)
            Console.write(" verified at height ")
            Console.decimal(height)
            Console.write(" (")
            Console.decimal(signatures)
            Console.write(" signatures), trusted epoch ")
            Console.decimal(trusted)
            Console.newline()
        #if !DEVICE_NO_SKIP
            case .skipped(let from, let to, let height, let signatures):
                Console.write("sync: skipped from epoch ")
                Console.decimal(from)
                Console.write(" to ")
                Console.decimal(to)
                Console.write(": checkpoint at height ")
                Console.decimal(height)
                Console.write(" carries a third of the trusted weight (")
                Console.decimal(signatures)
                Console.line(" signatures checked)")
        #endif
        #if !DEVICE_NO_REANCHOR
            case .reanchored(let epoch, let height):
                Console.write("sync: trust expired; re-anchored on the operator's statement at epoch ")
                Console.decimal(epoch)
                Console.write(" (checkpoint at height ")
                Console.decimal(height)
                Console.line(")")
        #endif
        case .headerVerified(let height, let weight, let total):
            Console.write(step.prefix)
            Console.write(": header of block ")
            Console.decimal(height)
            Console.write(" verified (weight ")
            Console.decimal(weight)
            Console.write(" of ")
            Console.decimal(total)
            Console.line(")")
        case .submitted(let id, let bytes):
            Console.write("pay: submitted ")
            Console.decimal(bytes)
            Console.write(" bytes, 2.01 transaction ")
            Console.hex(id.bytes)
            Console.newline()
        case .signed(_, let nonce, let maxFee, let baseFee, let height):
            Console.write("pay: signed transaction, nonce ")
            Console.decimal(nonce)
            Console.write(", fee cap ")
            Console.decimal(maxFee)
            Console.write(" per unit (2 x base fee ")
            Console.decimal(baseFee)
            Console.write(" after block ")
            Console.decimal(height)
            Console.write(" + tip ")
            Console.decimal(provisionedTipPerUnit)
            Console.line(")")
        #if !DEVICE_NO_INBOX
            case .listed(let height, _, let polls):
                Console.write("receive: the gateway lists a transfer at height ")
                Console.decimal(height)
                Console.write(" after ")
                Console.decimal(polls)
                Console.line(" polls")
            case .failedTransferSkipped:
                Console.line("receive: that transfer failed on chain; waiting for another")
        #endif
        #if !DEVICE_NO_HTLC
            case .claimable(let id, let amount, let expiry, let height):
                Console.write("claim: HTLC ")
                Console.hex(id.bytes)
                Console.write(" proven open for this device at block ")
                Console.decimal(height)
                Console.write(": ")
                Console.decimal(amount)
                Console.write(" units up to block ")
                Console.decimal(expiry)
                Console.line(", locked to the secret's hash")
        #endif
        #if !DEVICE_NO_RENEWAL
            case .certificateIssued(let id, let notAfter, let height):
                Console.write("renew: signed certificate ")
                Console.hex(id.bytes)
                Console.write(" until ")
                Console.decimal(notAfter)
                Console.write(", dated by block ")
                Console.decimal(height)
                Console.newline()
        #endif
        #if DEVICE_NO_SKIP || DEVICE_NO_REANCHOR || DEVICE_NO_INBOX || DEVICE_NO_HTLC
            default: break  // reports of operations this image leaves out
        #endif
        }
    }

    /// Follows every checkpoint the gateway has, then verifies the head; returns the head.
    @inline(never)
    func syncToHead(_ session: inout DeviceSession, _ link: inout BoardLink) -> (TrustedHeader, SyncProgress) {
        guard case .synced(let progress) = perform(.sync(maxEpochs: .max), &session, &link, .sync),
            case .head(let head) = perform(.head, &session, &link, .sync)
        else { fail(Status.badProvisioning, "session") }
        Console.write("sync: head at height ")
        Console.decimal(head.height)
        if case .certificate(_, let weight, let total) = head.basis {
            Console.write(" of epoch ")
            Console.decimal(head.epoch)
            Console.write(" verified (weight ")
            Console.decimal(weight)
            Console.write(" of ")
            Console.decimal(total)
            Console.write("), hash ")
            Console.hex(head.hash.bytes)
            Console.newline()
        } else {
            Console.line(" is the trusted checkpoint")
        }
        return (head, progress)
    }

    @inline(never)
    func provisionedAnchor() -> DeviceTrustAnchor {
        guard let hash = Bytes32(provisionedGenesisHash),
            let committee = try? Committee(decoding: provisionedCommittee0)
        else { fail(Status.badProvisioning, "provisioned anchor does not decode") }
        return DeviceTrustAnchor(
            chainID: provisionedChainID, epochLength: provisionedEpochLength, genesisHeaderHash: hash,
            committee: committee, trustingPeriodMillis: provisionedTrustingPeriodMillis,
            reanchorKey: Bytes32(provisionedReanchorKey))
    }

    @inline(never)
    func anchor(_ session: inout DeviceSession, _ link: inout BoardLink) {
        guard case .anchored = perform(.anchor, &session, &link, .sync), let trusted = session.trusted else {
            fail(Status.badProvisioning, "session")
        }
        Console.write("sync: anchored at genesis ")
        Console.hex(session.anchor.genesisHeaderHash.bytes)
        Console.write(" (chain ")
        Console.decimal(UInt64(trusted.chainID))
        Console.write(", committee of ")
        Console.decimal(trusted.committee.members.count)
        Console.line(")")
    }

    /// Stack used since the last call (each step of the payment is measured on its own).
    nonisolated(unsafe) var payStackPeak = 0
    func stepDone() {
        let peak = board_stack_peak()
        if peak > payStackPeak { payStackPeak = peak }
        Console.write("      (stack ")
        Console.decimal(peak)
        Console.line(" B)")
        board_stack_reset_peak()
    }

    extension Console {
        /// A gateway's diagnostic payload or a provisioned address (ASCII), printable bytes only.
        static func text(_ bytes: [UInt8]) {
            for byte in bytes where byte >= 0x20 && byte < 0x7F { board_putc(byte) }
        }
    }

    /// The device's own account, proven.
    @inline(never)
    func provenAccount(_ session: inout DeviceSession, _ link: inout BoardLink, _ address: Address) -> AccountState {
        guard case .account(let account) = perform(.account(address), &session, &link, .pay) else {
            fail(Status.badProvisioning, "session")
        }
        Console.write("pay: account balance ")
        Console.decimal(account.state.balance)
        Console.write(", nonce ")
        Console.decimal(account.state.nonce)
        Console.write(" verified against the state root of block ")
        Console.decimal(account.header.height)
        Console.newline()
        stepDone()
        return account.state
    }

    /// Waits to be paid: the first transfer to the device listed after `height`, proven final and successful.
    @inline(never)
    func awaitPayment(_ session: inout DeviceSession, _ link: inout BoardLink, _ address: Address, after height: UInt64)
    {
        Console.write("receive: waiting for a transfer to ")
        Console.text(provisionedDeviceBech32)
        Console.write(" from height ")
        Console.decimal(height &+ 1)
        Console.newline()
        let operation = DeviceOperation.receive(
            address, from: height &+ 1, position: 0, waitMillis: Waits.receiveMillis)
        guard case .received(let incoming) = perform(operation, &session, &link, .receive) else {
            fail(Status.badProvisioning, "session")
        }
        let at = incoming.inclusion
        printInclusion("receive", at)
        Console.write("receive: ")
        Console.decimal(incoming.transfer.amount)
        Console.write(" units from key ")
        Console.hex(incoming.transfer.sender.bytes)
        Console.write(", final at height ")
        Console.decimal(at.header.height)
        Console.write(", position ")
        Console.decimal(at.position)
        Console.line(": inclusion and receipt verified")
        stepDone()
    }

    /// Signs, submits and proves the provisioned payment.
    @inline(never)
    func pay(_ session: inout DeviceSession, _ link: inout BoardLink) -> VerifiedPayment {
        guard let recipientRaw = Bytes20(provisionedRecipient) else {
            fail(Status.cannotPay, "provisioned recipient does not decode")
        }
        let aux = Bytes32(w0: UInt64(board_millis()), w1: UInt64(link.link.requests), w2: 0, w3: 0)
        let order = PaymentOrder(
            recipient: Address(raw: recipientRaw), amount: provisionedPayAmount, tipPerUnit: provisionedTipPerUnit,
            auxRandom: aux, finalityMillis: Waits.finalityMillis)
        guard case .paid(let payment) = perform(.pay(order), &session, &link, .pay) else {
            fail(Status.badProvisioning, "session")
        }
        let at = payment.inclusion
        Console.write("pay: receipt after ")
        Console.decimal(at.polls)
        Console.write(" polls: final at height ")
        Console.decimal(at.header.height)
        Console.write(", position ")
        Console.decimal(at.position)
        Console.write(", success, fee ")
        Console.decimal(at.receipt.feePaid)
        Console.newline()
        printInclusion("pay", at)
        stepDone()
        return payment
    }

    /// The provisioned key as the session's wallet; it must give the provisioned address.
    @inline(never)
    func provisionedWallet() -> DeviceWallet {
        guard let secret = Bytes32(provisionedDeviceSecret), let key = try? PrivateKey(bytes: secret) else {
            fail(Status.cannotPay, "provisioned device key does not decode")
        }
        let wallet = DeviceWallet(key: key, nextNonce: 0)
        guard wallet.address.raw.bytes == provisionedDeviceAddress else {
            fail(Status.cannotPay, "device key does not give the provisioned address")
        }
        return wallet
    }

    /// The payment the pay app will make, as its console names it.
    func announcePayment() {
        Console.write("pay: device ")
        Console.text(provisionedDeviceBech32)
        Console.write(" pays ")
        Console.decimal(provisionedPayAmount)
        Console.write(" units to ")
        Console.text(provisionedRecipientBech32)
        Console.newline()
    }

    func printInclusion(_ prefix: StaticString, _ at: VerifiedInclusion) {
        Console.write(prefix)
        Console.write(": inclusion of ")
        Console.hex(at.id.bytes)
        Console.write(" at position ")
        Console.decimal(at.position)
        Console.write(" verified against the transactions root of block ")
        Console.decimal(at.header.height)
        Console.write(", its receipt (")
        Console.write(at.receipt.status == .success ? "success" : "failed")
        Console.line(") against the receipts root")
    }

    func printProgress(_ progress: SyncProgress, _ link: BoardLink, since start: UInt32) {
        Console.write("sync: synced epochs ")
        Console.decimal(progress.fromEpoch)
        Console.write(" to ")
        Console.decimal(progress.toEpoch)
        Console.write(" (")
        Console.decimal(progress.checkpoints)
        Console.write(" checkpoints, ")
        Console.decimal(progress.skips)
        Console.write(" by skipping, ")
        Console.decimal(progress.signaturesChecked)
        Console.write(" signatures, ")
        Console.decimal(link.link.requests)
        Console.write(" requests, ")
        Console.decimal(link.link.retransmissions)
        Console.write(" retransmissions, ")
        Console.decimal(UInt64(board_millis() &- start))
        Console.line(" ms)")
    }

    /// The device session, in static RAM rather than on the stack, which the proofs' checks need. One
    /// checkpoint per request: one fits the link's receive buffer.
    nonisolated(unsafe) var session = DeviceSession(
        anchor: provisionedAnchor(), configuration: .init(checkpointPage: 1, pollMillis: 250))

    func syncMain() -> Never {
        Console.newline()
        Console.write("Amarscity firmware sync on ")
        board_puts(board_name())
        Console.newline()
        var link = BoardLink()
        var slots: StateSlots<BoardStorage>
        // Bound to the provisioned genesis: state saved for another chain reads as no state.
        do { slots = try StateSlots(storage: BoardStorage(), binding: Bytes32(provisionedGenesisHash)) } catch {
            Console.line("storage: the board's region cannot hold two slots")
            fail(StorageStatus.saveFailed, "storage")
        }
        let headHeight = syncPhase(&link, &slots)
        #if FIRMWARE_PEER
            // A peer check needs no key of the device's own.
            peerPhase(&link, &slots)  // Peer.swift
        #else
            if !provisionedDeviceSecret.isEmpty {
                #if FIRMWARE_PAYCODE
                    paycodePhase(&link, &slots)  // Paycode.swift
                #elseif FIRMWARE_CLAIM
                    claimPhase(&link, &slots)  // Claim.swift
                #elseif FIRMWARE_RENEW
                    renewPhase(&link, &slots, after: headHeight)  // Renew.swift
                #else
                    payPhase(&link, &slots, after: headHeight)
                #endif
            }
        #endif
        board_exit(0)
    }

    /// Resume or anchor, follow the checkpoints, verify the head, save: returns the head's height.
    @inline(never)
    func syncPhase(_ link: inout BoardLink, _ slots: inout StateSlots<BoardStorage>) -> UInt64 {
        if let saved = loadTrustedState(&slots) { session.resume(trusted: saved) } else { anchor(&session, &link) }
        let start = board_millis()
        let (head, progress) = syncToHead(&session, &link)
        printProgress(progress, link, since: start)
        Console.memory(stackPeak: board_stack_peak())
        saveTrustedState(&slots, session.trusted!)
        Console.line("sync: PASS")
        return head.height
    }

    /// Prove the balance (waiting to be paid first when it is short), pay, prove the payment, sync and save.
    @inline(never)
    func payPhase(_ link: inout BoardLink, _ slots: inout StateSlots<BoardStorage>, after headHeight: UInt64) {
        board_stack_reset_peak()
        session.setWallet(provisionedWallet())
        announcePayment()
        guard let raw = Bytes20(provisionedDeviceAddress) else { fail(Status.cannotPay, "provisioned address") }
        let address = Address(raw: raw)
        // Too poor to pay: wait to be paid first, then prove the new balance.
        if provenAccount(&session, &link, address).balance < provisionedPayAmount {
            awaitPayment(&session, &link, address, after: headHeight)
            _ = provenAccount(&session, &link, address)
        }
        let payment = pay(&session, &link)
        let (newHead, more) = syncToHead(&session, &link)
        Console.write("pay: re-synced to height ")
        Console.decimal(newHead.height)
        Console.write(" (")
        Console.decimal(more.checkpoints)
        Console.line(" more checkpoints)")
        saveTrustedState(&slots, session.trusted!)
        stepDone()
        Console.write("pay: paid ")
        Console.decimal(provisionedPayAmount)
        Console.write(" units to ")
        Console.text(provisionedRecipientBech32)
        Console.write(", nonce ")
        Console.decimal(payment.nonce)
        Console.write(", final at height ")
        Console.decimal(payment.inclusion.header.height)
        Console.line(", inclusion verified")
        Console.write("pay: ")
        Console.decimal(link.link.requests)
        Console.write(" requests in all, ")
        Console.decimal(link.link.retransmissions)
        Console.line(" retransmissions")
        Console.memory(stackPeak: payStackPeak, " (the deepest step)")
        Console.line("pay: PASS")
    }
#endif
