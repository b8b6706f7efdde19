import ArgumentParser
import BuildInfo
import Foundation
import GatewayNode
import Logging

/// The flags `amarsd run` and `amarsd node` share. Each overrides the configuration file's key of the same
/// meaning (named in its help); left out, the file's value (or the default) stands.
struct GatewayOptions: ParsableArguments {
    @Option(help: "Configuration file (YAML; the schema of packaging/node.example.yaml).")
    var config: String?

    @Flag(
        help: """
            Check the configuration and what it names (genesis, key, data directory, MQTT credentials, PSK file), \
            print a summary and exit: 0 if the node would start, else the start-up status. Opens no port and \
            writes nothing.
            """)
    var check = false

    @Option(help: "Data directory: chain.sqlite, the journals, the broker's files ('data'; default: data).")
    var data: String?

    @Option(help: "Genesis file ('genesis'; default: <data>/genesis.json).")
    var genesis: String?

    @Option(help: "Validator key file, one line of hex ('key'; default: <data>/keys/validator.key).")
    var validatorKey: String?

    @Option(help: "Address the HTTP API listens on ('http.host'; default: 127.0.0.1).")
    var httpHost: String?

    @Option(help: "Port of the HTTP API, 0 picks a free one ('http.port'; default: 8645).")
    var httpPort: Int?

    @Option(help: "Milliseconds between blocks ('consensus.blockInterval'; default: 1000).")
    var blockInterval: Int?

    @Flag(
        help: """
            Flush every acknowledged submit to the disk before answering, surviving a power cut ('journal_fsync'); \
            by default it reaches the OS first (survives a crash of amarsd).
            """)
    var journalFsync = false

    @Option(help: "Address of the CoAP server for devices, UDP ('coap.host').")
    var coapHost: String?

    @Option(help: "Port of the CoAP server for devices ('coap.port'; default: 5683).")
    var coapPort: Int?

    @Option(
        help: """
            Requests per second each device (over plain UDP, each source IP address) may make on average \
            ('coap.requests_per_second'; default: 50). Raise it when many devices share an address (a NAT, a simulator).
            """)
    var coapRate: Double?

    @Option(help: "Requests a device may make at once before the average applies ('coap.burst'; default: 200).")
    var coapBurst: Double?

    @Option(help: "Transactions per second each device may submit ('coap.submits_per_second'; default: 2).")
    var coapSubmitRate: Double?

    @Option(help: "Transactions a device may submit at once ('coap.submit_burst'; default: 10).")
    var coapSubmitBurst: Double?

    @Flag(help: "Do not start the CoAP server (drops 'coap').")
    var noCoap = false

    @Option(help: "Port of the DTLS-PSK CoAP server, with --psk-file ('coaps.port'; default: 5684).")
    var coapsPort: Int?

    @Option(help: "Per-device pre-shared keys for CoAP over DTLS, one 'IDENTITY HEXKEY' per line ('coaps.psk_file').")
    var pskFile: String?

    @Option(
        help: """
            The operator's re-anchor statement (amars device reanchor --out FILE), served to devices whose trust \
            expired at CoAP v1/reanchor; read at each request ('reanchor').
            """)
    var reanchor: String?

    @Option(help: "MQTT broker for devices, HOST:PORT; the bridge subscribes to amars/v1/tx/+ there ('mqtt').")
    var mqtt: String?

    @Flag(
        help: "Start a locked-down mosquitto for the bridge (data in <data>/broker) on --mqtt's port ('spawn_broker').")
    var spawnBroker = false

    @Option(
        help: """
            A TLS broker's directory (amarsd broker --dir): deny there the devices whose certificates the chain \
            revoked, from the block that revokes them ('broker_dir').
            """)
    var brokerDir: String?

    @Flag(
        help: """
            Refuse device submissions (CoAP, MQTT) from senders without a valid, unrevoked certificate on chain             ('require_device_certificate').
            """)
    var requireDeviceCertificate = false

    @Option(help: "The gateway's login at a broker run elsewhere, a file 'USERNAME PASSWORD' ('mqtt_credentials').")
    var mqttCredentials: String?

    @Option(
        help:
            "The bridge's MQTT client id, unique per gateway on a broker ('mqtt_client_id'; default: random, kept in <data>)."
    )
    var mqttClientId: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical ('log'; default: info).")
    var logLevel: String?

