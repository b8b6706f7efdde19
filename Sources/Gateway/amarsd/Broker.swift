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
            Writes DIR/mosquitto.conf, DIR/acl, DIR/passwd, DIR/mosquitto.pid and, once, DIR/gateway.credentials,
            then becomes mosquitto (same process id). Give the gateway the credentials file (`mqtt_credentials:` in
            the node config, or `amarsd run --mqtt-credentials`). With --tls-port, give it DIR too (`broker_dir:`,
            or `amarsd run --broker-dir`): it then denies the devices whose certificates the chain revoked
            (DIR/revoked-devices, kept across restarts) and makes the broker reload.
            """)

    @Option(help: "Directory for the broker's configuration, login and persistence.")
    var dir: String

    @Option(help: "Loopback TCP port to listen on.")
    var port: Int = 1883

    @Option(
        help: "Also listen with TLS 1.2 here for devices with certificates (needs --ca-file, --cert-file, --key-file).")
    var tlsPort: Int?

    @Option(help: "Address of the TLS listener.")
    var tlsHost: String = "127.0.0.1"

    @Option(help: "The operator's root certificate (PEM): client certificates must chain to it.")
    var caFile: String?

    @Option(help: "The broker's server certificate chain (PEM, from amars cert server).")
    var certFile: String?

    @Option(help: "The broker's private key (PEM).")
    var keyFile: String?

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1...65535") }
        let tlsFiles = [caFile, certFile, keyFile]
        if let tlsPort {
            guard (1...65535).contains(tlsPort), tlsPort != port else {
                throw ValidationError("--tls-port must be 1...65535 and not --port")
            }
            guard tlsFiles.allSatisfy({ $0 != nil }) else {
                throw ValidationError("--tls-port needs --ca-file, --cert-file and --key-file")
            }
            for file in tlsFiles.compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: file) {
                throw ValidationError("cannot read \(file)")
            }
        } else if tlsFiles.contains(where: { $0 != nil }) {
            throw ValidationError("--ca-file, --cert-file and --key-file go with --tls-port")
        }
    }

    func run() throws {
        let broker: BrokerProcess
        do {
            let tls = tlsPort.map { p in
                BrokerProcess.TLSListener(
                    host: tlsHost, port: p, caFile: absolute(caFile!), certFile: absolute(certFile!),
                    keyFile: absolute(keyFile!))
            }
            broker = try BrokerProcess(
                directory: URL(fileURLWithPath: dir), port: port, tls: tls, saveOnEveryChange: false)
            try broker.writeFiles()
        } catch {
            Self.fail("\(error)")
        }
        if broker.tls != nil { setenv("OPENSSL_CONF", broker.openSSLConfigPath, 1) }
        // execv keeps the process id: this is mosquitto's, for a gateway to signal when its deny list changes.
        do { try "\(getpid())\n".write(toFile: broker.pidPath, atomically: true, encoding: .utf8) } catch {
            Self.fail("cannot write \(broker.pidPath): \(error)")
        }
        let arguments = [broker.executable, "-c", broker.configPath]
        var argv = arguments.map { strdup($0) } + [nil]
        // As BrokerProcess spawns it: mosquitto must not inherit a blocked SIGTERM.
        BrokerProcess.withSignalsUnblocked { _ = execv(broker.executable, &argv) }
        Self.fail("cannot run \(broker.executable): \(String(cString: strerror(errno)))")
    }

    private func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// One line on stderr and a non-zero exit status.
    private static func fail(_ why: String) -> Never {
        FileHandle.standardError.write(Data("amarsd broker: \(why)\n".utf8))
        Foundation.exit(1)
    }
}
