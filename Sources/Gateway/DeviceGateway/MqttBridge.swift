import DeviceProtocol
import AmarsCodec
import AmarsCrypto
import CMosquitto
import Chain
import Foundation
import Ledger
import Logging

/// The gateway's MQTT door: takes device transaction submits from a mosquitto broker, answers on the
/// device's receipts topic, relays commands to devices, and announces every new head (retained) and every
/// finished epoch's checkpoint (retained, one topic per epoch: see ``publishCheckpoints()``).
///
/// ## Threading
/// One thread of ours drives libmosquitto with its own poll loop over `mosquitto_loop_read`/`_write`/`_misc`
/// (see ``turn(timeoutMillis:)``; the library is in "threaded" mode with `mosquitto_threaded_set`, so no
/// other call ever writes to the socket). libmosquitto's callbacks run on
/// that thread, and so does all chain work (admission, inbox, receipts), so submits are handled strictly in
/// arrival order and never race the receipt bookkeeping. Only a batch's signature checks leave it: they run on
/// every core while the thread reads the next batch, and the thread admits the batch when they are done
/// (``flushStaged()``). ``headChanged(_:)``, ``sendCommand(device:payload:)``
/// and ``stats`` may be called from any thread: `mosquitto_publish` is thread-safe and only queues.
///
/// ## QoS 1 guarantee (read from eclipse/mosquitto `lib/handle_publish.c`, `lib/packet_mosq.c`, v2.0.11)
/// For an incoming QoS 1 PUBLISH the client library *queues* the PUBACK before it calls the message
/// callback. Whether the PUBACK then hits the wire before the callback runs depends on the threading mode:
/// unthreaded (plain `mosquitto_loop`), `packet__queue` writes it at once, i.e. before the callback — an
/// at-most-once hand-off to the application. In threaded mode (`mosquitto_loop_start`, or
/// `mosquitto_threaded_set(true)` as here) the queue call only wakes the loop, and the only writer is the loop
/// thread, which is busy inside our callback; the PUBACK is written on a later turn of the loop, after the
/// callback has returned — but `mosquitto_loop` writes in the same call that read, so we never use it: our
/// loop reads every available packet (the callback only stages each submit in the inbox's open batch),
/// commits the batch (one fsync for the turn), and only then calls `mosquitto_loop_write`. So:
/// - crash before the inbox write is synced: no PUBACK was sent; the broker keeps the message in our persistent
///   session (clean session off, fixed client id) and delivers it again (DUP) on reconnect;
/// - crash after it: the inbox replays it on start-up; the broker may also redeliver it, which is harmless
///   because the transaction id and the sender's nonce make a second submit a no-op.
/// So every QoS 1 submit acknowledged by the gateway is at least once in the inbox, and at most once on chain.
/// This rests on libmosquitto's implementation, not on a documented contract, so
/// `testASubmitIsNotAcknowledgedBeforeItIsPersisted` and `testABatchIsNotAcknowledgedBeforeItsCommit`
/// re-check it end to end (the latter fails if the loop writes before the commit).
/// Messages the broker has acknowledged to the device survive a broker restart only as far as the broker's
/// own persistence goes: a clean stop saves everything; after a crash, ``BrokerProcess``'s save-on-change kept
/// submits queued for an absent gateway in our tests, but a message in flight at that instant may be lost.
public final class MqttBridge: @unchecked Sendable {
    // @unchecked: the libmosquitto handle is used per its thread-safety rules (see above); every mutable
    // field is either confined to the loop thread (marked) or guarded by `lock`.

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Stable across restarts, so the broker recognises our persistent session and queues QoS 1 submits while
        /// we are away; unique per gateway and unguessable (``MqttClientID``, which `amarsd` uses).
        public var clientID: String
        public var keepAliveSeconds: Int32
        public var inboxPath: String
        public var rateLimit: MqttRateLimiter.Limits
        public var backoff: MqttBackoff.Policy
        /// The longest one loop turn waits for traffic; also how late a new head is noticed by polling.
        public var loopTimeoutMillis: Int32
        /// The gateway's login: a locked-down broker lets only it publish the chain's topics.
        public var credentials: MqttCredentials?

