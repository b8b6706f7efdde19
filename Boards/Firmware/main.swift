// Firmware self-test: runs the portable modules on the device and exits with status 0 only if every check
// passes (1 if any fails; a trap or fault exits with the board's own status, see board.h).
//
// Checks: SHA-256 known answer; payment codes (BIP47's vectors: a notification unmasked, a one-time key derived
// from a BIP32 seed, an epoch's filter of 1,000 recipients tested and a tampered one refused); BIP340
// verification through libsecp256k1 (a vector of the BIP, and the same signature tampered) and signing without
// the generator table (the vector's key and signature, bit for bit); CoAP GET encode and decode against the
// RFC 7252 wire form; SLIP round trip and a
// corrupted frame dropped; light client: anchor at a genesis header, accept the next checkpoint, refuse a forged
// one and a tampered one, leaving the trusted state unchanged; the same step with the SPEC's committee of 24
// certified by the minimum quorum of 17, and refused with one signature less; persistent storage (the board's
// flash driver, or its semihosting file on QEMU): a write into the second slot erases its own sector only, reads
// back, and out-of-range calls are refused.
//
// Instruction counts: `make -C Boards count` runs this image under QEMU with an instruction-counting plugin
// (Boards/tools/insn-count.c) that reports the instructions between each board_mark_begin and the next
// board_mark_end, in the order they run here (see Mark).
import AmarsCodec
import AmarsCrypto
import Board
import CSecp256k1
import DeviceProtocol
import Ledger
import LightClient
import PaymentCodes

// Single-threaded firmware: the counter is touched only by the self-test running from main.
nonisolated(unsafe) var failures = 0

func check(_ name: StaticString, _ passed: Bool) {
    Console.write(passed ? "  ok    " : "  FAIL  ")
    Console.line(name)
    if !passed { failures += 1 }
}

/// Tags of the measured intervals, in the order the self-test reaches them; `make -C Boards count` names the
/// plugin's intervals 0, 1, 2 after this order.
enum Mark {
    /// One BIP340 verification through libsecp256k1: the per-signature baseline.
    static let schnorrVerify: UInt32 = 1
    /// One BIP340 signature as a board makes it (TablelessSchnorr: no generator table), its check included.
    static let schnorrSign: UInt32 = 4
    /// A skip a day ahead on the production-size chain: decode the checkpoint, the trusted pool's roster and its
    /// attestations, check the roster against the trusted pool hash, then attestations until a third of the pool's
    /// weight is confirmed (twelve here).
    static let skip24: UInt32 = 5
    /// A checkpoint step (decode the bytes, CheckpointVerifier.verifyNext) with the 4-member fixture committee.
    static let step4: UInt32 = 2
    /// The same with 24 members, 17 signatures (the SPEC's default committee at its minimum quorum).
    static let step24: UInt32 = 3
    /// Unmask one payment-code notification (BIP47's: ECDH x, HMAC-SHA512, the code parsed and its point checked).
    static let unmask: UInt32 = 6
    /// Derive one one-time key as its receiver (BIP32 child, ECDH, SHA-256, scalar tweak, its public point).
    static let oneTimeKey: UInt32 = 7
    /// Test 20 watched addresses against an epoch's filter of 1,000 recipients, hashing it against its commitment.
    static let filter1000: UInt32 = 8
}

// MARK: - Payment codes (BIP47's published vectors, Fixtures.swift)

