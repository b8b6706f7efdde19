import AmarsCodec
import CEpoll
import DeviceCore
import DeviceProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Many devices' CoAP exchanges on one thread: each device keeps its own UDP socket (its own endpoint, as a board
/// has), and one epoll loop moves every socket's datagrams through DeviceProtocol's ``CoAPRequestExchange``, the
/// same sans-I/O exchange ``CoAPDeviceClient`` and the firmware drive. A device awaits its answer
/// (``exchange(_:on:)``) instead of holding a thread, which is what lets one simulator process run ten thousand
/// devices.
///
/// One exchange per endpoint at a time (a device has one radio, NSTART = 1). Everything the loop owns is touched
/// only on its thread; callers hand work over through `incoming`, under `lock`, and a byte on a pipe wakes the
/// loop.
public final class CoAPReactor: @unchecked Sendable {
    /// A device's socket, registered with the loop.
    public struct Endpoint: Sendable, Hashable {
        fileprivate let fd: Int32
    }

    /// Counters over every endpoint.
    public struct Stats: Sendable, Equatable {
        public var requests = 0
        public var retransmissions = 0
        public var exchanges = 0
        /// Datagrams the injected link faults threw away (see ``setLoss(_:)`` and ``cut(_:)``).
        public var dropped = 0
    }

    public let configuration: CoAPDeviceClient.Configuration
    private let epoll: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let lock = NSLock()
    private var incoming: [Job] = []
    private var loopStats = Stats()
    private var closing: Set<Int32> = []
    private var loss: Double = 0
    private var cutOff: Set<Int32> = []
    // The loop thread's copy of the faults, taken with its other hand-overs, so a datagram costs no lock.
    private var activeLoss: Double = 0
    private var activeCut: Set<Int32> = []
    private var dropped = 0
    // The loop thread's own state.
    private var open: [Int32: InFlight] = [:]
    private var lastMessageID: [Int32: UInt16] = [:]
    private var timers = TimerHeap()
    private var random = SystemRandomNumberGenerator()
    private var generation = 0

    private struct Job {
        var endpoint: Endpoint
        var request: DeviceRequest
        var reply: (Result<DeviceAnswer, DeviceClientError>) -> Void
    }

    private struct InFlight {
        var exchange: CoAPRequestExchange<[UInt8]>
        var template: CoAPMessage
        var job: Job
        var generation: Int
    }

    /// Starts the loop thread. `configuration` gives the gateway's address and the retransmission schedule.
    public init(configuration: CoAPDeviceClient.Configuration) throws(DeviceClientError) {
        self.configuration = configuration
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw .socket(call: "epoll_create1", errno: errno) }
        var pipe = [Int32](repeating: -1, count: 2)
        guard Glibc.pipe(&pipe) == 0 else { throw .socket(call: "pipe", errno: errno) }
        (wakeRead, wakeWrite) = (pipe[0], pipe[1])
        for fd in pipe { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        try watch(wakeRead)
        let thread = Thread { [self] in loop() }
        thread.name = "amars-coap-reactor"
        thread.start()
    }

    /// A new device socket connected to the gateway, bound to `source` (an IPv4 address) when given.
    public func endpoint(source: String? = nil) throws(DeviceClientError) -> Endpoint {
        let fd = try connectedSocket(
            host: configuration.host, port: configuration.port, type: Int32(SOCK_DGRAM.rawValue), source: source)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        do { try watch(fd) } catch {
            Glibc.close(fd)
            throw error
        }
        return Endpoint(fd: fd)
    }

    /// The whole answer to `request` from `endpoint`'s socket: Block-wise transfers reassembled and 4.29 waited out
    /// as ``CoAPDeviceClient/request(_:_:query:payload:)`` does.
    public func exchange(_ request: DeviceRequest, on endpoint: Endpoint) async -> Result<
        DeviceAnswer, DeviceClientError
    > {
        await withCheckedContinuation { continuation in
            submit(Job(endpoint: endpoint, request: request, reply: { continuation.resume(returning: $0) }))
        }
    }

