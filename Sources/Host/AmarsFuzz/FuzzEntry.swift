import AmarsCodec
import AmarsCrypto
import CFuzzDriver
import DeviceCore
import DeviceIdentity
import DeviceProtocol
import Ledger
import LightClient
import PaymentCodes

#if canImport(Glibc)
    import Glibc
#endif

/// libFuzzer entry: the first byte picks a decoder (chain objects, proofs, transaction batches, CoAP, SLIP, payment
/// codes, recipient filters, stealth announcements and keys, certificates, channel updates and states, relay messages, bulb commands, command lists), the rest is its input. The property checked is the
/// chain's decoding contract: a decoder refuses with a typed error or returns a value whose encoding is
/// exactly the input. Anything else (a crash, a trap, a second encoding) is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch selector % 30 {
    case 0: check(SignedTransaction.self, input)
    case 1: check(Block.self, input)
    case 2: check(BlockHeader.self, input)
    case 3: check(CommitCertificate.self, input)
    case 4: check(Checkpoint.self, input)
    case 5: check(SparseMerkleProof.self, input)
    case 6: check(MerkleProof.self, input)
    case 7:
        // A transaction batch (peer gossip, POST /v1/txs): refused, or re-encoded to exactly the input.
        if let items = try? TransactionBatch.decode(input, maxCount: 1024), TransactionBatch.encode(items) != input {
            fatalError("TransactionBatch decode/encode is not an exact inverse")
        }
    case 8:
        // CoAP: a message that decodes re-encodes to exactly the input (one canonical form).
        if let message = try? CoAPMessage.decode(input), message.encode() != input {
            fatalError("CoAP decode/encode is not an exact inverse")
        }
    case 9:
        // SLIP: whatever the line carries, frames come out bounded and the decoder never grows past its cap.
        var decoder = SLIPDecoder(maxPayloadSize: 256)
        let half = input.count / 2
        for frame in decoder.feed(Array(input[..<half])) + decoder.feed(Array(input[half...])) where frame.count > 256 {
            fatalError("SLIP frame over the cap: \(frame.count)")
        }
    case 10: check(HeaderPayload.self, input)
    case 11: check(CheckpointsPayload.self, input)
    case 12: check(TransactionProofPayload.self, input)
    case 13: check(AccountProofPayload.self, input)
    case 14: check(InboxPayload.self, input)
    case 15:
        // The object proofs share one generic payload: each state kind under it.
        check(EscrowProofPayload.self, input)
        check(HTLCProofPayload.self, input)
        check(ChannelProofPayload.self, input)
    case 16, 17: fuzzSession(operation: selector, input)
    case 18: check(SkipPayload.self, input)
    case 19: check(ReanchorPayload.self, input)
    case 20:
        // A payment code (a notification unmasks to one): refused, or its binary form is exactly the input.
        if let code = try? PaymentCode(binary: input), code.binary != input {
            fatalError("PaymentCode binary decode/encode is not an exact inverse")
        }
    case 21:
        // A recipient filter as a gateway serves it: matched or refused, in bounded steps, never a trap. A filter
        // that decodes is rebuilt from nothing the fuzzer controls, so only the streaming decoder is under test.
        var matcher = RecipientFilterMatcher(watching: FuzzDevice.watched, key: FuzzDevice.filterKey)
        var offset = 0
        while offset < input.count {
            let end = min(offset + 37, input.count)
            guard (try? matcher.feed(Array(input[offset..<end]))) != nil else { break }
            offset = end
        }
        _ = try? matcher.finish()
    case 22:
        // Stealth: an epoch's announcement list, a stealth address and a view key, each refused or re-encoded to
        // exactly the input.
        if let list = try? StealthAnnouncements.decode(input), StealthAnnouncements.encode(list) != input {
            fatalError("StealthAnnouncements decode/encode is not an exact inverse")
        }
        if let address = try? StealthAddress(binary: input), address.binary != input {
            fatalError("StealthAddress binary decode/encode is not an exact inverse")
        }
        if let view = try? StealthViewKey(binary: input), view.binary != input {
            fatalError("StealthViewKey binary decode/encode is not an exact inverse")
        }
    case 23:
        // A device certificate (published on chain, sent by a peer): refused, or exactly its input (one encoding).
        if let certificate = try? DeviceCertificate(der: input), certificate.der != input {
            fatalError("DeviceCertificate decode/encode is not an exact inverse")
        }
    case 24: check(CertificateRecord.self, input)
    case 25:
        // A channel update a party sends over a device door: refused, or one encoding, and its checks never trap.
        if let update = try? ChannelUpdate(decoding: input) {
            guard update.encoded == input else { fatalError("ChannelUpdate decode/encode is not an exact inverse") }
            _ = update.isSigned(by: update.channelID)
            let channel = PaymentChannel(
                sender: Address(raw: Bytes20(hi: 0, mid: 0, lo: 0)), senderKey: update.channelID,
                recipient: Address(raw: Bytes20(hi: 0, mid: 0, lo: 0)), deposit: 1 << 40,
                expiryHeight: 100)
            _ = try? channel.accept(update, channelID: update.channelID, holding: nil, height: 50)
            // The rules past the signature, on hostile heights and amounts: comparing with itself and with the
            // settled part alone, and the payout of every condition's would-be preimage.
            for height: UInt64 in [0, 50, .max] {
                _ = try? update.supersedes(update, height: height)
                _ = try? ChannelUpdate(channelID: update.channelID, paid: 0, signature: update.signature)
                    .supersedes(update, height: height)
                _ = try? PaymentChannel.payout(update, preimages: update.conditions.map(\.hashLock), height: height)
            }
            for condition in update.conditions { _ = channel.leavesTimeToClaim(condition) }
        }
    case 26: check(PaymentChannel.self, input)
    case 27:
        // A relay message from a channel peer: refused, or one encoding, and unmasking it never traps.
        if let message = try? RelayMessage(decoding: input) {
            guard message.encoded == input else { fatalError("RelayMessage decode/encode is not an exact inverse") }
            _ = try? message.notification.unmask(notificationKey: FuzzDevice.key)
        }
        // The same bytes as a channel door's message (an update or a relay message under a tag byte).
        if let message = try? ChannelMessage(decoding: input), message.encoded != input {
            fatalError("ChannelMessage decode/encode is not an exact inverse")
        }
    case 28:
        // A command a bulb is handed: refused, or one encoding, and the bulb's checks refuse or pass without a trap.
        if let command = try? BulbCommand(decoding: input) {
            guard command.encoded == input else { fatalError("BulbCommand decode/encode is not an exact inverse") }
            let bulb = SmartBulb(address: command.bulb, genesis: .zero, controllers: [command.certificateID])
            _ = try? bulb.check(command)
        }
    case 29: check(CommandsPayload.self, input)
    default:
        if let tx = try? SignedTransaction(decoding: input) {
            // Verification of decoded garbage must fail cleanly, never trap.
            _ = try? VerifiedTransaction(tx)
        }
    }
    return 0
}

