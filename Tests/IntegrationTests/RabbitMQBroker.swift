import AmarsCrypto
import DeviceGateway
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A broker the MQTT tests run against: mosquitto (``BrokerProcess``, what `make devnet` starts) or RabbitMQ.
protocol TestBroker: AnyObject {
    var port: Int { get }
    var gatewayCredentials: MqttCredentials { get throws }
    func start() throws
    /// SIGTERM: the broker stops in order and keeps what it must; SIGKILL: a crash.
    func stop(signal: Int32)
    /// The process that serves MQTT while the broker runs (what SIGSTOP pauses), nil when it is not running.
    var serverProcessID: pid_t? { get }
}

enum BrokerKind {
    case mosquitto
    case rabbitMQ

    /// What the MQTT suites run against: mosquitto, or RabbitMQ when `AMARS_TEST_BROKER=rabbitmq` (`make
    /// mqtt-second-broker`, part of `make test`). Tests of our own broker's lockdown always use mosquitto.
    static var current: BrokerKind {
        ProcessInfo.processInfo.environment["AMARS_TEST_BROKER"] == "rabbitmq" ? .rabbitMQ : .mosquitto
    }

    func make(directory: URL) throws -> any TestBroker {
        switch self {
        case .mosquitto: try BrokerProcess(directory: directory)
        case .rabbitMQ: try RabbitMQBroker(directory: directory)
        }
    }
}

extension BrokerProcess: TestBroker {
    func start() throws { try start(timeout: 10) }
    func stop(signal: Int32) { stop(signal: signal, timeout: 10) }
    var serverProcessID: pid_t? { processIdentifier }
}

/// RabbitMQ with its MQTT plugin (Debian's `rabbitmq-server`): a second MQTT 3.1.1 implementation, and one that
/// clusters, so the gateway's MQTT door is proven against more than mosquitto. Its own node in `directory`
/// (name, ports, database, logs), locked down like ours: the gateway logs in; anonymous clients are devices,
/// who may publish only under `amars/v1/tx/` and read only the chain's public topics (RabbitMQ's topic
/// permissions, on routing keys where MQTT's `/` is `.`).
final class RabbitMQBroker: TestBroker, @unchecked Sendable {  // the lock guards `process`
    static let server = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    let directory: URL
    let port: Int
    let gatewayLogin: MqttCredentials
    private let amqpPort: Int
    private let distributionPort: Int
    private let nodeName: String
    private let lock = NSLock()
    private var process: Process?

