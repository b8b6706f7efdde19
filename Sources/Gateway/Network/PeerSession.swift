import AmarsCodec
import AmarsCrypto

/// Integrity for every node frame after the handshake: each carries a 16-byte tag, HMAC-SHA256 under a key of
/// its direction over (sequence number, kind, payload). The keys come from an ephemeral ECDH of the two Hellos
/// (fresh per connection, so a key learnt later opens no old session) bound to the whole handshake transcript,
/// which both Auth signatures cover. A frame injected, altered, replayed, dropped from the middle, reordered or
/// reflected back to its sender fails its tag, and the connection ends.
///
/// Payloads are public chain data, so they are authenticated, not encrypted. A pure value: the channel handler
/// owns one per connection.
public struct PeerSession: Sendable {
    public static let tagSize = 16

    private let sendKey: [UInt8]
    private let receiveKey: [UInt8]
    private var sent: UInt64 = 0
    private var received: UInt64 = 0

    private static let keyTag = TaggedHash(tag: "AmarsPeerFrameKey")

    /// `shared`: the ECDH secret of the two ephemeral keys; `transcript`: ``Auth/sessionTranscript(_:_:)``.
    init(shared: Bytes32, transcript: Bytes32, ownKey: Bytes32, peerKey: Bytes32) {
        sendKey = Self.directionKey(shared: shared, transcript: transcript, sender: ownKey)
        receiveKey = Self.directionKey(shared: shared, transcript: transcript, sender: peerKey)
    }

    /// The key of frames sent by `sender`: the two directions differ, so a frame cannot be reflected.
    static func directionKey(shared: Bytes32, transcript: Bytes32, sender: Bytes32) -> [UInt8] {
        var message = transcript.bytes
        message += sender.bytes
        return HMAC.sha256(key: keyTag.hash(shared.bytes).bytes, message: message).bytes
    }

    /// The frame with its tag appended (the next sequence number of this direction).
    public mutating func seal(_ frame: Frame) -> Frame {
        let tag = Self.tag(key: sendKey, sequence: sent, frame.kind, frame.payload[...])
        sent &+= 1
        return Frame(kind: frame.kind, payload: frame.payload + tag)
    }

    /// The frame without its tag if the tag is the next one expected from the peer; nil otherwise (the caller
    /// must close the connection: the stream can no longer be trusted).
    public mutating func open(_ frame: Frame) -> Frame? {
        guard frame.payload.count >= Self.tagSize else { return nil }
        let split = frame.payload.count - Self.tagSize
        let body = frame.payload[..<split]
        let expected = Self.tag(key: receiveKey, sequence: received, frame.kind, body)
        // Constant time: every byte compared whatever the first difference.
        var difference: UInt8 = 0
        for (a, b) in zip(expected, frame.payload[split...]) { difference |= a ^ b }
        guard difference == 0 else { return nil }
        received &+= 1
        return Frame(kind: frame.kind, payload: Array(body))
    }

    private static func tag(key: [UInt8], sequence: UInt64, _ kind: UInt8, _ payload: ArraySlice<UInt8>) -> [UInt8] {
        var message: [UInt8] = []
        message.reserveCapacity(9 + payload.count)
        for shift in stride(from: 56, through: 0, by: -8) {
            message.append(UInt8(truncatingIfNeeded: sequence >> UInt64(shift)))
        }
        message.append(kind)
        message += payload
        return Array(HMAC.sha256(key: key, message: message).bytes.prefix(tagSize))
    }
}
