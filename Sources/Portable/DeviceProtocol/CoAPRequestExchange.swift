/// A client's whole request and its whole answer, over as many ``CoAPTransaction``s as it takes, as a sans-I/O
/// state machine: RFC 7252 for each message, RFC 7959 for bodies over one block, RFC 8516 for 4.29.
///
/// - A payload over one block goes up as Block1 (with Size1, so a server can refuse it at once). The server
///   may ask for smaller blocks in its 2.31 echo (§2.5); the upload continues from the same byte. An error
///   before the last block is the server's answer (an early 4.13, 4.08…), not a failure.
/// - An answer over one block is fetched block by block into `Body`, capped at
///   ``Configuration/maxBodyBytes`` before any byte is stored (Size2 checked first). A changed ETag means the
///   representation changed between blocks (a new checkpoint landed): start again from block 0, a few times.
///   A block out of order or of the wrong size is a protocol violation, not something to patch up.
/// - 4.29 Too Many Requests is waited out (Max-Age seconds, capped) and the same message asked again, a few
///   times; after that the 4.29 is the answer.
/// - A client whose buffers are smaller than the largest block says so in its first request (early
///   negotiation, §2.4), so no server sends it a block it cannot hold.
///
/// Message IDs count up from the one the caller passes (read ``lastMessageID`` back to continue the sequence);
/// each message's 4-byte token and the randomisation of its first timeout come from the `random` argument of
/// the event that sends it (one draw for both: the jitter only has to differ between devices). Nothing here
/// reads a clock: times are the caller's milliseconds (see ``CoAPClock``).
public struct CoAPRequestExchange<Body: CoAPBodyStorage> {
    public struct Configuration: Equatable, Sendable {
        /// Largest body accepted (the answer's; the upload has no cap here).
        public var maxBodyBytes: Int
        /// Block size wanted for both directions (SZX; 6 = 1024 bytes). Servers may pick smaller.
        public var preferredSZX: UInt8
        /// ACK_TIMEOUT (RFC 7252 default 2000).
        public var ackTimeoutMillis: UInt32
        /// ACK_RANDOM_FACTOR in percent (RFC default 150; 100 to 300); 100 turns the randomisation off.
        public var ackRandomFactorPercent: UInt32
        /// MAX_RETRANSMIT (RFC default 4).
        public var maxRetransmit: Int
        /// How long to wait for a separate response after an empty ACK.
        public var separateResponseMillis: UInt32
        /// Largest message sent or accepted.
        public var maxMessageSize: Int
        /// Block-wise downloads restarted because the ETag changed, before giving up.
        public var maxBlockRestarts: Int
        /// 4.29 answers waited out per request before the 4.29 is the answer.
        public var maxRateLimitWaits: Int
        /// The wait for a 4.29 without Max-Age. RFC 7252's default Max-Age of 60 s is for caching; a gateway's
        /// rate limiter refills in about a second.
        public var defaultRetryAfterMillis: UInt32
        /// The longest 4.29 wait, whatever Max-Age says, so a bad value cannot park a device for days.
        public var maxRetryAfterMillis: UInt32

        public init(
            maxBodyBytes: Int, preferredSZX: UInt8 = BlockOption.maxSZX, ackTimeoutMillis: UInt32 = 2000,
            ackRandomFactorPercent: UInt32 = 150, maxRetransmit: Int = 4, separateResponseMillis: UInt32 = 5000,
            maxMessageSize: Int = CoAPMessage.maxMessageSize, maxBlockRestarts: Int = 3, maxRateLimitWaits: Int = 4,
            defaultRetryAfterMillis: UInt32 = 1000, maxRetryAfterMillis: UInt32 = 60_000
        ) {
            precondition(preferredSZX <= BlockOption.maxSZX && maxBodyBytes >= 0, "CoAPRequestExchange: configuration")
            self.maxBodyBytes = maxBodyBytes
            self.preferredSZX = preferredSZX
            self.ackTimeoutMillis = ackTimeoutMillis
            self.ackRandomFactorPercent = ackRandomFactorPercent
            self.maxRetransmit = maxRetransmit
            self.separateResponseMillis = separateResponseMillis
            self.maxMessageSize = maxMessageSize
            self.maxBlockRestarts = maxBlockRestarts
            self.maxRateLimitWaits = maxRateLimitWaits
            self.defaultRetryAfterMillis = defaultRetryAfterMillis
            self.maxRetryAfterMillis = maxRetryAfterMillis
        }
    }

