import AmarsCodec
import Ledger

/// What a channel's sender sends its recipient through a gateway's channel door (CoAP `v1/channel/message`, MQTT
/// `amars/v1/chan-out/{sender}`, HTTP `POST /v1/channel-messages`): a signed update, or a relay message (an
/// update whose condition pays for passing on a masked payment code). The door keeps it only if the channel is open
/// on chain and the update is its sender's; the recipient checks it again itself before it keeps it.
public enum ChannelMessage: Equatable, Sendable, CanonicalCodable {
    case update(ChannelUpdate)
    case relay(RelayMessage)

    /// The signed update the message carries.
    public var update: ChannelUpdate {
        switch self {
        case .update(let update): update
        case .relay(let message): message.update
        }
    }

    public func encode(to w: inout ByteWriter) {
        switch self {
        case .update(let update):
            w.write(UInt8(0))
            w.write(update)
        case .relay(let message):
            w.write(UInt8(1))
            w.write(message)
        }
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let tag = try r.readU8()
        switch tag {
        case 0: self = .update(try r.read())
        case 1: self = .relay(try r.read())
        default: throw .unknownTag(tag)
        }
    }
}
