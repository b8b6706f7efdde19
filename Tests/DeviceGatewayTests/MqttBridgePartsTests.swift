import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Chain
import DeviceProtocol
import Foundation
import Ledger
import XCTest

@testable import DeviceGateway

/// The MQTT bridge's parts that need no broker: topics, the receipt message codec, refusal codes, backoff, the
/// rate limiter, the inbox. The bridge against a real broker is `MqttBridgeTests` in IntegrationTests.
final class MqttBridgePartsTests: XCTestCase {
    /// A device address from a small number.
    private static func device(_ n: UInt64) -> Address {
        Address(publicKey: try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: n)).xOnlyPublicKey)
    }

    // MARK: topics and messages

    func testSubmitTopicParsing() throws {
        let device = Self.device(9)
        XCTAssertEqual(try MqttTopics.parseSubmit(MqttTopics.submit(device)).get(), device)
        XCTAssertEqual(MqttTopics.submit(device), "amars/v1/tx/" + device.bech32)
        XCTAssertEqual(MqttTopics.receipts(device), "amars/v1/receipts/" + device.bech32)
        XCTAssertEqual(MqttTopics.command(device), "amars/v1/cmd/" + device.bech32)
        let otherHRP = Bech32m.encode(hrp: "bc", bytes: device.raw.bytes)
        let flipped = String(device.bech32.dropLast()) + (device.bech32.hasSuffix("q") ? "p" : "q")
        let cases: [(String, MqttDropReason)] = [
            ("", .badTopic), ("amars/v1/tx/", .badTopic), ("amars/v1/tx", .badTopic),
            ("amars/v1/rx/" + device.bech32, .badTopic), ("amars/v1/tx/\(device.bech32)/x", .badTopic),
            ("amars/v1/tx/" + String(repeating: "a", count: 200), .badTopic),
            ("amars/v1/tx/notanaddress", .badDevice), ("amars/v1/tx/" + otherHRP, .badDevice),
            ("amars/v1/tx/" + flipped, .badDevice), ("amars/v1/tx/\u{0}\u{FFFF}", .badDevice),
        ]
        for (topic, reason) in cases {
            switch MqttTopics.parseSubmit(topic) {
            case .success: XCTFail("accepted \(topic)")
            case .failure(let r): XCTAssertEqual(r, reason, topic)
            }
        }
    }

    func testReceiptMessagesRoundTripAndRejectGarbage() throws {
        let id = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        let messages: [MqttReceiptMessage] = [
            .accepted(id: id), .refused(id: .zero, code: "rateLimited"),
            .final(
                receipt: Receipt(transactionID: id, status: .success, unitsUsed: 150, feePaid: 1650), height: 12,
                position: 3),
        ]
        for m in messages {
            XCTAssertEqual(try MqttReceiptMessage(decoding: m.encoded), m)
            XCTAssertEqual(Array(m.encoded[1..<33]), m.id.bytes, "the id sits at offset 1 in every kind")
        }
        XCTAssertEqual(MqttReceiptMessage.accepted(id: id).encoded.count, 33)
        XCTAssertEqual(
            MqttReceiptMessage.refused(id: id, code: "nonceGap").encoded, [1] + id.bytes + Array("nonceGap".utf8))
        var rng = SplitMix64(seed: 99)
        for _ in 0..<5000 {
            let bytes = (0..<rng.below(80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if let m = try? MqttReceiptMessage(decoding: bytes) {
                XCTAssertEqual(m.encoded, bytes, "decoding is canonical")
            }
        }
        XCTAssertThrowsError(try MqttReceiptMessage(decoding: [3] + id.bytes))
        XCTAssertThrowsError(try MqttReceiptMessage(decoding: [0] + id.bytes + [0]))
        XCTAssertThrowsError(try MqttReceiptMessage(decoding: [1] + id.bytes + [0x0A]))
    }

    func testRefusalCodesMatchTheHTTPNames() {
        XCTAssertEqual(MqttRefusalCode.code(for: .nonceGap(expected: 1, got: 3)), "nonceGap")
        XCTAssertEqual(MqttRefusalCode.code(for: .badSignature), "badSignature")
        XCTAssertEqual(MqttRefusalCode.code(for: .staking(.nameTaken)), "nameTaken")
    }

    // MARK: backoff and rate limiting

    func testBackoffGrowsToItsCapWithBoundedJitterAndResets() {
        var b = MqttBackoff(policy: .init(initialMillis: 100, maxMillis: 5_000))
        var rng = SplitMix64(seed: 1)
        var ceilings: [UInt64] = []
        for _ in 0..<70 {
            let top = b.ceiling
            let d = b.next(using: &rng)
            XCTAssertGreaterThanOrEqual(d, top / 2)
            XCTAssertLessThanOrEqual(d, top)
            ceilings.append(top)
        }
        XCTAssertEqual(Array(ceilings.prefix(7)), [100, 200, 400, 800, 1600, 3200, 5000])
        XCTAssertEqual(ceilings.last, 5000, "no overflow after many attempts")
        b.reset()
        XCTAssertEqual(b.ceiling, 100)
        // Same seed, same delays; another seed spreads them.
        func run(_ seed: UInt64) -> [UInt64] {
            var b = MqttBackoff(policy: .init(initialMillis: 100, maxMillis: 5_000))
            var r = SplitMix64(seed: seed)
            return (0..<10).map { _ in b.next(using: &r) }
        }
        XCTAssertEqual(run(5), run(5))
        XCTAssertNotEqual(run(5), run(6))
    }

    func testTokenBucketPerDeviceOnAnInjectedClock() {
        var limiter = MqttRateLimiter(limits: .init(burst: 3, perSecond: 2, maxDevices: 2))
        let a = Self.device(10)
        let b = Self.device(11)
        var t: UInt64 = 5_000
        XCTAssertEqual((0..<5).map { _ in limiter.allow(a, nowMillis: t) }, [true, true, true, false, false])
        XCTAssertTrue(limiter.allow(b, nowMillis: t), "another device has its own bucket")
        t += 499
        XCTAssertFalse(limiter.allow(a, nowMillis: t), "just under one token refilled")
        t += 1
        XCTAssertTrue(limiter.allow(a, nowMillis: t))
        XCTAssertFalse(limiter.allow(a, nowMillis: t))
        t += 60_000
        XCTAssertEqual(
            (0..<4).map { _ in limiter.allow(a, nowMillis: t) }, [true, true, true, false], "capped at burst")
        XCTAssertFalse(limiter.allow(a, nowMillis: t - 10_000), "a clock going back grants nothing")
        // A third device exceeds maxDevices: full buckets are evicted, the drained one is kept.
        let c = Self.device(12)
        XCTAssertTrue(limiter.allow(c, nowMillis: t))
        XCTAssertFalse(limiter.allow(a, nowMillis: t), "a's empty bucket survived the eviction")
    }

    // MARK: inbox

    func testInboxKeepsArrivalOrderAcrossReopenAndIgnoresDuplicates() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-inbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("inbox.sqlite").path
        let device = Self.device(5)
        let ids = (1...4).map { Bytes32(w0: UInt64($0), w1: 0, w2: 0, w3: 0) }
        do {
            let inbox = try MqttInbox(path: path)
            for (i, id) in ids.enumerated().reversed() { try inbox.add(id: id, device: device, raw: [UInt8(i), 1]) }
            try inbox.add(id: ids[0], device: device, raw: [99])
            try inbox.remove(id: ids[2])
            try inbox.remove(id: Bytes32(w0: 77, w1: 0, w2: 0, w3: 0))
        }
        let reopened = try MqttInbox(path: path)
        let entries = try reopened.entries()
        XCTAssertEqual(entries.map(\.id), [ids[3], ids[1], ids[0]])
        XCTAssertEqual(entries.last?.raw, [0, 1], "the first copy wins")
        XCTAssertEqual(Set(entries.map(\.device)), [device])
        XCTAssertThrowsError(try MqttInbox(path: dir.appendingPathComponent("missing/dir/inbox.sqlite").path))
    }
}
