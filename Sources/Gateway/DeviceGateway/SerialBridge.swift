import DeviceProtocol
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// The serial door for boards without IP: CoAP messages in SLIP frames (with the CRC-16 of ``SLIP``) on a UART
// or on QEMU's emulated one. Everything here except ``CoAPRelay``'s socket is sans-I/O: bytes from the line go
// in, bytes for the line come out, so every rule is tested without a port.

/// Whatever answers the requests that arrive on a serial link.
///
/// The session has already checked the message (format, critical options, rate); the backend only produces
/// the answer. Only the answer's code, options and payload are used: the session sets type, Message ID and
/// token, because those belong to the serial hop and not to wherever the answer came from. Nil means no
/// answer could be had (the gateway did not reply), which the session turns into 5.04.
public protocol SerialBackend {
    func exchange(_ request: CoAPMessage) -> CoAPMessage?
}

extension CoAPCode {
    /// 5.04 Gateway Timeout (RFC 7252 §5.9.3.5): the bridge is a proxy, and the gateway behind it did not answer.
    public static let gatewayTimeout = CoAPCode(codeClass: 5, detail: 4)
}

/// One serial link's protocol state: SLIP decoding, CoAP checks, rate limit, duplicate suppression.
///
/// RFC 7252's rules apply as on UDP, since the frames carry the same messages: a Confirmable request gets a
/// piggybacked ACK with its Message ID and token, a Non-confirmable one a NON response with a fresh Message ID
/// and the same token. A message that cannot be parsed far enough to answer (a format error) gets a Reset when
/// it is Confirmable and is dropped otherwise; one that parses but cannot be processed gets its error code
/// (4.02 unknown critical option or bad option length, 4.00, 4.13). Every drop is counted.
///
/// A board retransmits a CON whose answer it lost (a UART has noise too), so the answers to the last few
/// requests are kept by Message ID and token and sent again without asking the backend twice: a repeated
/// `POST v1/tx` must not come back as `alreadyKnown`.
///
/// Observe is not offered over serial: a registration is answered as a plain GET with no Observe option,
/// which RFC 7641 §3.1 tells the client to read as "not registered", and the board polls `v1/head` instead.
public struct SerialSession<Backend: SerialBackend> {
    public struct Limits: Sendable, Equatable {
        /// Requests per second the link may make, refused with 4.29 beyond it. A UART at 115200 baud carries at
        /// most about a hundred small requests a second; a board that needs more is misbehaving.
        public var requests: DeviceRateLimiter.Limits
        /// Max-Age on a 4.29: seconds the board should wait.
        public var retryAfterSeconds: UInt32
        /// Answers kept for retransmitted requests.
        public var recentAnswers: Int
        /// How long an answer is kept for a retransmission (RFC 7252's EXCHANGE_LIFETIME is 247 s; a board on
        /// a wire retransmits within seconds, and a board that rebooted reuses Message IDs sooner).
        public var recentLifetimeNanoseconds: UInt64

        public init(
            requests: DeviceRateLimiter.Limits = .init(perSecond: 20, burst: 40, maxDevices: 1),
            retryAfterSeconds: UInt32 = 1, recentAnswers: Int = 16,
            recentLifetimeNanoseconds: UInt64 = 60_000_000_000
        ) {
            precondition(recentAnswers >= 0, "SerialSession: negative recentAnswers")
            self.requests = requests
            self.retryAfterSeconds = retryAfterSeconds
            self.recentAnswers = recentAnswers
            self.recentLifetimeNanoseconds = recentLifetimeNanoseconds
        }
    }

