import AmarsCodec
import AmarsCrypto
import Chain
import DeviceProtocol
import Foundation
import Ledger
import PaymentCodes
import XCTest

@testable import DeviceGateway

/// Channel messages over MQTT with a real mosquitto broker locked down as a gateway runs it: a sender posts on its
/// own `amars/v1/chan-out/{sender}` topic as an anonymous device, the bridge's channel door keeps what is the open
/// channel's sender's, and the recipient gets it on `amars/v1/chan/{recipient}` as the door's entry (the same one
/// CoAP `v1/channel/messages` lists). Forgeries, messages on another sender's topic and a stranger writing to the
/// recipient's topic directly never reach it.
final class MqttChannelTests: XCTestCase {
    var chain: MqttTestChain?

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    func testASendersMessagesReachTheRecipientsTopicAndNothingElseDoes() throws {
        let c = try MqttTestChain()
        chain = c
        let bob = MqttTestChain.address(c.bob)
        let alice = MqttTestChain.address(c.alice)
        let open = SignedTransaction(
            body: TransactionBody(
                genesis: c.node.genesisBlockHash, sender: c.alice.xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 100,
                tipPerUnit: 1, payload: .channelOpen(ChannelOpen(recipient: bob, deposit: 90_000, expiryHeight: 80))),
            signer: c.alice)
        _ = try c.node.submit(open)
        try c.produceBlock()
        let id = open.id
        let channel = try XCTUnwrap(c.node.channel(id).state)
        let door = ChannelDoor(node: c.node)
        let bridge = try c.startBridge(channels: door)
        let recipientTopic = MqttTopics.channel(bob)
        let sub = try c.subscribe([recipientTopic])

        let first = try channel.pay(2_000, after: nil, channelID: id, height: c.node.head.height, sender: c.alice)
        let second = try channel.pay(3_000, after: first, channelID: id, height: c.node.head.height, sender: c.alice)
        let forged = ChannelUpdate(channelID: id, paid: 9_000, sender: c.bob)
        let carol = MqttTestChain.address(MqttTestChain.key(40))
        // In order: the sender's first update; a forgery on its topic; its second update on someone else's topic;
        // garbage; a stranger writing the recipient's topic directly (the ACL drops it); the second update on the
        // sender's own topic.
        try c.publish(
            topic: MqttTopics.channelPost(alice), payload: ChannelMessage.update(first).encoded, asGateway: false)
        try c.publish(
            topic: MqttTopics.channelPost(alice), payload: ChannelMessage.update(forged).encoded, asGateway: false)
        try c.publish(
            topic: MqttTopics.channelPost(carol), payload: ChannelMessage.update(second).encoded, asGateway: false)
        try c.publish(topic: MqttTopics.channelPost(alice), payload: [9, 9, 9], asGateway: false)
        let planted = MailboxPayload.Entry(sequence: .max, message: ChannelMessage.update(forged).encoded)
        try c.publish(topic: recipientTopic, payload: planted.encoded, asGateway: false)
        try c.publish(
            topic: MqttTopics.channelPost(alice), payload: ChannelMessage.update(second).encoded, asGateway: false)

        try mqttWaitUntil("two channel messages relayed") { sub.payloads(on: recipientTopic).count >= 2 }
        try mqttWaitUntil("refusals counted") { bridge.stats.dropped[.channelRefused] == 3 }
        usleep(300_000)
        let received = sub.payloads(on: recipientTopic).map { try? MailboxPayload.Entry(decoding: $0) }
        XCTAssertEqual(
            received.map { $0.flatMap { try? ChannelMessage(decoding: $0.message) } },
            [.update(first), .update(second)])
        // The same entries the door lists for CoAP and HTTP, in the order they were kept.
        XCTAssertEqual(received.compactMap { $0 }, door.messages(for: id, after: 0))
        XCTAssertEqual(bridge.stats.channelMessagesRelayed, 2)
    }
}
