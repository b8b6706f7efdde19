import Foundation
import Ledger
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The gateway's HTTP listener: SwiftNIO's HTTP/1.1 parser in front of ``APIRouter``.
///
/// One event loop thread is enough: every route is a short synchronous call into the chain (which takes its
/// own lock), so there is nothing to overlap. Bodies are capped at ``APIRouter/maxBodyBytes`` while they
/// stream in, so an oversized upload costs no more memory than the cap; a request NIO cannot parse gets 400
/// and its connection is closed.
///
/// Connections cost an outsider nothing to open and hold, so they are bounded (``Limits``): at most
/// `maxConnections` in all and `maxConnectionsPerSource` from one address; at a cap a new connection evicts the
/// connection that has been idle longest and has no request in flight (as nginx reuses its keep-alive
/// connections when it runs out), and is refused only if every connection is busy. Someone holding idle
/// connections therefore only ever holds the oldest slots, and an honest client that connects and asks at once
/// is served. A request's head must arrive within `headerTimeout` of the connection opening (or of its first
/// byte, on a kept-alive connection) and its body within `bodyTimeout`; a connection silent between requests is
/// closed after `idleTimeout`. Memory a flood of connections took is given back once it has subsided.
///
/// `@unchecked Sendable`: the mutable state (the event loop group and the listening channel) is only touched
/// under `lock`, so `amarsd` can call ``shutdown()`` from its signal-handling thread.
public final class HTTPServer: @unchecked Sendable {
    public struct Limits: Sendable, Equatable {
        /// Most connections open at once.
        public var maxConnections: Int
        /// Most connections from one source: an IPv4 address, or an IPv6 /64 (one host's share of addresses).
        public var maxConnectionsPerSource: Int
        /// How long a request head may take, from the connection opening or from the first byte of a request
        /// on a kept-alive connection.
        public var headerTimeout: TimeAmount
        /// How long a request's body may take once its head has arrived.
        public var bodyTimeout: TimeAmount
        /// How long a connection may stay silent between requests.
        public var idleTimeout: TimeAmount
        /// Threads answering requests (the event loop only moves bytes): how many requests may wait at once
        /// for the chain or the disk before the next waits for a thread.
        public var workerThreads: Int
        /// Most `GET /v1/events` streams open at once (each polls the head twice a second); more get 503.
        public var maxEventStreams: Int
        /// Most streams from one source (as for connections: an IPv4 address or an IPv6 /64), so one client
        /// cannot take every stream and leave other viewers' pages without updates.
        public var maxEventStreamsPerSource: Int

        public init(
            maxConnections: Int = 512, maxConnectionsPerSource: Int = 128, headerTimeout: TimeAmount = .seconds(5),
            bodyTimeout: TimeAmount = .seconds(30), idleTimeout: TimeAmount = .seconds(60), workerThreads: Int = 4,
            maxEventStreams: Int = 64, maxEventStreamsPerSource: Int = 8
        ) {
            precondition(
                maxConnections >= 1 && maxConnectionsPerSource >= 1 && workerThreads >= 1, "HTTPServer: invalid limits")
            self.maxConnections = maxConnections
            self.maxConnectionsPerSource = maxConnectionsPerSource
            self.headerTimeout = headerTimeout
            self.bodyTimeout = bodyTimeout
            self.idleTimeout = idleTimeout
            self.workerThreads = workerThreads
            self.maxEventStreams = maxEventStreams
            self.maxEventStreamsPerSource = maxEventStreamsPerSource
        }
    }

    /// What the connection limits did since the server started.
    public struct ConnectionStats: Sendable, Equatable {
        /// Connections open now.
        public var open = 0
        /// Idle connections closed to admit a new one at a cap.
        public var evicted: UInt64 = 0
        /// New connections closed at once because every connection in their scope had a request in flight.
        public var refused: UInt64 = 0
        /// Connections closed because a request's head or body did not arrive in time.
        public var timedOut: UInt64 = 0
        /// Times memory was handed back to the system after a flood of connections.
        public var memoryTrims: UInt64 = 0
    }

    private let router: APIRouter
    private let host: String
    private let port: Int
    private let logger: Logger
    public let limits: Limits
    private let lock = NSLock()
    /// The node's shared group when one was given; else the server makes (and shuts down) its own.
    private let sharedGroup: (any EventLoopGroup)?
    private var ownGroup: MultiThreadedEventLoopGroup?
    private var workers: NIOThreadPool?
    private var channel: (any Channel)?
    private var registry: ConnectionRegistry?

    public init(
        router: APIRouter, host: String, port: Int, logger: Logger, limits: Limits = Limits(),
        group: (any EventLoopGroup)? = nil
    ) {
        self.sharedGroup = group
        self.router = router
        self.host = host
        self.port = port
        self.logger = logger
        self.limits = limits
    }