    /// The final answer's code and content format; its whole body is in ``body``.
    public struct Response: Equatable, Sendable {
        public var code: CoAPCode
        public var contentFormat: UInt16?
    }

    public typealias Step = CoAPStep<Response>

    public let configuration: Configuration
    /// The body so far; the whole body once done.
    public private(set) var body: Body
    /// The Message ID of the last message sent.
    public private(set) var lastMessageID: UInt16
    public private(set) var status: CoAPStatus<Response> = .waiting(until: 0)
    /// Messages sent (each a transaction, retransmissions not counted).
    public private(set) var requests = 0
    /// Block1 blocks acknowledged and Block2 blocks stored.
    public private(set) var blocks = 0
    public var retransmissions: Int { pastRetransmissions + (transaction?.retransmissions ?? 0) }
    /// Datagrams that belonged to none of our messages.
    public var strays: Int { pastStrays + (transaction?.strays ?? 0) }

    private let template: CoAPMessage
    private let payload: [UInt8]
    private let payloadFormat: UInt16?
    /// In flight; nil while a 4.29 is waited out, and once finished.
    private var transaction: CoAPTransaction?
    /// The request an event's handlers want sent (see ``step(reply:)``).
    private var outgoing: [UInt8]?
    /// The message in flight (or to send again after a 4.29), without Message ID and token.
    private var current: CoAPMessage
    private var pastRetransmissions = 0
    private var pastStrays = 0
    /// Block1: the block in flight starts at `uploadOffset` and has size exponent `uploadSZX`.
    private var uploadOffset = 0
    private var uploadSZX: UInt8
    private var sendingBlock1 = false
    private var moreToUpload = false
    /// Block2: a block was stored and more were announced.
    private var downloading = false
    private var eTag: [UInt8]?
    private var restarts = 0
    private var rateLimitWaits = 0

    /// `request` is the method, Uri-Path, Uri-Query and any other options except those the exchange adds
    /// (Content-Format, Block1, Block2, Size1); `payload` goes with it in `contentFormat` (block-wise when over
    /// one block). `body` is where the answer goes (emptied first). The first message sent gets Message ID
    /// `lastMessageID + 1`.
    public init(
        request: CoAPMessage, payload: [UInt8], contentFormat: UInt16? = nil, body: Body,
        configuration: Configuration, lastMessageID: UInt16
    ) {
        template = request
        self.payload = payload
        payloadFormat = contentFormat
        self.body = body
        self.configuration = configuration
        self.lastMessageID = lastMessageID
        current = request
        uploadSZX = configuration.preferredSZX
    }

    /// Sends the first message. `random`: a fresh uniform draw (token and timeout jitter).
    public mutating func start(now: UInt32, random: UInt32) -> Step {
        body.removeAll(keepingCapacity: true)
        if payload.count > 16 << Int(configuration.preferredSZX) {
            send(nextUploadBlock(), now, random)
        } else if payload.isEmpty && configuration.preferredSZX < BlockOption.maxSZX {
            send(blockRequest(0, szx: configuration.preferredSZX), now, random)
        } else {
            send(carrying(payload), now, random)
        }
        return step(reply: nil)
    }

