import AmarsClient
import Foundation
import XCTest

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

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `amarsd run` on a free port and returns once it has printed the port it bound.
    static func startDaemon(data: URL, blockInterval: Int) throws -> Daemon {
        let p = Process()
        p.executableURL = binDirectory.appendingPathComponent("amarsd")
        p.arguments = [
            "run", "--data", data.path, "--http-port", "0", "--block-interval", String(blockInterval), "--log-level",
            "error",
        ]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
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
    static func amars(_ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = binDirectory.appendingPathComponent("amars")
        p.arguments = arguments
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

    static func json(_ client: HTTPClient, _ path: String) throws -> [String: Any] {
        let r = try client.get(path)
        return try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any]
    }
}
