import Foundation
import Ledger

#if canImport(Glibc)
    import Glibc
#endif

/// The accounts a broker's TLS listener refuses to serve, kept in its directory beside the ACL they go into.
///
/// Why a file: the broker (`amarsd broker`, or one a gateway spawned) has no chain of its own, and mosquitto
/// reads its ACL only from disk. A gateway writes the list from the chain's revocations (``BrokerRevocations``)
/// and signals the broker to reload; ``BrokerProcess/writeFiles()`` reads it back, so a broker that restarts
/// keeps denying the same devices. This is the certificate revocation list of SPEC "Device identity" in the form
/// mosquitto can take without the issuers' keys, which a gateway does not hold to sign a real CRL.
public struct BrokerDenyList: Sendable {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// One `amsc1…` account per line.
    public var path: String { directory.appendingPathComponent("revoked-devices").path }
    /// The TLS listener's ACL (``BrokerProcess/deviceAccessControl(denying:)``).
    public var aclPath: String { directory.appendingPathComponent("acl-tls").path }
    /// mosquitto's process id: written by ``BrokerProcess/start(timeout:)``, or by `amarsd broker` before it
    /// becomes mosquitto.
    public var pidPath: String { directory.appendingPathComponent("mosquitto.pid").path }

    /// The accounts in ``path``; none if it does not exist. Only lines that are addresses count, so a damaged
    /// file cannot write other rules into the ACL.
    public func accounts() -> [Address] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? Address(bech32: String($0)) }
    }

    /// What ``write(_:)`` did: whether the files changed, and whether the broker was signalled (false when none
    /// could be yet: none running, or one still starting, so the caller tries again).
    public struct Outcome: Equatable, Sendable {
        public var changed: Bool
        public var signalled: Bool
    }

    /// Makes `revoked` the deny list and the ACL, then asks the broker to reload them. Files already saying so
    /// are not written again, but the signal is still sent.
    ///
    /// The list goes first and the ACL second, and each is compared with what it should say: a broker that
    /// restarts between the two writes builds its ACL from the new list, and a gateway that stopped between them
    /// finds the ACL behind the list and writes it on its next look.
    @discardableResult
    public func write(_ revoked: [Address]) throws -> Outcome {
        // A missing list means a missing directory too, so the directory is made before either file.
        let listChanged = !FileManager.default.fileExists(atPath: path) || accounts() != revoked
        if listChanged {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try revoked.map { $0.bech32 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        }
        let aclChanged = try writeACL(revoked)
        return Outcome(changed: listChanged || aclChanged, signalled: reloadBroker())
    }

    /// The TLS listener's ACL for `revoked` (``BrokerProcess/deviceAccessControl(denying:)``), written in one step
    /// unless it already says so; returns whether it wrote. What the gateway writes after a revocation and a
    /// broker writes when it starts.
    @discardableResult
    func writeACL(_ revoked: [Address]) throws -> Bool {
        let acl = BrokerProcess.deviceAccessControl(denying: revoked)
        guard (try? String(contentsOfFile: aclPath, encoding: .utf8)) != acl else { return false }
        try acl.write(toFile: aclPath, atomically: true, encoding: .utf8)
        return true
    }

    /// SIGHUP to the process in ``pidPath``, which makes mosquitto read its ACL files again (connections already
    /// open included). Only to a process named mosquitto, so a stale pid file never signals, and so kills, another
    /// program; and only once it catches SIGHUP: mosquitto reads its ACL and opens its listeners before it installs
    /// its handlers, and a SIGHUP in between would end it. Returns whether it signalled.
    @discardableResult
    public func reloadBroker() -> Bool {
        guard let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
            let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
            name.trimmingCharacters(in: .whitespacesAndNewlines) == "mosquitto",
            Self.catchesHangup(pid: pid)
        else { return false }
        return kill(pid, SIGHUP) == 0
    }

    /// Whether `/proc/PID/status` lists SIGHUP among the caught signals (`SigCgt`, a hex mask, bit signal − 1).
    static func catchesHangup(pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
            let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return mask & (1 << UInt64(SIGHUP - 1)) != 0
    }
}
