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
import Logging
import XCTest

@testable import DeviceGateway

#if canImport(Glibc)
    import Glibc
#endif

/// A device that has only the network, against a real gateway: the MQTT bridge with a spawned mosquitto and
/// the CoAP server over one in-process chain (the same device over CoAP alone is `DeviceEndToEndTests` in
/// DeviceGatewayTests). The device trusts the genesis file and nothing else; every check is the light client's.
final class DeviceMqttEndToEndTests: XCTestCase {
    // MARK: MQTT device

    func testMQTTDeviceSubmitsHearsAcceptedThenFinalAndVerifiesOverCoAP() throws {
        let f = try EndToEndDevice.fundedChain(height: 6)
        defer { f.close() }
        let broker = try BrokerKind.current.make(directory: f.dir.appendingPathComponent("broker"))
        try broker.start()
        defer { broker.stop(signal: SIGKILL) }
        var logger = Logger(label: "device-e2e")
        logger.logLevel = .critical
        let bridge = try MqttBridge(
            node: f.node,
            configuration: .init(
                port: broker.port, clientID: "amars-gateway-e2e", inboxPath: f.dir.appendingPathComponent("inbox").path,
                loopTimeoutMillis: 20, credentials: try broker.gatewayCredentials),
            logger: logger)
        try bridge.start()
        defer { bridge.stop() }
        try mqttWaitUntil("bridge ready") { bridge.isReady }

        let coap = try CoAPDeviceClient(configuration: .init(host: "127.0.0.1", port: f.port, ackTimeoutMillis: 200))
        var device = try DeviceSync.anchor(
            DeviceTrustAnchor(
                genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
                epochLength: f.genesis.epochLength), source: coap)
        let account = try device.verifiedAccount(EndToEndDevice.address, source: coap)
        XCTAssertEqual(device.trusted.epoch, 1)

        let mqtt = try MqttDeviceClient(
            device: EndToEndDevice.address, configuration: .init(host: "127.0.0.1", port: broker.port), logger: logger)
        try mqtt.connect()
        defer { mqtt.disconnect() }

        // A nonce from the future is refused by the chain, and the refusal comes back on the receipts topic.
        let gap = try DeviceWallet(key: EndToEndDevice.key, nextNonce: account.state.nonce + 5).transfer(
            genesis: f.node.genesisBlockHash, to: CoAPFixture.address(f.bob), amount: 1, maxFeePerUnit: 100,
            tipPerUnit: 1)
        XCTAssertThrowsError(try mqtt.submit(gap)) { error in
            XCTAssertEqual(error as? DeviceClientError, .transactionRefused("nonceGap"))
        }

        let tx = try DeviceWallet(key: EndToEndDevice.key, nextNonce: account.state.nonce).transfer(
            genesis: f.node.genesisBlockHash, to: CoAPFixture.address(f.bob), amount: 250_000, maxFeePerUnit: 100,
            tipPerUnit: 1)
        XCTAssertEqual(try mqtt.submit(tx), tx.id)  // returns on "accepted"
        XCTAssertEqual(f.node.pendingCount, 1)
        try f.produceBlock()  // block 7
        let final = try mqtt.waitForFinal(tx.id, timeoutMillis: 15_000)
        XCTAssertEqual(final.height, 7)
        XCTAssertEqual(final.receipt.status, .success)
        XCTAssertNotNil(mqtt.announcedHead)

        // The announcement is the gateway's word; the proof over CoAP is the device's own check.
        let inclusion = try device.verifiedInclusion(tx.id, source: coap)
        XCTAssertEqual(inclusion.header.height, final.height)
        XCTAssertEqual(inclusion.position, final.position)
        XCTAssertEqual(inclusion.receipt, final.receipt)
        let after = try device.verifiedAccount(EndToEndDevice.address, source: coap)
        XCTAssertEqual(after.state.nonce, account.state.nonce + 1)
    }