    init(directory: URL) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.server) else {
            throw SetupError("\(Self.server) missing: install rabbitmq-server (scripts/install-deps.sh)")
        }
        self.directory = directory
        port = Harness.freePort()
        amqpPort = Harness.freePort()
        distributionPort = Harness.freePort()
        var rng = SystemRandomNumberGenerator()
        nodeName = "amars\(String(rng.next() as UInt64, radix: 36))@localhost"
        gatewayLogin = MqttCredentials(username: "amars-gateway", password: String(rng.next() as UInt64, radix: 36))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try writeFiles()
    }

    var gatewayCredentials: MqttCredentials { gatewayLogin }

    private func file(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func writeFiles() throws {
        try """
        listeners.tcp.1 = 127.0.0.1:\(amqpPort)
        mqtt.listeners.tcp.1 = 127.0.0.1:\(port)
        mqtt.allow_anonymous = true
        mqtt.default_user = device
        mqtt.default_pass = device
        loopback_users = none
        load_definitions = \(file("definitions.json"))
        log.file.level = warning
        """.write(toFile: file("rabbitmq.conf"), atomically: true, encoding: .utf8)
        try "[rabbitmq_mqtt].\n".write(toFile: file("enabled_plugins"), atomically: true, encoding: .utf8)
        let everything = #""configure": ".*", "write": ".*", "read": ".*""#
        try """
        {
          "vhosts": [{"name": "/"}],
          "users": [
            {"name": "amars-gateway", "password_hash": "\(Self.passwordHash(gatewayLogin.password))",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []},
            {"name": "device", "password_hash": "\(Self.passwordHash("device"))",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}
          ],
          "permissions": [
            {"user": "amars-gateway", "vhost": "/", \(everything)},
            {"user": "device", "vhost": "/", \(everything)}
          ],
          "topic_permissions": [
            {"user": "device", "vhost": "/", "exchange": "amq.topic",
             "write": "^amars\\\\.v1\\\\.tx\\\\.[^.]+$",
             "read": "^amars\\\\.v1\\\\.(head|checkpoints\\\\.[^.]+|receipts\\\\.[^.]+|cmd\\\\.[^.]+)$"}
          ]
        }
        """.write(toFile: file("definitions.json"), atomically: true, encoding: .utf8)
    }

    /// RabbitMQ's `rabbit_password_hashing_sha256`: base64 of a 4-byte salt and SHA-256(salt ‖ password).
    static func passwordHash(_ password: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let digest = SHA256.hash(salt + Array(password.utf8))
        return Data(salt + digest.bytes).base64EncodedString()
    }

    /// Starts the node and returns once it accepts the gateway's MQTT login (RabbitMQ takes seconds to boot).
    func start() throws {
        try lock.withLock {
            if let p = process, p.isRunning { return }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.server)
            var environment = ProcessInfo.processInfo.environment
            for (key, value) in [
                ("HOME", directory.path), ("RABBITMQ_NODENAME", nodeName),
                ("RABBITMQ_CONFIG_FILE", file("rabbitmq.conf")),
                ("RABBITMQ_ENABLED_PLUGINS_FILE", file("enabled_plugins")), ("RABBITMQ_MNESIA_BASE", file("mnesia")),
                ("RABBITMQ_LOG_BASE", file("log")), ("RABBITMQ_DIST_PORT", String(distributionPort)),
                ("RABBITMQ_PID_FILE", file("pid")),
            ] {
                environment[key] = value
            }
            p.environment = environment
            p.standardInput = FileHandle.nullDevice
            _ = FileManager.default.createFile(atPath: file("server.out"), contents: nil)
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: file("server.out")))
            try out.seekToEnd()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            process = p
        }
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            if try acceptsGatewayLogin() { return }
            guard lock.withLock({ process?.isRunning ?? false }) else { break }
            usleep(250_000)
        }
        let said = (try? String(contentsOfFile: file("server.out"), encoding: .utf8)) ?? ""
        stop(signal: SIGKILL)
        throw SetupError("RabbitMQ did not accept MQTT logins on port \(port): \(said.suffix(2000))")
    }

    /// One MQTT CONNECT with the gateway's login, answered by CONNACK 0.
    private func acceptsGatewayLogin() throws -> Bool {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_pub")
        probe.arguments = [
            "-h", "127.0.0.1", "-p", "\(port)", "-u", gatewayLogin.username, "-P", gatewayLogin.password, "-t",
            "amars/probe", "-m", "", "-q", "1",
        ]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }

    func stop(signal: Int32) {
        let p = lock.withLock { () -> Process? in
            defer { process = nil }
            return process
        }
        guard let p, p.isRunning else { return }
        // The server script forwards SIGTERM to the Erlang VM, but a SIGKILL would end only the script: the VM,
        // whose process id is in the pid file, is killed itself.
        if signal == SIGKILL, let vm = virtualMachine { kill(vm, SIGKILL) }
        kill(p.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// The Erlang VM, which serves MQTT (the server script only waits for it), from the pid file RabbitMQ writes.
    private var virtualMachine: pid_t? {
        guard let text = try? String(contentsOfFile: file("pid"), encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    var serverProcessID: pid_t? { lock.withLock { process?.isRunning == true } ? virtualMachine : nil }

    deinit { stop(signal: SIGKILL) }

    struct SetupError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
