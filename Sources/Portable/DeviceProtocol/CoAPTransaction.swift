/// One Confirmable request message and its response (RFC 7252 §4.2, §4.8, §5.2), as a sans-I/O state machine.
///
/// The caller picks the Message ID, the token and the randomised first timeout, sends what the steps say and
/// feeds back every datagram from the server and every deadline that passes. The message is retransmitted,
/// byte for byte, with the timeout doubled each time, until an ACK, a Reset or a response with our token
/// arrives, at most `maxRetransmit` times. An empty ACK stops the retransmissions and starts the wait for a
/// separate response, which may come as a CON (acknowledged), a NON, or even before its empty ACK did.
///
/// A datagram that is not about this message is a stray: counted, Reset if it is Confirmable (a separate
/// response to a request we gave up on, a notification nobody asked for), otherwise dropped. Block options,
/// 4.29 and everything else about the response's meaning are the caller's (``CoAPRequestExchange``), so a
/// proxy can use this to forward one message untouched.
public struct CoAPTransaction {
    public typealias Step = CoAPStep<CoAPMessage>

    public let messageID: UInt16
    public let token: [UInt8]
    /// The request as sent, and resent.
    public let datagram: [UInt8]
    public let maxRetransmit: Int
    public let separateResponseMillis: UInt32
    /// Received datagrams longer than this are strays (the decoder's cap).
    public let maxMessageSize: Int
    public private(set) var status: CoAPStatus<CoAPMessage>
    public private(set) var retransmissions = 0
    public private(set) var strays = 0
    /// An empty ACK came: the response will be separate.
    public private(set) var acknowledged = false
    private var timeout: UInt32

    /// `request` is sent as Confirmable with `messageID` and `token`, whatever it carried before.
    /// `initialTimeoutMillis` is the first wait, already randomised (see
    /// ``initialTimeout(ackTimeoutMillis:randomFactorPercent:random:)``).
    public init(
        request: CoAPMessage, messageID: UInt16, token: [UInt8], initialTimeoutMillis: UInt32, maxRetransmit: Int,
        separateResponseMillis: UInt32, maxMessageSize: Int = CoAPMessage.maxMessageSize
    ) {
        var message = request
        message.type = .confirmable
        message.messageID = messageID
        message.token = token
        self.messageID = messageID
        self.token = token
        datagram = message.encode()
        self.maxRetransmit = maxRetransmit
        self.separateResponseMillis = separateResponseMillis
        self.maxMessageSize = maxMessageSize
        timeout = min(max(initialTimeoutMillis, 1), CoAPClock.maxInterval)
        status = .waiting(until: 0)
    }

    /// RFC 7252 §4.8's first timeout: uniformly between ACK_TIMEOUT and ACK_TIMEOUT × ACK_RANDOM_FACTOR, the
    /// factor in percent (150 for the RFC's 1.5; 100 to 300) and `random` the caller's uniform draw. Randomised
    /// so that devices that lost the same gateway at once do not all retransmit at once.
    public static func initialTimeout(ackTimeoutMillis: UInt32, randomFactorPercent: UInt32, random: UInt32)
        -> UInt32
    {
        // 32-bit arithmetic only (64-bit division is a library call on a microcontroller), so the factor is capped.
        let base = min(ackTimeoutMillis, CoAPClock.maxInterval)
        let percent = min(max(randomFactorPercent, 100), 300) - 100
        let spread = base / 100 * percent + base % 100 * percent / 100
        return min(base + random.multipliedFullWidth(by: spread).high, CoAPClock.maxInterval)
    }

    /// Sends the request and waits for the first timeout. The first event: the others expect it to have come.
    public mutating func start(now: UInt32) -> Step {
        status = .waiting(until: CoAPClock.deadline(after: timeout, now: now))
        return Step(request: datagram, status: status)
    }

    /// A datagram from the server.
    public mutating func received(_ bytes: [UInt8], now: UInt32) -> Step {
        guard case .waiting = status, let m = try? CoAPMessage.decode(bytes, maxMessageSize: maxMessageSize) else {
            return stray(bytes)
        }
        let ours = m.token == token && m.code.isResponse
        var reply: [UInt8]?
        switch m.type {
        case .acknowledgement where m.messageID == messageID:
            if !m.code.isEmpty {
                status = ours ? .done(m) : .failed(.protocolViolation(.foreignResponse))
            } else if !acknowledged {
                acknowledged = true
                status = .waiting(until: CoAPClock.deadline(after: separateResponseMillis, now: now))
            }
        case .reset where m.messageID == messageID:
            status = .failed(.reset)
        case .confirmable where ours:
            // §4.2: a Confirmable separate response is acknowledged, or the server retransmits it.
            reply = Self.empty(.acknowledgement, m.messageID)
            status = .done(m)
        case .nonConfirmable where ours:
            status = .done(m)
        default:
            return stray(bytes)
        }
        return Step(reply: reply, status: status)
    }

    /// The deadline of the last step has come (an early call changes nothing): retransmit, or give up.
    public mutating func timeout(now: UInt32) -> Step {
        guard case .waiting(let deadline) = status, CoAPClock.remaining(until: deadline, now: now) == 0 else {
            return Step(status: status)
        }
        var request: [UInt8]?
        if acknowledged {
            status = .failed(.noSeparateResponse)
        } else if retransmissions >= maxRetransmit {
            status = .failed(.timeout)
        } else {
            retransmissions += 1
            timeout = min(timeout << 1, CoAPClock.maxInterval)
            status = .waiting(until: CoAPClock.deadline(after: timeout, now: now))
            request = datagram
        }
        return Step(request: request, status: status)
    }

    /// Counts a datagram that is not about this message and Resets it if it is Confirmable (§4.2: a CON we
    /// cannot place, even one that does not decode).
    private mutating func stray(_ bytes: [UInt8]) -> Step {
        strays += 1
        return Step(reply: Self.strayReply(to: bytes), status: status)
    }

    /// What a client answers to a datagram that belongs to none of its messages: Reset for a Confirmable
    /// one, nothing otherwise (``CoAPMessage/resetReply(to:)``, without building a message).
    public static func strayReply(to bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 4, bytes[0] >> 6 == CoAPMessage.version, (bytes[0] >> 4) & 0x3 == 0 else { return nil }
        return empty(.reset, UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
    }

    /// An Empty message (ACK or RST) as bytes: the four header bytes, nothing else.
    static func empty(_ type: CoAPMessageType, _ messageID: UInt16) -> [UInt8] {
        [
            CoAPMessage.version << 6 | type.rawValue << 4, 0, UInt8(truncatingIfNeeded: messageID >> 8),
            UInt8(truncatingIfNeeded: messageID),
        ]
    }
}
