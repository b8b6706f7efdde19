/// Why a client's request got no usable answer: the transport side only, never what the answer means.
///
/// Small values with no bytes from the wire in them, so a device can switch over them, count them and print
/// them without allocating; hosts turn them into their own errors with the context (path, limits) they hold.
public enum CoAPExchangeError: Error, Equatable, Sendable {
    /// No ACK, RST or response after the last retransmission.
    case timeout
    /// The server acknowledged with an empty ACK, then sent no response within the separate-response wait.
    case noSeparateResponse
    /// The server answered Reset: it could not process the message at all.
    case reset
    /// A request message encodes to more than the configured message size (a path or query too long).
    case messageTooLarge
    /// The body (or the Size2 the server announced) is over the client's cap.
    case bodyTooLarge
    /// An error code in the middle of a block-wise download: there is no whole answer to return.
    case interrupted(CoAPCode)
    /// The server broke RFC 7252 or RFC 7959 in a way that leaves no answer to trust.
    case protocolViolation(CoAPViolation)
}

/// The protocol rules a server broke, one case per check, so tests can name the check that fired.
public enum CoAPViolation: Equatable, Sendable {
    /// An ACK with our Message ID carries a response with another token (RFC 7252 §5.3.2).
    case foreignResponse
    /// 2.31 Continue without the Block1 option it acknowledges (RFC 7959 §2.3).
    case block1EchoMissing
    /// The server's Block1 echo asks for larger blocks than we sent (§2.5 only allows smaller).
    case block1SizeGrew
    /// A success code other than 2.31 before the last Block1 block was sent.
    case block1Unfinished
    /// A Block2 option that does not parse (over 3 bytes, SZX 7).
    case block2Malformed
    /// A success answer without Block2 after block 0 of a block-wise download.
    case block2Missing
    /// A block that does not start where the body received so far ends.
    case block2OutOfOrder
    /// A block longer than its SZX, or shorter while more blocks follow.
    case block2SizeMismatch
    /// The ETag changed more often than the restart limit allows.
    case representationKeepsChanging

    /// A few words for logs and error messages.
    public var reason: StaticString {
        switch self {
        case .foreignResponse: "ACK carries a response to another request"
        case .block1EchoMissing: "2.31 without Block1"
        case .block1SizeGrew: "Block1 size grew"
        case .block1Unfinished: "success before the last Block1 block"
        case .block2Malformed: "Block2 option malformed"
        case .block2Missing: "Block2 missing after block 0"
        case .block2OutOfOrder: "Block2 out of order"
        case .block2SizeMismatch: "Block2 payload size does not match SZX"
        case .representationKeepsChanging: "representation keeps changing"
        }
    }
}
