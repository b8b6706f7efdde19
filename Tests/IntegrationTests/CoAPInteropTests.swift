import AmarsCodec
import Chain
import DeviceProtocol
import Foundation
import GatewayTestSupport
import Ledger
import XCTest

@testable import DeviceGateway

/// Our server against libcoap's own client, and our codec against libcoap's bytes in both directions.
final class CoAPInteropTests: XCTestCase {
    static let client = "/usr/bin/coap-client-gnutls"

    struct Run {
        var status: Int32
        var output: [UInt8]
        var log: String
    }

    /// Runs coap-client with a 10 s break (-B) and returns what it wrote with `-o` plus its stderr/stdout text.
    func coapClient(_ arguments: [String], dir: URL) throws -> Run {
        try Self.coapClient(arguments, dir: dir)
    }

    static func coapClient(_ arguments: [String], dir: URL) throws -> Run {
        // make test installs libcoap3-bin; without it this interop test must fail, not quietly skip.
        guard FileManager.default.isExecutableFile(atPath: Self.client) else {
            throw InteropSetupError(message: "\(Self.client) missing: install libcoap3-bin (scripts/install-deps.sh)")
        }
        let out = dir.appendingPathComponent("out-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.client)
        process.arguments = ["-B", "10", "-o", out.path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = (try? Data(contentsOf: out)).map { [UInt8]($0) } ?? []
        return Run(status: process.terminationStatus, output: output, log: String(decoding: text, as: UTF8.self))
    }

    func testCoapClientGetsTheHead() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        try f.produceBlock()
        try f.produceBlock()
        let run = try coapClient(["-m", "get", "coap://127.0.0.1:\(f.port)/v1/head"], dir: f.dir)
        XCTAssertEqual(run.status, 0, run.log)
        let payload = try HeaderPayload(decoding: run.output)
        XCTAssertEqual(payload, f.headPayload)
        XCTAssertEqual(payload.header.height, 2)
    }

    func testCoapClientFetchesCheckpointsBlockwise() throws {
        let f = try CoAPFixture(epochLength: 2)
        defer { f.close() }
        for _ in 0..<16 { try f.produceBlock() }
        let expected = CheckpointsPayload(try f.node.checkpoints(from: 0, limit: 64)).encoded
        XCTAssertGreaterThan(expected.count, 2 * 1024, "the test needs a payload of several blocks")
        XCTAssertEqual(try CheckpointsPayload(decoding: expected).checkpoints.count, 8)

        let run = try coapClient(
            ["-m", "get", "coap://127.0.0.1:\(f.port)/v1/checkpoints?from=0&limit=64"], dir: f.dir)
        XCTAssertEqual(run.status, 0, run.log)
        XCTAssertEqual(run.output, expected)

        // The same through our codec: the first answer is block 0 of several, with Size2 and an ETag.
        let socket = try CoAPTestSocket()
        let first = try XCTUnwrap(
            socket.exchange(
                DeviceRequests.get(DeviceResources.checkpoints, query: ["from=0", "limit=64"]), port: f.port))
        let block2 = try BlockOption(option: XCTUnwrap(first.option(.block2)))
        XCTAssertEqual(block2.number, 0)
        XCTAssertTrue(block2.more)
        XCTAssertLessThanOrEqual(first.payload.count, 1024)
        XCTAssertEqual(first.uintOption(.size2), UInt32(expected.count))
        XCTAssertNotNil(first.option(.eTag))
        XCTAssertEqual(first.payload, Array(expected.prefix(block2.size)))
    }

    func testCoapClientPostsATransactionAndGetsItsID() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        let tx = f.transfer(from: f.alice, nonce: 0)
        let file = f.dir.appendingPathComponent("tx.bin")
        try Data(tx.encoded).write(to: file)
        let run = try coapClient(
            ["-m", "post", "-t", "42", "-f", file.path, "coap://127.0.0.1:\(f.port)/v1/tx"], dir: f.dir)
        XCTAssertEqual(run.status, 0, run.log)
        XCTAssertEqual(run.output, tx.id.bytes)
        XCTAssertEqual(f.node.pendingCount, 1)

        // Posting it again is refused with the refusal's code as the diagnostic.
        let again = try coapClient(
            ["-m", "post", "-t", "42", "-f", file.path, "coap://127.0.0.1:\(f.port)/v1/tx"], dir: f.dir)
        XCTAssertTrue(again.log.contains("4.00"), again.log)
        XCTAssertTrue((again.log + String(decoding: again.output, as: UTF8.self)).contains("alreadyKnown"), again.log)

        // The receipt: 4.04 while pending, the receipt once final.
        let id = Hex.encode(tx.id.bytes)
        let pending = try coapClient(["coap://127.0.0.1:\(f.port)/v1/receipt?id=\(id)"], dir: f.dir)
        XCTAssertTrue(pending.log.contains("4.04"), pending.log)
        try f.produceBlock()
        let final = try coapClient(["coap://127.0.0.1:\(f.port)/v1/receipt?id=\(id)"], dir: f.dir)
        let receipt = try ReceiptPayload(decoding: final.output)
        XCTAssertEqual(receipt.height, 1)
        XCTAssertEqual(receipt.receipt.transactionID, tx.id)
    }

    func testCoapClientBlockwiseUploadOverTheCapGets413() throws {
        let f = try CoAPFixture()
        defer { f.close() }
        let file = f.dir.appendingPathComponent("big.bin")
        try Data(repeating: 0x42, count: 10_000).write(to: file)
        let run = try coapClient(
            ["-m", "post", "-t", "42", "-b", "1024", "-f", file.path, "coap://127.0.0.1:\(f.port)/v1/tx"],
            dir: f.dir)
        XCTAssertTrue(run.log.contains("4.13"), run.log)
        XCTAssertEqual(f.node.pendingCount, 0)
    }

