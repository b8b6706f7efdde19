// The device's side of the two device transports, for the simulator, `amars device …` and the end-to-end tests.
//
// A device only has the network: nothing here touches `ChainNode`. Every answer is untrusted bytes, read with
// explicit caps and handed, decoded but unverified, to the light client (``DeviceSync``).
import AmarsCodec
import AmarsCrypto
import CMosquitto
import CTLS
import DeviceProtocol
import Foundation
import Ledger
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a device's request to a gateway got no usable answer. Verification failures are not here: those are
/// ``DeviceSyncError``'s, so a caller can tell "the gateway is unreachable" from "the gateway lied".
public enum DeviceClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The host name or address does not resolve, or the endpoint text is not `host:port`.
    case badEndpoint(String)
    /// A socket call failed (errno), e.g. nothing listening (ECONNREFUSED) or no route.
    case socket(call: String, errno: Int32)
    /// No answer within the retransmission schedule (CoAP) or the wait (MQTT).
    case timeout(String)
    /// The gateway answered Reset: it could not process our message at all.
    case reset
    /// The gateway answered with an error code; the diagnostic is its short ASCII text, sanitised and capped.
    case gatewayError(code: UInt8, diagnostic: String)
    /// The answer violates the protocol (wrong block offset, missing Block2 mid-transfer, bad content format…).
    case protocolViolation(String)
    /// A body larger than the client's cap (a block-wise transfer or an MQTT message).
    case bodyTooLarge(limit: Int)
    /// The body does not decode as the payload the resource promises.
    case undecodable(CodecError)
    /// libmosquitto returned an error code.
    case mqtt(Int32)
    /// The broker refused the connection (CONNACK code) or the subscription.
    case mqttRefused(String)
    /// The TLS files cannot be used: `what` names the file or setting to fix.
    case tls(String)
    /// The gateway refused the submitted transaction; the code is the chain's camelCase refusal name.
    case transactionRefused(String)
    /// The transport cannot carry this request at all (MQTT serves checkpoints, not proofs): not worth a retry.
    case unsupported(String)

    public var description: String {
        switch self {
        case .badEndpoint(let s): "bad endpoint: \(s)"
        case .socket(let call, let e): "\(call): \(String(cString: strerror(e)))"
        case .timeout(let what): "no answer: \(what)"
        case .reset: "the gateway reset the exchange"
        case .gatewayError(let code, let d): "gateway answered \(CoAPCodeText.text(code)) \(d)"
        case .protocolViolation(let s): "protocol violation: \(s)"
        case .bodyTooLarge(let limit): "answer larger than \(limit) bytes"
        case .undecodable(let e): "undecodable answer: \(e)"
        case .mqtt(let rc): "libmosquitto: \(String(cString: mosquitto_strerror(rc)))"
        case .mqttRefused(let s): "broker refused: \(s)"
        case .tls(let what): "TLS: \(what)"
        case .transactionRefused(let code): "transaction refused: \(code)"
        case .unsupported(let what): "\(what)"
        }
    }

    /// The 4.04 of a resource that does not (yet) exist: a receipt still pending, a block not produced.
    public var isNotFound: Bool {
        if case .gatewayError(let code, _) = self { return code == CoAPCode.notFound.rawValue }
        return false
    }
}

/// "4.04" for a code byte, for messages.
enum CoAPCodeText {
    static func text(_ raw: UInt8) -> String {
        let code = CoAPCode(rawValue: raw)
        let detail = code.detail < 10 ? "0\(code.detail)" : "\(code.detail)"
        return "\(code.codeClass).\(detail)"
    }
}

/// Monotonic nanoseconds; wall-clock jumps must not stretch or cut a retransmission timer.
@inline(__always)
func deviceClockNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

// MARK: - CoAP

/// A CoAP (RFC 7252) client for the gateway's device API over plain UDP, using DeviceProtocol's codec: the
/// same bytes firmware sends, so the simulator exercises the gateway the way boards do.
///
/// Confirmable requests are retransmitted on RFC 7252 §4.8's schedule (initial timeout randomised between
/// `ackTimeout` and `ackTimeout × ackRandomFactor`, doubled each time, `maxRetransmit` times); the defaults
/// are scaled down from the RFC's 2 s because a gateway on a LAN answers in milliseconds and a CLI user should
/// not wait 93 s to learn a gateway is down. Responses are matched by Message ID (ACK, RST) and token
/// (piggybacked or separate), datagrams from anyone else are filtered by the connected socket, and bodies
/// larger than one datagram are fetched block by block (RFC 7959 Block2) into a buffer capped at
/// ``Configuration/maxBodyBytes``. Uploads over 1024 bytes go out as Block1.
///
/// One exchange at a time, from one thread: a device has one radio and one outstanding request (NSTART = 1).
/// The class is therefore deliberately not `Sendable`; a simulator gives every virtual device its own client.
public final class CoAPDeviceClient {
    public struct Configuration: Sendable, Equatable {
        public var host: String
        public var port: UInt16
        /// ACK_TIMEOUT in milliseconds (RFC default 2000).
        public var ackTimeoutMillis: UInt64
        /// ACK_RANDOM_FACTOR (RFC default 1.5).
        public var ackRandomFactor: Double
        /// MAX_RETRANSMIT (RFC default 4).
        public var maxRetransmit: Int
        /// How long to wait for a separate response after an empty ACK.
        public var separateResponseMillis: UInt64
        /// Largest datagram accepted; CoAP's own 1152-byte bound by default.
        public var maxMessageSize: Int
        /// Largest reassembled Block2 body; checkpoint runs are the largest answers (64 × under 6 KiB).
        public var maxBodyBytes: Int
        /// Block size asked for (SZX; 6 = 1024 bytes). The gateway may answer smaller, never larger.
        public var preferredSZX: UInt8

