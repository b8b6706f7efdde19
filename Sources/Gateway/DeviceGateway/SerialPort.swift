import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What a ``SerialPort`` feeds the bytes it reads to; ``SerialBridge`` is the one in use.
public protocol SerialLineHandler: AnyObject, Sendable {
    /// A connection (or the device) was opened; anything half-received before belongs to an earlier one.
    func lineOpened()
    /// Bytes read from the line; the returned bytes are written back.
    func lineReceived(_ bytes: [UInt8]) -> [UInt8]
}

/// The byte pipe to a board: a serial device in raw mode, or a TCP connection to an emulator's UART.
///
/// One thread reads, hands the bytes to the handler and writes its answer, so requests on a link are served
/// one at a time in order, as a board on a half-duplex protocol expects. The thread waits in `poll` with a
/// short timeout, so ``stop()`` returns promptly whatever the line does.
///
/// QEMU's `-serial tcp:HOST:PORT,server=on,wait=on,nodelay=on` waits for this side to connect; the connection
/// gets TCP_NODELAY too, since a frame is one small write and Nagle would hold each answer back. When the peer
/// goes away (the emulator restarted, the USB adapter was unplugged) the port opens again after a back-off
/// that doubles from ``Reconnect/initialDelay`` to ``Reconnect/maxDelay``; ``Reconnect/maxAttempts``
/// consecutive failures end the thread.
///
/// `@unchecked Sendable`: the descriptor is used only by the I/O thread; `stopping`, `thread`, `stats` and
/// `failed` are guarded by `lock`.
public final class SerialPort: @unchecked Sendable {
    public enum Endpoint: Equatable, Sendable, CustomStringConvertible {
        /// A tty device path and its baud rate.
        case device(path: String, baud: Int)
        /// A TCP server (QEMU's serial backend), `tcp:HOST:PORT`.
        case tcp(host: String, port: UInt16)

