import AmarsCodec
import AmarsCrypto
import DeviceClient
import DeviceCore
import DeviceProtocol
import GatewayTestSupport
import Ledger
import LightClient
import PaymentCodes
import XCTest

@testable import DeviceGateway

/// Payment-code receiving in the device session against a real chain node and its device resources: filters
/// and notification records proven against verified headers, and every forgery a gateway could try refused.
final class PaymentCodeSessionTests: XCTestCase {
    static let epochLength: UInt64 = 4
    let paid = CoAPFixture.address(CoAPFixture.key(21))
    let stranger = CoAPFixture.address(CoAPFixture.key(22))

    func signed(_ f: CoAPFixture, nonce: UInt64, _ payload: TransactionPayload) -> SignedTransaction {
        SignedTransaction(
            body: TransactionBody(
                genesis: f.node.genesisBlockHash, sender: f.alice.xOnlyPublicKey.bytes, nonce: nonce,
                maxFeePerUnit: 100,
                tipPerUnit: 1, payload: payload), signer: f.alice)
    }

    func testAnEpochsFilterIsProvenAndAFilterWithAPaymentLeftOutIsRefused() throws {
        let f = try CoAPFixture(epochLength: Self.epochLength, start: false)
        defer { f.close() }
        _ = try f.node.submit(f.transfer(from: f.alice, nonce: 0, amount: 7_000, to: paid))
        for _ in 0..<5 { try f.produceBlock() }
        var (session, link) = try anchored(f)
        let watch = [stranger, paid]
        guard case .filtered(let match) = try session.run(.recipientFilter(epoch: 0, watching: watch), over: &link)
        else { return XCTFail() }
        XCTAssertEqual(match.matched, [false, true])
        XCTAssertEqual(match.epoch, 0)
        // Epoch 1 has not finished: the gateway says so.
        guard
            case .gateway(.recipientFilter, .notFound, _)? = deviceError({
                _ = try session.run(.recipientFilter(epoch: 1, watching: watch), over: &link)
            })
        else { return XCTFail("an unfinished epoch has no filter") }

        let genuine = try XCTUnwrap(try f.node.recipientFilter(epoch: 0))
        func answer(_ payload: RecipientFilterPayload) {
            link.intercept = {
                $0.resource == .recipientFilter ? DeviceAnswer(code: .content, body: payload.encoded) : nil
            }
        }
        var forged = RecipientFilterPayload(
            epoch: 0, height: genuine.height, stateRoot: genuine.stateRoot, committed: genuine.committed,
            proof: genuine.proof,
            filter: RecipientFilter.build(
                [stranger], key: RecipientFilter.key(genesis: f.node.genesisBlockHash, epoch: 0)))
        answer(forged)
        XCTAssertEqual(
            deviceError { _ = try session.run(.recipientFilter(epoch: 0, watching: watch), over: &link) },
            .filter(.notCommitted), "the payment to the device left out")
        forged.committed = RecipientFilter.hash(forged.filter)
        answer(forged)
        XCTAssertEqual(
            deviceError { _ = try session.run(.recipientFilter(epoch: 0, watching: watch), over: &link) },
            .rejected(.stateProofMismatch, stage: .filterProof), "a hash the state does not hold")
        forged = RecipientFilterPayload(
            epoch: 0, height: genuine.height, stateRoot: genuine.stateRoot, committed: genuine.committed,
            proof: genuine.proof, filter: genuine.filter + [0])
        answer(forged)
        XCTAssertEqual(
            deviceError { _ = try session.run(.recipientFilter(epoch: 0, watching: watch), over: &link) },
            .filter(.trailingBits))
        var wrongEpoch = forged
        wrongEpoch.epoch = 3
        answer(wrongEpoch)
        XCTAssertEqual(
            deviceError { _ = try session.run(.recipientFilter(epoch: 0, watching: watch), over: &link) },
            .inconsistent(.filterEpoch))
        XCTAssertTrue(session.isIdle)
    }

