import AmarsCodec
import AmarsCrypto
import Chain
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