/// The device session fed gateway answers made of the input (code byte, two length bytes, body) for one
/// operation picked by `operation`: whatever the answers, it asks, sleeps, finishes or refuses with a typed
/// error, within a bounded number of steps, and never traps. The second input byte sets the device's clock:
/// within the trusting period a sync skips (`v1/skip` answers), past it the device asks for a re-anchor.
private func fuzzSession(operation: UInt8, _ input: [UInt8]) {
    var session = DeviceSession(anchor: FuzzDevice.anchor, trusted: FuzzDevice.trusted, wallet: FuzzDevice.wallet)
    let id = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
    let operations: [DeviceOperation] = [
        .sync(maxEpochs: 3), .head, .account(FuzzDevice.wallet.address), .escrow(id), .inclusion(id, waitMillis: 500),
        .receive(FuzzDevice.wallet.address, from: 1, position: 0, waitMillis: 500),
        .pay(PaymentOrder(recipient: FuzzDevice.wallet.address, amount: 1)), .sync(maxEpochs: .max),
        .commands(FuzzDevice.wallet.address, after: 3), .htlc(id), .channel(id), .channelMessages(id, after: 3),
        .claim(HTLCClaimOrder(lockID: id, preimage: id)),
    ]
    var now: UInt64 = 0
    var rest = input[...]
    let picked = operations[Int(rest.popFirst() ?? operation) % operations.count]
    let wallClock = UInt64(rest.popFirst() ?? 0) * 20
    var action = session.start(picked, now: now, wallClock: wallClock)
    for _ in 0..<64 {
        switch action {
        case .send:
            guard rest.count >= 3 else { return }
            let code = CoAPCode(rawValue: rest.removeFirst())
            let length = Int(rest.removeFirst()) << 8 | Int(rest.removeFirst())
            let body = Array(rest.prefix(length))
            rest = rest.dropFirst(body.count)
            action = session.receive(DeviceAnswer(code: code, body: body), now: now)
        case .sleep(let millis):
            now += UInt64(millis)
            action = session.wake(now: now)
        case .done, .failed:
            guard session.isIdle else { fatalError("the session finished but is not idle") }
            return
        }
    }
}

