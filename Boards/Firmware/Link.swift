// The sync firmware's CoAP client: confirmable requests in SLIP frames on the board's link UART (to
// `amarsd bridge`), one exchange at a time, timeouts by polling the UART against board_millis(), and Block2
// answers reassembled into one fixed buffer. Nothing here trusts the answer: it only moves bytes.
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

    struct Link {
        /// Largest body the buffer holds: a checkpoint of a committee of a few dozen members.
        static let capacity = 4096
        /// Block size asked for: 512 bytes (SZX 5), so a frame stays well under CoAP's 1152.
        static let szx: UInt8 = 5
        static let ackTimeoutMillis: UInt32 = 2000
        static let maxRetransmit = 4

        /// The reassembly buffer, allocated once; `count` bytes of it hold the last answer's body.
        let body = UnsafeMutablePointer<UInt8>.allocate(capacity: Link.capacity)
        private(set) var count = 0
        private var messageID: UInt16 = 0x2A00
        private var tokenCounter: UInt16 = 0
        private var decoder = SLIPDecoder(maxPayloadSize: 700)
        var requests = 0
        var retransmissions = 0

        /// The last body as an array (the codec decodes arrays).
        func bodyBytes() -> [UInt8] { Array(UnsafeBufferPointer(start: body, count: count)) }

        /// GET `path` with `query`, following Block2 into ``body``. Returns the final code (2.05 on success; a
        /// 4.04 comes back as a code, not thrown, so "nothing there" is the caller's call).
        mutating func get(_ path: StaticString, query: [[UInt8]]) throws(LinkError) -> CoAPCode {
            var template = CoAPMessage(type: .confirmable, code: .get, messageID: 0)
            template.setUriPath(path)
            template.uriQuery = query
            var number: UInt32 = 0
            var restarts = 0
            var etag: [UInt8]? = nil
            count = 0
            while true {
                var request = template
                request.setOption(BlockOption(number: number, more: false, szx: Link.szx).option(.block2))
                let answer = try exchange(request)
                if answer.code.codeClass == 4 && answer.code.detail == 29 {
                    // 4.29 from the bridge's rate limit: wait Max-Age (1 s by default) and ask again.
                    wait(millis: 1000 * (answer.uintOption(.maxAge) ?? 1))
                    continue
                }
                guard answer.code.isSuccess else {
                    if number == 0 { return answer.code }
                    throw .code(answer.code.rawValue)
                }
                guard let option = answer.option(.block2) else {
                    guard number == 0 else { throw .protocolViolation }
                    try append(answer.payload, at: 0)
                    return answer.code
                }
                guard let block = try? BlockOption(option: option) else { throw .protocolViolation }
                let tag = answer.option(.eTag)?.value
                if block.number == 0 {
                    etag = tag
                } else if tag != etag {
                    // The representation changed between blocks: start over (a few times).
                    restarts += 1
                    guard restarts <= 3 else { throw .protocolViolation }
                    number = 0
                    count = 0
                    continue
                }
                guard block.offset == count else { throw .protocolViolation }
                try append(answer.payload, at: count)
                guard block.more else { return answer.code }
                number = UInt32(count / block.size)
            }
        }

        /// POST `payload` to `path` (content-format 42), Block1 in blocks of 512 bytes when it is larger; the final
        /// answer's payload lands in ``body``. Returns the final code (2.01 on success); an error code comes back
        /// as a code, not thrown, so the caller can show the gateway's reason (the diagnostic payload).
        mutating func post(_ path: StaticString, payload: [UInt8]) throws(LinkError) -> CoAPCode {
            var template = CoAPMessage(type: .confirmable, code: .post, messageID: 0)
            template.setUriPath(path)
            template.setOption(CoAPOption(number: .contentFormat, uint: UInt32(ContentFormat.chainPayload)))
            let size = 16 << Int(Link.szx)
            var number: UInt32 = 0
            count = 0
            while true {
                var request = template
                let start = Int(number) * size
                let end = min(start + size, payload.count)
                let more = end < payload.count
                if payload.count > size {
                    request.setOption(BlockOption(number: number, more: more, szx: Link.szx).option(.block1))
                }
                request.payload = Array(payload[start..<end])
                let answer = try exchange(request)
                if answer.code.codeClass == 4 && answer.code.detail == 29 {
                    wait(millis: 1000 * (answer.uintOption(.maxAge) ?? 1))
                    continue
                }
                if more && answer.code == .continue {
                    number += 1
                    continue
                }
                if more && answer.code.isSuccess { throw .protocolViolation }  // success before the last block
                try append(answer.payload, at: 0)
                return answer.code
            }
        }

        private mutating func append(_ bytes: [UInt8], at offset: Int) throws(LinkError) {
            guard bytes.count <= Link.capacity - offset else { throw .bodyTooLarge }
            for i in 0..<bytes.count { body[offset + i] = bytes[i] }
            count = offset + bytes.count
        }

        /// One confirmable exchange: fresh Message ID and token, retransmitted (same ID, so the bridge answers
        /// from its cache) with doubling timeouts; a piggybacked answer or a separate CON/NON with our token.
        private mutating func exchange(_ base: CoAPMessage) throws(LinkError) -> CoAPMessage {
            var request = base
            messageID &+= 1
            tokenCounter &+= 1
            request.messageID = messageID
            request.token = [0xA5, UInt8(tokenCounter >> 8), UInt8(tokenCounter & 0xFF)]
            let frame = SLIP.encodeFrame(request.encode())
            requests += 1
            var timeout = Link.ackTimeoutMillis
            var attempts = 0
            while true {
                send(frame)
                let deadline = board_millis() &+ timeout
                while Int32(bitPattern: deadline &- board_millis()) > 0 {
                    guard let bytes = poll() else { continue }
                    guard let m = try? CoAPMessage.decode(bytes) else { continue }
                    switch m.type {
                    case .acknowledgement:
                        guard m.messageID == request.messageID else { continue }
                        if m.code.isEmpty { continue }  // separate answer follows; keep waiting
                        if m.token == request.token { return m }
                    case .reset:
                        if m.messageID == request.messageID { throw .reset }
                    case .confirmable, .nonConfirmable:
                        let ours = m.token == request.token && m.code.isResponse
                        if m.type == .confirmable {
                            let reply = CoAPMessage(
                                type: ours ? .acknowledgement : .reset, code: .empty, messageID: m.messageID)
                            send(SLIP.encodeFrame(reply.encode()))
                        }
                        if ours { return m }
                    }
                }
                guard attempts < Link.maxRetransmit else { throw .timeout }
                attempts += 1
                retransmissions += 1
                timeout &*= 2
            }
        }

        private func send(_ frame: [UInt8]) {
            frame.withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress { board_link_write(base, buffer.count) }
            }
        }

        /// Drains the link's receive register into the SLIP decoder; a complete frame, or nil.
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

    /// `key=value` as a Uri-Query argument, the value in decimal.
    func queryArgument(_ key: StaticString, _ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        key.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "="))
        var digits: [UInt8] = []
        var v = value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(v % 10))
            v /= 10
        } while v > 0
        out.append(contentsOf: digits.reversed())
        return out
    }
#endif