    /// What happened on the link so far; every frame lands in exactly one of the message counters.
    public struct Counters: Equatable, Sendable {
        /// Frames that passed SLIP and CRC.
        public var frames: UInt64 = 0
        /// Requests handed to the backend.
        public var requests: UInt64 = 0
        /// Requests answered from the recent-answer cache (retransmissions).
        public var duplicates: UInt64 = 0
        /// Requests refused with 4.29.
        public var rateLimited: UInt64 = 0
        /// Requests that parsed far enough to be answered with an error code (4.00, 4.02, 4.13).
        public var refused: UInt64 = 0
        /// Resets sent: unparseable CON messages, CON pings, CON messages that are not requests.
        public var resets: UInt64 = 0
        /// Unparseable NON messages and frames with no usable header, dropped silently.
        public var malformed: UInt64 = 0
        /// ACKs, RSTs and responses from the board, for which nothing is outstanding.
        public var ignored: UInt64 = 0
        /// The backend gave no answer (5.04 sent).
        public var backendFailures: UInt64 = 0
        /// Times the line was opened (each drops a partial frame and the kept answers).
        public var lineResets: UInt64 = 0
        /// Frames SLIP refused, by reason.
        public var slipDrops = SLIPDecoder.Drops()

        public init() {}
    }

    private struct Recent {
        var messageID: UInt16
        var token: [UInt8]
        var answer: [UInt8]
        var time: UInt64
    }

    public let backend: Backend
    public let limits: Limits
    public private(set) var counters = Counters()

    private var decoder = SLIPDecoder()
    /// Drops of decoders replaced by ``lineReset()``.
    private var earlierDrops = SLIPDecoder.Drops()
    private var limiter: DeviceRateLimiter
    private var recent: [Recent] = []
    private var nextMessageID: UInt16
    private let clock: @Sendable () -> UInt64

    /// The link is one device to the rate limiter; its key is a constant.
    private static var linkKey: String { "serial" }

    public init(
        backend: Backend, limits: Limits = Limits(),
        clock: @escaping @Sendable () -> UInt64 = DeviceRateLimiter.monotonicNanoseconds
    ) {
        self.backend = backend
        self.limits = limits
        self.clock = clock
        limiter = DeviceRateLimiter(limits: limits.requests, clock: clock)
        nextMessageID = UInt16.random(in: 0...UInt16.max)
    }

    /// Bytes from the line in, bytes for the line out (zero or more SLIP frames).
    public mutating func receive(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for frame in decoder.feed(bytes) {
            counters.frames &+= 1
            if let answer = answer(frame: frame) { out += SLIP.encodeFrame(answer) }
        }
        counters.slipDrops = sum(earlierDrops, decoder.drops)
        return out
    }

    /// The line was (re)opened: whatever partial frame was pending belongs to the old connection, and the kept
    /// answers too, since a board that restarted (an emulator does, on every run) may reuse the same Message
    /// IDs and tokens for new requests.
    public mutating func lineReset() {
        earlierDrops = sum(earlierDrops, decoder.drops)
        decoder = SLIPDecoder()
        recent.removeAll()
        counters.lineResets &+= 1
        counters.slipDrops = earlierDrops
    }

    /// The CoAP answer to one frame's payload, or nil to send nothing.
    public mutating func answer(frame: [UInt8]) -> [UInt8]? {
        let message: CoAPMessage
        do {
            message = try CoAPMessage.decode(frame)
        } catch {
            return reject(frame, error)
        }
        guard message.type == .confirmable || message.type == .nonConfirmable else {
            counters.ignored &+= 1
            return nil
        }
        guard message.code.isRequest else {
            // A CON ping (Empty) is answered with a Reset (RFC 7252 §4.3), and so is a CON carrying a response
            // or a reserved code (§4.2); a NON of that kind is ignored.
            if message.type == .confirmable {
                counters.resets &+= 1
                return CoAPMessage(type: .reset, code: .empty, messageID: message.messageID).encode()
            }
            counters.ignored &+= 1
            return nil
        }
        let now = clock()
        if let repeated = recentAnswer(to: message, now: now) {
            counters.duplicates &+= 1
            return repeated
        }
        if let bad = message.firstUnknownCriticalOption() {
            counters.refused &+= 1
            return reply(to: message, code: .badOption, payload: Array("option \(bad.rawValue)".utf8))
        }
        guard limiter.allow(Self.linkKey) else {
            counters.rateLimited &+= 1
            return reply(
                to: message, code: .tooManyRequests,
                options: [CoAPOption(number: .maxAge, uint: limits.retryAfterSeconds)],
                payload: Array("slow down".utf8))
        }
        var request = message
        request.removeOptions(.observe)
        counters.requests &+= 1
        let encoded: [UInt8]
        if let answer = backend.exchange(request) {
            var options = answer.options
            options.removeAll { $0.number == .observe }
            encoded = reply(to: message, code: answer.code, options: options, payload: answer.payload)
        } else {
            counters.backendFailures &+= 1
            encoded = reply(to: message, code: .gatewayTimeout, payload: Array("gateway timeout".utf8))
        }
        remember(message, encoded, now: now)
        return encoded
    }

