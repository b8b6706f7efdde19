import DeviceProtocol
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import XCTest

@testable import DeviceGateway

/// The MQTT contract seen from tools nobody here wrote: mosquitto's own `mosquitto_pub` and `mosquitto_sub`
/// against a real broker, with payloads checked byte for byte against the chain's encodings.
final class MqttInteropTests: XCTestCase {
    var chain: MqttTestChain?

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    func testMosquittoPubSubmitSeesAcceptedThenFinalReceipt() throws {
        let c = try MqttTestChain()
        chain = c
        let bridge = try c.startBridge()
        let alice = MqttTestChain.address(c.alice)
        let bob = MqttTestChain.address(c.bob)
        let bobBefore = c.node.account(bob).state.balance
        let tx = c.transfer(from: c.alice, to: bob, amount: 12_345, nonce: 0)
        let receipts = MqttTopics.receipts(alice)

        let sub = try c.subscribe([receipts], count: 2)
        let file = try c.file("tx.bin", tx.encoded)
        let pub = try MqttTool(
            MqttTool.pub,
            ["-h", "127.0.0.1", "-p", "\(c.broker.port)", "-q", "1", "-t", MqttTopics.submit(alice), "-f", file])
        XCTAssertEqual(pub.waitExit(), 0, pub.text)

        XCTAssertEqual(sub.waitForLines(2).count, 2, sub.text)
        XCTAssertEqual(sub.receipts(on: receipts), [.accepted(id: tx.id)])
        XCTAssertEqual(sub.payloads(on: receipts).first, [0] + tx.id.bytes, "status byte, then the 32-byte id")
        XCTAssertEqual(c.node.pendingCount, 1)
        XCTAssertEqual(try bridge.inbox.entries().map(\.id), [tx.id], "durable before it was acknowledged")

        let block = try c.produceBlock()
        XCTAssertEqual(sub.waitExit(), 0, "exits after probe + accepted + final: \(sub.text)")
        let messages = sub.receipts(on: receipts)
        XCTAssertEqual(messages.count, 2)
        guard case .final(let receipt, let height, let position) = messages.last else {
            return XCTFail("no final receipt: \(sub.text)")
        }
        XCTAssertEqual(receipt.transactionID, tx.id)
        XCTAssertEqual(receipt.status, .success)
        XCTAssertEqual(height, block.block.header.height)
        XCTAssertEqual(position, 0)
        guard case .included(let h, _, let stored) = try c.node.status(of: tx.id) else {
            return XCTFail("the chain does not have the transfer")
        }
        XCTAssertEqual(h, height)
        XCTAssertEqual(stored, receipt, "the device got exactly the committed receipt")
        XCTAssertEqual(c.node.account(bob).state.balance, bobBefore + 12_345)
        try mqttWaitUntil("inbox emptied") { try bridge.inbox.entries().isEmpty }
    }

    func testLateSubscriberGetsTheRetainedHead() throws {
        let c = try MqttTestChain()
        chain = c
        let bridge = try c.startBridge()
        try c.produceBlock()
        let header = try c.produceBlock().block.header
        bridge.headChanged(header)
        try mqttWaitUntil("head published") { bridge.stats.headsPublished >= 2 }
        // A stale head announced late must not replace the retained newer one.
        bridge.headChanged(try XCTUnwrap(c.node.block(at: 1)).finalized.block.header)
        // Published and acknowledged before this subscriber exists: only retention can deliver it.
        usleep(300_000)
        let sub = try MqttTool(
            MqttTool.sub,
            ["-h", "127.0.0.1", "-p", "\(c.broker.port)", "-t", MqttTopics.head, "-C", "1", "-F", "%r %t %x"])
        XCTAssertEqual(sub.waitExit(), 0, sub.text)
        let line = try XCTUnwrap(sub.lines.first)
        XCTAssertTrue(line.hasPrefix("1 \(MqttTopics.head) "), "retained flag set: \(line)")
        let bytes = try Hex.decode(String(line.split(separator: " ")[2]))
        XCTAssertEqual(bytes, c.node.head.encoded)
        XCTAssertEqual(try BlockHeader(decoding: bytes).height, 2)
    }

    func testCommandsReachTheDeviceTopic() throws {
        let c = try MqttTestChain()
        chain = c
        let bridge = try c.startBridge()
        let device = MqttTestChain.address(MqttTestChain.key(40))
        let topic = MqttTopics.command(device)
        let sub = try c.subscribe([topic], count: 2)
        try bridge.sendCommand(device: device, payload: [0x01, 0x00, 0xFF])
        try bridge.sendCommand(device: device, payload: Array("on".utf8))
        XCTAssertEqual(sub.waitExit(), 0, sub.text)
        XCTAssertEqual(sub.payloads(on: topic), [[0x01, 0x00, 0xFF], Array("on".utf8)])
        XCTAssertEqual(bridge.stats.commandsSent, 2)
    }
}
