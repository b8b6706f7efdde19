import AmarsCodec
import AmarsCrypto
import Chain
import Consensus
import DeviceGateway
import Foundation
import Ledger
import Logging
import Network

/// One HTTP answer, independent of any socket so the routing can be tested directly.
public struct APIResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    static func json(_ status: Int, _ value: JSONValue) -> APIResponse {
        APIResponse(status: status, contentType: "application/json", body: value.bytes + [0x0A])
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> APIResponse {
        json(status, APIJSON.error(code: code, message: message))
    }
}

/// What a committee node's consensus driver knows that the chain does not: where its core is, who it is
/// connected to, and what the network and the core refused. A plain value, so that the router renders it without
/// depending on the driver (and `amarsd run`, which has no driver, serves the same route from the chain alone).
public struct ConsensusStatus: Sendable {
    /// The committee of the height in progress (it changes at epoch boundaries).
    public var committee: Committee
    /// The core's position; `started` is false until the first height starts.
    public var height: UInt64
    public var round: UInt32
    public var step: ConsensusStep
    public var started: Bool
    /// The last height this node's core decided and the round it was decided in (nil before the first).
    public var lastDecided: (height: UInt64, round: UInt32)?
    /// Peers with an authenticated connection, as of the last refresh.
    public var connectedPeers: Set<Bytes32>
    /// Network counters as of the last refresh (drops, reports, bans, disconnects by reason).
    public var network: NetworkMetrics
    /// Consensus messages the core ignored or refused, by reason name (non-zero ones only).
    public var consensusDrops: [(reason: String, count: UInt64)]

    public init(
        committee: Committee, height: UInt64, round: UInt32, step: ConsensusStep, started: Bool,
        lastDecided: (height: UInt64, round: UInt32)?, connectedPeers: Set<Bytes32>, network: NetworkMetrics,
        consensusDrops: [(reason: String, count: UInt64)]
    ) {
        self.committee = committee
        self.height = height
        self.round = round
        self.step = step
        self.started = started
        self.lastDecided = lastDecided
        self.connectedPeers = connectedPeers
        self.network = network
        self.consensusDrops = consensusDrops
    }
}

/// The HTTP JSON API of a gateway, as a pure function from (method, URI, body) to a response.
///
/// Routes (amounts are decimal strings of base units, hashes lowercase hex):
/// - `GET /` — the explorer page
/// - `GET /v1/head`, `GET /v1/supply`
/// - `GET /v1/blocks?limit=N` (newest first, default 20, at most 100), `GET /v1/blocks/{height}`
/// - `GET /v1/accounts/{bech32}` — balance, nonces and a state proof against the head's state root
/// - `POST /v1/tx` — `application/json` `{"tx":"<hex>"}` or `application/octet-stream` raw bytes → 202
/// - `POST /v1/txs` — many at once: `application/octet-stream` (a ``TransactionBatch``) or `{"txs":["<hex>",…]}`
///   → 200 with one result per transaction, in order, journaled in one group commit
/// - `GET /v1/tx/{id}` — pending, or included with its receipt
/// - `GET /v1/staking` — staking parameters, epochs, latest checkpoint
/// - `GET /v1/candidates` (by weight), `GET /v1/candidates/{bech32}`
/// - `GET /v1/buckets?owner=…|candidate=…`, `GET /v1/buckets/{id}` — with a state proof (or proof of absence)
/// - `GET /v1/election/{epoch}` — the elected delegate pool, `GET /v1/committee?epoch=E`
/// - `GET /v1/checkpoints?from=E&limit=N` — the checkpoint chain (default 16, at most 256)
/// - `GET /v1/consensus` — epoch, committee (with peer connectivity), this node's role, the core's position,
///   the head's finality and network counters; `mode` is `committee` with a driver, `dev` without
/// - `GET /v1/search?q=…` — where a height, block hash, transaction id, escrow id, `epoch N` or address leads
/// - `GET /v1/accounts/{bech32}/transactions?limit=N` — what it sent and was paid, newest first
/// - `GET /v1/request?to=…&amount=…&memo=…` — a payment request's URI; `GET /v1/request.svg?…` its QR code
/// - `GET /v1/events?account=…` — server-sent events: `head` at each new block, `receipt` for the account
/// - `GET /block/{h}`, `/tx/{id}`, `/account/{a}`, `/candidate/{a}`, `/epoch/{e}`, `/escrow/{id}`, `/search`,
///   `/request` — explorer pages
/// - `GET /metrics` — Prometheus text
///
/// Every error is `{"error":{"code","message"}}`: the code is stable for programs, the message explains
/// what to fix. Nothing a request carries is trusted: each path segment and body is validated here before
/// the chain sees it, and a refused request changes nothing.
public final class APIRouter: Sendable {
    public static let maxBodyBytes = 64 * 1024

    let node: ChainNode
    let logger: Logger
    /// What `/metrics` exports: the node's, shared with its other parts.
    public let metrics: GatewayMetrics
    private let requests: CounterFamily<Int>
    /// The consensus driver's status, when there is one; nil means dev mode (this node is the whole committee).
    /// A closure rather than the driver so that the router stays a function of the chain plus a snapshot.
    let consensusStatus: (@Sendable () -> ConsensusStatus)?
    /// The command door `POST /v1/commands` queues into (shared with the CoAP door); nil: 404.
    let commandDoor: CommandDoor?
    /// The channel door `POST /v1/channel-messages` posts to (shared with the CoAP and MQTT doors); nil: 404.
    let channelDoor: ChannelDoor?

    public init(
        node: ChainNode, logger: Logger, consensusStatus: (@Sendable () -> ConsensusStatus)? = nil,
        metrics: GatewayMetrics = GatewayMetrics(), commands: CommandDoor? = nil, channels: ChannelDoor? = nil
    ) {
        self.node = node
        commandDoor = commands
        channelDoor = channels
        self.logger = logger
        self.consensusStatus = consensusStatus
        self.metrics = metrics
        requests = metrics.counterFamily("amars_http_requests_total") { [("code", String($0))] }
        metrics.collect { [node] m in Self.collectChain(node, into: m) }
    }

