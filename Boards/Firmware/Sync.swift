// The sync firmware (built with FIRMWARE_SYNC, `make -C Boards sync`): the light-client loop a device runs.
//
// Resume from the trusted state saved in the board's storage (Storage.swift), or anchor at the genesis header
// (its hash and the committee of epoch 0 are compiled in, see Provisioned.swift); follow
// `v1/checkpoints?from=E&limit=1` until the gateway has none left, each through CheckpointVerifier, then verify
// `v1/head` with HeaderVerifier, and save the new trusted state. Progress goes to the console UART; the exit
// status says how it ended.
//
// Exit statuses (0-6 are the board's, see board.h):
//   0        synced and the head verified
//   7        transport: no answer, a reset, an error code, a protocol violation, a body over the buffer
//   8        an answer did not decode as the payload its resource promises
//   9        the provisioned trust anchor itself does not decode (a build problem)
//   16 + r   the genesis header was refused (anchor)
//   32 + r   a checkpoint was refused
//   48 + r   the head header was refused (or lies before the trusted epoch: 48)
//   10-15, 64 + r, 80-82: the payment after the sync (see Pay.swift)
//   83       the trusted state could not be saved to the board's storage (Storage.swift)
// where r is the LightClientError (see refusalCode): each refusal has its own status.
#if FIRMWARE_SYNC
    import AmarsCodec
    import AmarsCrypto
    import Board
    import DeviceProtocol
    import Ledger
    import LightClient

    enum SyncStatus {
        static let transport: Int32 = 7
        static let undecodable: Int32 = 8
        static let badProvisioning: Int32 = 9
        static let anchorRefused: Int32 = 16
        static let checkpointRefused: Int32 = 32
        static let headRefused: Int32 = 48
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

    func fail(_ status: Int32, _ what: StaticString) -> Never {
        Console.write("sync: FAIL (")
        Console.write(what)
        Console.write("), exit status ")
        Console.decimal(Int(status))
        Console.newline()
        board_exit(status)
    }

    func refused(_ base: Int32, _ what: StaticString, _ error: LightClientError) -> Never {
        Console.write("sync: ")
        Console.write(what)
        Console.write(" refused: ")
        Console.line(error.summary)
        fail(base + refusalCode(error), what)
    }

    func transportFailure(_ error: LinkError, _ what: StaticString) -> Never {
        Console.write("sync: no usable answer to ")
        Console.write(what)
        switch error {
        case .timeout: Console.line(": timeout")
        case .reset: Console.line(": reset")
        case .code(let raw):
            Console.write(": code ")
            Console.decimal(Int(raw >> 5))
            Console.write(".")
            Console.decimal(Int(raw & 0x1F) / 10)
            Console.decimal(Int(raw & 0x1F) % 10)
            Console.newline()
        case .protocolViolation: Console.line(": protocol violation")
        case .bodyTooLarge: Console.line(": body too large")
        }
        fail(SyncStatus.transport, "transport")
    }

    /// GET of one of DeviceProtocol's requests (the resource table the gateway routes by) that must answer 2.05
    /// (anything else is a transport failure).
    func fetch(_ link: inout Link, _ request: DeviceRequest) {
        let path = request.resource.path
        let code: CoAPCode
        do { code = try link.get(path, query: request.query) } catch { transportFailure(error, path) }
        guard code.isSuccess else { transportFailure(.code(code.rawValue), path) }
    }

    /// `v1/head` or `v1/headers` body, decoded with DeviceProtocol's ``HeaderPayload`` (the gateway encodes it).
    func decodeHeaderPayload(_ bytes: [UInt8]) -> (BlockHeader, CommitCertificate) {
        guard let payload = try? HeaderPayload(decoding: bytes) else {
            fail(SyncStatus.undecodable, "header payload does not decode")
        }
        return (payload.header, payload.certificate)
    }

    @inline(never)
    func anchor(_ link: inout Link) -> TrustedState {
        guard let trustedHash = Bytes32(provisionedGenesisHash),
            let committee0 = try? Committee(decoding: provisionedCommittee0)
        else { fail(SyncStatus.badProvisioning, "provisioned anchor does not decode") }
        fetch(&link, .header(at: 0))
        let (genesis, _) = decodeHeaderPayload(link.bodyBytes())
        do {
            let trusted = try TrustedState.anchored(
                header: genesis, committee: committee0, epochLength: provisionedEpochLength, trustedHash: trustedHash)
            Console.write("sync: anchored at genesis ")
            Console.hex(trustedHash.bytes)
            Console.write(" (chain ")
            Console.decimal(UInt64(trusted.chainID))
            Console.write(", committee of ")
            Console.decimal(committee0.members.count)
            Console.line(")")
            return trusted
        } catch {
            refused(SyncStatus.anchorRefused, "genesis header", error)
        }
    }

    /// One checkpoint past `trusted`, or nil when the gateway has none yet.
    @inline(never)
    func nextCheckpoint(_ link: inout Link, _ trusted: TrustedState) -> TrustedState? {
        let code: CoAPCode
        do {
            code = try link.get(
                DeviceResources.checkpoints, query: DeviceRequest.checkpoints(from: trusted.epoch, limit: 1).query)
        } catch {
            transportFailure(error, DeviceResources.checkpoints)
        }
        if code.codeClass == 4 && code.detail == 4 { return nil }
        guard code.isSuccess else { transportFailure(.code(code.rawValue), DeviceResources.checkpoints) }
        // One was asked for: a longer page is refused like any other payload that breaks its promise.
        guard let payload = try? CheckpointsPayload(decoding: link.bodyBytes()), payload.checkpoints.count <= 1 else {
            fail(SyncStatus.undecodable, "checkpoints payload does not decode")
        }
        let page = payload.checkpoints
        guard let checkpoint = page.first else { return nil }
        switch CheckpointVerifier.verifyNextResult(trusted: trusted, checkpoint: checkpoint) {
        case .success(let next):
            Console.write("sync: checkpoint of epoch ")
            Console.decimal(trusted.epoch)
            Console.write(" verified at height ")
            Console.decimal(checkpoint.header.height)
            Console.write(" (")
            Console.decimal(checkpoint.certificate.signatures.count)
            Console.write(" signatures), trusted epoch ")
            Console.decimal(next.epoch)
            Console.newline()
            return next
        case .failure(let error):
            Console.write("sync: checkpoint of epoch ")
            Console.decimal(trusted.epoch)
            Console.newline()
            refused(SyncStatus.checkpointRefused, "checkpoint", error)
        }
    }

    /// The verified head; nil when it lies past the trusted epoch (the chain moved on: sync again first).
    @inline(never)
    func verifyHead(_ link: inout Link, _ trusted: TrustedState) -> BlockHeader? {
        fetch(&link, .head)
        let (header, certificate) = decodeHeaderPayload(link.bodyBytes())
        let hash = header.hash
        if hash == trusted.checkpointHash {
            Console.write("sync: head at height ")
            Console.decimal(header.height)
            Console.line(" is the trusted checkpoint")
            return header
        }
        if let range = trusted.signedHeights, header.height > range.last { return nil }
        if header.height <= trusted.height {
            Console.line("sync: head is older than the trusted checkpoint")
            fail(SyncStatus.headRefused, "head")
        }
        do {
            let verified = try HeaderVerifier.verify(trusted: trusted, header: header, certificate: certificate)
            Console.write("sync: head at height ")
            Console.decimal(verified.height)
            Console.write(" of epoch ")
            Console.decimal(header.epoch)
            Console.write(" verified (weight ")
            Console.decimal(verified.signedWeight)
            Console.write(" of ")
            Console.decimal(trusted.committee.totalWeight)
            Console.write("), hash ")
            Console.hex(hash.bytes)
            Console.newline()
            return header
        } catch {
            refused(SyncStatus.headRefused, "head header", error)
        }
    }

    /// Follows checkpoints until the gateway has none left, then verifies the head (again, a few times, when a
    /// checkpoint landed in between).
    @inline(never)
    func syncToHead(_ link: inout Link, _ trusted: inout TrustedState, checkpoints: inout Int) -> BlockHeader {
        var rounds = 0
        while true {
            while let next = nextCheckpoint(&link, trusted) {
                trusted = next
                checkpoints += 1
            }
            if let head = verifyHead(&link, trusted) { return head }
            rounds += 1
            // The head is past the trusted epoch: a checkpoint landed in between. Follow it, a few times.
            guard rounds < 8 else { fail(SyncStatus.transport, "head keeps moving past the checkpoints") }
        }
    }

    func syncMain() -> Never {
        Console.newline()
        Console.write("Amarscity firmware sync on ")
        board_puts(board_name())
        Console.newline()
        var link = Link()
        var slots: StateSlots<BoardStorage>
        // Bound to the provisioned genesis: state saved for another chain reads as no state.
        do { slots = try StateSlots(storage: BoardStorage(), binding: Bytes32(provisionedGenesisHash)) } catch {
            Console.line("storage: the board's region cannot hold two slots")
            fail(StorageStatus.saveFailed, "storage")
        }
        var trusted = loadTrustedState(&slots) ?? anchor(&link)
        let firstEpoch = trusted.epoch
        let start = board_millis()
        var checkpoints = 0
        let head = syncToHead(&link, &trusted, checkpoints: &checkpoints)
        Console.write("sync: synced epochs ")
        Console.decimal(firstEpoch)
        Console.write(" to ")
        Console.decimal(trusted.epoch)
        Console.write(" (")
        Console.decimal(checkpoints)
        Console.write(" checkpoints, ")
        Console.decimal(link.requests)
        Console.write(" requests, ")
        Console.decimal(link.retransmissions)
        Console.write(" retransmissions, ")
        Console.decimal(UInt64(board_millis() &- start))
        Console.line(" ms)")
        Console.memory(stackPeak: board_stack_peak())
        saveTrustedState(&slots, trusted)
        Console.line("sync: PASS")
        if !provisionedDeviceSecret.isEmpty {
            // Pay.swift: the provisioned payment, then the head synced again and the payment proven final. Too
            // poor to pay: wait to be paid first (Receive.swift), then prove the new balance.
            let address = payingAddress()
            var account = verifiedOwnAccount(&link, &trusted, address)
            stepDone()
            if account.balance < provisionedPayAmount {
                _ = awaitIncoming(&link, &trusted, address, from: head.height &+ 1)
                stepDone()
                account = verifiedOwnAccount(&link, &trusted, address)
                stepDone()
            }
            let payment = payAndAwait(&link, &trusted, head: head, account: account)
            var proofTrust = trusted
            checkpoints = 0
            let newHead = syncToHead(&link, &trusted, checkpoints: &checkpoints)
            Console.write("pay: re-synced to height ")
            Console.decimal(newHead.height)
            Console.write(" (")
            Console.decimal(checkpoints)
            Console.line(" more checkpoints)")
            saveTrustedState(&slots, trusted)
            stepDone()
            finishPayment(&link, &proofTrust, payment)
        }
        board_exit(0)
    }
#endif
