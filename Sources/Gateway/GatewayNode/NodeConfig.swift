import AmarsCodec
import Consensus
import Foundation
import Yams

/// Configuration of one committee gateway (`amarsd node --config FILE`), read from YAML.
///
/// One file per node rather than a long command line, because a delegate's setup (its peers with their keys,
/// its ports, its timeouts) is something an operator writes once and keeps beside the data. Every field is
/// checked when the file is read, and an unknown key is refused: a typo must not silently fall back to a default.
///
/// ```yaml
/// data: data/node-1              # directory of chain.sqlite and the vote journal
/// genesis: data/genesis.json
/// key: data/keys/validator-1.key # validator key; also the node's network identity
/// p2p: { host: 127.0.0.1, port: 7001 }
/// peers:
///   - { host: 127.0.0.1, port: 7002, key: <64 hex digits, optional> }
/// http: { host: 127.0.0.1, port: 8645 }
/// coap: { host: 127.0.0.1, port: 5683 }   # optional: no CoAP server when absent
/// mqtt: 127.0.0.1:1883                    # optional: MQTT bridge to a running broker
/// mqtt_credentials: broker/gateway.credentials   # its login there ("USERNAME PASSWORD"), see `amarsd broker`
/// reanchor: reanchor.bin                  # optional: the operator's statement served at CoAP v1/reanchor
/// journal_fsync: false                    # optional: acknowledged submits flushed to disk (power-cut safe)
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

    public var dataDirectory: String
    public var genesisPath: String
    public var keyPath: String
    public var p2p: Endpoint
    public var peers: [Peer]
    public var http: Endpoint
    public var coap: Endpoint?
    public var mqtt: Endpoint?
    /// The gateway's login at that broker (``MqttCredentials`` file), for a broker that locks its topics down.
    public var mqttCredentialsPath: String?
    /// The operator's re-anchor statement (`amars device reanchor --out`), served at CoAP `v1/reanchor` and read
    /// at each request, so it can be replaced while the node runs.
    public var reanchorPath: String?
    /// Whether the submit journal flushes each write to the disk (survives a power cut), not only to the OS
    /// (survives a crash of the process). Off by default: see ``SubmitJournal``.
    public var journalFsync: Bool
    public var timing: Timing
    public var logLevel: String

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
                "data", "genesis", "key", "p2p", "peers", "http", "coap", "mqtt", "mqtt_credentials", "reanchor",
                "journal_fsync", "consensus", "log",
            ])
        func path(_ key: String) throws(ConfigError) -> String {
            guard let node = top[key] else { throw ConfigError("missing '\(key)'") }
            let text = try Self.string(node, key)
            guard !text.isEmpty else { throw ConfigError("'\(key)' is empty") }
            return text.hasPrefix("/") ? text : URL(fileURLWithPath: baseDirectory).appendingPathComponent(text).path
        }
        dataDirectory = try path("data")
        genesisPath = try path("genesis")
        keyPath = try path("key")
        guard let p2pNode = top["p2p"] else { throw ConfigError("missing 'p2p' (host and port to listen on)") }
        p2p = try Self.endpoint(p2pNode, "p2p", portZero: false)
        guard let httpNode = top["http"] else { throw ConfigError("missing 'http' (host and port of the API)") }
        http = try Self.endpoint(httpNode, "http", portZero: true)
        coap = try top["coap"].map { (n: Node) throws(ConfigError) in try Self.endpoint(n, "coap", portZero: false) }
        if let m = top["mqtt"] {
            let text = try Self.string(m, "mqtt")
            guard let colon = text.lastIndex(of: ":"), colon > text.startIndex,
                let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
            else { throw ConfigError("'mqtt' takes HOST:PORT, e.g. 127.0.0.1:1883") }
            mqtt = Endpoint(host: String(text[..<colon]), port: port)
        } else {
            mqtt = nil
        }
        mqttCredentialsPath = try top["mqtt_credentials"].map { _ throws(ConfigError) in try path("mqtt_credentials") }
        if mqttCredentialsPath != nil && mqtt == nil { throw ConfigError("'mqtt_credentials' needs 'mqtt'") }
        reanchorPath = try top["reanchor"].map { _ throws(ConfigError) in try path("reanchor") }
        if reanchorPath != nil && coap == nil { throw ConfigError("'reanchor' needs 'coap' (devices fetch it there)") }
        if let node = top["journal_fsync"] {
            guard let value = node.bool else { throw ConfigError("'journal_fsync' must be true or false") }
            journalFsync = value
        } else {
            journalFsync = false
        }
        peers = []
        if let list = top["peers"] {
            guard let seq = list.sequence else { throw ConfigError("'peers' must be a list of {host, port, key}") }
            for (i, item) in seq.enumerated() {
                let name = "peers[\(i)]"
                let m = try Self.mapping(item, name, allowed: ["host", "port", "key"])
                let endpoint = try Self.endpoint(item, name, portZero: false, allowKey: true)
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
        timing = Timing()
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
        guard Self.logLevels.contains(logLevel) else {
            throw ConfigError("'log' must be one of \(Self.logLevels.joined(separator: ", "))")
        }
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

    private static func string(_ node: Node, _ name: String) throws(ConfigError) -> String {
        guard let s = node.scalar?.string else { throw ConfigError("'\(name)' must be a single value") }
        return s
    }

    private static func endpoint(_ node: Node, _ name: String, portZero: Bool, allowKey: Bool = false)
        throws(ConfigError) -> Endpoint
    {
        let m = try mapping(node, "'\(name)'", allowed: allowKey ? ["host", "port", "key"] : ["host", "port"])
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
