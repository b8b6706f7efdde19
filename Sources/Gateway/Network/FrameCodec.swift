import NIOCore

/// Why the byte stream from a peer was refused. Any of these ends the connection: after a framing error we no
/// longer know where the next frame starts.
public enum FrameDecodeError: Error, Sendable, Hashable {
    /// A length of zero: not even a kind byte.
    case emptyFrame
    /// The length prefix exceeds the global ceiling or the ceiling of the frame's kind.
    case oversized(kind: UInt8?, length: Int)
    /// A kind nobody registered.
    case unknownKind(UInt8)
    /// A node kind before the handshake finished, or a handshake kind after it did.
    case unexpectedKind(UInt8)
}

/// What the decoder currently accepts. Shared between the decoder and the `PeerHandler` of one channel (both run
/// on that channel's event loop, and the pipeline delivers each decoded frame before decoding the next), so the
/// moment the handshake completes, the very next frame is judged by the new phase.
final class FramePolicy {
    let kinds: FrameKinds
    var authenticated = false

    init(kinds: FrameKinds) { self.kinds = kinds }

    /// The payload ceiling of `kind` in the current phase (node frames carry a ``PeerSession`` tag on top), or the
    /// reason the kind is refused.
    func limit(of kind: UInt8) -> Result<Int, FrameDecodeError> {
        guard let limit = kinds.limit(of: kind) else { return .failure(.unknownKind(kind)) }
        let isControl = kind < Frame.firstNodeKind
        guard isControl != authenticated else { return .failure(.unexpectedKind(kind)) }
        return .success(authenticated ? limit + PeerSession.tagSize : limit)
    }

    /// The largest length prefix (kind + payload) in the current phase.
    var maxFrameSize: Int { kinds.maxFrameSize + (authenticated ? PeerSession.tagSize : 0) }
}

/// Length-prefixed framing: 4-byte big-endian length of (kind + payload), the kind byte, the payload.
///
/// The length is judged the moment its 4 bytes arrive and the kind the moment its byte arrives, so a peer can make
/// us buffer at most one frame of a kind it may send in the current phase: before authentication that is a
/// handshake message of about a hundred bytes, never the 4 MiB ceiling.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame

    let policy: FramePolicy

    init(policy: FramePolicy) { self.policy = policy }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length > 0 else { throw FrameDecodeError.emptyFrame }
        guard length <= UInt32(policy.maxFrameSize) else {
            throw FrameDecodeError.oversized(kind: nil, length: Int(length))
        }
        guard let kind = buffer.getInteger(at: buffer.readerIndex + Frame.headerSize, as: UInt8.self) else {
            return .needMoreData
        }
        let payloadLength = Int(length) - 1
        switch policy.limit(of: kind) {
        case .failure(let error):
            throw error
        case .success(let limit) where payloadLength > limit:
            throw FrameDecodeError.oversized(kind: kind, length: Int(length))
        case .success:
            break
        }
        guard buffer.readableBytes >= Frame.headerSize + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize + 1)
        // readBytes cannot fail: availability was checked just above.
        let payload = buffer.readBytes(length: payloadLength) ?? []
        context.fireChannelRead(Self.wrapInboundOut(Frame(kind: kind, payload: payload)))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // A truncated frame at EOF is simply discarded: the connection is going away anyway.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Writes frames in the format `FrameDecoder` reads. Sizes were checked when the node handed the frame over
/// (`FrameKinds.validateOutgoing`), so encoding cannot fail.
struct FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = Frame

    func encode(data: Frame, out: inout ByteBuffer) throws {
        out.reserveCapacity(out.writerIndex + data.wireSize)
        out.writeInteger(UInt32(data.payload.count + 1))
        out.writeInteger(data.kind)
        out.writeBytes(data.payload)
    }
}

extension Frame {
    /// The wire encoding, for tests and tools that speak the protocol without a pipeline.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(wireSize)
        let length = UInt32(payload.count + 1)
        out.append(contentsOf: [
            UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
            UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
        ])
        out.append(kind)
        out.append(contentsOf: payload)
        return out
    }
}
