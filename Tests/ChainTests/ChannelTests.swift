import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Chain

/// One-way payment channels through real blocks: a thousand payments signed and checked off chain, then closed
/// with one transaction; conditions paid only with their preimage before their expiry; the deposit back to the
/// sender only after the expiry; every refusal with its own reason and nothing moved. A replica agrees on every
/// state root and the supply stays whole with open channels counted.
final class ChannelTests: ReplicatedChainTestCase {

    var alice: PrivateKey { t.funded[0] }
    var bob: PrivateKey { t.funded[1] }
    let deposit: UInt64 = 10_000_000

    func plan(_ payload: TransactionPayload, sender: PrivateKey) -> ChannelError? {
        let overlay = StateOverlay(base: WorldStateProbe.world(of: node))
        let height = node.head.height + 1
        let from = TestChain.address(sender)
        do {
            switch payload {
            case .channelOpen(let o):
                _ = try ChannelRules.planOpen(
                    o, id: .zero, sender: from, senderKey: sender.xOnlyPublicKey.bytes, height: height)
            case .channelClose(let c): _ = try ChannelRules.planClose(c, sender: from, height: height, state: overlay)
            case .channelRefund(let r): _ = try ChannelRules.planRefund(r, sender: from, height: height, state: overlay)
            default: XCTFail("not a channel payload")
            }
            return nil
        } catch { return error }
    }

    func open(blocks: UInt64) throws -> (SignedTransaction, PaymentChannel) {
        let tx = try send(
            alice,
            .channelOpen(
                ChannelOpen(
                    recipient: TestChain.address(bob), deposit: deposit, expiryHeight: node.head.height + blocks)))
        try block()
        let channel = try XCTUnwrap(node.channel(tx.id).state)
        XCTAssertEqual(channel.status, .open)
        XCTAssertEqual(channel.senderKey, alice.xOnlyPublicKey.bytes)
        XCTAssertEqual(node.supply.escrowed, deposit)
        return (tx, channel)
    }

    func testAThousandOffChainPaymentsCloseWithOneTransaction() throws {
        let (aliceBefore, bobBefore) = (balance(alice), balance(bob))
        let (opened, channel) = try open(blocks: 50)
        let id = opened.id
        let heightAfterOpen = node.head.height

        // Off chain: the sender signs each payment on top of the last; the recipient checks each and keeps it.
        var sent: ChannelUpdate?
        var held: ChannelUpdate?
        var olderUpdate: ChannelUpdate?
        for i in 0..<1000 {
            let update = try channel.pay(1_000, after: sent, channelID: id, height: node.head.height, sender: alice)
            try channel.accept(update, channelID: id, holding: held, height: node.head.height)
            sent = update
            held = update
            if i == 399 { olderUpdate = update }
            if i == 499 {
                // Half way: every bad update is refused with its reason, and what is held stays.
                let older = try XCTUnwrap(olderUpdate)
                XCTAssertThrowsError(try channel.accept(older, channelID: id, holding: held, height: node.head.height))
                {
                    XCTAssertEqual($0 as? ChannelError, .staleUpdate(held: 500_000, offered: 400_000))
                }
                let same = try XCTUnwrap(held)
                XCTAssertThrowsError(try channel.accept(same, channelID: id, holding: held, height: node.head.height)) {
                    XCTAssertEqual($0 as? ChannelError, .staleUpdate(held: 500_000, offered: 500_000))
                }
                let lower = ChannelUpdate(channelID: id, paid: 400_000, sender: alice)
                XCTAssertThrowsError(try channel.accept(lower, channelID: id, holding: held, height: node.head.height))
                {
                    XCTAssertEqual($0 as? ChannelError, .staleUpdate(held: 500_000, offered: 400_000))
                }
                let forged = ChannelUpdate(channelID: id, paid: 900_000, sender: bob)
                XCTAssertThrowsError(try channel.accept(forged, channelID: id, holding: held, height: node.head.height))
                {
                    XCTAssertEqual($0 as? ChannelError, .badUpdateSignature)
                }
                var tampered = ChannelUpdate(channelID: id, paid: 600_000, sender: alice)
                tampered.paid = 700_000
                XCTAssertThrowsError(
                    try channel.accept(tampered, channelID: id, holding: held, height: node.head.height)
                ) {
                    XCTAssertEqual($0 as? ChannelError, .badUpdateSignature)
                }
                let other = ChannelUpdate(channelID: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9), paid: 600_000, sender: alice)
                XCTAssertThrowsError(try channel.accept(other, channelID: id, holding: held, height: node.head.height))
                {
                    XCTAssertEqual($0 as? ChannelError, .wrongChannel)
                }
                let greedy = ChannelUpdate(channelID: id, paid: deposit + 1, sender: alice)
                XCTAssertThrowsError(try channel.accept(greedy, channelID: id, holding: held, height: node.head.height))
                {
                    XCTAssertEqual($0 as? ChannelError, .overDeposit(committed: deposit + 1, deposit: deposit))
                }
                XCTAssertThrowsError(
                    try channel.pay(deposit, after: sent, channelID: id, height: node.head.height, sender: alice)
                ) {
                    XCTAssertEqual($0 as? ChannelError, .overDeposit(committed: deposit + 500_000, deposit: deposit))
                }
                XCTAssertThrowsError(
                    try channel.pay(1, after: sent, channelID: id, height: node.head.height, sender: bob)
                ) {
                    XCTAssertEqual($0 as? ChannelError, .notSender)
                }
            }
        }
        let best = try XCTUnwrap(held)
        XCTAssertEqual(best.paid, 1_000_000)
        // A greedy update is refused by the chain too, and only the recipient closes.
        XCTAssertEqual(
            plan(
                .channelClose(ChannelClose(update: ChannelUpdate(channelID: id, paid: deposit + 1, sender: alice))),
                sender: bob), .overDeposit(committed: deposit + 1, deposit: deposit))
        XCTAssertEqual(plan(.channelClose(ChannelClose(update: best)), sender: alice), .notRecipient)

