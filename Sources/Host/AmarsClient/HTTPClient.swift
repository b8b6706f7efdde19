#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a request to a node did not produce an HTTP response. The descriptions are written for someone
/// running the CLI for the first time: they say what was tried and the likely fix.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    case invalidURL(String)
    case connectionFailed(String)
    case timeout
    case malformedResponse(String)

    public var description: String {
        switch self {
        case .invalidURL(let why): "invalid node URL: \(why) (expected something like http://127.0.0.1:8645)"
        case .connectionFailed(let why): "\(why): is amarsd running? (make devnet)"
        case .timeout: "the node did not answer in time; it may be overloaded, or the URL points at something else"
        case .malformedResponse(let why): "the node sent an invalid HTTP response: \(why)"
        }
    }
}

/// One HTTP answer.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased; a repeated header keeps its last value.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A minimal blocking HTTP/1.1 client over POSIX sockets: what the CLI, the benchmark and the tests need to
/// talk to a gateway, with no dependency on Foundation's networking (absent or different on some Linux
/// setups) and no event loop.
///
/// One connection per request with `Connection: close`: simple, and cheap on loopback. `http://` only;
/// a gateway's API is meant for the local network or behind a TLS proxy. The whole request, from connect to
/// the last body byte, must finish within `timeoutSeconds`; responses over 16 MiB are refused.
public struct HTTPClient: Sendable {
    public static let maxResponseBytes = 16 << 20

    public let baseURL: String
    public let host: String
    public let port: UInt16
    /// Path prefix from the base URL (empty or starting with "/", no trailing slash).
    public let basePath: String
    public let timeoutSeconds: Double