    /// Answers one request and counts it by status for `/metrics`.
    public func handle(method: String, uri: String, body: [UInt8], contentType: String?) -> APIResponse {
        let response = route(method: method, uri: uri, body: body, contentType: contentType)
        record(status: response.status)
        if response.status >= 500 {
            logger.warning("\(method) \(Self.pathOnly(uri)) answered \(response.status)")
        } else {
            logger.trace("\(method) \(Self.pathOnly(uri)) answered \(response.status)")
        }
        return response
    }

    /// Counts a response the server produced itself (413, a malformed request), so `/metrics` sees every
    /// answer, not only routed ones.
    public func record(status: Int) { requests.increment(status) }

    private static func pathOnly(_ uri: String) -> Substring {
        uri.prefix { $0 != "?" }.prefix(200)
    }

    // MARK: routing

    private enum Route {
        case explorer, head, supply, metrics, blocks, block(Substring), account(Substring), submit, tx(Substring)
        case staking, candidates, candidate(Substring), buckets, bucket(Substring), election(Substring), committee
        case checkpoints, consensus, escrow(Substring), healthz, readyz
        case search, activity(Substring), paymentRequest(svg: Bool), events, submitBatch
        case notifications(Substring), recipientFilter(Substring), stealthAnnouncements(Substring)
        case certificate(Substring), htlc(Substring), channel(Substring), postCommand, commands(Substring)
        case postChannelMessage, channelMessages(Substring)

        var methods: [String] {
            switch self {
            case .submit, .submitBatch, .postCommand, .postChannelMessage: ["POST"]
            default: ["GET"]
            }
        }
    }

    private func match(_ segments: [Substring]) -> Route? {
        switch segments.count {
        case 0: return .explorer
        case 1 where segments[0] == "index.html" || Self.explorerSingletons.contains(segments[0]): return .explorer
        case 2 where Self.explorerPages.contains(segments[0]): return .explorer
        case 1 where segments[0] == "metrics": return .metrics
        case 1 where segments[0] == "healthz": return .healthz
        case 1 where segments[0] == "readyz": return .readyz
        case 2 where segments[0] == "v1":
            switch segments[1] {
            case "head": return .head
            case "supply": return .supply
            case "blocks": return .blocks
            case "tx": return .submit
            case "txs": return .submitBatch
            case "staking": return .staking
            case "candidates": return .candidates
            case "buckets": return .buckets
            case "committee": return .committee
            case "checkpoints": return .checkpoints
            case "consensus": return .consensus
            case "search": return .search
            case "request": return .paymentRequest(svg: false)
            case "request.svg": return .paymentRequest(svg: true)
            case "events": return .events
            case "commands": return .postCommand
            case "channel-messages": return .postChannelMessage
            default: return nil
            }
        case 3 where segments[0] == "v1":
            switch segments[1] {
            case "blocks": return .block(segments[2])
            case "accounts": return .account(segments[2])
            case "tx": return .tx(segments[2])
            case "candidates": return .candidate(segments[2])
            case "buckets": return .bucket(segments[2])
            case "election": return .election(segments[2])
            case "escrows": return .escrow(segments[2])
            case "filters": return .recipientFilter(segments[2])
            case "stealth": return .stealthAnnouncements(segments[2])
            case "certs": return .certificate(segments[2])
            case "htlcs": return .htlc(segments[2])
            case "channels": return .channel(segments[2])
            case "commands": return .commands(segments[2])
            default: return nil
            }
        case 4 where segments[0] == "v1" && segments[1] == "accounts" && segments[3] == "transactions":
            return .activity(segments[2])
        case 4 where segments[0] == "v1" && segments[1] == "accounts" && segments[3] == "notifications":
            return .notifications(segments[2])
        case 4 where segments[0] == "v1" && segments[1] == "channels" && segments[3] == "messages":
            return .channelMessages(segments[2])
        default: return nil
        }
    }

    private func route(method: String, uri: String, body: [UInt8], contentType: String?) -> APIResponse {
        guard uri.hasPrefix("/"), uri.utf8.count <= 2048 else {
            return .error(400, "badRequest", "the request target must be a path starting with '/'")
        }
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts[0]
        let query = parts.count > 1 ? Self.parseQuery(parts[1]) : [:]
        // A trailing slash names the same resource; empty segments elsewhere do not match anything.
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if segments.last == "" { segments = segments.dropLast() }
        guard let route = match(Array(segments)) else {
            return .error(404, "notFound", "no such endpoint: \(path.prefix(200)); see GET /v1/head")
        }
        guard route.methods.contains(method) else {
            return .error(
                405, "methodNotAllowed", "\(path.prefix(200)) accepts \(route.methods.joined(separator: ", "))")
        }
        switch route {
        case .explorer:
            return APIResponse(
                status: 200, contentType: "text/html; charset=utf-8", body: Array(ExplorerPage.html.utf8))
        case .head:
            return .json(200, APIJSON.head(node: node))
        case .supply:
            return .json(200, APIJSON.supply(node.supply))
        case .metrics:
            return APIResponse(status: 200, contentType: "text/plain; version=0.0.4", body: metrics.export())
        case .blocks:
            return blocks(query: query)
        case .block(let text):
            return blockByHeightOrHash(text)
        case .account(let text):
            return account(text)
        case .submit:
            return submit(body: body, contentType: contentType)
        case .tx(let text):
            return transaction(text)
        case .staking:
            return .json(200, stakingOverview())
        case .candidates:
            return candidates()
        case .candidate(let text):
            return candidate(text)
        case .buckets:
            return buckets(query: query)
        case .bucket(let text):
            return bucket(text)
        case .election(let text):
            return election(text)
        case .committee:
            return committee(query: query)
        case .checkpoints:
            return checkpoints(query: query)
        case .consensus:
            return .json(200, consensus())
        case .escrow(let text):
            return escrow(text)
        case .healthz:
            return .json(200, .object([("alive", .bool(true)), ("height", .number(node.status.head.height))]))
        case .readyz:
            return readiness()
        case .submitBatch:
            return submitBatch(body: body, contentType: contentType)
        case .search:
            return search(query: query)
        case .activity(let text):
            return activity(text, query: query)
        case .notifications(let text):
            return notifications(text, query: query)
        case .recipientFilter(let text):
            return recipientFilter(text)
        case .stealthAnnouncements(let text):
            return stealthAnnouncements(text)
        case .certificate(let text):
            return certificate(text)
        case .htlc(let text):
            return htlc(text)
        case .channel(let text):
            return channel(text)
        case .postCommand:
            return postCommand(body: body, contentType: contentType)
        case .commands(let text):
            return waitingCommands(text, query: query)
        case .postChannelMessage:
            return postChannelMessage(body: body, contentType: contentType)
        case .channelMessages(let text):
            return channelMessages(text, query: query)
        case .paymentRequest(let svg):
            return paymentRequest(query: query, svg: svg)
        case .events:
            // The HTTP server answers the stream itself; a request that reaches the router is not one it can hold.
            return .error(
                400, "notAStream", "GET /v1/events is a server-sent event stream; open it with EventSource or curl -N")
        }
    }