        public init(
            host: String = "127.0.0.1", port: UInt16 = 5683, ackTimeoutMillis: UInt64 = 500,
            ackRandomFactor: Double = 1.5, maxRetransmit: Int = 4, separateResponseMillis: UInt64 = 5000,
            maxMessageSize: Int = CoAPMessage.maxMessageSize, maxBodyBytes: Int = 512 * 1024,
            preferredSZX: UInt8 = BlockOption.maxSZX
        ) {
            self.host = host
            self.port = port
            self.ackTimeoutMillis = ackTimeoutMillis
            self.ackRandomFactor = ackRandomFactor
            self.maxRetransmit = maxRetransmit
            self.separateResponseMillis = separateResponseMillis
            self.maxMessageSize = maxMessageSize
            self.maxBodyBytes = maxBodyBytes
            self.preferredSZX = preferredSZX
        }

        /// Parses `coap://host:port`, `coap://[v6]:port` or `host:port` (port 5683 when absent).
        public init(url: String) throws(DeviceClientError) {
            var rest = Substring(url)
            if rest.hasPrefix("coap://") { rest = rest.dropFirst("coap://".count) }
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            guard let (host, port) = parseHostPort(rest, defaultPort: 5683) else { throw .badEndpoint(url) }
            self.init(host: host, port: port)
        }
    }

    /// Counters a simulator aggregates per fleet.
    public struct Stats: Sendable, Equatable {
        public var requests = 0
        public var retransmissions = 0
        public var blocks = 0
        /// Datagrams that did not decode or belonged to no exchange of ours.
        public var ignored = 0
    }

    public let configuration: Configuration
    public private(set) var stats = Stats()
    private let fd: Int32
    private var messageID: UInt16
    private var random = SystemRandomNumberGenerator()
    private let logger: Logger
    /// Restarts of a Block2 transfer whose representation changed under us (ETag), before giving up.
    static let maxBlockRestarts = 3

    /// Resolves the gateway and connects a UDP socket to it, so the kernel drops datagrams from anyone else and
    /// reports an unreachable port as ECONNREFUSED instead of a long timeout.
    public init(configuration: Configuration, logger: Logger = Logger(label: "amars.device.coap"))
        throws(DeviceClientError)
    {
        self.configuration = configuration
        self.logger = logger
        fd = try connectedSocket(
            host: configuration.host, port: configuration.port, type: Int32(SOCK_DGRAM.rawValue))
        messageID = UInt16.random(in: .min ... .max, using: &random)
    }

    deinit { close(fd) }

    // MARK: typed calls

    // Each answer decoded but not verified: the device session (``DeviceSync``) verifies; these serve tests and
    // tools that look at the gateway's raw answers.

    public func head() throws(DeviceClientError) -> HeaderPayload { try fetch(.head) }

    public func header(at height: UInt64) throws(DeviceClientError) -> HeaderPayload { try fetch(.header(at: height)) }

    public func checkpoints(from epoch: UInt64, limit: Int = CheckpointsPayload.maxCount)
        throws(DeviceClientError) -> [Checkpoint]
    {
        let payload: CheckpointsPayload = try fetch(.checkpoints(from: epoch, limit: limit))
        return payload.checkpoints
    }

    public func accountProof(_ address: Address) throws(DeviceClientError) -> AccountProofPayload {
        try fetch(.accountProof(address))
    }

    public func transactionProof(_ id: Bytes32) throws(DeviceClientError) -> TransactionProofPayload {
        try fetch(.transactionProof(id))
    }

    public func escrowProof(_ id: Bytes32) throws(DeviceClientError) -> EscrowProofPayload {
        try fetch(.escrowProof(id))
    }

    /// Final transfers paying `address` from block `from` on, oldest first, as the gateway lists them.
    public func inbox(_ address: Address, from: UInt64, position: UInt64 = 0) throws(DeviceClientError)
        -> InboxPayload
    {
        try fetch(.inbox(address, from: from, position: position))
    }

    /// The receipt of a final transaction; ``DeviceClientError/isNotFound`` while it is pending or unknown.
    public func receipt(_ id: Bytes32) throws(DeviceClientError) -> ReceiptPayload { try fetch(.receipt(id)) }