    /// A message ``CoAPMessage/decode(_:maxMessageSize:)`` refused: Reset or silence for format errors (the
    /// RFC's rule), the error's code when the header is readable and the message is a request.
    private mutating func reject(_ frame: [UInt8], _ error: CoAPError) -> [UInt8]? {
        if error.isMessageFormatError {
            if let reset = CoAPMessage.resetReply(to: frame) {
                counters.resets &+= 1
                return reset.encode()
            }
            counters.malformed &+= 1
            return nil
        }
        guard let header = CoAPMessage.peekHeader(frame), header.code.isRequest,
            header.type == .confirmable || header.type == .nonConfirmable
        else {
            counters.malformed &+= 1
            return nil
        }
        counters.refused &+= 1
        let request = CoAPMessage(
            type: header.type, code: header.code, messageID: header.messageID, token: header.token)
        return reply(to: request, code: error.responseCode, payload: Array("bad message".utf8))
    }

    /// The response to `request`: ACK for CON, NON with a fresh Message ID for NON. An answer too large for the
    /// board's frame buffer (only a misconfigured gateway sends one) becomes 5.00, since the board could not
    /// read it anyway.
    private mutating func reply(
        to request: CoAPMessage, code: CoAPCode, options: [CoAPOption] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        var response: CoAPMessage
        if request.type == .confirmable {
            response = request.acknowledgement(code: code, options: options, payload: payload)
        } else {
            nextMessageID &+= 1
            response = CoAPMessage(
                type: .nonConfirmable, code: code, messageID: nextMessageID, token: request.token, options: options,
                payload: payload)
        }
        let bytes = response.encode()
        if bytes.count <= CoAPMessage.maxMessageSize { return bytes }
        response.code = .internalServerError
        response.options = []
        response.payload = Array("response too large".utf8)
        return response.encode()
    }

    private func recentAnswer(to message: CoAPMessage, now: UInt64) -> [UInt8]? {
        for entry in recent
        where entry.messageID == message.messageID && entry.token == message.token
            && now &- entry.time < limits.recentLifetimeNanoseconds
        {
            return entry.answer
        }
        return nil
    }

    private mutating func remember(_ request: CoAPMessage, _ answer: [UInt8], now: UInt64) {
        guard limits.recentAnswers > 0 else { return }
        if recent.count >= limits.recentAnswers { recent.removeFirst(recent.count - limits.recentAnswers + 1) }
        recent.append(Recent(messageID: request.messageID, token: request.token, answer: answer, time: now))
    }

    private func sum(_ a: SLIPDecoder.Drops, _ b: SLIPDecoder.Drops) -> SLIPDecoder.Drops {
        var total = a
        total.overLength &+= b.overLength
        total.badEscape &+= b.badEscape
        total.badCheck &+= b.badCheck
        total.tooShort &+= b.tooShort
        return total
    }
}

