/// The two-bit message type of RFC 7252 §3/§4: whether the message wants an acknowledgement.
public enum CoAPMessageType: UInt8, Equatable, Sendable {
    /// CON: retransmitted until an ACK or RST arrives.
    case confirmable = 0
    /// NON: fire and forget (sensor readings, Observe notifications a device can afford to lose).
    case nonConfirmable = 1
    /// ACK: acknowledges a CON, optionally carrying the response (piggybacked).
    case acknowledgement = 2
    /// RST: "I got your message but cannot process it" (also how an observer cancels).
    case reset = 3
}
