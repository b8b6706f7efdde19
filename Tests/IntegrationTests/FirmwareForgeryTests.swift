import AmarsCodec
import AmarsCrypto
import Chain
import DeviceClient
import DeviceCore
import DeviceGateway
import DeviceProtocol
import Foundation
import Ledger
import LightClient
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The sync firmware (qemu-mps2-an386, in QEMU) against a lying gateway, through the real `amarsd bridge`: a
/// small UDP CoAP server in this process answers with forged data, and the firmware must stop with the exit
/// status of that refusal and never pass. Before the sync: forged checkpoints, a forged genesis header, garbage
/// and over-long frames (Boards/Firmware/Device.swift: 16 + r genesis header refused, 32 + r checkpoint refused,
/// 7 transport). After an honest sync: proofs for another root than the verified one, of the device's balance,
/// of a transfer's inclusion and of its receipt (Device.swift: 11, 12, 13, 81).
///
/// One genesis (four validators of weight 1, fixed keys and timestamp, so a rerun reuses the build) and one
/// sync-firmware build serve every case; only the stand-in gateway's answers change, and each run is
/// `make sync SKIP_BUILD=1`.
final class FirmwareForgeryTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The payment's exit statuses (Device.swift).
    enum PayStatus {
        static let accountProofRefused: Int32 = 11
        static let inclusionRefused: Int32 = 12
        static let inconsistent: Int32 = 13
        static let receiptRefused: Int32 = 81
    }

    /// The sync's exit statuses (Device.swift).
    enum Status {
        static let transport: Int32 = 7
        static let anchorRefused: Int32 = 16
        static let checkpointRefused: Int32 = 32
        // refusalCode(_:) in Device.swift
        static let badSignature: Int32 = 11
        static let noQuorum: Int32 = 12
        static let untrustedAnchor: Int32 = 14
    }

    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0xF0_4E, w2: 0, w3: n)) }

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-fwforge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    func testForgedGatewayAnswersAreRefusedWithDistinctStatuses() throws {
        try Harness.requireBoardToolchain(for: "firmware forgery test")
        // The chain the firmware is provisioned for: four validators of weight 1 (quorum needs 3).
        let validators = (1...4).map { Self.key($0) }
        let owner = Address(publicKey: Self.key(100).xOnlyPublicKey)
        let written = Genesis(
            chainID: 4242, chainName: "firmware-forgery", timestamp: 1_700_000_000_000, epochLength: 5,
            initialBaseFee: 10,
            validators: validators.map { Committee.Member(key: $0.xOnlyPublicKey.bytes, weight: 1) },
            allocations: Genesis.Category.allCases.map { .init(category: $0, address: owner, amount: $0.amount) },
            burned: [:],
            // The timestamp is fixed (a rerun reuses the build), so the trusting period must outlast the years
            // since: about a century of unbonding.
            staking: .init(unbondingEpochs: 1_000_000_000))
        let genesisFile = dir.appendingPathComponent("genesis.json")
        try written.jsonData().write(to: genesisFile)
        // As the provisioning step reads it (make-provision: Genesis.load, then the height-0 header).
        let genesis = try Genesis.load(path: genesisFile.path)
        let anchor = DeviceTrustAnchor(
            genesisHeader: genesis.header, committee: genesis.committee(epoch: 0), epochLength: genesis.epochLength)
        let genesisHeader = genesis.header
        XCTAssertEqual(genesisHeader.hash, anchor.genesisHeaderHash)
        let genuineGenesis = HeaderPayload(
            header: genesisHeader,
            certificate: CommitCertificate(height: 0, round: 0, blockHash: genesisHeader.hash, signatures: []))
        let trusted = try TrustedState.anchored(
            header: genesisHeader, committee: anchor.committee, epochLength: genesis.epochLength,
            trustedHash: anchor.genesisHeaderHash)
        let checkpointHeight = try XCTUnwrap(trusted.signedHeights).last

        // The device's key (fixed, so a rerun reuses the build): the payment steps are built in, so the image
        // also asks for its account proof, its inbox and transaction proofs once synced.
        let deviceKey = Self.key(50)
        let device = Address(publicKey: deviceKey.xOnlyPublicKey)
        let deviceKeyFile = dir.appendingPathComponent("device.key").path
        try KeyFile.write(deviceKey, to: deviceKeyFile)
        let payTo = Address(publicKey: Self.key(51).xOnlyPublicKey)

        // Build once (minutes on a cold scratch); every case below reuses the image.
        let hostBuild = Harness.binDirectory.path
        let make = [
            "-C", Self.root.appendingPathComponent("Boards").path, "BOARD=qemu-mps2-an386",
            "GENESIS=\(genesisFile.path)", "HOST_BUILD=\(hostBuild)", "DEVICE_KEY=\(deviceKeyFile)",
            "PAY_TO=\(payTo.bech32)", "STORAGE_DIR=\(dir.appendingPathComponent("flash").path)",
        ]
        let build = try run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }

        let server = try ForgedGateway(trustedPool: anchor.committee)
        defer { server.stop() }
        /// `synced`: the case lies only after the sync, so "sync: PASS" may appear but the payment must not pass.
        func runFirmware(_ name: String, synced: Bool = false) throws -> (status: Int32, log: String) {
            let serialPort = Harness.freePort(type: Int32(SOCK_STREAM.rawValue))
            let sync = try run(
                "/usr/bin/env",
                ["make"] + make + [
                    "sync", "SKIP_BUILD=1", "GATEWAY=coap://127.0.0.1:\(server.port)", "SYNC_PORT=\(serialPort)",
                ],
                timeout: 300)
            XCTAssertFalse(
                sync.output.contains(synced ? "pay: PASS" : "PASS"),
                "\(name): the firmware reported PASS:\n\(sync.output)")
            // make exits 2 when the recipe fails; the firmware's own status is the line the recipe prints.
            XCTAssertNotEqual(sync.status, 0, "\(name):\n\(sync.output.suffix(4000))")
            guard let range = sync.output.range(of: #"firmware exit status \d+"#, options: .regularExpression),
                let status = Int32(sync.output[range].split(separator: " ").last ?? "")
            else {
                XCTFail("\(name): no firmware exit status:\n\(sync.output.suffix(4000))")
                return (-1, sync.output)
            }
            return (status, sync.output)
        }

        /// A checkpoint closing epoch 0 whose header names `next` and whose certificate has `signers` sign it
        /// (each filed under the member index it is given).
        func checkpoint(next: Committee, signers: [(index: UInt16, key: PrivateKey)]) -> Checkpoint {
            let header = BlockHeader(
                chainID: genesis.chainID, height: checkpointHeight, previousHash: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4),
                timestamp: genesis.timestamp + 5_000, epoch: 0, round: 0, proposer: validators[0].xOnlyPublicKey.bytes,
                baseFee: genesis.initialBaseFee, unitsUsed: 0, transactionsRoot: .zero,
                stateRoot: genesisHeader.stateRoot, receiptsRoot: .zero, nextCommitteeHash: next.hash)
            let hash = header.hash
            let signatures = signers.map { signer in
                let message = Vote.signingHash(
                    chainID: genesis.chainID, genesis: genesisHeader.hash, height: header.height, round: 0,
                    step: .commit, blockHash: hash, voter: signer.key.xOnlyPublicKey.bytes)
                return CommitCertificate.Signature(
                    memberIndex: signer.index, signature: signer.key.signSchnorr(message, auxRandom: .zero))
            }
            return Checkpoint(
                header: header, nextCommittee: next,
                certificate: CommitCertificate(height: header.height, round: 0, blockHash: hash, signatures: signatures)
            )
        }

        var statuses: [String: Int32] = [:]

        // 1. Signed by three keys outside the committee, filed under members 0, 1, 2 (what a quorum would be).
        let outsiders = (200...203).map { Self.key($0) }
        let sameNext = try Committee(epoch: 1, members: genesis.validators)
        let intruded = checkpoint(next: sameNext, signers: outsiders.prefix(3).enumerated().map { (UInt16($0), $1) })
        expectRefusal(trusted, intruded, "intruders") {
            if case .certificate(.badSignature(index: 0)) = $0 { return true } else { return false }
        }
        server.set(headers: [genuineGenesis.encoded], checkpoints: [CheckpointsPayload([intruded]).encoded])
        let intruders = try runFirmware("checkpoint signed by outsiders")
        XCTAssertEqual(intruders.status, Status.checkpointRefused + Status.badSignature, intruders.log)
        XCTAssertTrue(intruders.log.contains("sync: anchored at genesis"), intruders.log)
        XCTAssertTrue(intruders.log.contains("checkpoint refused: bad signature"), intruders.log)
        statuses["outsiders"] = intruders.status

        // 2. A committee change (to the outsiders) signed by one of the four genuine validators: 1 of 4.
        let takeover = try Committee(
            epoch: 1, members: outsiders.map { Committee.Member(key: $0.xOnlyPublicKey.bytes, weight: 100) })
        let minority = checkpoint(next: takeover, signers: [(0, validators[0])])
        expectRefusal(trusted, minority, "minority") {
            if case .certificate(.noQuorum(signed: 1, total: 4)) = $0 { return true } else { return false }
        }
        server.set(headers: [genuineGenesis.encoded], checkpoints: [CheckpointsPayload([minority]).encoded])
        let noQuorum = try runFirmware("committee change without quorum")
        XCTAssertEqual(noQuorum.status, Status.checkpointRefused + Status.noQuorum, noQuorum.log)
        XCTAssertTrue(noQuorum.log.contains("checkpoint refused: no quorum"), noQuorum.log)
        statuses["no quorum"] = noQuorum.status

        // 3. A genesis header that is not the provisioned one (one millisecond later).
        var otherHeader = genesisHeader
        otherHeader.timestamp += 1
        let otherGenesis = HeaderPayload(
            header: otherHeader,
            certificate: CommitCertificate(height: 0, round: 0, blockHash: otherHeader.hash, signatures: []))
        XCTAssertThrowsError(
            try TrustedState.anchored(
                header: otherHeader, committee: anchor.committee, epochLength: genesis.epochLength,
                trustedHash: anchor.genesisHeaderHash))
        server.set(headers: [otherGenesis.encoded], checkpoints: [CheckpointsPayload([intruded]).encoded])
        let wrongGenesis = try runFirmware("genesis header not the provisioned one")
        XCTAssertEqual(wrongGenesis.status, Status.anchorRefused + Status.untrustedAnchor, wrongGenesis.log)
        XCTAssertTrue(wrongGenesis.log.contains("genesis header refused"), wrongGenesis.log)
        XCTAssertFalse(wrongGenesis.log.contains("sync: anchored at genesis"), wrongGenesis.log)
        statuses["genesis"] = wrongGenesis.status

        // 4. Garbage and over-long frames: datagrams that are no CoAP at all, and a 2.05 whose body is over what a
        // frame may carry. The bridge relays neither; the firmware ends with the transport status, anchored at
        // nothing.
        let garbage: [UInt8] = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let overLong = [UInt8](repeating: 0x5A, count: CoAPMessage.maxMessageSize + 512)
        for (name, answers) in [
            ("garbage datagrams", ForgedGateway.Answer.raw([garbage, [0xFF], []])),
            ("over-long answer", ForgedGateway.Answer.content(overLong)),
        ] {
            server.set(headers: answers)
            let result = try runFirmware(name)
            XCTAssertEqual(result.status, Status.transport, "\(name):\n\(result.log)")
            XCTAssertTrue(result.log.contains("sync: no usable answer to v1/headers"), "\(name):\n\(result.log)")
            XCTAssertFalse(result.log.contains("sync: anchored at genesis"), "\(name):\n\(result.log)")
            statuses[name] = result.status
        }
        XCTAssertGreaterThan(server.requestCount, 0)

        // 5-8. Proofs for another root. The gateway now serves a chain the firmware accepts (the genesis header
        // is the head, no checkpoint yet), so it reaches its account and payment steps; then each proof it gets
        // is genuine for some other root than the one it verified.
        let honest = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("honest.sqlite").path))
        var richGenesis = genesis
        richGenesis.allocations[0].address = device
        let rich = try ChainNode(
            genesis: richGenesis, store: try BlockStore(path: dir.appendingPathComponent("rich.sqlite").path))
        let honestView = honest.account(device)
        let richView = rich.account(device)
        XCTAssertEqual(honestView.stateRoot, genesisHeader.stateRoot)
        XCTAssertNotEqual(richView.stateRoot, genesisHeader.stateRoot)
        XCTAssertGreaterThan(richView.state.balance, 0)
        server.set(headers: .content(genuineGenesis.encoded), checkpoints: .notFound)
        server.set("v1/head", .content(genuineGenesis.encoded))

        // 5. A balance proven in another state tree, and the payload names that tree's root: not its block's.
        server.set(
            "v1/proof/account",
            .content(
                AccountProofPayload(
                    height: 0, stateRoot: richView.stateRoot, state: richView.state, proof: richView.proof
                ).encoded))
        let otherRoot = try runFirmware("account proof naming another root", synced: true)
        XCTAssertEqual(otherRoot.status, PayStatus.inconsistent, otherRoot.log)
        XCTAssertTrue(otherRoot.log.contains("sync: PASS"), otherRoot.log)
        XCTAssertTrue(otherRoot.log.contains("account proof names another state root"), otherRoot.log)
        statuses["account, other root named"] = otherRoot.status

        // 6. The same balance and proof, claimed under the genesis state root.
        server.set(
            "v1/proof/account",
            .content(
                AccountProofPayload(
                    height: 0, stateRoot: genesisHeader.stateRoot, state: richView.state, proof: richView.proof
                ).encoded))
        let foreignProof = try runFirmware("account proof from another tree", synced: true)
        XCTAssertEqual(foreignProof.status, PayStatus.accountProofRefused, foreignProof.log)
        XCTAssertTrue(foreignProof.log.contains("pay: account proof refused: proof mismatch"), foreignProof.log)
        XCTAssertFalse(foreignProof.log.contains("pay: account balance"), foreignProof.log)
        statuses["account, foreign proof"] = foreignProof.status

        // 7-8. The honest answer (the device holds nothing, so it waits to be paid), then a transfer to it listed
        // in its inbox at height 1, whose block the genuine committee certified (this test holds their keys).
        server.set(
            "v1/proof/account",
            .content(
                AccountProofPayload(
                    height: 0, stateRoot: honestView.stateRoot, state: honestView.state, proof: honestView.proof
                ).encoded))
        let incoming = SignedTransaction(
            body: TransactionBody(
                genesis: genesis.header.hash, sender: Self.key(100).xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 50,
                tipPerUnit: 1, payload: .transfer(Transfer(to: device, amount: 5_000_000))),
            signer: Self.key(100))
        server.set(
            "v1/inbox",
            .content(InboxPayload(entries: [.init(height: 1, position: 0, transaction: incoming)]).encoded))
        let succeeded = Receipt(transactionID: incoming.id, status: .success, unitsUsed: 100, feePaid: 5_000)
        var failed = succeeded
        failed.status = .failed
        func certifiedBlock(transactions: [Bytes32], receipts: [Receipt]) -> HeaderPayload {
            let header = BlockHeader(
                chainID: genesis.chainID, height: 1, previousHash: genesisHeader.hash,
                timestamp: genesis.timestamp + 1_000, epoch: 0, round: 0, proposer: validators[0].xOnlyPublicKey.bytes,
                baseFee: genesis.initialBaseFee, unitsUsed: 100,
                transactionsRoot: Block.transactionsRoot(ids: transactions), stateRoot: genesisHeader.stateRoot,
                receiptsRoot: Receipt.root(receipts), nextCommitteeHash: nil)
            let hash = header.hash
            let signatures = validators.prefix(3).enumerated().map { index, key in
                CommitCertificate.Signature(
                    memberIndex: UInt16(index),
                    signature: key.signSchnorr(
                        Vote.signingHash(
                            chainID: genesis.chainID, genesis: genesisHeader.hash, height: 1, round: 0,
                            step: .commit, blockHash: hash, voter: key.xOnlyPublicKey.bytes), auxRandom: .zero))
            }
            return HeaderPayload(
                header: header,
                certificate: CommitCertificate(height: 1, round: 0, blockHash: hash, signatures: signatures))
        }
        func leaves(_ ids: [Bytes32]) -> [Bytes32] { ids.map { MerkleTree.leafHash($0.bytes) } }
        let otherID = Bytes32(w0: 0xD0, w1: 0x0D, w2: 0, w3: 1)

        // 7. A block that holds another transaction; the inclusion path is genuine, for a tree with ours in it.
        let withoutUs = certifiedBlock(transactions: [otherID], receipts: [succeeded])
        XCTAssertNoThrow(
            try HeaderVerifier.verify(trusted: trusted, header: withoutUs.header, certificate: withoutUs.certificate))
        server.set(
            "v1/proof/tx",
            .content(
                TransactionProofPayload(
                    header: withoutUs.header, certificate: withoutUs.certificate, position: 0,
                    proof: MerkleTree.proof(leaves: leaves([incoming.id, otherID]), index: 0), receipt: succeeded,
                    receiptProof: MerkleTree.proof(leaves: [MerkleTree.leafHash(succeeded.encoded)], index: 0)
                ).encoded))
        let notIncluded = try runFirmware("inclusion proof for another root", synced: true)
        XCTAssertEqual(notIncluded.status, PayStatus.inclusionRefused, notIncluded.log)
        XCTAssertTrue(notIncluded.log.contains("pay: account balance 0, nonce 0 verified"), notIncluded.log)
        XCTAssertTrue(notIncluded.log.contains("receive: waiting for a transfer"), notIncluded.log)
        XCTAssertTrue(notIncluded.log.contains("header of block 1 verified (weight 3 of 4)"), notIncluded.log)
        XCTAssertTrue(notIncluded.log.contains("receive: inclusion proof refused"), notIncluded.log)
        statuses["inclusion, other root"] = notIncluded.status

        // 8. Our transaction is in the block, but its receipt there says failed; the gateway claims success with a
        // receipt path from a tree where it did succeed.
        let failedThere = certifiedBlock(transactions: [incoming.id], receipts: [failed])
        server.set(
            "v1/proof/tx",
            .content(
                TransactionProofPayload(
                    header: failedThere.header, certificate: failedThere.certificate, position: 0,
                    proof: MerkleTree.proof(leaves: leaves([incoming.id]), index: 0), receipt: succeeded,
                    receiptProof: MerkleTree.proof(leaves: [MerkleTree.leafHash(succeeded.encoded)], index: 0)
                ).encoded))
        let falseSuccess = try runFirmware("receipt proof for another root", synced: true)
        XCTAssertEqual(falseSuccess.status, PayStatus.receiptRefused, falseSuccess.log)
        XCTAssertTrue(falseSuccess.log.contains("receive: receipt proof refused"), falseSuccess.log)
        XCTAssertFalse(falseSuccess.log.contains("inclusion and receipt verified"), falseSuccess.log)
        statuses["receipt, other root"] = falseSuccess.status

        // Every refusal is non-zero, and the verification refusals are told apart.
        XCTAssertFalse(statuses.values.contains(0), "\(statuses)")
        let verification = [
            "outsiders", "no quorum", "genesis", "account, other root named", "account, foreign proof",
            "inclusion, other root", "receipt, other root",
        ]
        XCTAssertEqual(Set(verification.map { statuses[$0] }).count, verification.count, "\(statuses)")
    }

    /// The host's light client refuses `checkpoint` the way the firmware must.
    func expectRefusal(
        _ trusted: TrustedState, _ checkpoint: Checkpoint, _ name: String, _ matches: (LightClientError) -> Bool
    ) {
        switch CheckpointVerifier.verifyNextResult(trusted: trusted, checkpoint: checkpoint) {
        case .success: XCTFail("\(name): the host light client accepted the forgery")
        case .failure(let error): XCTAssertTrue(matches(error), "\(name): \(error)")
        }
    }

    func run(_ executable: String, _ arguments: [String], timeout: TimeInterval) throws -> Harness.Command {
        try Harness.run(executable, arguments, timeout: timeout)
    }
}