/// A ``SerialSession`` shared between the port's read thread and whoever reads its counters.
///
/// `@unchecked Sendable`: the session is only touched with `lock` held. The lock is held for the whole of a
/// request, relay round trip included, so a counter read waits at most one exchange.
public final class SerialBridge<Backend: SerialBackend>: SerialLineHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var session: SerialSession<Backend>
    /// The session's backend, for its own counters (``CoAPRelay/counters``).
    public let backend: Backend

    public init(session: SerialSession<Backend>) {
        self.session = session
        backend = session.backend
    }

    public var counters: SerialSession<Backend>.Counters { lock.withLock { session.counters } }

    public func lineOpened() { lock.withLock { session.lineReset() } }

    public func lineReceived(_ bytes: [UInt8]) -> [UInt8] { lock.withLock { session.receive(bytes) } }
}

// MARK: - In-process backend

/// Answers serial requests with ``DeviceResourceHandlers`` in this process: the backend of an all-in-one node
/// and of tests. It is a small CoAP server of its own, so it does what libcoap does for ``CoAPServer``: routes
/// by Uri-Path (4.04, 4.05), reassembles Block1 uploads, and serves bodies over one block block-wise (Block2
/// with Size2 and an ETag so a board notices when the body changed between two blocks).
///
/// A board asks for block N of a body it started reading; re-running the handler for every block would cost a
/// store query per block and could hand out blocks of two different bodies, so the last few large bodies are
/// kept for a short while (bounded by count and size) and block N comes from there. A body that expired or
/// was evicted is produced again, and a changed ETag tells the board to start over.
///
/// `@unchecked Sendable`: the upload and the body cache are only touched with `lock` held.
public final class DeviceHandlerBackend: SerialBackend, @unchecked Sendable {
    public struct Limits: Sendable, Equatable {
        /// Largest block served and preferred for uploads (6: 1024 bytes, the most a 1152-byte frame carries).
        public var preferredSZX: UInt8
        /// Large bodies kept for block-wise reading.
        public var cachedBodies: Int
        /// Bodies over this size are produced again for every block rather than kept.
        public var maxCachedBodyBytes: Int
        /// How long a kept body serves blocks.
        public var cacheLifetimeNanoseconds: UInt64

        public init(
            preferredSZX: UInt8 = BlockOption.maxSZX, cachedBodies: Int = 4, maxCachedBodyBytes: Int = 256 * 1024,
            cacheLifetimeNanoseconds: UInt64 = 30_000_000_000
        ) {
            precondition(preferredSZX <= BlockOption.maxSZX && cachedBodies >= 0, "DeviceHandlerBackend: limits")
            self.preferredSZX = preferredSZX
            self.cachedBodies = cachedBodies
            self.maxCachedBodyBytes = maxCachedBodyBytes
            self.cacheLifetimeNanoseconds = cacheLifetimeNanoseconds
        }
    }

    private struct CachedBody {
        var key: [UInt8]
        var response: DeviceResponse
        var eTag: [UInt8]
        var time: UInt64
    }

    public let handlers: DeviceResourceHandlers
    public let limits: Limits
    private let clock: @Sendable () -> UInt64
    private let lock = NSLock()
    private var upload: BlockAssembler
    private var cache: [CachedBody] = []

    public init(
        handlers: DeviceResourceHandlers, limits: Limits = Limits(),
        clock: @escaping @Sendable () -> UInt64 = DeviceRateLimiter.monotonicNanoseconds
    ) {
        self.handlers = handlers
        self.limits = limits
        self.clock = clock
        upload = BlockAssembler(maxSize: handlers.maxTransactionBytes, preferredSZX: limits.preferredSZX)
    }

    public func exchange(_ request: CoAPMessage) -> CoAPMessage? {
        lock.withLock { answer(request) }
    }

    private func answer(_ request: CoAPMessage) -> CoAPMessage {
        guard let route = DeviceResource.allCases.first(where: { request.uriPathMatches($0.path) }) else {
            return Self.message(.error(.notFound, "no such resource"))
        }
        guard request.code == route.method else { return Self.message(.error(.methodNotAllowed, "method")) }
        var query: [UInt8] = []
        for (i, argument) in request.uriQuery.enumerated() {
            if i > 0 { query.append(UInt8(ascii: "&")) }
            query += argument
        }
        if route.method == .post { return post(route, query: query, request) }
        return get(route, query: query, request)
    }

