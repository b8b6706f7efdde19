import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import QRCode

/// The routes the explorer's pages need beyond the chain API: search, an account's activity, a transaction with
/// its inclusion proof, payment-request QR codes and the live event stream.
extension APIRouter {
    /// The explorer's own page paths (`/block/12`, `/account/amsc1…`): each serves the same page, which reads its
    /// path and asks the API for what it shows, so every object has a URL a person can share.
    static let explorerPages: Set<Substring> = ["block", "tx", "account", "candidate", "epoch", "escrow"]
    static let explorerSingletons: Set<Substring> = ["search", "request"]

    /// Most rows of an account's activity one request returns.
    static let maxActivity: UInt64 = 100

    // MARK: search

    /// `GET /v1/search?q=…`: where a height, a block hash, a transaction id, an escrow id or an address leads.
    /// A 64-hex-digit query is tried as an escrow, a block hash, then a transaction.
    func search(query: [Substring: Substring]) -> APIResponse {
        let raw = query["q"].flatMap {
            PaymentRequest.percentDecode(String($0).replacingOccurrences(of: "+", with: " "))
        }
        let q = (raw ?? "").trimmingCharacters(in: .whitespaces)
        guard !q.isEmpty, q.utf8.count <= 120 else {
            return .error(
                400, "invalidQuery", "search for a height, a block hash, a transaction id or an amsc1 address")
        }
        func found(_ kind: String, _ path: String) -> APIResponse {
            .json(200, .object([("kind", .string(kind)), ("path", .string(path))]))
        }
        if let height = Self.parseUInt(Substring(q)) {
            guard height <= node.head.height else {
                return .error(404, "notFound", "no block at height \(height) yet; the head is at \(node.head.height)")
            }
            return found("block", "/block/\(height)")
        }
        if q.lowercased().hasPrefix("amsc1") {
            guard let address = Self.parseAddress(Substring(q.lowercased())) else {
                return .error(400, "invalidAddress", "'\(q.prefix(120))' is not a valid amsc1 address (bad checksum?)")
            }
            if node.candidate(address) != nil { return found("candidate", "/candidate/\(address.bech32)") }
            return found("account", "/account/\(address.bech32)")
        }
        if let epoch = q.lowercased().split(separator: " ").last.flatMap(Self.parseUInt),
            q.lowercased().hasPrefix("epoch ")
        {
            return found("epoch", "/epoch/\(epoch)")
        }
        guard q.utf8.count == 64, let bytes = try? Hex.decode(q.lowercased()), let id = Bytes32(bytes) else {
            return .error(
                400, "invalidQuery",
                "'\(q.prefix(120))' is not a height, a 64-hex-digit hash or id, 'epoch N' or an amsc1 address")
        }
        let hex = Hex.encode(id.bytes)
        // An escrow's id is the id of the transaction that opened it: the escrow is the more specific answer,
        // and its page links to that transaction.
        if node.escrow(id).state != nil { return found("escrow", "/escrow/\(hex)") }
        do {
            if let stored = try node.block(hash: id) {
                return found("block", "/block/\(stored.finalized.block.header.height)")
            }
            switch try node.status(of: id) {
            case .unknown: break
            default: return found("transaction", "/tx/\(hex)")
            }
        } catch {
            return storeFailure(error)
        }
        return .error(404, "notFound", "no block, transaction or escrow has the hash \(hex)")
    }

    // MARK: blocks by hash

    /// `GET /v1/blocks/{height or hash}`.
    func blockByHeightOrHash(_ text: Substring) -> APIResponse {
        guard text.utf8.count == 64 else { return block(text) }
        guard let raw = try? Hex.decode(String(text)), let hash = Bytes32(raw) else {
            return .error(400, "invalidHeight", "a block is named by its height or its 64-hex-digit hash")
        }
        do {
            guard let stored = try node.block(hash: hash) else {
                return .error(404, "notFound", "no block has the hash \(Hex.encode(hash.bytes))")
            }
            return .json(200, APIJSON.block(stored))
        } catch {
            return storeFailure(error)
        }
    }

    // MARK: accounts

    /// `GET /v1/accounts/{address}/transactions?limit=N`: what it sent and was paid, newest first.
    func activity(_ text: Substring, query: [Substring: Substring]) -> APIResponse {
        guard let address = Self.parseAddress(text) else {
            return .error(400, "invalidAddress", "an address is bech32m text starting with 'amsc1'")
        }
        var limit: UInt64 = 20
        if let given = query["limit"] {
            guard let n = Self.parseUInt(given), n > 0 else {
                return .error(400, "invalidQuery", "limit must be a whole number from 1 to \(Self.maxActivity)")
            }
            limit = min(n, Self.maxActivity)
        }
        do {
            let rows = try node.activity(of: address, limit: Int(limit)).map { APIJSON.activity($0, of: address) }
            return .json(200, .object([("address", .string(address.bech32)), ("transactions", .array(rows))]))
        } catch {
            return storeFailure(error)
        }
    }

    // MARK: transactions

