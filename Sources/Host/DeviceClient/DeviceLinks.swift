// The host's links for the device session: CoAP over UDP (everything) and MQTT (checkpoints and submissions).
import AmarsCodec
import DeviceCore
import DeviceProtocol
import Foundation
import Ledger

/// Monotonic milliseconds, for the session's deadlines.
public func deviceClockMillis() -> UInt64 { deviceClockNanos() / 1_000_000 }

/// The host's real-time clock: what the trusting period and skipping measure against.
public func wallClockNow() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
}

extension CoAPDeviceClient: DeviceLink {
    public func exchange(_ request: DeviceRequest) throws(DeviceClientError) -> DeviceAnswer {
        let response = try self.request(
            request.resource.method, request.resource.path, query: request.queryText, payload: request.payload)
        return try request.answer(code: response.code, body: response.body, contentFormat: response.contentFormat)
    }

    public func sleep(millis: UInt32) { usleep(min(millis, 5000) * 1000) }

    public var nowMillis: UInt64 { deviceClockMillis() }
    public var wallClockMillis: UInt64? { wallClockNow() }
}

extension DeviceRequest {
    var queryText: [String] { query.map { String(decoding: $0, as: UTF8.self) } }

    /// The answer to this request, refused when a success comes in another content format than the resource's.
    func answer(code: CoAPCode, body: [UInt8], contentFormat: UInt16?) throws(DeviceClientError) -> DeviceAnswer {
        if code.isSuccess, let format = contentFormat, format != resource.contentFormat {
            throw .protocolViolation("content format \(format) instead of \(resource.contentFormat)")
        }
        return DeviceAnswer(code: code, body: body, contentFormat: contentFormat)
    }
}

/// The device session over MQTT alone: the checkpoint chain from the retained checkpoints and submissions
/// with the gateway's "accepted"/"refused" answers, so a device whose only link is the broker follows the chain
/// with the same code as a CoAP device. MQTT carries no request/response, so headers and proofs are not served;
/// those requests throw ``DeviceClientError/unsupported(_:)`` at once instead of waiting for a timeout. Anchor
/// with ``DeviceSync/anchor(_:genesisHeader:)`` (the genesis header comes from the provisioned genesis file).
public struct MqttDeviceLink: DeviceLink {
    public let client: MqttDeviceClient
    /// How long one page waits for the retained burst to go quiet; see
    /// ``MqttDeviceClient/checkpoints(from:limit:timeoutMillis:quietMillis:)``.
    public var timeoutMillis: UInt64
    public var quietMillis: UInt64

    public init(client: MqttDeviceClient, timeoutMillis: UInt64 = 5000, quietMillis: UInt64 = 200) {
        self.client = client
        self.timeoutMillis = timeoutMillis
        self.quietMillis = quietMillis
    }

    /// Only checkpoints and submissions travel over MQTT.
    public var servesHeaders: Bool { false }

    public func exchange(_ request: DeviceRequest) throws(DeviceClientError) -> DeviceAnswer {
        switch request.resource {
        case .checkpoints:
            guard let from = request.argument("from").flatMap(Self.decimal),
                let limit = request.argument("limit").flatMap(Self.decimal)
            else { throw .protocolViolation("checkpoints request without from and limit") }
            let page = try client.checkpoints(
                from: from, limit: Int(min(limit, UInt64(CheckpointsPayload.maxCount))), timeoutMillis: timeoutMillis,
                quietMillis: quietMillis)
            return DeviceAnswer(code: .content, body: CheckpointsPayload(page).encoded)
        case .transaction:
            let transaction: SignedTransaction
            do { transaction = try SignedTransaction(decoding: request.payload) } catch { throw .undecodable(error) }
            do {
                let id = try client.submit(transaction)
                return DeviceAnswer(code: .created, body: id.bytes)
            } catch .transactionRefused(let code) {
                return DeviceAnswer(code: .badRequest, body: Array(code.utf8))
            }
        default:
            throw .unsupported(
                "\(request.resource.path): not available over MQTT (only checkpoints and submissions travel there); use CoAP"
            )
        }
    }

    public func sleep(millis: UInt32) { usleep(min(millis, 5000) * 1000) }

    public var nowMillis: UInt64 { deviceClockMillis() }
    public var wallClockMillis: UInt64? { wallClockNow() }

    private static func decimal(_ bytes: [UInt8]) -> UInt64? { UInt64(String(decoding: bytes, as: UTF8.self)) }
}

/// Submissions over one link, everything else over another: a device that pays over MQTT but proves over CoAP.
public struct SplitLink<Main: DeviceLink, Submit: DeviceLink>: DeviceLink
where Main.Failure == DeviceClientError, Submit.Failure == DeviceClientError {
    public var main: Main
    public var submit: Submit

    public init(main: Main, submit: Submit) {
        self.main = main
        self.submit = submit
    }

    public mutating func exchange(_ request: DeviceRequest) throws(DeviceClientError) -> DeviceAnswer {
        request.resource == .transaction ? try submit.exchange(request) : try main.exchange(request)
    }

    public mutating func sleep(millis: UInt32) { main.sleep(millis: millis) }

    public var nowMillis: UInt64 { main.nowMillis }
    public var wallClockMillis: UInt64? { main.wallClockMillis }
    public var servesHeaders: Bool { main.servesHeaders }
}
