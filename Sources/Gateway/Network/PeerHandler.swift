import AmarsCodec
import AmarsCrypto
import NIOCore

/// Which side opened a connection. Duplicate connections between two keys are resolved by it.
enum ConnectionDirection: Equatable {
    case inbound
    /// Dialed by the dialer with this index in `PeerRegistry.dialers`.
    case outbound(dialer: Int)
}

/// One TCP connection: runs the handshake, enforces per-peer rate limits, queues outbound frames while the socket
/// is full, and hands authenticated frames to the registry.
///
/// It lives on the manager's single event loop like everything else of the manager, so it can call the registry
/// directly; the registry is the only thing that knows about other connections.
final class PeerHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    let registry: PeerRegistry
    let policy: FramePolicy
    let direction: ConnectionDirection
    private var machine: HandshakeMachine
    /// The frame keys from the handshake, set when the connection is accepted.
    private var session: PeerSession?
    private var context: ChannelHandlerContext?
    private var timeout: Scheduled<Void>?
    private var queue: OutboundQueue
    private var frameBucket: TokenBucket
    private var byteBucket: TokenBucket

    /// Key proven by the peer's Auth, set even when the registry then refuses the connection (a duplicate), so a
    /// dialer learns whom its address leads to.
    private(set) var verifiedKey: Bytes32?
    /// True once the registry accepted this connection as the peer's one connection.
    private(set) var isEstablished = false
    /// The first reason given for closing; later ones (and the plain EOF that follows our own close) are ignored.
    private(set) var closeReason: DisconnectReason?
    private(set) var isActive = false
    var remoteDescription = "?"
    /// The remote IP address without its port: the scope of the per-source handshake cap.
    private(set) var remoteHost = "?"
    /// When the connection came up: at a handshake cap the oldest pending one goes first.
    let openedAt: NIODeadline

    init(registry: PeerRegistry, policy: FramePolicy, direction: ConnectionDirection, machine: HandshakeMachine) {
        let limits = registry.configuration.limits
        let now = registry.now()
        self.registry = registry
        self.policy = policy
        self.direction = direction
        self.machine = machine
        self.openedAt = now
        self.queue = OutboundQueue(maxFrames: limits.maxQueuedFrames, maxBytes: limits.maxQueuedBytes)
        self.frameBucket = TokenBucket(capacity: limits.frameBurst, perSecond: limits.framesPerSecond, now: now)
        self.byteBucket = TokenBucket(capacity: limits.byteBurst, perSecond: limits.bytesPerSecond, now: now)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteDescription = context.channel.remoteAddress.map { "\($0)" } ?? "?"
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        isActive = true
        remoteDescription = context.channel.remoteAddress.map { "\($0)" } ?? remoteDescription
        remoteHost = context.channel.remoteAddress?.ipAddress ?? remoteDescription
        if let refusal = registry.connectionOpened(self) {
            close(refusal)
            context.fireChannelActive()
            return
        }
        write(machine.start(), context: context)
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: registry.configuration.handshakeTimeout) {
            if !self.isEstablished { self.close(.handshakeTimeout) }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        queue.removeAll()
        if isActive {
            isActive = false
            registry.connectionClosed(self, reason: closeReason ?? .remoteClosed)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard closeReason == nil else { return }
        let frame = unwrapInboundIn(data)
        registry.metrics.framesReceived += 1
        registry.metrics.bytesReceived += frame.wireSize
        guard isEstablished else {
            handshake(frame, context: context)
            return
        }
        guard let opened = session?.open(frame) else {
            close(.badFrameTag)
            return
        }
        let now = registry.now()
        guard frameBucket.take(1, now: now) else {
            registry.dropped(.rateLimitedFrames, by: self)
            return
        }
        guard byteBucket.take(Double(frame.wireSize), now: now) else {
            registry.dropped(.rateLimitedBytes, by: self)
            return
        }
        registry.deliver(opened, from: self)
    }

    private func handshake(_ frame: Frame, context: ChannelHandlerContext) {
        switch machine.receive(frame) {
        case .send(let reply):
            write(reply, context: context)
        case .fail(let failure):
            close(.handshake(failure))
        case .established(let key):
            verifiedKey = key
            switch registry.authenticated(self, key: key) {
            case .refuse(let reason):
                close(reason)
            case .accept(let replacing):
                timeout?.cancel()
                timeout = nil
                session = machine.session
                isEstablished = true
                policy.authenticated = true
                registry.peerEstablished(self, key: key, replacing: replacing)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason: DisconnectReason
        switch error {
        case let decode as FrameDecodeError:
            switch decode {
            case .emptyFrame: reason = .malformedFrame
            case .oversized: reason = .oversizedFrame
            case .unknownKind: reason = .unknownKind
            case .unexpectedKind: reason = .unexpectedFrame
            }
        case is ByteToMessageDecoderError:
            // Data after an earlier decode error: that error already decided the reason.
            reason = .malformedFrame
        default:
            reason = .ioError
        }
        close(reason)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        drain(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// Sends `frame` now if the socket takes it, otherwise queues it (bounded; see `OutboundQueue`).
    func send(_ frame: Frame, isGossip: Bool) {
        guard let context, closeReason == nil, isEstablished else { return }
        if queue.isEmpty && context.channel.isWritable {
            write(frame, context: context)
            return
        }
        let dropped = queue.enqueue(frame, isGossip: isGossip)
        for _ in 0..<dropped { registry.countDrop(.outboundQueueFull) }
        drain(context: context)
    }

    private func drain(context: ChannelHandlerContext) {
        while context.channel.isWritable, closeReason == nil, let frame = queue.dequeue() {
            write(frame, context: context)
        }
    }

    /// Handshake frames go as they are; node frames get the session's tag, in the order they reach the wire.
    private func write(_ frame: Frame, context: ChannelHandlerContext) {
        var wire = frame
        if isEstablished {
            guard session != nil else { return close(.ioError) }
            wire = session!.seal(frame)
        }
        registry.metrics.framesSent += 1
        registry.metrics.bytesSent += wire.wireSize
        context.writeAndFlush(wrapOutboundOut(wire), promise: nil)
    }

    /// Closes with `reason` unless a reason was already given; the registry learns it in `channelInactive`.
    func close(_ reason: DisconnectReason) {
        guard closeReason == nil else { return }
        closeReason = reason
        queue.removeAll()
        context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension PeerHandler: Sendable {}