    static func parseQuery(_ query: Substring) -> [Substring: Substring] {
        var out: [Substring: Substring] = [:]
        for pair in query.split(separator: "&").prefix(32) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            out[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        return out
    }

    /// Decimal digits only: no sign, no spaces, no hex, so "7" and "007" mean the same height and "-1" is refused.
    static func parseUInt(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 20, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return UInt64(text)
    }

    // MARK: handlers

    func storeFailure(_ error: StoreError) -> APIResponse {
        logger.error("storage error while answering a request: \(error)")
        return .error(500, "internal", "the node could not read its storage; see its log")
    }

    private func blocks(query: [Substring: Substring]) -> APIResponse {
        var limit: UInt64 = 20
        if let text = query["limit"] {
            guard let n = Self.parseUInt(text), n > 0 else {
                return .error(400, "invalidQuery", "limit must be a whole number from 1 to 100")
            }
            limit = min(n, 100)
        }
        let top = node.head.height
        var rows: [JSONValue] = []
        var height = top
        do {
            while UInt64(rows.count) < limit {
                if let stored = try node.block(at: height) { rows.append(APIJSON.blockSummary(stored)) }
                if height == 0 { break }
                height -= 1
            }
        } catch {
            return storeFailure(error)
        }
        return .json(200, .object([("blocks", .array(rows))]))
    }

    func block(_ text: Substring) -> APIResponse {
        guard let height = Self.parseUInt(text) else {
            return .error(400, "invalidHeight", "a block height is a whole number, like /v1/blocks/12")
        }
        do {
            guard let stored = try node.block(at: height) else {
                return .error(404, "notFound", "no block at height \(height); the head is at \(node.head.height)")
            }
            return .json(200, APIJSON.block(stored))
        } catch {
            return storeFailure(error)
        }
    }

    private func account(_ text: Substring) -> APIResponse {
        guard text.utf8.count <= 120, let address = try? Address(bech32: String(text)) else {
            return .error(
                400, "invalidAddress",
                "an address is bech32m text starting with 'amsc1', like the output of 'amars key show'")
        }
        return .json(200, APIJSON.account(node.account(address)))
    }

    private static let noCommandDoor = APIResponse.error(404, "noCommandDoor", "this gateway has no command door")

    /// `POST /v1/commands`: a signed device command (its encoding, `application/octet-stream`) for the device it
    /// names, queued at the command door once its signature and certificate check out → 202 with the device and
    /// the sequence it was given.
    private func postCommand(body: [UInt8], contentType: String?) -> APIResponse {
        guard let commandDoor else { return Self.noCommandDoor }
        guard Self.mediaType(contentType) == "application/octet-stream" else {
            return .error(415, "unsupportedMediaType", "send application/octet-stream with the encoded command")
        }
        do throws(CommandDoor.Refusal) {
            let (device, sequence) = try commandDoor.post(body)
            return .json(202, .object([("device", .string(device.bech32)), ("sequence", .number(sequence))]))
        } catch {
            let status =
                switch error {
                case .undecodable, .tooLarge: 400
                default: 403
                }
            return .error(status, error.code, error.description)
        }
    }

    /// `GET /v1/commands/{address}?after=N`: the commands waiting for a device, as it would fetch them.
    private func waitingCommands(_ text: Substring, query: [Substring: Substring]) -> APIResponse {
        guard let commandDoor else { return Self.noCommandDoor }
        guard let device = Self.parseAddress(text) else { return .error(400, "invalidAddress", Self.addressHelp) }
        guard let after = UInt64(query["after"] ?? "0", radix: 10) else {
            return .error(400, "invalidAfter", "after= takes the last sequence seen, a whole number")
        }
        let entries = commandDoor.commands(for: device, after: after).map {
            JSONValue.object([("sequence", .number($0.sequence)), ("command", .string(Hex.encode($0.message)))])
        }
        return .json(200, .object([("device", .string(device.bech32)), ("commands", .array(entries))]))
    }

    /// `GET /v1/escrows/{id}`: the escrow opened by transaction `id`, with its state proof; 404 when none.
    private func escrow(_ text: Substring) -> APIResponse {
        guard text.utf8.count == 64, let raw = try? Hex.decode(String(text)), let id = Bytes32(raw) else {
            return .error(
                400, "invalidEscrowID", "an escrow id is the 64-hex-digit id of the transaction that opened it")
        }
        let view = node.escrow(id)
        guard view.state != nil else {
            return .error(404, "notFound", "no escrow was opened by transaction \(Hex.encode(id.bytes))")
        }
        return .json(200, APIJSON.escrow(view))
    }

    private func transaction(_ text: Substring) -> APIResponse {
        guard text.utf8.count == 64, let raw = try? Hex.decode(String(text)), let id = Bytes32(raw) else {
            return .error(400, "invalidTransactionID", "a transaction id is 64 hex digits")
        }
        do {
            let status = try node.status(of: id)
            if case .unknown = status {
                return .error(404, "notFound", "transaction \(Hex.encode(id.bytes)) is neither pending nor included")
            }
            if case .included = status { return includedTransaction(id, status: APIJSON.status(id: id, status)) }
            return .json(200, APIJSON.status(id: id, status))
        } catch {
            return storeFailure(error)
        }
    }

    private func submit(body: [UInt8], contentType: String?) -> APIResponse {
        guard body.count <= Self.maxBodyBytes else {
            return .error(413, "bodyTooLarge", "request bodies are limited to \(Self.maxBodyBytes) bytes")
        }
        let mediaType = Self.mediaType(contentType)
        let encoded: [UInt8]
        switch mediaType {
        case "application/json":
            switch Self.transactionHex(fromJSON: body) {
            case .success(let bytes): encoded = bytes
            case .failure(let refusal): return .error(400, refusal.code, refusal.message)
            }
        case "application/octet-stream":
            encoded = body
        default:
            return .error(
                415, "unsupportedMediaType",
                "send application/json {\"tx\":\"<hex>\"} or application/octet-stream with the encoded transaction")
        }
        do {
            // Journaled before the 202 leaves: the acknowledgement survives a crash of this node.
            let id = try node.submitAcknowledged(encoded: encoded)
            logger.debug("accepted transaction \(Hex.encode(id.bytes))")
            return .json(202, .object([("id", .hex(id)), ("status", .string("pending"))]))
        } catch {
            switch error {
            case .refused(let refusal):
                let (status, code, message) = Self.describe(refusal)
                return .error(status, code, message)
            case .notStored(let failure):
                logger.error("cannot journal a submitted transaction: \(failure)")
                return .error(503, "notStored", "the gateway cannot keep the transaction on disk; retry later")
            }
        }
    }

    /// A Content-Type's media type, lowercased, without parameters ("" when absent).
    static func mediaType(_ contentType: String?) -> String {
        (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            ?? ""
    }

    /// Most transactions one `POST /v1/txs` carries (the body cap bounds it too).
    static let maxBatch = 512

    private func submitBatch(body: [UInt8], contentType: String?) -> APIResponse {
        let mediaType = Self.mediaType(contentType)
        let items: [[UInt8]]
        switch mediaType {
        case "application/octet-stream":
            do { items = try TransactionBatch.decode(body, maxCount: Self.maxBatch) } catch {
                return .error(
                    400, "malformedBatch",
                    "the body is not a transaction batch (1 to \(Self.maxBatch) length-prefixed transactions): "
                        + Self.describe(error))
            }
        case "application/json":
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                let list = object["txs"] as? [String], (1...Self.maxBatch).contains(list.count)
            else {
                return .error(
                    400, "malformedBatch", "send {\"txs\":[\"<hex>\",...]} with 1 to \(Self.maxBatch) transactions")
            }
            var decoded: [[UInt8]] = []
            for (i, text) in list.enumerated() {
                guard let bytes = try? Hex.decode(text, maxBytes: Caps.transactionBytes), !bytes.isEmpty else {
                    return .error(400, "invalidHex", "txs[\(i)] is not hex of a transaction")
                }
                decoded.append(bytes)
            }
            items = decoded
        default:
            return .error(
                415, "unsupportedMediaType",
                "send application/octet-stream (a transaction batch) or application/json {\"txs\":[\"<hex>\",...]}")
        }
        let results = node.submitAcknowledged(batch: items).map { result -> JSONValue in
            switch result {
            case .success(let id):
                return .object([("id", .hex(id)), ("status", .string("pending"))])
            case .failure(.refused(let refusal)):
                let (_, code, message) = Self.describe(refusal)
                return APIJSON.error(code: code, message: message)
            case .failure(.notStored(let failure)):
                logger.error("cannot journal a submitted transaction: \(failure)")
                return APIJSON.error(code: "notStored", message: "the gateway cannot keep it on disk; retry later")
            }
        }
        return .json(200, .object([("results", .array(results))]))
    }

    struct Refusal: Error {
        var code: String
        var message: String
    }

    /// `{"tx":"<hex>"}` → bytes. Unknown extra fields are ignored so clients can add metadata.
    static func transactionHex(fromJSON body: [UInt8]) -> Result<[UInt8], Refusal> {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        } catch {
            return .failure(Refusal(code: "invalidJSON", message: "the body is not valid JSON"))
        }
        guard let dict = object as? [String: Any] else {
            return .failure(Refusal(code: "wrongType", message: "the body must be a JSON object {\"tx\":\"<hex>\"}"))
        }
        guard let value = dict["tx"] else {
            return .failure(
                Refusal(code: "missingField", message: "missing field 'tx' (hex of the signed transaction)"))
        }
        guard let text = value as? String else {
            return .failure(Refusal(code: "wrongType", message: "field 'tx' must be a string of hex digits"))
        }
        do {
            return .success(try Hex.decode(text, maxBytes: maxBodyBytes))
        } catch {
            let why =
                switch error {
                case .oddLength: "an odd number of hex digits"
                case .invalidCharacter(let offset): "a character that is not a hex digit at offset \(offset)"
                case .tooLong: "too many digits"
                }
            return .failure(Refusal(code: "invalidHex", message: "field 'tx' has \(why)"))
        }
    }

    /// HTTP status, stable code and a message with the numbers the sender needs to fix the transaction.
    public static func describe(_ error: TransactionError) -> (status: Int, code: String, message: String) {
        switch error {
        case .malformed(let e): (400, "malformed", "the transaction does not decode: \(describe(e))")
        case .invalidSenderKey: (400, "invalidSenderKey", "the sender is not a valid x-only public key")
        case .badSignature: (400, "badSignature", "the signature does not verify against the sender's key")
        case .wrongChain(let expected, let got):
            (
                400, "wrongChain",
                "the transaction names genesis block \(Hex.encode(got.bytes)); this node's chain starts at "
                    + Hex.encode(expected.bytes)
            )
        case .nonceReplayed(let expected, let got):
            (400, "nonceReplayed", "nonce \(got) is already used; the next nonce is \(expected)")
        case .nonceGap(let expected, let got):
            (400, "nonceGap", "nonce \(got) leaves a gap; the next nonce is \(expected)")
        case .feeBelowBaseFee(let baseFee, let maxFee):
            (400, "feeBelowBaseFee", "maxFeePerUnit \(maxFee) is below the base fee \(baseFee); raise it")
        case .insufficientBalance(let needed, let available):
            (
                400, "insufficientBalance",
                "needs \(needed) units (\(Amount.format(needed)) AMSC) including the fee cap; "
                    + "the balance is \(available) (\(Amount.format(available)) AMSC)"
            )
        case .amountOverflow: (400, "amountOverflow", "amount plus fee overflows; no account could ever pay it")
        case .unsupportedKind(let tag):
            (400, "unsupportedKind", "transaction kind \(tag) is not executed by this chain version yet")
        case .mempoolFull:
            (503, "mempoolFull", "the mempool is full and this fee does not outbid anything; retry later")
        case .senderQueueFull:
            (400, "senderQueueFull", "this sender has too many pending transactions; wait for a block")
        case .replacementUnderpriced:
            (
                400, "replacementUnderpriced",
                "a pending transaction has this nonce; a replacement must raise both fee fields by at least 10%"
            )
        case .alreadyKnown: (400, "alreadyKnown", "this transaction is already pending")
        case .blockFull: (400, "blockFull", "the transaction does not fit in a block")
        case .staking(let e): (400, "\(e.code)", describe(e))
        case .escrow(let e): (400, "\(e.code)", describe(e))
        case .certificate(let e): (400, "\(e.code)", describe(e))
        case .htlc(let e): (400, "\(e.code)", describe(e))
        case .channel(let e): (400, "\(e.code)", e.description)
        }
    }

    static func describe(_ error: HTLCError) -> String {
        switch error {
        case .sameParty: "an HTLC's recipient cannot be its sender"
        case .expiryPassed(let height): "the expiry height must be after the block it locks in (\(height))"
        case .unknownHTLC: "no HTLC was locked by that transaction id"
        case .notOpen: "the HTLC is already claimed or refunded"
        case .notRecipient: "only the HTLC's recipient may claim it"
        case .notSender: "only the HTLC's sender may refund it"
        case .wrongPreimage: "SHA-256 of the preimage is not the HTLC's hash lock"
        case .claimTooLate(let expiry): "the HTLC expired at height \(expiry); only its sender may take it back now"
        case .refundTooEarly(let expiry): "the HTLC can be refunded only after height \(expiry)"
        }
    }

    static func describe(_ error: CertificateRefusal) -> String {
        switch error {
        case .unreadable: "not an X.509 certificate of the chain's profile; 'amars cert inspect' says what is wrong"
        case .alreadyPublished: "this certificate is already on chain"
        case .serialReused: "the issuer already has a certificate on chain with this serial number; use another"
        case .expired: "the certificate's validity ended before this block's time"
        case .rootNotSentByItsKey: "a root certificate is anchored only by a transaction signed with its own key"
        case .notACertificateAuthority: "the root or issuer is not a CA allowed to sign certificates"
        case .unknownIssuer: "no CA certificate on chain has the issuer key this certificate names; publish it first"
        case .issuerNotValid: "the issuer or one of its ancestors is revoked, expired or not yet valid"
        case .badSignature: "the issuer's key did not sign this certificate (low-S ECDSA over SHA-256)"
        case .issuerNameMismatch: "the issuer name is not the issuer certificate's subject"
        case .pathLengthExceeded: "an ancestor's path length allows no more CA levels below it"
        case .lifetimeOutOfRange(let seconds):
            "a short-lived certificate lasts 5 minutes to 24 hours; this one lasts \(seconds) s"
        case .subjectNotItsAccount: "a device CA's subject must be its key's account (amsc1...)"
        case .subjectNotTheIssuer: "a short-lived certificate's subject must be the device that issued it"
        case .unknownCertificate: "no certificate with this id is on chain"
        case .alreadyRevoked: "the certificate is already revoked"
        case .notAnAncestor: "only the key of one of the certificate's ancestors may revoke it"
        case .noValidCertificate:
            "this gateway takes device transactions only from accounts with a valid certificate (amars cert enroll)"
        }
    }

    static func describe(_ error: EscrowError) -> String {
        switch error {
        case .emptyEscrow: "an escrow must hold a deposit or a fee"
        case .sameParty: "the renter cannot be the escrow's device or owner"
        case .expiryPassed(let height): "the expiry height must be after the block it opens in (\(height))"
        case .unknownEscrow: "no escrow was opened by that transaction id"
        case .notOpen: "the escrow is already closed"
        case .wrongDevice: "the close's device key is not the escrow's device"
        case .badDeviceSignature: "the device's signature over (chain, escrow, damages) does not verify"
        case .damagesOverDeposit(let deposit): "damages may not exceed the deposit (\(deposit) units)"
        case .damagesOverAgreed(let maximum):
            "the renter accepted at most \(maximum) units of damages when it opened the escrow"
        case .notOwner: "after the return deadline only the owner may close the escrow (the item is deemed kept)"
        case .returnWindowOpen(let deadline):
            "until height \(deadline) (expiry plus the grace period) only the device's signed return closes it"
        }
    }

    static func describe(_ error: StakingError) -> String {
        switch error {
        case .alreadyCandidate: "the sender is already a candidate; use candidate update"
        case .nameTaken: "another candidate has this name"
        case .notACandidate: "the address is not a registered candidate"
        case .candidateEjected: "the candidate was ejected for double signing"
        case .invalidOperatorKey: "the operator key is not a valid x-only public key"
        case .selfStakeTooLow(let min): "self-stake must be at least \(min) units (\(Amount.format(min)) AMSC)"
        case .durationTooLong(let max): "a bucket can be locked for at most \(max) epochs"
        case .durationShortened(let remaining): "the new duration must cover the \(remaining) epochs still locked"
        case .unknownBucket(let id): "there is no stake bucket \(id)"
        case .notBucketOwner: "the bucket belongs to another address"
        case .alreadyUnstaked: "the bucket is already unstaked"
        case .stillLocked(let epoch): "the bucket is locked until epoch \(epoch) (or auto-staking; restake it first)"
        case .selfStakeBucket: "a candidate's self-stake bucket cannot be unstaked"
        case .notUnstaked: "unstake the bucket before withdrawing it"
        case .unbonding(let epoch): "the bucket can be withdrawn from epoch \(epoch)"
        case .invalidEvidence:
            "the evidence is not two conflicting, validly signed votes of one committee member on this chain"
        case .evidenceAlreadyUsed: "this double-sign was already reported"
        }
    }

    static func describe(_ error: CodecError) -> String {
        switch error {
        case .truncated: "it ends too early (truncated)"
        case .trailingBytes(let n): "\(n) extra bytes after its end"
        case .nonMinimalVarint: "a number is not minimally encoded"
        case .varintOverflow: "a number does not fit in 64 bits"
        case .lengthOverCap(let length, let cap): "a length of \(length) exceeds the cap of \(cap)"
        case .unknownTag(let tag): "unknown tag \(tag)"
        case .invalidFlag(let flag): "flag byte \(flag) is neither 0 nor 1"
        case .invalidValue(let field): "invalid \(field) field"
        }
    }

    // MARK: metrics

    /// The chain's gauges, read at each export.
    private static func collectChain(_ node: ChainNode, into m: GatewayMetrics) {
        let status = node.status
        m.gauge("amars_head_height").record(Int64(status.head.height))
        m.gauge("amars_head_timestamp_seconds").record(Double(status.head.timestamp) / 1000)
        m.gauge("amars_base_fee").record(Int64(clamping: status.nextBaseFee))
        m.gauge("amars_mempool_transactions").record(Int64(status.pending))
        m.gauge("amars_accounts").record(Int64(status.accounts))
    }
}

// MARK: - staking, committees, checkpoints

extension APIRouter {
    private static let addressHelp =
        "an address is bech32m text starting with 'amsc1', like the output of 'amars address --key F'"

