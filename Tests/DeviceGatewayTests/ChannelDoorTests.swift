import AmarsCodec
import AmarsCrypto
import Chain
import DeviceClient
import DeviceCore
import DeviceProtocol
import GatewayTestSupport
import Ledger
import LightClient
import PaymentCodes
import XCTest

@testable import DeviceGateway

/// The channel door on a real chain: what a sender may post for its recipient, what the recipient's session
/// fetches, and every message a stranger or a lying gateway could use.
final class ChannelDoorTests: XCTestCase {
    /// Alice opens a channel to Bob (deposit 50,000 units, expiry at block 60); returns its id.
    func openChannel(_ f: CoAPFixture) throws -> Bytes32 {
        try f.aliceIncludes(
            .channelOpen(ChannelOpen(recipient: CoAPFixture.address(f.bob), deposit: 50_000, expiryHeight: 60)))
        return try XCTUnwrap(f.node.block(at: f.node.head.height)?.finalized.block.transactions.first?.id)
    }

    func post(_ f: CoAPFixture, _ bytes: [UInt8]) -> DeviceResponse {
        f.server.handlers.handle(.channelMessage, query: [], body: bytes)
    }

    func testTheSendersMessagesAreKeptForTheRecipientAndEverythingElseIsRefused() throws {
        let f = try CoAPFixture(epochLength: 4, start: false)
        defer { f.close() }
        let id = try openChannel(f)
        let channel = try XCTUnwrap(f.node.channel(id).state)
        let height = f.node.head.height
        let paid = try channel.pay(1_000, after: nil, channelID: id, height: height, sender: f.alice)
        // A relay message: Alice's payment code masked for Carol, its fee locked in the channel to Bob.
        let aliceCode = try PaymentCodeKeys(seed: f.alice.secret.bytes).code
        let carolCode = try PaymentCodeKeys(seed: CoAPFixture.key(31).secret.bytes).code
        let notification = try RelayedNotification(
            code: aliceCode, designated: CoAPFixture.key(32), receiver: carolCode)
        let locked = try channel.lock(
            ChannelCondition(hashLock: notification.hashLock, amount: 500, expiryHeight: 40), after: paid,
            channelID: id, height: height, sender: f.alice)
        let relay = ChannelMessage.relay(RelayMessage(update: locked, notification: notification))

        let first = post(f, ChannelMessage.update(paid).encoded)
        XCTAssertEqual(first.code, .created, String(decoding: first.payload, as: UTF8.self))
        XCTAssertEqual(post(f, relay.encoded).code, .created)

        // Refused, each with its reason, and nothing kept.
        func refusal(_ bytes: [UInt8]) -> String {
            let r = post(f, bytes)
            XCTAssertEqual(r.code, .badRequest)
            return String(decoding: r.payload, as: UTF8.self)
        }
        XCTAssertEqual(refusal([0x07, 1, 2]), "undecodable")
        XCTAssertEqual(refusal(ChannelMessage.update(paid).encoded.dropLast()), "undecodable")
        let stranger = ChannelUpdate(channelID: id, paid: 2_000, sender: f.bob)
        XCTAssertEqual(refusal(ChannelMessage.update(stranger).encoded), "badUpdateSignature")
        let greedy = ChannelUpdate(channelID: id, paid: 50_001, sender: f.alice)
        XCTAssertEqual(refusal(ChannelMessage.update(greedy).encoded), "overDeposit")
        let nowhere = ChannelUpdate(channelID: Bytes32(w0: 5, w1: 5, w2: 5, w3: 5), paid: 1, sender: f.alice)
        XCTAssertEqual(refusal(ChannelMessage.update(nowhere).encoded), "unknownChannel")
        // A copy of a message kept, an older update, and a relay whose update does not carry its condition: each
        // would take a slot without paying the recipient more.
        XCTAssertEqual(refusal(relay.encoded), "staleUpdate")
        XCTAssertEqual(refusal(ChannelMessage.update(paid).encoded), "conditionDropped")
        XCTAssertEqual(
            refusal(ChannelMessage.relay(RelayMessage(update: paid, notification: notification)).encoded),
            "relayNotLocked")
        let huge = post(f, [UInt8](repeating: 0, count: MailboxPayload.maxChannelMessageBytes + 1))
        XCTAssertEqual(huge.code, .requestEntityTooLarge)
        XCTAssertEqual(huge.size1, UInt32(MailboxPayload.maxChannelMessageBytes))
        XCTAssertEqual(
            f.server.handlers.handle(
                .channelMessage, query: Array("x=1".utf8), body: ChannelMessage.update(paid).encoded
            )
            .code, .badRequest)

        // The recipient's session lists exactly the two, in order, and after a cursor only what came later.
        var (session, link) = try anchored(f, wallet: DeviceWallet(key: f.bob, nextNonce: 0))
        guard case .channelMessages(let all) = try session.run(.channelMessages(id, after: 0), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(all.entries.map { try? ChannelMessage(decoding: $0.message) }, [.update(paid), relay])
        guard
            case .channelMessages(let later) = try session.run(
                .channelMessages(id, after: all.entries[0].sequence), over: &link)
        else { return XCTFail() }
        XCTAssertEqual(later.entries, [all.entries[1]])
        // Each update checks out against the channel the recipient proves itself.
        guard case .channel(let proven) = try session.run(.channel(id), over: &link), let onChain = proven.state
        else { return XCTFail() }
        XCTAssertNoThrow(try onChain.accept(paid, channelID: id, holding: nil, height: proven.header.height))
        XCTAssertNoThrow(try onChain.accept(locked, channelID: id, holding: paid, height: proven.header.height))

        // Nobody but the recipient reads them: the sender's key is refused, and so is a signature for another read.
        var (sender, senderLink) = try anchored(f, wallet: DeviceWallet(key: f.alice, nextNonce: 0))
        let senderRead = deviceError { _ = try sender.run(.channelMessages(id, after: 0), over: &senderLink) }
        guard case .gateway(DeviceResource.channelMessages, CoAPCode.forbidden, let why)? = senderRead else {
            return XCTFail("\(String(describing: senderRead))")
        }
        XCTAssertEqual(why, ShortText(Array("notRecipient".utf8)))
        let readAfter5 = f.bob.signSchnorr(
            ChannelUpdate.readHash(genesis: f.node.genesisBlockHash, channelID: id, after: 5), auxRandom: .zero)
        let replayed = DeviceRequest.channelMessages(
            id, after: 0, key: f.bob.xOnlyPublicKey.bytes, signature: readAfter5)
        let answer = f.server.handlers.handle(
            .channelMessages, query: Array(replayed.query.joined(separator: [UInt8(ascii: "&")])), body: [])
        XCTAssertEqual(answer.code, .forbidden)
        XCTAssertEqual(String(decoding: answer.payload, as: UTF8.self), "badReadSignature")

        // A gateway listing out of order, or not past the cursor, is refused.
        let swapped = MailboxPayload(entries: all.entries.reversed()).encoded
        link.intercept = { $0.resource == .channelMessages ? DeviceAnswer(code: .content, body: swapped) : nil }
        XCTAssertEqual(
            deviceError { _ = try session.run(.channelMessages(id, after: 0), over: &link) },
            .inconsistent(.messageSequence))
        link.intercept = nil

        // Once Bob closed the channel, the door takes nothing more for it.
        let close = SignedTransaction(
            body: TransactionBody(
                genesis: f.node.genesisBlockHash, sender: f.bob.xOnlyPublicKey.bytes,
                nonce: f.node.account(CoAPFixture.address(f.bob)).state.nonce, maxFeePerUnit: 100, tipPerUnit: 1,
                payload: .channelClose(ChannelClose(update: paid))), signer: f.bob)
        _ = try f.node.submit(close)
        try f.produceBlock()
        XCTAssertEqual(f.node.channel(id).state?.status, .closed)
        let next = try channel.pay(1_000, after: paid, channelID: id, height: height, sender: f.alice)
        XCTAssertEqual(refusal(ChannelMessage.update(next).encoded), "channelNotOpen")
    }

    func testMailboxesAreBoundedAndExpire() throws {
        let f = try CoAPFixture(epochLength: 4, start: false)
        defer { f.close() }
        let id = try openChannel(f)
        let channel = try XCTUnwrap(f.node.channel(id).state)
        nonisolated(unsafe) var now: UInt64 = 1_000
        let door = ChannelDoor(
            node: f.node, limits: .init(perChannel: 2, channels: 8, lifetimeSeconds: 60), clock: { now },
            firstSequence: 10)
        var last: ChannelUpdate?
        var sequences: [UInt64] = []
        for _ in 0..<3 {
            last = try channel.pay(10, after: last, channelID: id, height: f.node.head.height, sender: f.alice)
            sequences.append(try door.post(ChannelMessage.update(last!).encoded).sequence)
        }
        XCTAssertEqual(sequences, [11, 12, 13])
        XCTAssertEqual(door.messages(for: id, after: 0).map(\.sequence), [12, 13], "the oldest pushed out")
        now += 60
        XCTAssertEqual(door.messages(for: id, after: 0), [], "past their lifetime")

        // Full of live channels, the door refuses a new one instead of dropping another's messages.
        let small = ChannelDoor(
            node: f.node, limits: .init(perChannel: 2, channels: 1, lifetimeSeconds: 60), clock: { now })
        _ = try small.post(ChannelMessage.update(last!).encoded)
        try f.aliceIncludes(
            .channelOpen(ChannelOpen(recipient: CoAPFixture.address(f.bob), deposit: 1_000, expiryHeight: 60)))
        let second = try XCTUnwrap(f.node.block(at: f.node.head.height)?.finalized.block.transactions.first?.id)
        let other = try XCTUnwrap(f.node.channel(second).state)
        let first = try other.pay(10, after: nil, channelID: second, height: f.node.head.height, sender: f.alice)
        XCTAssertThrowsError(try small.post(ChannelMessage.update(first).encoded)) {
            XCTAssertEqual($0 as? ChannelDoor.Refusal, .full)
        }
        XCTAssertEqual(small.messages(for: id, after: 0).count, 1, "the first channel's message kept")
        now += 60
        XCTAssertNoThrow(try small.post(ChannelMessage.update(first).encoded), "room once the first expired")
    }

    /// Over a real CoAP socket: an update with every condition an update can hold posted, one over the door's cap
    /// (which goes out block-wise, as anything over 1 KiB does) refused with 4.13 before it is stored, and the
    /// recipient's session reading what was kept.
    func testMessagesTravelOverRealCoAP() throws {
        let f = try CoAPFixture(epochLength: 4)
        defer { f.close() }
        let id = try openChannel(f)
        var conditions: [ChannelCondition] = []
        for n in 0..<UInt64(Caps.channelConditions) {
            conditions.append(
                ChannelCondition(
                    hashLock: SHA256.hash([UInt8(n)]), amount: 100, expiryHeight: 40))
        }
        let big = ChannelUpdate(channelID: id, paid: 1_000, conditions: conditions, sender: f.alice)
        var client = try CoAPDeviceClient(configuration: .init(url: "coap://127.0.0.1:\(f.port)"))
        let posted = try client.exchange(DeviceRequest(.channelMessage, payload: ChannelMessage.update(big).encoded))
        XCTAssertEqual(posted.code, .created, String(decoding: posted.body, as: UTF8.self))
        let huge = try client.exchange(
            DeviceRequest(
                .channelMessage, payload: [UInt8](repeating: 1, count: MailboxPayload.maxChannelMessageBytes + 200)))
        XCTAssertEqual(huge.code, .requestEntityTooLarge)
        var session = DeviceSession(
            anchor: anchor(f), wallet: DeviceWallet(key: f.bob, nextNonce: 0),
            configuration: .init(checkpointPage: 64, pollMillis: 100))
        XCTAssertEqual(try session.run(.anchor, over: &client), .anchored)
        guard case .channelMessages(let kept) = try session.run(.channelMessages(id, after: 0), over: &client) else {
            return XCTFail()
        }
        XCTAssertEqual(kept.entries.map { try? ChannelMessage(decoding: $0.message) }, [.update(big)])
    }
}