@inline(never)
func testPaymentCodes() {
    guard let b0 = try? PrivateKey(bytes: Bytes32(fixtureBobB0Secret)!),
        let designated = try? PublicKey(compressed: fixtureDesignatedKey),
        let aliceA0 = try? PublicKey(compressed: fixtureAliceA0Public),
        let bob = try? PaymentCodeKeys(seed: fixtureBobSeed, coinType: 0)
    else { return check("payment-code vectors decode", false) }
    board_mark_begin(Mark.unmask)
    let code = try? PaymentCodeNotification.unmask(
        fixtureBlindedCode, designated: designated.xOnly, notificationKey: b0, binding: fixtureNotificationOutpoint)
    board_mark_end(Mark.unmask)
    check("BIP47 notification unmasks to Alice's code", code?.binary == fixtureAliceCode)
    check("BIP47 shared secret x(b0·A0)", b0.sharedX(aliceA0).bytes == fixtureSharedX0)
    guard let alice = code else { return }
    board_mark_begin(Mark.oneTimeKey)
    let oneTime = try? OneTimeKey.secretKey(receiver: bob, payer: alice, index: 0)
    board_mark_end(Mark.oneTimeKey)
    check("BIP47 one-time key 0 from Bob's seed is B0 + SHA256(S0)·G", oneTime?.publicKey.compressed == fixtureOneTime0)
    check("BIP32 m/47'/0'/0'/0 of Bob's seed is the published b0", (try? bob.key(at: 0))?.secret == b0.secret)

    // Recipient i is SHA-256 of i (4 bytes, big-endian), cut to 20 bytes, as the fixture generator made them.
    func recipient(_ i: UInt32) -> Address {
        let digest = SHA256.hash([UInt8(i >> 24), UInt8((i >> 16) & 0xFF), UInt8((i >> 8) & 0xFF), UInt8(i & 0xFF)])
        return Address(raw: Bytes20(digest.bytes[0..<20])!)
    }
    var watched = [recipient(0), recipient(fixtureFilterRecipients - 1)]
    for i in 0..<18 { watched.append(recipient(fixtureFilterRecipients + UInt32(i))) }
    let key = RecipientFilter.key(genesis: Bytes32(fixtureGenesisHash)!, epoch: fixtureFilterEpoch)
    board_mark_begin(Mark.filter1000)
    var matcher = RecipientFilterMatcher(watching: watched, key: key)
    let matched: [Bool]?
    do {
        try matcher.feed(fixtureFilter)
        matched = try matcher.finish(committed: Bytes32(fixtureFilterHash)!)
    } catch { matched = nil }
    board_mark_end(Mark.filter1000)
    var expected = [true, true]
    for _ in 0..<18 { expected.append(false) }
    check("filter of 1,000: both members match, 18 strangers do not", matched == expected)
    // One bit flipped in the middle, fed in three pieces as CoAP blocks would bring it (no copy of the filter:
    // a 16 KB board has no heap for one).
    let middle = fixtureFilter.count / 2
    var refused = RecipientFilterMatcher(watching: watched, key: key)
    let refusedTampered: Bool
    do {
        try refused.feed(fixtureFilter[0..<middle])
        try refused.feed([fixtureFilter[middle] ^ 0x04])
        try refused.feed(fixtureFilter[(middle + 1)...])
        _ = try refused.finish(committed: Bytes32(fixtureFilterHash)!)
        refusedTampered = false
    } catch { refusedTampered = true }
    check("a tampered filter is refused against its commitment", refusedTampered)
}

// MARK: - SHA-256 (FIPS 180-2, "abc")

@inline(never)
func testSHA256() {
    let expected: [UInt8] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    ]
    let digest = SHA256.hash([0x61, 0x62, 0x63]).bytes
    Console.write("  sha256(\"abc\") = ")
    Console.hex(digest)
    Console.newline()
    check("SHA-256 of \"abc\" is the NIST digest", digest == expected)
}

// MARK: - BIP340 Schnorr (bip340_test_vectors.csv, index 1)