    static func parseAddress(_ text: Substring) -> Address? {
        guard text.utf8.count <= 120 else { return nil }
        return try? Address(bech32: String(text))
    }

    /// The epoch the next block executes in: stake locks and unbonding are measured against it.
    private func nextBlockEpoch(_ head: BlockHeader) -> UInt64 { head.height / node.genesis.epochLength }

    fileprivate func stakingOverview() -> JSONValue {
        let head = node.head
        let p = node.genesis.staking
        let length = node.genesis.epochLength
        let finished = head.height / length
        let latest: JSONValue =
            finished == 0
            ? .null : .object([("epoch", .number(finished - 1)), ("height", .number(finished * length))])
        let staked = node.supply.staked
        return .object([
            ("epochLength", .number(length)),
            ("headHeight", .number(head.height)),
            ("headEpoch", .number(head.epoch)),
            ("nextBlockEpoch", .number(nextBlockEpoch(head))),
            ("minSelfStake", .units(p.minSelfStake)),
            ("minSelfStakeAMSC", .string(Amount.format(p.minSelfStake))),
            ("unbondingEpochs", .number(p.unbondingEpochs)),
            ("maxDurationEpochs", .number(UInt64(p.maxDurationEpochs))),
            ("poolSize", .int(p.poolSize)),
            ("committeeSize", .int(p.committeeSize)),
            ("candidates", .int(node.candidates().count)),
            ("staked", .units(staked)),
            ("stakedAMSC", .string(Amount.format(staked))),
            ("latestCheckpoint", latest),
        ])
    }

