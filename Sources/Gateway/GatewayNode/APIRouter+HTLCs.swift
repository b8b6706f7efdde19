import AmarsCodec
import AmarsCrypto
import Chain
import Ledger

/// `GET /v1/htlcs/{id}`: an HTLC (by the id of the transaction that locked it), its status and, once claimed,
/// the preimage, with the proof of its state against the head's state root.
extension APIRouter {
    func htlc(_ text: Substring) -> APIResponse {
        guard text.utf8.count == 64, let raw = try? Hex.decode(String(text)), let id = Bytes32(raw) else {
            return .error(400, "invalidHTLCID", "an HTLC id is the 64-hex-digit id of the transaction that locked it")
        }
        let view = node.htlc(id)
        guard let h = view.state else {
            return .error(404, "notFound", "no HTLC was locked by transaction \(Hex.encode(id.bytes))")
        }
        let status: String =
            switch h.status {
            case .open: "open"
            case .claimed: "claimed"
            case .refunded: "refunded"
            }
        var fields: [(String, JSONValue)] = [
            ("id", .hex(id)), ("status", .string(status)), ("sender", .string(h.sender.bech32)),
            ("recipient", .string(h.recipient.bech32)), ("amount", .units(h.amount)),
            ("amountAMSC", .string(Amount.format(h.amount))), ("hashLock", .hex(h.hashLock)),
            ("expiryHeight", .number(h.expiryHeight)),
        ]
        if h.status == .claimed { fields.append(("preimage", .hex(h.preimage))) }
        fields += [
            ("encoded", .hex(h.encoded)), ("height", .number(view.height)), ("stateRoot", .hex(view.stateRoot)),
            ("proof", .hex(view.proof.encoded)),
        ]
        return .json(200, .object(fields))
    }
}