    func testNotificationRecordsAreProvenFromTheStateAndForgeriesRefused() throws {
        let f = try CoAPFixture(epochLength: Self.epochLength, start: false)
        defer { f.close() }
        let receiver = try PaymentCodeKeys(seed: [UInt8](repeating: 3, count: 32))
        let payer = try PaymentCodeKeys(seed: [UInt8](repeating: 4, count: 32))
        let address = receiver.code.notificationAddress
        let masked = try PaymentCodeNotification.mask(
            payer.code, designated: f.alice, receiver: receiver.code,
            binding: PaymentCodeNotification.bindingKey(sender: CoAPFixture.address(f.alice), nonce: 0))
        _ = try f.node.submit(
            signed(f, nonce: 0, .paymentCodeNotify(PaymentCodeNotify(to: address, maskedCode: masked))))
        // Several epochs later, so the block holding it is older than the trust the device syncs to.
        for _ in 0..<9 { try f.produceBlock() }
        var (session, link) = try anchored(f)
        guard case .notified(let found?) = try session.run(.notification(address, index: 0), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(found.record.nonce, 0)
        XCTAssertEqual(found.record.sender, f.alice.xOnlyPublicKey.bytes)
        let unmasked = try PaymentCodeNotification.unmask(
            found.record.maskedCode, designated: f.alice.xOnlyPublicKey, notificationKey: try receiver.key(at: 0),
            binding: PaymentCodeNotification.bindingKey(sender: CoAPFixture.address(f.alice), nonce: 0))
        XCTAssertEqual(unmasked, payer.code)
        XCTAssertEqual(try session.run(.notification(address, index: 1), over: &link), .notified(nil))

        // Forgeries: another code in the record, a record past the count, a count that hides the record.
        let view = f.node.notificationRecord(address, index: 0)
        var tampered = found.record
        tampered.maskedCode[10] ^= 1
        var payload = NotificationProofPayload(
            height: view.height, stateRoot: view.stateRoot, count: 1, countProof: view.countProof, index: 0,
            record: tampered, recordProof: view.recordProof)
        link.intercept = { [payload] in
            $0.resource == .notifications ? DeviceAnswer(code: .content, body: payload.encoded) : nil
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.notification(address, index: 0), over: &link) },
            .rejected(.stateProofMismatch, stage: .notificationProof))
        payload.record = found.record
        payload.count = 0
        link.intercept = { [payload] in
            $0.resource == .notifications ? DeviceAnswer(code: .content, body: payload.encoded) : nil
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.notification(address, index: 0), over: &link) },
            .inconsistent(.notificationEntry))
        payload.record = nil
        link.intercept = { [payload] in
            $0.resource == .notifications ? DeviceAnswer(code: .content, body: payload.encoded) : nil
        }
        XCTAssertEqual(
            deviceError { _ = try session.run(.notification(address, index: 0), over: &link) },
            .rejected(.stateProofMismatch, stage: .notificationProof), "the count's proof shows one record")
        XCTAssertTrue(session.isIdle)
    }

    /// The receiver over the session: a notification and two payments found, the cursors saved and restored,
    /// a garbage notification skipped with its reason.
    func testTheReceiverFindsPaymentsAndResumesFromItsState() throws {
        let f = try CoAPFixture(epochLength: Self.epochLength, start: false)
        defer { f.close() }
        let receiver = try PaymentCodeKeys(seed: [UInt8](repeating: 5, count: 32))
        let payer = try PaymentCodeKeys(seed: CoAPFixture.address(f.alice).raw.bytes + [1])
        let notificationAddress = receiver.code.notificationAddress
        let masked = try PaymentCodeNotification.mask(
            payer.code, designated: f.alice, receiver: receiver.code,
            binding: PaymentCodeNotification.bindingKey(sender: CoAPFixture.address(f.alice), nonce: 0))
        var txs = [
            signed(f, nonce: 0, .paymentCodeNotify(PaymentCodeNotify(to: notificationAddress, maskedCode: masked)))
        ]
        // Masked for someone else: the receiver cannot read it.
        txs.append(
            signed(
                f, nonce: 1,
                .paymentCodeNotify(
                    PaymentCodeNotify(to: notificationAddress, maskedCode: [UInt8](repeating: 7, count: 80)))))
        for (i, amount) in [(0, 3_000), (1, 4_000)] as [(UInt32, UInt64)] {
            let to = try OneTimeKey.address(payer: payer, receiver: receiver.code, index: i)
            txs.append(signed(f, nonce: 2 + UInt64(i), .transfer(Transfer(to: to, amount: amount))))
        }
        for tx in txs { _ = try f.node.submit(tx) }
        for _ in 0..<9 { try f.produceBlock() }
        var (session, link) = try anchored(f)
        var r = try PaymentCodeReceiver(keys: receiver, epochLength: Self.epochLength)
        var events: [PaymentCodeReceiver.Event] = []
        while let op = r.next() { events += try r.handle(try session.run(op, over: &link)) }
        let payments = events.compactMap { if case .payment(let p) = $0 { return p } else { return nil } }
        XCTAssertEqual(payments.map(\.account.state.balance), [3_000, 4_000])
        XCTAssertEqual(payments.map(\.index), [0, 1])
        XCTAssertTrue(events.contains(.payerAdded(CoAPFixture.address(f.alice))))
        XCTAssertTrue(
            events.contains { if case .notificationSkipped(index: 1, _) = $0 { return true } else { return false } })
        XCTAssertEqual(r.state.notificationIndex, 2)
        XCTAssertEqual(r.state.payers.first?.nextIndex, 2)
        // Each window derived once (indices 0-3, then 2-5 once the payments moved it), however many epochs and
        // re-tests of an epoch the round ran.
        let tested = events.filter { if case .epochTested = $0 { return true } else { return false } }.count
        XCTAssertGreaterThan(tested, 2)
        XCTAssertEqual(r.keysDerived, 2 * Int(PaymentCodeReceiver.window))
        XCTAssertEqual(Address(publicKey: try r.spendingKey(payments[0]).xOnlyPublicKey), payments[0].address)

        // Restored from its encoding (a power cycle): nothing is found twice; a new payment is found.
        var restored = try PaymentCodeReceiver(
            keys: receiver, state: try PaymentCodeReceiver.State(decoding: r.state.encoded),
            epochLength: Self.epochLength)
        var again: [PaymentCodeReceiver.Event] = []
        while let op = restored.next() { again += try restored.handle(try session.run(op, over: &link)) }
        XCTAssertFalse(again.contains { if case .payment = $0 { return true } else { return false } })
        let third = try OneTimeKey.address(payer: payer, receiver: receiver.code, index: 2)
        _ = try f.node.submit(signed(f, nonce: 4, .transfer(Transfer(to: third, amount: 500))))
        for _ in 0..<5 { try f.produceBlock() }
        var resumed = try PaymentCodeReceiver(keys: receiver, state: restored.state, epochLength: Self.epochLength)
        var last: [PaymentCodeReceiver.Event] = []
        while let op = resumed.next() { last += try resumed.handle(try session.run(op, over: &link)) }
        let found = last.compactMap { if case .payment(let p) = $0 { return p } else { return nil } }
        XCTAssertEqual(found.map(\.address), [third])
        XCTAssertEqual(found.map(\.index), [2])
    }

    /// More payments in one epoch than the look-ahead window: the window moves past each payment found and the
    /// same epoch is tested again until nothing new matches.
    func testPaymentsBeyondTheWindowInOneEpochAreAllFound() throws {
        let f = try CoAPFixture(epochLength: 16, start: false)
        defer { f.close() }
        let receiver = try PaymentCodeKeys(seed: [UInt8](repeating: 6, count: 32))
        let payer = try PaymentCodeKeys(seed: [UInt8](repeating: 8, count: 32))
        let masked = try PaymentCodeNotification.mask(
            payer.code, designated: f.alice, receiver: receiver.code,
            binding: PaymentCodeNotification.bindingKey(sender: CoAPFixture.address(f.alice), nonce: 0))
        _ = try f.node.submit(
            signed(
                f, nonce: 0,
                .paymentCodeNotify(PaymentCodeNotify(to: receiver.code.notificationAddress, maskedCode: masked))))
        let count = Int(PaymentCodeReceiver.window) + 2
        for i in 0..<count {
            let to = try OneTimeKey.address(payer: payer, receiver: receiver.code, index: UInt32(i))
            _ = try f.node.submit(signed(f, nonce: 1 + UInt64(i), .transfer(Transfer(to: to, amount: 100 + UInt64(i)))))
        }
        for _ in 0..<17 { try f.produceBlock() }
        var (session, link) = try anchored(f)
        var r = try PaymentCodeReceiver(keys: receiver, epochLength: 16)
        var events: [PaymentCodeReceiver.Event] = []
        while let op = r.next() { events += try r.handle(try session.run(op, over: &link)) }
        let payments = events.compactMap { if case .payment(let p) = $0 { return p } else { return nil } }
        XCTAssertEqual(payments.map(\.index), (0..<UInt32(count)).map { $0 })
        XCTAssertEqual(payments.map { $0.epoch }, [UInt64](repeating: 0, count: count))
        XCTAssertEqual(r.state.payers.first?.nextIndex, UInt32(count))
        XCTAssertEqual(r.state.nextEpoch, 1)
    }
}