        let closed = try send(bob, .channelClose(ChannelClose(update: best)))
        try block()
        XCTAssertEqual(balance(bob), bobBefore + 1_000_000 - (try fee(closed)))
        XCTAssertEqual(balance(alice), aliceBefore - 1_000_000 - (try fee(opened)))
        XCTAssertEqual(node.supply.escrowed, 0)
        let view = node.channel(id)
        XCTAssertEqual(view.state?.status, .closed)
        XCTAssertEqual(view.state?.paidOut, 1_000_000)
        XCTAssertTrue(
            view.proof.verify(
                root: node.head.stateRoot, key: StateNamespace.channelKey(id), valueHash: view.state?.valueHash))
        // The thousand payments cost the chain two transactions: the open and the close.
        var included = 0
        for height in 1...node.head.height {
            included += try XCTUnwrap(try node.block(at: height)).receipts.count
        }
        XCTAssertEqual(included, 2)
        XCTAssertEqual(node.head.height, heightAfterOpen + 1)
        // A closed channel's state cannot be replayed.
        XCTAssertEqual(plan(.channelClose(ChannelClose(update: best)), sender: bob), .notOpen)
        XCTAssertThrowsError(
            try node.submit(
                SignedTransaction(
                    body: TransactionBody(
                        genesis: node.genesisBlockHash, sender: bob.xOnlyPublicKey.bytes, nonce: 1, maxFeePerUnit: 10,
                        tipPerUnit: 1, payload: .channelClose(ChannelClose(update: best))), signer: bob))
        ) {
            XCTAssertEqual($0 as? TransactionError, .channel(.notOpen))
        }
    }

    func testConditionsPayOnlyWithTheirPreimageBeforeTheirExpiry() throws {
        let (opened, channel) = try open(blocks: 40)
        let id = opened.id
        let (early, late, unused) = (
            Bytes32(w0: 1, w1: 0, w2: 0, w3: 0), Bytes32(w0: 2, w1: 0, w2: 0, w3: 0),
            Bytes32(w0: 3, w1: 0, w2: 0, w3: 0)
        )
        let conditions = [
            ChannelCondition(hashLock: SHA256.hash(early.bytes), amount: 700, expiryHeight: 1),
            ChannelCondition(hashLock: SHA256.hash(late.bytes), amount: 500, expiryHeight: 30),
        ]
        let update = ChannelUpdate(channelID: id, paid: 100, conditions: conditions, sender: alice)
        XCTAssertNoThrow(try channel.accept(update, channelID: id, holding: nil, height: node.head.height))
        // More promised on conditions at the same settled amount supersedes; fewer does not.
        let fewer = ChannelUpdate(channelID: id, paid: 100, conditions: [conditions[1]], sender: alice)
        XCTAssertNoThrow(try channel.accept(update, channelID: id, holding: fewer, height: node.head.height))
        XCTAssertThrowsError(try channel.accept(fewer, channelID: id, holding: update, height: node.head.height)) {
            XCTAssertEqual($0 as? ChannelError, .conditionDropped)
        }

        XCTAssertEqual(
            plan(.channelClose(ChannelClose(update: update, preimages: [early])), sender: bob),
            .conditionExpired(expiryHeight: 1))
        XCTAssertEqual(
            plan(.channelClose(ChannelClose(update: update, preimages: [unused])), sender: bob), .unmatchedPreimage)
        XCTAssertEqual(
            plan(.channelClose(ChannelClose(update: update, preimages: [late, late])), sender: bob), .unmatchedPreimage)

        let bobBefore = balance(bob)
        let closed = try send(bob, .channelClose(ChannelClose(update: update, preimages: [late])))
        try block()
        XCTAssertEqual(node.channel(id).state?.paidOut, 600)
        XCTAssertEqual(node.channel(id).state?.revealed, [late], "the secret stays on chain for the hop upstream")
        XCTAssertEqual(balance(bob), bobBefore + 600 - (try fee(closed)))
        XCTAssertEqual(node.supply.escrowed, 0)
    }

    func testTheDepositGoesBackOnlyAfterTheExpiry() throws {
        XCTAssertEqual(
            plan(
                .channelOpen(ChannelOpen(recipient: TestChain.address(alice), deposit: 1, expiryHeight: 9)),
                sender: alice), .sameParty)
        XCTAssertEqual(
            plan(
                .channelOpen(ChannelOpen(recipient: TestChain.address(bob), deposit: 1, expiryHeight: 1)), sender: alice
            ),
            .expiryPassed(height: 1))
        let aliceBefore = balance(alice)
        let (opened, _) = try open(blocks: 3)
        let id = opened.id
        XCTAssertEqual(
            plan(.channelRefund(ChannelRefund(channelID: id)), sender: alice), .refundTooEarly(expiryHeight: 3))
        XCTAssertEqual(plan(.channelRefund(ChannelRefund(channelID: id)), sender: bob), .notSender)
        XCTAssertEqual(
            plan(.channelRefund(ChannelRefund(channelID: Bytes32(w0: 5, w1: 5, w2: 5, w3: 5))), sender: alice),
            .unknownChannel)
        // A node that restarts with the channel open counts its deposit and opens.
        node = try t.openNode()
        try block()
        try block()
        try block()  // height 4 > expiry 3
        let update = ChannelUpdate(channelID: id, paid: 5, sender: alice)
        XCTAssertEqual(plan(.channelClose(ChannelClose(update: update)), sender: bob), .closeTooLate(expiryHeight: 3))
        let refunded = try send(alice, .channelRefund(ChannelRefund(channelID: id)))
        try block()
        XCTAssertEqual(node.channel(id).state?.status, .refunded)
        XCTAssertEqual(balance(alice), aliceBefore - (try fee(opened)) - (try fee(refunded)))
        XCTAssertEqual(node.supply.escrowed, 0)
        XCTAssertEqual(plan(.channelRefund(ChannelRefund(channelID: id)), sender: alice), .notOpen)
    }

    func testALockedConditionSettlesOffChainOnceItsSecretIsShown() throws {
        let (opened, channel) = try open(blocks: 40)
        let id = opened.id
        let secret = Bytes32(w0: 42, w1: 0, w2: 0, w3: 0)
        let condition = ChannelCondition(hashLock: SHA256.hash(secret.bytes), amount: 20_000, expiryHeight: 30)
        let paid = try channel.pay(1_000, after: nil, channelID: id, height: node.head.height, sender: alice)
        let locked = try channel.lock(condition, after: paid, channelID: id, height: node.head.height, sender: alice)
        XCTAssertEqual(locked.paid, 1_000)
        XCTAssertEqual(locked.conditions, [condition])
        XCTAssertNoThrow(try channel.accept(locked, channelID: id, holding: paid, height: node.head.height))
        XCTAssertThrowsError(
            try channel.lock(condition, after: locked, channelID: id, height: node.head.height, sender: alice)
        ) {
            XCTAssertEqual($0 as? ChannelError, .conditionExists)
        }
        XCTAssertThrowsError(
            try channel.settle(.zero, after: locked, channelID: id, height: node.head.height, sender: alice)
        ) {
            XCTAssertEqual($0 as? ChannelError, .unmatchedPreimage)
        }
        let settled = try channel.settle(secret, after: locked, channelID: id, height: node.head.height, sender: alice)
        XCTAssertEqual(settled.paid, 21_000)
        XCTAssertEqual(settled.conditions, [])
        XCTAssertNoThrow(try channel.accept(settled, channelID: id, holding: locked, height: node.head.height))
        // The older update, with the condition still pending, is worth less to the recipient than the settled one.
        XCTAssertThrowsError(try channel.accept(locked, channelID: id, holding: settled, height: node.head.height)) {
            XCTAssertEqual($0 as? ChannelError, .staleUpdate(held: 21_000, offered: 1_000))
        }
        // A pending condition cannot be taken away, nor shrunk, by paying a little more: it must be settled.
        let dropping = ChannelUpdate(channelID: id, paid: 1_001, sender: alice)
        XCTAssertThrowsError(try channel.accept(dropping, channelID: id, holding: locked, height: node.head.height)) {
            XCTAssertEqual($0 as? ChannelError, .conditionDropped)
        }
        let shrunk = ChannelUpdate(
            channelID: id, paid: 1_500,
            conditions: [ChannelCondition(hashLock: condition.hashLock, amount: 100, expiryHeight: 30)], sender: alice)
        XCTAssertThrowsError(try channel.accept(shrunk, channelID: id, holding: locked, height: node.head.height)) {
            XCTAssertEqual($0 as? ChannelError, .conditionDropped)
        }
        // Once expired, a condition can no longer be claimed: the sender's next update drops it, the recipient
        // takes that, and it can no longer be settled.
        let later = condition.expiryHeight + 1
        let afterExpiry = try channel.pay(1, after: locked, channelID: id, height: later, sender: alice)
        XCTAssertEqual(afterExpiry.conditions, [])
        XCTAssertNoThrow(try channel.accept(afterExpiry, channelID: id, holding: locked, height: later))
        XCTAssertThrowsError(try channel.settle(secret, after: locked, channelID: id, height: later, sender: alice)) {
            XCTAssertEqual($0 as? ChannelError, .conditionExpired(expiryHeight: 30))
        }
        // A condition must leave time to claim it before the channel expires (40), and near its expiry the
        // recipient takes no more updates.
        XCTAssertThrowsError(
            try channel.lock(
                ChannelCondition(hashLock: SHA256.hash([7]), amount: 1, expiryHeight: 36), after: settled,
                channelID: id, height: node.head.height, sender: alice)
        ) { XCTAssertEqual($0 as? ChannelError, .conditionOutlivesChannel(channelExpiry: 40)) }
        XCTAssertThrowsError(try channel.accept(settled, channelID: id, holding: locked, height: 36)) {
            XCTAssertEqual($0 as? ChannelError, .closingSoon(expiryHeight: 40))
        }
        XCTAssertNoThrow(try channel.accept(settled, channelID: id, holding: locked, height: 35), "5 blocks left")
        // The same rule for a condition the sender signed itself: the recipient refuses it, at the boundary too.
        let late = ChannelUpdate(
            channelID: id, paid: settled.paid,
            conditions: [ChannelCondition(hashLock: SHA256.hash([8]), amount: 1, expiryHeight: 36)], sender: alice)
        XCTAssertThrowsError(try channel.accept(late, channelID: id, holding: settled, height: node.head.height)) {
            XCTAssertEqual($0 as? ChannelError, .conditionOutlivesChannel(channelExpiry: 40))
        }
        let justInTime = ChannelUpdate(
            channelID: id, paid: settled.paid,
            conditions: [ChannelCondition(hashLock: SHA256.hash([8]), amount: 1, expiryHeight: 35)], sender: alice)
        XCTAssertNoThrow(try channel.accept(justInTime, channelID: id, holding: settled, height: node.head.height))
        // A relay after an expired one: the expired condition counts for nothing, so a smaller new one is better.
        let expiredHeld = ChannelUpdate(
            channelID: id, paid: settled.paid,
            conditions: [ChannelCondition(hashLock: SHA256.hash([9]), amount: 500, expiryHeight: 3)], sender: alice)
        XCTAssertNoThrow(try channel.accept(justInTime, channelID: id, holding: expiredHeld, height: 4))
        XCTAssertThrowsError(try channel.accept(justInTime, channelID: id, holding: expiredHeld, height: 3)) {
            XCTAssertEqual($0 as? ChannelError, .conditionDropped, "still claimable at its expiry height")
        }
        var full = settled
        for n in 0..<Caps.channelConditions {
            full = try channel.lock(
                ChannelCondition(hashLock: SHA256.hash([UInt8(n)]), amount: 1, expiryHeight: 30), after: full,
                channelID: id, height: node.head.height, sender: alice)
        }
        XCTAssertThrowsError(
            try channel.lock(
                ChannelCondition(hashLock: SHA256.hash([99]), amount: 1, expiryHeight: 30), after: full, channelID: id,
                height: node.head.height, sender: alice)
        ) { XCTAssertEqual($0 as? ChannelError, .tooManyConditions) }
    }

    func testUpdatesDecodeOnlyInTheirOneForm() throws {
        let id = Bytes32(w0: 7, w1: 7, w2: 7, w3: 7)
        let a = ChannelCondition(hashLock: Bytes32(w0: 1, w1: 0, w2: 0, w3: 0), amount: 1, expiryHeight: 5)
        let b = ChannelCondition(hashLock: Bytes32(w0: 2, w1: 0, w2: 0, w3: 0), amount: 1, expiryHeight: 5)
        let signed = ChannelUpdate(channelID: id, paid: 10, conditions: [b, a], sender: alice)
        XCTAssertEqual(signed.conditions, [a, b], "signing puts conditions in hash-lock order")
        XCTAssertEqual(try ChannelUpdate(decoding: signed.encoded), signed)
        XCTAssertTrue(signed.isSigned(by: alice.xOnlyPublicKey.bytes))
        var unordered = signed
        unordered.conditions = [b, a]
        XCTAssertThrowsError(try ChannelUpdate(decoding: unordered.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.ordering))
        }
        var repeated = signed
        repeated.conditions = [a, a]
        XCTAssertThrowsError(try ChannelUpdate(decoding: repeated.encoded))
        var overflowing = signed
        overflowing.paid = .max
        XCTAssertThrowsError(try ChannelUpdate(decoding: overflowing.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.amount))
        }
        let tooMany = (0..<(Caps.channelConditions + 1)).map {
            ChannelCondition(hashLock: Bytes32(w0: UInt64($0 + 1), w1: 0, w2: 0, w3: 0), amount: 1, expiryHeight: 5)
        }
        XCTAssertThrowsError(
            try ChannelUpdate(
                decoding: ChannelUpdate(
                    channelID: id, paid: 0, conditions: tooMany,
                    sender: alice
                ).encoded))
        XCTAssertThrowsError(
            try ChannelOpen(
                decoding: ChannelOpen(
                    recipient: TestChain.address(bob), deposit: 0,
                    expiryHeight: 5
                ).encoded)
        ) { XCTAssertEqual($0 as? CodecError, .invalidValue(.amount)) }
        var zeroCondition = signed
        zeroCondition.conditions = [ChannelCondition(hashLock: a.hashLock, amount: 0, expiryHeight: 5)]
        XCTAssertThrowsError(try ChannelUpdate(decoding: zeroCondition.encoded))
    }
}
