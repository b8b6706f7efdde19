import AmarsClient
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The firmware's light-client loop end to end, with real processes: a single-node `amarsd run` (epochs of 5
/// blocks of 100 ms, CoAP on a free port), the sync firmware built for qemu-mps2-an386 with that genesis as its
/// trust anchor, QEMU running it with its second UART on a TCP port, and `amarsd bridge` relaying the UART's
/// SLIP-framed CoAP to the node (`make -C Boards sync`). The firmware exits 0 only if it anchored at genesis,
/// verified every checkpoint and then the head, and then paid: its key is provisioned at build time
/// (`DEVICE_KEY=`, test data), its account funded by a transfer from a genesis key before it starts, and it
/// proves its balance, submits a signed transfer, waits for the receipt and proves the inclusion.
///
/// Nothing is skipped: without QEMU or the firmware toolchain (`make -C Boards deps`, which `make test` runs)
/// the test fails and says what is missing.
final class FirmwareSyncTests: XCTestCase {
    var dir: URL!
    var daemon: Process?

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-fwsync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let daemon, daemon.isRunning {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func testSyncFirmwareFollowsCheckpointsAndVerifiesHead() throws {
        try requireToolchain()
        let created = try Harness.amars([
            "genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "5",
        ])
        XCTAssertEqual(created.status, 0, created.error)
        for name in ["device", "recipient"] {
            let made = try Harness.amars(["key", "new", "--out", path("keys/\(name).key")])
            XCTAssertEqual(made.status, 0, made.error)
        }
        let device = try address(of: path("keys/device.key"))
        let recipient = try address(of: path("keys/recipient.key"))
        let payAmount: UInt64 = 1_250_000
        let hostBuild = Harness.binDirectory.path
        let make = [
            "-C", Self.root.appendingPathComponent("Boards").path, "BOARD=qemu-mps2-an386",
            "GENESIS=\(path("genesis.json"))", "HOST_BUILD=\(hostBuild)", "DEVICE_KEY=\(path("keys/device.key"))",
            "PAY_TO=\(recipient)", "PAY_AMOUNT=\(payAmount)",
        ]
        // Build first (minutes on a cold scratch), so the chain the firmware meets is a few epochs long.
        let build = try run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }

        let coapPort = Self.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let httpPort = Self.freePort(type: Int32(SOCK_STREAM.rawValue))
        try startNode(coapPort: coapPort, httpPort: httpPort)
        let node = "http://127.0.0.1:\(httpPort)"
        // Fund the device from a genesis allocation (final before the firmware starts).
        let funded = try Harness.amars([
            "transfer", "--key", path("keys/app-user-incentive.key"), "--to", device, "--amount", "10", "--wait",
            "--node", node,
        ])
        XCTAssertEqual(funded.status, 0, funded.output + funded.error)
        XCTAssertEqual(try balance(node, device), 10_000_000)
        let recipientBefore = try balance(node, recipient)
        Thread.sleep(forTimeInterval: 2.5)  // 25 more blocks: five epochs of five

        let serialPort = Self.freePort(type: Int32(SOCK_STREAM.rawValue))
        let sync = try run(
            "/usr/bin/env",
            ["make"] + make + ["sync", "GATEWAY=coap://127.0.0.1:\(coapPort)", "SYNC_PORT=\(serialPort)"],
            timeout: 900)
        let log = sync.output
        XCTAssertEqual(sync.status, 0, "sync firmware failed:\n\(log.suffix(4000))")
        XCTAssertTrue(log.contains("firmware exit status 0"), log)
        XCTAssertTrue(log.contains("sync: anchored at genesis"), log)
        for epoch in 0..<3 {
            XCTAssertTrue(log.contains("sync: checkpoint of epoch \(epoch) verified"), "epoch \(epoch):\n\(log)")
        }
        XCTAssertTrue(log.contains("sync: PASS"), log)
        guard let range = log.range(of: #"synced epochs 0 to (\d+)"#, options: .regularExpression),
            let last = Int(log[range].split(separator: " ").last ?? "")
        else { return XCTFail("no 'synced epochs' line:\n\(log)") }
        XCTAssertGreaterThanOrEqual(last, 3, log)
        XCTAssertTrue(log.contains("sync: head at height"), log)

        // The payment: each step printed, the final line, and the node agrees.
        XCTAssertTrue(log.contains("pay: account balance 10000000, nonce 0 verified"), log)
        XCTAssertTrue(log.contains("pay: submitted"), log)
        XCTAssertTrue(log.contains("pay: receipt after"), log)
        XCTAssertTrue(log.contains("verified against the transactions root of block"), log)
        let paid = #"pay: paid \#(payAmount) units to \#(recipient), nonce 0, "#
            + #"final at height \d+, inclusion verified"#
        XCTAssertNotNil(log.range(of: paid, options: .regularExpression), log)
        XCTAssertTrue(log.contains("pay: PASS"), log)
        XCTAssertEqual(try balance(node, recipient), recipientBefore + payAmount)
    }

    func address(of keyFile: String) throws -> String {
        let r = try Harness.amars(["address", "--key", keyFile])
        guard r.status == 0 else { throw Harness.StartFailure(description: "amars address: \(r.error)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Balance in base units from the node's HTTP API (`/v1/accounts/{address}`).
    func balance(_ node: String, _ address: String) throws -> UInt64 {
        let object = try Harness.json(try HTTPClient(baseURL: node, timeoutSeconds: 10), "/v1/accounts/\(address)")
        guard let value = object["balance"], let units = UInt64("\(value)") else {
            throw Harness.StartFailure(description: "no balance for \(address): \(object)")
        }
        return units
    }

    /// QEMU, the cross toolchain and picolibc are test dependencies (`make -C Boards deps`): fail, not skip.
    func requireToolchain() throws {
        var missing: [String] = []
        for tool in ["qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-objcopy", "make"] {
            let found = try run("/usr/bin/env", ["sh", "-c", "command -v \(tool)"], timeout: 30)
            if found.status != 0 { missing.append(tool) }
        }
        if !FileManager.default.fileExists(atPath: "/usr/lib/picolibc/arm-none-eabi/lib/thumb/v7e-m/nofp/libc.a") {
            missing.append("picolibc-arm-none-eabi")
        }
        if !missing.isEmpty {
            // A thrown error fails the test: a missing toolchain must not pass unnoticed.
            throw Harness.StartFailure(
                description: "firmware sync test needs \(missing.joined(separator: ", ")): run `make -C Boards deps`")
        }
    }

    func startNode(coapPort: Int, httpPort: Int) throws {
        let p = Process()
        p.executableURL = Harness.binDirectory.appendingPathComponent("amarsd")
        p.arguments = [
            "run", "--data", dir.path, "--http-port", String(httpPort), "--coap-port", String(coapPort),
            "--block-interval", "100",
            "--log-level", "error",
        ]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        daemon = p
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !text.contains("CoAP") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard text.contains("coap://127.0.0.1:\(coapPort)") else {
            throw Harness.StartFailure(description: "amarsd did not start with CoAP on \(coapPort): \(text)")
        }
    }

    struct Output {
        var status: Int32
        var output: String
    }

    /// Runs a command with stdout and stderr merged; terminates it after `timeout` seconds.
    func run(_ executable: String, _ arguments: [String], timeout: TimeInterval) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let timer = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        timer.cancel()
        return Output(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// A port the kernel just handed out and we released (UDP or TCP).
    static func freePort(type: Int32) -> Int {
        let fd = socket(AF_INET, type, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
