import Foundation
import Ledger

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A mosquitto broker child process with a generated configuration and its own persistence directory.
///
/// Why: tests, `make devnet` and `amarsd --spawn-broker` all need a broker that nobody has to install as a
/// service, listens only on loopback, and keeps its queue on disk so a restart loses no QoS 1 message. The
/// port stays fixed across ``stop(signal:)``/``start()`` so clients reconnect to the same address, and the
/// persistence file stays in ``directory`` so a restarted broker resumes the sessions it had.
///
/// Thread-safe: one lock around the child process handle.
public final class BrokerProcess: @unchecked Sendable {
    public enum BrokerError: Error, CustomStringConvertible {
        case executableNotFound
        case launchFailed(String)
        case notListening(port: Int, log: String)
        /// `mosquitto_passwd` (in the mosquitto package) failed to write the password file.
        case passwordFile(String)

        public var description: String {
            switch self {
            case .passwordFile(let why): "cannot write the broker's password file: \(why)"
            case .executableNotFound: "mosquitto not found (install the 'mosquitto' package)"
            case .launchFailed(let why): "cannot start mosquitto: \(why)"
            case .notListening(let port, let log): "mosquitto did not listen on port \(port); its log:\n\(log)"
            }
        }
    }

    /// A second listener for devices that authenticate with their certificates (SPEC "Device transports"):
    /// TLS 1.2 (OpenSSL 3.0 takes secp256k1 certificates there, not in 1.3), a client certificate required and
    /// checked against `caFile` (the operator's root), its subject (a device's `amsc1…` account) as the user
    /// name, and an ACL that lets each device write only its own `tx` topic and read only its own receipts and
    /// commands besides the chain's public topics.
    public struct TLSListener: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var caFile: String
        public var certFile: String
        public var keyFile: String

        public init(host: String = "127.0.0.1", port: Int, caFile: String, certFile: String, keyFile: String) {
            self.host = host
            self.port = port
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }

    public let directory: URL
    public let port: Int
    public let tls: TLSListener?
    public let executable: String
    /// Save the in-memory database after every change rather than every 30 minutes, so even SIGKILL loses no
    /// queued message. Costs a file write per message: right for tests and devnets, not for a busy broker.
    public let saveOnEveryChange: Bool
    private let lock = NSLock()
    private var process: Process?

    public var configPath: String { directory.appendingPathComponent("mosquitto.conf").path }
    public var aclPath: String { directory.appendingPathComponent("acl").path }
    public var tlsACLPath: String { denyList.aclPath }
    /// OpenSSL's configuration for the TLS listener (``openSSLConfiguration``), given to mosquitto as
    /// `OPENSSL_CONF`; TLS clients of the broker use it too.
    public var openSSLConfigPath: String { directory.appendingPathComponent("openssl.cnf").path }

    /// OpenSSL 3.0 offers and accepts only X25519, P-256, X448, P-521 and P-384 by default. In TLS 1.2 a server
    /// uses its certificate only if the client listed the certificate's curve, and takes a client certificate
    /// only on a curve it lists itself: both sides must add secp256k1. (TLS 1.3 binds the curve to the signature
    /// scheme, and none names secp256k1.)
    public static let openSSLConfiguration = """
        openssl_conf = openssl_init
        [openssl_init]
        ssl_conf = ssl_configuration
        [ssl_configuration]
        system_default = tls_defaults
        [tls_defaults]
        Groups = X25519:P-256:secp256k1:X448:P-521:P-384

        """
    public var passwordPath: String { directory.appendingPathComponent("passwd").path }
    /// The TLS listener's deny list, which a gateway keeps in step with the chain's revocations.
    public var denyList: BrokerDenyList { BrokerDenyList(directory: directory) }
    public var pidPath: String { denyList.pidPath }
    /// The gateway's login (``MqttCredentials``), generated once and kept with the broker's data.
    public var credentialsPath: String { directory.appendingPathComponent("gateway.credentials").path }
    public var logPath: String { directory.appendingPathComponent("mosquitto.log").path }

