// The sync firmware's CoAP client: confirmable requests in SLIP frames on the board's link UART (to
// `amarsd bridge`), one exchange at a time. The protocol (retransmission, Block1/Block2, 4.29) is DeviceProtocol's
// CoAPRequestExchange, the host client's too; this file moves its frames, reads board_millis() and keeps the one
// fixed body buffer. Nothing here trusts the answer: it only moves bytes.
#if FIRMWARE_SYNC
    import Board
    import DeviceProtocol

    /// Why a request got no usable answer (transport, not verification).
    enum LinkError: Error {
        case timeout
        case reset
        /// An error code from the gateway (or the bridge's 5.04).
        case code(UInt8)
        /// Block2 out of order, too many restarts, body over the buffer.
        case protocolViolation
        case bodyTooLarge
    }

    /// ``Link/body`` as the exchange's body storage: the exchange checks the cap before every append, so the
    /// buffer is written in place and the heap never holds a second copy of a 4 KiB answer.
    struct LinkBody: CoAPBodyStorage {
        let base: UnsafeMutablePointer<UInt8>
        var count = 0

        mutating func removeAll(keepingCapacity: Bool) { count = 0 }

        mutating func append(contentsOf bytes: [UInt8]) {
            for byte in bytes {
                base[count] = byte
                count += 1
            }
        }
    }

    struct Link {
        /// Largest body the buffer holds: a checkpoint of a committee of a few dozen members.
        static let capacity = 4096
        /// Block size asked for: 512 bytes (SZX 5), so a frame stays well under CoAP's 1152.
        static let szx: UInt8 = 5
        static let ackTimeoutMillis: UInt32 = 2000
        static let maxRetransmit = 4
        static let configuration = CoAPRequestExchange<LinkBody>.Configuration(
            maxBodyBytes: capacity, preferredSZX: szx, ackTimeoutMillis: ackTimeoutMillis, ackRandomFactorPercent: 100,
            maxRetransmit: maxRetransmit,
            // The bridge answers piggybacked; a separate answer would come once it gave up on the gateway.
            separateResponseMillis: 30_000)

        /// The reassembly buffer, allocated once; `count` bytes of it hold the last answer's body.
        let body = UnsafeMutablePointer<UInt8>.allocate(capacity: Link.capacity)
        private(set) var count = 0
        private var messageID: UInt16 = 0x2A00
        private var decoder = SLIPDecoder(maxPayloadSize: 700)
        var requests = 0
        var retransmissions = 0

        /// The last body as an array (the codec decodes arrays).
        func bodyBytes() -> [UInt8] { Array(UnsafeBufferPointer(start: body, count: count)) }

        /// GET `path` with `query`, following Block2 into ``body``. Returns the final code (2.05 on success; a
        /// 4.04 comes back as a code, not thrown, so "nothing there" is the caller's call).
        mutating func get(_ path: StaticString, query: [[UInt8]]) throws(LinkError) -> CoAPCode {
            var request = CoAPMessage(type: .confirmable, code: .get, messageID: 0)
            request.setUriPath(path)
            request.uriQuery = query
            return try run(request, payload: [])
        }

        /// POST `payload` to `path` (content-format 42), Block1 in blocks of 512 bytes when it is larger; the final
        /// answer's payload lands in ``body``. Returns the final code (2.01 on success); an error code comes back
        /// as a code, not thrown, so the caller can show the gateway's reason (the diagnostic payload).
        mutating func post(_ path: StaticString, payload: [UInt8]) throws(LinkError) -> CoAPCode {
            var request = CoAPMessage(type: .confirmable, code: .post, messageID: 0)
            request.setUriPath(path)
            return try run(request, payload: payload)
        }

        /// Drives one exchange: frames out, frames in, board_millis() for the deadlines. Tokens are 0xA5, 0x00 and
        /// the Message ID: unique per message without a random source, which a board may not have.
        private mutating func run(_ request: CoAPMessage, payload: [UInt8]) throws(LinkError) -> CoAPCode {
            var exchange = CoAPRequestExchange(
                request: request, payload: payload, contentFormat: ContentFormat.chainPayload,
                body: LinkBody(base: body),
                configuration: Link.configuration, lastMessageID: messageID)
            var step = exchange.start(now: board_millis(), random: 0xA500_0000 | UInt32(messageID &+ 1))
            while true {
                if let reply = step.reply { send(reply) }
                if let request = step.request { send(request) }
                guard case .waiting(let deadline) = step.status else { break }
                let token = 0xA500_0000 | UInt32(exchange.lastMessageID &+ 1)
                if let frame = poll() {
                    step = exchange.received(frame, now: board_millis(), random: token)
                } else if CoAPClock.remaining(until: deadline, now: board_millis()) == 0 {
                    step = exchange.timeout(now: board_millis(), random: token)
                } else {
                    step = .init(status: step.status)  // nothing yet: nothing to send again
                }
            }
            messageID = exchange.lastMessageID
            requests += exchange.requests
            retransmissions += exchange.retransmissions
            count = exchange.body.count
            switch step.status {
            case .done(let answer): return answer.code
            case .failed(.reset): throw .reset
            case .failed(.interrupted(let code)): throw .code(code.rawValue)
            case .failed(.bodyTooLarge): throw .bodyTooLarge
            case .failed(.protocolViolation), .failed(.messageTooLarge): throw .protocolViolation
            case .failed, .waiting: throw .timeout
            }
        }

        // Out of line, here and in poll(): inlined into run() they cost the image a few hundred bytes.
        @inline(never)
        private func send(_ message: [UInt8]) {
            SLIP.encodeFrame(message).withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress { board_link_write(base, buffer.count) }
            }
        }

        /// Drains the link's receive register into the SLIP decoder; a complete frame, or nil.
        @inline(never)
        private mutating func poll() -> [UInt8]? {
            while true {
                let byte = board_link_read()
                if byte < 0 { return nil }
                if let frame = decoder.push(UInt8(truncatingIfNeeded: byte)) { return frame }
            }
        }

        func wait(millis: UInt32) {
            let until = board_millis() &+ millis
            while Int32(bitPattern: until &- board_millis()) > 0 {}
        }
    }

#endif
