import AmarsCodec
import AmarsCrypto
import Chain
import DeviceClient
import DeviceCore
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import LightClient
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#endif

/// A device that has only the network, against a real gateway's CoAP server over one in-process chain (the
/// same device over MQTT, with a real mosquitto, is `DeviceMqttEndToEndTests` in IntegrationTests). The device
/// trusts the genesis file and nothing else; every check is the light client's.
final class DeviceEndToEndTests: XCTestCase {
    static let deviceKey = EndToEndDevice.key
    static var deviceAddress: Address { EndToEndDevice.address }

    private func fundedChain(height: UInt64) throws -> CoAPFixture { try EndToEndDevice.fundedChain(height: height) }

    private func client(_ port: UInt16, ackTimeoutMillis: UInt64 = 200) throws -> CoAPDeviceClient {
        try CoAPDeviceClient(
            configuration: .init(host: "127.0.0.1", port: port, ackTimeoutMillis: ackTimeoutMillis))
    }

    // MARK: CoAP device

    func testCoAPDeviceSyncsVerifiesItsBalanceAndProvesItsTransferFinal() throws {
        let f = try fundedChain(height: 23)  // checkpoints at 4, 8, …, 20: trust reaches epoch 5
        defer { f.close() }
        let coap = try client(f.port)

        // Provisioning from the genesis file gives the same genesis header the node built.
        let anchor = DeviceTrustAnchor(
            genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
            epochLength: f.genesis.epochLength)
        XCTAssertEqual(anchor.genesisHeaderHash, try XCTUnwrap(f.node.block(at: 0)).finalized.block.hash)

        var device = try DeviceSync.anchor(anchor, source: coap)
        XCTAssertEqual(device.trusted.epoch, 0)
        // Two checkpoints per request, so paging is exercised too.
        let progress = try device.sync(source: coap, pageSize: 2)
        XCTAssertEqual(progress, SyncProgress(fromEpoch: 0, toEpoch: 5, checkpoints: 5, signaturesChecked: 5))
        XCTAssertEqual(device.trusted.height, 20)
        XCTAssertEqual(device.trusted.committee, f.node.committee(epoch: 5))

        // The whole run in one answer is over one datagram: it arrives block-wise and reassembles exactly.
        let blocksBefore = coap.stats.blocks
        let all = try coap.checkpoints(from: 0, limit: 64)
        XCTAssertEqual(all, try f.node.checkpoints(from: 0, limit: 64))
        XCTAssertGreaterThan(CheckpointsPayload(all).encoded.count, 1024)
        XCTAssertGreaterThan(coap.stats.blocks - blocksBefore, 1)

        let head = try device.verifiedHead(source: coap)
        XCTAssertEqual(head.height, 23)
        XCTAssertEqual(head.basis, .certificate(signatures: 1, weight: 1, totalWeight: 1))

        let account = try device.verifiedAccount(Self.deviceAddress, source: coap)
        XCTAssertEqual(account.state, AccountState(balance: 5_000_000, nonce: 0))
        XCTAssertEqual(account.header.height, 23)

        // A transfer signed by the device wallet, submitted over CoAP, final in block 24: the checkpoint that
        // closes epoch 5, still signed by the trusted committee.
        var wallet = DeviceWallet(key: Self.deviceKey, nextNonce: account.state.nonce)
        let tx = try wallet.transfer(
            genesis: f.node.genesisBlockHash, to: CoAPFixture.address(f.bob), amount: 1_000_000,
            maxFeePerUnit: 100, tipPerUnit: 1)
        XCTAssertEqual(try coap.submit(tx), tx.id)
        try wallet.markAccepted(tx)
        XCTAssertThrowsError(try device.verifiedInclusion(tx.id, source: coap)) { error in
            XCTAssertEqual(error as? DeviceSyncError, .device(.notFinal(tx.id)))
        }
        try f.produceBlock()
        let inclusion = try device.verifiedInclusion(tx.id, source: coap)
        XCTAssertEqual(inclusion.header.height, 24)
        XCTAssertEqual(inclusion.position, 0)
        XCTAssertEqual(inclusion.receipt.status, .success)
        let receipt = try coap.receipt(tx.id)
        XCTAssertEqual(receipt.height, 24)
        XCTAssertEqual(receipt.receipt, inclusion.receipt)
        XCTAssertEqual(device.trusted.epoch, 5, "block 24 is verified with the committee of epoch 5")

        // Bob's side: the gateway lists the transfer in his inbox, and his device proves it (a fresh device,
        // anchored at genesis, following checkpoints only as far as block 24 needs).
        let bob = CoAPFixture.address(f.bob)
        let inbox = try coap.inbox(bob, from: 24)
        XCTAssertEqual(inbox.entries.map(\.transaction), [tx])
        XCTAssertEqual(inbox.entries.first?.height, 24)
        var bobDevice = try DeviceSync.anchor(anchor, source: coap)
        let received = try bobDevice.verifiedInclusion(tx.id, source: coap)
        XCTAssertEqual(received.receipt.status, .success)
        XCTAssertEqual(received.position, inbox.entries.first?.position)
        XCTAssertEqual(try coap.inbox(bob, from: 25).entries, [])

        // The next head is in epoch 6: verifying it moves trust across the checkpoint first.
        try f.produceBlock()
        let next = try device.verifiedHead(source: coap)
        XCTAssertEqual(next.height, 25)
        XCTAssertEqual(device.trusted.epoch, 6)
        let after = try device.verifiedAccount(Self.deviceAddress, source: coap)
        XCTAssertEqual(after.state.nonce, wallet.nextNonce)
        XCTAssertEqual(after.state.balance, 5_000_000 - 1_000_000 - inclusion.receipt.feePaid)

        // A lie about the balance against the same proof is refused.
        var lie = try coap.accountProof(Self.deviceAddress)
        lie.state.balance += 1
        XCTAssertThrowsError(
            try ProofVerifier.verifyAccount(
                lie.state, of: Self.deviceAddress, proof: lie.proof, stateRoot: lie.stateRoot))
    }

