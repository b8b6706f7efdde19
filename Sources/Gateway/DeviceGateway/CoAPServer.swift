import CCoAP
import Chain
import DeviceProtocol
import Foundation
import Ledger
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's CoAP door for devices (RFC 7252 over UDP), on libcoap3.
///
/// libcoap is not thread-safe, so one thread owns the `coap_context_t`: ``start()`` builds the context and
/// binds the endpoint on the caller's thread (so a bind failure is thrown there), then hands it to the I/O
/// thread, which alone touches it until it frees it on ``stop()``. Other threads reach it only through
/// `pending`, a lock-protected record checked every loop turn (the loop waits at most `pollMilliseconds`
/// in `coap_io_process`), which is how ``headChanged()`` turns a new block into Observe notifications.
///
/// The resources answer through ``DeviceResourceHandlers`` (pure, tested without sockets); this type only
/// moves bytes between libcoap and those functions, and applies the per-device limits. libcoap itself answers
/// 4.04 for unknown paths, 4.05 for methods a resource lacks, 4.02 for unknown critical options and drops
/// datagrams that are not CoAP. Responses go through `coap_add_data_large_response`, so bodies larger than one
/// datagram are served block-wise (Block2 with ETag and Size2) by libcoap.
///
/// Optionally a second endpoint speaks DTLS with pre-shared keys, one per device (``DTLSPSK``): libcoap asks
/// `coapPSKLookup` for the key of the identity a client presents, and a device on that endpoint is rate-limited
/// by its identity instead of its address.
///
/// `@unchecked Sendable`: the libcoap state (`context`, `headResource`, the limiters and partial uploads) is
/// touched only by the I/O thread once ``start()`` has handed it over; `pending` and `thread` are guarded by
/// `lock`.
public final class CoAPServer: @unchecked Sendable {
    public struct Limits: Sendable, Equatable {
        /// Per-device transaction submits (`POST v1/tx`), refused with 4.29 beyond this.
        public var submits: DeviceRateLimiter.Limits
        /// Per-device requests of any kind, refused with 4.29 beyond this. Observe registrations count like any
        /// request; the notifications libcoap produces by re-running the handler with the registration do not,
        /// so the gateway's own notifications cannot empty a device's bucket.
        public var requests: DeviceRateLimiter.Limits
        /// Largest transaction body, over which an upload gets 4.13.
        public var maxTransactionBytes: Int
        /// Most block-wise uploads being assembled at once; the oldest is dropped beyond it.
        public var maxPartialUploads: Int
        /// Most idle UDP sessions libcoap keeps (each remote address is a session).
        public var maxIdleSessions: UInt32

        public init(
            submits: DeviceRateLimiter.Limits = .init(perSecond: 2, burst: 10),
            requests: DeviceRateLimiter.Limits = .init(perSecond: 50, burst: 200),
            maxTransactionBytes: Int = Caps.transactionBytes, maxPartialUploads: Int = 64,
            maxIdleSessions: UInt32 = 1024
        ) {
            self.submits = submits
            self.requests = requests
            self.maxTransactionBytes = maxTransactionBytes
            self.maxPartialUploads = maxPartialUploads
            self.maxIdleSessions = maxIdleSessions
        }
    }

    /// DTLS with per-device pre-shared keys (RFC 7252 §9.1.3.1), on its own UDP port beside plain CoAP.
    public struct DTLSPSK: Sendable, Equatable {
        public var port: UInt16
        /// Sent to clients in the handshake so a device holding several keys picks the right one.
        public var hint: String
        /// Identity → pre-shared key. An identity not in the table fails the handshake.
        public var keys: [String: [UInt8]]

        public init(port: UInt16 = 5684, hint: String = "amarscity", keys: [String: [UInt8]]) {
            self.port = port
            self.hint = hint
            self.keys = keys
        }
    }

    public enum ServerError: Error, CustomStringConvertible, Equatable {
        case alreadyStarted
        case dtlsUnsupported
        case invalidHost(String)
        case contextFailed
        case bindFailed(host: String, port: UInt16)
        /// Another socket (any process, even one that set SO_REUSEADDR) holds the port.
        case portInUse(host: String, port: UInt16)
        /// libcoap bound the port but its socket could not be made exclusive, so a stranger could bind it too.
        case notExclusive(host: String, port: UInt16)

