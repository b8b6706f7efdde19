import AmarsCodec
import Ledger

/// One request of the device API, built from typed arguments so every client writes the same queries.
public struct DeviceRequest: Equatable, Sendable {
    public var resource: DeviceResource
    /// Uri-Query arguments, each `key=value` in ASCII.
    public var query: [[UInt8]]
    /// The body of a POST (a signed transaction's encoding).
    public var payload: [UInt8]

    public init(_ resource: DeviceResource, query: [[UInt8]] = [], payload: [UInt8] = []) {
        self.resource = resource
        self.query = query
        self.payload = payload
    }

    public static var head: DeviceRequest { DeviceRequest(.head) }

    public static func header(at height: UInt64) -> DeviceRequest {
        DeviceRequest(.headers, query: [argument("h", decimal: height)])
    }

    /// Up to `limit` checkpoints, the first the one that ends epoch `epoch`.
    public static func checkpoints(from epoch: UInt64, limit: Int) -> DeviceRequest {
        let n = UInt64(max(1, min(limit, CheckpointsPayload.maxCount)))
        return DeviceRequest(.checkpoints, query: [argument("from", decimal: epoch), argument("limit", decimal: n)])
    }

    /// The checkpoint closing epoch `epoch` (nil: the newest one the pool attested) with the attestations of the
    /// pool of `trusted`, the device's trusted epoch.
    public static func skip(from trusted: UInt64, to epoch: UInt64?) -> DeviceRequest {
        var query = [argument("from", decimal: trusted)]
        if let epoch { query.append(argument("to", decimal: epoch)) }
        return DeviceRequest(.skip, query: query)
    }

    /// The address goes as 40 hex digits, so a board needs no Bech32m encoder (the gateway takes either form).
    public static func accountProof(_ address: Address) -> DeviceRequest {
        DeviceRequest(.accountProof, query: [argument("a", hexBytes: address.raw.bytes)])
    }

    public static func transactionProof(_ id: Bytes32) -> DeviceRequest {
        DeviceRequest(.txProof, query: [argument("id", hex: id)])
    }

    public static func escrowProof(_ id: Bytes32) -> DeviceRequest {
        DeviceRequest(.escrowProof, query: [argument("id", hex: id)])
    }

    public static func htlcProof(_ id: Bytes32) -> DeviceRequest {
        DeviceRequest(.htlcProof, query: [argument("id", hex: id)])
    }

    public static func channelProof(_ id: Bytes32) -> DeviceRequest {
        DeviceRequest(.channelProof, query: [argument("id", hex: id)])
    }

    /// The messages of channel `id` waiting at the gateway's channel door after sequence `after`, read by the
    /// recipient whose x-only key is `key` with its signature of the read.
    public static func channelMessages(_ id: Bytes32, after: UInt64, key: Bytes32, signature: Bytes64)
        -> DeviceRequest
    {
        DeviceRequest(
            .channelMessages,
            query: [
                argument("id", hex: id), argument("after", decimal: after), argument("k", hex: key),
                argument("sig", hexBytes: signature.bytes),
            ])
    }

    public static func certificateProof(_ id: Bytes32) -> DeviceRequest {
        DeviceRequest(.certificate, query: [argument("id", hex: id)])
    }

    public static func receipt(_ id: Bytes32) -> DeviceRequest {
        DeviceRequest(.receipt, query: [argument("id", hex: id)])
    }

    /// Final transfers paying `address`, the first at block `from`, position `position` or later.
    public static func inbox(_ address: Address, from: UInt64, position: UInt64) -> DeviceRequest {
        DeviceRequest(
            .inbox,
            query: [
                argument("a", hexBytes: address.raw.bytes), argument("from", decimal: from),
                argument("pos", decimal: position),
            ])
    }

    /// The commands waiting for `address` at the gateway's command door, those after sequence `after`.
    public static func commands(_ address: Address, after: UInt64) -> DeviceRequest {
        DeviceRequest(
            .commands, query: [argument("a", hexBytes: address.raw.bytes), argument("after", decimal: after)])
    }

    /// `address`'s payment-code notification count and record `index`, proven.
    public static func notification(_ address: Address, index: UInt64) -> DeviceRequest {
        DeviceRequest(
            .notifications, query: [argument("a", hexBytes: address.raw.bytes), argument("i", decimal: index)])
    }

    /// `epoch`'s recipient filter and the proof of its committed hash.
    public static func recipientFilter(epoch: UInt64) -> DeviceRequest {
        DeviceRequest(.recipientFilter, query: [argument("e", decimal: epoch)])
    }

    public static func submit(_ transaction: SignedTransaction) -> DeviceRequest {
        DeviceRequest(.transaction, payload: transaction.encoded)
    }

    /// The value of argument `key`, if the query has it.
    public func argument(_ key: StaticString) -> [UInt8]? {
        var prefix: [UInt8] = []
        key.withUTF8Buffer { prefix.append(contentsOf: $0) }
        prefix.append(UInt8(ascii: "="))
        for argument in query where argument.starts(with: prefix) { return Array(argument[prefix.count...]) }
        return nil
    }

    /// The query as libcoap hands it to a handler: arguments joined by '&'.
    public var joinedQuery: [UInt8] {
        var out: [UInt8] = []
        for (i, argument) in query.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: argument)
        }
        return out
    }

    // MARK: arguments

    /// `key=value`, the value in decimal.
    public static func argument(_ key: StaticString, decimal value: UInt64) -> [UInt8] {
        var out = keyBytes(key)
        var digits: [UInt8] = []
        var v = value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(v % 10))
            v /= 10
        } while v > 0
        out.append(contentsOf: digits.reversed())
        return out
    }

    /// `key=value`, the value in lowercase hex.
    public static func argument(_ key: StaticString, hex value: Bytes32) -> [UInt8] {
        argument(key, hexBytes: value.bytes)
    }

    /// `key=value`, the bytes in lowercase hex.
    static func argument(_ key: StaticString, hexBytes: [UInt8]) -> [UInt8] {
        var out = keyBytes(key)
        Hex.append(hexBytes, to: &out)
        return out
    }

    private static func keyBytes(_ key: StaticString) -> [UInt8] {
        var out: [UInt8] = []
        key.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "="))
        return out
    }
}

/// A whole answer to a ``DeviceRequest``: its code, the reassembled body and the body's content format.
public struct DeviceAnswer: Equatable, Sendable {
    public var code: CoAPCode
    public var body: [UInt8]
    public var contentFormat: UInt16?

    public init(code: CoAPCode, body: [UInt8] = [], contentFormat: UInt16? = nil) {
        self.code = code
        self.body = body
        self.contentFormat = contentFormat
    }
}