        /// `tcp:HOST:PORT` (IPv6 host in brackets) or a device path.
        public static func parse(_ text: String, baud: Int = 115_200) -> Endpoint? {
            guard text.hasPrefix("tcp:") else {
                return text.isEmpty ? nil : .device(path: text, baud: baud)
            }
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]),
                port > 0
            else { return nil }
            var host = rest[..<colon]
            if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            return host.isEmpty ? nil : .tcp(host: String(host), port: port)
        }

        public var description: String {
            switch self {
            case .device(let path, let baud): "\(path) at \(baud) baud"
            case .tcp(let host, let port): "tcp:\(host):\(port)"
            }
        }
    }

    public struct Reconnect: Sendable, Equatable {
        public var initialDelay: Double
        public var maxDelay: Double
        /// Consecutive failed opens before giving up; nil retries for ever (a daemon waiting for its board).
        public var maxAttempts: Int?

        public init(initialDelay: Double = 0.1, maxDelay: Double = 5, maxAttempts: Int? = nil) {
            precondition(initialDelay > 0 && maxDelay >= initialDelay, "SerialPort: bad back-off")
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
            self.maxAttempts = maxAttempts
        }
    }

    public struct Counters: Equatable, Sendable {
        public var bytesIn: UInt64 = 0
        public var bytesOut: UInt64 = 0
        /// Successful opens.
        public var opens: UInt64 = 0
        /// Failed opens (device missing, connection refused).
        public var openFailures: UInt64 = 0
        /// Lines lost after being open (EOF, hang-up, read or write error).
        public var disconnects: UInt64 = 0

        public init() {}
    }

    public enum PortError: Error, CustomStringConvertible, Equatable {
        case unsupportedBaud(Int)
        case alreadyStarted

        public var description: String {
            switch self {
            case .unsupportedBaud(let b): "unsupported baud rate \(b)"
            case .alreadyStarted: "the serial port is already running"
            }
        }
    }

    /// How long the thread waits in `poll` before looking at `stopping`.
    static let pollMilliseconds: Int32 = 100

    public let endpoint: Endpoint
    public let reconnect: Reconnect
    private let handler: any SerialLineHandler
    private let logger: Logger

    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?
    private var stats = Counters()
    private var failed = false
    private let stopped = DispatchSemaphore(value: 0)

    public init(
        endpoint: Endpoint, handler: any SerialLineHandler, reconnect: Reconnect = Reconnect(),
        logger: Logger = Logger(label: "amars.serial")
    ) {
        self.endpoint = endpoint
        self.handler = handler
        self.reconnect = reconnect
        self.logger = logger
    }

    public var counters: Counters { lock.withLock { stats } }

    /// Whether the thread gave up after ``Reconnect/maxAttempts`` failed opens.
    public var hasFailed: Bool { lock.withLock { failed } }

    /// Starts the I/O thread, which opens the line (and keeps reopening it). Throws only for settings that
    /// can never work; a line that is not there yet is retried.
    public func start() throws(PortError) {
        if case .device(_, let baud) = endpoint, Self.speed(baud) == nil { throw .unsupportedBaud(baud) }
        lock.lock()
        defer { lock.unlock() }
        guard thread == nil else { throw .alreadyStarted }
        stopping = false
        let thread = Thread { [self] in run() }
        thread.name = "amars-serial"
        self.thread = thread
        thread.start()
    }

    /// Stops the thread and closes the line; waits until both are done. Safe to call twice.
    public func stop() {
        let running = lock.withLock {
            stopping = true
            return thread != nil
        }
        guard running else { return }
        stopped.wait()
        lock.withLock { thread = nil }
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func run() {
        defer { stopped.signal() }
        var delay = reconnect.initialDelay
        var failures = 0
        while !isStopping {
            guard let fd = open() else {
                failures += 1
                lock.withLock { stats.openFailures &+= 1 }
                if let max = reconnect.maxAttempts, failures >= max {
                    logger.error("serial \(endpoint): giving up after \(failures) attempts")
                    lock.withLock { failed = true }
                    return
                }
                pause(delay)
                delay = min(delay * 2, reconnect.maxDelay)
                continue
            }
            failures = 0
            delay = reconnect.initialDelay
            lock.withLock { stats.opens &+= 1 }
            logger.info("serial \(endpoint): open")
            handler.lineOpened()
            serve(fd)
            close(fd)
            if !isStopping {
                lock.withLock { stats.disconnects &+= 1 }
                logger.info("serial \(endpoint): closed, reopening")
                pause(delay)
            }
        }
    }

    /// Reads until the line ends or the port stops.
    private func serve(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !isStopping {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Self.pollMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                logger.info("serial \(endpoint): read: \(String(cString: strerror(errno)))")
                return
            }
            if n == 0 { return }
            lock.withLock { stats.bytesIn &+= UInt64(n) }
            let answer = handler.lineReceived(Array(buffer[0..<n]))
            if !answer.isEmpty {
                guard write(fd, answer) else { return }
                lock.withLock { stats.bytesOut &+= UInt64(answer.count) }
            }
        }
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                let base = raw.baseAddress! + offset
                if case .tcp = endpoint { return send(fd, base, raw.count - offset, Int32(MSG_NOSIGNAL)) }
                return Glibc.write(fd, base, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                logger.info("serial \(endpoint): write: \(String(cString: strerror(errno)))")
                return false
            }
            offset += n
        }
        return true
    }

    /// Sleeps in short steps so a stop is not held up by a long back-off.
    private func pause(_ seconds: Double) {
        var left = seconds
        while left > 0 && !isStopping {
            let step = min(left, 0.05)
            usleep(UInt32(step * 1_000_000))
            left -= step
        }
    }

    private func open() -> Int32? {
        switch endpoint {
        case .device(let path, let baud): openDevice(path, baud: baud)
        case .tcp(let host, let port): connectTCP(host, port: port)
        }
    }

    /// Raw mode: no echo, no line editing, no CR/LF translation, no flow control; 8N1 at `baud`. A SLIP frame
    /// holds every byte value, so the tty must pass them all through untouched.
    private func openDevice(_ path: String, baud: Int) -> Int32? {
        let fd = Glibc.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            logger.debug("serial \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        var settings = termios()
        guard tcgetattr(fd, &settings) == 0, let speed = Self.speed(baud) else {
            logger.error("serial \(path): not a terminal: \(String(cString: strerror(errno)))")
            close(fd)
            return nil
        }
        cfmakeraw(&settings)
        settings.c_cflag |= (tcflag_t(CLOCAL) | tcflag_t(CREAD))
        settings.c_cflag &= ~(tcflag_t(CSTOPB) | tcflag_t(CRTSCTS))
        settings.c_iflag &= ~(tcflag_t(IXON) | tcflag_t(IXOFF) | tcflag_t(IXANY))
        withUnsafeMutableBytes(of: &settings.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        cfsetispeed(&settings, speed)
        cfsetospeed(&settings, speed)
        guard tcsetattr(fd, TCSANOW, &settings) == 0 else {
            logger.error("serial \(path): cannot set raw mode: \(String(cString: strerror(errno)))")
            close(fd)
            return nil
        }
        tcflush(fd, TCIOFLUSH)
        return fd
    }

    private func connectTCP(_ host: String, port: UInt16) -> Int32? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0 else {
            logger.debug("serial tcp:\(host):\(port): cannot resolve")
            return nil
        }
        defer { freeaddrinfo(list) }
        var entry = list
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { continue }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            logger.debug("serial tcp:\(host):\(port): \(String(cString: strerror(errno)))")
            close(fd)
        }
        return nil
    }

    /// The termios speed constant for a baud rate, nil for rates Linux has no constant for.
    public static func speed(_ baud: Int) -> speed_t? {
        switch baud {
        case 9600: speed_t(B9600)
        case 19200: speed_t(B19200)
        case 38400: speed_t(B38400)
        case 57600: speed_t(B57600)
        case 115_200: speed_t(B115200)
        case 230_400: speed_t(B230400)
        case 460_800: speed_t(B460800)
        case 921_600: speed_t(B921600)
        case 1_000_000: speed_t(B1000000)
        default: nil
        }
    }
}