    func validate() throws {
        if let httpPort, !(0...65535).contains(httpPort) { throw ValidationError("--http-port must be 0...65535") }
        if let blockInterval, !(10...600_000).contains(blockInterval) {
            throw ValidationError("--block-interval must be between 10 and 600000 ms")
        }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("unknown --log-level \(logLevel)")
        }
        if let coapPort, !(1...65535).contains(coapPort) { throw ValidationError("--coap-port must be 1...65535") }
        if let coapRate, !(coapRate > 0 && coapRate <= 1_000_000) {
            throw ValidationError("--coap-rate must be more than 0 and at most 1000000")
        }
        if let coapBurst, !(coapBurst >= 1 && coapBurst <= 1_000_000) {
            throw ValidationError("--coap-burst must be 1 to 1000000")
        }
        if let coapSubmitRate, !(coapSubmitRate > 0 && coapSubmitRate <= 1_000_000) {
            throw ValidationError("--coap-submit-rate must be more than 0 and at most 1000000")
        }
        if let coapSubmitBurst, !(coapSubmitBurst >= 1 && coapSubmitBurst <= 1_000_000) {
            throw ValidationError("--coap-submit-burst must be 1 to 1000000")
        }
        if let coapsPort, !(1...65535).contains(coapsPort) { throw ValidationError("--coaps-port must be 1...65535") }
        if let mqtt, (try? NodeConfig.hostPort(mqtt, "--mqtt")) == nil {
            throw ValidationError("--mqtt takes HOST:PORT, e.g. 127.0.0.1:1883")
        }
        if noCoap && (coapHost != nil || coapPort != nil || pskFile != nil) {
            throw ValidationError("--no-coap cannot go with --coap-host, --coap-port or --psk-file")
        }
    }

    /// `config` with every given flag applied, checked again as a whole.
    func apply(to config: inout NodeConfig) throws(NodeConfig.ConfigError) {
        if let data {
            // The genesis and key follow the data directory unless they were named.
            if config.genesisPath == "\(config.dataDirectory)/genesis.json" {
                config.genesisPath = "\(data)/genesis.json"
            }
            if config.keyPath == "\(config.dataDirectory)/keys/validator.key" {
                config.keyPath = "\(data)/keys/validator.key"
            }
            config.dataDirectory = data
        }
        if let genesis { config.genesisPath = genesis }
        if let validatorKey { config.keyPath = validatorKey }
        if let httpHost { config.http.host = httpHost }
        if let httpPort { config.http.port = httpPort }
        if let blockInterval { config.timing.blockInterval = UInt64(blockInterval) }
        if journalFsync { config.journalFsync = true }
        if noCoap {
            config.coap = nil
            config.coaps = nil
        } else if coapHost != nil || coapPort != nil {
            let base = config.coap ?? NodeConfig.Endpoint(host: "127.0.0.1", port: 5683)
            config.coap = NodeConfig.Endpoint(host: coapHost ?? base.host, port: coapPort ?? base.port)
        }
        if let coapRate { config.coapRequestsPerSecond = coapRate }
        if let coapBurst { config.coapBurst = coapBurst }
        if let coapSubmitRate { config.coapSubmitsPerSecond = coapSubmitRate }
        if let coapSubmitBurst { config.coapSubmitBurst = coapSubmitBurst }
        if let pskFile {
            config.coaps = NodeConfig.DTLS(port: coapsPort ?? config.coaps?.port ?? 5684, pskPath: pskFile)
        }
        if let coapsPort, pskFile == nil {
            guard config.coaps != nil else { throw NodeConfig.ConfigError("--coaps-port needs --psk-file") }
            config.coaps?.port = coapsPort
        }
        if let reanchor { config.reanchorPath = reanchor }
        if let mqtt { config.mqtt = try NodeConfig.hostPort(mqtt, "--mqtt") }
        if spawnBroker { config.spawnBroker = true }
        if let brokerDir { config.brokerDirectory = brokerDir }
        if requireDeviceCertificate { config.requireDeviceCertificate = true }
        if let mqttCredentials { config.mqttCredentialsPath = mqttCredentials }
        if let mqttClientId { config.mqttClientID = mqttClientId }
        if let logLevel { config.logLevel = logLevel }
        try config.validate()
    }

    /// Applies the flags, then checks (`--check`) or starts the node and runs it until SIGTERM or SIGINT.
    func serve(_ config: inout NodeConfig, role: Gateway.Role) async throws {
        do { try apply(to: &config) } catch { throw StartupFailure(.configuration, "\(error)") }
        if check {
            let lines = try Gateway.check(config, role: role)
            print((["amarsd: \(self.config ?? "the configuration") is valid"] + lines).joined(separator: "\n"))
            return
        }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let gateway = Gateway(
            config: config, role: role, logger: Logger(label: "amarsd"),
            build: [("version", BuildInfo.version), ("commit", BuildInfo.commit)])
        let lines = try await gateway.start()
        print(lines.joined(separator: "\n"))
        fflush(nil)
        try await gateway.run()
        print("amarsd: stopped")
        fflush(nil)
    }
}

extension StartupFailure {
    /// Runs `body`; a failure is printed as `prefix: message` on stderr and becomes the exit status.
    static func reporting(_ prefix: String, _ body: () async throws -> Void) async throws {
        do { try await body() } catch let failure as StartupFailure {
            FileHandle.standardError.write(Data("\(prefix): \(failure.message)\n".utf8))
            throw ExitCode(failure.kind.rawValue)
        }
    }
}