/// On a board libsecp256k1's SHA-256, HMAC and RFC 6979 generator run on AmarsCrypto's compression
/// (common/secp256k1-hash.h in place of the library's hash_impl.h): checked through the library's public API,
/// the hash against AmarsCrypto's across block boundaries, the nonces against Debian's unmodified library.
@inline(never)
func testLibraryHashes() {
    let context = amars_secp256k1_static_context()!
    var message: [UInt8] = []
    for i in 0..<200 { message.append(UInt8(i)) }
    var same = true
    for length in [0, 55, 56, 64, 119, 200] {
        var out = [UInt8](repeating: 0, count: 32)
        let tag: StaticString = "AmarsBoardCheck"
        let ok = tag.withUTF8Buffer { t in
            message.withUnsafeBufferPointer { m in
                secp256k1_tagged_sha256(context, &out, t.baseAddress!, t.count, m.baseAddress!, length)
            }
        }
        let ours = TaggedHash(tag: tag).hash(Array(message[0..<length]))
        same = same && ok == 1 && Bytes32(out) == ours
    }
    check("libsecp256k1's tagged SHA-256 is AmarsCrypto's (0 to 200 bytes)", same)
    // Key 1, message A0 A1 ... BF: the nonces Debian's libsecp256k1 0.2.0 gives (counter 1 takes the retry step).
    let expected: [[UInt8]] = [
        [
            0x33, 0x08, 0xde, 0x94, 0x19, 0xe0, 0x4f, 0x2c, 0x8f, 0x9b, 0xa7, 0x19, 0x26, 0x3b, 0xaa, 0x57,
            0xf2, 0xc5, 0xfe, 0xca, 0x55, 0xdf, 0xcd, 0x21, 0xe6, 0x90, 0x91, 0x20, 0xfc, 0x47, 0x4b, 0xff,
        ],
        [
            0x09, 0x23, 0x1e, 0x0f, 0x28, 0x20, 0xa7, 0x7f, 0x76, 0x26, 0xee, 0xa7, 0xa4, 0x4a, 0x0e, 0x30,
            0x9a, 0x94, 0x4c, 0xd5, 0xf5, 0xa2, 0x4a, 0x13, 0x03, 0xc2, 0xe3, 0xaf, 0xd3, 0xb6, 0x57, 0x60,
        ],
    ]
    var key = [UInt8](repeating: 0, count: 32)
    key[31] = 1
    var digest: [UInt8] = []
    for i in 0..<32 { digest.append(UInt8(0xA0 + i)) }
    var nonces = true
    for counter in 0..<2 {
        var nonce = [UInt8](repeating: 0, count: 32)
        let ok = secp256k1_nonce_function_rfc6979(&nonce, digest, key, nil, nil, UInt32(counter))
        nonces = nonces && ok == 1 && nonce == expected[counter]
    }
    check("libsecp256k1's RFC 6979 nonces are Debian's library's", nonces)
}

@inline(never)
func testSchnorr() {
    let publicKey: [UInt8] = [
        0xdf, 0xf1, 0xd7, 0x7f, 0x2a, 0x67, 0x1c, 0x5f, 0x36, 0x18, 0x37, 0x26, 0xdb, 0x23, 0x41, 0xbe,
        0x58, 0xfe, 0xae, 0x1d, 0xa2, 0xde, 0xce, 0xd8, 0x43, 0x24, 0x0f, 0x7b, 0x50, 0x2b, 0xa6, 0x59,
    ]
    let message: [UInt8] = [
        0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44,
        0xa4, 0x09, 0x38, 0x22, 0x29, 0x9f, 0x31, 0xd0, 0x08, 0x2e, 0xfa, 0x98, 0xec, 0x4e, 0x6c, 0x89,
    ]
    let signature: [UInt8] = [
        0x68, 0x96, 0xbd, 0x60, 0xee, 0xae, 0x29, 0x6d, 0xb4, 0x8a, 0x22, 0x9f, 0xf7, 0x1d, 0xfe, 0x07,
        0x1b, 0xde, 0x41, 0x3e, 0x6d, 0x43, 0xf9, 0x17, 0xdc, 0x8d, 0xcf, 0x8c, 0x78, 0xde, 0x33, 0x41,
        0x89, 0x06, 0xd1, 0x1a, 0xc9, 0x76, 0xab, 0xcc, 0xb2, 0x0b, 0x09, 0x12, 0x92, 0xbf, 0xf4, 0xea,
        0x89, 0x7e, 0xfc, 0xb6, 0x39, 0xea, 0x87, 0x1c, 0xfa, 0x95, 0xf6, 0xde, 0x33, 0x9e, 0x4b, 0x0a,
    ]
    guard let keyBytes = Bytes32(publicKey), let digest = Bytes32(message),
        let r = Bytes32(signature[0..<32]), let s = Bytes32(signature[32..<64]),
        let key = try? XOnlyPublicKey(bytes: keyBytes)
    else {
        check("BIP340 vector parses", false)
        return
    }
    let good = Bytes64(first: r, second: s)
    board_mark_begin(Mark.schnorrVerify)
    let verified = key.verifySchnorr(good, message: digest)
    board_mark_end(Mark.schnorrVerify)
    check("BIP340 vector 1 verifies (libsecp256k1)", verified)
    var tamperedS = signature[32..<64].map { $0 }
    tamperedS[31] ^= 0x01
    let tampered = Bytes64(first: r, second: Bytes32(tamperedS)!)
    check("BIP340 tampered signature is refused", !key.verifySchnorr(tampered, message: digest))

    // The same vector signed on the board: its secret key and aux give exactly the listed signature.
    let secret = Bytes32(
        w0: 0xB7E1_5162_8AED_2A6A, w1: 0xBF71_5880_9CF4_F3C7, w2: 0x62E7_160F_38B4_DA56, w3: 0xA784_D904_5190_CFEF)
    guard let signer = try? PrivateKey(bytes: secret) else {
        check("BIP340 vector 1 key derives without the generator table", false)
        return
    }
    check("BIP340 vector 1 key derives without the generator table", signer.xOnlyPublicKey.bytes == keyBytes)
    board_mark_begin(Mark.schnorrSign)
    let made = signer.signSchnorr(digest, auxRandom: Bytes32(w0: 0, w1: 0, w2: 0, w3: 1))
    board_mark_end(Mark.schnorrSign)
    check("BIP340 vector 1 signed on the board is the listed signature", made == good)
}