    /// Submits a signed transaction (`POST v1/tx`) and returns the id the gateway pooled it under, after
    /// checking that it is the id of what we sent. A refusal is ``DeviceClientError/transactionRefused(_:)``
    /// with the chain's code; 5.03 (mempool full) stays a ``DeviceClientError/gatewayError(code:diagnostic:)``
    /// because the device should retry the same transaction later.
    public func submit(_ transaction: SignedTransaction) throws(DeviceClientError) -> Bytes32 {
        let response = try request(.post, DeviceResources.transaction, payload: transaction.encoded)
        if response.code == .badRequest { throw .transactionRefused(response.diagnostic) }
        guard response.code == .created else { throw response.error }
        guard let id = Bytes32(response.body) else { throw .protocolViolation("v1/tx answered no 32-byte id") }
        guard id == transaction.id else { throw .protocolViolation("v1/tx answered the id of another transaction") }
        return id
    }

    /// A 2.05 answer to `request` decoded as `T`, or the error the answer means.
    private func fetch<T: CanonicalCodable>(_ request: DeviceRequest) throws(DeviceClientError) -> T {
        let answer = try exchange(request)
        guard answer.code == .content else {
            throw Response(code: answer.code, body: answer.body, contentFormat: answer.contentFormat).error
        }
        do { return try T(decoding: answer.body) } catch { throw .undecodable(error) }
    }

    // MARK: requests

    /// A complete answer: its code, the reassembled body and its content format.
    public struct Response: Sendable, Equatable {
        public var code: CoAPCode
        public var body: [UInt8]
        public var contentFormat: UInt16?

        /// An error answer's payload as printable ASCII, capped (RFC 7252 §5.5.2 diagnostic payload).
        var diagnostic: String {
            String(decoding: body.prefix(64).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        }

        var error: DeviceClientError { .gatewayError(code: code.rawValue, diagnostic: diagnostic) }
    }

    /// GET with Uri-Query arguments (`key=value`).
    public func get(_ path: StaticString, query: [String] = []) throws(DeviceClientError) -> Response {
        try request(.get, path, query: query)
    }

    /// One request and its whole answer: Block1 for a payload over one block, Block2 for an answer over one,
    /// 4.29 waited out. The protocol is DeviceProtocol's ``CoAPRequestExchange``, the firmware's too; this
    /// function only moves its datagrams, reads the monotonic clock and draws the random numbers.
    public func request(
        _ method: CoAPCode, _ path: StaticString, query: [String] = [], payload: [UInt8] = []
    ) throws(DeviceClientError) -> Response {
        let template = CoAPMessage.request(method, path, query: query)
        var exchange = CoAPRequestExchange(
            request: template, payload: payload, contentFormat: ContentFormat.chainPayload, body: [UInt8](),
            configuration: configuration.exchange, lastMessageID: messageID)
        defer {
            messageID = exchange.lastMessageID
            stats.requests += exchange.requests
            stats.retransmissions += exchange.retransmissions
            stats.blocks += exchange.blocks
            stats.ignored += exchange.strays
        }
        var step = exchange.start(now: clockMillis(), random: random.next())
        var retransmissions = 0
        while true {
            if let reply = step.reply { try? transmit(reply) }
            if let request = step.request {
                if exchange.retransmissions > retransmissions {
                    retransmissions = exchange.retransmissions
                    logger.debug("CoAP retransmit \(retransmissions) of \(template.pathText)")
                }
                try transmit(request)
            }
            switch step.status {
            case .done(let answer):
                return Response(code: answer.code, body: exchange.body, contentFormat: answer.contentFormat)
            case .failed(let error):
                throw configuration.error(error, template)
            case .waiting(let deadline):
                let now = clockMillis()
                let left = CoAPClock.remaining(until: deadline, now: now)
                if left == 0 {
                    step = exchange.timeout(now: now, random: random.next())
                } else if let datagram = try receive(timeoutNanos: UInt64(left) * 1_000_000) {
                    step = exchange.received(datagram, now: clockMillis(), random: random.next())
                } else {
                    step = .init(status: step.status)
                }
            }
        }
    }

    /// Monotonic milliseconds, wrapping as ``CoAPClock`` expects.
    private func clockMillis() -> UInt32 { UInt32(truncatingIfNeeded: deviceClockNanos() / 1_000_000) }

    private func transmit(_ bytes: [UInt8]) throws(DeviceClientError) {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw .socket(call: "send", errno: errno) }
    }

