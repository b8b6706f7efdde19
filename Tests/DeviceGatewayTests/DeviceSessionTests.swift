import AmarsCodec
import AmarsCrypto
import Chain
import DeviceCore
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import LightClient
import XCTest

@testable import DeviceGateway

/// The portable device session driven in-process against a real chain's device handlers (LoopbackDeviceLink):
/// every flow and every refusal in milliseconds, no sockets. The UDP, MQTT and QEMU tests prove the real links.
final class DeviceSessionTests: XCTestCase {
    static let epochLength: UInt64 = 4
    static let deviceKey = CoAPFixture.key(9)
    static var device: Address { CoAPFixture.address(deviceKey) }

    /// A chain whose device account holds `funds` from block 1 (none when 0), advanced to `height`.
    func chain(height: UInt64, funds: UInt64 = 5_000_000) throws -> CoAPFixture {
        let f = try CoAPFixture(epochLength: Self.epochLength, start: false)
        if funds > 0 {
            _ = try f.node.submit(f.transfer(from: f.alice, nonce: 0, amount: funds, to: Self.device))
        }
        for _ in 0..<height { try f.produceBlock() }
        return f
    }

    // MARK: flows

    func testSyncPagesThroughCheckpointsThenVerifiesTheHeadAndABalance() throws {
        let f = try chain(height: 23)  // checkpoints close epochs 0...4 at heights 4, 8, ..., 20
        defer { f.close() }
        var (session, link) = try anchored(f, page: 2)
        XCTAssertEqual(session.trusted?.epoch, 0)
        var reports: [DeviceReport] = []
        let synced = try session.run(.sync(maxEpochs: .max), over: &link) { reports.append($0) }
        XCTAssertEqual(
            synced, .synced(SyncProgress(fromEpoch: 0, toEpoch: 5, checkpoints: 5, signaturesChecked: 5)))
        XCTAssertEqual(session.trusted?.height, 20)
        XCTAssertEqual(session.trusted?.committee, f.node.committee(epoch: 5))
        // Pages of two: 0-1, 2-3, 4, then an empty page ends the sync.
        XCTAssertEqual(
            link.requests.filter { $0.resource == .checkpoints }.map { $0.argument("from") },
            [Array("0".utf8), Array("2".utf8), Array("4".utf8), Array("5".utf8)])
        XCTAssertEqual(
            reports,
            (0..<5).map {
                .checkpointVerified(
                    epoch: UInt64($0), height: UInt64($0 + 1) * 4, signatures: 1, trusted: UInt64($0 + 1))
            })

        guard case .head(let head) = try session.run(.head, over: &link) else { return XCTFail() }
        XCTAssertEqual(head.height, 23)
        XCTAssertEqual(head.hash, try XCTUnwrap(f.node.block(at: 23)).finalized.block.hash)
        XCTAssertEqual(head.basis, .certificate(signatures: 1, weight: 1, totalWeight: 1))

        guard case .account(let account) = try session.run(.account(Self.device), over: &link) else { return XCTFail() }
        XCTAssertEqual(account.state, AccountState(balance: 5_000_000, nonce: 0))
        XCTAssertEqual(account.header.height, 23)
        XCTAssertTrue(session.isIdle)
    }

    func testAHeadInALaterEpochIsVerifiedAfterTheCheckpointsThatLeadToIt() throws {
        let f = try chain(height: 10)
        defer { f.close() }
        var (session, link) = try anchored(f)
        guard case .head(let head) = try session.run(.head, over: &link) else { return XCTFail() }
        XCTAssertEqual(head.height, 10)
        XCTAssertEqual(session.trusted?.epoch, 2, "the head of epoch 2 needed the checkpoints of epochs 0 and 1")
    }

