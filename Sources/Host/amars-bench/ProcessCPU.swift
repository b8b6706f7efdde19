import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// CPU time of the processes a benchmark runs, for its "CPU per transfer / per message" figures.

/// CPU seconds (user + system) a process has used, from /proc.
func processCPUSeconds(_ pid: pid_t) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After "pid (comm)": state is field 0; utime and stime are fields 11 and 12.
    guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
    return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func selfCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

/// CPU seconds (user + system) of each live thread of this process by its name, from /proc; the main thread is
/// named "main". A thread that has exited is not counted: take what is left of the process's total as the
/// short-lived workers' share.
func threadCPUSeconds() -> [String: Double] {
    let me = getpid()
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var byName: [String: Double] = [:]
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return [:] }
    for tid in tasks {
        guard let text = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
            let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
        else { continue }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { continue }
        let name = Int32(tid) == me ? "main" : String(text[text.index(after: open)..<close])
        byName[name, default: 0] += (u + s) / ticks
    }
    return byName
}