// MARK: - CoAP (RFC 7252)

@inline(never)
func testCoAP() {
    var request = CoAPMessage(type: .confirmable, code: .get, messageID: 0x1234, token: [1, 2, 3, 4])
    request.setUriPath(DeviceResources.checkpoints)
    let wire = request.encode()
    // Ver 1, CON, TKL 4 | GET | message id | token | Uri-Path "v1" (delta 11) | Uri-Path "checkpoints" (delta 0)
    let expected: [UInt8] = [
        0x44, 0x01, 0x12, 0x34, 0x01, 0x02, 0x03, 0x04, 0xb2, 0x76, 0x31,
        0x0b, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x70, 0x6f, 0x69, 0x6e, 0x74, 0x73,
    ]
    Console.write("  coap GET v1/checkpoints = ")
    Console.hex(wire)
    Console.newline()
    check("CoAP GET encodes to the RFC 7252 wire form", wire == expected)
    guard let decoded = try? CoAPMessage.decode(wire) else {
        check("CoAP GET decodes", false)
        return
    }
    check(
        "CoAP GET decodes to the same message",
        decoded == request && decoded.code == .get && decoded.uriPathMatches(DeviceResources.checkpoints))
    check("CoAP truncated message is refused", (try? CoAPMessage.decode([0x44, 0x01, 0x12])) == nil)
}

// MARK: - SLIP

@inline(never)
func testSLIP() {
    let payload: [UInt8] = [0x01, SLIP.end, 0x02, SLIP.esc, 0x03, SLIP.escEnd, 0xFF]
    let frame = SLIP.encodeFrame(payload)
    var decoder = SLIPDecoder()
    var frames = 0
    var roundTrip: [UInt8] = []
    for byte in frame {
        if let got = decoder.push(byte) {
            frames += 1
            roundTrip = got
        }
    }
    check("SLIP frame round trips (escapes and CRC)", frames == 1 && roundTrip == payload)
    var corrupted = frame
    corrupted[1] ^= 0x40
    var second = SLIPDecoder()
    var accepted = false
    for byte in corrupted where second.push(byte) != nil { accepted = true }
    check("SLIP corrupted frame is dropped", !accepted && second.drops.badCheck == 1)
}

// MARK: - Light client

// Each step is its own non-inlined function so that its locals are released before the next: inlined together
// they made one 5.9 KB frame, which measured the test harness rather than the light client.
@inline(never)
func testLightClient() {
    guard
        let anchored = anchorAtGenesis(
            "trust anchored at the genesis header", hash: fixtureGenesisHash, header: fixtureGenesisHeader,
            committee: fixtureCommittee0),
        let checkpoint = decodeCheckpoint(fixtureCheckpoint)
    else { return }
    acceptStep(
        "checkpoint step (decode and verify) with 4 members accepted", anchored, fixtureCheckpoint, mark: Mark.step4,
        checkpointHash: fixtureCheckpointHash, committeeHash: fixtureCommittee1Hash)
    acceptCheckpoint(anchored, checkpoint)
    refuseForged(anchored)
    refuseTampered(anchored, checkpoint)
    refuseShortOfQuorum(anchored, checkpoint)
}