    // MARK: forged data

    func testCheckpointSignedByANonMemberIsRejectedAndTrustStaysPut() throws {
        let f = try fundedChain(height: 9)
        defer { f.close() }
        let genesis = HeaderPayload(try XCTUnwrap(f.node.block(at: 0)).finalized)
        let real = try XCTUnwrap(f.node.checkpoints(from: 0, limit: 1).first)
        // Same header and next committee, but the commit signature is an outsider's, filed under member 0.
        let intruder = CoAPFixture.key(666)
        let h = real.header
        let message = Vote.signingHash(
            chainID: h.chainID, genesis: f.node.genesisBlockHash, height: h.height, round: h.round, step: .commit,
            blockHash: h.hash, voter: intruder.xOnlyPublicKey.bytes)
        let forged = Checkpoint(
            header: h, nextCommittee: real.nextCommittee,
            certificate: CommitCertificate(
                height: h.height, round: h.round, blockHash: h.hash,
                signatures: [.init(memberIndex: 0, signature: intruder.signSchnorr(message, auxRandom: .zero))]))

        let double = try CoAPServerDouble(
            answers: ["v1/headers": genesis.encoded, "v1/checkpoints": CheckpointsPayload([forged]).encoded],
            dropFirst: 1)
        defer { double.stop() }
        let coap = try client(double.port, ackTimeoutMillis: 100)

        var device = try DeviceSync.anchor(
            DeviceTrustAnchor(
                genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
                epochLength: f.genesis.epochLength), source: coap)
        XCTAssertGreaterThanOrEqual(coap.stats.retransmissions, 1, "the double ignored the first request")
        let before = device.trusted
        XCTAssertThrowsError(try device.sync(source: coap)) { error in
            XCTAssertEqual(
                error as? DeviceSyncError,
                .device(.rejected(.certificate(.badSignature(index: 0)), stage: .checkpoint(epoch: 0))))
        }
        XCTAssertEqual(device.trusted, before)

        // The genuine checkpoint from the same double is accepted: the refusal was about the signature.
        let honest = try CoAPServerDouble(
            answers: ["v1/headers": genesis.encoded, "v1/checkpoints": CheckpointsPayload([real]).encoded])
        defer { honest.stop() }
        let progress = try device.sync(source: try client(honest.port), maxEpochs: 1)
        XCTAssertEqual(progress.toEpoch, 1)
    }