    fileprivate func candidates() -> APIResponse {
        let poolEpoch = nextBlockEpoch(node.head)
        let pool = Set((node.delegatePool(epoch: poolEpoch)?.delegates ?? []).map(\.candidate))
        let rows = node.candidates().sorted {
            $0.state.totalWeight != $1.state.totalWeight
                ? $0.state.totalWeight > $1.state.totalWeight : $0.owner < $1.owner
        }
        return .json(
            200,
            .object([
                ("poolEpoch", .number(poolEpoch)),
                (
                    "candidates",
                    .array(rows.map { APIJSON.candidate(owner: $0.owner, $0.state, inPool: pool.contains($0.owner)) })
                ),
            ]))
    }

    fileprivate func candidate(_ text: Substring) -> APIResponse {
        guard let owner = Self.parseAddress(text) else { return .error(400, "invalidAddress", Self.addressHelp) }
        guard let state = node.candidate(owner) else {
            return .error(
                404, "notFound", "\(owner.bech32) is not a registered candidate; GET /v1/candidates lists them")
        }
        let poolEpoch = nextBlockEpoch(node.head)
        let inPool = node.delegatePool(epoch: poolEpoch)?.delegates.contains { $0.candidate == owner } ?? false
        guard case .object(var fields) = APIJSON.candidate(owner: owner, state, inPool: inPool) else {
            return .json(200, APIJSON.candidate(owner: owner, state, inPool: inPool))
        }
        fields.append(("voterRewardsAccrued", .units(node.voterRewardsAccrued(owner))))
        return .json(200, .object(fields))
    }