    /// A datagram from the server. `random` is used only if the step sends a new message.
    public mutating func received(_ bytes: [UInt8], now: UInt32, random: UInt32) -> Step {
        guard case .waiting = status, let answer = transaction?.received(bytes, now: now) else {
            pastStrays += 1
            return Step(reply: CoAPTransaction.strayReply(to: bytes), status: status)
        }
        follow(answer, now, random)
        return step(reply: answer.reply)
    }

    /// The deadline of the last step has come (an early call changes nothing).
    public mutating func timeout(now: UInt32, random: UInt32) -> Step {
        guard case .waiting(let deadline) = status else { return Step(status: status) }
        if let expired = transaction?.timeout(now: now) {
            follow(expired, now, random)
        } else if CoAPClock.remaining(until: deadline, now: now) == 0 {
            send(current, now, random)
        }
        return step(reply: nil)
    }

    /// The step of an event: what the handlers below left in `outgoing` and `status`.
    private mutating func step(reply: [UInt8]?) -> Step {
        let request = outgoing
        outgoing = nil
        return Step(reply: reply, request: request, status: status)
    }

    // MARK: - Messages

    private mutating func send(_ message: CoAPMessage, _ now: UInt32, _ random: UInt32) {
        current = message
        lastMessageID &+= 1
        let c = configuration
        var t = CoAPTransaction(
            request: message, messageID: lastMessageID,
            token: [
                UInt8(truncatingIfNeeded: random >> 24), UInt8(truncatingIfNeeded: random >> 16),
                UInt8(truncatingIfNeeded: random >> 8), UInt8(truncatingIfNeeded: random),
            ],
            initialTimeoutMillis: CoAPTransaction.initialTimeout(
                ackTimeoutMillis: c.ackTimeoutMillis, randomFactorPercent: c.ackRandomFactorPercent,
                random: random),
            maxRetransmit: c.maxRetransmit, separateResponseMillis: c.separateResponseMillis,
            maxMessageSize: c.maxMessageSize)
        guard t.datagram.count <= c.maxMessageSize else { return fail(.messageTooLarge) }
        requests += 1
        follow(t.start(now: now), now, random)
        transaction = t
    }

    /// Acts on a transaction's step: passes its wait and its request on, or takes its outcome.
    private mutating func follow(_ step: CoAPTransaction.Step, _ now: UInt32, _ random: UInt32) {
        switch step.status {
        case .waiting(let until):
            status = .waiting(until: until)
            outgoing = step.request
        case .done(let answer):
            retire()
            answered(answer, now, random)
        case .failed(let error):
            fail(error)
        }
    }

    private mutating func retire() {
        pastRetransmissions += transaction?.retransmissions ?? 0
        pastStrays += transaction?.strays ?? 0
        transaction = nil
    }

    // MARK: - Answers

    private mutating func answered(_ m: CoAPMessage, _ now: UInt32, _ random: UInt32) {
        let c = configuration
        if m.code == .tooManyRequests && rateLimitWaits < c.maxRateLimitWaits {
            rateLimitWaits += 1
            var wait = c.defaultRetryAfterMillis
            if let seconds = m.uintOption(.maxAge) {
                wait = seconds > c.maxRetryAfterMillis / 1000 ? c.maxRetryAfterMillis : seconds * 1000
            }
            status = .waiting(until: CoAPClock.deadline(after: wait, now: now))
            return
        }
        if sendingBlock1 { blocks += 1 }
        guard moreToUpload else { return download(m, now, random) }
        guard m.code == .continue else {
            // An error before the last block is the server's early refusal; a success is a broken server.
            return m.code.isSuccess ? fail(.protocolViolation(.block1Unfinished)) : finish(m)
        }
        guard let echo = m.option(.block1), let acked = try? BlockOption(option: echo) else {
            return fail(.protocolViolation(.block1EchoMissing))
        }
        guard acked.szx <= uploadSZX else { return fail(.protocolViolation(.block1SizeGrew)) }
        // The bytes sent are a multiple of the old size, so of the smaller one too: the next number is exact.
        uploadOffset += 16 << Int(uploadSZX)
        uploadSZX = acked.szx
        send(nextUploadBlock(), now, random)
    }

