import ArgumentParser
import DeviceGateway
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `amarsd broker`: the locked-down mosquitto a gateway's MQTT bridge talks to, for scripts that run the broker
/// as its own process (`make devnet`). The configuration is ``BrokerProcess``'s, the same `amarsd run
/// --spawn-broker` uses: loopback only, persistent, devices anonymous but limited by the ACL to reading the
/// chain's topics and submitting transactions, the gateway's login in `DIR/gateway.credentials`.
struct Broker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run mosquitto locked down for a gateway (config, ACL and the gateway's login in --dir).",
        discussion: """
            Writes DIR/mosquitto.conf, DIR/acl, DIR/passwd and, once, DIR/gateway.credentials, then becomes
            mosquitto (same process id). Give the gateway the credentials file (`mqtt_credentials:` in the node
            config, or `amarsd run --mqtt-credentials`).
            """)

    @Option(help: "Directory for the broker's configuration, login and persistence.")
    var dir: String

    @Option(help: "Loopback TCP port to listen on.")
    var port: Int = 1883

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1...65535") }
    }

    func run() throws {
        let broker: BrokerProcess
        do {
            broker = try BrokerProcess(directory: URL(fileURLWithPath: dir), port: port, saveOnEveryChange: false)
            try broker.writeFiles()
        } catch {
            Self.fail("\(error)")
        }
        let arguments = [broker.executable, "-c", broker.configPath]
        var argv = arguments.map { strdup($0) } + [nil]
        // As BrokerProcess spawns it: mosquitto must not inherit a blocked SIGTERM.
        BrokerProcess.withSignalsUnblocked { _ = execv(broker.executable, &argv) }
        Self.fail("cannot run \(broker.executable): \(String(cString: strerror(errno)))")
    }

    /// One line on stderr and a non-zero exit status.
    private static func fail(_ why: String) -> Never {
        FileHandle.standardError.write(Data("amarsd broker: \(why)\n".utf8))
        Foundation.exit(1)
    }
}
