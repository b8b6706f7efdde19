// The peer-checking app (FIRMWARE_APP=peer): a device that trusts a peer (a controller, a hub, another lock) only
// while the peer's certificate verifies on chain (SPEC "Device identity"). It is provisioned with the id of the
// peer's certificate (PEER_CERT), as pairing would hand it over, and with the id of the operator's root (PEER_ROOT):
// anyone may anchor a root on chain, so a chain that ends at another root is refused. DeviceCore's `certificate`
// operation (the same one
// `amars device cert` runs) proves the certificate's record and every ancestor's up to the root against a header
// no older than the verified head, checks their signatures and links, and judges their standing at that header's
// time. A peer that does not verify (unknown, revoked or under a revoked ancestor, expired, not valid yet, a broken
// chain, another root) is refused: exit status 89 with the reason.
//
// The check is one measured interval for the instruction counter (`make -C Boards sync SYNC_COUNT=1`), with every
// exchange and wait on the link left out.
#if FIRMWARE_SYNC && FIRMWARE_PEER
    import AmarsCodec
    import Board
    import DeviceCore
    import DeviceIdentity
    import LightClient

    /// The mark tag of the peer check's interval.
    let peerMark: UInt32 = 0xCE28
    /// A peer whose certificate does not verify.
    let peerRefused: Int32 = 89

    @inline(never)
    func peerPhase(_ link: inout BoardLink, _ slots: inout StateSlots<BoardStorage>) {
        board_stack_reset_peak()
        guard let id = Bytes32(provisionedPeerCertificate), let root = Bytes32(provisionedPeerRoot) else {
            fail(Status.badProvisioning, "no peer provisioned: PEER_CERT and PEER_ROOT")
        }
        Console.write("peer: checking certificate ")
        Console.hex(id.bytes)
        Console.newline()
        link.measuring = peerMark
        board_mark_begin(peerMark)
        let outcome = perform(.certificate(id), &session, &link, .peer)
        board_mark_end(peerMark)
        link.measuring = 0
        guard case .certificate(let proven) = outcome else { fail(Status.badProvisioning, "session") }
        stepDone()
        Console.write("peer: every record proven against block ")
        Console.decimal(proven.header.height)
        Console.write(", judged at its time ")
        Console.decimal(proven.header.timestamp / 1000)
        Console.newline()
        saveTrustedState(&slots, session.trusted!)
        Console.memory(stackPeak: payStackPeak, " (the deepest step)")
        switch proven.standing {
        case .valid? where proven.root == root:
            Console.line("peer: TRUSTED (valid, every ancestor valid, under the operator's root)")
            return
        case .valid?:
            Console.write("peer: REFUSED: valid, but under another root ")
            Console.hex(proven.root?.bytes ?? [])
            Console.newline()
        case nil:
            Console.line("peer: REFUSED: no certificate has that id")
        case .revoked(_, let height)?:
            Console.write("peer: REFUSED: revoked at height ")
            Console.decimal(height)
            Console.newline()
        case .expired?:
            Console.line("peer: REFUSED: expired")
        case .notYetValid?:
            Console.line("peer: REFUSED: not valid yet")
        case .broken?:
            Console.line("peer: REFUSED: its chain is broken")
        }
        fail(peerRefused, "peer")
    }
#endif