    /// - Parameters:
    ///   - directory: holds the config, the log and `mosquitto.db`; created if missing.
    ///   - port: `nil` picks a free loopback port now and keeps it for the life of this object.
    public init(
        directory: URL, port: Int? = nil, tls: TLSListener? = nil, executable: String? = nil,
        saveOnEveryChange: Bool = true
    ) throws {
        self.tls = tls
        guard let exe = executable ?? Self.findExecutable() else { throw BrokerError.executableNotFound }
        self.directory = directory
        self.executable = exe
        self.saveOnEveryChange = saveOnEveryChange
        self.port = try port ?? Self.freePort()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { stop(signal: SIGKILL) }

    public static func findExecutable() -> String? {
        var candidates = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto"]
        if let path = ProcessInfo.processInfo.environment["PATH"] {
            candidates += path.split(separator: ":").map { "\($0)/mosquitto" }
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A port the kernel just handed out on loopback. Another process could take it before the broker binds;
    /// on loopback in a test run that race is rare enough, and ``start()`` reports it clearly if it happens.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Self.streamSocket, 0)
        guard fd >= 0 else { throw BrokerError.launchFailed("socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { ptr -> Bool in
                bind(fd, ptr, len) == 0 && getsockname(fd, ptr, &len) == 0
            }
        }
        guard bound else { throw BrokerError.launchFailed("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// The configuration file's text. `persistence_location` must end in '/' for mosquitto to treat it as a
    /// directory.
    public var configuration: String {
        var lines = [
            // Each listener has its own logins and ACL (the TLS one below).
            "per_listener_settings \(tls == nil ? "false" : "true")",
            "listener \(port) 127.0.0.1",
            // Devices connect without a login; the ACL limits them to reading and submitting (see `acl`).
            "allow_anonymous true",
            "password_file \(passwordPath)",
            "acl_file \(aclPath)",
        ]
        if let tls {
            lines += [
                "listener \(tls.port) \(tls.host)",
                "cafile \(tls.caFile)",
                "certfile \(tls.certFile)",
                "keyfile \(tls.keyFile)",
                "tls_version tlsv1.2",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
                "acl_file \(tlsACLPath)",
            ]
        }
        lines += [
            "persistence true",
            "persistence_location \(directory.path)/",
            "persistence_file mosquitto.db",
            "log_dest file \(logPath)",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            // Devices and the gateway can be away for a while; keep their QoS 1 queue.
            "max_queued_messages 10000",
            // Let the gateway have many QoS 1 messages in flight, so the bridge persists them in large batches
            // (one fsync per batch) instead of 20 at a time.
            "max_inflight_messages 1000",
        ]
        // Started as root, mosquitto switches to the 'mosquitto' user, which cannot write our directory.
        if geteuid() == 0 { lines.append("user root") }
        if saveOnEveryChange {
            lines += ["autosave_on_changes true", "autosave_interval 1"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Who may do what. A stranger on the broker is a device: it may read the chain's public topics (head,
    /// checkpoints, receipts, commands addressed to devices) and submit signed transactions, whose signature and
    /// sender the gateway checks; only the gateway's login publishes the chain's topics, so nobody else can
    /// retain a forged head or checkpoint, answer for the gateway, or command a device, and nobody else reads
    /// the submissions of every device.
    public static let accessControl = """
        # Anonymous clients: devices.
        topic read amars/v1/head
        topic read amars/v1/checkpoints/#
        topic read amars/v1/receipts/#
        topic read amars/v1/cmd/#
        topic write amars/v1/tx/+
        topic write amars/v1/chan-out/+

        user \(MqttCredentials.gatewayUsername)
        topic readwrite amars/v1/#

        """

    /// The TLS listener's ACL: `%u` is the client certificate's subject, a device's account (`amsc1…`). A device
    /// whose certificate the chain revoked gets `topic deny #`, which mosquitto applies before any grant: it can
    /// still complete a handshake with a certificate that has not expired, but can neither publish nor receive
    /// anything, from the moment the broker reloads (connections already open included).
    public static func deviceAccessControl(denying revoked: [Address] = []) -> String {
        var text = """
            topic read amars/v1/head
            topic read amars/v1/checkpoints/#
            pattern write amars/v1/tx/%u
            pattern read amars/v1/receipts/%u
            pattern read amars/v1/cmd/%u
            pattern write amars/v1/chan-out/%u
            pattern read amars/v1/chan/%u

            """
        for account in revoked { text += "\nuser \(account.bech32)\ntopic deny #\n" }
        return text
    }

    /// Writes the configuration, the ACL, the gateway's login (kept if it exists) and mosquitto's hashed password
    /// file for it: everything `mosquitto -c configPath` needs. Returns the gateway's login.
    @discardableResult
    public func writeFiles() throws -> MqttCredentials {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let credentials: MqttCredentials
        if FileManager.default.fileExists(atPath: credentialsPath) {
            credentials = try MqttCredentials.load(path: credentialsPath)
        } else {
            credentials = MqttCredentials.generate()
            try credentials.write(path: credentialsPath)
        }
        try? FileManager.default.removeItem(atPath: passwordPath)
        let tool = Process()
        tool.executableURL = URL(fileURLWithPath: Self.passwordTool(next: executable))
        tool.arguments = ["-c", "-b", passwordPath, credentials.username, credentials.password]
        tool.standardOutput = FileHandle.nullDevice
        tool.standardError = FileHandle.nullDevice
        do { try tool.run() } catch { throw BrokerError.passwordFile("\(error)") }
        tool.waitUntilExit()
        guard tool.terminationStatus == 0 else {
            throw BrokerError.passwordFile("mosquitto_passwd exited with \(tool.terminationStatus)")
        }
        try Self.accessControl.write(toFile: aclPath, atomically: true, encoding: .utf8)
        if tls != nil {
            try denyList.writeACL(denyList.accounts())
            try Self.openSSLConfiguration.write(toFile: openSSLConfigPath, atomically: true, encoding: .utf8)
        }
        try configuration.write(toFile: configPath, atomically: true, encoding: .utf8)
        return credentials
    }

    /// The gateway's login, once ``writeFiles()`` (or ``start(timeout:)``) made it.
    public var gatewayCredentials: MqttCredentials {
        get throws { try MqttCredentials.load(path: credentialsPath) }
    }

    /// `mosquitto_passwd`: beside the broker (Debian puts the broker in /usr/sbin and the tool in /usr/bin).
    static func passwordTool(next broker: String) -> String {
        let beside = URL(fileURLWithPath: broker).deletingLastPathComponent().appendingPathComponent("mosquitto_passwd")
        for candidate in [beside.path, "/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "/usr/bin/mosquitto_passwd"
    }

    public var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    public var processIdentifier: Int32? { lock.withLock { process?.processIdentifier } }

    /// Writes the configuration, launches the broker and returns once it accepts TCP connections.
    public func start(timeout: TimeInterval = 10) throws {
        try lock.withLock {
            if let p = process, p.isRunning { return }
            try writeFiles()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["-c", configPath]
            if tls != nil {
                p.environment = ProcessInfo.processInfo.environment.merging(["OPENSSL_CONF": openSSLConfigPath]) {
                    $1
                }
            }
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            do { try Self.withSignalsUnblocked { try p.run() } } catch { throw BrokerError.launchFailed("\(error)") }
            process = p
            try? "\(p.processIdentifier)\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard isRunning else { break }
            if Self.canConnect(port: port) { return }
            usleep(20_000)
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        stop(signal: SIGKILL)
        throw BrokerError.notListening(port: port, log: log)
    }

    /// Runs `body` (a spawn, an exec) with no signal blocked on this thread. The broker inherits the thread's
    /// signal mask, and a Swift worker thread blocks SIGTERM: a broker started from one ignored SIGTERM (every
    /// stop waited for the SIGKILL, and `make devnet` hung on Ctrl-C).
    public static func withSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }

    /// Sends `signal` and waits for the broker to exit. SIGTERM lets it save its database; SIGKILL simulates a
    /// crash. Safe to call when not running.
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 10) {
        let p: Process? = lock.withLock {
            defer { process = nil }
            return process
        }
        guard let p, p.isRunning else { return }
        kill(p.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }

    #if os(Linux)
        private static let streamSocket = Int32(SOCK_STREAM.rawValue)
    #else
        private static let streamSocket = SOCK_STREAM
    #endif

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Self.streamSocket, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