    public init(baseURL: String, timeoutSeconds: Double = 10) throws(ClientError) {
        guard timeoutSeconds > 0 else { throw .invalidURL("the timeout must be positive") }
        let scheme = "http://"
        guard baseURL.lowercased().hasPrefix(scheme) else {
            if baseURL.lowercased().hasPrefix("https://") {
                throw .invalidURL("https is not supported; use http:// (the gateway API speaks plain HTTP)")
            }
            throw .invalidURL("'\(baseURL)' must start with http://")
        }
        let rest = baseURL.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        while path.hasSuffix("/") { path.removeLast() }
        var hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { throw .invalidURL("unclosed '[' in '\(baseURL)'") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL("unexpected text after ']' in '\(baseURL)'") }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
        }
        guard !hostPart.isEmpty else { throw .invalidURL("no host in '\(baseURL)'") }
        guard !hostPart.contains("@") else { throw .invalidURL("user names in URLs are not supported") }
        var port: UInt16 = 80
        if let portPart {
            guard let p = UInt16(portPart), p > 0 else { throw .invalidURL("bad port '\(portPart)' in '\(baseURL)'") }
            port = p
        }
        self.baseURL = baseURL
        self.host = String(hostPart)
        self.port = port
        self.basePath = path
        self.timeoutSeconds = timeoutSeconds
    }

    /// "http://host:port" as the user wrote it, for messages.
    private var origin: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    public func get(_ path: String) throws(ClientError) -> HTTPResponse {
        try request(method: "GET", path: path, body: [], contentType: nil)
    }

    public func post(_ path: String, body: [UInt8], contentType: String) throws(ClientError) -> HTTPResponse {
        try request(method: "POST", path: path, body: body, contentType: contentType)
    }

    /// Sends any request; `path` is appended to the base URL's path.
    public func request(method: String, path: String, body: [UInt8], contentType: String?) throws(ClientError)
        -> HTTPResponse
    {
        guard path.hasPrefix("/"), !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw .invalidURL("the request path must start with '/' and contain no spaces or control characters")
        }
        let deadline = Deadline(seconds: timeoutSeconds)
        let socket = try connect(deadline: deadline)
        defer { _ = close(socket) }
        var head = "\(method) \(basePath)\(path) HTTP/1.1\r\n"
        head += "Host: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n"
        head += "User-Agent: amars-client/1\r\nAccept: */*\r\nConnection: close\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if method != "GET" || !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try send(socket, Array(head.utf8) + body, deadline: deadline)
        var parser = ResponseParser()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let response = try parser.response(eof: false) { return response }
            try wait(socket, events: Int16(POLLIN), deadline: deadline)
            let n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                throw .connectionFailed("connection to \(origin) broke while reading: \(Self.errnoText())")
            }
            if n == 0 {
                if let response = try parser.response(eof: true) { return response }
                throw .malformedResponse("the connection closed before the response was complete")
            }
            try parser.append(buffer[0..<n])
        }
    }

    // MARK: socket plumbing

    private struct Deadline {
        let end: Double

        init(seconds: Double) { end = Deadline.now() + seconds }

        static func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }

        /// Milliseconds left for poll(), at least 0.
        var remainingMillis: Int32 {
            let left = (end - Deadline.now()) * 1000
            return left <= 0 ? 0 : Int32(min(left.rounded(.up), Double(Int32.max)))
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Waits until `socket` is ready for `events`, or throws ``ClientError/timeout``.
    private func wait(_ socket: Int32, events: Int16, deadline: Deadline) throws(ClientError) {
        while true {
            let millis = deadline.remainingMillis
            guard millis > 0 else { throw .timeout }
            var fds = pollfd(fd: socket, events: events, revents: 0)
            let r = poll(&fds, 1, millis)
            if r > 0 { return }
            if r == 0 { throw .timeout }
            if errno != EINTR { throw .connectionFailed("poll failed: \(Self.errnoText())") }
        }
    }

    /// Resolves the host and connects (non-blocking, so the deadline also bounds the connect), trying every
    /// address the resolver returns.
    private func connect(deadline: Deadline) throws(ClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let why = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
            throw .connectionFailed("cannot connect to \(origin): cannot resolve '\(host)' (\(why))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no usable address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else {
                lastError = Self.errnoText()
                continue
            }
            #if canImport(Darwin)
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            let flags = fcntl(fd, F_GETFL, 0)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var r = posixConnect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if r != 0 && errno == EINPROGRESS {
                do {
                    try wait(fd, events: Int16(POLLOUT), deadline: deadline)
                } catch {
                    _ = close(fd)
                    throw error
                }
                var soError: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                if soError == 0 {
                    r = 0
                } else {
                    errno = soError
                }
            }
            if r == 0 {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            lastError = Self.errnoText()
            _ = close(fd)
        }
        throw .connectionFailed("cannot connect to \(origin): \(lastError.lowercased())")
    }

    private func send(_ socket: Int32, _ bytes: [UInt8], deadline: Deadline) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            try wait(socket, events: Int16(POLLOUT), deadline: deadline)
            let n = bytes.withUnsafeBytes { raw in
                posixSend(socket, raw.baseAddress! + offset, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                // The server may answer early (413) and close; a response may still be readable.
                if errno == EPIPE || errno == ECONNRESET { return }
                throw .connectionFailed("connection to \(origin) broke while sending: \(Self.errnoText())")
            }
            offset += n
        }
    }
}

// The POSIX names clash with this file's methods; these wrappers call the C functions.
@inline(__always)
private func posixConnect(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>!, _ len: socklen_t) -> Int32 {
    connect(fd, addr, len)
}

@inline(__always)
private func posixSend(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
        send(fd, buf, count, 0)
    #else
        send(fd, buf, count, Int32(MSG_NOSIGNAL))
    #endif
}

/// Incremental HTTP/1.1 response parsing: status line, headers, then a body framed by Content-Length,
/// chunked encoding, or the end of the connection. Every size is checked against the 16 MiB cap before
/// anything grows.
struct ResponseParser {
    private var data: [UInt8] = []
    private var headerEnd: Int?
    private var status = 0
    private var headers: [String: String] = [:]

    mutating func append(_ bytes: ArraySlice<UInt8>) throws(ClientError) {
        guard data.count + bytes.count <= HTTPClient.maxResponseBytes + 64 * 1024 else {
            throw .malformedResponse("the response is larger than \(HTTPClient.maxResponseBytes >> 20) MiB")
        }
        data.append(contentsOf: bytes)
    }