@inline(never)
func decodeCheckpoint(_ bytes: [UInt8]) -> Checkpoint? {
    guard let checkpoint = try? Checkpoint(decoding: bytes) else {
        check("checkpoint fixture decodes", false)
        return nil
    }
    return checkpoint
}

@inline(never)
func anchorAtGenesis(_ name: StaticString, hash: [UInt8], header: [UInt8], committee: [UInt8]) -> TrustedState? {
    guard let genesisHash = Bytes32(hash), let genesis = try? BlockHeader(decoding: header),
        let committee0 = try? Committee(decoding: committee)
    else {
        check("genesis fixtures decode", false)
        return nil
    }
    do {
        let anchored = try TrustedState.anchored(
            header: genesis, committee: committee0, epochLength: fixtureEpochLength, trustedHash: genesisHash)
        check(name, anchored.epoch == 0 && anchored.chainID == fixtureChainID)
        return anchored
    } catch {
        check(name, false)
        return nil
    }
}

/// One checkpoint step as a device takes it when the bytes arrive: decode, then verify against the trusted
/// state. Only this is between the markers; the caller has the bytes in hand already.
@inline(never)
func checkpointStep(_ trusted: TrustedState, _ bytes: [UInt8], mark: UInt32) -> TrustedState? {
    board_mark_begin(mark)
    var next: TrustedState? = nil
    if let checkpoint = try? Checkpoint(decoding: bytes) {
        next = try? CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: checkpoint)
    }
    board_mark_end(mark)
    return next
}

@inline(never)
func acceptStep(
    _ name: StaticString, _ trusted: TrustedState, _ bytes: [UInt8], mark: UInt32, checkpointHash: [UInt8],
    committeeHash: [UInt8]
) {
    guard let next = checkpointStep(trusted, bytes, mark: mark) else { return check(name, false) }
    check(
        name,
        next.epoch == trusted.epoch + 1 && next.checkpointHash.bytes == checkpointHash
            && next.committee.hash.bytes == committeeHash && next.sequence == trusted.sequence + 1)
}

@inline(never)
func acceptCheckpoint(_ anchored: TrustedState, _ checkpoint: Checkpoint) {
    guard let expectedCheckpointHash = Bytes32(fixtureCheckpointHash),
        let expectedCommittee1 = Bytes32(fixtureCommittee1Hash)
    else { return check("expected hashes decode", false) }
    switch CheckpointVerifier.verifyNextResult(trusted: anchored, checkpoint: checkpoint) {
    case .success(let next):
        check(
            "checkpoint of epoch 0 accepted, committee 1 trusted",
            next.epoch == 1 && next.checkpointHash == expectedCheckpointHash
                && next.committee.hash == expectedCommittee1
                && next.sequence == 1)
    case .failure:
        check("checkpoint of epoch 0 accepted, committee 1 trusted", false)
    }
}

@inline(never)
func refuseForged(_ anchored: TrustedState) {
    guard let forged = decodeCheckpoint(fixtureForgedCheckpoint) else { return }
    let before = anchored
    let result = CheckpointVerifier.verifyNextResult(trusted: anchored, checkpoint: forged)
    check(
        "forged checkpoint (signers outside the committee) refused",
        result == .failure(.certificate(.badSignature(index: 0))) && anchored == before)
}

@inline(never)
func refuseTampered(_ anchored: TrustedState, _ checkpoint: Checkpoint) {
    var tampered = checkpoint
    var signature = tampered.certificate.signatures[1].signature
    signature.second.w3 ^= 1
    tampered.certificate.signatures[1].signature = signature
    check(
        "checkpoint with a tampered signature refused",
        CheckpointVerifier.verifyNextResult(trusted: anchored, checkpoint: tampered)
            == .failure(.certificate(.badSignature(index: 1))))
}

