import AmarsCodec
import AmarsCrypto
import Chain
import DeviceProtocol
import Foundation
import Ledger
import XCTest

@testable import DeviceGateway

/// The broker a gateway runs (BrokerProcess: `amarsd run --spawn-broker`, `amarsd broker` for `make devnet`)
/// refuses a stranger what only the gateway may do, checked with mosquitto's own tools: an anonymous client
/// cannot retain a head or a checkpoint, answer on a device's receipts, command a device, or read every
/// device's submissions, and a wrong password for the gateway's login is refused; what a device needs (submit,
/// then hear accepted on its receipts) still works anonymously.
final class MqttLockdownTests: XCTestCase {
    var chain: MqttTestChain?

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    func anonymous(_ tool: String, _ c: MqttTestChain, _ arguments: [String]) throws -> MqttTool {
        try MqttTool(tool, ["-h", "127.0.0.1", "-p", "\(c.broker.port)", "-q", "1"] + arguments)
    }

    func testStrangersCannotPublishTheChainsTopicsNorReadSubmissions() throws {
        let c = try MqttTestChain(broker: .mosquitto)
        chain = c
        try c.startBridge()
        try c.produceBlock()
        let alice = MqttTestChain.address(c.alice)
        let bogus: [UInt8] = Array("forged by a stranger".utf8)
        let watched = [
            MqttTopics.head, MqttTopics.checkpoint(epoch: 0), MqttTopics.command(alice), MqttTopics.receipts(alice),
        ]
        // The gateway's own view (its login reads everything) sees whatever lands on those topics.
        let watcher = try c.subscribe(watched)
        // A stranger listening to every device's submissions.
        let snoop = try anonymous(MqttTool.sub, c, ["-F", "%t %x", "-t", "amars/v1/tx/+"])
        for topic in watched {
            try c.publish(topic: topic, payload: bogus, retain: true, asGateway: false)
        }
        // A device (anonymous) submits; it hears "accepted" on its receipts, which it may read.
        let tx = c.transfer(from: c.alice, to: MqttTestChain.address(c.bob), amount: 5, nonce: 0)
        let receipts = try anonymous(MqttTool.sub, c, ["-F", "%t %x", "-t", MqttTopics.receipts(alice), "-C", "1"])
        usleep(300_000)
        try c.publish(topic: MqttTopics.submit(alice), payload: tx.encoded, asGateway: false)
        XCTAssertEqual(receipts.waitExit(), 0, receipts.text)
        XCTAssertTrue(receipts.text.contains(Hex.encode([0] + tx.id.bytes)), "accepted reached the device")
        XCTAssertEqual(c.node.pendingCount, 1, "the anonymous submission reached the chain")

        // The accepted receipt is on the watcher too: everything published before it has been delivered.
        XCTAssertFalse(watcher.waitForLines(2).isEmpty)
        usleep(300_000)
        XCTAssertFalse(watcher.text.contains(Hex.encode(bogus)), "a stranger's message got through:\n\(watcher.text)")
        XCTAssertFalse(snoop.text.contains("amars/v1/tx/"), "a stranger read a submission:\n\(snoop.text)")
        // The retained head a new device gets is the gateway's.
        let fresh = try anonymous(MqttTool.sub, c, ["-F", "%x", "-t", MqttTopics.head, "-C", "1"])
        XCTAssertEqual(fresh.waitExit(), 0, fresh.text)
        let retained = try BlockHeader(decoding: try Hex.decode(fresh.lines.first ?? ""))
        XCTAssertEqual(retained, try XCTUnwrap(c.node.block(at: c.node.head.height)).finalized.block.header)
    }

    func testTheGatewaysLoginWithAWrongPasswordIsRefused() throws {
        let c = try MqttTestChain(broker: .mosquitto)
        chain = c
        let wrong = try anonymous(
            MqttTool.pub, c,
            ["-u", MqttCredentials.gatewayUsername, "-P", "not-the-password", "-t", MqttTopics.head, "-m", "x"])
        XCTAssertNotEqual(wrong.waitExit(), 0, wrong.text)
        let login = try c.broker.gatewayCredentials
        let mosquitto = try XCTUnwrap(c.broker as? BrokerProcess)
        XCTAssertEqual(try MqttCredentials.load(path: mosquitto.credentialsPath), login)
        let mode = try FileManager.default.attributesOfItem(atPath: mosquitto.credentialsPath)[.posixPermissions]
        XCTAssertEqual(mode as? Int, 0o600, "the login is readable by its owner only")
        let right = try anonymous(
            MqttTool.pub, c, ["-u", login.username, "-P", login.password, "-t", "amars/v1/x", "-m", "x"])
        XCTAssertEqual(right.waitExit(), 0, right.text)
    }
}
