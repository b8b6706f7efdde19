/// What a client state machine asks its driver to do after an event (``CoAPTransaction``,
/// ``CoAPRequestExchange``): send `reply`, then `request`, then act on `status`.
///
/// The machines never read a clock, open a socket or draw a random number, so one event can need two sends: a
/// separate response that arrives as a Confirmable message is acknowledged (`reply`) and, in the same step,
/// the next block is asked for (`request`).
public struct CoAPStep<Outcome> {
    /// An empty ACK or RST answering a message that just arrived (RFC 7252 §4.2); send it first.
    public var reply: [UInt8]?
    /// A request message: sent for the first time or retransmitted.
    public var request: [UInt8]?
    public var status: CoAPStatus<Outcome>

    @inlinable
    public init(reply: [UInt8]? = nil, request: [UInt8]? = nil, status: CoAPStatus<Outcome>) {
        self.reply = reply
        self.request = request
        self.status = status
    }
}

/// Where a client state machine stands.
public enum CoAPStatus<Outcome> {
    /// Deliver each datagram that arrives before `until` (milliseconds on the caller's clock), and call the
    /// machine's `timeout(now:)` once that time has come.
    case waiting(until: UInt32)
    /// Finished with an answer; later events change nothing.
    case done(Outcome)
    /// Finished without one; later events change nothing.
    case failed(CoAPExchangeError)
}