        public init(
            host: String = "127.0.0.1", port: Int = 1883, clientID: String = "amars-gateway",
            keepAliveSeconds: Int32 = 30, inboxPath: String, rateLimit: MqttRateLimiter.Limits = .init(),
            backoff: MqttBackoff.Policy = .init(), loopTimeoutMillis: Int32 = 100, credentials: MqttCredentials? = nil
        ) {
            self.credentials = credentials
            self.host = host
            self.port = port
            self.clientID = clientID
            self.keepAliveSeconds = keepAliveSeconds
            self.inboxPath = inboxPath
            self.rateLimit = rateLimit
            self.backoff = backoff
            self.loopTimeoutMillis = loopTimeoutMillis
        }
    }

    /// Counters for operators and tests.
    public struct Stats: Sendable, Equatable {
        /// Submits the chain admitted (including ones it already had).
        public var accepted = 0
        /// Final receipts published.
        public var finalized = 0
        /// Refusals by the chain, by code (`nonceGap`, `badSignature`, `dropped`…).
        public var refused: [String: Int] = [:]
        /// Messages stopped by the bridge itself before the chain saw them, by reason.
        public var dropped: [MqttDropReason: Int] = [:]
        /// Inbox entries re-submitted at start-up.
        public var replayed = 0
        /// Successful CONNACKs (the first connect and every reconnect).
        public var connects = 0
        public var headsPublished = 0
        /// Retained checkpoint messages queued (re-publications after a reconnect included).
        public var checkpointsPublished = 0
        public var commandsSent = 0
        /// Channel messages kept by the channel door and passed to their recipients.
        public var channelMessagesRelayed = 0
        /// QoS 1 messages of ours (receipts, heads, checkpoints, commands, channel messages) queued for the broker,
        /// and those it has acknowledged: a gap that only grows means the broker stopped taking them.
        public var publishesQueued = 0
        public var publishesAcknowledged = 0
        public var publishesUnacknowledged: Int { publishesQueued - publishesAcknowledged }
    }

    public enum BridgeError: Error, CustomStringConvertible {
        case libraryInit
        case inbox(MqttInboxError)
        case mosquitto(Int32)
        case alreadyStarted

        public var description: String {
            switch self {
            case .libraryInit: "libmosquitto failed to initialise"
            case .inbox(let e): "\(e)"
            case .mosquitto(let rc): "libmosquitto: \(String(cString: mosquitto_strerror(rc)))"
            case .alreadyStarted: "the MQTT bridge is already running"
            }
        }
    }

    /// `mosquitto_lib_init` must run once per process before any client exists; a lazy static runs it once.
    private static let libraryReady: Bool = mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue

    public let configuration: Configuration
    public let inbox: MqttInbox
    private let node: ChainNode
    private let channels: ChannelDoor?
    private let handle: OpaquePointer
    private let logger: Logger
    private let clock: @Sendable () -> UInt64

    private let lock = NSLock()
    private var statsValue = Stats()
    /// Under a lock of their own: ``rawPublish(_:_:retain:)`` also runs with `lock` held (``publishHead(_:force:)``).
    private let publishLock = NSLock()
    private var publishCounts = (queued: 0, acknowledged: 0)
    private var connectedValue = false
    private var subscribedValue = false
    private var started = false
    private var stopping = false
    /// Height and hash of the last head we published; guarded by `lock` so publishes stay in height order.
    private var lastPublishedHead: BlockHeader?

    // Loop-thread state.
    private var random: MqttAnyRandom
    private var backoff: MqttBackoff
    private var limiter: MqttRateLimiter
    private var channelLimiter: MqttRateLimiter
    /// Submits in the mempool that we owe a final receipt, in arrival order.
    private var pending: [(id: Bytes32, device: Address)] = []
    private var pendingIDs: Set<Bytes32> = []
    private var lastSettledHead: Bytes32?
    /// Every block up to this height has been matched against `pending`.
    private var settledHeight: UInt64 = 0
    /// What this loop turn read, in arrival order: submits staged in the inbox's open batch and answers to send
    /// once the batch is durable. See ``flushStaged()``.
    private var staged: [Staged] = []
    /// The last durable batch, its signatures being checked on ``verifier`` while this thread reads the next one;
    /// admitted (in arrival order, on this thread) by ``admitChecked(wait:)``.
    private var checking: Checking?
    /// Runs the batches' signature checks (on every core, see `ParallelVerifier`), one batch at a time.
    private let verifier = DispatchQueue(label: "amars.mqtt.verify")
    /// Test seam: runs on the loop thread just before a turn's inbox batch is committed, with the number of
    /// submits in it; returning false drops the batch there, as a crash at that instant would (nothing read
    /// in that turn is acknowledged, and the connection is cut). Set it before ``start()`` only.
    var beforeCommitHook: (@Sendable (Int) -> Bool)?
    /// Test seam: runs on the loop thread just before a submit is written to the inbox; returning false drops
    /// the submit there, as a crash at that instant would. Set it before ``start()`` only.
    var beforePersistHook: (@Sendable (Bytes32) -> Bool)?

    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// A self-pipe the loop polls besides the socket, so a publish from another thread or ``stop()`` ends the
    /// wait at once. (libmosquitto's own wake-up pipe is private to `mosquitto_loop`, which we do not use.)
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// Messages read per turn at most before the batch is committed and acknowledged.
    private static let maxBatch = 4096
    /// Checkpoints published per loop turn at most: a gateway that starts on a long chain catches up over
    /// several turns, so submits and receipts are not held up behind thousands of publishes.
    private static let checkpointBatch = 16
    /// Loop thread: every epoch below this one has its checkpoint published (retained) on the current broker.
    private var nextCheckpointEpoch: UInt64 = 0
    /// Loop thread: a new head, a (re)connect or an unfinished catch-up may have left checkpoints to publish.
    private var checkpointsDue = true

    private enum Staged {
        case submit(id: Bytes32, device: Address, raw: [UInt8])
        case answer(device: Address, message: MqttReceiptMessage)

        var raw: [UInt8]? {
            if case .submit(_, _, let raw) = self { raw } else { nil }
        }
    }

    /// A turn's batch on its way to admission: `results` is written once on ``verifier`` (a batch with nothing to
    /// check is done at once) and read on the loop thread only after `done` was signalled.
    private final class Checking: @unchecked Sendable {
        let batch: [Staged]
        var results: [Result<VerifiedTransaction, TransactionError>] = []
        let done = DispatchSemaphore(value: 0)

        init(_ batch: [Staged]) { self.batch = batch }
    }

    /// - Parameters:
    ///   - clock: monotonic milliseconds, for the rate limiter; injected so tests control time.
    ///   - random: jitter for reconnect backoff; injected so a test run is reproducible.
    /// `channels`: the channel door whose senders post on `amars/v1/chan-out/{sender}`; the bridge passes what it
    /// keeps to the recipient's `amars/v1/chan/{recipient}`. Nil: channel messages are not relayed.
    public init(
        node: ChainNode, configuration: Configuration, channels: ChannelDoor? = nil,
        clock: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds / 1_000_000 },
        random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        logger: Logger = Logger(label: "amars.mqtt")
    ) throws(BridgeError) {
        guard Self.libraryReady else { throw .libraryInit }
        do { inbox = try MqttInbox(path: configuration.inboxPath) } catch { throw .inbox(error) }
        self.node = node
        self.channels = channels
        self.configuration = configuration
        self.clock = clock
        self.random = MqttAnyRandom(random)
        self.logger = logger
        self.backoff = MqttBackoff(policy: configuration.backoff)
        self.limiter = MqttRateLimiter(limits: configuration.rateLimit)
        self.channelLimiter = MqttRateLimiter(limits: configuration.rateLimit)
        // clean_session = false: the broker keeps our subscription and queues QoS 1 messages while we are away.
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .libraryInit }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        guard let h = mosquitto_new(configuration.clientID, false, nil) else {
            close(fds[0])
            close(fds[1])
            throw .libraryInit
        }
        handle = h
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_threaded_set(handle, true)
        if let login = configuration.credentials {
            _ = mosquitto_username_pw_set(handle, login.username, login.password)
        }
        // The flags variant tells whether the broker still had our session; if not it lost its state, and
        // with it probably the retained checkpoints, which are then published again.
        mosquitto_connect_with_flags_callback_set(handle) { _, userdata, rc, flags in
            MqttBridge.from(userdata)?.onConnect(rc, sessionPresent: flags & 1 != 0)
        }
        mosquitto_disconnect_callback_set(handle) { _, userdata, rc in
            MqttBridge.from(userdata)?.onDisconnect(rc)
        }
        // Called on the PUBACK of each of our QoS 1 messages (libmosquitto re-sends one in flight across a
        // reconnect, so each is acknowledged once).
        mosquitto_publish_callback_set(handle) { _, userdata, _ in
            MqttBridge.from(userdata)?.onPublished()
        }
        mosquitto_subscribe_callback_set(handle) { _, userdata, _, _, _ in
            MqttBridge.from(userdata)?.onSubscribed()
        }
        mosquitto_message_callback_set(handle) { _, userdata, message in
            guard let message else { return }
            MqttBridge.from(userdata)?.onMessage(message.pointee)
        }
        mosquitto_log_callback_set(handle) { _, userdata, level, text in
            guard let text, level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0 else { return }
            MqttBridge.from(userdata)?.logger.debug("libmosquitto: \(String(cString: text))")
        }
    }

    deinit {
        mosquitto_destroy(handle)
        close(wakeRead)
        close(wakeWrite)
    }

    /// Ends the loop's current wait (any thread).
    private func poke() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// The loop thread holds a strong reference while it runs, so the object outlives every callback.
    private static func from(_ userdata: UnsafeMutableRawPointer?) -> MqttBridge? {
        userdata.map { Unmanaged<MqttBridge>.fromOpaque($0).takeUnretainedValue() }
    }

    public var stats: Stats {
        var s = lock.withLock { statsValue }
        (s.publishesQueued, s.publishesAcknowledged) = publishLock.withLock { publishCounts }
        return s
    }
    public var isConnected: Bool { lock.withLock { connectedValue } }
    /// Connected and the broker has acknowledged our subscription: from here on no submit can miss us.
    public var isReady: Bool { lock.withLock { connectedValue && subscribedValue } }

    // MARK: lifecycle

    /// Starts the loop thread: it first re-submits the inbox, then connects (retrying with backoff forever).
    public func start() throws(BridgeError) {
        lock.lock()
        let again = started
        started = true
        lock.unlock()
        guard !again else { throw .alreadyStarted }
        let thread = Thread { [self] in
            // Named from inside: Foundation on Linux names only a thread that is already running. `top -H` and
            // the device-link bench tell this thread's CPU from the signature checks' by it.
            Thread.current.name = "amars-mqtt"
            run()
            finished.signal()
        }
        thread.start()
    }

    /// Flushes what is queued (briefly), disconnects cleanly and joins the loop thread. The broker keeps the
    /// session, so submits published from now on wait in the broker for the next start.
    public func stop() {
        let wasRunning = lock.withLock {
            defer { stopping = true }
            return started && !stopping
        }
        guard wasRunning else { return }
        wake.signal()
        poke()
        finished.wait()
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func run() {
        settledHeight = node.head.height
        replayInbox()
        var socketOpen = false
        var everConnected = false
        while !isStopping {
            if !socketOpen {
                let rc =
                    everConnected
                    ? mosquitto_reconnect(handle)
                    : mosquitto_connect(
                        handle, configuration.host, Int32(configuration.port), configuration.keepAliveSeconds)
                guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                    logger.debug("mqtt connect failed: \(String(cString: mosquitto_strerror(rc)))")
                    pause()
                    continue
                }
                socketOpen = true
                everConnected = true
            }
            let rc = turn(timeoutMillis: configuration.loopTimeoutMillis)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                socketOpen = false
                // The batch being checked is durable: it need not wait for the broker to come back.
                admitChecked(wait: true)
                onDisconnect(rc)
                logger.info("mqtt connection lost: \(String(cString: mosquitto_strerror(rc)))")
                pause()
                continue
            }
            admitChecked(wait: false)
            settleHead()
        }
        // What was acknowledged is durable either way; admitting it now spares the next start a replay.
        admitChecked(wait: true)
        if socketOpen {
            shutDownConnection()
            admitChecked(wait: true)
        }
        lock.withLock { connectedValue = false }
    }

    /// Waits one backoff step, or less if ``stop()`` is called.
    private func pause() {
        let millis = backoff.next(using: &random)
        _ = wake.wait(timeout: .now() + .milliseconds(Int(millis)))
    }

    private func shutDownConnection() {
        let deadline = DispatchTime.now() + .seconds(1)
        // Let queued receipts leave before we say goodbye; the wait is bounded.
        while mosquitto_want_write(handle), DispatchTime.now() < deadline {
            guard turn(timeoutMillis: 50) == MOSQ_ERR_SUCCESS.rawValue else { return }
        }
        mosquitto_disconnect(handle)
        // In threaded mode DISCONNECT is only queued; turn the loop until the library closes the socket.
        while DispatchTime.now() < deadline {
            guard turn(timeoutMillis: 50) == MOSQ_ERR_SUCCESS.rawValue else { return }
        }
    }

    /// One turn of our own event loop, in place of `mosquitto_loop`. That function reads and then, in the same
    /// call, writes whatever is queued, PUBACKs of the packets it just read included (lib/loop.c: the socket
    /// is in the write set whenever packets were queued before its `select`, as under steady traffic). A batch
    /// committed after `mosquitto_loop` returned could therefore be acknowledged before it is durable. Driving
    /// the library's pieces ourselves puts the commit between them:
    /// 1. wait for the socket (readable, or writable if something is queued) or our wake-up pipe;
    /// 2. read every packet available (`mosquitto_loop_read`, up to ``maxBatch`` messages); the message
    ///    callback only checks and stages (``handleSubmit(topic:payload:size:)``), each PUBACK is queued;
    /// 3. commit the staged inbox batch: one fsync for all of them;
    /// 4. write (`mosquitto_loop_write`): the PUBACKs leave only now; then verify and admit the batch and
    ///    write its receipts; 5. keepalive (`mosquitto_loop_misc`).
    /// In threaded mode nothing but `mosquitto_loop_write` (or `mosquitto_loop`, which we never call)
    /// writes the socket: `packet__queue` only appends and pokes the library's pipe (lib/packet_mosq.c).
    private func turn(timeoutMillis: Int32) -> Int32 {
        let sock = mosquitto_socket(handle)
        guard sock >= 0 else { return MOSQ_ERR_NO_CONN.rawValue }
        var fds = [
            pollfd(fd: sock, events: Int16(POLLIN) | (mosquitto_want_write(handle) ? Int16(POLLOUT) : 0), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        let n = poll(&fds, 2, timeoutMillis)
        if n < 0, errno != EINTR { return MOSQ_ERR_ERRNO.rawValue }
        if fds[1].revents != 0 {
            var sink = [UInt8](repeating: 0, count: 256)
            while read(wakeRead, &sink, sink.count) > 0 {}
        }
        if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            var more = true
            while more {
                let rc = mosquitto_loop_read(handle, 1)
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    // The library closed the socket; whatever it queued for it is discarded on reconnect,
                    // so the batch is unacknowledged and the broker delivers it again. Keeping it is harmless.
                    flushStaged()
                    return rc
                }
                more = staged.count < Self.maxBatch && readable(sock)
            }
        }
        if !flushStaged() {
            // A simulated crash before the commit: make sure no queued PUBACK can still leave.
            shutdown(sock, Int32(SHUT_RDWR))
            return MOSQ_ERR_CONN_LOST.rawValue
        }
        if mosquitto_want_write(handle) {
            let rc = mosquitto_loop_write(handle, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue { return rc }
        }
        return mosquitto_loop_misc(handle)
    }

    private func readable(_ sock: Int32) -> Bool {
        var fd = pollfd(fd: sock, events: Int16(POLLIN), revents: 0)
        return poll(&fd, 1, 0) > 0 && fd.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
    }

    // MARK: callbacks (loop thread)

    private func onConnect(_ rc: Int32, sessionPresent: Bool) {
        guard rc == 0 else {
            logger.warning("mqtt broker refused the connection: \(String(cString: mosquitto_connack_string(rc)))")
            return
        }
        backoff.reset()
        lock.withLock {
            connectedValue = true
            statsValue.connects += 1
        }
        let sub = mosquitto_subscribe(handle, nil, MqttTopics.submitFilter, 1)
        if sub != MOSQ_ERR_SUCCESS.rawValue {
            logger.error("mqtt subscribe failed: \(String(cString: mosquitto_strerror(sub)))")
        }
        if channels != nil {
            let rc = mosquitto_subscribe(handle, nil, MqttTopics.channelPostFilter, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                logger.error("mqtt subscribe to channel posts failed: \(String(cString: mosquitto_strerror(rc)))")
            }
        }
        // The broker may have lost the retained head (restarted without persistence): publish it again.
        publishHead(node.head, force: true)
        // Checkpoints are published after this callback (``settleHead()``); a broker without our session may
        // have lost them all, one that kept it still holds the ones we published before.
        if !sessionPresent { nextCheckpointEpoch = 0 }
        checkpointsDue = true
        logger.info("mqtt connected to \(configuration.host):\(configuration.port)")
    }

    private func onDisconnect(_ rc: Int32) {
        lock.withLock {
            connectedValue = false
            subscribedValue = false
        }
    }

    private func onPublished() {
        publishLock.withLock { publishCounts.acknowledged += 1 }
    }

    private func onSubscribed() {
        lock.withLock { subscribedValue = true }
    }

    private func onMessage(_ message: mosquitto_message) {
        guard let topicPointer = message.topic else { return count(.badTopic) }
        let topic = String(cString: topicPointer)
        let size = Int(message.payloadlen)
        // Do not copy what cannot be a transaction: the broker allows payloads of up to 256 MB.
        var payload: [UInt8] = []
        if size > 0, size <= Caps.transactionBytes, let base = message.payload {
            payload = Array(UnsafeRawBufferPointer(start: base, count: size))
        }
        if case .success(let sender) = MqttTopics.parseChannelPost(topic) {
            return handleChannelPost(sender: sender, payload: payload, size: size)
        }
        handleSubmit(topic: topic, payload: payload, size: size)
    }

    /// A channel message on its sender's topic: kept by the channel door if it is the open channel's sender's,
    /// then passed to the recipient's topic. Rate-limited with the sender's submits.
    func handleChannelPost(sender: Address, payload: [UInt8], size: Int) {
        guard let channels, size > 0, size <= MailboxPayload.maxChannelMessageBytes else {
            return count(.channelRefused)
        }
        // Its own budget: garbage published on someone's channel topic (anyone may, on the anonymous listener)
        // does not spend that device's transaction submits.
        guard channelLimiter.allow(sender, nowMillis: clock()) else { return count(.rateLimited) }
        let kept: (channel: Bytes32, recipient: Address, sequence: UInt64)
        // The topic must name the channel's sender (on the TLS listener a device can write only its own).
        do { kept = try channels.post(payload, from: sender) } catch {
            logger.debug("mqtt channel message from \(sender.bech32) refused: \(error.code)")
            return count(.channelRefused)
        }
        let entry = MailboxPayload.Entry(sequence: kept.sequence, message: payload)
        let rc = rawPublish(MqttTopics.channel(kept.recipient), entry.encoded, retain: false)
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            return logger.warning("mqtt channel message not queued: \(String(cString: mosquitto_strerror(rc)))")
        }
        lock.withLock { statsValue.channelMessagesRelayed += 1 }
    }

    // MARK: submits (loop thread)

    /// Validates and admits one submit. The order of checks puts the cheap ones first, so a flood costs
    /// little: topic, size, rate limit, decode, sender, then the (durable) inbox write and the signature check.
    func handleSubmit(topic: String, payload: [UInt8], size: Int) {
        let device: Address
        switch MqttTopics.parseSubmit(topic) {
        case .failure(let reason): return count(reason)
        case .success(let d): device = d
        }
        guard size > 0, size <= Caps.transactionBytes else { return reject(device, .zero, .badSize) }
        let tx = try? SignedTransaction(decoding: payload)
        let id = tx?.id ?? .zero
        guard limiter.allow(device, nowMillis: clock()) else { return reject(device, id, .rateLimited) }
        guard let tx else { return reject(device, .zero, .malformed) }
        // The key is not parsed here (a square root, on the one thread that reads the broker): a key that is not
        // one is refused as `invalidSenderKey` when the turn's signatures are checked on every core.
        guard Address(keyBytes: tx.body.sender) == device else { return reject(device, id, .senderMismatch) }
        // A redelivery of something already final is stored and checked like any submit, and answered with its
        // receipt when the chain refuses it (``submit(id:device:checked:)``): looking every submit up in the
        // chain's index here, on the one thread that reads the broker, would cost all of them for the rare one.
        if let hook = beforePersistHook, !hook(id) { return }
        do {
            try inbox.stage(id: id, device: device, raw: payload)
        } catch {
            logger.error("mqtt inbox write failed: \(error)")
            return reject(device, id, .inboxUnavailable)
        }
        staged.append(.submit(id: id, device: device, raw: payload))
    }

    /// The second half of a turn's submits: commits the inbox batch (one fsync), lets libmosquitto write the
    /// PUBACKs (they were queued while reading and could not leave earlier, see ``turn(timeoutMillis:)``), then
    /// hands the batch's signature checks to ``verifier``; ``admitChecked(wait:)`` admits each submit and answers
    /// every device, in arrival order, once they are done. The checks run after the PUBACKs and beside this
    /// thread, so the broker sends the next batch and this thread reads it while the cores check this one.
    /// Returns false only when ``beforeCommitHook`` simulated a crash before the commit.
    @discardableResult
    func flushStaged() -> Bool {
        guard !staged.isEmpty || inbox.hasStaged else { return true }
        let batch = staged
        staged.removeAll(keepingCapacity: true)
        if let hook = beforeCommitHook {
            let submits = batch.reduce(0) { n, s in if case .submit = s { n + 1 } else { n } }
            if !hook(submits) {
                inbox.rollback()
                return false
            }
        }
        var durable = true
        do { try inbox.commit() } catch {
            logger.error("mqtt inbox commit failed: \(error)")
            durable = false
        }
        if durable, mosquitto_want_write(handle), mosquitto_socket(handle) >= 0 {
            _ = mosquitto_loop_write(handle, 1)
        }
        // One batch is checked at a time, so admission stays in arrival order: the one before goes in first.
        admitChecked(wait: true)
        let job = Checking(batch)
        checking = job
        let raws = durable ? batch.compactMap(\.raw) : []
        // Nothing to check (only answers, or nothing durable): it is admitted at the end of this turn.
        guard !raws.isEmpty else {
            job.done.signal()
            return true
        }
        verifier.async { [self] in
            job.results = node.verify(batch: raws)
            job.done.signal()
            poke()
        }
        return true
    }

    /// Admits the batch whose checks ``flushStaged()`` started, if they are done (or, with `wait`, once they
    /// are), and answers its devices, all in arrival order. A submit without a result was not durable.
    func admitChecked(wait: Bool) {
        guard let job = checking else { return }
        if wait {
            job.done.wait()
        } else if job.done.wait(timeout: .now()) == .timedOut {
            return
        }
        checking = nil
        var checked = job.results.makeIterator()
        for item in job.batch {
            switch item {
            case .answer(let device, let message):
                publish(device, message)
            case .submit(let id, let device, _):
                if let result = checked.next() {
                    submit(id: id, device: device, checked: result)
                } else {
                    refuse(device, id, .inboxUnavailable)
                }
            }
        }
        // Refusals staged their removals: one more commit, only in a turn that had any.
        do { try inbox.commit() } catch { logger.warning("mqtt inbox cleanup failed: \(error)") }
    }

    /// Hands a durable submit to the chain and answers the device. A refusal is final for this payload, so
    /// its inbox entry goes.
    private func submit(id: Bytes32, device: Address, checked: Result<VerifiedTransaction, TransactionError>) {
        do throws(TransactionError) {
            _ = try node.submit(checked.get(), fromDevice: true)
        } catch let error {
            if error != .alreadyKnown {
                try? inbox.stageRemoval(id: id)
                // A redelivery of something already final (its nonce is spent): the device gets the receipt.
                if case .included(let height, let position, let receipt) = try? node.status(of: id) {
                    return publish(device, .final(receipt: receipt, height: height, position: UInt64(position)))
                }
                return refuse(device, id, code: MqttRefusalCode.code(for: error))
            }
        }
        if pendingIDs.insert(id).inserted { pending.append((id, device)) }
        lock.withLock { statsValue.accepted += 1 }
        publish(device, .accepted(id: id))
    }

    /// Start-up: everything the inbox holds was accepted by an earlier run and may have been lost with its
    /// mempool. Final ones get their receipt and leave; the rest go to the chain again in arrival order.
    private func replayInbox() {
        let entries: [MqttInbox.Entry]
        do { entries = try inbox.entries() } catch {
            logger.error("mqtt inbox unreadable, nothing replayed: \(error)")
            return
        }
        var unsettled: [MqttInbox.Entry] = []
        for entry in entries {
            if case .included(let height, let position, let receipt) = try? node.status(of: entry.id) {
                publish(entry.device, .final(receipt: receipt, height: height, position: UInt64(position)))
                try? inbox.remove(id: entry.id)
                lock.withLock { statsValue.finalized += 1 }
            } else {
                unsettled.append(entry)
            }
        }
        // Only what is not final yet is checked, on every core, then submitted in arrival order.
        for (entry, result) in zip(unsettled, node.verify(batch: unsettled.map(\.raw))) {
            lock.withLock { statsValue.replayed += 1 }
            submit(id: entry.id, device: entry.device, checked: result)
        }
        try? inbox.commit()
        if !entries.isEmpty { logger.info("mqtt inbox: \(entries.count) submits replayed") }
    }

    /// After a new head: publish it (if nobody did) and settle every pending submit the chain has decided.
    private func settleHead() {
        let head = node.head
        publishHead(head, force: false)
        let hash = head.hash
        if hash != lastSettledHead { checkpointsDue = true }
        publishCheckpoints()
        guard hash != lastSettledHead else { return }
        lastSettledHead = hash
        guard !pending.isEmpty else {
            settledHeight = max(settledHeight, head.height)
            return
        }
        // Each new block is loaded and decoded once and its receipts indexed: asking `status(of:)` for every
        // pending submit would decode the whole block once per transaction in it.
        var included: [Bytes32: (height: UInt64, position: Int, receipt: Receipt)] = [:]
        func index(through height: UInt64) {
            while settledHeight < height {
                let h = settledHeight + 1
                guard let stored = try? node.block(at: h) else { return }
                for (position, receipt) in stored.receipts.enumerated() {
                    included[receipt.transactionID] = (h, position, receipt)
                }
                settledHeight = h
            }
        }
        index(through: head.height)
        var still: [(id: Bytes32, device: Address)] = []
        var finalized = 0
        for entry in pending {
            var status: ChainNode.TransactionStatus?
            if let hit = included[entry.id] {
                status = .included(height: hit.height, position: hit.position, receipt: hit.receipt)
            } else {
                // In the mempool (cheap to ask), gone, or in a block committed since we read the head (or
                // before the bridge started): the node knows.
                status = try? node.status(of: entry.id)
                if case .included(let height, _, _) = status, height > settledHeight { index(through: height) }
            }
            switch status {
            case .included(let height, let position, let receipt):
                publish(entry.device, .final(receipt: receipt, height: height, position: UInt64(position)))
                try? inbox.stageRemoval(id: entry.id)
                pendingIDs.remove(entry.id)
                finalized += 1
            case .unknown, .refused:
                // Evicted from the mempool without inclusion: tell the device, forget it.
                refuse(entry.device, entry.id, code: MqttRefusalCode.dropped)
                try? inbox.stageRemoval(id: entry.id)
                pendingIDs.remove(entry.id)
            case .pending, nil:
                still.append(entry)
            }
        }
        pending = still
        // One commit (one fsync) for all the removals; losing them to a crash would only cost a replay.
        try? inbox.commit()
        if finalized > 0 { lock.withLock { statsValue.finalized += finalized } }
    }

    /// Publishes, retained at QoS 1 on `amars/v1/checkpoints/{epoch}`, the checkpoints of finished epochs not yet
    /// published on this broker, at most ``checkpointBatch`` per turn (loop thread). Runs when the head changed
    /// (a head that is an epoch's last block, `nextCommitteeHash != nil`, makes a new one) and after a connect;
    /// the node is asked from the next unpublished epoch, so heads skipped between two turns lose nothing.
    /// Re-publishing is harmless: a retained message replaces the one on its topic, and the bytes are the same.
    private func publishCheckpoints() {
        guard checkpointsDue, isConnected else { return }
        let batch: [Checkpoint]
        do { batch = try node.checkpoints(from: nextCheckpointEpoch, limit: Self.checkpointBatch) } catch {
            // Retried on the next head or connect, not every turn: a broken store would flood the log.
            logger.error("mqtt checkpoints unreadable from epoch \(nextCheckpointEpoch): \(error)")
            checkpointsDue = false
            return
        }
        var published = 0
        for checkpoint in batch {
            let rc = rawPublish(MqttTopics.checkpoint(epoch: nextCheckpointEpoch), checkpoint.encoded, retain: true)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                // Still due: the next turn tries again from this epoch.
                logger.warning("mqtt checkpoint not queued: \(String(cString: mosquitto_strerror(rc)))")
                break
            }
            nextCheckpointEpoch += 1
            published += 1
        }
        if published == batch.count { checkpointsDue = batch.count == Self.checkpointBatch }
        if published > 0 {
            lock.withLock { statsValue.checkpointsPublished += published }
            poke()
        }
    }

    // MARK: publishing (any thread)

    /// Announces a new head. Call it from the block producer or importer on any thread; the bridge also polls
    /// the node every loop turn, so a missed call only delays the announcement.
    public func headChanged(_ header: BlockHeader) {
        publishHead(header, force: false)
        poke()
    }

    /// Publishes `header` retained unless a head at least as high was already published. The check and the
    /// publish happen under one lock, so concurrent callers cannot leave an older head as the retained one.
    private func publishHead(_ header: BlockHeader, force: Bool) {
        lock.withLock {
            if !force, let last = lastPublishedHead, last.height >= header.height { return }
            let rc = rawPublish(MqttTopics.head, header.encoded, retain: true)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else { return }
            lastPublishedHead = header
            statsValue.headsPublished += 1
        }
    }

    /// Sends an opaque command to a device (QoS 1). Refused (`MOSQ_ERR_NO_CONN`) while the bridge is not
    /// connected; one in flight when the connection drops is sent again on reconnect, but lost if the gateway stops
    /// first, so commands that matter should be idempotent and re-sent by the caller.
    public func sendCommand(device: Address, payload: [UInt8]) throws(BridgeError) {
        let rc = rawPublish(MqttTopics.command(device), payload, retain: false)
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .mosquitto(rc) }
        poke()
        lock.withLock { statsValue.commandsSent += 1 }
    }

    private func publish(_ device: Address, _ message: MqttReceiptMessage) {
        let rc = rawPublish(MqttTopics.receipts(device), message.encoded, retain: false)
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            logger.warning("mqtt receipt not queued: \(String(cString: mosquitto_strerror(rc)))")
        }
    }

    private func rawPublish(_ topic: String, _ payload: [UInt8], retain: Bool) -> Int32 {
        // Counted before it is queued: called off the loop thread, the message can be sent and acknowledged
        // before `mosquitto_publish` returns here, and the gap must never read below zero.
        publishLock.withLock { publishCounts.queued += 1 }
        let rc = payload.withUnsafeBytes {
            mosquitto_publish(handle, nil, topic, Int32($0.count), $0.baseAddress, 1, retain)
        }
        if rc != MOSQ_ERR_SUCCESS.rawValue { publishLock.withLock { publishCounts.queued -= 1 } }
        return rc
    }

    private func count(_ reason: MqttDropReason) {
        lock.withLock { statsValue.dropped[reason, default: 0] += 1 }
    }

    private func refuse(_ device: Address, _ id: Bytes32, _ reason: MqttDropReason) {
        count(reason)
        publish(device, .refused(id: id, code: reason.rawValue))
    }

    /// A refusal decided while reading: counted now, sent with the turn's other answers, in arrival order.
    private func reject(_ device: Address, _ id: Bytes32, _ reason: MqttDropReason) {
        count(reason)
        staged.append(.answer(device: device, message: .refused(id: id, code: reason.rawValue)))
    }

    private func reject(_ device: Address, _ id: Bytes32, code: String) {
        lock.withLock { statsValue.refused[code, default: 0] += 1 }
        staged.append(.answer(device: device, message: .refused(id: id, code: code)))
    }

    private func refuse(_ device: Address, _ id: Bytes32, code: String) {
        lock.withLock { statsValue.refused[code, default: 0] += 1 }
        publish(device, .refused(id: id, code: code))
    }
}