    /// `GET /v1/tx/{id}` for an included transaction: its status plus the transaction, the block header (encoded,
    /// so a reader can hash it) and the Merkle path from its id to the header's transactions root.
    func includedTransaction(_ id: Bytes32, status: JSONValue) -> APIResponse {
        do {
            guard let found = try node.inclusionProof(of: id) else { return .json(200, status) }
            let header = found.block.block.header
            guard case .object(var fields) = status else { return .json(200, status) }
            fields.append(("transaction", APIJSON.transaction(found.block.block.transactions[found.position])))
            fields.append(("timestamp", .number(header.timestamp)))
            fields.append(
                (
                    "block",
                    .object([
                        ("height", .number(header.height)), ("hash", .hex(header.hash)),
                        ("transactionsRoot", .hex(header.transactionsRoot)), ("header", .hex(header.encoded)),
                    ])
                ))
            fields.append(
                (
                    "proof",
                    .object([
                        ("index", .number(found.proof.index)), ("count", .number(found.proof.count)),
                        ("siblings", .array(found.proof.siblings.map { .hex($0) })),
                    ])
                ))
            return .json(200, .object(fields))
        } catch {
            return storeFailure(error)
        }
    }

    // MARK: payment requests

    /// `GET /v1/request?to=…&amount=…&memo=…` (or `?uri=amarscity:…`): the payment request's URI and fields;
    /// `GET /v1/request.svg?…` the same request as a QR code.
    func paymentRequest(query: [Substring: Substring], svg: Bool) -> APIResponse {
        // Query values are form-encoded (a browser's form sends a space as '+').
        func decoded(_ name: String) -> String? {
            query[Substring(name)].flatMap { PaymentRequest.percentDecode($0.replacingOccurrences(of: "+", with: " ")) }
        }
        let request: PaymentRequest
        do {
            if let uri = decoded("uri") {
                request = try PaymentRequest(uri: uri)
            } else {
                guard let to = decoded("to"), let address = Self.parseAddress(Substring(to)) else {
                    throw PaymentRequest.ParseError.badAddress
                }
                if query["memo"] != nil, decoded("memo") == nil { throw PaymentRequest.ParseError.badEncoding("memo") }
                request = try PaymentRequest(address: address, amount: decoded("amount"), memo: decoded("memo") ?? "")
            }
        } catch {
            return .error(400, "invalidRequest", "\(error)")
        }
        if svg {
            guard let code = try? QRCode(request.uri) else {
                return .error(400, "invalidRequest", "the request is too long for a QR code")
            }
            return APIResponse(status: 200, contentType: "image/svg+xml", body: Array(code.svg().utf8))
        }
        return .json(
            200,
            .object([
                ("uri", .string(request.uri)), ("to", .string(request.address.bech32)),
                ("amount", request.amount.map { .units($0) } ?? .null),
                ("amountAMSC", request.amount.map { .string(Amount.format($0)) } ?? .null),
                ("memo", .string(request.memo)),
            ]))
    }

    // MARK: live events

    public enum EventStreamRequest {
        /// Stream heads, and the receipts of this account if one is given, from the block after `after` (nil: from
        /// the current head on).
        case watch(Address?, after: UInt64?)
        case refused(APIResponse)
    }

    /// What a `GET /v1/events` stream asks for: nil when the URI is not the event stream.
    public func eventStream(uri: String) -> EventStreamRequest? {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts[0] == "/v1/events" || parts[0] == "/v1/events/" else { return nil }
        let query = parts.count > 1 ? Self.parseQuery(parts[1]) : [:]
        var after: UInt64?
        if let text = query["after"] {
            guard let height = Self.parseUInt(text) else {
                return .refused(.error(400, "invalidQuery", "after must be a block height"))
            }
            after = height
        }
        guard let text = query["account"] else { return .watch(nil, after: after) }
        guard let address = Self.parseAddress(text) else {
            return .refused(.error(400, "invalidAddress", "account must be an amsc1 address"))
        }
        return .watch(address, after: after)
    }

    /// Most receipts one event batch carries; a stream that fell further behind resumes from the head.
    static let maxStreamedReceipts = 256

    /// The server-sent events for heads after `height` (nil: only the current head, for a new stream): one
    /// `receipt` event per final transaction of `account` in the new blocks, oldest first (found through the
    /// account's activity index, at most ``maxStreamedReceipts``), then one `head` event whose `id` is its
    /// height, which a reconnecting browser sends back (`Last-Event-ID`) to resume after it.
    public func events(after height: UInt64?, account: Address?) -> (height: UInt64, text: String) {
        // One snapshot: the head event and the receipts end at the same height.
        let status = node.status
        let head = status.head.height
        let from = min(height ?? head, head)
        guard height == nil || head > from else { return (from, "") }
        var text = ""
        if let account, height != nil {
            let rows: [ChainNode.Activity]
            do { rows = try node.activity(of: account, after: from, limit: Self.maxStreamedReceipts) } catch {
                logger.error("storage error while streaming events: \(error)")
                return (from, "")
            }
            for row in rows.reversed() where row.height <= head {
                text += "event: receipt\ndata: \(APIJSON.activity(row, of: account).rendered)\n\n"
            }
        }
        text += "id: \(head)\nevent: head\ndata: \(APIJSON.head(node: node, status: status).rendered)\n\n"
        return (head, text)
    }
}