    fileprivate func buckets(query: [Substring: Substring]) -> APIResponse {
        var owner: Address?
        var candidate: Address?
        if let text = query["owner"] {
            guard let a = Self.parseAddress(text) else {
                return .error(400, "invalidAddress", "owner: " + Self.addressHelp)
            }
            owner = a
        }
        if let text = query["candidate"] {
            guard let a = Self.parseAddress(text) else {
                return .error(400, "invalidAddress", "candidate: " + Self.addressHelp)
            }
            candidate = a
        }
        guard owner != nil || candidate != nil else {
            return .error(
                400, "invalidQuery", "name whose buckets: /v1/buckets?owner=amsc1… or /v1/buckets?candidate=amsc1…")
        }
        let limit = 1000
        let unbonding = node.genesis.staking.unbondingEpochs
        let matching = node.buckets().filter {
            (owner == nil || $0.state.owner == owner) && (candidate == nil || $0.state.candidate == candidate)
        }
        let rows = matching.prefix(limit).map {
            JSONValue.object(APIJSON.bucketFields(id: $0.id, $0.state, unbondingEpochs: unbonding))
        }
        return .json(
            200,
            .object([
                ("nextBlockEpoch", .number(nextBlockEpoch(node.head))),
                ("buckets", .array(Array(rows))),
                ("truncated", .bool(matching.count > limit)),
            ]))
    }