/// A device trusting a fixed one-member chain: what the session fuzz starts from.
private enum FuzzDevice {
    static let key = try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 0xF022))
    static let wallet = DeviceWallet(key: key, nextNonce: 0)
    static let watched = [Address(raw: Bytes20(hi: 9, mid: 9, lo: 9)), wallet.address]
    static let filterKey = RecipientFilter.key(genesis: .zero, epoch: 3)
    static let committee = try! Committee(
        epoch: 0, members: [Committee.Member(key: key.xOnlyPublicKey.bytes, weight: 1)])
    static let genesis = BlockHeader(
        chainID: 9, height: 0, previousHash: .zero, timestamp: 0, epoch: 0, round: 0, proposer: .zero, baseFee: 1,
        unitsUsed: 0, transactionsRoot: .zero, stateRoot: .zero, receiptsRoot: .zero, nextCommitteeHash: committee.hash,
        nextPoolHash: committee.hash)
    static let anchor = DeviceTrustAnchor(
        genesisHeader: genesis, committee: committee, epochLength: 4, trustingPeriodMillis: 2_000,
        reanchorKey: key.xOnlyPublicKey.bytes)
    static let trusted = try! TrustedState.anchored(
        header: genesis, committee: committee, epochLength: 4, trustedHash: genesis.hash)
}

private func check<T: CanonicalCodable>(_ type: T.Type, _ input: [UInt8]) {
    guard let value = try? T(decoding: input) else { return }
    if value.encoded != input {
        fatalError("non-canonical encoding accepted by \(T.self)")
    }
}

/// SwiftPM links an executable's `main` to `<Module>_main`; this one hands control to libFuzzer's driver.
@_cdecl("AmarsFuzz_main")
public func amarsFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var args: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &args) { data, size in
        guard let data else { return 0 }
        return fuzzOne(data, size)
    }
}

