import AmarsCodec

/// What the network tells the node. Frames carry the authenticated key of the peer that sent them, so the node can
/// answer with `send(to:)` or blame with `report(peer:reason:)`.
public enum NetworkEvent: Sendable, Hashable {
    case peerConnected(Bytes32)
    case peerDisconnected(Bytes32)
    case frame(Frame, from: Bytes32)
}

/// Why a connection ended. Every connection ends with exactly one reason, counted in `NetworkMetrics`.
public enum DisconnectReason: Sendable, Hashable, CustomStringConvertible {
    /// Bytes that are not a frame (a zero length, a truncated stream at an error).
    case malformedFrame
    case oversizedFrame
    case unknownKind
    /// A node frame before authentication, or a handshake frame after it.
    case unexpectedFrame
    case handshake(HandshakeFailure)
    case handshakeTimeout
    /// A node frame whose ``PeerSession`` tag is not the next one expected: altered, injected, replayed or
    /// reordered on the way. Not counted against the peer: a bad tag means someone else wrote into the stream,
    /// and banning the peer for it would let that someone cut validators apart.
    case badFrameTag
    /// Another authenticated connection to the same key won.
    case duplicateConnection
    /// The key is serving a ban.
    case banned
    /// Score over the threshold: disconnected, and the key banned.
    case scoreExceeded
    /// An inbound handshake cut at a cap to make room for a newer one (the oldest pending goes first).
    case tooManyPendingHandshakes
    case tooManyPeers
    /// The key left the allowed set (`updateAllowedKeys`).
    case noLongerAllowed
    case remoteClosed
    case ioError
    case shutdown

    public var description: String {
        switch self {
        case .malformedFrame: "malformed_frame"
        case .oversizedFrame: "oversized_frame"
        case .unknownKind: "unknown_kind"
        case .unexpectedFrame: "unexpected_frame"
        case .handshake(let failure): "handshake_\(failure)"
        case .handshakeTimeout: "handshake_timeout"
        case .badFrameTag: "bad_frame_tag"
        case .duplicateConnection: "duplicate_connection"
        case .banned: "banned"
        case .scoreExceeded: "score_exceeded"
        case .tooManyPendingHandshakes: "too_many_pending_handshakes"
        case .tooManyPeers: "too_many_peers"
        case .noLongerAllowed: "no_longer_allowed"
        case .remoteClosed: "remote_closed"
        case .ioError: "io_error"
        case .shutdown: "shutdown"
        }
    }

}

/// Why a single frame was not delivered or not sent.
public enum DropReason: String, Sendable, Hashable, CaseIterable {
    /// Over the peer's frames-per-second budget.
    case rateLimitedFrames = "rate_limited_frames"
    /// Over the peer's bytes-per-second budget.
    case rateLimitedBytes = "rate_limited_bytes"
    /// Outbound queue of a slow peer full: the oldest gossip (or the new frame) dropped.
    case outboundQueueFull = "outbound_queue_full"
    /// Gossip already seen from another peer (or sent by us).
    case duplicateGossip = "duplicate_gossip"
    /// The node's event stream was full.
    case deliveryBufferFull = "delivery_buffer_full"
    /// `send(to:)` for a key with no authenticated connection.
    case peerNotConnected = "peer_not_connected"
}

/// A snapshot of counters, for the node's Prometheus endpoint and for tests.
public struct NetworkMetrics: Sendable, Equatable {
    public var connectionsAccepted = 0
    public var connectionsDialed = 0
    public var dialFailures = 0
    public var handshakesCompleted = 0
    public var framesReceived = 0
    public var bytesReceived = 0
    public var framesSent = 0
    public var bytesSent = 0
    public var framesDelivered = 0
    public var bans = 0
    public var reports = 0
    public var disconnects: [DisconnectReason: Int] = [:]
    public var drops: [DropReason: Int] = [:]

    public init() {}

    public func disconnects(_ reason: DisconnectReason) -> Int { disconnects[reason, default: 0] }
    public func drops(_ reason: DropReason) -> Int { drops[reason, default: 0] }

    /// Disconnects for any handshake failure, plus timeouts.
    public var handshakeFailures: Int {
        disconnects.reduce(0) { total, entry in
            switch entry.key {
            case .handshake, .handshakeTimeout: total + entry.value
            default: total
            }
        }
    }
}
