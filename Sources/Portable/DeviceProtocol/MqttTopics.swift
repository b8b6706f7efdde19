// The MQTT side of the device API: topic names, their parsing, and the binary messages published on them.
// Pure (no I/O, no libmosquitto), so firmware authors and tests can read the contract in one place.
import AmarsCodec
import Ledger

/// Topic names under `amars/v1/`.
///
/// Versioned like the CoAP resources (`v1/…`) so a gateway can serve old firmware after payloads change.
/// `{device}` is always the device's bech32m address: the broker needs no account database to route, and a
/// gateway can check the address before it spends any work on the payload.
public enum MqttTopics {
    public static let root = "amars/v1/"
    /// Retained, QoS 1: the encoded ``BlockHeader`` of the current head, re-published on every new head, so a
    /// device that subscribes late still gets the head at once.
    public static let head = "amars/v1/head"
    /// What the gateway subscribes to: every device's submit topic.
    public static let submitFilter = "amars/v1/tx/+"
    /// What a device subscribes to for the checkpoint chain: the broker hands it every retained checkpoint at
    /// once, so an MQTT-only device can move its trust forward without any request/response transport.
    public static let checkpointsFilter = "amars/v1/checkpoints/#"
    /// A checkpoint is a header, a committee of at most ``Caps/committeeMembers`` members and a certificate of at
    /// most as many signatures: about 15 KB at the caps. Twice that bounds what a device copies per message.
    public static let maxCheckpointBytes = 32 * 1024

    /// What the gateway subscribes to: every channel sender's topic.
    public static let channelPostFilter = "amars/v1/chan-out/+"

    static let submitPrefix = "amars/v1/tx/"
    static let channelPostPrefix = "amars/v1/chan-out/"
    static let channelPrefix = "amars/v1/chan/"
    static let receiptsPrefix = "amars/v1/receipts/"
    static let commandPrefix = "amars/v1/cmd/"
    static let checkpointsPrefix = "amars/v1/checkpoints/"

    /// QoS 1 from device: one `SignedTransaction` encoding per message.
    public static func submit(_ device: Address) -> String { submitPrefix + device.bech32 }
    /// QoS 1 to device: ``MqttReceiptMessage`` encodings, "accepted"/"refused" first, then "final".
    public static func receipts(_ device: Address) -> String { receiptsPrefix + device.bech32 }
    /// QoS 1 to device: opaque command payloads (signed by whoever the device trusts; the gateway only relays).
    public static func command(_ device: Address) -> String { commandPrefix + device.bech32 }

    /// QoS 1 from a channel's sender: one channel message (a signed update or a relay message) per message.
    public static func channelPost(_ sender: Address) -> String { channelPostPrefix + sender.bech32 }
    /// QoS 1 to a channel's recipient: each channel message the gateway's channel door kept for it, as the
    /// door's entry (sequence, then the message), the same bytes `v1/channel/messages` lists.
    public static func channel(_ recipient: Address) -> String { channelPrefix + recipient.bech32 }

    /// Retained, QoS 1: the ``Checkpoint`` encoding that closes epoch `epoch` (decimal), the one
    /// `ChainNode.checkpoints(from: epoch, limit: 1)` returns. One topic per epoch, so retention keeps them all.
    public static func checkpoint(epoch: UInt64) -> String { checkpointsPrefix + String(epoch) }

    /// The epoch of a checkpoint topic, or nil. Only the canonical decimal form (no sign, no leading zeros)
    /// counts, so one epoch has one topic and a device cannot be fed two different retained "epoch 3"s.
    public static func parseCheckpoint(_ topic: String) -> UInt64? {
        guard topic.hasPrefix(checkpointsPrefix) else { return nil }
        let tail = topic.utf8.dropFirst(checkpointsPrefix.utf8.count)
        guard !tail.isEmpty, tail.count <= 20, tail.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        guard tail.count == 1 || tail.first != 0x30 else { return nil }
        return UInt64(String(decoding: tail, as: UTF8.self))
    }

    /// The device of a submit topic, or why the topic is not one. Never traps on any input: topics come from
    /// whoever can publish to the broker.
    public static func parseSubmit(_ topic: String) -> Result<Address, MqttDropReason> {
        parseDevice(topic, prefix: submitPrefix)
    }

    /// The sender of a channel-post topic, or why the topic is not one.
    public static func parseChannelPost(_ topic: String) -> Result<Address, MqttDropReason> {
        parseDevice(topic, prefix: channelPostPrefix)
    }

