import DeviceCore
import DeviceProtocol

/// The device session wired straight to a gateway's resource handlers, in-process: no sockets, no CoAP
/// encoding, and a virtual clock that a sleep moves forward at once. Device-flow tests run in milliseconds
/// against a real ``ChainNode``; the socket, QEMU and broker tests remain the proof that the real links work.
///
/// `intercept` lets a test play a lying gateway: it sees each request and may answer it instead. `onSleep` runs
/// when the device waits, so a test can let the chain move on meanwhile (produce the block it waits for).
public struct LoopbackDeviceLink: DeviceLink {
    public typealias Failure = Never

    public let handlers: DeviceResourceHandlers
    public var intercept: ((DeviceRequest) -> DeviceAnswer?)?
    public var onSleep: ((UInt32) -> Void)?
    public private(set) var nowMillis: UInt64
    /// Requests answered, in order, for tests that count round trips.
    public private(set) var requests: [DeviceRequest] = []
    /// The device's real-time clock (ms since the Unix epoch), set by the test: nil is a device without one.
    public var wallClockMillis: UInt64?

    public init(
        handlers: DeviceResourceHandlers, startMillis: UInt64 = 0, intercept: ((DeviceRequest) -> DeviceAnswer?)? = nil
    ) {
        self.handlers = handlers
        self.nowMillis = startMillis
        self.intercept = intercept
    }

    public mutating func exchange(_ request: DeviceRequest) -> DeviceAnswer {
        requests.append(request)
        if let answer = intercept?(request) { return answer }
        let response = handlers.handle(request.resource, query: request.joinedQuery, body: request.payload)
        return DeviceAnswer(code: response.code, body: response.payload, contentFormat: response.contentFormat)
    }

    public mutating func sleep(millis: UInt32) {
        nowMillis &+= UInt64(millis)
        onSleep?(millis)
    }
}