    /// One datagram within the wait, or nil. A datagram longer than ``Configuration/maxMessageSize`` is read
    /// into a buffer one byte larger, seen to be too long (MSG_TRUNC gives the real length) and dropped.
    private func receive(timeoutNanos: UInt64) throws(DeviceClientError) -> [UInt8]? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let millis = Int32(min(timeoutNanos / 1_000_000 + 1, 60_000))
        let ready = poll(&pfd, 1, millis)
        if ready < 0 {
            if errno == EINTR { return nil }
            throw .socket(call: "poll", errno: errno)
        }
        guard ready > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: configuration.maxMessageSize + 1)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_TRUNC)) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return nil }
            throw .socket(call: "recv", errno: errno)
        }
        guard n <= configuration.maxMessageSize else {
            stats.ignored += 1
            return nil
        }
        buffer.removeLast(buffer.count - n)
        return buffer
    }
}

extension CoAPDeviceClient.Configuration {
    /// The request exchange's settings (DeviceProtocol's, the firmware's too) from this configuration.
    var exchange: CoAPRequestExchange<[UInt8]>.Configuration {
        .init(
            maxBodyBytes: maxBodyBytes, preferredSZX: preferredSZX,
            ackTimeoutMillis: UInt32(clamping: ackTimeoutMillis),
            ackRandomFactorPercent: UInt32(min(max(ackRandomFactor, 1), 3) * 100), maxRetransmit: maxRetransmit,
            separateResponseMillis: UInt32(clamping: separateResponseMillis), maxMessageSize: maxMessageSize,
            maxBlockRestarts: CoAPDeviceClient.maxBlockRestarts)
    }

    /// What a failed exchange of `request` means to a caller.
    func error(_ error: CoAPExchangeError, _ request: CoAPMessage) -> DeviceClientError {
        switch error {
        case .timeout: .timeout("\(request.pathText) after \(maxRetransmit) retransmissions")
        case .noSeparateResponse: .timeout("separate response to \(request.pathText)")
        case .reset: .reset
        case .messageTooLarge: .bodyTooLarge(limit: maxMessageSize)
        case .bodyTooLarge: .bodyTooLarge(limit: maxBodyBytes)
        case .interrupted(let code): .gatewayError(code: code.rawValue, diagnostic: "(during block-wise transfer)")
        case .protocolViolation(let violation): .protocolViolation("\(violation.reason)")
        }
    }
}

extension CoAPMessage {
    /// A confirmable request's first message, its Message ID and token left to the exchange.
    static func request(_ method: CoAPCode, _ path: StaticString, query: [String]) -> CoAPMessage {
        var template = CoAPMessage(type: .confirmable, code: method, messageID: 0)
        template.setUriPath(path)
        template.uriQuery = query.map { Array($0.utf8) }
        return template
    }

    var pathText: String { uriPath.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/") }
}

/// `host:port`, `[v6]:port` or a bare host; nil when malformed.
func parseHostPort(_ text: Substring, defaultPort: UInt16) -> (String, UInt16)? {
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { return nil }
        let host = String(text[text.index(after: text.startIndex)..<close])
        let after = text[text.index(after: close)...]
        if after.isEmpty { return host.isEmpty ? nil : (host, defaultPort) }
        guard after.hasPrefix(":"), let port = UInt16(after.dropFirst()), port > 0, !host.isEmpty else { return nil }
        return (host, port)
    }
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard !text.isEmpty, parts.count <= 2, !parts[0].isEmpty else { return nil }
    if parts.count == 1 { return (String(parts[0]), defaultPort) }
    guard let port = UInt16(parts[1]), port > 0 else { return nil }
    return (String(parts[0]), port)
}

/// A socket of `type` connected to the first address `host` resolves to; bound first to the IPv4 address
/// `source` when one is given (a simulated device's own loopback address).
func connectedSocket(host: String, port: UInt16, type: Int32, source: String? = nil) throws(DeviceClientError)
    -> Int32
{
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = type
    hints.ai_flags = AI_NUMERICSERV
    var list: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
        throw .badEndpoint("cannot resolve \(host)")
    }
    defer { freeaddrinfo(list) }
    var lastErrno: Int32 = 0
    var entry: UnsafeMutablePointer<addrinfo>? = first
    while let ai = entry {
        entry = ai.pointee.ai_next
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
        if fd < 0 {
            lastErrno = errno
            continue
        }
        if let source, !bind(fd, ipv4: source) {
            lastErrno = errno
            close(fd)
            continue
        }
        if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
        lastErrno = errno
        close(fd)
    }
    throw .socket(call: "connect", errno: lastErrno)
}

