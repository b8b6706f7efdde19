import AmarsCodec
import Consensus
import Foundation
import Yams

/// Configuration of one gateway, read from YAML: the one schema of `amarsd node --config FILE` and of
/// `amarsd run [--config FILE]`, whose flags override it (see `amarsd`'s `GatewayOptions`).
///
/// One file per node rather than a long command line, because a delegate's setup (its peers with their keys,
/// its ports, its timeouts) is something an operator writes once and keeps beside the data. Every field is
/// checked when the file is read, and an unknown key is refused with its path: a typo must not silently fall
/// back to a default.
///
/// ```yaml
/// data: data/node-1              # directory of chain.sqlite, the journals, the broker's files
/// genesis: data/genesis.json     # optional: <data>/genesis.json
/// key: data/keys/validator-1.key # optional (<data>/keys/validator.key); also the node's network identity
/// p2p: { host: 127.0.0.1, port: 7001 }    # committee nodes (`amarsd node`) only
/// peers:
///   - { host: 127.0.0.1, port: 7002, key: <64 hex digits, optional> }
/// http: { host: 127.0.0.1, port: 8645, max_connections: 512, workers: 4 }   # optional, these are the defaults
/// coap: { host: 127.0.0.1, port: 5683, requests_per_second: 50, burst: 200 } # optional: no CoAP when absent
/// coaps: { port: 5684, psk_file: psk.txt } # optional: DTLS-PSK beside plain CoAP ('IDENTITY HEXKEY' lines)
/// mqtt: 127.0.0.1:1883                    # optional: MQTT bridge to a broker
/// mqtt_credentials: broker/gateway.credentials   # its login there ("USERNAME PASSWORD"), see `amarsd broker`
/// mqtt_client_id: gateway-1               # optional: else a random one kept in <data>/mqtt-client-id
/// spawn_broker: false                     # optional: start a locked-down mosquitto on mqtt's port
/// reanchor: reanchor.bin                  # optional: the operator's statement served at CoAP v1/reanchor
/// journal_fsync: false                    # optional: acknowledged submits flushed to disk (power-cut safe)
/// require_device_certificate: false       # optional: device doors take only devices with a valid certificate
/// consensus:                              # optional, milliseconds
///   blockInterval: 1000
///   proposeTimeout: 3000
///   prepareTimeout: 1000
///   commitTimeout: 1000
///   timeoutIncrement: 500
///   retransmitInterval: 1000
/// log: info
/// ```
///
/// Relative paths are resolved against the directory of the configuration file, so a node directory can be
/// moved as a whole and the node started from anywhere.
public struct NodeConfig: Equatable, Sendable {
    public struct Endpoint: Equatable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { "\(host):\(port)" }
    }

    public struct Peer: Equatable, Sendable {
        public var host: String
        public var port: Int
        /// The peer's x-only node key; when given, only that key is accepted at this address.
        public var key: Bytes32?

        public init(host: String, port: Int, key: Bytes32? = nil) {
            self.host = host
            self.port = port
            self.key = key
        }
    }

    /// Pacing and round timeouts. Liveness only: safety never depends on any of these.
    public struct Timing: Equatable, Sendable {
        /// Least time between the starts of two consecutive heights (idle chains still make empty blocks).
        public var blockInterval: UInt64 = 1000
        public var proposeTimeout: UInt64 = 3000
        public var prepareTimeout: UInt64 = 1000
        public var commitTimeout: UInt64 = 1000
        /// Added to every step's timeout per round, so that some round is eventually long enough.
        public var timeoutIncrement: UInt64 = 500
        /// Period of the gossip timer: re-send own messages, announce the head to peers.
        public var retransmitInterval: UInt64 = 1000

        public init() {}

        public var schedule: TimeoutSchedule {
            TimeoutSchedule(
                proposeBase: proposeTimeout, proposeIncrement: timeoutIncrement, prepareBase: prepareTimeout,
                prepareIncrement: timeoutIncrement, commitBase: commitTimeout, commitIncrement: timeoutIncrement)
        }
    }

    /// DTLS with pre-shared keys, beside plain CoAP.
    public struct DTLS: Equatable, Sendable {
        public var port: Int
        /// 'IDENTITY HEXKEY' lines, one per device.
        public var pskPath: String

        public init(port: Int, pskPath: String) {
            self.port = port
            self.pskPath = pskPath
        }
    }

    public var dataDirectory: String
    public var genesisPath: String
    public var keyPath: String
    /// Where a committee node listens for its peers; `amarsd run` (a network of one) has none.
    public var p2p: Endpoint?
    public var peers: [Peer]
    public var http: Endpoint
    public var httpMaxConnections: Int
    /// Threads answering HTTP requests (see ``HTTPServer/Limits/workerThreads``).
    public var httpWorkers: Int
    public var coap: Endpoint?
    /// Requests one device address may make per second, and at once after a quiet spell, before 4.29.
    public var coapRequestsPerSecond: Double
    public var coapBurst: Double
    /// Transactions one device address may submit per second, and at once, before 4.29 "submit rate".
    public var coapSubmitsPerSecond: Double
    public var coapSubmitBurst: Double
    public var coaps: DTLS?
    public var mqtt: Endpoint?
    /// The gateway's login at that broker (``MqttCredentials`` file), for a broker that locks its topics down.
    public var mqttCredentialsPath: String?
    /// Unique per gateway on one broker (a second client with the same id takes the session over); nil: a
    /// random one kept in the data directory.
    public var mqttClientID: String?
    /// Start a locked-down mosquitto on `mqtt`'s port, with the gateway's login made for it.
    public var spawnBroker: Bool
    /// The directory of a broker with a TLS listener for devices (`amarsd broker --dir`): this gateway keeps its
    /// deny list in step with the chain's revocations (``BrokerRevocations``).
    public var brokerDirectory: String?
    /// The operator's re-anchor statement (`amars device reanchor --out`), served at CoAP `v1/reanchor` and read
    /// at each request, so it can be replaced while the node runs.
    public var reanchorPath: String?
    /// Whether the submit journal flushes each write to the disk (survives a power cut), not only to the OS
    /// (survives a crash of the process). Off by default: see ``SubmitJournal``.
    public var journalFsync: Bool
    /// Whether the device doors (CoAP, MQTT) refuse a transaction whose sender has no valid, unrevoked
    /// certificate on chain (``ChainNode/requireDeviceCertificates``).
    public var requireDeviceCertificate: Bool
    public var timing: Timing
    public var logLevel: String

    /// The defaults for a node whose data lives in `dataDirectory`: HTTP on 127.0.0.1:8645 and nothing else.
    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
        genesisPath = "\(dataDirectory)/genesis.json"
        keyPath = "\(dataDirectory)/keys/validator.key"
        p2p = nil
        peers = []
        http = Endpoint(host: "127.0.0.1", port: 8645)
        httpMaxConnections = 512
        httpWorkers = 4
        coap = nil
        coapRequestsPerSecond = 50
        coapBurst = 200
        coapSubmitsPerSecond = 2
        coapSubmitBurst = 10
        coaps = nil
        mqtt = nil
        mqttCredentialsPath = nil
        mqttClientID = nil
        spawnBroker = false
        brokerDirectory = nil
        reanchorPath = nil
        journalFsync = false
        requireDeviceCertificate = false
        timing = Timing()
        logLevel = "info"
    }

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// A configuration error names the key at fault and what was expected.
    public struct ConfigError: Error, Equatable, CustomStringConvertible {
        public var message: String

        public init(_ message: String) { self.message = message }

        public var description: String { message }
    }

    /// Reads and validates the file at `path`.
    public static func load(path: String) throws(ConfigError) -> NodeConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read config file \(path)")
        }
        let base = (URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()).path
        do {
            return try NodeConfig(yaml: String(decoding: data, as: UTF8.self), baseDirectory: base)
        } catch {
            throw ConfigError("\(path): \(error.message)")
        }
    }

    /// Parses YAML text; relative paths are taken relative to `baseDirectory`.
    public init(yaml: String, baseDirectory: String) throws(ConfigError) {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw ConfigError("the file is empty") }
            root = node
        } catch let e as ConfigError {
            throw e
        } catch {
            throw ConfigError("not valid YAML: \(error)")
        }
        let top = try Self.mapping(
            root, "the top level",
            allowed: [
                "data", "genesis", "key", "p2p", "peers", "http", "coap", "coaps", "mqtt", "mqtt_credentials",
                "mqtt_client_id", "spawn_broker", "broker_dir", "reanchor", "journal_fsync",
                "require_device_certificate",
                "consensus",
                "log",
            ])
        func path(_ key: String) throws(ConfigError) -> String? {
            guard let node = top[key] else { return nil }
            return try Self.path(node, key, baseDirectory: baseDirectory)
        }
        guard let data = try path("data") else { throw ConfigError("missing 'data'") }
        self.init(dataDirectory: data)
        genesisPath = try path("genesis") ?? genesisPath
        keyPath = try path("key") ?? keyPath
        p2p = try top["p2p"].map { (n: Node) throws(ConfigError) in try Self.endpoint(n, "p2p", portZero: false) }
        if let node = top["http"] {
            let m = try Self.mapping(node, "'http'", allowed: ["host", "port", "max_connections", "workers"])
            // Host and port may each be left at its default here (only the limits changed, say).
            if let host = m["host"] { http.host = try Self.string(host, "http.host") }
            guard !http.host.isEmpty else { throw ConfigError("'http.host' is empty") }
            http.port = try Self.int(m, "http", "port", 0...65535) ?? http.port
            httpMaxConnections = try Self.int(m, "http", "max_connections", 1...1_000_000) ?? httpMaxConnections
            httpWorkers = try Self.int(m, "http", "workers", 1...256) ?? httpWorkers
        }
        if let node = top["coap"] {
            let limits = ["requests_per_second", "burst", "submits_per_second", "submit_burst"]
            let m = try Self.mapping(node, "'coap'", allowed: ["host", "port"] + limits)
            coap = try Self.endpoint(node, "coap", portZero: false, extra: limits)
            coapRequestsPerSecond = try Self.number(m, "coap", "requests_per_second") ?? coapRequestsPerSecond
            coapBurst = try Self.number(m, "coap", "burst") ?? coapBurst
            coapSubmitsPerSecond = try Self.number(m, "coap", "submits_per_second") ?? coapSubmitsPerSecond
            coapSubmitBurst = try Self.number(m, "coap", "submit_burst") ?? coapSubmitBurst
        }
        if let node = top["coaps"] {
            let m = try Self.mapping(node, "'coaps'", allowed: ["port", "psk_file"])
            guard let port = try Self.int(m, "coaps", "port", 1...65535) else {
                throw ConfigError("'coaps' needs a port")
            }
            guard let file = m["psk_file"] else { throw ConfigError("'coaps' needs a psk_file") }
            coaps = DTLS(port: port, pskPath: try Self.path(file, "coaps.psk_file", baseDirectory: baseDirectory))
        }
        if let m = top["mqtt"] { mqtt = try Self.hostPort(try Self.string(m, "mqtt"), "'mqtt'") }
        mqttCredentialsPath = try path("mqtt_credentials")
        mqttClientID = try top["mqtt_client_id"].map { (n: Node) throws(ConfigError) in
            try Self.string(n, "mqtt_client_id")
        }
        spawnBroker = try Self.bool(top, "spawn_broker") ?? false
        brokerDirectory = try path("broker_dir")
        reanchorPath = try path("reanchor")
        journalFsync = try Self.bool(top, "journal_fsync") ?? false
        requireDeviceCertificate = try Self.bool(top, "require_device_certificate") ?? false
        if let list = top["peers"] {
            guard let seq = list.sequence else { throw ConfigError("'peers' must be a list of {host, port, key}") }
            for (i, item) in seq.enumerated() {
                let name = "peers[\(i)]"
                let m = try Self.mapping(item, name, allowed: ["host", "port", "key"])
                let endpoint = try Self.endpoint(item, name, portZero: false, extra: ["key"])
                var key: Bytes32?
                if let k = m["key"] {
                    let hex = try Self.string(k, "\(name).key")
                    guard let bytes = try? Hex.decode(hex, maxBytes: 32), let b = Bytes32(bytes) else {
                        throw ConfigError("'\(name).key' must be 64 hex digits (an x-only public key)")
                    }
                    key = b
                }
                peers.append(Peer(host: endpoint.host, port: endpoint.port, key: key))
            }
        }
        if let c = top["consensus"] {
            let allowed = [
                "blockInterval", "proposeTimeout", "prepareTimeout", "commitTimeout", "timeoutIncrement",
                "retransmitInterval",
            ]
            let m = try Self.mapping(c, "consensus", allowed: allowed)
            func ms(_ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> UInt64? {
                guard let n = m[key] else { return nil }
                guard let v = n.int, range.contains(v) else {
                    throw ConfigError("'consensus.\(key)' must be a whole number of milliseconds in \(range)")
                }
                return UInt64(v)
            }
            timing.blockInterval = try ms("blockInterval", 10...600_000) ?? timing.blockInterval
            timing.proposeTimeout = try ms("proposeTimeout", 10...600_000) ?? timing.proposeTimeout
            timing.prepareTimeout = try ms("prepareTimeout", 10...600_000) ?? timing.prepareTimeout
            timing.commitTimeout = try ms("commitTimeout", 10...600_000) ?? timing.commitTimeout
            timing.timeoutIncrement = try ms("timeoutIncrement", 0...600_000) ?? timing.timeoutIncrement
            timing.retransmitInterval = try ms("retransmitInterval", 50...600_000) ?? timing.retransmitInterval
        }
        logLevel = try top["log"].map { (n: Node) throws(ConfigError) in try Self.string(n, "log") } ?? "info"
        try validate()
    }

    /// The rules between keys, checked again after command-line flags changed some (their names in brackets).
    public func validate() throws(ConfigError) {
        guard Self.logLevels.contains(logLevel) else {
            throw ConfigError("'log' (--log-level) must be one of \(Self.logLevels.joined(separator: ", "))")
        }
        if mqttCredentialsPath != nil && mqtt == nil {
            throw ConfigError("'mqtt_credentials' (--mqtt-credentials) needs 'mqtt' (--mqtt)")
        }
        if spawnBroker && mqtt == nil { throw ConfigError("'spawn_broker' (--spawn-broker) needs 'mqtt' (--mqtt)") }
        if brokerDirectory != nil && mqtt == nil {
            throw ConfigError("'broker_dir' (--broker-dir) needs 'mqtt' (--mqtt)")
        }
        if spawnBroker && brokerDirectory != nil {
            throw ConfigError(
                "'spawn_broker' (--spawn-broker) starts a broker without a TLS listener, which denies nobody: drop 'broker_dir'"
            )
        }
        if spawnBroker && mqttCredentialsPath != nil {
            throw ConfigError(
                "'spawn_broker' (--spawn-broker) makes the gateway's login itself: drop 'mqtt_credentials'")
        }
        if let id = mqttClientID,
            id.isEmpty || id.utf8.count > 128
                || !id.unicodeScalars.allSatisfy({
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
                })
        {
            throw ConfigError("'mqtt_client_id' (--mqtt-client-id) must be 1 to 128 ASCII letters, digits, '-' or '_'")
        }
        if mqttClientID != nil && mqtt == nil { throw ConfigError("'mqtt_client_id' (--mqtt-client-id) needs 'mqtt'") }
        if reanchorPath != nil && coap == nil {
            throw ConfigError("'reanchor' (--reanchor) needs 'coap' (devices fetch it there)")
        }
        if coaps != nil && coap == nil { throw ConfigError("'coaps' (--psk-file) needs 'coap'") }
        guard coapRequestsPerSecond > 0, coapBurst >= 1 else {
            throw ConfigError("'coap.requests_per_second' must be > 0 and 'coap.burst' >= 1")
        }
        guard coapSubmitsPerSecond > 0, coapSubmitBurst >= 1 else {
            throw ConfigError("'coap.submits_per_second' must be > 0 and 'coap.submit_burst' >= 1")
        }
    }

    /// `HOST:PORT`, as `mqtt` and `--mqtt` take it.
    public static func hostPort(_ text: String, _ name: String) throws(ConfigError) -> Endpoint {
        guard let colon = text.lastIndex(of: ":"), colon > text.startIndex,
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { throw ConfigError("\(name) takes HOST:PORT, e.g. 127.0.0.1:1883") }
        return Endpoint(host: String(text[..<colon]), port: port)
    }

    // MARK: helpers

    private static func mapping(_ node: Node, _ name: String, allowed: [String]) throws(ConfigError) -> Node.Mapping {
        guard let m = node.mapping else { throw ConfigError("\(name) must be a mapping of keys to values") }
        for (k, _) in m {
            guard let key = k.string, allowed.contains(key) else {
                throw ConfigError(
                    "unknown key '\(k.string ?? "?")' in \(name); expected \(allowed.joined(separator: ", "))")
            }
        }
        return m
    }

    private static func path(_ node: Node, _ name: String, baseDirectory: String) throws(ConfigError) -> String {
        let text = try string(node, name)
        guard !text.isEmpty else { throw ConfigError("'\(name)' is empty") }
        return text.hasPrefix("/") ? text : URL(fileURLWithPath: baseDirectory).appendingPathComponent(text).path
    }

    private static func bool(_ m: Node.Mapping, _ key: String) throws(ConfigError) -> Bool? {
        guard let node = m[key] else { return nil }
        guard let value = node.bool else { throw ConfigError("'\(key)' must be true or false") }
        return value
    }

    private static func int(_ m: Node.Mapping, _ parent: String, _ key: String, _ range: ClosedRange<Int>)
        throws(ConfigError) -> Int?
    {
        guard let node = m[key] else { return nil }
        guard let v = node.int, range.contains(v) else {
            throw ConfigError("'\(parent).\(key)' must be a whole number in \(range)")
        }
        return v
    }

    private static func number(_ m: Node.Mapping, _ parent: String, _ key: String) throws(ConfigError) -> Double? {
        guard let node = m[key] else { return nil }
        guard let v = node.float ?? node.int.map(Double.init), v.isFinite, v > 0, v <= 1_000_000 else {
            throw ConfigError("'\(parent).\(key)' must be a number above 0")
        }
        return v
    }

    private static func string(_ node: Node, _ name: String) throws(ConfigError) -> String {
        guard let s = node.scalar?.string else { throw ConfigError("'\(name)' must be a single value") }
        return s
    }

    private static func endpoint(_ node: Node, _ name: String, portZero: Bool, extra: [String] = [])
        throws(ConfigError) -> Endpoint
    {
        let m = try mapping(node, "'\(name)'", allowed: ["host", "port"] + extra)
        guard let hostNode = m["host"] else { throw ConfigError("'\(name)' needs a host") }
        let host = try string(hostNode, "\(name).host")
        guard !host.isEmpty else { throw ConfigError("'\(name).host' is empty") }
        let lowest = portZero ? 0 : 1
        guard let portNode = m["port"], let port = portNode.int, (lowest...65535).contains(port) else {
            throw ConfigError("'\(name).port' must be a port number \(lowest)...65535")
        }
        return Endpoint(host: host, port: port)
    }
}
