import AmarsTestSupport
import DeviceProtocol
import XCTest

/// A CoAP server played by the test: every request datagram the client machine sends is decoded and handed to
/// `answer`, whose messages go back after `latency` milliseconds of virtual time. Datagrams can be lost in
/// either direction or delivered twice, by their index in order of sending, so a scenario says exactly which
/// packet the network eats.
final class ScriptedCoAPServer {
    /// Requests as received (after losses), in order; `answer` gets the request and its index here.
    private(set) var requests: [CoAPMessage] = []
    /// Empty ACKs and RSTs the client sent (to separate responses and strays).
    private(set) var clientReplies: [CoAPMessage] = []
    var answer: (CoAPMessage, Int) -> [CoAPMessage]
    /// Indices (in order of sending) of client request datagrams lost on the way.
    var lostRequests: Set<Int> = []
    /// Indices (in order of sending) of server datagrams lost on the way.
    var lostAnswers: Set<Int> = []
    /// Every server datagram is delivered twice.
    var duplicateAnswers = false
    var latency: UInt32 = 10
    private var requestDatagrams = 0
    private var answerDatagrams = 0
    /// Server datagrams on their way: arrival time and bytes.
    private(set) var inFlight: [(time: UInt32, bytes: [UInt8])] = []

    init(answer: @escaping (CoAPMessage, Int) -> [CoAPMessage]) {
        self.answer = answer
    }

    /// A datagram from the client at `now`.
    func receive(_ bytes: [UInt8], now: UInt32) {
        let m = try! CoAPMessage.decode(bytes)
        guard m.code.isRequest else { return clientReplies.append(m) }
        defer { requestDatagrams += 1 }
        guard !lostRequests.contains(requestDatagrams) else { return }
        requests.append(m)
        for reply in answer(m, requests.count - 1) { inject(reply.encode(), at: now &+ latency) }
    }

    /// Puts a server datagram on the wire (subject to losses and duplication).
    func inject(_ bytes: [UInt8], at time: UInt32) {
        defer { answerDatagrams += 1 }
        guard !lostAnswers.contains(answerDatagrams) else { return }
        inFlight.append((time, bytes))
        if duplicateAnswers { inFlight.append((time &+ 1, bytes)) }
    }

    /// The next datagram due by `deadline`, if any.
    func next(by deadline: UInt32) -> (time: UInt32, bytes: [UInt8])? {
        guard let first = inFlight.first, Int32(bitPattern: deadline &- first.time) >= 0 else { return nil }
        return inFlight.removeFirst()
    }

    /// Runs `exchange` to the end against this server, starting at `start` on a virtual clock; returns the
    /// final status and the clock then. `random` draws come from a fixed-seed generator.
    func run<Body: CoAPBodyStorage>(
        _ exchange: inout CoAPRequestExchange<Body>, start: UInt32 = 1000, seed: UInt64 = 1
    ) -> (status: CoAPStatus<CoAPRequestExchange<Body>.Response>, now: UInt32) {
        var rng = SplitMix64(seed: seed)
        var now = start
        var step = exchange.start(now: now, random: rng.next())
        for _ in 0..<10_000 {
            if let reply = step.reply { receive(reply, now: now) }
            if let request = step.request { receive(request, now: now) }
            guard case .waiting(let deadline) = step.status else { return (step.status, now) }
            if let datagram = next(by: deadline) {
                now = datagram.time
                step = exchange.received(datagram.bytes, now: now, random: rng.next())
            } else {
                now = deadline
                step = exchange.timeout(now: now, random: rng.next())
            }
        }
        XCTFail("the exchange did not finish")
        return (step.status, now)
    }
}

/// The answer a server piggybacks on the ACK of `request`.
func piggybacked(
    _ request: CoAPMessage, _ code: CoAPCode, _ options: [CoAPOption] = [], payload: [UInt8] = []
) -> CoAPMessage {
    request.acknowledgement(code: code, options: options, payload: payload)
}

/// A GET resource served block-wise the way RFC 7959 describes: block `n` of `body()` at the smaller of the
/// asked and the server's SZX, with Size2 and an ETag derived from the body's length and first bytes.
func blockwiseResource(szx serverSZX: UInt8, body: @escaping (Int) -> [UInt8]) -> (CoAPMessage, Int) -> [CoAPMessage] {
    { request, index in
        let asked = request.option(.block2).map { try! BlockOption(option: $0) }
        let szx = BlockOption.negotiatedSZX(requested: asked?.szx, preferred: serverSZX)
        let representation = body(index)
        if asked == nil && representation.count <= 16 << Int(szx) {
            return [
                piggybacked(request, .content, [CoAPOption(number: .contentFormat, uint: 42)], payload: representation)
            ]
        }
        let slice = try! BlockOption.block2(asked?.number ?? 0, of: representation, szx: szx)
        let tag = [UInt8(truncatingIfNeeded: representation.count)] + representation.prefix(2)
        return [
            piggybacked(
                request, .content,
                [
                    CoAPOption(number: .eTag, value: tag), CoAPOption(number: .contentFormat, uint: 42),
                    slice.option.option(.block2), CoAPOption(number: .size2, uint: UInt32(representation.count)),
                ], payload: slice.bytes)
        ]
    }
}

extension CoAPStatus {
    var outcome: Outcome? {
        if case .done(let outcome) = self { return outcome }
        return nil
    }

    var error: CoAPExchangeError? {
        if case .failed(let error) = self { return error }
        return nil
    }

    var deadline: UInt32? {
        if case .waiting(let until) = self { return until }
        return nil
    }
}

/// A fixed buffer like a board's: appends past its capacity trap, so a test proves the cap is checked first.
struct FixedBody: CoAPBodyStorage {
    let capacity: Int
    private(set) var bytes: [UInt8] = []
    var count: Int { bytes.count }

    init(capacity: Int) { self.capacity = capacity }

    mutating func removeAll(keepingCapacity: Bool) { bytes.removeAll() }

    mutating func append(contentsOf more: [UInt8]) {
        precondition(bytes.count + more.count <= capacity, "FixedBody overflow")
        bytes += more
    }
}