    private func post(_ route: DeviceResource, query: [UInt8], _ request: CoAPMessage) -> CoAPMessage {
        guard let blockOption = request.option(.block1) else {
            return Self.message(handlers.handle(route, query: query, body: request.payload))
        }
        let block: BlockOption
        let progress: BlockAssembler.Progress
        do {
            block = try BlockOption(option: blockOption)
            progress = try upload.add(block, payload: request.payload, size1: request.uintOption(.size1))
        } catch .entityTooLarge {
            return Self.message(handlers.tooLarge())
        } catch {
            return Self.message(.error(error.responseCode, "block1"))
        }
        switch progress {
        case .needMore(let echo):
            var reply = Self.message(DeviceResponse(code: .continue))
            reply.addOption(echo.option(.block1))
            return reply
        case .complete(let echo):
            let body = upload.takeBody() ?? []
            var reply = Self.message(handlers.handle(route, query: query, body: body))
            reply.addOption(echo.option(.block1))
            return reply
        }
    }

    private func get(_ route: DeviceResource, query: [UInt8], _ request: CoAPMessage) -> CoAPMessage {
        var requested: BlockOption?
        if let option = request.option(.block2) {
            do { requested = try BlockOption(option: option) } catch {
                return Self.message(.error(error.responseCode, "block2"))
            }
        }
        let number = requested?.number ?? 0
        let szx = BlockOption.negotiatedSZX(requested: requested?.szx, preferred: limits.preferredSZX)
        var key = Array(route.path.withUTF8Buffer { Array($0) })
        key.append(UInt8(ascii: "?"))
        key += query
        let now = clock()
        cache.removeAll { now &- $0.time >= limits.cacheLifetimeNanoseconds }

        let response: DeviceResponse
        let eTag: [UInt8]
        if number > 0, let kept = cache.first(where: { $0.key == key }) {
            (response, eTag) = (kept.response, kept.eTag)
        } else {
            response = handlers.handle(route, query: query, body: [])
            eTag = Self.eTag(response.payload)
            if response.code == .content && response.payload.count > 16 << Int(szx) {
                keep(CachedBody(key: key, response: response, eTag: eTag, time: now))
            }
        }
        guard response.code == .content, requested != nil || response.payload.count > 16 << Int(szx) else {
            return Self.message(response)
        }
        let slice: (option: BlockOption, bytes: [UInt8])
        do { slice = try BlockOption.block2(number, of: response.payload, szx: szx) } catch {
            return Self.message(.error(error.responseCode, "no such block"))
        }
        var partial = response
        partial.payload = slice.bytes
        var reply = Self.message(partial)
        reply.addOption(slice.option.option(.block2))
        reply.addOption(CoAPOption(number: .size2, uint: UInt32(response.payload.count)))
        reply.addOption(CoAPOption(number: .eTag, value: eTag))
        return reply
    }

    private func keep(_ body: CachedBody) {
        guard limits.cachedBodies > 0, body.response.payload.count <= limits.maxCachedBodyBytes else { return }
        cache.removeAll { $0.key == body.key }
        if cache.count >= limits.cachedBodies { cache.removeFirst(cache.count - limits.cachedBodies + 1) }
        cache.append(body)
    }

