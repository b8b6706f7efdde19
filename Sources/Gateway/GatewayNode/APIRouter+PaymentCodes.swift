import AmarsCodec
import AmarsCrypto
import Chain
import Ledger

/// What a payment-code or stealth wallet reads: the notifications sent to its notification address, and each
/// finished epoch's recipient filter and stealth announcements with the proofs of their committed hashes. None
/// names the one-time addresses a wallet watches: it tests the filter itself.
extension APIRouter {
    static let maxNotifications = 100

    /// `GET /v1/accounts/{address}/notifications?from=H&position=P`: notification transactions sent to the address,
    /// oldest first, from position P of block H on (at most 100).
    func notifications(_ text: Substring, query: [Substring: Substring]) -> APIResponse {
        guard let address = Self.parseAddress(text) else {
            return .error(400, "invalidAddress", "an address is bech32m text starting with 'amsc1'")
        }
        var from: UInt64 = 0
        var position: UInt64 = 0
        for (name, value) in [("from", query["from"]), ("position", query["position"])] {
            guard let value else { continue }
            guard let n = Self.parseUInt(value), n <= UInt64(Int64.max) else {
                return .error(400, "invalidQuery", "\(name) must be a whole number")
            }
            if name == "from" { from = n } else { position = n }
        }
        do {
            let rows = try node.notifications(
                to: address, from: from, position: Int(position), limit: Self.maxNotifications)
            return .json(
                200,
                .object([
                    ("address", .string(address.bech32)),
                    (
                        "notifications",
                        .array(
                            rows.map { row in
                                var fields: [(String, JSONValue)] = [
                                    ("height", .number(row.height)), ("position", .int(row.position)),
                                ]
                                if case .object(let tx) = APIJSON.transaction(row.transaction) { fields += tx }
                                return .object(fields)
                            })
                    ),
                ]))
        } catch {
            return storeFailure(error)
        }
    }

    /// `GET /v1/filters/{epoch}`: the epoch's recipient filter, its committed hash and the proof of that hash
    /// against the head's state root; 404 until the epoch's last block is final.
    func recipientFilter(_ text: Substring) -> APIResponse {
        finishedEpoch(text, what: "filter") { epoch throws(StoreError) in
            try node.recipientFilter(epoch: epoch).map { view in
                [
                    ("epoch", .number(view.epoch)), ("filter", .hex(view.filter)), ("hash", .hex(view.committed)),
                    ("height", .number(view.height)), ("stateRoot", .hex(view.stateRoot)),
                    ("stateKey", .hex(RecipientFilter.stateKey(epoch: epoch))), ("proof", .hex(view.proof.encoded)),
                ]
            }
        }
    }

    /// `GET /v1/stealth/{epoch}`: the ephemeral keys of the epoch's stealth transfers with their transaction ids
    /// (hex, 65 bytes each), their committed hash and its proof; 404 until the epoch's last block is final.
    func stealthAnnouncements(_ text: Substring) -> APIResponse {
        finishedEpoch(text, what: "stealth announcements") { epoch throws(StoreError) in
            try node.stealthAnnouncements(epoch: epoch).map { view in
                [
                    ("epoch", .number(view.epoch)),
                    ("announcements", .hex(StealthAnnouncements.encode(view.announcements))),
                    ("count", .int(view.announcements.count)), ("hash", .hex(view.committed)),
                    ("height", .number(view.height)), ("stateRoot", .hex(view.stateRoot)),
                    ("stateKey", .hex(StealthAnnouncements.stateKey(epoch: epoch))),
                    ("proof", .hex(view.proof.encoded)),
                ]
            }
        }
    }

    /// Parses the epoch and answers 404 while it has not finished.
    private func finishedEpoch(
        _ text: Substring, what: String, fields: (UInt64) throws(StoreError) -> [(String, JSONValue)]?
    ) -> APIResponse {
        guard let epoch = Self.parseUInt(text) else {
            return .error(400, "invalidEpoch", "an epoch is a whole number, like the 'epoch' of GET /v1/head")
        }
        do {
            guard let fields = try fields(epoch) else {
                return .error(
                    404, "notFound", "epoch \(epoch) has not finished; its \(what) is written at its last block")
            }
            return .json(200, .object(fields))
        } catch {
            return storeFailure(error)
        }
    }
}