        public var description: String {
            switch self {
            case .alreadyStarted: "the CoAP server is already running"
            case .dtlsUnsupported: "this libcoap has no DTLS support (install the GnuTLS or OpenSSL flavour)"
            case .invalidHost(let h): "'\(h)' is not an IPv4 or IPv6 address"
            case .contextFailed: "libcoap could not create a context"
            case .bindFailed(let h, let p): "cannot listen for CoAP on \(h) port \(p) (in use?)"
            case .portInUse(_, let p): "udp port \(p) is already in use by another socket"
            case .notExclusive(_, let p): "cannot make udp port \(p) exclusive to this gateway"
            }
        }
    }

    /// Longest wait inside `coap_io_process`, hence the most a head notification is delayed.
    static let pollMilliseconds: UInt32 = 50

    public let host: String
    public let port: UInt16
    public let limits: Limits
    public let handlers: DeviceResourceHandlers
    public let dtls: DTLSPSK?
    /// Called on the I/O thread with every answer's resource and code, for the node's metrics. Set before
    /// ``start()``.
    public var onResponse: (@Sendable (DeviceResource, CoAPCode) -> Void)?
    private let logger: Logger

    private struct Pending {
        var headChanged = false
        var stopping = false
    }

    private let lock = NSLock()
    private var pending = Pending()
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    // Owned by the I/O thread after start().
    private var context: OpaquePointer?
    private var headResource: OpaquePointer?
    private var submitLimiter: DeviceRateLimiter
    private var requestLimiter: DeviceRateLimiter
    /// Set while ``turn(_:)`` lets libcoap send notifications: handler calls then are not requests.
    private var notifying = false
    private var epollEvents = [epoll_event](repeating: epoll_event(), count: CoAPServer.epollBatch)
    private static let epollBatch = 16
    /// The server's own lines that a stranger can trigger at will, throttled.
    private let ownLog: ThrottledLog
    private var uploads: [UInt: [UInt8]] = [:]
    private var uploadOrder: [UInt] = []
    /// Keys in C memory for the PSK callback, allocated by start() and freed after the context.
    private var pskKeys: [[UInt8]: UnsafeMutablePointer<coap_bin_const_t>] = [:]
    private var pskHint: [UInt8] = []

    public init(
        node: ChainNode, host: String = "::", port: UInt16 = 5683, logger: Logger = Logger(label: "amars.coap"),
        limits: Limits = Limits(), dtls: DTLSPSK? = nil, reanchorFile: String? = nil, commands: CommandDoor? = nil,
        channels: ChannelDoor? = nil, clock: @escaping @Sendable () -> UInt64 = DeviceRateLimiter.monotonicNanoseconds
    ) {
        self.dtls = dtls
        self.host = host
        self.port = port
        self.limits = limits
        self.logger = logger
        self.handlers = DeviceResourceHandlers(
            node: node, maxTransactionBytes: limits.maxTransactionBytes, reanchorFile: reanchorFile,
            commands: commands, channels: channels)
        self.submitLimiter = DeviceRateLimiter(limits: limits.submits, clock: clock)
        self.requestLimiter = DeviceRateLimiter(limits: limits.requests, clock: clock)
        self.ownLog = ThrottledLog(logger: logger)
    }

    /// libcoap's log, which is global to the process: lines go through swift-log, each kind throttled.
    static let libcoapLog = ThrottledLog(logger: Logger(label: "amars.coap.libcoap"))

    deinit {
        if let context { coap_free_context(context) }
        freeKeys()
    }

    // MARK: lifecycle

