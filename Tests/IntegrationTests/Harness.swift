import AmarsClient
import Foundation
import XCTest
import AmarsTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the real binaries SwiftPM built next to the test bundle.
enum Harness {
    static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? CommandLine.arguments[0])
            .deletingLastPathComponent()
    }

    struct Daemon {
        let process: Process
        let port: Int
        var url: String { "http://127.0.0.1:\(port)" }

        /// One SIGTERM, then SIGKILL if it has not exited within 10 s, failing the test instead of hanging the
        /// run: a lost SIGTERM is a bug (`amarsd` installs its handler before it opens anything).
        func stop(file: StaticString = #filePath, line: UInt = #line) {
            if !Harness.signal(process, SIGTERM) {
                XCTFail("amarsd did not stop within 10 s of SIGTERM", file: file, line: line)
            }
        }
    }

    /// Sends `signal` (if `process` still runs) and waits up to `seconds` for it to exit; true if it did. One that
    /// did not is SIGKILLed, so a test fails instead of hanging the run.
    @discardableResult
    static func signal(_ process: Process, _ signal: Int32, within seconds: Double = 10) -> Bool {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        let exited = !process.isRunning
        if !exited { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return exited
    }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `amarsd run` on a free port and returns once it has printed the port it bound. Its CoAP door listens
    /// on `coapPort`, or on a free UDP port: never on the default 5683, which a running devnet holds (a second
    /// gateway cannot share it and would not start), unless `arguments` choose (`--coap-port`, `--no-coap`).
    /// Its stderr goes to `stderr` when given.
    static func startDaemon(
        data: URL, blockInterval: Int, coapPort: Int? = nil, arguments: [String] = [], stderr: URL? = nil
    ) throws -> Daemon {
        let p = Process()
        p.executableURL = binDirectory.appendingPathComponent("amarsd")
        let coap =
            arguments.contains("--no-coap") || arguments.contains("--coap-port")
            ? [] : ["--coap-port", String(coapPort ?? freePort(type: Int32(SOCK_DGRAM.rawValue)))]
        p.arguments =
            [
                "run", "--data", data.path, "--http-port", "0", "--block-interval", String(blockInterval),
                "--log-level", "error",
            ] + coap + arguments
        let out = Pipe()
        p.standardOutput = out
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: stderr)
        } else {
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !text.contains("Explorer") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: #"127\.0\.0\.1:(\d+)/v1/head"#, options: .regularExpression) else {
            p.terminate()
            throw StartFailure(description: "amarsd did not start: \(text)")
        }
        let port = Int(text[range].split(separator: ":")[1].split(separator: "/")[0])!
        return Daemon(process: p, port: port)
    }

    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    /// Runs `amars` with `arguments` and collects its exit status and output.
    static let keystorePassphrase = "integration test passphrase"

    static func amars(_ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = binDirectory.appendingPathComponent("amars")
        p.arguments = arguments
        // Keys made by `amars key new` are keystores; every command of a test opens them with this passphrase.
        var environment = ProcessInfo.processInfo.environment
        environment["AMARS_PASSPHRASE"] = environment["AMARS_PASSPHRASE"] ?? keystorePassphrase
        p.environment = environment
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(
            status: p.terminationStatus, output: String(decoding: o, as: UTF8.self),
            error: String(decoding: e, as: UTF8.self))
    }

    struct Command {
        var status: Int32
        var output: String
    }

    /// Runs a command with stdout and stderr merged, terminated after `timeout` seconds. Each complete output line
    /// goes to `onLine` as it arrives (on this thread), so a test can act on what a program says while it runs.
    static func run(
        _ executable: String, _ arguments: [String], timeout: TimeInterval, onLine: (String) -> Void = { _ in }
    ) throws -> Command {
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
        var all = Data()
        var pending = Data()
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            all.append(chunk)
            pending.append(chunk)
            while let newline = pending.firstIndex(of: 0x0A) {
                onLine(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending = Data(pending[(newline + 1)...])
            }
        }
        p.waitUntilExit()
        timer.cancel()
        return Command(status: p.terminationStatus, output: String(decoding: all, as: UTF8.self))
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass; true if it held.
    static func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    static func json(_ client: HTTPClient, _ path: String) throws -> [String: Any] {
        let r = try client.get(path)
        return try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any]
    }

    /// A port nobody holds now (UDP or TCP), below the kernel's ephemeral range (32768 up): a port the kernel
    /// handed out could be taken again as the local end of some connection (a gateway dialing its peers) before
    /// the process it was meant for binds it.
    static func freePort(type: Int32 = Int32(SOCK_STREAM.rawValue)) -> Int {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1_000 {
            let port = UInt16.random(in: 20_000..<32_768, using: &generator)
            guard case .success(let fd) = LoopbackSocket.bound(type, port: port) else { continue }
            close(fd)
            return Int(port)
        }
        return 0
    }

    /// `count` distinct ports ``freePort(type:)`` finds free: drawn one by one, two of a devnet's four could be
    /// the same port, and the gateway started second could not bind it.
    static func freePorts(_ count: Int, type: Int32 = Int32(SOCK_STREAM.rawValue)) -> [Int] {
        var ports: [Int] = []
        while ports.count < count {
            let port = freePort(type: type)
            if port == 0 || !ports.contains(port) { ports.append(port) }
        }
        return ports
    }
}

extension Harness {
    /// QEMU, the cross toolchain and picolibc are test dependencies (`make -C Boards deps`): a firmware test fails,
    /// not skips, without them, so a missing toolchain cannot pass unnoticed.
    static func requireBoardToolchain(for test: String) throws {
        var missing: [String] = []
        for tool in ["qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-objcopy", "make"] {
            if try run("/usr/bin/env", ["sh", "-c", "command -v \(tool)"], timeout: 30).status != 0 {
                missing.append(tool)
            }
        }
        if !FileManager.default.fileExists(atPath: "/usr/lib/picolibc/arm-none-eabi/lib/thumb/v7e-m/nofp/libc.a") {
            missing.append("picolibc-arm-none-eabi")
        }
        if !missing.isEmpty {
            throw StartFailure(
                description: "\(test) needs \(missing.joined(separator: ", ")): run `make -C Boards deps`")
        }
    }
}