    func testPaymentIsSignedFromTheProvenNonceSubmittedAndProvenFinal() throws {
        let f = try chain(height: 5)
        defer { f.close() }
        var (session, link) = try anchored(f, wallet: DeviceWallet(key: Self.deviceKey, nextNonce: 7))
        // The chain moves on while the device waits for its payment to be final.
        link.onSleep = { _ in _ = try? f.produceBlock() }
        let bob = CoAPFixture.address(f.bob)
        let bobBefore = f.node.account(bob).state.balance
        var reports: [DeviceReport] = []
        let order = PaymentOrder(recipient: bob, amount: 1_000_000, tipPerUnit: 2, finalityMillis: 5_000)
        guard case .paid(let paid) = try session.run(.pay(order), over: &link, onReport: { reports.append($0) }) else {
            return XCTFail()
        }
        XCTAssertEqual(paid.nonce, 0, "the nonce comes from the proven account, not the wallet's guess")
        XCTAssertEqual(session.wallet?.nextNonce, 1)
        XCTAssertEqual(paid.inclusion.receipt.status, .success)
        XCTAssertEqual(paid.inclusion.header.height, 6)
        XCTAssertGreaterThanOrEqual(paid.inclusion.polls, 1)
        guard case .included(let height, let position, let receipt) = try f.node.status(of: paid.id) else {
            return XCTFail("not on the node")
        }
        XCTAssertEqual(height, paid.inclusion.header.height)
        XCTAssertEqual(UInt64(position), paid.inclusion.position)
        XCTAssertEqual(receipt, paid.inclusion.receipt)
        XCTAssertEqual(f.node.account(bob).state.balance, bobBefore + 1_000_000)
        guard
            case .signed(let id, 0, let maxFee, let baseFee, 5)? = reports.first(where: {
                if case .signed = $0 { return true } else { return false }
            })
        else { return XCTFail("\(reports)") }
        XCTAssertEqual(id, paid.id)
        XCTAssertEqual(maxFee, baseFee * 2 + 2, "room for the base fee to double, plus the tip")
        XCTAssertTrue(reports.contains { if case .submitted(paid.id, _) = $0 { true } else { false } })
    }

    func testReceiveProvesTheTransferThatPaysTheDeviceAndTheCursorMovesPastIt() throws {
        let f = try chain(height: 2, funds: 0)
        defer { f.close() }
        var (session, link) = try anchored(f)
        let payment = f.transfer(from: f.alice, nonce: 0, amount: 250_000, to: Self.device)
        _ = try f.node.submit(payment)
        // Nothing yet: the device polls; the transfer becomes final while it waits.
        link.onSleep = { _ in _ = try? f.produceBlock() }
        let waiting = DeviceOperation.receive(Self.device, from: 3, position: 0, waitMillis: 2_000)
        guard case .received(let received) = try session.run(waiting, over: &link) else { return XCTFail() }
        XCTAssertEqual(received.transfer.id, payment.id)
        XCTAssertEqual(received.transfer.amount, 250_000)
        XCTAssertEqual(received.transfer.to, Self.device)
        XCTAssertEqual(received.inclusion.header.height, 3)
        XCTAssertEqual(received.inclusion.receipt.status, .success)
        // Past it, nothing more arrives within a wait that the virtual clock runs out at once.
        link.onSleep = nil
        let after = DeviceOperation.receive(
            Self.device, from: 3, position: received.inclusion.position + 1, waitMillis: 300)
        XCTAssertEqual(deviceError { _ = try session.run(after, over: &link) }, .nothingReceived)
        XCTAssertEqual(link.nowMillis, 400, "it asked at 0, 100, 200 and 300 ms, then gave up")
    }

    // MARK: a lying gateway

    func testAHeaderOfAnotherHeightForAProofIsRefused() throws {
        let f = try chain(height: 3)
        defer { f.close() }
        var (session, link) = try anchored(f)
        let other = HeaderPayload(try XCTUnwrap(f.node.block(at: 2)).finalized).encoded
        link.intercept = { $0.resource == .headers ? DeviceAnswer(code: .content, body: other) : nil }
        XCTAssertEqual(
            deviceError { _ = try session.run(.account(Self.device), over: &link) },
            .inconsistent(.headerHeight(asked: 3, got: 2)))
        XCTAssertTrue(session.isIdle)
    }

    func testAnAccountProofForAnotherRootOrAnotherBalanceIsRefused() throws {
        let f = try chain(height: 3)
        defer { f.close() }
        var (session, link) = try anchored(f)
        let genuine = f.node.account(Self.device)
        // Another state root named than the block's (the genesis state root, block 3's proof).
        var otherRoot = AccountProofPayload(
            height: genuine.height, stateRoot: f.genesis.header.stateRoot, state: genuine.state, proof: genuine.proof)
        link.intercept = { $0.resource == .accountProof ? DeviceAnswer(code: .content, body: otherRoot.encoded) : nil }
        XCTAssertEqual(
            deviceError { _ = try session.run(.account(Self.device), over: &link) },
            .inconsistent(.stateRootMismatch(.accountProof, height: 3)))
        // The right root, a richer balance than the proof shows.
        otherRoot = AccountProofPayload(
            height: genuine.height, stateRoot: genuine.stateRoot,
            state: AccountState(balance: genuine.state.balance + 1, nonce: 0), proof: genuine.proof)
        XCTAssertEqual(
            deviceError { _ = try session.run(.account(Self.device), over: &link) },
            .rejected(.stateProofMismatch, stage: .accountProof))
    }

