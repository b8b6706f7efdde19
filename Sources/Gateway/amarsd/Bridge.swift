import ArgumentParser
import DeviceGateway
import DeviceProtocol
import Foundation
import GatewayNode
import Logging

/// `amarsd bridge`: serves boards without IP (or QEMU's UART) by relaying their SLIP-framed CoAP to a running
/// gateway's CoAP port.
///
/// A relay, not a second node: the gateway already owns the chain's SQLite file, and its handlers, limits and
/// state stay the one source of truth; the bridge only adds framing, per-link checks and a rate limit.
struct Bridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Relay SLIP-framed CoAP between a serial line and a gateway's CoAP port.",
        discussion: """
            The board speaks CoAP (RFC 7252) in SLIP frames with a CRC-16, one request at a time; the bridge
            checks each message and forwards it over UDP to the gateway (`amarsd run` with CoAP enabled).
            Block-wise transfers pass through message by message. Observe is not offered over serial: a
            registration is answered as a plain GET, and the board polls v1/head.

            With QEMU:
              qemu-system-arm ... -serial tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on
              amarsd bridge --serial tcp:127.0.0.1:4321
            With a USB serial adapter:
              amarsd bridge --serial /dev/ttyUSB0 --baud 115200
            """)

    @Option(help: "Serial device path, or tcp:HOST:PORT for an emulator's UART.")
    var serial: String

    @Option(help: "Baud rate of a serial device (9600 ... 1000000).")
    var baud: Int = 115_200

    @Option(help: "The gateway's CoAP endpoint.")
    var gateway: String = "coap://127.0.0.1:5683"

    @Option(help: "Requests per second the link may make before getting 4.29.")
    var rate: Double = 20

    @Option(help: "Requests the link may make at once after a quiet spell.")
    var burst: Double = 40

    @Option(help: "Seconds before the first retransmission to the gateway.")
    var gatewayTimeout: Double = 1.0

    @Option(help: "Consecutive failed opens of the line before giving up (0: never give up).")
    var maxRetries: Int = 0

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard let endpoint = SerialPort.Endpoint.parse(serial, baud: baud) else {
            throw ValidationError("--serial must be a device path or tcp:HOST:PORT")
        }
        if case .device = endpoint, SerialPort.speed(baud) == nil {
            throw ValidationError("unsupported --baud \(baud)")
        }
        guard rate > 0, burst >= 1 else { throw ValidationError("--rate must be > 0 and --burst >= 1") }
        guard gatewayTimeout > 0, gatewayTimeout <= 60 else {
            throw ValidationError("--gateway-timeout must be in (0, 60] seconds")
        }
        guard maxRetries >= 0 else { throw ValidationError("--max-retries must be >= 0") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws { try await StartupFailure.reporting("amarsd bridge") { try serve() } }

    private func serve() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "amarsd.bridge")
        let signals = ShutdownSignals.install()
        let relay: CoAPRelay
        do {
            relay = try CoAPRelay(
                gateway: gateway, options: CoAPRelay.Options(ackTimeout: gatewayTimeout), logger: logger)
        } catch {
            throw StartupFailure(.configuration, "\(error)")
        }
        let limits = SerialSession<CoAPRelay>.Limits(
            requests: .init(perSecond: rate, burst: burst, maxDevices: 1))
        let bridge = SerialBridge(session: SerialSession(backend: relay, limits: limits))
        let endpoint = SerialPort.Endpoint.parse(serial, baud: baud)!
        let port = SerialPort(
            endpoint: endpoint, handler: bridge,
            reconnect: SerialPort.Reconnect(maxAttempts: maxRetries == 0 ? nil : maxRetries), logger: logger)
        do { try port.start() } catch {
            throw StartupFailure(.unavailable, "\(error)")
        }
        print("amarsd bridge: \(endpoint) <-> \(gateway)")
        fflush(nil)
        // Wake up now and then to notice a port that gave up, and to log the counters for whoever watches.
        var lastLogged = SerialSession<CoAPRelay>.Counters()
        while !signals.wait(timeoutMillis: 10_000) {
            if port.hasFailed { break }
            let now = bridge.counters
            if now != lastLogged {
                logger.debug("bridge counters", metadata: Self.metadata(now, port.counters, relay.counters))
                lastLogged = now
            }
        }
        port.stop()
        logger.info("bridge stopped", metadata: Self.metadata(bridge.counters, port.counters, relay.counters))
        if port.hasFailed { throw ExitCode.failure }
    }

    static func metadata(
        _ s: SerialSession<CoAPRelay>.Counters, _ p: SerialPort.Counters, _ r: CoAPRelay.Counters
    ) -> Logger.Metadata {
        [
            "frames": "\(s.frames)", "requests": "\(s.requests)", "duplicates": "\(s.duplicates)",
            "rateLimited": "\(s.rateLimited)", "refused": "\(s.refused)", "resets": "\(s.resets)",
            "malformed": "\(s.malformed)", "slipDrops": "\(s.slipDrops.total)",
            "gatewayTimeouts": "\(r.timeouts)", "opens": "\(p.opens)", "disconnects": "\(p.disconnects)",
            "bytesIn": "\(p.bytesIn)", "bytesOut": "\(p.bytesOut)",
        ]
    }
}