    public var stats: Stats { lock.withLock { loopStats } }

    // MARK: injected link faults (the simulator's)

    /// From now on each datagram on every endpoint is lost with probability `share`, sent or received: a lossy
    /// radio or serial line, which the exchange's retransmissions must ride through.
    public func setLoss(_ share: Double) {
        lock.withLock { loss = min(max(share, 0), 1) }
        wake()
    }

    /// `endpoints` lose their link until ``restore(_:)``: everything they send or are sent is dropped.
    public func cut(_ endpoints: [Endpoint]) {
        lock.withLock { cutOff.formUnion(endpoints.map(\.fd)) }
        wake()
    }

    public func restore(_ endpoints: [Endpoint]) {
        lock.withLock { cutOff.subtract(endpoints.map(\.fd)) }
        wake()
    }

    /// Whether a datagram on `fd` is lost to an injected fault (counted). Loop thread only.
    private func lost(_ fd: Int32) -> Bool {
        guard activeCut.contains(fd) || (activeLoss > 0 && Double.random(in: 0..<1, using: &random) < activeLoss)
        else { return false }
        dropped += 1
        return true
    }

    /// Closes `endpoint`'s socket; an exchange still on it fails.
    public func close(_ endpoint: Endpoint) {
        lock.withLock { _ = closing.insert(endpoint.fd) }
        wake()
    }

    private func submit(_ job: Job) {
        lock.withLock { incoming.append(job) }
        wake()
    }

    /// A byte on the pipe: the loop leaves epoll_wait and takes what was handed over. A full pipe already wakes it.
    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func watch(_ fd: Int32) throws(DeviceClientError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = fd
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else { throw .socket(call: "epoll_ctl", errno: errno) }
    }

    // MARK: the loop thread