    /// The connection counters; zero before ``start()``.
    public var connectionStats: ConnectionStats {
        lock.lock()
        let registry = self.registry
        lock.unlock()
        return registry?.stats ?? ConnectionStats()
    }

    /// Binds and starts serving; returns the bound port (useful with port 0, which picks a free one).
    public func start() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        precondition(channel == nil, "HTTPServer.start() called twice")
        let owned = sharedGroup == nil ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        let group: any EventLoopGroup = sharedGroup ?? owned!
        // Requests are answered on these threads, never on the event loop: a handler that waits for the chain
        // lock (held while a block executes) or for the submit journal's fsync must not stall every other
        // client, and concurrent submits must reach the journal together to share one fsync.
        let workers = NIOThreadPool(numberOfThreads: limits.workerThreads)
        workers.start()
        let router = self.router
        let logger = self.logger
        let limits = self.limits
        // One loop: the listener and every connection share it, and so does the registry.
        let registry = ConnectionRegistry(limits: limits, loop: group.next(), logger: logger)
        let streams = EventStreamSlots(limit: limits.maxEventStreams, perSource: limits.maxEventStreamsPerSource)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Accept in larger batches: under a connection flood the loop then spends its turns shedding
            // connections, and an honest client's connection waits less in the kernel's accept queue.
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Admission first: a refused connection is closed before any parser is built for it.
                    guard registry.admit(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ConnectionGuard(registry: registry, id: ObjectIdentifier(channel)))
                    try sync.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(
                        HTTPRequestHandler(router: router, workers: workers, streams: streams, logger: logger))
                }
            }
        do {
            let channel = try bootstrap.bind(host: host, port: port).wait()
            self.ownGroup = owned
            self.workers = workers
            self.channel = channel
            self.registry = registry
            router.metrics.collect { [weak registry] m in registry?.collectMetrics(into: m) }
            let bound = channel.localAddress?.port ?? port
            logger.info("HTTP API listening", metadata: ["address": "\(host):\(bound)"])
            return bound
        } catch {
            try? owned?.syncShutdownGracefully()
            try? workers.syncShutdownGracefully()
            throw error
        }
    }

    /// Stops accepting, closes the listener and the event loop. Safe to call more than once.
    public func shutdown() {
        lock.lock()
        let channel = self.channel
        let group = self.ownGroup
        let workers = self.workers
        self.channel = nil
        self.ownGroup = nil
        self.workers = nil
        lock.unlock()
        try? channel?.close().wait()
        try? group?.syncShutdownGracefully()
        try? workers?.syncShutdownGracefully()
    }

    deinit { shutdown() }
}

/// How many event streams are open, in all and per source, shared by every connection of one server.
final class EventStreamSlots: Sendable {
    private struct Open {
        var total = 0
        var bySource: [String: Int] = [:]
    }

    private let open = Mutex(Open())
    private let limit: Int
    private let perSource: Int

    init(limit: Int, perSource: Int) {
        self.limit = limit
        self.perSource = perSource
    }

    func acquire(source: String) -> Bool {
        open.withLock { o in
            guard o.total < limit, o.bySource[source, default: 0] < perSource else { return false }
            o.total += 1
            o.bySource[source, default: 0] += 1
            return true
        }
    }

    func release(source: String) {
        open.withLock { o in
            o.total -= 1
            let left = o.bySource[source, default: 1] - 1
            o.bySource[source] = left > 0 ? left : nil
        }
    }
}