/// Reconnect delays: exponential growth to a cap, with "equal jitter" (half fixed, half random) so that many
/// gateways cut off by one broker restart do not all knock again at the same instant, yet none retries at once.
public struct MqttBackoff: Sendable {
    public struct Policy: Sendable {
        public var initialMillis: UInt64
        public var maxMillis: UInt64

        public init(initialMillis: UInt64 = 100, maxMillis: UInt64 = 10_000) {
            self.initialMillis = max(1, initialMillis)
            self.maxMillis = max(self.initialMillis, maxMillis)
        }
    }

    public let policy: Policy
    public private(set) var attempt = 0

    public init(policy: Policy) { self.policy = policy }

    /// The ceiling of the next delay before jitter: initial · 2^attempt, capped.
    public var ceiling: UInt64 {
        let (value, overflow) = policy.initialMillis.multipliedReportingOverflow(by: 1 << UInt64(min(attempt, 62)))
        return overflow ? policy.maxMillis : min(value, policy.maxMillis)
    }

    /// The next delay in milliseconds, in [ceiling/2, ceiling].
    public mutating func next(using random: inout some RandomNumberGenerator) -> UInt64 {
        let top = ceiling
        attempt += 1
        let half = top / 2
        return half + UInt64.random(in: 0...(top - half), using: &random)
    }