    private func loop() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            let now = Self.now()
            let wait = timers.next.map { Int32(clamping: $0 > now ? $0 - now : 0) } ?? 1_000
            let n = epoll_wait(epoll, &events, Int32(events.count), wait)
            if n < 0 && errno != EINTR { return }
            for i in 0..<max(0, Int(n)) {
                let fd = events[i].data.fd
                if fd == wakeRead {
                    var drain = [UInt8](repeating: 0, count: 256)
                    while read(wakeRead, &drain, drain.count) > 0 {}
                } else {
                    readAll(fd)
                }
            }
            let (jobs, closed) = lock.withLock {
                defer {
                    incoming.removeAll(keepingCapacity: true)
                    closing.removeAll()
                }
                (activeLoss, activeCut) = (loss, cutOff)
                loopStats.dropped += dropped
                dropped = 0
                return (incoming, closing)
            }
            for fd in closed { shut(fd) }
            for job in jobs { begin(job) }
            let later = Self.now()
            while let (fd, generation) = timers.popDue(now: later) {
                guard var flight = open[fd], flight.generation == generation else { continue }
                let step = flight.exchange.timeout(now: Self.wrapped(later), random: random.next())
                advance(fd, &flight, step)
            }
        }
    }

    private func begin(_ job: Job) {
        let fd = job.endpoint.fd
        guard open[fd] == nil else {
            job.reply(.failure(.protocolViolation("a second request on a device's busy socket")))
            return
        }
        let template = CoAPMessage.request(
            job.request.resource.method, job.request.resource.path, query: job.request.queryText)
        let id = lastMessageID[fd] ?? UInt16.random(in: .min ... .max, using: &random)
        var flight = InFlight(
            exchange: CoAPRequestExchange(
                request: template, payload: job.request.payload, contentFormat: ContentFormat.chainPayload,
                body: [UInt8](), configuration: configuration.exchange, lastMessageID: id),
            template: template, job: job, generation: 0)
        let step = flight.exchange.start(now: Self.wrapped(Self.now()), random: random.next())
        advance(fd, &flight, step)
    }

    private func readAll(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: configuration.maxMessageSize + 1)
        while true {
            let n = buffer.withUnsafeMutableBytes {
                recv(fd, $0.baseAddress, $0.count, Int32(MSG_TRUNC | MSG_DONTWAIT))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN, var flight = open[fd] {
                    // ECONNREFUSED: nothing listens on the gateway's port.
                    finish(fd, &flight, .failure(.socket(call: "recv", errno: errno)))
                }
                return
            }
            guard n <= configuration.maxMessageSize, !lost(fd), var flight = open[fd] else { continue }
            let step = flight.exchange.received(
                Array(buffer[..<n]), now: Self.wrapped(Self.now()), random: random.next())
            advance(fd, &flight, step)
        }
    }

    /// Sends what `step` asks, then ends the exchange or sets its timer.
    private func advance(_ fd: Int32, _ flight: inout InFlight, _ step: CoAPRequestExchange<[UInt8]>.Step) {
        if let reply = step.reply { _ = transmit(fd, reply) }
        var failure: DeviceClientError?
        if let request = step.request, !transmit(fd, request) { failure = .socket(call: "send", errno: errno) }
        let result: Result<DeviceAnswer, DeviceClientError>
        switch step.status {
        case .waiting(let deadline) where failure == nil:
            let now = Self.now()
            generation += 1
            flight.generation = generation
            open[fd] = flight
            timers.push(
                at: now + UInt64(CoAPClock.remaining(until: deadline, now: Self.wrapped(now))), fd: fd,
                generation: generation)
            return
        case .done(let answer) where failure == nil:
            do {
                result = .success(
                    try flight.job.request.answer(
                        code: answer.code, body: flight.exchange.body, contentFormat: answer.contentFormat))
            } catch { result = .failure(error) }
        case .failed(let error):
            result = .failure(configuration.error(error, flight.template))
        default:
            result = .failure(failure ?? .reset)
        }
        finish(fd, &flight, result)
    }

    private func finish(_ fd: Int32, _ flight: inout InFlight, _ result: Result<DeviceAnswer, DeviceClientError>) {
        open[fd] = nil
        lastMessageID[fd] = flight.exchange.lastMessageID
        count(&flight)
        flight.job.reply(result)
    }

    private func count(_ flight: inout InFlight) {
        let (requests, retransmissions) = (flight.exchange.requests, flight.exchange.retransmissions)
        lock.withLock {
            loopStats.requests += requests
            loopStats.retransmissions += retransmissions
            loopStats.exchanges += 1
        }
    }

    private func shut(_ fd: Int32) {
        if var flight = open.removeValue(forKey: fd) {
            count(&flight)
            flight.job.reply(.failure(.socket(call: "close", errno: EBADF)))
        }
        lastMessageID[fd] = nil
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
        Glibc.close(fd)
    }

    private func transmit(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        if lost(fd) { return true }
        return bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) } >= 0
    }

    /// Monotonic milliseconds (not wrapping: the timer heap orders by them).
    private static func now() -> UInt64 { deviceClockMillis() }

    /// The exchange's clock: monotonic milliseconds, wrapping as ``CoAPClock`` expects.
    private static func wrapped(_ millis: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: millis) }
}

/// Deadlines of the exchanges in flight, earliest first. An entry whose exchange moved on (another generation)
/// is skipped when it comes due instead of being searched for and removed.
private struct TimerHeap {
    private var entries: [(at: UInt64, fd: Int32, generation: Int)] = []

    var next: UInt64? { entries.first?.at }

    mutating func push(at: UInt64, fd: Int32, generation: Int) {
        entries.append((at, fd, generation))
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard entries[parent].at > entries[i].at else { break }
            entries.swapAt(parent, i)
            i = parent
        }
    }

    mutating func popDue(now: UInt64) -> (Int32, Int)? {
        guard let first = entries.first, first.at <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var i = 0
            while true {
                let (l, r) = (2 * i + 1, 2 * i + 2)
                var smallest = i
                if l < entries.count, entries[l].at < entries[smallest].at { smallest = l }
                if r < entries.count, entries[r].at < entries[smallest].at { smallest = r }
                guard smallest != i else { break }
                entries.swapAt(i, smallest)
                i = smallest
            }
        }
        return (first.fd, first.generation)
    }
}