/// Collects one request (head and capped body), asks the router on a worker thread, writes the answer back on
/// the event loop. NIO's pipelining handler holds a connection's next request until this one's answer is out,
/// so answers keep their order.
///
/// Its state is touched on its channel's event loop only, so it needs no lock.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, [UInt8])
        /// The body went over the cap: the 413 is out and the rest of the request is dropped.
        case discarding
        /// Serving `GET /v1/events` until the client leaves; anything else it sends is dropped.
        case streaming
    }

    private let router: APIRouter
    private let workers: NIOThreadPool
    private let streams: EventStreamSlots
    private let logger: Logger
    private var state = State.idle
    private var stream: EventStream?

    init(router: APIRouter, workers: NIOThreadPool, streams: EventStreamSlots, logger: Logger) {
        self.router = router
        self.workers = workers
        self.streams = streams
        self.logger = logger
    }

    /// A live `GET /v1/events` answer: polls the router for new heads off the event loop and writes what it
    /// returns as server-sent events, with a comment line when nothing happened for a while (so proxies and the
    /// idle timeout see traffic).
    private final class EventStream {
        var height: UInt64?
        var polling = false
        var lastWrite = NIODeadline.now()
        var task: RepeatedTask?
        let account: Address?
        let source: String

        init(account: Address?, after: UInt64?, source: String) {
            self.account = account
            self.height = after
            self.source = source
        }
    }

    static let streamPoll = TimeAmount.milliseconds(500)
    static let streamHeartbeat = TimeAmount.seconds(15)

    private func startStream(
        account: Address?, after: UInt64?, head: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        let source = ConnectionRegistry.source(of: context.channel.remoteAddress)
        guard streams.acquire(source: source) else {
            router.record(status: 503)
            write(
                .error(503, "tooManyStreams", "too many live event streams; retry later"), keepAlive: false,
                version: head.version, context: context)
            return
        }
        router.record(status: 200)
        state = .streaming
        context.triggerUserOutboundEvent(ConnectionGuard.Progress.streaming, promise: nil)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil
        )
        // A browser reconnects this many milliseconds after the stream drops (a node restart, an eviction).
        writeEvents("retry: 2000\n\n", context: context)
        let stream = EventStream(account: account, after: after, source: source)
        self.stream = stream
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        stream.task = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.streamPoll) { _ in
            let (handler, context) = bound.value
            handler.poll(stream, context: context)
        }
    }

    private func poll(_ stream: EventStream, context: ChannelHandlerContext) {
        guard !stream.polling, context.channel.isActive else { return }
        stream.polling = true
        let router = self.router
        let (after, account) = (stream.height, stream.account)
        let next = workers.runIfActive(eventLoop: context.eventLoop) { router.events(after: after, account: account) }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        next.whenComplete { result in
            let (handler, context) = bound.value
            stream.polling = false
            guard case .success(let (height, text)) = result, context.channel.isActive else { return }
            stream.height = height
            if !text.isEmpty {
                handler.writeEvents(text, context: context)
                stream.lastWrite = .now()
            } else if NIODeadline.now() - stream.lastWrite >= Self.streamHeartbeat {
                handler.writeEvents(": keep-alive\n\n", context: context)
                stream.lastWrite = .now()
            }
        }
    }

    private func writeEvents(_ text: String, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        guard let stream else { return }
        stream.task?.cancel()
        self.stream = nil
        streams.release(source: stream.source)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .streaming = state { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            context.triggerUserOutboundEvent(ConnectionGuard.Progress.headReceived, promise: nil)
            let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            if declared > APIRouter.maxBodyBytes {
                refuseTooLarge(context: context)
                return
            }
            state = .receiving(head, [])
            // Clients that ask first (curl does for large bodies) would otherwise wait a second before sending.
            if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                let interim = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            // Drop the reference held by `state` so appending does not copy the buffer.
            state = .idle
            guard body.count + chunk.readableBytes <= APIRouter.maxBodyBytes else {
                refuseTooLarge(context: context)
                return
            }
            if let bytes = chunk.readBytes(length: chunk.readableBytes) { body.append(contentsOf: bytes) }
            state = .receiving(head, body)
        case .end:
            guard case .receiving(let head, let body) = state else {
                state = .idle
                return
            }
            state = .idle
            if head.method == .GET, let request = router.eventStream(uri: head.uri) {
                switch request {
                case .watch(let account, let after):
                    // A browser reconnecting on its own names the last head it saw; the stream resumes there.
                    let resumed = head.headers.first(name: "last-event-id").flatMap { UInt64($0) } ?? after
                    startStream(account: account, after: resumed, head: head, context: context)
                case .refused(let response):
                    router.record(status: response.status)
                    write(response, keepAlive: head.isKeepAlive, version: head.version, context: context)
                    context.triggerUserOutboundEvent(ConnectionGuard.Progress.requestDone, promise: nil)
                }
                return
            }
            let router = self.router
            let contentType = head.headers.first(name: "content-type")
            let answered = workers.runIfActive(eventLoop: context.eventLoop) {
                router.handle(method: head.method.rawValue, uri: head.uri, body: body, contentType: contentType)
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            answered.whenComplete { result in
                let (handler, context) = bound.value
                guard context.channel.isActive else { return }
                let response: APIResponse
                switch result {
                case .success(let r): response = r
                case .failure:  // the pool is shutting down with the server
                    response = APIResponse(
                        status: 503, contentType: "application/json",
                        body: APIJSON.error(code: "shuttingDown", message: "the node is stopping").bytes + [0x0A])
                }
                handler.write(response, keepAlive: head.isKeepAlive, version: head.version, context: context)
                context.triggerUserOutboundEvent(ConnectionGuard.Progress.requestDone, promise: nil)
            }
        }
    }

    private func refuseTooLarge(context: ChannelHandlerContext) {
        state = .discarding
        router.record(status: 413)
        let body =
            APIJSON.error(
                code: "bodyTooLarge", message: "request bodies are limited to \(APIRouter.maxBodyBytes) bytes"
            ).bytes + [0x0A]
        // The client may still be sending; closing after the answer is the only way to stop it.
        write(
            APIResponse(status: 413, contentType: "application/json", body: body), keepAlive: false,
            version: .http1_1, context: context)
    }

    private func write(_ response: APIResponse, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Parse errors were already answered with 400 by NIO's HTTPServerProtocolErrorHandler.
        logger.debug("HTTP connection error: \(error)")
        context.close(promise: nil)
    }
}