    /// DTLS with per-device pre-shared keys, against coap-client-gnutls `-u identity -k key`.
    func testDTLSPSKWithPerDeviceKeys() throws {
        let keys = ["lock-17": Array("lock-17-secret".utf8), "bulb-3": Array("bulb-3-secret".utf8)]
        // One submit per device: over DTLS the device is its PSK identity, not its (shared) source address.
        let f = try CoAPFixture(limits: .init(submits: .init(perSecond: 0.001, burst: 1)), dtlsKeys: keys)
        defer { f.close() }
        try f.produceBlock()
        let dtlsPort = try XCTUnwrap(f.server.dtls?.port)
        let url = "coaps://127.0.0.1:\(dtlsPort)/v1/head"
        let lock = try coapClient(["-u", "lock-17", "-k", "lock-17-secret", url], dir: f.dir)
        XCTAssertEqual(lock.status, 0, lock.log)
        XCTAssertEqual(try HeaderPayload(decoding: lock.output), f.headPayload)
        let bulb = try coapClient(["-u", "bulb-3", "-k", "bulb-3-secret", url], dir: f.dir)
        XCTAssertEqual(try HeaderPayload(decoding: bulb.output), f.headPayload)

        // A device with another device's key, an unknown identity, or no DTLS at all gets nothing.
        for arguments in [["-u", "bulb-3", "-k", "lock-17-secret"], ["-u", "intruder", "-k", "lock-17-secret"]] {
            let refused = try coapClient(["-B", "3"] + arguments + [url], dir: f.dir)
            XCTAssertEqual(refused.output, [], "\(arguments): \(refused.log)")
        }
        let plain = try coapClient(["-B", "3", "coap://127.0.0.1:\(dtlsPort)/v1/head"], dir: f.dir)
        XCTAssertEqual(plain.output, [])

        // A transaction over DTLS.
        let tx = f.transfer(from: f.alice, nonce: 0)
        let file = f.dir.appendingPathComponent("tx.bin")
        try Data(tx.encoded).write(to: file)
        let post = try coapClient(
            [
                "-u", "lock-17", "-k", "lock-17-secret", "-m", "post", "-t", "42", "-f", file.path,
                "coaps://127.0.0.1:\(dtlsPort)/v1/tx",
            ], dir: f.dir)
        XCTAssertEqual(post.output, tx.id.bytes, post.log)
        XCTAssertEqual(f.node.pendingCount, 1)

        // lock-17 has used its submit; bulb-3, from the same address, has not.
        func submit(_ tx: SignedTransaction, as identity: String) throws -> Run {
            try Data(tx.encoded).write(to: file)
            return try coapClient(
                [
                    "-u", identity, "-k", identity + "-secret", "-m", "post", "-t", "42", "-f", file.path,
                    "coaps://127.0.0.1:\(dtlsPort)/v1/tx",
                ], dir: f.dir)
        }
        let limited = try submit(f.transfer(from: f.alice, nonce: 1), as: "lock-17")
        XCTAssertTrue(limited.log.contains("4.29"), limited.log)
        let bobTx = f.transfer(from: f.bob, nonce: 0)
        XCTAssertEqual(try submit(bobTx, as: "bulb-3").output, bobTx.id.bytes)
        XCTAssertEqual(f.node.pendingCount, 2)
    }

    /// libcoap's request bytes decode with our codec, and libcoap accepts the response our codec builds.
    func testOurCodecAndLibcoapUnderstandEachOther() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-coap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = try CoAPTestSocket(timeoutMilliseconds: 5000)
        let result = LockedRun()
        let url = "coap://127.0.0.1:\(fake.localPort)/v1/checkpoints?from=3&limit=2"
        let thread = Thread {
            result.set(try? CoAPInteropTests.coapClient([url], dir: dir))
        }
        thread.start()
        let (bytes, clientPort) = try XCTUnwrap(fake.receive(), "coap-client sent nothing")
        let request = try CoAPMessage.decode(bytes)
        XCTAssertEqual(request.code, .get)
        XCTAssertEqual(request.type, .confirmable)
        XCTAssertTrue(request.uriPathMatches(DeviceResources.checkpoints))
        XCTAssertEqual(request.uriQuery, [Array("from=3".utf8), Array("limit=2".utf8)])
        XCTAssertEqual(request.encode(), bytes, "our re-encoding is byte-identical")

        var reply = request.acknowledgement(code: .content, payload: Array("hello from our codec".utf8))
        reply.contentFormat = ContentFormat.textPlain
        fake.send(reply.encode(), toPort: clientPort)
        let deadline = Date().addingTimeInterval(15)
        while result.get() == nil && Date() < deadline { usleep(20_000) }
        let run = try XCTUnwrap(result.get(), "coap-client did not finish")
        XCTAssertEqual(run.status, 0, run.log)
        XCTAssertEqual(String(decoding: run.output, as: UTF8.self), "hello from our codec")
    }
}

/// The coap-client result handed from its thread to the test.
private final class LockedRun: @unchecked Sendable {
    private let lock = NSLock()
    private var value: CoAPInteropTests.Run?
    func set(_ v: CoAPInteropTests.Run?) {
        lock.lock()
        value = v
        lock.unlock()
    }
    func get() -> CoAPInteropTests.Run? {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

struct InteropSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