    /// Binds the UDP endpoint and starts the I/O thread. Throws if the address is invalid or the port taken.
    public func start() throws(ServerError) {
        lock.lock()
        defer { lock.unlock() }
        guard thread == nil, context == nil else { throw .alreadyStarted }
        _ = coapLibraryStartup
        var address = coap_address_t()
        coap_address_init(&address)
        guard Self.fill(&address, host: host, port: port) else { throw .invalidHost(host) }
        guard let ctx = coap_new_context(nil) else { throw .contextFailed }
        Self.libcoapLog.setLogger(logger)
        coap_context_set_block_mode(ctx, UInt8(COAP_BLOCK_USE_LIBCOAP))
        coap_context_set_max_idle_sessions(ctx, limits.maxIdleSessions)
        do throws(ServerError) {
            try Self.listenExclusively(ctx, address, COAP_PROTO_UDP, host: host, port: port)
        } catch {
            coap_free_context(ctx)
            throw error
        }
        if let dtls {
            do throws(ServerError) { try listenDTLS(ctx, dtls) } catch {
                coap_free_context(ctx)
                freeKeys()
                throw error
            }
        }
        coap_set_app_data(ctx, Unmanaged.passUnretained(self).toOpaque())
        for route in DeviceResource.allCases {
            let resource = Self.register(route, in: ctx)
            if route == .head { headResource = resource }
        }
        // Telling notifications from requests needs libcoap's epoll loop (turn(_:)); Debian's libcoap has it.
        guard coap_context_get_coap_fd(ctx) >= 0 else {
            coap_free_context(ctx)
            throw .contextFailed
        }
        context = ctx
        pending = Pending()
        let thread = Thread { [self] in run() }
        thread.name = "amars-coap"
        self.thread = thread
        thread.start()
        logger.info("CoAP listening on udp \(host) port \(port)")
        if let dtls { logger.info("CoAP over DTLS-PSK on udp \(host) port \(dtls.port), \(dtls.keys.count) devices") }
    }