    /// FNV-1a over the body: an ETag only has to change when the body does, not resist forgery (whoever could
    /// forge one could forge the body too, which the board checks against the chain anyway).
    static func eTag(_ body: [UInt8]) -> [UInt8] {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in body { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return (0..<8).map { UInt8(truncatingIfNeeded: hash >> (56 - 8 * $0)) }
    }

    /// A handler's answer as a CoAP message; type, Message ID and token are the session's to set.
    static func message(_ r: DeviceResponse) -> CoAPMessage {
        var m = CoAPMessage(type: .acknowledgement, code: r.code, messageID: 0, payload: r.payload)
        if let format = r.contentFormat { m.contentFormat = format }
        if let size1 = r.size1 { m.addOption(CoAPOption(number: .size1, uint: size1)) }
        return m
    }
}

// MARK: - Relay to a running gateway

/// Forwards serial requests over UDP to a gateway's CoAP port, so the gateway's handlers, limits and chain
/// state stay the one source of truth and the bridge never opens the SQLite file a running `amarsd` owns.
///
/// Each request goes out as a Confirmable message with the relay's own Message ID (the board's IDs are the
/// serial hop's business) and the board's token, retransmitted with RFC 7252's exponential back-off until an
/// answer comes or the attempts run out: one portable ``CoAPTransaction``, the same rules the board's own client
/// follows, with this class moving its datagrams. Block-wise transfers pass through one message at a time: the Block1
/// and Block2 options travel unchanged and the gateway (libcoap) does the slicing and reassembly. A separate
/// response (empty ACK first) is waited for and acknowledged. Anything else arriving on the socket (late
/// duplicates, notifications nobody asked for) is counted and, if Confirmable, Reset.
///
/// `@unchecked Sendable`: the socket, Message ID counter and counters are only touched with `lock` held, so
/// exchanges from several links are serialised on one socket.
public final class CoAPRelay: SerialBackend, @unchecked Sendable {
    public struct Options: Sendable, Equatable {
        /// Seconds before the first retransmission (randomised up to 1.5×, doubled after each).
        public var ackTimeout: Double
        /// Retransmissions after the first send. On loopback a lost datagram is rare; a dead gateway should show
        /// up as 5.04 on the board within seconds, not RFC 7252's 93.
        public var maxRetransmit: Int
        /// Seconds to wait for a separate response after the gateway's empty ACK.
        public var separateResponseTimeout: Double

        public init(ackTimeout: Double = 1.0, maxRetransmit: Int = 2, separateResponseTimeout: Double = 5.0) {
            precondition(ackTimeout > 0 && maxRetransmit >= 0 && separateResponseTimeout > 0, "CoAPRelay options")
            self.ackTimeout = ackTimeout
            self.maxRetransmit = maxRetransmit
            self.separateResponseTimeout = separateResponseTimeout
        }
    }

    public struct Counters: Equatable, Sendable {
        public var exchanges: UInt64 = 0
        public var answered: UInt64 = 0
        public var retransmissions: UInt64 = 0
        public var timeouts: UInt64 = 0
        /// Datagrams that matched no exchange.
        public var strays: UInt64 = 0
        /// Send or receive failures (the gateway's port closed: ECONNREFUSED).
        public var socketErrors: UInt64 = 0

        public init() {}
    }

    public enum RelayError: Error, CustomStringConvertible, Equatable {
        case invalidURL(String)
        case cannotResolve(String)
        case socket(Int32)

        public var description: String {
            switch self {
            case .invalidURL(let u): "'\(u)' is not coap://HOST:PORT"
            case .cannotResolve(let h): "cannot resolve gateway host '\(h)'"
            case .socket(let e): "gateway socket: \(String(cString: strerror(e)))"
            }
        }
    }

    public let host: String
    public let port: UInt16
    public let options: Options
    private let logger: Logger
    private let lock = NSLock()
    private let fd: Int32
    private var nextMessageID: UInt16
    private var stats = Counters()

    /// `gateway` is `coap://HOST[:PORT]` (port 5683 by default; IPv6 literals in brackets).
    public init(gateway: String, options: Options = Options(), logger: Logger = Logger(label: "amars.serial.relay"))
        throws(RelayError)
    {
        guard let (host, port) = Self.parse(gateway) else { throw .invalidURL(gateway) }
        self.host = host
        self.port = port
        self.options = options
        self.logger = logger
        fd = try Self.connectedSocket(host: host, port: port)
        nextMessageID = UInt16.random(in: 0...UInt16.max)
    }

    deinit { close(fd) }

    public var counters: Counters { lock.withLock { stats } }