/// A stand-in gateway on a UDP socket of 127.0.0.1: answers `v1/headers` (h=0), `v1/checkpoints` (from=0) and
/// any path given an answer with ``set(_:_:)``, with whatever the test set last; 4.04 otherwise.
final class ForgedGateway: @unchecked Sendable {
    // @unchecked: `fd` is used only by the serving thread once started; the rest is guarded by `lock`.
    enum Answer {
        /// A piggybacked 2.05 with this body, in one datagram whatever its size.
        case content([UInt8])
        /// A 2.05 with this body, block-wise when the device asks for blocks smaller than it (RFC 7959).
        case blockwise([UInt8])
        /// These datagrams verbatim, in turn, instead of an answer.
        case raw([[UInt8]])
        /// A piggybacked 4.04.
        case notFound
    }

    private let fd: Int32
    let port: UInt16
    private let lock = NSLock()
    private var headers: Answer = .raw([])
    private var checkpoints: Answer = .raw([])
    /// The pool `v1/skip` names as the device's trusted one (the genesis validators: the device skips, so it asks
    /// there first; the forged checkpoint closes the trusted epoch, so the device checks it sequentially, as it
    /// would from `v1/checkpoints`).
    private let trustedPool: Committee
    /// Answers to other paths, whatever their query.
    private var others: [String: Answer] = [:]
    private var requests = 0
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    var requestCount: Int { lock.withLock { requests } }

