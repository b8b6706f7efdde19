/// SLIP framing (RFC 1055) with a CRC-16 frame check, for boards that reach the gateway over a UART.
///
/// A frame on the wire is `END, escape(payload ‖ CRC-16/CCITT-FALSE(payload) big-endian), END`. The leading
/// END ends whatever line noise came before (RFC 1055 suggests it), so noise becomes a short or failing frame
/// that the decoder counts and drops instead of corrupting the next message.
public enum SLIP {
    /// Ends a frame.
    public static let end: UInt8 = 0xC0
    /// Starts a two-byte escape.
    public static let esc: UInt8 = 0xDB
    /// After ESC: a data byte 0xC0.
    public static let escEnd: UInt8 = 0xDC
    /// After ESC: a data byte 0xDB.
    public static let escEsc: UInt8 = 0xDD
    /// Bytes of frame check after the payload.
    public static let checkSize = 2

    /// The framed bytes for one payload. An empty payload is a programming error (the decoder refuses such
    /// frames as ``SLIPDecoder/Drops/tooShort``, since an empty frame is indistinguishable from idle ENDs).
    public static func encodeFrame(_ payload: [UInt8]) -> [UInt8] {
        precondition(!payload.isEmpty, "SLIP: empty payload")
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + payload.count / 8 + 8)
        out.append(end)
        for byte in payload { appendEscaped(byte, to: &out) }
        let check = FrameCheck.crc16(payload)
        appendEscaped(UInt8(truncatingIfNeeded: check >> 8), to: &out)
        appendEscaped(UInt8(truncatingIfNeeded: check), to: &out)
        out.append(end)
        return out
    }

    @inline(__always)
    static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        switch byte {
        case end:
            out.append(esc)
            out.append(escEnd)
        case esc:
            out.append(esc)
            out.append(escEsc)
        default:
            out.append(byte)
        }
    }
}

/// Incremental SLIP frame decoder with a fixed memory bound.
///
/// Bytes come from a UART in whatever pieces the driver hands over; the decoder keeps one partial frame of at
/// most `maxPayloadSize + 2` bytes (reserved once at creation) and never grows past it. Anything that cannot
/// be a valid frame is dropped and counted by reason, then the decoder waits for the next END to resynchronise.
public struct SLIPDecoder: Sendable {
    /// Counts of dropped frames by reason; monotonic, wrapping only after 2^32 drops.
    public struct Drops: Equatable, Sendable {
        /// More than `maxPayloadSize + 2` bytes before an END; the rest of that frame was skipped.
        public var overLength: UInt32 = 0
        /// ESC followed by something other than ESC_END or ESC_ESC (including END).
        public var badEscape: UInt32 = 0
        /// The CRC did not match the bytes before it.
        public var badCheck: UInt32 = 0
        /// Fewer than 3 bytes between ENDs (no payload beyond the check); empty frames are not counted.
        public var tooShort: UInt32 = 0

        public init() {}

        /// All drops together.
        public var total: UInt32 { overLength &+ badEscape &+ badCheck &+ tooShort }
    }

    /// Largest payload accepted (the CRC is on top).
    public let maxPayloadSize: Int
    /// Why frames were dropped so far.
    public private(set) var drops: Drops
    /// Frames delivered so far.
    public private(set) var framesDecoded: UInt32

    private var buffer: [UInt8]
    private var escaping: Bool
    /// Skipping the rest of a frame already counted as bad, until END.
    private var discarding: Bool

    /// `maxPayloadSize` defaults to the largest CoAP message.
    public init(maxPayloadSize: Int = CoAPMessage.maxMessageSize) {
        precondition(maxPayloadSize >= 1, "SLIPDecoder: maxPayloadSize must be positive")
        self.maxPayloadSize = maxPayloadSize
        drops = Drops()
        framesDecoded = 0
        buffer = []
        buffer.reserveCapacity(maxPayloadSize + SLIP.checkSize)
        escaping = false
        discarding = false
    }

    /// Bytes of the frame in progress (for tests and diagnostics).
    public var pendingCount: Int { buffer.count }

    /// Feeds one byte; returns a payload when this byte completed a valid frame.
    public mutating func push(_ byte: UInt8) -> [UInt8]? {
        if byte == SLIP.end { return finishFrame() }
        if discarding { return nil }
        var data = byte
        if escaping {
            escaping = false
            if byte == SLIP.escEnd {
                data = SLIP.end
            } else if byte == SLIP.escEsc {
                data = SLIP.esc
            } else {
                drops.badEscape &+= 1
                startDiscarding()
                return nil
            }
        } else if byte == SLIP.esc {
            escaping = true
            return nil
        }
        if buffer.count == maxPayloadSize + SLIP.checkSize {
            drops.overLength &+= 1
            startDiscarding()
            return nil
        }
        buffer.append(data)
        return nil
    }

    /// Feeds a chunk of any size; returns the payloads of the frames it completed, in order.
    public mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        for byte in bytes {
            if let frame = push(byte) { frames.append(frame) }
        }
        return frames
    }

    private mutating func startDiscarding() {
        discarding = true
        escaping = false
        buffer.removeAll(keepingCapacity: true)
    }

    private mutating func finishFrame() -> [UInt8]? {
        defer {
            buffer.removeAll(keepingCapacity: true)
            escaping = false
            discarding = false
        }
        if discarding { return nil }
        if escaping {
            drops.badEscape &+= 1
            return nil
        }
        if buffer.isEmpty { return nil }
        if buffer.count <= SLIP.checkSize {
            drops.tooShort &+= 1
            return nil
        }
        let payloadEnd = buffer.count - SLIP.checkSize
        let received = UInt16(buffer[payloadEnd]) << 8 | UInt16(buffer[payloadEnd + 1])
        if FrameCheck.crc16(buffer[0..<payloadEnd]) != received {
            drops.badCheck &+= 1
            return nil
        }
        framesDecoded &+= 1
        return Array(buffer[0..<payloadEnd])
    }
}