    fileprivate func bucket(_ text: Substring) -> APIResponse {
        guard let id = Self.parseUInt(text) else {
            return .error(400, "invalidBucketID", "a bucket id is a whole number, like /v1/buckets/3")
        }
        let (state, proof, root) = node.bucket(id)
        let proofFields: [(String, JSONValue)] = [
            ("stateRoot", .hex(root)), ("proof", .hex(proof.encoded)),
        ]
        guard let state else {
            // The proof shows the absence of the bucket under the head's state root.
            let error = APIJSON.error(
                code: "notFound",
                message: "there is no stake bucket \(id) (never created, or withdrawn); 'proof' shows its absence")
            guard case .object(let fields) = error else { return .json(404, error) }
            return .json(
                404,
                .object(
                    fields + [("id", .number(id)), ("stateKey", .hex(StakingRules.bucketKey(id).treeKey))]
                        + proofFields))
        }
        let fields = APIJSON.bucketFields(id: id, state, unbondingEpochs: node.genesis.staking.unbondingEpochs)
        return .json(200, .object(fields + [("nextBlockEpoch", .number(nextBlockEpoch(node.head)))] + proofFields))
    }

    /// The height of the block that elects the pool of `epoch` (the middle of the epoch before), if it exists.
    private func electionHeight(_ epoch: UInt64) -> UInt64? {
        let length = node.genesis.epochLength
        guard epoch > 0 else { return nil }
        let (start, o1) = (epoch - 1).multipliedReportingOverflow(by: length)
        let (h, o2) = start.addingReportingOverflow(length / 2 + 1)
        return o1 || o2 ? nil : h
    }

    fileprivate func election(_ text: Substring) -> APIResponse {
        guard let epoch = Self.parseUInt(text) else {
            return .error(400, "invalidEpoch", "an epoch is a whole number, like /v1/election/2")
        }
        guard let pool = node.delegatePool(epoch: epoch) else {
            let when =
                epoch == 0
                ? "epoch 0 runs on the genesis validators; pools are elected from epoch 1"
                : electionHeight(epoch).map { "it is elected at height \($0), the middle of epoch \(epoch - 1)" }
                    ?? "it is elected in the middle of epoch \(epoch - 1)"
            return .error(
                404, "notFound", "no delegate pool for epoch \(epoch) yet: \(when); the head is at \(node.head.height)")
        }
        let delegates = pool.delegates.enumerated().map { i, d -> JSONValue in
            .object([
                ("rank", .int(i + 1)),
                ("candidate", .string(d.candidate.bech32)),
                ("name", .string(node.candidate(d.candidate).map { APIJSON.name($0.name) } ?? "")),
                ("operatorKey", .hex(d.operatorKey)),
                ("weight", .units(d.weight)),
            ])
        }
        return .json(
            200,
            .object([
                ("epoch", .number(pool.epoch)),
                ("electedAtHeight", electionHeight(epoch).map { .number($0) } ?? .null),
                ("poolSize", .int(node.genesis.staking.poolSize)),
                ("delegates", .array(delegates)),
                ("encoded", .hex(pool.encoded)),
            ]))
    }

    fileprivate func committee(query: [Substring: Substring]) -> APIResponse {
        let head = node.head
        let length = node.genesis.epochLength
        var epoch = head.epoch
        if let text = query["epoch"] {
            guard let e = Self.parseUInt(text) else {
                return .error(400, "invalidEpoch", "epoch must be a whole number, like /v1/committee?epoch=2")
            }
            epoch = e
        }
        // The last block of an epoch draws the next committee; until then only epochs up to the head's are fixed.
        guard let c = node.committee(epoch: epoch) else {
            return .error(
                404, "notFound",
                "the committee of epoch \(epoch) is not drawn yet: the last block of epoch \(epoch == 0 ? 0 : epoch - 1) "
                    + "draws it; the head is at height \(head.height), epoch \(head.epoch)")
        }
        let source =
            epoch == 0
            ? "genesis validators"
            : c == node.genesis.committee(epoch: epoch)
                ? "genesis validators (no delegate pool was elected for this epoch)"
                : "drawn by VRF from the delegate pool elected for epoch \(epoch)"
        guard case .object(var fields) = APIJSON.committee(c) else { return .json(200, APIJSON.committee(c)) }
        fields.append(("namedAtHeight", .number(epoch * length)))
        fields.append(("source", .string(source)))
        // Genesis validators carry plain voting weights; an elected committee's weights are stake in base units.
        fields.append(("genesisWeights", .bool(c == node.genesis.committee(epoch: epoch))))
        fields.append(("encoded", .hex(c.encoded)))
        return .json(200, .object(fields))
    }