    public func exchange(_ request: CoAPMessage) -> CoAPMessage? {
        lock.withLock { relay(request) }
    }

    /// One message through ``CoAPTransaction``: this function only moves its datagrams and reads the clock.
    private func relay(_ request: CoAPMessage) -> CoAPMessage? {
        stats.exchanges &+= 1
        nextMessageID &+= 1
        var transaction = CoAPTransaction(
            request: request, messageID: nextMessageID, token: request.token,
            initialTimeoutMillis: CoAPTransaction.initialTimeout(
                ackTimeoutMillis: Self.millis(options.ackTimeout), randomFactorPercent: 150,
                random: .random(in: 0...(.max))),
            maxRetransmit: options.maxRetransmit, separateResponseMillis: Self.millis(options.separateResponseTimeout))
        defer {
            stats.retransmissions &+= UInt64(transaction.retransmissions)
            stats.strays &+= UInt64(transaction.strays)
        }
        var step = transaction.start(now: Self.now())
        while true {
            if let reply = step.reply { _ = send(reply) }
            if let bytes = step.request, !send(bytes) { return nil }
            switch step.status {
            case .waiting(let deadline):
                if let datagram = receive(until: deadline) {
                    step = transaction.received(datagram, now: Self.now())
                } else if receiveFailed {
                    return nil
                } else {
                    step = transaction.timeout(now: Self.now())
                }
            case .done(let answer):
                stats.answered &+= 1
                return answer
            case .failed(.reset):
                stats.answered &+= 1
                return nil
            case .failed(.protocolViolation(let violation)):
                stats.strays &+= 1
                logger.warning("gateway \(host) port \(port): \(violation.reason)")
                return nil
            case .failed:
                stats.timeouts &+= 1
                logger.warning("gateway \(host) port \(port) did not answer")
                return nil
            }
        }
    }

    private var receiveFailed = false

    private func send(_ bytes: [UInt8]) -> Bool {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n == bytes.count { return true }
        stats.socketErrors &+= 1
        logger.warning("cannot send to gateway \(host) port \(port): \(String(cString: strerror(errno)))")
        return false
    }

    /// The next datagram before `deadline` (``now()``'s milliseconds), or nil at the deadline or on a socket
    /// error (then `receiveFailed`).
    private func receive(until deadline: UInt32) -> [UInt8]? {
        receiveFailed = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let remaining = CoAPClock.remaining(until: deadline, now: Self.now())
            if remaining == 0 { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining + 1, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR || errno == EAGAIN { continue }
            stats.socketErrors &+= 1
            receiveFailed = true
            logger.warning("gateway \(host) port \(port): \(String(cString: strerror(errno)))")
            return nil
        }
    }

    /// Milliseconds of the monotonic clock, wrapping (``CoAPClock``).
    static func now() -> UInt32 { UInt32(truncatingIfNeeded: DeviceRateLimiter.monotonicNanoseconds() / 1_000_000) }

    static func millis(_ seconds: Double) -> UInt32 { UInt32(min(seconds * 1000, Double(CoAPClock.maxInterval))) }

    /// `coap://host[:port]`, with `[v6]` literals; no path, user info or query.
    static func parse(_ url: String) -> (String, UInt16)? {
        let prefix = "coap://"
        guard url.hasPrefix(prefix) else { return nil }
        var rest = Substring(url.dropFirst(prefix.count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return nil }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { return nil }
        var port: UInt16 = 5683
        if let portText {
            guard let p = UInt16(portText), p > 0 else { return nil }
            port = p
        }
        return (String(host), port)
    }

    /// A UDP socket connected to the gateway, so only its datagrams arrive and a closed port shows up as
    /// ECONNREFUSED instead of a silent timeout.
    private static func connectedSocket(host: String, port: UInt16) throws(RelayError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw .cannotResolve(host)
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = EADDRNOTAVAIL
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 {
                lastError = errno
                continue
            }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            lastError = errno
            close(fd)
        }
        throw .socket(lastError)
    }
}