@inline(never)
func refuseShortOfQuorum(_ anchored: TrustedState, _ checkpoint: Checkpoint) {
    var shortOfQuorum = checkpoint
    shortOfQuorum.certificate.signatures.removeLast()  // 4 of 6: not more than two thirds
    check(
        "checkpoint short of a quorum refused",
        CheckpointVerifier.verifyNextResult(trusted: anchored, checkpoint: shortOfQuorum)
            == .failure(.certificate(.noQuorum(signed: 4, total: 6))))
}

// MARK: - Light client at production size (24 members, 17 signatures)

@inline(never)
func testProductionCheckpoint() {
    guard
        let anchored = anchorAtGenesis(
            "trust anchored at a 24-member genesis", hash: fixture24GenesisHash, header: fixture24GenesisHeader,
            committee: fixture24Committee0),
        let checkpoint = decodeCheckpoint(fixture24Checkpoint)
    else { return }
    check(
        "production-size fixture: 24 members, 17 signatures",
        anchored.committee.members.count == fixture24Members
            && checkpoint.nextCommittee.members.count == fixture24Members
            && checkpoint.certificate.signatures.count == fixture24Quorum)
    acceptStep(
        "checkpoint step (decode and verify) with 24 members, 17 signatures accepted", anchored, fixture24Checkpoint,
        mark: Mark.step24, checkpointHash: fixture24CheckpointHash, committeeHash: fixture24Committee1Hash)
    refuseBelowQuorum24(anchored, checkpoint)
    guard let trusted = try? CheckpointVerifier.verifyNext(trusted: anchored, checkpoint: checkpoint) else {
        return check("production-size checkpoint accepted before the skip", false)
    }
    skipStep(trusted)
}

/// What a device waking a day later does: one skip to the checkpoint closing epoch 24, counted against the pool.
@inline(never)
func skipStep(_ trusted: TrustedState) {
    guard let options = SkippingOptions(trustingPeriod: 14 * 86_400_000) else { return check("options", false) }
    board_mark_begin(Mark.skip24)
    let offer = skipOffer()
    let outcome = offer.flatMap {
        try? CheckpointVerifier.verifySkipping(trusted: trusted, checkpoint: $0, now: fixtureSkipNow, options: options)
    }
    board_mark_end(Mark.skip24)
    guard case .advanced(let next, let checks) = outcome, let offer else {
        return check("skip of 23 epochs accepted", false)
    }
    check(
        "skip of 23 epochs accepted: a third of the trusted pool, 12 attestations checked",
        next.epoch == 25 && checks == fixtureSkipChecks && next.committee.hash.bytes == fixtureSkipCommitteeHash)
    // Two weeks later the trusted pool is past the trusting period: the same skip is refused unchecked.
    check(
        "skip refused once the trusted pool is older than the trusting period",
        (try? CheckpointVerifier.verifySkipping(
            trusted: trusted, checkpoint: offer, now: (trusted.timestamp ?? 0) + options.trustingPeriod,
            options: options)) == nil)
}

func skipOffer() -> SkippingCheckpoint? {
    guard let checkpoint = try? Checkpoint(decoding: fixtureSkipCheckpoint),
        let pool = try? Committee(decoding: fixtureSkipPool),
        let attestations = try? CommitCertificate(decoding: fixtureSkipAttestations)
    else { return nil }
    return SkippingCheckpoint(checkpoint: checkpoint, trustedPool: pool, attestations: attestations)
}

@inline(never)
func refuseBelowQuorum24(_ anchored: TrustedState, _ checkpoint: Checkpoint) {
    var belowQuorum = checkpoint
    belowQuorum.certificate.signatures.removeLast()  // 16 of 24: exactly two thirds, not more
    check(
        "24-member checkpoint with 16 signatures refused",
        CheckpointVerifier.verifyNextResult(trusted: anchored, checkpoint: belowQuorum)
            == .failure(.certificate(.noQuorum(signed: 16, total: 24))))
}

// MARK: - Persistent storage (board_storage_*, the sync firmware's two 8 KiB slots)

/// 100 bytes of `seed`'s pattern: distinct per seed, never all 0xFF.
func storagePattern(_ seed: UInt8) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 100)
    for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 7) &+ seed }
    return bytes
}