/// Seeds: with AMARS_FUZZ_SEEDS=dir, valid encodings of every decoded type are written there first, so the
/// fuzzer starts from real structure instead of rediscovering it.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
)
    -> CInt
{
    guard let dir = getenv("AMARS_FUZZ_SEEDS") else { return 0 }
    let path = String(cString: dir)
    let key = try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 42))
    let to = Address(raw: Bytes20(hi: 1, mid: 2, lo: 3))
    let payloads: [TransactionPayload] = [
        .transfer(Transfer(to: to, amount: 5, memo: [1, 2])),
        .stake(Stake(candidate: to, amount: 5, durationEpochs: 3, autoStake: true)),
        .candidateUpdate(CandidateUpdate(rewardShareBps: 7)),
        .htlcLock(HTLCLock(recipient: to, amount: 1, hashLock: .zero, expiryHeight: 9)),
        .escrowOpen(EscrowOpen(device: to, owner: to, deposit: 3, rentalFee: 1, expiryHeight: 4)),
    ]
    let txs = payloads.enumerated().map { i, p in
        SignedTransaction(
            body: TransactionBody(
                genesis: FuzzDevice.genesis.hash, sender: key.xOnlyPublicKey.bytes, nonce: UInt64(i),
                maxFeePerUnit: 9, tipPerUnit: 1,
                payload: p), signer: key)
    }
    let committee = try! Committee(epoch: 1, members: [.init(key: key.xOnlyPublicKey.bytes, weight: 1)])
    let header = BlockHeader(
        chainID: 1, height: 10, previousHash: .zero, timestamp: 1, epoch: 1, round: 0,
        proposer: key.xOnlyPublicKey.bytes,
        baseFee: 1, unitsUsed: 0, transactionsRoot: .zero, stateRoot: .zero, receiptsRoot: .zero,
        nextCommitteeHash: committee.hash, nextPoolHash: committee.hash)
    let cert = CommitCertificate(
        height: 10, round: 0, blockHash: header.hash,
        signatures: [.init(memberIndex: 0, signature: key.signSchnorr(header.hash, auxRandom: .zero))])
    let leaves = (0..<5).map { MerkleTree.leafHash([UInt8($0)]) }
    var seeds: [(UInt8, [UInt8])] = txs.map { (0, $0.encoded) }
    seeds.append((1, Block(header: header, transactions: txs).encoded))
    seeds.append((2, header.encoded))
    seeds.append((3, cert.encoded))
    seeds.append((4, Checkpoint(header: header, nextCommittee: committee, certificate: cert).encoded))
    seeds.append((6, MerkleTree.proof(leaves: leaves, index: 3).encoded))
    var get = CoAPMessage(type: .confirmable, code: .get, messageID: 7, token: [1, 2], options: [], payload: [])
    get.setUriPath("v1/checkpoints")
    seeds.append((8, get.encode()))
    seeds.append((9, SLIP.encodeFrame(get.encode())))
    let checkpoint = Checkpoint(header: header, nextCommittee: committee, certificate: cert)
    let receipt = Receipt(transactionID: txs[0].id, status: .success, unitsUsed: 100, feePaid: 100)
    let proof = MerkleTree.proof(leaves: leaves, index: 3)
    seeds.append((10, HeaderPayload(header: header, certificate: cert).encoded))
    seeds.append((11, CheckpointsPayload([checkpoint, checkpoint]).encoded))
    seeds.append(
        (
            12,
            TransactionProofPayload(
                header: header, certificate: cert, position: 3, proof: proof, receipt: receipt, receiptProof: proof
            ).encoded
        ))
    seeds.append((14, InboxPayload(entries: [.init(height: 10, position: 0, transaction: txs[0])]).encoded))
    let attestations = CommitCertificate(
        height: checkpoint.header.height, round: 0, blockHash: checkpoint.header.hash,
        signatures: cert.signatures)
    seeds.append(
        (18, SkipPayload(checkpoint: checkpoint, trustedPool: committee, attestations: attestations).encoded))
    let statement = ReanchorPayload(
        header: header, committee: committee,
        signature: key.signSchnorr(
            ReanchorPayload.signingHash(header: header, genesis: FuzzDevice.genesis.hash), auxRandom: .zero))
    seeds.append((19, statement.encoded))
    let code = try! PaymentCodeKeys(seed: [UInt8](repeating: 5, count: 32)).code
    seeds.append((20, code.binary))
    seeds.append((21, RecipientFilter.build(FuzzDevice.watched + [to], key: FuzzDevice.filterKey)))
    let stealth = try! StealthKeys(seed: [UInt8](repeating: 6, count: 32))
    let certificate = DeviceCertificate(
        signing: CertificateFields(
            serial: [7], issuerName: Array("fuzz".utf8), subjectName: Array("fuzz".utf8), notBefore: 1_700_000_000,
            notAfter: 1_800_000_000, publicKey: key.publicKey, isCA: true, pathLength: 1,
            keyUsage: KeyUsage.keyCertSign, authorityKeyID: Address(publicKey: key.xOnlyPublicKey)),
        with: key)
    seeds.append((23, certificate.der))
    seeds.append((24, CertificateRecord(der: certificate.der, issuer: .zero, publishedAt: 3).encoded))
    let update = ChannelUpdate(
        channelID: .zero, paid: 5,
        conditions: [ChannelCondition(hashLock: SHA256.hash([1]), amount: 2, expiryHeight: 9)], sender: key)
    seeds.append((25, update.encoded))
    let relayCode = try! PaymentCodeKeys(seed: [UInt8](repeating: 5, count: 32)).code
    let relay = try! RelayedNotification(code: relayCode, designated: key, receiver: relayCode)
    seeds.append((27, RelayMessage(update: update, notification: relay).encoded))
    seeds.append(
        (
            26,
            PaymentChannel(
                sender: Address(raw: Bytes20(hi: 0, mid: 0, lo: 0)), senderKey: key.xOnlyPublicKey.bytes,
                recipient: Address(raw: Bytes20(hi: 0, mid: 0, lo: 0)),
                deposit: 9, expiryHeight: 4, status: .closed, paidOut: 7, revealed: [SHA256.hash([2])]
            ).encoded
        ))
    seeds.append(
        (
            29,
            CommandsPayload(entries: [.init(sequence: 4, message: [1, 2, 3]), .init(sequence: 9, message: [])]).encoded
        ))
    seeds.append((22, stealth.address.binary))
    seeds.append((22, stealth.viewKey.binary))
    seeds.append(
        (22, StealthAnnouncements.encode([StealthAnnouncement(transaction: .zero, ephemeralKey: key.publicKey)])))
    // The session fuzz: the operation, the clock, then answers (code, length, payload): a head answer for the
    // head operation.
    let head = HeaderPayload(header: header, certificate: cert).encoded
    seeds.append((16, [1, 0, 0x45, UInt8(head.count >> 8), UInt8(head.count & 0xFF)] + head))
    // A sync within the trusting period (clock 20 ms): the skip answer; past it (clock 5 s): the statement.
    let skip = SkipPayload(checkpoint: checkpoint, trustedPool: committee, attestations: attestations).encoded
    seeds.append((16, [7, 1, 0x45, UInt8(skip.count >> 8), UInt8(skip.count & 0xFF)] + skip))
    let signed = statement.encoded
    seeds.append((17, [7, 250, 0x45, UInt8(signed.count >> 8), UInt8(signed.count & 0xFF)] + signed))
    for (i, (selector, bytes)) in seeds.enumerated() {
        let file = fopen(path + "/seed-\(i)", "wb")
        guard let file else { continue }
        var all = [selector] + bytes
        fwrite(&all, 1, all.count, file)
        fclose(file)
    }
    return 0
}