/// Binds `fd` to IPv4 address `text`, any port.
private func bind(_ fd: Int32, ipv4 text: String) -> Bool {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    guard inet_pton(AF_INET, text, &address.sin_addr) == 1 else { return false }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

// MARK: - MQTT

/// A device's MQTT session with the gateway's broker (libmosquitto): submit transactions on
/// `amars/v1/tx/{address}` at QoS 1 and hear back on `amars/v1/receipts/{address}` ("accepted" or "refused",
/// then "final"), plus the retained head announcements on `amars/v1/head` and, on demand
/// (``checkpoints(from:limit:timeoutMillis:quietMillis:)``), the retained checkpoints on `amars/v1/checkpoints/#`.
///
/// Everything runs on the caller's thread: libmosquitto is driven with `mosquitto_loop` inside the waits, so
/// its callbacks run there too and need no lock. That is why the class is not `Sendable`: a virtual device owns
/// its client. The session is clean (a device that reconnects re-submits; the transaction id and nonce make a
/// repeat harmless), and we subscribe before the first publish, so no receipt can race the subscription.
///
/// Incoming messages are copied only up to ``Configuration/maxMessageBytes`` (longer ones are dropped) and at
/// most ``Configuration/maxQueuedMessages`` wait unread (the oldest are dropped), so a hostile broker cannot
/// make the device allocate without bound. Checkpoints have their own cap (``MqttTopics/maxCheckpointBytes``)
/// and are kept only inside the window a call asked for.
public final class MqttDeviceClient {
    public struct Configuration: Sendable, Equatable {
        public var host: String
        public var port: Int
        /// Default: `amars-dev-` and a random suffix, so two runs for one device do not kick each other off.
        public var clientID: String?
        public var keepAliveSeconds: Int32
        /// How long ``connect()`` waits for CONNACK and SUBACKs.
        public var connectTimeoutMillis: UInt64
        /// Receipts are under 100 bytes and a head header under 400; anything much larger is not for us.
        public var maxMessageBytes: Int
        public var maxQueuedMessages: Int
        /// Connect over TLS 1.2 with the device's short-lived certificate (the broker's TLS listener, which takes
        /// the certificate's subject, the device's account, as its user name); nil: plain MQTT.
        public var tls: TLSFiles?

        /// PEM files for the broker's TLS listener, as `amars cert issue` and `amars cert export` write them.
        public struct TLSFiles: Sendable, Equatable {
            /// The operator's root, which the broker's certificate must chain to.
            public var caFile: String
            /// The device's certificate first, then the certificates up to the root (`chain.pem`).
            public var chainFile: String
            /// The key of that certificate (`key.pem`).
            public var keyFile: String

            public init(caFile: String, chainFile: String, keyFile: String) {
                self.caFile = caFile
                self.chainFile = chainFile
                self.keyFile = keyFile
            }
        }

        public init(
            host: String = "127.0.0.1", port: Int = 1883, clientID: String? = nil, keepAliveSeconds: Int32 = 30,
            connectTimeoutMillis: UInt64 = 5000, maxMessageBytes: Int = 4096, maxQueuedMessages: Int = 64
        ) {
            self.host = host
            self.port = port
            self.clientID = clientID
            self.keepAliveSeconds = keepAliveSeconds
            self.connectTimeoutMillis = connectTimeoutMillis
            self.maxMessageBytes = maxMessageBytes
            self.maxQueuedMessages = maxQueuedMessages
        }

        /// Parses `host:port`, `[v6]:port` or `mqtt://host:port` (port 1883 when absent).
        public init(endpoint: String) throws(DeviceClientError) {
            var rest = Substring(endpoint)
            if rest.hasPrefix("mqtt://") { rest = rest.dropFirst("mqtt://".count) }
            guard let (host, port) = parseHostPort(rest, defaultPort: 1883) else { throw .badEndpoint(endpoint) }
            self.init(host: host, port: Int(port))
        }
    }

    /// The outcome of a final transaction as the gateway announced it (not yet verified: see ``DeviceSync``).
    public struct FinalReceipt: Sendable, Equatable {
        public var receipt: Receipt
        public var height: UInt64
        public var position: UInt64
    }

    /// `mosquitto_lib_init` must run before any client exists; a lazy static runs it once per process.
    private static let libraryReady: Bool = mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue

    public let device: Address
    public let configuration: Configuration
    private let handle: OpaquePointer
    private let logger: Logger

    // Written by libmosquitto callbacks, which run inside our own `mosquitto_loop` calls on this thread.
    private var connack: Int32?
    private var awaitingSubacks: Set<Int32> = []
    private var subscriptionRefused = false
    private var published: Set<Int32> = []
    private var receipts: [MqttReceiptMessage] = []
    /// The epochs a ``checkpoints(from:limit:timeoutMillis:quietMillis:)`` call is collecting; nil outside one,
    /// when checkpoint messages still in flight are ignored.
    private var checkpointWindow: Range<UInt64>?
    private var collected: [UInt64: Checkpoint] = [:]
    private var lastCheckpointNanos: UInt64 = 0
    /// Checkpoint messages in the asked window that were too large, undecodable or filed under another epoch's
    /// topic: refused before the light client saw them (also counted in ``droppedMessages``).
    public private(set) var refusedCheckpoints = 0
    /// Messages dropped for size or queue overflow, or undecodable.
    public private(set) var droppedMessages = 0
    /// The latest head the gateway announced: an unverified hint (height, base fee) until ``DeviceSync`` has
    /// checked a certificate for it over CoAP.
    public private(set) var announcedHead: BlockHeader?
    private var connected = false

    public init(
        device: Address, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "amars.device.mqtt")
    ) throws(DeviceClientError) {
        guard Self.libraryReady else { throw .mqtt(MOSQ_ERR_UNKNOWN.rawValue) }
        self.device = device
        self.configuration = configuration
        self.logger = logger
        var suffix = SystemRandomNumberGenerator()
        let id = configuration.clientID ?? "amars-dev-\(String(suffix.next() as UInt64, radix: 36))"
        guard let h = mosquitto_new(id, true, nil) else { throw .mqtt(MOSQ_ERR_NOMEM.rawValue) }
        handle = h
        if let tls = configuration.tls {
            do { try Self.useTLS(tls, host: configuration.host, on: h) } catch {
                mosquitto_destroy(h)
                throw error
            }
        }
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(handle) { _, userdata, rc in
            MqttDeviceClient.from(userdata)?.connack = rc
        }
        mosquitto_subscribe_callback_set(handle) { _, userdata, mid, count, granted in
            guard let client = MqttDeviceClient.from(userdata) else { return }
            client.awaitingSubacks.remove(mid)
            // 0x80 in the granted list is the broker's refusal of that topic filter.
            if let granted, count > 0, (0..<Int(count)).contains(where: { granted[$0] >= 0x80 }) {
                client.subscriptionRefused = true
            }
        }
        mosquitto_publish_callback_set(handle) { _, userdata, mid in
            MqttDeviceClient.from(userdata)?.published.insert(mid)
        }
        mosquitto_message_callback_set(handle) { _, userdata, message in
            guard let message, let client = MqttDeviceClient.from(userdata) else { return }
            client.received(message.pointee)
        }
    }

    deinit {
        disconnect()
        mosquitto_destroy(handle)
    }

    /// Hands libmosquitto a TLS context of our own (``amars_tls_client``): libmosquitto's defaults cannot name
    /// secp256k1 among the groups, which OpenSSL 3.0 does not offer unless told to.
    private static func useTLS(_ files: Configuration.TLSFiles, host: String, on handle: OpaquePointer)
        throws(DeviceClientError)
    {
        var failure: Int32 = 0
        var address = [UInt8](repeating: 0, count: 16)
        let isIP = inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
        guard
            let context = amars_tls_client(
                files.caFile, files.chainFile, files.keyFile, host, isIP ? 1 : 0, &failure)
        else {
            let what =
                switch UInt32(failure) {
                case AMARS_TLS_CA.rawValue: "cannot read the root certificate \(files.caFile)"
                case AMARS_TLS_CHAIN.rawValue: "cannot read the certificate chain \(files.chainFile)"
                case AMARS_TLS_KEY.rawValue: "cannot read the key \(files.keyFile)"
                case AMARS_TLS_KEY_MISMATCH.rawValue:
                    "the key \(files.keyFile) is not the key of the certificate in \(files.chainFile)"
                case AMARS_TLS_HOST.rawValue: "cannot check the broker's name against \(host)"
                default: "OpenSSL cannot make a TLS 1.2 client context with secp256k1 (step \(failure))"
                }
            throw .tls(what)
        }
        // libmosquitto takes its own reference; ours is released either way.
        defer { SSL_CTX_free(context) }
        let rc = mosquitto_void_option(handle, MOSQ_OPT_SSL_CTX, UnsafeMutableRawPointer(context))
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .mqtt(rc) }
        let defaults = mosquitto_int_option(handle, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0)
        guard defaults == MOSQ_ERR_SUCCESS.rawValue else { throw .mqtt(defaults) }
    }

    private static func from(_ userdata: UnsafeMutableRawPointer?) -> MqttDeviceClient? {
        userdata.map { Unmanaged<MqttDeviceClient>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Connects and subscribes to this device's receipts and to the head, returning once the broker has
    /// acknowledged both subscriptions (so a submit published after this cannot have its receipt missed).
    public func connect() throws(DeviceClientError) {
        guard !connected else { return }
        let rc = mosquitto_connect(
            handle, configuration.host, Int32(configuration.port), configuration.keepAliveSeconds)
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            if rc == MOSQ_ERR_ERRNO.rawValue { throw .socket(call: "connect", errno: errno) }
            throw .mqtt(rc)
        }
        connected = true
        try pump(until: "CONNACK", timeoutMillis: configuration.connectTimeoutMillis) { connack != nil }
        guard connack == 0 else {
            let reason = String(cString: mosquitto_connack_string(connack ?? -1))
            disconnect()
            throw .mqttRefused(reason)
        }
        for topic in [MqttTopics.receipts(device), MqttTopics.head] {
            var mid: Int32 = 0
            let rc = mosquitto_subscribe(handle, &mid, topic, 1)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .mqtt(rc) }
            awaitingSubacks.insert(mid)
        }
        try pump(until: "SUBACK", timeoutMillis: configuration.connectTimeoutMillis) { awaitingSubacks.isEmpty }
        guard !subscriptionRefused else { throw .mqttRefused("subscription to the receipts or head topic") }
        logger.debug("MQTT device \(device.bech32) connected to \(configuration.host):\(configuration.port)")
    }

    public func disconnect() {
        guard connected else { return }
        connected = false
        checkpointWindow = nil
        mosquitto_disconnect(handle)
        // One turn writes the DISCONNECT packet; the socket is closed either way.
        _ = mosquitto_loop(handle, 10, 1)
    }

    /// Publishes `transaction` at QoS 1 and waits for the gateway's "accepted" (returns the id) or "refused"
    /// (throws ``DeviceClientError/transactionRefused(_:)``).
    ///
    /// The broker's PUBACK is one hop's receipt: a broker that crashes before the gateway took the message (one
    /// that does not persist it) loses it. So without the gateway's answer within `resendMillis` the same bytes
    /// are published again, over a new connection if the old one died, until `timeoutMillis` in all: the chain
    /// keeps one copy of an id, so a resubmission can never pay twice.
    @discardableResult
    public func submit(_ transaction: SignedTransaction, timeoutMillis: UInt64 = 10_000, resendMillis: UInt64 = 2_000)
        throws(DeviceClientError) -> Bytes32
    {
        let id = transaction.id
        let bytes = transaction.encoded
        let deadline = deviceClockNanos() + timeoutMillis * 1_000_000
        var lastError = DeviceClientError.timeout("accepted or refused for \(Hex.encode(id.bytes))")
        var answer: MqttReceiptMessage?
        while answer == nil {
            let now = deviceClockNanos()
            guard now < deadline else { throw lastError }
            let turn = min(resendMillis, (deadline - now) / 1_000_000 + 1)
            do throws(DeviceClientError) {
                try connect()
                var mid: Int32 = 0
                let rc = bytes.withUnsafeBytes {
                    mosquitto_publish(
                        handle, &mid, MqttTopics.submit(device), Int32($0.count), $0.baseAddress, 1, false)
                }
                guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .mqtt(rc) }
                publishes += 1
                try pump(until: "PUBACK of the submit", timeoutMillis: turn) { published.contains(mid) }
                published.remove(mid)
                // An answer to an earlier publication of the same id counts as well.
                try pump(until: "accepted or refused for \(Hex.encode(id.bytes))", timeoutMillis: turn) {
                    answer = takeReceipt(for: id) { if case .final = $0 { return false } else { return true } }
                    return answer != nil
                }
            } catch {
                switch error {
                case .timeout: lastError = error
                case .mqtt, .socket:
                    // The connection died (a broker crash): the next turn connects again.
                    lastError = error
                    disconnect()
                    usleep(100_000)
                default: throw error
                }
            }
        }
        if case .refused(_, let code) = answer { throw .transactionRefused(code) }
        return id
    }

    /// Publications of submits, resubmissions included (for tests and reports).
    public private(set) var publishes = 0

    /// Waits for the gateway's "final" for `id`: the receipt and where the transaction landed. A "refused"
    /// (`dropped`: evicted without inclusion) throws ``DeviceClientError/transactionRefused(_:)``.
    public func waitForFinal(_ id: Bytes32, timeoutMillis: UInt64 = 30_000) throws(DeviceClientError) -> FinalReceipt {
        try connect()
        var answer: MqttReceiptMessage?
        try pump(until: "final receipt for \(Hex.encode(id.bytes))", timeoutMillis: timeoutMillis) {
            answer = takeReceipt(for: id) { if case .accepted = $0 { return false } else { return true } }
            return answer != nil
        }
        switch answer {
        case .final(let receipt, let height, let position)?:
            return FinalReceipt(receipt: receipt, height: height, position: position)
        case .refused(_, let code)?: throw .transactionRefused(code)
        default: throw .protocolViolation("unexpected receipt message")
        }
    }

    /// Up to `limit` checkpoints (capped at ``CheckpointsPayload/maxCount``) starting with the one that ends
    /// epoch `epoch`, as the gateway's bridge retained them: decoded and sorted, not verified (``DeviceSync``
    /// does that). Only the gap-free run from `epoch` is returned, because the light client can only take the
    /// next epoch; an empty answer means the broker has none yet.
    ///
    /// Each call subscribes afresh to the exact topic of every epoch in the window (`amars/v1/checkpoints/E`,
    /// one SUBSCRIBE), which makes the broker send their retained checkpoints again (MQTT 3.1.1 §3.8.4), and
    /// unsubscribes before returning, so nothing accumulates between calls. Exact topics rather than a wildcard:
    /// some brokers (RabbitMQ's MQTT plugin) send retained messages only for those. Retained messages carry no
    /// "that was all" marker: collection ends when `limit` are in hand, when none arrived for `quietMillis`, or
    /// after `timeoutMillis` (returning what came).
    public func checkpoints(
        from epoch: UInt64, limit: Int = CheckpointsPayload.maxCount, timeoutMillis: UInt64 = 5000,
        quietMillis: UInt64 = 200
    ) throws(DeviceClientError) -> [Checkpoint] {
        try connect()
        let n = UInt64(max(1, min(limit, CheckpointsPayload.maxCount)))
        let end = epoch.addingReportingOverflow(n).overflow ? UInt64.max : epoch + n
        collected = [:]
        checkpointWindow = epoch..<end
        let topics = (epoch..<end).map { strdup(MqttTopics.checkpoint(epoch: $0)) }
        defer {
            checkpointWindow = nil
            collected = [:]
            _ = mosquitto_unsubscribe_multiple(handle, nil, Int32(topics.count), topics, nil)
            for t in topics { free(t) }
        }
        var mid: Int32 = 0
        let rc = mosquitto_subscribe_multiple(handle, &mid, Int32(topics.count), topics, 1, 0, nil)
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .mqtt(rc) }
        awaitingSubacks.insert(mid)
        try pump(until: "SUBACK", timeoutMillis: configuration.connectTimeoutMillis) { !awaitingSubacks.contains(mid) }
        guard !subscriptionRefused else { throw .mqttRefused("subscription to the checkpoints topic") }
        lastCheckpointNanos = deviceClockNanos()
        do {
            try pump(until: "retained checkpoints", timeoutMillis: timeoutMillis) {
                run(from: epoch).count >= Int(n) || deviceClockNanos() - lastCheckpointNanos >= quietMillis * 1_000_000
            }
        } catch {
            guard case .timeout = error else { throw error }
        }
        return run(from: epoch)
    }

    /// The collected checkpoints from `epoch` on, up to the first missing epoch.
    private func run(from epoch: UInt64) -> [Checkpoint] {
        var out: [Checkpoint] = []
        var next = epoch
        while let checkpoint = collected[next] {
            out.append(checkpoint)
            guard next < .max else { break }
            next += 1
        }
        return out
    }

    /// A message on a checkpoint topic: kept if it is in the window and decodes as the checkpoint of the epoch
    /// its topic names. A retained message is whatever anyone allowed to publish there left behind, so a
    /// refusal here only keeps junk away from the light client; forged checkpoints that decode are its job.
    private func receivedCheckpoint(epoch: UInt64, length: Int, payload: UnsafeMutableRawPointer?) {
        guard let window = checkpointWindow, window.contains(epoch) else { return }
        lastCheckpointNanos = deviceClockNanos()
        guard length > 0, length <= MqttTopics.maxCheckpointBytes, let payload,
            let checkpoint = try? Checkpoint(decoding: Array(UnsafeRawBufferPointer(start: payload, count: length))),
            checkpoint.header.epoch == epoch
        else {
            refusedCheckpoints += 1
            droppedMessages += 1
            return
        }
        collected[epoch] = checkpoint
    }

    /// Runs libmosquitto's network loop on this thread until `done` holds or the time is up.
    private func pump(until what: String, timeoutMillis: UInt64, _ done: () -> Bool) throws(DeviceClientError) {
        let deadline = deviceClockNanos() + timeoutMillis * 1_000_000
        while !done() {
            let now = deviceClockNanos()
            guard now < deadline else { throw .timeout(what) }
            let wait = Int32(min((deadline - now) / 1_000_000 + 1, 100))
            let rc = mosquitto_loop(handle, wait, 1)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                if rc == MOSQ_ERR_ERRNO.rawValue { throw .socket(call: "mqtt", errno: errno) }
                throw .mqtt(rc)
            }
        }
    }

    /// Removes and returns the first queued receipt message for `id` that `wanted` accepts.
    private func takeReceipt(for id: Bytes32, _ wanted: (MqttReceiptMessage) -> Bool) -> MqttReceiptMessage? {
        guard let i = receipts.firstIndex(where: { $0.id == id && wanted($0) }) else { return nil }
        return receipts.remove(at: i)
    }

    private func received(_ message: mosquitto_message) {
        guard let topicPointer = message.topic else { return }
        let length = Int(message.payloadlen)
        let topic = String(cString: topicPointer)
        // Checkpoints are larger than anything else here and have their own cap; the topic is checked first.
        if let epoch = MqttTopics.parseCheckpoint(topic) {
            return receivedCheckpoint(epoch: epoch, length: length, payload: message.payload)
        }
        guard length >= 0, length <= configuration.maxMessageBytes else {
            droppedMessages += 1
            return
        }
        let payload: [UInt8] =
            length == 0 || message.payload == nil
            ? [] : Array(UnsafeRawBufferPointer(start: message.payload, count: length))
        if topic == MqttTopics.head {
            if let header = try? BlockHeader(decoding: payload), header.height >= announcedHead?.height ?? 0 {
                announcedHead = header
            }
            return
        }
        guard topic == MqttTopics.receipts(device), let receipt = try? MqttReceiptMessage(decoding: payload) else {
            droppedMessages += 1
            return
        }
        if receipts.count >= configuration.maxQueuedMessages {
            receipts.removeFirst()
            droppedMessages += 1
        }
        receipts.append(receipt)
    }
}
