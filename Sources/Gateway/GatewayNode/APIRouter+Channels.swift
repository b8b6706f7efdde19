import AmarsCodec
import AmarsCrypto
import Chain
import DeviceGateway
import DeviceProtocol
import Ledger

/// `GET /v1/channels/{id}`: a one-way payment channel (by the id of the transaction that opened it), its status
/// and, once closed, what the recipient was paid and the preimages it showed, with the proof of its state against the head's state root.
/// Both parties read it before trusting the channel off chain: the recipient checks every update against the
/// sender key and deposit the chain holds.
extension APIRouter {
    func channel(_ text: Substring) -> APIResponse {
        guard text.utf8.count == 64, let raw = try? Hex.decode(String(text)), let id = Bytes32(raw) else {
            return .error(
                400, "invalidChannelID", "a channel id is the 64-hex-digit id of the transaction that opened it")
        }
        let view = node.channel(id)
        guard let c = view.state else {
            return .error(404, "notFound", "no channel was opened by transaction \(Hex.encode(id.bytes))")
        }
        let status: String =
            switch c.status {
            case .open: "open"
            case .closed: "closed"
            case .refunded: "refunded"
            }
        let fields: [(String, JSONValue)] = [
            ("id", .hex(id)), ("status", .string(status)), ("sender", .string(c.sender.bech32)),
            ("senderKey", .hex(c.senderKey)), ("recipient", .string(c.recipient.bech32)),
            ("deposit", .units(c.deposit)), ("depositAMSC", .string(Amount.format(c.deposit))),
            ("expiryHeight", .number(c.expiryHeight)), ("paidOut", .units(c.paidOut)),
            ("revealed", .array(c.revealed.map { .hex($0) })),
            ("encoded", .hex(c.encoded)), ("height", .number(view.height)), ("stateRoot", .hex(view.stateRoot)),
            ("proof", .hex(view.proof.encoded)),
        ]
        return .json(200, .object(fields))
    }
}

/// The channel door over HTTP: a sender posts its signed channel messages, a recipient lists them.
extension APIRouter {
    private static let noChannelDoor = APIResponse.error(404, "noChannelDoor", "this gateway has no channel door")

    /// `POST /v1/channel-messages`: a channel message (its encoding, `application/octet-stream`), kept for the
    /// channel's recipient once the channel is open on chain and the update its sender's → 202 with the channel,
    /// the recipient and the sequence it was given.
    func postChannelMessage(body: [UInt8], contentType: String?) -> APIResponse {
        guard let channelDoor else { return Self.noChannelDoor }
        guard Self.mediaType(contentType) == "application/octet-stream" else {
            return .error(415, "unsupportedMediaType", "send application/octet-stream with the encoded message")
        }
        do throws(ChannelDoor.Refusal) {
            let (channel, recipient, sequence) = try channelDoor.post(body)
            return .json(
                202,
                .object([
                    ("channel", .hex(channel)), ("recipient", .string(recipient.bech32)),
                    ("sequence", .number(sequence)),
                ]))
        } catch {
            let status =
                switch error {
                case .undecodable, .tooLarge: 400
                case .unknownChannel: 404
                default: 403
                }
            return .error(status, error.code, error.description)
        }
    }

    /// `GET /v1/channels/{id}/messages?after=N&key=K&sig=S`: the channel's messages waiting at the door, for its
    /// recipient only: `key` its x-only key, `sig` its BIP340 signature of the read (`ChannelUpdate.readHash`).
    func channelMessages(_ text: Substring, query: [Substring: Substring]) -> APIResponse {
        guard let channelDoor else { return Self.noChannelDoor }
        guard text.utf8.count == 64, let raw = try? Hex.decode(String(text)), let id = Bytes32(raw) else {
            return .error(
                400, "invalidChannelID", "a channel id is the 64-hex-digit id of the transaction that opened it")
        }
        guard let after = UInt64(query["after"] ?? "0", radix: 10) else {
            return .error(400, "invalidAfter", "after= takes the last sequence seen, a whole number")
        }
        guard let keyText = query["key"], keyText.utf8.count == 64, let keyRaw = try? Hex.decode(String(keyText)),
            let key = Bytes32(keyRaw), let sigText = query["sig"], sigText.utf8.count == 128,
            let sigRaw = try? Hex.decode(String(sigText)), let signature = Bytes64(sigRaw)
        else {
            return .error(
                401, "readNotSigned",
                "only the channel's recipient reads its messages: key=<its x-only key, 64 hex>&sig=<its signature, 128 hex>"
            )
        }
        let waiting: [MailboxPayload.Entry]
        do { waiting = try channelDoor.messages(for: id, after: after, readerKey: key, signature: signature) } catch {
            return .error(error == .unknownChannel ? 404 : 403, error.code, "\(error)")
        }
        let entries = waiting.map {
            JSONValue.object([("sequence", .number($0.sequence)), ("message", .string(Hex.encode($0.message)))])
        }
        return .json(200, .object([("channel", .hex(id)), ("messages", .array(entries))]))
    }
}