    fileprivate func checkpoints(query: [Substring: Substring]) -> APIResponse {
        var from: UInt64 = 0
        var limit: UInt64 = 16
        if let text = query["from"] {
            guard let n = Self.parseUInt(text) else {
                return .error(400, "invalidQuery", "from must be a whole epoch number, like ?from=3")
            }
            from = n
        }
        if let text = query["limit"] {
            guard let n = Self.parseUInt(text), n > 0 else {
                return .error(400, "invalidQuery", "limit must be a whole number from 1 to 256")
            }
            limit = min(n, 256)
        }
        let finished = node.head.height / node.genesis.epochLength
        do {
            // Epochs past the last finished one have no checkpoint; asking the node for them (up to UInt64.max)
            // would only cost it arithmetic at the edge of the range.
            let list = from < finished ? try node.checkpoints(from: from, limit: Int(limit)) : []
            var rendered: [JSONValue] = []
            for cp in list {
                let attesters = Array(try node.attestations(height: cp.header.height).keys)
                rendered.append(APIJSON.checkpoint(cp, attesters: attesters))
            }
            return .json(
                200,
                .object([
                    ("from", .number(from)),
                    ("finishedEpochs", .number(finished)),
                    ("checkpoints", .array(rendered)),
                ]))
        } catch {
            return storeFailure(error)
        }
    }
}

// MARK: - consensus status

extension APIRouter {
    /// `GET /v1/consensus`. With a driver: its snapshot plus the chain's head. Without one (dev mode): what the
    /// chain alone knows — the committee of the next block, this node's key, the head and its certificate.
    fileprivate func consensus() -> JSONValue {
        let head = node.finalizedHead
        let header = head.block.header
        let ownKey = node.validatorPublicKey
        let status = consensusStatus?()
        // The committee of the next block: the one consensus is (or would be) running.
        let committee =
            status?.committee ?? node.committee(epoch: nextBlockEpoch(header))
            ?? node.genesis.committee(epoch: nextBlockEpoch(header))
        let connected = status?.connectedPeers
        let members = committee.members.enumerated().map { i, m -> JSONValue in
            guard case .object(var fields) = APIJSON.member(m, index: i) else { return APIJSON.member(m, index: i) }
            fields.append(("self", .bool(m.key == ownKey)))
            // A node is not its own peer; in dev mode there are no peers at all.
            fields.append(("connected", connected.map { .bool($0.contains(m.key)) } ?? .null))
            return .object(fields)
        }
        let ownIndex = ownKey.flatMap { committee.index(of: $0) }
        let ownAddress = ownKey.flatMap { try? XOnlyPublicKey(bytes: $0) }.map { Address(publicKey: $0).bech32 }
        let nodeFields: JSONValue = .object([
            ("key", ownKey.map { .hex($0) } ?? .null),
            ("address", ownAddress.map { .string($0) } ?? .null),
            ("member", .bool(ownIndex != nil)),
            ("memberIndex", ownIndex.map { .int($0) } ?? .null),
        ])
        let committeeFields: JSONValue = .object([
            ("epoch", .number(committee.epoch)),
            ("hash", .hex(committee.hash)),
            ("totalWeight", .units(committee.totalWeight)),
            ("genesisWeights", .bool(committee == node.genesis.committee(epoch: committee.epoch))),
            ("members", .array(members)),
        ])
        let core: JSONValue =
            status.map { s in
                .object([
                    ("started", .bool(s.started)),
                    ("height", .number(s.height)),
                    ("round", .number(UInt64(s.round))),
                    ("step", .string(APIJSON.stepName(s.step))),
                ])
            } ?? .null
        let decided = status?.lastDecided ?? (header.height, head.certificate.round)
        var fields: [(String, JSONValue)] = [
            ("mode", .string(status == nil ? "dev" : "committee")),
            ("chainID", .number(UInt64(node.genesis.chainID))),
            ("epoch", .number(committee.epoch)),
            ("committee", committeeFields),
            ("node", nodeFields),
            ("core", core),
            ("lastDecided", .object([("height", .number(decided.height)), ("round", .number(UInt64(decided.round)))])),
            ("finality", finality(head)),
        ]
        if let s = status {
            let sorted = s.connectedPeers.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            let keys = sorted.map { JSONValue.hex($0) }
            fields.append(("peers", .object([("connected", .int(keys.count)), ("keys", .array(keys))])))
            fields.append(("network", APIJSON.networkCounters(s.network)))
            fields.append(("consensusDrops", .object(s.consensusDrops.map { ($0.reason, .number($0.count)) })))
        } else {
            fields.append(("peers", .null))
            fields.append(("network", .null))
            fields.append(("consensusDrops", .null))
        }
        return .object(fields)
    }

    /// The head is final when its commit certificate carries more than two thirds of its epoch's committee
    /// weight (`ChainNode` refuses any block whose certificate does not). The genesis block is final by
    /// definition: it is trusted by its hash, and carries no signatures.
    private func finality(_ head: FinalizedBlock) -> JSONValue {
        let h = head.block.header
        let committee = node.committee(epoch: h.epoch)
        var signed: UInt64 = 0
        var signers = 0
        if let committee {
            for s in head.certificate.signatures where Int(s.memberIndex) < committee.members.count {
                signed &+= committee.members[Int(s.memberIndex)].weight
                signers += 1
            }
        }
        let total = committee?.totalWeight ?? 0
        return .object([
            ("height", .number(h.height)),
            ("hash", .hex(h.hash)),
            ("round", .number(UInt64(head.certificate.round))),
            ("signers", .int(signers)),
            ("signedWeight", .units(signed)),
            ("totalWeight", .units(total)),
            ("final", .bool(h.height == 0 || (committee?.isQuorum(signed) ?? false))),
        ])
    }
}
