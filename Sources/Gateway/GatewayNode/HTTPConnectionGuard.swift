import NIOCore

/// The first handler of every connection: reports its activity to the ``ConnectionRegistry`` and enforces the
/// header and body timeouts. ``HTTPRequestHandler`` tells it where a request stands with outbound user events
/// (``Progress``), which travel from the end of the pipeline to here.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    enum Progress {
        /// A request's head has been parsed: the request is in flight until `requestDone`.
        case headReceived
        /// The answer is written: the connection is idle until the next request's first byte.
        case requestDone
        /// The answer is an event stream that stays open: no timeout runs (the stream's own writes keep the idle
        /// timeout away), and at a connection cap the stream may be evicted like an idle connection, since a
        /// browser reconnects on its own.
        case streaming
    }

    private enum State {
        /// Waiting for a head: the header timeout runs.
        case awaitingHead
        /// Between head and answer: the body timeout runs, and the connection cannot be evicted.
        case inRequest
        /// Kept alive after an answer: only the idle timeout runs.
        case betweenRequests
    }

    private let registry: ConnectionRegistry
    private let id: ObjectIdentifier
    private var state = State.awaitingHead
    private var timer: Scheduled<Void>?

    init(registry: ConnectionRegistry, id: ObjectIdentifier) {
        self.registry = registry
        self.id = id
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The connection was accepted just now: its first head is due within the header timeout.
        arm(registry.limits.headerTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        registry.touch(id)
        if state == .betweenRequests {
            state = .awaitingHead
            arm(registry.limits.headerTimeout, context: context)
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        registry.closed(id)
        context.fireChannelInactive()
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let progress = event as? Progress else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch progress {
        case .headReceived:
            state = .inRequest
            registry.setBusy(id, true)
            arm(registry.limits.bodyTimeout, context: context)
        case .requestDone, .streaming:
            state = .betweenRequests
            registry.setBusy(id, false)
            timer?.cancel()
            timer = nil
        }
        promise?.succeed(())
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.timer = nil
            self.registry.timedOut()
            channel.close(promise: nil)
        }
    }
}