    private func listenDTLS(_ ctx: OpaquePointer, _ dtls: DTLSPSK) throws(ServerError) {
        guard coap_dtls_is_supported() != 0 else { throw .dtlsUnsupported }
        for (identity, key) in dtls.keys {
            let entry = UnsafeMutablePointer<coap_bin_const_t>.allocate(capacity: 1)
            let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(key.count, 1))
            bytes.initialize(from: key, count: key.count)
            entry.initialize(to: coap_bin_const_t(length: key.count, s: bytes))
            pskKeys[Array(identity.utf8)] = entry
        }
        pskHint = Array(dtls.hint.utf8)
        var setup = coap_dtls_spsk_t()
        setup.version = UInt8(COAP_DTLS_SPSK_SETUP_VERSION)
        setup.validate_id_call_back = coapPSKLookup
        let ok = pskHint.withUnsafeBufferPointer { hint in
            setup.psk_info.hint = coap_bin_const_t(length: hint.count, s: hint.baseAddress)
            // libcoap copies the hint and key it is given here; the per-device keys come from the callback.
            return coap_context_set_psk2(ctx, &setup)
        }
        var address = coap_address_t()
        coap_address_init(&address)
        guard ok != 0, Self.fill(&address, host: host, port: dtls.port) else {
            throw .bindFailed(host: host, port: dtls.port)
        }
        try Self.listenExclusively(ctx, address, COAP_PROTO_DTLS, host: host, port: dtls.port)
    }

    /// Opens a libcoap endpoint that no other socket can share.
    ///
    /// libcoap sets SO_REUSEADDR on its UDP sockets, and Linux lets a second UDP socket bind a port when both
    /// set it: a second gateway (or anyone) would then bind our port without an error, and devices would be
    /// answered by whichever socket the kernel picks. So first a probe without SO_REUSEADDR (it fails with
    /// EADDRINUSE if any socket holds the port, whatever that socket set), then libcoap binds, then its socket
    /// gets SO_REUSEADDR cleared: Linux checks the holder's current setting when a newcomer binds, so every
    /// later bind of the port fails. Port 0 (the kernel picks a free port) needs neither step.
    private static func listenExclusively(
        _ ctx: OpaquePointer, _ address: coap_address_t, _ proto: coap_proto_t, host: String, port: UInt16
    ) throws(ServerError) {
        var address = address
        if port != 0, probeBind(address) == EADDRINUSE { throw .portInUse(host: host, port: port) }
        guard coap_new_endpoint(ctx, &address, proto) != nil else { throw .bindFailed(host: host, port: port) }
        guard port == 0 || clearReuseAddress(boundTo: address) else { throw .notExclusive(host: host, port: port) }
    }

    /// Binds and closes a UDP socket without SO_REUSEADDR on `address`; the bind's errno, 0 when it worked.
    /// An IPv6 socket is dual-stack, as libcoap's is, so the probe covers the IPv4 port too.
    private static func probeBind(_ address: coap_address_t) -> Int32 {
        var address = address
        let fd = socket(Int32(address.addr.sa.sa_family), Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        if Int32(address.addr.sa.sa_family) == AF_INET6 {
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        return bind(fd, &address.addr.sa, address.size) == 0 ? 0 : errno
    }

    /// Finds the UDP socket bound to `address` among this process's descriptors (libcoap 4.3.1 has no accessor
    /// for an endpoint's socket) and clears SO_REUSEADDR on it. False if no such socket was found or changed.
    /// Only libcoap's endpoint can match: the probe showed nobody else held the address a moment before.
    private static func clearReuseAddress(boundTo address: coap_address_t) -> Bool {
        guard let wanted = addressBytes(address), let directory = opendir("/proc/self/fd") else { return false }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var cleared = false
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let fd = Int32(name), fd != own else { continue }
            var type: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_DGRAM.rawValue),
                boundAddress(fd) == wanted
            else { continue }
            var off: Int32 = 0
            if setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, socklen_t(MemoryLayout<Int32>.size)) == 0 {
                cleared = true
            }
        }
        return cleared
    }

    /// Family, port and address of a bound socket, as comparable bytes (nil if it is neither IPv4 nor IPv6).
    private static func boundAddress(_ fd: Int32) -> [UInt8]? {
        var bound = coap_address_t()
        coap_address_init(&bound)
        bound.size = socklen_t(MemoryLayout.size(ofValue: bound.addr))
        guard getsockname(fd, &bound.addr.sa, &bound.size) == 0 else { return nil }
        return addressBytes(bound)
    }

    private static func addressBytes(_ address: coap_address_t) -> [UInt8]? {
        var address = address
        switch Int32(address.addr.sa.sa_family) {
        case AF_INET:
            return [4] + withUnsafeBytes(of: &address.addr.sin.sin_port) { Array($0) }
                + withUnsafeBytes(of: &address.addr.sin.sin_addr) { Array($0) }
        case AF_INET6:
            return [6] + withUnsafeBytes(of: &address.addr.sin6.sin6_port) { Array($0) }
                + withUnsafeBytes(of: &address.addr.sin6.sin6_addr) { Array($0) }
        default:
            return nil
        }
    }

    /// The key for a PSK identity, called on the I/O thread during a handshake; nil refuses the handshake.
    fileprivate func pskKey(for identity: [UInt8]) -> UnsafePointer<coap_bin_const_t>? {
        guard let entry = pskKeys[identity] else {
            // A stranger can repeat this as fast as it can send handshakes: throttled like libcoap's lines.
            ownLog.log(.info, "DTLS handshake with unknown PSK identity refused")
            return nil
        }
        return UnsafePointer(entry)
    }

    private func freeKeys() {
        for entry in pskKeys.values {
            UnsafeMutablePointer(mutating: entry.pointee.s)?.deallocate()
            entry.deallocate()
        }
        pskKeys = [:]
    }

    /// Stops the I/O thread and frees the context; waits until both are done. Safe to call twice.
    public func stop() {
        lock.lock()
        let running = thread != nil
        pending.stopping = true
        lock.unlock()
        guard running else { return }
        stopped.wait()
        lock.lock()
        thread = nil
        lock.unlock()
    }

    /// Tells observers of `v1/head` that there is a new block. Callable from any thread; the notification
    /// leaves within one loop turn.
    public func headChanged() {
        lock.lock()
        pending.headChanged = true
        lock.unlock()
    }

    private func run() {
        guard let ctx = context else { return }
        var lastSummary = DeviceRateLimiter.monotonicNanoseconds()
        while true {
            lock.lock()
            let work = pending
            pending.headChanged = false
            lock.unlock()
            if work.stopping { break }
            if work.headChanged, let headResource { coap_resource_notify_observers(headResource, nil) }
            guard turn(ctx) else {
                logger.error("CoAP I/O failed (errno \(errno)); the CoAP server stops")
                break
            }
            let now = DeviceRateLimiter.monotonicNanoseconds()
            if now &- lastSummary >= 1_000_000_000 {
                lastSummary = now
                Self.libcoapLog.summarize()
                ownLog.summarize()
            }
        }
        coap_free_context(ctx)
        context = nil
        // What was suppressed since the last summary is still worth its one line.
        Self.libcoapLog.summarize()
        ownLog.summarize()
        freeKeys()
        headResource = nil
        uploads = [:]
        uploadOrder = []
        stopped.signal()
    }

    // MARK: resources

    /// One resource per route, all sharing `coapRequestHandler`; the route travels in the resource's user data
    /// as a small integer, so no Swift object crosses into C.
    private static func register(_ route: DeviceResource, in ctx: OpaquePointer) -> OpaquePointer? {
        let path = route.path.withUTF8Buffer { coap_new_str_const($0.baseAddress, $0.count) }
        guard let resource = coap_resource_init(path, Int32(COAP_RESOURCE_FLAGS_RELEASE_URI)) else { return nil }
        coap_resource_set_userdata(resource, UnsafeMutableRawPointer(bitPattern: route.rawValue + 1))
        let method = route.method == .post ? COAP_REQUEST_POST : COAP_REQUEST_GET
        coap_register_request_handler(resource, method, coapRequestHandler)
        if route.isObservable { coap_resource_set_get_observable(resource, 1) }
        coap_add_resource(ctx, resource)
        return resource
    }

    /// One turn of libcoap's I/O, waiting at most `pollMilliseconds`; false if it failed.
    ///
    /// This is `coap_io_process` spelled out (libcoap's documented external-loop API), so that its two halves can
    /// be told apart; what it does besides (expiring the application's cache entries, delayed async answers)
    /// concerns features this server does not use. libcoap 4.3.1 produces an Observe notification by calling the
    /// resource's handler with the observer's stored registration request, so the handler cannot tell it from a
    /// registration arriving from the network by its arguments. But it does so only in `coap_io_prepare_epoll`
    /// (through `coap_check_notify`), which reads no socket, while every request from the network is handled in
    /// `coap_io_do_epoll`. So handler calls while `notifying` is set are the gateway's own notifications, not
    /// requests to count. That split must be exact: a notification answered with an error makes libcoap 4.3.1
    /// free the observer and then use it.
    private func turn(_ ctx: OpaquePointer) -> Bool {
        let epoll = coap_context_get_coap_fd(ctx)
        var now: coap_tick_t = 0
        coap_ticks(&now)
        notifying = true
        let due = coap_io_prepare_epoll(ctx, now)
        notifying = false
        var wait = Int32(due == 0 ? Self.pollMilliseconds : min(due, Self.pollMilliseconds))
        while true {
            let count = epoll_wait(epoll, &epollEvents, Int32(Self.epollBatch), wait)
            if count < 0 { return errno == EINTR }
            coap_io_do_epoll(ctx, &epollEvents, Int(count))
            // A full batch may have left events behind: take them without waiting, as coap_io_process does.
            guard count == Self.epollBatch else { return true }
            wait = 0
        }
    }

    /// Called on the I/O thread by libcoap for every request (and every Observe notification) to a route.
    fileprivate func handle(
        route: DeviceResource, resource: OpaquePointer, session: OpaquePointer, request: OpaquePointer,
        query: UnsafePointer<coap_string_t>?, response: OpaquePointer
    ) {
        let device = Self.deviceKey(session)
        let rawQuery: [UInt8] =
            query.map { q in
                q.pointee.s.map { Array(UnsafeBufferPointer(start: $0, count: q.pointee.length)) } ?? []
            } ?? []
        // The request log (log level debug): what an operator, or a test, reads to see what devices asked for. A
        // payment-code device asks for the accounts of its filter's matches only, and this line is how that shows.
        if !notifying {
            logger.debug(
                "CoAP request \(route.path)?\(String(decoding: rawQuery.prefix(256), as: UTF8.self)) from \(device)")
        }
        // Only requests from the network count: an Observe registration does, the notifications libcoap makes
        // from it (see turn(_:)) do not, or the gateway's own notifications would empty the bucket (and a refused
        // notification would crash libcoap).
        if !notifying && !requestLimiter.allow(device) {
            respond(.error(.tooManyRequests, "slow down"), route, resource, session, request, query, response)
            return
        }
        var body: [UInt8] = []
        if route.method == .post {
            switch assembleUpload(route, session: session, request: request) {
            case .complete(let bytes): body = bytes
            case .needMore:
                coap_pdu_set_code(response, coapCode(.continue))
                return
            case .refused(let r):
                respond(r, route, resource, session, request, query, response)
                return
            }
            guard submitLimiter.allow(device) else {
                logger.debug("CoAP submit from \(device) refused: rate limit")
                respond(.error(.tooManyRequests, "submit rate"), route, resource, session, request, query, response)
                return
            }
        }
        respond(handlers.handle(route, query: rawQuery, body: body), route, resource, session, request, query, response)
    }

    private enum Upload {
        case complete([UInt8])
        case needMore
        case refused(DeviceResponse)
    }

    /// Collects a POST body. libcoap (without `COAP_BLOCK_SINGLE_BODY`, which would let a hostile Size1 size
    /// its buffer) hands each Block1 block to the handler with its offset and the announced or implied total;
    /// anything that announces or reaches more than the cap is refused with 4.13 before it is stored.
    private func assembleUpload(_ route: DeviceResource, session: OpaquePointer, request: OpaquePointer) -> Upload {
        var length = 0
        var data: UnsafePointer<UInt8>?
        var offset = 0
        var total = 0
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(session)))
        let hasData = coap_get_data_large(request, &length, &data, &offset, &total) != 0
        let chunk: [UInt8] = hasData && length > 0 ? Array(UnsafeBufferPointer(start: data, count: length)) : []
        let cap = route == .channelMessage ? MailboxPayload.maxChannelMessageBytes : limits.maxTransactionBytes
        if total > cap || offset + length > cap {
            dropUpload(key)
            return .refused(handlers.tooLarge(cap))
        }
        if offset == 0 && length >= total {
            dropUpload(key)
            return .complete(chunk)
        }
        var assembled: [UInt8]
        if offset == 0 {
            assembled = chunk
        } else {
            guard let previous = uploads[key], previous.count == offset else {
                dropUpload(key)
                return .refused(.error(.requestEntityIncomplete, "blocks out of order"))
            }
            assembled = previous + chunk
        }
        if assembled.count >= total {
            dropUpload(key)
            return .complete(assembled)
        }
        if uploads[key] == nil {
            if uploadOrder.count >= limits.maxPartialUploads { dropUpload(uploadOrder[0]) }
            uploadOrder.append(key)
        }
        uploads[key] = assembled
        return .needMore
    }

    private func dropUpload(_ key: UInt) {
        guard uploads.removeValue(forKey: key) != nil else { return }
        uploadOrder.removeAll { $0 == key }
    }

    /// Writes a handler's answer into libcoap's response PDU. Successful GET bodies go through
    /// `coap_add_data_large_response` (block-wise when needed); other bodies are small and copied.
    private func respond(
        _ r: DeviceResponse, _ route: DeviceResource, _ resource: OpaquePointer, _ session: OpaquePointer,
        _ request: OpaquePointer, _ query: UnsafePointer<coap_string_t>?, _ response: OpaquePointer
    ) {
        onResponse?(route, r.code)
        coap_pdu_set_code(response, coapCode(r.code))
        if let size1 = r.size1 {
            var buf = [UInt8](repeating: 0, count: 4)
            let n = coap_encode_var_safe(&buf, 4, size1)
            coap_add_option(response, coap_option_num_t(COAP_OPTION_SIZE1), Int(n), buf)
        }
        guard !r.payload.isEmpty else { return }
        if route.method == .get && r.code == .content {
            guard let copy = malloc(r.payload.count) else { return }
            r.payload.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let ok = coap_add_data_large_response(
                resource, session, request, response, query, r.contentFormat ?? 0, -1, 0, r.payload.count,
                copy.assumingMemoryBound(to: UInt8.self), coapFreeLargeData, copy)
            if ok == 0 { logger.warning("CoAP: libcoap refused a \(r.payload.count)-byte response") }
            return
        }
        if let format = r.contentFormat {
            var buf = [UInt8](repeating: 0, count: 4)
            let n = coap_encode_var_safe(&buf, 4, UInt32(format))
            coap_add_option(response, coap_option_num_t(COAP_OPTION_CONTENT_FORMAT), Int(n), buf)
        }
        _ = r.payload.withUnsafeBufferPointer { coap_add_data(response, $0.count, $0.baseAddress) }
    }

    // MARK: helpers

    /// The rate-limit identity of a device: its PSK identity over DTLS; over plain UDP its source IP without the
    /// port, so changing ports does not buy a fresh bucket. Devices behind one NAT share a bucket; the defaults
    /// leave room for that.
    static func deviceKey(_ session: OpaquePointer) -> String {
        if let identity = coap_session_get_psk_identity(session), identity.pointee.length > 0,
            let s = identity.pointee.s
        {
            return "psk:"
                + String(decoding: UnsafeBufferPointer(start: s, count: identity.pointee.length), as: UTF8.self)
        }
        guard let remote = coap_session_get_addr_remote(session) else { return "?" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var address = remote.pointee.addr
        let family = Int32(address.sa.sa_family)
        let ok: Bool
        if family == AF_INET {
            ok = inet_ntop(AF_INET, &address.sin.sin_addr, &text, socklen_t(text.count)) != nil
        } else if family == AF_INET6 {
            ok = inet_ntop(AF_INET6, &address.sin6.sin6_addr, &text, socklen_t(text.count)) != nil
        } else {
            ok = false
        }
        guard ok, let end = text.firstIndex(of: 0) else { return "?" }
        return String(decoding: text[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func fill(_ address: inout coap_address_t, host: String, port: UInt16) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            address.addr.sin = sockaddr_in()
            address.addr.sin.sin_family = sa_family_t(AF_INET)
            address.addr.sin.sin_addr = v4
            address.addr.sin.sin_port = port.bigEndian
            address.size = socklen_t(MemoryLayout<sockaddr_in>.size)
            return true
        }
        if inet_pton(AF_INET6, host, &v6) == 1 {
            address.addr.sin6 = sockaddr_in6()
            address.addr.sin6.sin6_family = sa_family_t(AF_INET6)
            address.addr.sin6.sin6_addr = v6
            address.addr.sin6.sin6_port = port.bigEndian
            address.size = socklen_t(MemoryLayout<sockaddr_in6>.size)
            return true
        }
        return false
    }
}

private func coapCode(_ code: CoAPCode) -> coap_pdu_code_t { coap_pdu_code_t(rawValue: UInt32(code.rawValue)) }

/// Once per process, before the first context: libcoap's global setup, and its own logging kept to errors
/// (the server logs what matters through swift-log).
private let coapLibraryStartup: Void = {
    coap_startup()
    coap_set_log_level(coap_log_t(LOG_ERR))
    coap_set_log_handler(coapLogHandler)
}()

/// libcoap's log lines, which strangers can trigger at will (it logs every RST it receives, at LOG_ALERT): into
/// swift-log through a throttle, so a flood of them costs a few lines instead of the disk. Whatever libcoap's
/// level, these are the gateway's errors, not alerts.
private let coapLogHandler: coap_log_handler_t = { _, message in
    guard let message else { return }
    var text = String(cString: message)
    while text.last?.isNewline == true { text.removeLast() }
    CoAPServer.libcoapLog.log(.error, "libcoap: \(text)")
}

/// The C entry point for every route. It carries no Swift context: the server comes back from the context's
/// app data and the route from the resource's user data.
private let coapRequestHandler: coap_method_handler_t = { resource, session, request, query, response in
    guard let resource, let session, let request, let response,
        let ctx = coap_session_get_context(session), let app = coap_get_app_data(ctx),
        let tag = coap_resource_get_userdata(resource),
        let route = DeviceResource(rawValue: Int(bitPattern: tag) - 1)
    else { return }
    let server = Unmanaged<CoAPServer>.fromOpaque(app).takeUnretainedValue()
    server.handle(
        route: route, resource: resource, session: session, request: request, query: query, response: response)
}

/// Frees a response body handed to `coap_add_data_large_response` once libcoap has sent its last block.
private let coapFreeLargeData: coap_release_large_data_t = { _, pointer in free(pointer) }

/// libcoap's PSK identity callback: the server comes back from the session's context, the key from its table.
private let coapPSKLookup: coap_dtls_id_callback_t = { identity, session, _ in
    guard let identity, let session, let ctx = coap_session_get_context(session), let app = coap_get_app_data(ctx)
    else { return nil }
    let bytes = identity.pointee.s.map { Array(UnsafeBufferPointer(start: $0, count: identity.pointee.length)) } ?? []
    return Unmanaged<CoAPServer>.fromOpaque(app).takeUnretainedValue().pskKey(for: bytes)
}