    private mutating func nextUploadBlock() -> CoAPMessage {
        let size = 16 << Int(uploadSZX)
        let end = min(uploadOffset + size, payload.count)
        sendingBlock1 = true
        moreToUpload = end < payload.count
        var m = carrying(Array(payload[uploadOffset..<end]))
        m.addOption(
            BlockOption(number: UInt32(uploadOffset / size), more: moreToUpload, szx: uploadSZX).option(.block1))
        if uploadOffset == 0 { m.addOption(CoAPOption(number: .size1, uint: UInt32(payload.count))) }
        return m
    }

    /// The answer to the whole upload (or to the request without one), or to a Block2 request.
    private mutating func download(_ m: CoAPMessage, _ now: UInt32, _ random: UInt32) {
        sendingBlock1 = false
        guard m.code.isSuccess, let option = m.option(.block2) else {
            guard downloading else { return finish(m) }
            return fail(m.code.isSuccess ? .protocolViolation(.block2Missing) : .interrupted(m.code))
        }
        guard let block = try? BlockOption(option: option) else { return fail(.protocolViolation(.block2Malformed)) }
        let maxBody = configuration.maxBodyBytes
        let tag = m.option(.eTag)?.value
        if block.number == 0 {
            body.removeAll(keepingCapacity: true)
            eTag = tag
            if let size2 = m.uintOption(.size2), UInt(size2) > UInt(bitPattern: maxBody) { return fail(.bodyTooLarge) }
        } else if downloading && tag != eTag {
            restarts += 1
            guard restarts <= configuration.maxBlockRestarts else {
                return fail(.protocolViolation(.representationKeepsChanging))
            }
            return send(blockRequest(0, szx: min(block.szx, configuration.preferredSZX)), now, random)
        }
        guard block.offset == body.count else { return fail(.protocolViolation(.block2OutOfOrder)) }
        guard m.payload.count <= block.size, !block.more || m.payload.count == block.size else {
            return fail(.protocolViolation(.block2SizeMismatch))
        }
        guard m.payload.count <= maxBody - body.count else { return fail(.bodyTooLarge) }
        body.append(contentsOf: m.payload)
        blocks += 1
        guard block.more else { return done(m) }
        downloading = true
        // Our size when the server's is larger (it should not be): the next number counts our blocks.
        let szx = min(block.szx, configuration.preferredSZX)
        let number = body.count / (16 << Int(szx))
        guard number <= Int(BlockOption.maxNumber) else { return fail(.bodyTooLarge) }
        send(blockRequest(UInt32(number), szx: szx), now, random)
    }

    /// A Block2 request: the request without its payload, so without its Content-Format either.
    private func blockRequest(_ number: UInt32, szx: UInt8) -> CoAPMessage {
        var m = template
        m.addOption(BlockOption(number: number, more: false, szx: szx).option(.block2))
        return m
    }

    /// The request with (part of) the payload, and the payload's Content-Format when it has one.
    private func carrying(_ bytes: [UInt8]) -> CoAPMessage {
        var m = template
        m.payload = bytes
        if !bytes.isEmpty, let format = payloadFormat {
            m.addOption(CoAPOption(number: .contentFormat, uint: UInt32(format)))
        }
        return m
    }

    /// An answer in one message: its payload is the body.
    private mutating func finish(_ m: CoAPMessage) {
        body.removeAll(keepingCapacity: true)
        guard m.payload.count <= configuration.maxBodyBytes else { return fail(.bodyTooLarge) }
        body.append(contentsOf: m.payload)
        done(m)
    }

    private mutating func done(_ m: CoAPMessage) {
        status = .done(Response(code: m.code, contentFormat: m.contentFormat))
    }

    private mutating func fail(_ error: CoAPExchangeError) {
        retire()
        status = .failed(error)
    }
}