    init(trustedPool: Committee) throws {
        self.trustedPool = trustedPool
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard s >= 0 else { throw Harness.StartFailure(description: "socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) }
        }
        guard bound == 0 else {
            close(s)
            throw Harness.StartFailure(description: "bind: \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) }
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        fd = s
        port = UInt16(bigEndian: addr.sin_port)
        Thread { [self] in serve() }.start()
    }

    func set(headers: [[UInt8]], checkpoints: [[UInt8]]) {
        set(headers: .content(headers[0]), checkpoints: .content(checkpoints[0]))
    }

    func set(headers: Answer, checkpoints: Answer = .raw([])) {
        lock.withLock {
            self.headers = headers
            self.checkpoints = checkpoints
        }
    }

    func set(_ path: String, _ answer: Answer) {
        lock.withLock { others[path] = answer }
    }

    /// The first checkpoint of a `v1/checkpoints` answer as a `v1/skip` answer (4.04 for an empty page); other
    /// answers (garbage, raw frames) are served as they are.
    private func skipAnswer(_ checkpoints: Answer) -> Answer {
        guard case .content(let body) = checkpoints, let page = try? CheckpointsPayload(decoding: body) else {
            return checkpoints
        }
        guard let first = page.checkpoints.first else { return .notFound }
        let none = CommitCertificate(
            height: first.header.height, round: 0, blockHash: first.header.hash, signatures: [])
        return .blockwise(SkipPayload(checkpoint: first, trustedPool: trustedPool, attestations: none).encoded)
    }

    func stop() {
        lock.withLock { stopping = true }
        finished.wait()
        close(fd)
    }

    private func serve() {
        defer { finished.signal() }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !lock.withLock({ stopping }) {
            var from = sockaddr_in()
            var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &fromLength)
                    }
                }
            }
            guard n > 0, let request = try? CoAPMessage.decode(Array(buffer[0..<n])) else { continue }
            let path = request.uriPath.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
            let query = request.uriQuery.map { String(decoding: $0, as: UTF8.self) }
            let answer: Answer? = lock.withLock {
                requests += 1
                switch path {
                case "v1/headers" where query.contains("h=0"): return headers
                case "v1/checkpoints" where query.contains("from=0"): return checkpoints
                case "v1/skip": return skipAnswer(checkpoints)
                default: return others[path]
                }
            }
            let datagrams: [[UInt8]]
            switch answer {
            case .content(let body)?:
                datagrams = [
                    request.acknowledgement(
                        code: .content, options: [CoAPOption(number: .contentFormat, uint: 42)], payload: body
                    ).encode()
                ]
            case .blockwise(let body)?:
                // A skip answer names a committee too: more than one SLIP frame of the board carries.
                var options = [CoAPOption(number: .contentFormat, uint: 42)]
                var payload = body
                if let asked = request.option(.block2).flatMap({ try? BlockOption(option: $0) }),
                    body.count > asked.size, let block = try? BlockOption.block2(asked.number, of: body, szx: asked.szx)
                {
                    options.append(block.option.option(.block2))
                    payload = block.bytes
                }
                datagrams = [request.acknowledgement(code: .content, options: options, payload: payload).encode()]
            case .raw(let list)?: datagrams = list
            case .notFound?, nil: datagrams = [request.acknowledgement(code: .notFound).encode()]
            }
            for datagram in datagrams {
                _ = datagram.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, bytes.baseAddress, bytes.count, 0, $0, fromLength)
                        }
                    }
                }
            }
        }
    }
}