/// Reads `count` bytes at `offset`, or nil when the driver refuses.
func storageRead(_ offset: Int, _ count: Int) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: count)
    let status = out.withUnsafeMutableBufferPointer { board_storage_read(offset, $0.baseAddress, count) }
    return status == 0 ? out : nil
}

func storageWrite(_ offset: Int, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBufferPointer { board_storage_write(offset, $0.baseAddress, bytes.count) } == 0
}

/// Whether [from, to) of the storage reads all 0xFF (erased), read 100 bytes at a time (RAM: qemu-microbit).
func storageErased(_ from: Int, _ to: Int) -> Bool {
    var at = from
    while at < to {
        let count = min(100, to - at)
        guard let chunk = storageRead(at, count), chunk.allSatisfy({ $0 == 0xFF }) else { return false }
        at += count
    }
    return true
}

/// The slot layout on the board's storage: a write into the second slot (unaligned start and end) erases the
/// sector it touches and nothing of the first slot; reads past the end are refused. 1 KiB is the smallest erase
/// sector of any board (nRF51), so [8192, 9216) lies in one sector everywhere.
@inline(never)
func testStorage() {
    let slot = 8192
    let size = board_storage_size()
    check("storage holds two 8 KiB slots", size >= 2 * slot)
    guard size >= 2 * slot else { return }
    let first = storagePattern(0x11)
    let stale = storagePattern(0x5A)
    let second = storagePattern(0xA3)
    check(
        "storage writes a pattern into each slot",
        storageWrite(10, first) && storageWrite(slot + 200, stale) && storageWrite(slot + 10, second))
    check("storage reads the second slot's pattern back", storageRead(slot + 10, second.count) == second)
    check(
        "storage write erased the rest of its sector",
        storageErased(slot, slot + 10) && storageErased(slot + 10 + second.count, slot + 1024))
    check("storage write left the first slot untouched", storageRead(10, first.count) == first)
    let tail = storageRead(size - 99, 99)
    var byte: [UInt8] = [0]
    let refused = byte.withUnsafeMutableBufferPointer { buffer in
        board_storage_read(size - 50, buffer.baseAddress, 100) == -1
            && board_storage_read(size + 1, buffer.baseAddress, 0) == -1
            && board_storage_read(16, buffer.baseAddress, -1) == -1  // SIZE_MAX: offset + count wraps
            && board_storage_write(size, buffer.baseAddress, 1) == -1
            && board_storage_write(size - 99, buffer.baseAddress, 100) == -1
    }
    check("storage refuses reads and writes out of range", refused)
    check("storage end unchanged by the refused write", tail != nil && storageRead(size - 99, 99) == tail)
}

// MARK: - Run

#if FIRMWARE_SYNC
    syncMain()  // Device.swift: the device session against a gateway (make -C Boards sync)
#else

    Console.newline()
    Console.write("Amarscity firmware self-test on ")
    board_puts(board_name())
    Console.newline()
    nonisolated(unsafe) var stackPeak = 0
    func measured(_ name: StaticString, _ test: () -> Void) {
        board_stack_reset_peak()
        test()
        let peak = board_stack_peak()
        if peak > stackPeak { stackPeak = peak }
        Console.write("  stack peak ")
        Console.decimal(peak)
        Console.write(" B in ")
        Console.line(name)
    }
    measured("SHA-256", testSHA256)
    measured("library hashes", testLibraryHashes)
    measured("Schnorr", testSchnorr)
    measured("CoAP", testCoAP)
    measured("SLIP", testSLIP)
    measured("light client", testLightClient)
    // The 24-member step peaks at 7.8 KB of heap: a board whose heap is smaller (qemu-microbit, 16 KB of RAM in
    // all) leaves it out rather than run out of memory.
    if board_heap_size() >= 8192 {
        measured("light client, 24 members", testProductionCheckpoint)
    } else {
        Console.line("  not run: light client, 24 members (needs 8 KiB of heap)")
    }
    measured("payment codes", testPaymentCodes)
    measured("storage", testStorage)
    Console.memory(stackPeak: stackPeak)
    if failures == 0 {
        Console.line("self-test: PASS")
        board_exit(0)
    } else {
        Console.write("self-test: FAIL (")
        Console.decimal(failures)
        Console.line(" checks)")
        board_exit(1)
    }
#endif