    /// Byte-wise, as MQTT compares topics: a gateway parses one topic per submit, and walking it by grapheme
    /// cost more than the address's checksum.
    private static func parseDevice(_ topic: String, prefix: String) -> Result<Address, MqttDropReason> {
        let bytes = topic.utf8
        guard bytes.starts(with: prefix.utf8) else { return .failure(.badTopic) }
        let tail = bytes.dropFirst(prefix.utf8.count)
        // A bech32m address is at most 90 characters; anything longer is not worth decoding.
        guard !tail.isEmpty, tail.count <= 90, !tail.contains(0x2F) else { return .failure(.badTopic) }
        guard let address = try? Address(bech32: String(decoding: tail, as: UTF8.self)) else {
            return .failure(.badDevice)
        }
        return .success(address)
    }
}

/// Why the bridge dropped an incoming message without answering or answered it with a refusal before the
/// chain saw it. Counted per reason, so an operator can tell a misconfigured device from an attack.
public enum MqttDropReason: String, Error, Sendable, CaseIterable, Hashable {
    /// Not `amars/v1/tx/{device}` (wrong prefix, empty or extra levels). Dropped: there is nobody to answer.
    case badTopic
    /// The `{device}` level is not a valid bech32m address of this chain. Dropped.
    case badDevice
    /// Empty or larger than a transaction can be. Refused.
    case badSize
    /// Does not decode as a `SignedTransaction` (garbage, truncated, trailing bytes). Refused.
    case malformed
    /// The transaction's sender is not the device named in the topic. Refused: receipts would go to the
    /// wrong device and the device's rate limit could be dodged.
    case senderMismatch
    /// The device's token bucket is empty. Refused.
    case rateLimited
    /// The submit could not be made durable (inbox write failed). Refused, so the device retries later.
    case inboxUnavailable
    /// A channel message the channel door refused (undecodable, no open channel, not its sender's update), or
    /// posted on another sender's topic. Dropped: the sender learns nothing it could not read on chain.
    case channelRefused
}

/// A message on `amars/v1/receipts/{device}`.
///
/// Layout: one kind byte, the 32-byte transaction id, then a kind-specific tail. The id is always at the same
/// offset so a device can match any message to its submit before it looks at the kind.
/// - `0x00` accepted: no tail; the transaction is in the mempool.
/// - `0x01` refused: the ASCII error code (`nonceGap`, `rateLimited`, `malformed`…); the id is all zeros when
///   the payload did not decode.
/// - `0x02` final: the rest of the ``Receipt`` encoding (status, units, fee), then varints height and position
///   of the block that includes it, i.e. `0x02 ‖ Receipt.encoded ‖ varint(height) ‖ varint(position)`.
public enum MqttReceiptMessage: Equatable, Sendable {
    case accepted(id: Bytes32)
    case refused(id: Bytes32, code: String)
    case final(receipt: Receipt, height: UInt64, position: UInt64)

    public static let acceptedKind: UInt8 = 0
    public static let refusedKind: UInt8 = 1
    public static let finalKind: UInt8 = 2
    /// Error codes are short camelCase names; the cap keeps a hostile decoder input bounded.
    public static let maxCodeBytes = 64

    public var id: Bytes32 {
        switch self {
        case .accepted(let id), .refused(let id, _): id
        case .final(let receipt, _, _): receipt.transactionID
        }
    }

    public var encoded: [UInt8] {
        var w = ByteWriter()
        switch self {
        case .accepted(let id):
            w.write(Self.acceptedKind)
            w.write(id)
        case .refused(let id, let code):
            w.write(Self.refusedKind)
            w.write(id)
            w.write(Array(code.utf8.prefix(Self.maxCodeBytes)))
        case .final(let receipt, let height, let position):
            w.write(Self.finalKind)
            w.write(receipt)
            w.writeVarint(height)
            w.writeVarint(position)
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(CodecError) {
        var r = ByteReader(bytes)
        let kind = try r.readU8()
        switch kind {
        case Self.acceptedKind:
            self = .accepted(id: try r.readBytes32())
        case Self.refusedKind:
            let id = try r.readBytes32()
            let code = try r.readBytes(r.remaining)
            guard code.count <= Self.maxCodeBytes, code.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw .invalidValue(.text)
            }
            self = .refused(id: id, code: String(decoding: code, as: UTF8.self))
        case Self.finalKind:
            let receipt: Receipt = try r.read()
            self = .final(receipt: receipt, height: try r.readVarint(), position: try r.readVarint())
        default:
            throw .unknownTag(kind)
        }
        try r.finish()
    }
}

/// Refusal codes of MQTT receipts: ``TransactionError/code``, the same names the HTTP API and CoAP use.
/// repeated here because DeviceGateway sits below GatewayNode and cannot import it.
public enum MqttRefusalCode {
    public static func code(for error: TransactionError) -> String {
        "\(error.code)"
    }

    /// Accepted into the mempool earlier and later evicted without being included (a block refused it, or a
    /// gap opened behind a failed nonce). Final for the gateway: the device must re-sign and resubmit.
    public static let dropped = "dropped"
}