    /// A PUBACK is one hop's receipt. With the gateway's bridge away, a broker that does not persist (mosquitto
    /// with its autosave only) acknowledges a device's submit and crashes: the message is gone, and so is a
    /// control submit published once, the same way, by `mosquitto_pub`. The device, hearing no "accepted",
    /// connects again once the broker is back and publishes the same bytes again; the bridge returns, and the
    /// device's transfer reaches the chain, once. (Always mosquitto: RabbitMQ keeps such messages.)
    func testASubmitABrokerLostInACrashIsPublishedAgainAndArrives() throws {
        let f = try EndToEndDevice.fundedChain(height: 3)
        defer { f.close() }
        let broker = try BrokerProcess(
            directory: f.dir.appendingPathComponent("volatile-broker"), saveOnEveryChange: false)
        try broker.start()
        defer { broker.stop(signal: SIGKILL) }
        var logger = Logger(label: "device-e2e")
        logger.logLevel = .critical
        let login = try broker.gatewayCredentials
        func bridge() throws -> MqttBridge {
            try MqttBridge(
                node: f.node,
                configuration: .init(
                    port: broker.port, clientID: "amars-gateway-volatile",
                    inboxPath: f.dir.appendingPathComponent("inbox-volatile").path, loopTimeoutMillis: 20,
                    credentials: login),
                logger: logger)
        }
        // The bridge's session exists in the broker, and the bridge is away: submits queue for it.
        let first = try bridge()
        try first.start()
        try mqttWaitUntil("bridge ready") { first.isReady }
        first.stop()

        let wallet = DeviceWallet(
            key: EndToEndDevice.key, nextNonce: f.node.account(EndToEndDevice.address).state.nonce)
        let tx = try wallet.transfer(
            genesis: f.node.genesisBlockHash, to: CoAPFixture.address(f.bob), amount: 1_000, maxFeePerUnit: 100,
            tipPerUnit: 1)
        let control = f.transfer(from: f.alice, nonce: f.node.account(CoAPFixture.address(f.alice)).state.nonce)
        let controlFile = f.dir.appendingPathComponent("control.bin")
        try Data(control.encoded).write(to: controlFile)
        let pub = try MqttTool(
            MqttTool.pub,
            [
                "-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t",
                MqttTopics.submit(CoAPFixture.address(f.alice)), "-f", controlFile.path,
            ])
        XCTAssertEqual(pub.waitExit(timeout: 10), 0, "the broker acknowledged the control: \(pub.text)")

        // While the device waits for "accepted": the broker crashes and comes back empty, then the bridge returns.
        let later = try bridge()
        defer { later.stop() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.6) {
            broker.stop(signal: SIGKILL)
            try? broker.start()
            DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) { try? later.start() }
        }
        let mqtt = try MqttDeviceClient(
            device: EndToEndDevice.address, configuration: .init(host: "127.0.0.1", port: broker.port), logger: logger)
        defer { mqtt.disconnect() }
        XCTAssertEqual(try mqtt.submit(tx, timeoutMillis: 30_000, resendMillis: 1_000), tx.id)
        XCTAssertGreaterThanOrEqual(mqtt.publishes, 2, "accepted only after it was published again")
        XCTAssertEqual(f.node.pendingCount, 1, "the device's transfer, once")
        guard case .pending? = try? f.node.status(of: tx.id) else { return XCTFail("the transfer is not pending") }
        usleep(500_000)
        guard case .unknown? = try? f.node.status(of: control.id) else {
            return XCTFail("the control should have been lost with the broker")
        }
    }

    // MARK: MQTT-only device: the checkpoint chain from retained messages

    /// A device whose only link is the broker anchors in its genesis file, collects the retained checkpoints
    /// the bridge published (at start-up for the finished epochs, then as heads close epochs) and verifies
    /// every one with the light client. Junk and a forged checkpoint retained on the next epoch's topic are
    /// refused without moving trust.
    func testMQTTOnlyDeviceVerifiesTheRetainedCheckpointChain() throws {
        // Epochs 0 and 1 closed (blocks 4, 8) before the bridge starts.
        let f = try EndToEndDevice.fundedChain(height: 10)
        defer { f.close() }
        let broker = try BrokerKind.current.make(directory: f.dir.appendingPathComponent("broker"))
        try broker.start()
        defer { broker.stop(signal: SIGKILL) }
        var logger = Logger(label: "device-e2e")
        logger.logLevel = .critical
        let bridge = try MqttBridge(
            node: f.node,
            configuration: .init(
                port: broker.port, clientID: "amars-gateway-cp", inboxPath: f.dir.appendingPathComponent("inbox").path,
                loopTimeoutMillis: 20, credentials: try broker.gatewayCredentials),
            logger: logger)
        try bridge.start()
        defer { bridge.stop() }
        try mqttWaitUntil("start-up checkpoints published") { bridge.stats.checkpointsPublished == 2 }
        for _ in 0..<11 { try f.produceBlock() }  // height 21: blocks 12, 16, 20 close epochs 2, 3, 4
        try mqttWaitUntil("new checkpoints published") { bridge.stats.checkpointsPublished == 5 }

        // Junk retained where epoch 5's checkpoint will go (and one under a non-canonical topic).
        func retain(_ topic: String, _ payload: [UInt8]) throws {
            let file = f.dir.appendingPathComponent("retained-\(UUID().uuidString).bin")
            try Data(payload).write(to: file)
            // Only the gateway's login may retain on the chain's topics: the junk comes from an insider.
            let login = try broker.gatewayCredentials
            let args = [
                "-h", "127.0.0.1", "-p", "\(broker.port)", "-u", login.username, "-P", login.password, "-q", "1", "-r",
                "-t", topic, "-f", file.path,
            ]
            let tool = try MqttTool(MqttTool.pub, args)
            XCTAssertEqual(tool.waitExit(timeout: 10), 0, tool.text)
        }
        try retain(MqttTopics.checkpoint(epoch: 5), Array("not a checkpoint".utf8))
        try retain("amars/v1/checkpoints/007", Array("leading zeros".utf8))

        let mqtt = try MqttDeviceClient(
            device: EndToEndDevice.address, configuration: .init(host: "127.0.0.1", port: broker.port), logger: logger)
        try mqtt.connect()
        defer { mqtt.disconnect() }
        let expected = try f.node.checkpoints(from: 0, limit: 64)
        XCTAssertEqual(expected.count, 5)
        // Possibly still in flight from the bridge: the retained set is complete once the device sees all five.
        try mqttWaitUntil("retained checkpoints") { try mqtt.checkpoints(from: 0).count == 5 }
        XCTAssertEqual(try mqtt.checkpoints(from: 0), expected)
        XCTAssertEqual(try mqtt.checkpoints(from: 3, limit: 1), [expected[3]])
        XCTAssertGreaterThanOrEqual(mqtt.refusedCheckpoints, 1, "the junk on epoch 5's topic")

        // Provisioned from the genesis file alone: no header comes over MQTT.
        var device = try DeviceSync.anchor(
            DeviceTrustAnchor(
                genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
                epochLength: f.genesis.epochLength), genesisHeader: f.genesis.header)
        let source = MqttDeviceLink(client: mqtt)
        let refusedBefore = mqtt.refusedCheckpoints
        let progress = try device.sync(source: source, pageSize: 2)
        XCTAssertEqual(progress, SyncProgress(fromEpoch: 0, toEpoch: 5, checkpoints: 5, signaturesChecked: 5))
        XCTAssertEqual(device.trusted.height, 20)
        XCTAssertEqual(device.trusted.committee, f.node.committee(epoch: 5))
        XCTAssertGreaterThan(mqtt.refusedCheckpoints, refusedBefore, "the junk was refused again, not verified")
        XCTAssertThrowsError(try device.verifiedHead(source: source)) { error in
            guard case .transport(.unsupported(let why)) = error as? DeviceSyncError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("not available over MQTT"), why)
        }

        // A checkpoint that decodes but is not the chain's: epoch 4's relabelled as epoch 5's, its certificate
        // pointed at the new header (so it is well-formed) but still carrying the old header's signature.
        var forged = expected[4]
        forged.header.epoch = 5
        forged.header.height = 24
        forged.certificate = CommitCertificate(
            height: 24, round: forged.header.round, blockHash: forged.header.hash,
            signatures: forged.certificate.signatures)
        XCTAssertEqual(try Checkpoint(decoding: forged.encoded), forged)
        try retain(MqttTopics.checkpoint(epoch: 5), forged.encoded)
        let before = device.trusted
        try mqttWaitUntil("forged checkpoint retained") { try mqtt.checkpoints(from: 5) == [forged] }
        XCTAssertThrowsError(try device.sync(source: source)) { error in
            guard case .device(.rejected(_, stage: .checkpoint(epoch: 5))) = error as? DeviceSyncError else {
                return XCTFail("\(error)")
            }
        }
        XCTAssertEqual(device.trusted, before)

        // The real epoch-5 checkpoint (block 24) replaces the forgery on its topic and is accepted.
        for _ in 0..<3 { try f.produceBlock() }
        try mqttWaitUntil("epoch 5 published") { bridge.stats.checkpointsPublished == 6 }
        let real = try XCTUnwrap(f.node.checkpoints(from: 5, limit: 1).first)
        try mqttWaitUntil("real checkpoint retained") { try mqtt.checkpoints(from: 5) == [real] }
        let more = try device.sync(source: source)
        XCTAssertEqual(more.toEpoch, 6)
        XCTAssertEqual(device.trusted.height, 24)
    }
}