    public mutating func reset() { attempt = 0 }
}

/// A token bucket per device: `burst` submits at once, refilled at `perSecond`. Time comes from the caller, so
/// tests run it on a fake clock.
public struct MqttRateLimiter: Sendable {
    public struct Limits: Sendable {
        public var burst: Double
        public var perSecond: Double
        /// Buckets kept at most; a flood of fresh addresses cannot grow memory without bound.
        public var maxDevices: Int

        public init(burst: Double = 20, perSecond: Double = 2, maxDevices: Int = 100_000) {
            self.burst = max(1, burst)
            self.perSecond = max(0, perSecond)
            self.maxDevices = max(1, maxDevices)
        }
    }

    public let limits: Limits
    private var buckets: [Address: (tokens: Double, at: UInt64)] = [:]

    public init(limits: Limits) { self.limits = limits }

    /// Takes one token from `device`'s bucket if it has one.
    public mutating func allow(_ device: Address, nowMillis: UInt64) -> Bool {
        var bucket = buckets[device] ?? (limits.burst, nowMillis)
        let elapsed = Double(nowMillis &- min(nowMillis, bucket.at)) / 1000
        bucket.tokens = min(limits.burst, bucket.tokens + elapsed * limits.perSecond)
        bucket.at = max(bucket.at, nowMillis)
        let allowed = bucket.tokens >= 1
        if allowed { bucket.tokens -= 1 }
        if buckets[device] == nil, buckets.count >= limits.maxDevices { evict(nowMillis: nowMillis) }
        buckets[device] = bucket
        return allowed
    }

    /// Drops buckets that have refilled completely (forgetting them changes nothing); if none has, drops all,
    /// which at worst grants each device one fresh burst.
    private mutating func evict(nowMillis: UInt64) {
        let full = buckets.filter { _, b in
            b.tokens + Double(nowMillis &- min(nowMillis, b.at)) / 1000 * limits.perSecond >= limits.burst
        }
        if full.isEmpty {
            buckets.removeAll(keepingCapacity: true)
        } else {
            for key in full.keys { buckets.removeValue(forKey: key) }
        }
    }
}

/// Type-erases the injected generator so the bridge can store it (only the loop thread touches it).
struct MqttAnyRandom: RandomNumberGenerator, Sendable {
    private var base: any RandomNumberGenerator & Sendable

    init(_ base: some RandomNumberGenerator & Sendable) { self.base = base }

    mutating func next() -> UInt64 { base.next() }
}
