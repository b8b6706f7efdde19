import Foundation

/// Runs a tool nobody here wrote (openssl, mosquitto_pub): its exit status and its stdout and stderr together.
/// Killed after `timeout` seconds, so a client that hangs on a refused handshake cannot hang the test.
public func runTool(
    _ path: String, _ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval = 10
) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning { p.terminate() }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
