import DeviceProtocol

/// What a driver needs to run the device session: one request answered at a time (a device has one radio and
/// one outstanding request), a way to wait, and a clock. The board's UART link, the host's UDP and MQTT clients
/// and the tests' in-process loopback all conform; the session never learns which one it talks over.
public protocol DeviceLink {
    associatedtype Failure: Error
    /// The whole answer to `request` (block-wise transfers reassembled), or why none came.
    mutating func exchange(_ request: DeviceRequest) throws(Failure) -> DeviceAnswer
    mutating func sleep(millis: UInt32)
    /// Milliseconds from any fixed origin; only differences count.
    var nowMillis: UInt64 { get }
    /// Milliseconds since the Unix epoch, if the device can tell (a real-time clock, the host's clock): the
    /// trusting period and skipping need it. Nil by default: the device then syncs checkpoint by checkpoint.
    var wallClockMillis: UInt64? { get }
    /// Whether the link can fetch headers (`v1/headers`); true by default. A link that cannot (MQTT carries only
    /// checkpoints and submissions) is never asked for the gateway's genesis header after a sync that learnt
    /// nothing, so such a device cannot tell "nothing newer" from "another chain".
    var servesHeaders: Bool { get }
}

extension DeviceLink {
    public var wallClockMillis: UInt64? { nil }
    public var servesHeaders: Bool { true }
}

/// Why ``DeviceSession/run(_:over:onReport:)`` stopped: the link, or the device's own refusal.
public enum DeviceRunError<LinkFailure: Error>: Error {
    case link(LinkFailure)
    case device(DeviceError)
}

extension DeviceRunError: Equatable where LinkFailure: Equatable {}

extension DeviceSession {
    /// Runs `operation` to its end over `link`, handing each report to `onReport` as it happens (before the
    /// failure it may lead to). A link failure abandons the operation; what was verified so far stays trusted.
    public mutating func run<Link: DeviceLink>(
        _ operation: DeviceOperation, over link: inout Link, onReport: (DeviceReport) -> Void = { _ in }
    ) throws(DeviceRunError<Link.Failure>) -> DeviceOutcome {
        confirmsChain = link.servesHeaders
        var action = start(operation, now: link.nowMillis, wallClock: link.wallClockMillis)
        while true {
            for report in takeReports() { onReport(report) }
            switch action {
            case .send(let request):
                let answer: DeviceAnswer
                do { answer = try link.exchange(request) } catch {
                    abandon()
                    throw .link(error)
                }
                action = receive(answer, now: link.nowMillis)
            case .sleep(let millis):
                link.sleep(millis: millis)
                action = wake(now: link.nowMillis)
            case .done(let outcome):
                return outcome
            case .failed(let error):
                throw .device(error)
            }
        }
    }
}