    /// The complete response once enough bytes arrived; nil while more are needed.
    mutating func response(eof: Bool) throws(ClientError) -> HTTPResponse? {
        if headerEnd == nil {
            guard let end = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: data[...], from: 0) else {
                if data.count > 64 * 1024 { throw .malformedResponse("headers longer than 64 KiB") }
                return nil
            }
            try parseHead(data[0..<end])
            headerEnd = end + 4
            // 1xx answers (100 Continue) precede the real one: drop them and parse again.
            if (100..<200).contains(status) {
                data.removeFirst(end + 4)
                headerEnd = nil
                headers = [:]
                return try response(eof: eof)
            }
        }
        let start = headerEnd!
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            guard let body = try Self.dechunk(data[start...]) else {
                if eof { throw .malformedResponse("the chunked body ended early") }
                return nil
            }
            return HTTPResponse(status: status, headers: headers, body: body)
        }
        if let lengthText = headers["content-length"] {
            guard let length = Int(lengthText.trimmingSpaces), length >= 0 else {
                throw .malformedResponse("bad Content-Length '\(lengthText)'")
            }
            guard length <= HTTPClient.maxResponseBytes else {
                throw .malformedResponse("the response is larger than \(HTTPClient.maxResponseBytes >> 20) MiB")
            }
            guard data.count - start >= length else {
                if eof { throw .malformedResponse("the body ended after \(data.count - start) of \(length) bytes") }
                return nil
            }
            return HTTPResponse(status: status, headers: headers, body: Array(data[start..<(start + length)]))
        }
        if status == 204 || status == 304 { return HTTPResponse(status: status, headers: headers, body: []) }
        guard eof else { return nil }
        return HTTPResponse(status: status, headers: headers, body: Array(data[start...]))
    }

    private mutating func parseHead(_ head: ArraySlice<UInt8>) throws(ClientError) {
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        guard let statusLine = lines.popFirst() else { throw .malformedResponse("no status line") }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let code = Int(parts[1]) else {
            throw .malformedResponse("not an HTTP/1.x status line")
        }
        status = code
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .malformedResponse("a header line without ':'") }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingSpaces
        }
    }

    /// The decoded body once the final zero-size chunk and its trailer are present; nil if more is needed.
    static func dechunk(_ raw: ArraySlice<UInt8>) throws(ClientError) -> [UInt8]? {
        var out: [UInt8] = []
        var i = raw.startIndex
        while true {
            guard let lineEnd = find([0x0D, 0x0A], in: raw, from: i) else {
                if raw.endIndex - i > 1024 { throw .malformedResponse("a chunk size line is too long") }
                return nil
            }
            let sizeText = String(decoding: raw[i..<lineEnd], as: UTF8.self).prefix { $0 != ";" }.trimmingSpaces
            guard !sizeText.isEmpty, sizeText.count <= 8, let size = Int(sizeText, radix: 16) else {
                throw .malformedResponse("bad chunk size")
            }
            i = lineEnd + 2
            if size == 0 {
                // Optional trailer lines, then an empty line.
                while true {
                    guard let end = find([0x0D, 0x0A], in: raw, from: i) else { return nil }
                    if end == i { return out }
                    i = end + 2
                }
            }
            guard out.count + size <= HTTPClient.maxResponseBytes else {
                throw .malformedResponse("the response is larger than \(HTTPClient.maxResponseBytes >> 20) MiB")
            }
            guard raw.endIndex - i >= size + 2 else { return nil }
            out.append(contentsOf: raw[i..<(i + size)])
            guard raw[i + size] == 0x0D, raw[i + size + 1] == 0x0A else {
                throw .malformedResponse("a chunk is not followed by CRLF")
            }
            i += size + 2
        }
    }

    static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>, from: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = max(from, haystack.startIndex)
        let last = haystack.endIndex - needle.count
        while i <= last {
            var match = true
            for (k, b) in needle.enumerated() where haystack[i + k] != b {
                match = false
                break
            }
            if match { return i }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