    func testGenesisHeaderThatDoesNotMatchTheAnchorIsRefused() throws {
        let f = try fundedChain(height: 1)
        defer { f.close() }
        var header = try XCTUnwrap(f.node.block(at: 0)).finalized.block.header
        header.timestamp += 1
        let certificate = CommitCertificate(height: 0, round: 0, blockHash: header.hash, signatures: [])
        let double = try CoAPServerDouble(
            answers: ["v1/headers": HeaderPayload(header: header, certificate: certificate).encoded])
        defer { double.stop() }
        let coap = try client(double.port)
        XCTAssertThrowsError(
            try DeviceSync.anchor(
                DeviceTrustAnchor(
                    genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
                    epochLength: f.genesis.epochLength), source: coap)
        ) { error in
            XCTAssertEqual(error as? DeviceSyncError, .device(.rejected(.untrustedAnchor, stage: .anchor)))
        }
    }

    /// A body over one block goes out as Block1 and libcoap hands the reassembled body to the handler (which
    /// refuses it as no transaction); over the gateway's cap it is refused with 4.13 before the handler.
    func testBlockwiseUploadReachesTheHandlerAndTheCapHolds() throws {
        let f = try fundedChain(height: 1)
        defer { f.close() }
        let coap = try client(f.port)
        let garbage = try coap.request(
            .post, DeviceResources.transaction, payload: [UInt8](repeating: 0xAB, count: 1500))
        XCTAssertEqual(garbage.code, .badRequest)
        XCTAssertEqual(String(decoding: garbage.body, as: UTF8.self), "malformed")
        XCTAssertEqual(coap.stats.blocks, 2)
        let huge = try coap.request(
            .post, DeviceResources.transaction, payload: [UInt8](repeating: 0xAB, count: Caps.transactionBytes + 1))
        XCTAssertEqual(huge.code, .requestEntityTooLarge)
    }

    func testUnreachableGatewayTimesOutAfterRetransmissions() throws {
        let double = try CoAPServerDouble(answers: [:], dropFirst: .max)
        defer { double.stop() }
        let coap = try CoAPDeviceClient(
            configuration: .init(host: "127.0.0.1", port: double.port, ackTimeoutMillis: 20, maxRetransmit: 2))
        XCTAssertThrowsError(try coap.head()) { error in
            guard case .timeout = error as? DeviceClientError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(coap.stats.retransmissions, 2)
        XCTAssertEqual(double.requestCount, 3)
    }
}

/// A stand-in gateway on a UDP socket: answers GETs by path with fixed chain payloads (piggybacked 2.05),
/// 4.04 otherwise, and can ignore its first requests to make the client retransmit.
final class CoAPServerDouble: @unchecked Sendable {
    // @unchecked: `socket` and `answers` are used only by the serving thread once started; `requests` and
    // `stopping` are guarded by `lock`.
    private let socket: CoAPTestSocket
    private let answers: [String: [UInt8]]
    private let dropFirst: Int
    private let lock = NSLock()
    private var requests = 0
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    var port: UInt16 { socket.localPort }
    var requestCount: Int { lock.withLock { requests } }

    init(answers: [String: [UInt8]], dropFirst: Int = 0) throws {
        socket = try CoAPTestSocket(timeoutMilliseconds: 20)
        self.answers = answers
        self.dropFirst = dropFirst
        Thread { [self] in serve() }.start()
    }

    func stop() {
        lock.withLock { stopping = true }
        finished.wait()
    }

    private func serve() {
        defer { finished.signal() }
        while !lock.withLock({ stopping }) {
            guard let (bytes, from) = socket.receive() else { continue }
            let n = lock.withLock {
                requests += 1
                return requests
            }
            guard n > dropFirst, let request = try? CoAPMessage.decode(bytes) else { continue }
            let path = request.uriPath.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
            let reply =
                answers[path].map {
                    request.acknowledgement(
                        code: .content, options: [CoAPOption(number: .contentFormat, uint: 42)], payload: $0)
                } ?? request.acknowledgement(code: .notFound)
            socket.send(reply.encode(), toPort: from)
        }
    }
}
