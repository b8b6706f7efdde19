import Foundation

import Glibc  // kill(2) and /proc: the simulator runs where its gateways do, on Linux

/// A fault the simulator injects by killing a process it did not start: a gateway (`amarsd`) or the broker
/// (`mosquitto`), named by the pid file its supervisor writes (`make devnet` does; under systemd, a unit's
/// `PIDFile=`). Whatever supervises it brings it back; the fleet must ride through.
///
/// The pid file is read as hostile input: it must hold one process id, and the process must be the program
/// expected (by `/proc/PID/comm`) before it is sent SIGKILL, so a stale or wrong file never kills anything else.
struct ProcessKill: Sendable {
    /// What is killed, for the report: "gateway 2", "the broker".
    let what: String
    /// Seconds into the run.
    let at: Double
    let pidFile: String
    /// The program's name as the kernel knows it (`/proc/PID/comm`).
    let program: String

    enum Refusal: Error, CustomStringConvertible {
        case unreadable(String)
        case notAProcessID(String)
        case notThatProgram(pid: Int32, found: String, expected: String)
        case signal(pid: Int32, errno: Int32)

        var description: String {
            switch self {
            case .unreadable(let path): "cannot read the pid file \(path)"
            case .notAProcessID(let path): "\(path) does not hold one process id"
            case .notThatProgram(let pid, let found, let expected):
                "process \(pid) is \(found.isEmpty ? "gone" : "'\(found)'"), not \(expected): nothing killed"
            case .signal(let pid, let e): "kill \(pid): \(String(cString: strerror(e)))"
            }
        }
    }

    /// Kills the process now; returns its process id.
    func kill() throws(Refusal) -> Int32 {
        guard let data = FileManager.default.contents(atPath: pidFile), data.count <= 32 else {
            throw .unreadable(pidFile)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(text), pid > 1 else { throw .notAProcessID(pidFile) }
        let comm = (FileManager.default.contents(atPath: "/proc/\(pid)/comm")).map {
            String(decoding: $0.prefix(64), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let comm, comm == program else {
            throw .notThatProgram(pid: pid, found: comm ?? "", expected: program)
        }
        guard Glibc.kill(pid, SIGKILL) == 0 else { throw .signal(pid: pid, errno: errno) }
        return pid
    }
}
