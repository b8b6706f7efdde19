import AmarsCodec

/// One unit of gateway-to-gateway traffic: a kind byte and opaque bytes.
///
/// The network never looks inside `payload`: blocks, votes and sync messages are the node's business, so this
/// module can be reviewed (and fuzzed) without knowing the chain's encodings, and a change to a block format never
/// touches the transport.
public struct Frame: Hashable, Sendable {
    public var kind: UInt8
    public var payload: [UInt8]

    public init(kind: UInt8, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }

    /// Bytes this frame occupies on the wire: the 4-byte length, the kind byte and the payload.
    public var wireSize: Int { Frame.headerSize + 1 + payload.count }

    /// Length of the big-endian length prefix.
    public static let headerSize = 4

    /// Kinds below this value belong to the network itself (handshake); the node registers kinds at or above it, so
    /// no node message can ever be mistaken for a handshake message or the other way round.
    public static let firstNodeKind: UInt8 = 0x10

    /// Global ceiling on kind + payload, whatever a kind registers: bounds what one peer can make us buffer.
    public static let defaultMaxFrameSize = 4 << 20
}

/// Network-internal kinds. Only these may cross the wire before a peer has authenticated, and never after.
enum ControlKind {
    static let hello: UInt8 = 0x00
    static let auth: UInt8 = 0x01
    /// Sealed with the session's first tag; see ``Confirm``.
    static let confirm: UInt8 = 0x02
}

/// How the network treats incoming frames of a kind.
public enum FrameDelivery: Sendable, Hashable {
    /// Flooded data (blocks, votes, transactions): deduplicated by hash of (kind, payload), so a frame echoed by
    /// several peers reaches the node once.
    case gossip
    /// Request/response traffic (block sync): delivered every time, because asking twice must answer twice.
    case direct
}

/// Errors of configuration and of frames the node hands to the network (never of peer input, which is counted).
public enum NetworkError: Error, Sendable, Hashable {
    /// Kinds below `Frame.firstNodeKind` are reserved for the handshake.
    case reservedKind(UInt8)
    case kindAlreadyRegistered(UInt8)
    case unknownKind(UInt8)
    /// The payload exceeds the registered maximum of its kind.
    case payloadTooLarge(kind: UInt8, size: Int, max: Int)
    /// A maximum of zero or one above the global frame ceiling.
    case invalidLimit(Int)
    case notStarted
    case alreadyStarted
}

/// The kinds the node has declared, each with its payload ceiling and delivery mode.
///
/// Immutable once a `PeerManager` holds it, so the decoder, the send path and the delivery path all agree on the
/// same table without locks.
public struct FrameKinds: Sendable {
    struct Entry: Sendable, Hashable {
        var maxPayload: Int
        var delivery: FrameDelivery
    }

    /// Indexed by kind; nil for unregistered kinds. A fixed array keeps the per-frame lookup a single load.
    private(set) var entries: [Entry?]
    public let maxFrameSize: Int

    /// `maxFrameSize` caps kind + payload of every frame, including the ones of registered kinds.
    public init(maxFrameSize: Int = Frame.defaultMaxFrameSize) {
        precondition(
            maxFrameSize > Hello.encodedSize, "the handshake needs frames of at least \(Hello.encodedSize + 1) bytes")
        self.maxFrameSize = maxFrameSize
        self.entries = Array(repeating: nil, count: 256)
        entries[Int(ControlKind.hello)] = Entry(maxPayload: Hello.encodedSize, delivery: .direct)
        entries[Int(ControlKind.auth)] = Entry(maxPayload: Auth.encodedSize, delivery: .direct)
        entries[Int(ControlKind.confirm)] = Entry(maxPayload: PeerSession.tagSize, delivery: .direct)
    }

    /// Declares a node kind. `maxPayload` nil means "up to the global ceiling".
    public mutating func register(
        kind: UInt8, maxPayload: Int? = nil, delivery: FrameDelivery
    ) throws(NetworkError) {
        guard kind >= Frame.firstNodeKind else { throw .reservedKind(kind) }
        guard entries[Int(kind)] == nil else { throw .kindAlreadyRegistered(kind) }
        let limit = maxPayload ?? (maxFrameSize - 1)
        guard limit > 0, limit <= maxFrameSize - 1 else { throw .invalidLimit(limit) }
        entries[Int(kind)] = Entry(maxPayload: limit, delivery: delivery)
    }

    /// The registered payload ceiling of a node kind, nil when unknown or reserved.
    public func maxPayload(of kind: UInt8) -> Int? {
        kind >= Frame.firstNodeKind ? entries[Int(kind)]?.maxPayload : nil
    }

    public func delivery(of kind: UInt8) -> FrameDelivery? {
        kind >= Frame.firstNodeKind ? entries[Int(kind)]?.delivery : nil
    }

    /// Ceiling for any kind including control kinds; used by the decoder.
    func limit(of kind: UInt8) -> Int? { entries[Int(kind)]?.maxPayload }

    /// Checks a frame the node wants to send, so a bug in the node cannot put on the wire something every peer
    /// would treat as a protocol violation (and ban us for).
    public func validateOutgoing(_ frame: Frame) throws(NetworkError) {
        guard let max = maxPayload(of: frame.kind) else {
            throw frame.kind < Frame.firstNodeKind ? .reservedKind(frame.kind) : .unknownKind(frame.kind)
        }
        guard frame.payload.count <= max else {
            throw .payloadTooLarge(kind: frame.kind, size: frame.payload.count, max: max)
        }
    }
}