    func testATamperedCheckpointIsRefusedAndTrustStaysWhereItWas() throws {
        let f = try chain(height: 9)
        defer { f.close() }
        var (session, link) = try anchored(f, page: 1)
        var page = try f.node.checkpoints(from: 1, limit: 1)
        page[0].certificate.signatures[0].signature.second.w3 ^= 1
        let forged = CheckpointsPayload(page).encoded
        link.intercept = { request in
            request.resource == .checkpoints && request.argument("from") == Array("1".utf8)
                ? DeviceAnswer(code: .content, body: forged) : nil
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &link) },
            .rejected(.certificate(.badSignature(index: 0)), stage: .checkpoint(epoch: 1)))
        XCTAssertEqual(session.trusted?.epoch, 1, "the genuine checkpoint of epoch 0 stays trusted")
    }

    func testAHeadPastTheCheckpointsTheGatewayHasIsRefused() throws {
        let f = try chain(height: 10)
        defer { f.close() }
        var (session, link) = try anchored(f)
        link.intercept = {
            $0.resource == .checkpoints ? DeviceAnswer(code: .content, body: CheckpointsPayload([]).encoded) : nil
        }
        XCTAssertEqual(deviceError { _ = try session.run(.head, over: &link) }, .noCheckpointTo(height: 10))
        XCTAssertEqual(session.trusted?.epoch, 0)
    }

    /// Pointed at a gateway of another chain (the same chain id, keys and committee, another genesis), a device
    /// with nothing newer to learn says so instead of "up to date", and trusts nothing of it.
    func testAGatewayOfAnotherChainIsNamedAsSuch() throws {
        let f = try chain(height: 9)
        defer { f.close() }
        var (session, link) = try anchored(f)
        _ = try session.run(.sync(maxEpochs: .max), over: &link)
        XCTAssertEqual(session.trusted?.epoch, 2)
        let before = session.trusted
        let other = try CoAPFixture(epochLength: 5, start: false)
        defer { other.close() }
        for _ in 0..<3 { try other.produceBlock() }
        XCTAssertNotEqual(other.genesis.header.hash, f.genesis.header.hash)
        var foreign = LoopbackDeviceLink(handlers: other.server.handlers)
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &foreign) },
            .otherChain(genesisHeaderHash: other.genesis.header.hash))
        XCTAssertEqual(session.trusted, before)
        // Its own gateway with nothing newer: one genesis header asked, and the sync ends as up to date.
        let asked = link.requests.count
        XCTAssertEqual(
            try session.run(.sync(maxEpochs: .max), over: &link),
            .synced(SyncProgress(fromEpoch: 2, toEpoch: 2)))
        XCTAssertEqual(link.requests.dropFirst(asked).map(\.resource), [.checkpoints, .headers])
    }

    func testSubmitAnswersAreCheckedAndRefusalsNamed() throws {
        let f = try chain(height: 2)
        defer { f.close() }
        var (session, link) = try anchored(f)
        let tx = OutgoingTransaction(f.transfer(from: f.alice, nonce: 1))
        link.intercept = { $0.resource == .transaction ? DeviceAnswer(code: .created, body: Bytes32.zero.bytes) : nil }
        XCTAssertEqual(deviceError { _ = try session.run(.submit(tx), over: &link) }, .inconsistent(.submittedID))
        link.intercept = nil
        let stale = OutgoingTransaction(f.transfer(from: f.alice, nonce: 0))
        XCTAssertEqual(
            deviceError { _ = try session.run(.submit(stale), over: &link) },
            .transactionRefused(code: ShortText(Array("nonceReplayed".utf8))))
        XCTAssertEqual(try session.run(.submit(tx), over: &link), .submitted(tx.id))
    }

    /// A gateway's refusal of a payment is checked with the chain before the device believes it: the sender's
    /// account is proven again. A false refusal of a transfer the chain included ends paid; a refusal whose nonce
    /// the chain has not used is reported, and the next payment signs that nonce again (so a retry cannot pay
    /// twice); a nonce used by another transaction is reported as refused.
    func testARefusedPaymentIsCheckedWithTheChainBeforeItIsBelieved() throws {
        let f = try chain(height: 2)
        defer { f.close() }
        var (session, link) = try anchored(f, wallet: DeviceWallet(key: Self.deviceKey, nextNonce: 0))
        let bob = CoAPFixture.address(f.bob)
        let order = PaymentOrder(recipient: bob, amount: 1_000, tipPerUnit: 1, finalityMillis: 2_000)
        let refusal = DeviceAnswer(code: .badRequest, body: Array("nonceGap".utf8))
        let bobBefore = f.node.account(bob).state.balance

        // The gateway takes the transfer, the chain includes it, and the gateway answers "refused".
        link.intercept = { request in
            guard request.resource == .transaction else { return nil }
            _ = f.server.handlers.handle(.transaction, query: [], body: request.payload)
            _ = try? f.produceBlock()
            return refusal
        }
        guard case .paid(let paid) = try session.run(.pay(order), over: &link) else { return XCTFail() }
        XCTAssertEqual(paid.nonce, 0)
        XCTAssertEqual(session.wallet?.nextNonce, 1)
        guard case .included = try f.node.status(of: paid.id) else { return XCTFail("not on the chain") }
        XCTAssertEqual(link.requests.filter { $0.resource == .accountProof }.count, 2, "the account proven again")

        // Refused, and nothing reached the chain: reported, and the nonce is signed again next time.
        link.intercept = { $0.resource == .transaction ? refusal : nil }
        XCTAssertEqual(
            deviceError { _ = try session.run(.pay(order), over: &link) },
            .transactionRefused(code: ShortText(Array("nonceGap".utf8))))
        XCTAssertEqual(session.wallet?.nextNonce, 1, "nonce 1 still unused on the chain")
        link.intercept = nil
        guard
            case .paid(let second) = try { () throws -> DeviceOutcome in
                link.onSleep = { _ in _ = try? f.produceBlock() }
                return try session.run(.pay(order), over: &link)
            }()
        else { return XCTFail() }
        XCTAssertEqual(second.nonce, 1)

        // Nonce 2 taken on the chain by another transfer of the device's key: the refusal stands.
        link.onSleep = nil
        link.intercept = { request in
            guard request.resource == .transaction else { return nil }
            _ = try? f.node.submit(f.transfer(from: Self.deviceKey, nonce: 2, amount: 7))
            _ = try? f.produceBlock()
            return DeviceAnswer(code: .badRequest, body: Array("nonceReplayed".utf8))
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.pay(order), over: &link) },
            .transactionRefused(code: ShortText(Array("nonceReplayed".utf8))))
        XCTAssertEqual(session.wallet?.nextNonce, 3, "the wallet follows the proven nonce")
        // Two payments and the other transfer, each once: no refusal made the device pay twice.
        XCTAssertEqual(f.node.account(bob).state.balance, bobBefore + 1_000 + 1_000 + 7)
    }

    func testAProofThatNeverComesEndsAfterTheWait() throws {
        let f = try chain(height: 2)
        defer { f.close() }
        var (session, link) = try anchored(f)
        let unknown = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        XCTAssertEqual(
            deviceError { _ = try session.run(.inclusion(unknown, waitMillis: 1_000), over: &link) },
            .notFinal(unknown))
        XCTAssertEqual(link.requests.filter { $0.resource == .txProof }.count, 11, "at 0, 100, ..., 1000 ms")
    }

    func testAnInboxThatListsBeforeTheCursorOrAnotherPayeeIsRefused() throws {
        let f = try chain(height: 3, funds: 0)
        defer { f.close() }
        var (session, link) = try anchored(f)
        let toBob = f.transfer(from: f.alice, nonce: 0)
        let listing = InboxPayload(entries: [.init(height: 5, position: 0, transaction: toBob)]).encoded
        link.intercept = { $0.resource == .inbox ? DeviceAnswer(code: .content, body: listing) : nil }
        XCTAssertEqual(
            deviceError {
                _ = try session.run(.receive(Self.device, from: 1, position: 0, waitMillis: 0), over: &link)
            },
            .inconsistent(.inboxEntry), "a transfer to bob listed as the device's")
        let early = InboxPayload(
            entries: [.init(height: 1, position: 0, transaction: f.transfer(from: f.alice, nonce: 0, to: Self.device))])
        link.intercept = { $0.resource == .inbox ? DeviceAnswer(code: .content, body: early.encoded) : nil }
        XCTAssertEqual(
            deviceError {
                _ = try session.run(.receive(Self.device, from: 2, position: 0, waitMillis: 0), over: &link)
            },
            .inconsistent(.inboxEntry), "listed before the cursor")
    }

    func testGarbageAndErrorCodesAreNamedByTheirResource() throws {
        let f = try chain(height: 2)
        defer { f.close() }
        var (session, link) = try anchored(f)
        link.intercept = { $0.resource == .head ? DeviceAnswer(code: .content, body: [0xFF, 0x01]) : nil }
        guard case .undecodable(.head, _)? = deviceError({ _ = try session.run(.head, over: &link) }) else {
            return XCTFail()
        }
        link.intercept = {
            $0.resource == .accountProof ? DeviceAnswer(code: .serviceUnavailable, body: Array("busy".utf8)) : nil
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.account(Self.device), over: &link) },
            .gateway(.accountProof, code: .serviceUnavailable, diagnostic: ShortText(Array("busy".utf8))))
    }

    // MARK: misuse and lost links

    func testOperationsNeedAnAnchorAWalletAndFunds() throws {
        let f = try chain(height: 2, funds: 0)
        defer { f.close() }
        var fresh = DeviceSession(anchor: anchor(f))
        var link = LoopbackDeviceLink(handlers: f.server.handlers)
        XCTAssertEqual(deviceError { _ = try fresh.run(.head, over: &link) }, .notAnchored)
        XCTAssertTrue(link.requests.isEmpty)
        var (session, link2) = try anchored(f)
        let order = PaymentOrder(recipient: CoAPFixture.address(f.bob), amount: 5)
        XCTAssertEqual(deviceError { _ = try session.run(.pay(order), over: &link2) }, .noWallet)
        session.setWallet(DeviceWallet(key: Self.deviceKey, nextNonce: 0))
        XCTAssertEqual(
            deviceError { _ = try session.run(.pay(order), over: &link2) }, .insufficientFunds(balance: 0, amount: 5))
        // One operation at a time.
        XCTAssertEqual(session.start(.head, now: 0), .send(.head))
        XCTAssertEqual(session.start(.head, now: 0), .failed(.busy))
    }

    /// A link that fails after `answers` exchanges, like a radio that drops mid-sync.
    struct FlakyLink: DeviceLink {
        struct Lost: Error, Equatable {}
        var inner: LoopbackDeviceLink
        var answers: Int

        mutating func exchange(_ request: DeviceRequest) throws(Lost) -> DeviceAnswer {
            guard answers > 0 else { throw Lost() }
            answers -= 1
            return inner.exchange(request)
        }

        mutating func sleep(millis: UInt32) { inner.sleep(millis: millis) }
        var nowMillis: UInt64 { inner.nowMillis }
    }

    func testALostLinkKeepsTheCheckpointsVerifiedBeforeIt() throws {
        let f = try chain(height: 17)
        defer { f.close() }
        var (session, link) = try anchored(f, page: 1)
        var flaky = FlakyLink(inner: link, answers: 2)
        XCTAssertThrowsError(try session.run(.sync(maxEpochs: .max), over: &flaky)) { error in
            XCTAssertEqual(error as? DeviceRunError<FlakyLink.Lost>, .link(FlakyLink.Lost()))
        }
        XCTAssertEqual(session.trusted?.epoch, 2)
        XCTAssertTrue(session.isIdle, "the lost operation is dropped, the session is ready for the next")
        guard case .synced(let progress) = try session.run(.sync(maxEpochs: .max), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(progress, SyncProgress(fromEpoch: 2, toEpoch: 4, checkpoints: 2, signaturesChecked: 2))
    }

    // MARK: skipping and the trusting period

    static let day: UInt64 = 86_400_000

    /// A session anchored with a trusting period, over a link whose real-time clock reads just after the head.
    func skipping(_ f: CoAPFixture, period: UInt64 = day) throws -> (DeviceSession, LoopbackDeviceLink) {
        var trustAnchor = anchor(f)
        trustAnchor.trustingPeriodMillis = period
        var session = DeviceSession(anchor: trustAnchor, configuration: .init(pollMillis: 100))
        var link = LoopbackDeviceLink(handlers: f.server.handlers)
        link.wallClockMillis = f.node.head.timestamp + 1000
        XCTAssertEqual(try session.run(.anchor, over: &link), .anchored)
        return (session, link)
    }

    func testAFullSyncSkipsToTheNewestCheckpointInOneStep() throws {
        let f = try chain(height: 41)  // epochs 0...9 closed
        defer { f.close() }
        var (session, link) = try skipping(f)
        var reports: [DeviceReport] = []
        let synced = try session.run(.sync(maxEpochs: .max), over: &link) { reports.append($0) }
        XCTAssertEqual(
            synced, .synced(SyncProgress(fromEpoch: 0, toEpoch: 10, checkpoints: 1, signaturesChecked: 1, skips: 1)))
        XCTAssertEqual(reports, [.skipped(from: 0, to: 10, height: 40, signatures: 1)])
        XCTAssertEqual(link.requests.filter { $0.resource != .headers }.map(\.resource), [.skip])
        XCTAssertEqual(link.requests.first { $0.resource == .skip }?.argument("from"), Array("0".utf8))
        // The same state a checkpoint-by-checkpoint sync reaches, and dated by the checkpoint it trusts.
        var (sequential, plain) = try anchored(f)
        _ = try sequential.run(.sync(maxEpochs: .max), over: &plain)
        XCTAssertEqual(session.trusted, sequential.trusted)
        XCTAssertEqual(session.trusted?.timestamp, try f.node.block(at: 40)?.finalized.block.header.timestamp)
        // Nothing newer: one question, no move.
        XCTAssertEqual(
            try session.run(.sync(maxEpochs: .max), over: &link),
            .synced(SyncProgress(fromEpoch: 10, toEpoch: 10)))
        // Head and balance verify against the committee the skip trusted.
        guard case .head(let head) = try session.run(.head, over: &link) else { return XCTFail() }
        XCTAssertEqual(head.height, 41)
    }

    /// `v1/skip` names the pool it counts against by the device's trusted epoch, and serves that pool's
    /// attestations of the checkpoint asked for.
    func testTheSkipResourceServesTheTrustedPoolsAttestations() throws {
        let f = try chain(height: 21)  // epochs 0...4 closed
        defer { f.close() }
        let handlers = f.server.handlers
        func ask(_ query: String) -> DeviceResponse { handlers.handle(.skip, query: Array(query.utf8), body: []) }
        XCTAssertEqual(ask("to=2").code, .badRequest, "the trusted epoch is required")
        XCTAssertEqual(ask("from=x").code, .badRequest)
        XCTAssertEqual(ask("from=0&to=9").code, .notFound, "not closed yet")
        XCTAssertEqual(ask("from=99").code, .notFound, "no pool of that epoch")
        let answer = ask("from=1&to=2")
        XCTAssertEqual(answer.code, .content)
        let payload = try SkipPayload(decoding: answer.payload)
        XCTAssertEqual(payload.checkpoint.header.height, 12)
        XCTAssertEqual(payload.trustedPool, f.node.poolRoster(epoch: 1))
        XCTAssertEqual(payload.attestations.signatures.map(\.memberIndex), [0])
        XCTAssertEqual(payload.attestations.blockHash, payload.checkpoint.header.hash)
        XCTAssertTrue(payload.checkpoint.certificate.signatures.isEmpty, "a far checkpoint counts by attestations")
        let adjacent = try SkipPayload(decoding: ask("from=2&to=2").payload)
        XCTAssertEqual(adjacent.checkpoint.certificate.signatures.count, 1, "the adjacent one by its certificate")
        // Without `to`: the newest checkpoint the pool attested.
        XCTAssertEqual(try SkipPayload(decoding: ask("from=0").payload).checkpoint.header.epoch, 4)
    }

    func testACheckpointShortOfAThirdMakesTheDeviceBisect() throws {
        let f = try chain(height: 33)  // epochs 0...7 closed
        defer { f.close() }
        var (session, link) = try skipping(f)
        // The first answer carries no attestation: none of the trusted pool's weight, so the device checks no
        // signature and tries the checkpoint halfway instead, then the newest again.
        var lied = false
        link.intercept = { request in
            guard request.resource == .skip, !lied else { return nil }
            lied = true
            let honest = f.server.handlers.handle(.skip, query: request.joinedQuery, body: [])
            guard var payload = try? SkipPayload(decoding: honest.payload) else { return nil }
            payload.attestations.signatures = []
            return DeviceAnswer(code: .content, body: payload.encoded)
        }
        guard case .synced(let progress) = try session.run(.sync(maxEpochs: .max), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(progress.toEpoch, 8)
        XCTAssertEqual(progress.skips, 2)
        XCTAssertEqual(
            link.requests.filter { $0.resource == .skip }.map { $0.argument("to") },
            [nil, Array("3".utf8), Array("7".utf8)])
    }

    func testForgedSkipOffersAreRefusedAndTrustStays() throws {
        let f = try chain(height: 25)
        defer { f.close() }
        func offer(_ change: @escaping (inout SkipPayload) -> Void) -> (DeviceRequest) -> DeviceAnswer? {
            { request in
                guard request.resource == .skip else { return nil }
                let honest = f.server.handlers.handle(.skip, query: request.joinedQuery, body: [])
                guard var payload = try? SkipPayload(decoding: honest.payload) else { return nil }
                change(&payload)
                return DeviceAnswer(code: .content, body: payload.encoded)
            }
        }
        let cases: [(String, (inout SkipPayload) -> Void, DeviceError)] = [
            (
                "tampered attestation",
                { $0.attestations.signatures[0].signature.second.w3 ^= 1 },
                .rejected(.certificate(.badSignature(index: 0)), stage: .checkpoint(epoch: 0))
            ),
            (
                "attestations of another block",
                { $0.attestations.blockHash.w0 ^= 1 },
                .rejected(.certificateMismatch, stage: .checkpoint(epoch: 0))
            ),
            (
                "a pool other than the trusted one",
                { $0.trustedPool = try! Committee(epoch: 1, members: $0.trustedPool.members) },
                .inconsistent(.skipOffer)
            ),
            (
                "a next committee the header does not name",
                {
                    $0.checkpoint.nextCommittee = try! Committee(
                        epoch: $0.checkpoint.nextCommittee.epoch,
                        members: [Committee.Member(key: CoAPFixture.key(78).xOnlyPublicKey.bytes, weight: 1)])
                },
                .undecodable(.skip, .invalidValue(.range))  // a checkpoint's parts must agree to decode at all
            ),
        ]
        for (name, change, expected) in cases {
            var (session, link) = try skipping(f)
            let before = session.trusted
            link.intercept = offer(change)
            XCTAssertEqual(deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &link) }, expected, name)
            XCTAssertEqual(session.trusted, before, name)
        }
    }

    func testATrustedStateOlderThanTheTrustingPeriodRefusesToSync() throws {
        let f = try chain(height: 9)
        defer { f.close() }
        var (session, link) = try skipping(f, period: 60_000)
        let genesisTime = f.genesis.timestamp
        link.wallClockMillis = genesisTime + 60_000
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &link) },
            .trustExpired(ageMillis: 60_000, trustingPeriodMillis: 60_000))
        XCTAssertEqual(session.trusted?.epoch, 0)
        // Every operation that relies on the committee is refused the same way: a head or a balance checked
        // against it could move trust past it (the checkpoints to a later header) with nothing to vouch for them.
        for operation in [DeviceOperation.head, .account(Self.device), .escrow(.zero)] {
            XCTAssertEqual(
                deviceError { _ = try session.run(operation, over: &link) },
                .trustExpired(ageMillis: 60_000, trustingPeriodMillis: 60_000), "\(operation)")
        }
        // A sequential sync too: the age is the trusted committee's, whatever the method.
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: 1), over: &link) },
            .trustExpired(ageMillis: 60_000, trustingPeriodMillis: 60_000))
        link.wallClockMillis = genesisTime + 59_999
        guard case .synced(let progress) = try session.run(.sync(maxEpochs: .max), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(progress.toEpoch, 2)
    }

    func testAStateSavedWithoutATimestampIsDatedFromItsCheckpointFirst() throws {
        let f = try chain(height: 13)
        defer { f.close() }
        var (session, link) = try skipping(f)
        _ = try session.run(.sync(maxEpochs: 1), over: &link)
        var old = try XCTUnwrap(session.trusted)
        let dated = old.timestamp
        old.timestamp = nil
        // Saved by an older firmware: version 1, no timestamp; it reads back as such, never as time 0.
        XCTAssertEqual(old.encoded.first, 1)
        XCTAssertNil(try TrustedState(decoding: old.encoded).timestamp)
        session.resume(trusted: old)
        link.intercept = nil
        XCTAssertNotNil(try session.run(.sync(maxEpochs: .max), over: &link))
        XCTAssertEqual(link.requests.suffix(2).first?.resource, .headers)
        // Any operation dates it first: a head asks for the trusted header, then for the head.
        session.resume(trusted: old)
        let before = link.requests.count
        guard case .head = try session.run(.head, over: &link) else { return XCTFail() }
        XCTAssertEqual(link.requests[before].resource, .headers)
        XCTAssertNotNil(session.trusted?.timestamp)
        XCTAssertEqual(session.trusted?.epoch, 3)
        XCTAssertNotNil(dated)
        // A gateway that serves another header at that height cannot date it.
        session.resume(trusted: old)
        link.intercept = { request in
            guard request.resource == .headers else { return nil }
            return DeviceAnswer(
                code: .content, body: f.server.handlers.handle(.headers, query: Array("h=5".utf8), body: []).payload)
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &link) },
            .inconsistent(.headerHeight(asked: 4, got: 5)))
        link.intercept = { request in
            guard request.resource == .headers else { return nil }
            var payload = try! HeaderPayload(
                decoding: f.server.handlers.handle(.headers, query: request.joinedQuery, body: []).payload)
            payload.header.timestamp += 1
            return DeviceAnswer(code: .content, body: payload.encoded)
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &link) }, .inconsistent(.trustedHeader))
        XCTAssertEqual(session.trusted, old)
    }

    func testAnExpiredDeviceIsBroughtBackOnlyByItsOperatorsSignedCheckpoint() throws {
        let f = try chain(height: 29)  // epochs 0...6 closed
        defer { f.close() }
        let operatorKey = CoAPFixture.key(60)
        var (session, link) = try skipping(f, period: 20_000)
        var trustAnchor = session.anchor
        trustAnchor.reanchorKey = operatorKey.xOnlyPublicKey.bytes
        session = DeviceSession(anchor: trustAnchor, trusted: session.trusted, configuration: session.configuration)
        let checkpoint = try XCTUnwrap(f.node.checkpoints(from: 5, limit: 1).first)  // closes epoch 5, names 6
        func statement(_ key: PrivateKey, _ header: BlockHeader = checkpoint.header) -> ReanchorPayload {
            ReanchorPayload(
                header: header, committee: checkpoint.nextCommittee,
                signature: key.signSchnorr(
                    ReanchorPayload.signingHash(header: header, genesis: f.node.genesisBlockHash), auxRandom: .zero))
        }
        // Asleep past the trusting period: it refuses to follow the chain.
        let now = checkpoint.header.timestamp + 1000
        link.wallClockMillis = now
        XCTAssertEqual(
            deviceError { _ = try session.run(.sync(maxEpochs: .max), over: &link) },
            .trustExpired(ageMillis: now - f.genesis.timestamp, trustingPeriodMillis: 20_000))
        let expired = session.trusted
        // Forged: another key, or the right key over another header; then a stale or non-checkpoint header.
        let refusals: [(ReanchorPayload, UInt64, DeviceError.ReanchorRefusal)] = [
            (statement(CoAPFixture.key(61)), now, .badSignature),
            (
                ReanchorPayload(
                    header: checkpoint.header, committee: checkpoint.nextCommittee,
                    signature: statement(operatorKey, try XCTUnwrap(f.node.block(at: 23)).finalized.block.header)
                        .signature), now, .badSignature
            ),
            (
                // The operator's statement for the same header on another network it runs.
                ReanchorPayload(
                    header: checkpoint.header, committee: checkpoint.nextCommittee,
                    signature: operatorKey.signSchnorr(
                        ReanchorPayload.signingHash(header: checkpoint.header, genesis: .zero), auxRandom: .zero)),
                now, .badSignature
            ),
            (statement(operatorKey), checkpoint.header.timestamp + 20_000, .stale(ageMillis: 20_000)),
            (statement(operatorKey), checkpoint.header.timestamp - 20_000, .future(aheadMillis: 20_000)),
            (
                statement(operatorKey, try XCTUnwrap(f.node.block(at: 23)).finalized.block.header), now,
                .checkpoint(.notACheckpoint)
            ),
        ]
        for (forged, clock, why) in refusals {
            XCTAssertThrowsError(try session.reanchor(forged, wallClock: clock)) {
                XCTAssertEqual($0 as? DeviceError, .reanchorRefused(why))
            }
            XCTAssertEqual(session.trusted, expired)
        }
        // The operator's statement: trust moves to epoch 6 and the device follows the chain again.
        try session.reanchor(statement(operatorKey), wallClock: now)
        XCTAssertEqual(session.trusted?.epoch, 6)
        XCTAssertEqual(session.trusted?.sequence, 6)
        guard case .synced(let progress) = try session.run(.sync(maxEpochs: .max), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(progress.toEpoch, 7)
        // Not back in time, and not without a provisioned key.
        let older = try XCTUnwrap(f.node.checkpoints(from: 2, limit: 1).first)
        XCTAssertThrowsError(
            try session.reanchor(
                ReanchorPayload(
                    header: older.header, committee: older.nextCommittee,
                    signature: operatorKey.signSchnorr(
                        ReanchorPayload.signingHash(header: older.header, genesis: f.node.genesisBlockHash),
                        auxRandom: .zero)), wallClock: now)
        ) { XCTAssertEqual($0 as? DeviceError, .reanchorRefused(.behindTrust(trusted: 7, offered: 3))) }
        // Served by the gateway (v1/reanchor): an expired device with the operator's key fetches it by itself.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("reanchor-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(statement(operatorKey).encoded).write(to: file)
        var served = LoopbackDeviceLink(
            handlers: DeviceResourceHandlers(node: f.node, reanchorFile: file.path))
        served.wallClockMillis = now
        var asleep = DeviceSession(anchor: trustAnchor, trusted: expired, configuration: session.configuration)
        var reports: [DeviceReport] = []
        guard
            case .synced(let fetched) = try asleep.run(
                .sync(maxEpochs: .max), over: &served, onReport: { reports.append($0) })
        else { return XCTFail() }
        XCTAssertEqual(reports.first, .reanchored(epoch: 6, height: checkpoint.header.height))
        XCTAssertEqual(fetched.toEpoch, 7)
        // A forged one served there is refused like one given by hand, and trust stays expired.
        try Data(statement(CoAPFixture.key(61)).encoded).write(to: file)
        asleep = DeviceSession(anchor: trustAnchor, trusted: expired, configuration: session.configuration)
        XCTAssertEqual(
            deviceError { _ = try asleep.run(.sync(maxEpochs: .max), over: &served) }, .reanchorRefused(.badSignature))
        XCTAssertEqual(asleep.trusted, expired)
        var keyless = DeviceSession(anchor: anchor(f))
        XCTAssertThrowsError(try keyless.reanchor(statement(operatorKey), wallClock: now)) {
            XCTAssertEqual($0 as? DeviceError, .reanchorRefused(.noOperatorKey))
        }
    }
}
