import AmarsCodec
import Chain
import DeviceIdentity
import DeviceProtocol
import Foundation
import Ledger

/// What a handler answers: a response code, a body, and the body's content format (nil without a body).
public struct DeviceResponse: Equatable, Sendable {
    public var code: CoAPCode
    public var payload: [UInt8]
    public var contentFormat: UInt16?
    /// Sent with 4.13 (RFC 7959 §2.9.3): the largest body this resource accepts.
    public var size1: UInt32?

    public init(code: CoAPCode, payload: [UInt8] = [], contentFormat: UInt16? = nil, size1: UInt32? = nil) {
        self.code = code
        self.payload = payload
        self.contentFormat = contentFormat
        self.size1 = size1
    }

    /// A chain-encoded body (content-format 42).
    public static func chain(_ code: CoAPCode, _ payload: [UInt8]) -> DeviceResponse {
        DeviceResponse(code: code, payload: payload, contentFormat: ContentFormat.chainPayload)
    }

    /// An error with a short ASCII diagnostic (RFC 7252 §5.5.2: diagnostic payloads are text, no
    /// content-format), kept short so it fits any device's receive buffer.
    public static func error(_ code: CoAPCode, _ diagnostic: String) -> DeviceResponse {
        DeviceResponse(code: code, payload: Array(diagnostic.utf8.prefix(DeviceResourceHandlers.maxDiagnosticBytes)))
    }
}

/// Uri-Query arguments (`key=value`, joined with '&' the way libcoap hands them to a handler), parsed with
/// caps because every byte comes from the network.
public struct DeviceQuery: Equatable, Sendable {
    public static let maxArguments = 8
    public static let maxBytes = 512

    public private(set) var arguments: [(key: String, value: String)] = []

    public static func == (a: DeviceQuery, b: DeviceQuery) -> Bool {
        a.arguments.elementsEqual(b.arguments) { $0.key == $1.key && $0.value == $1.value }
    }

    /// Nil when the query is too long, has too many arguments, repeats a key, or has an argument without '='
    /// or that is not printable ASCII.
    public init?(_ raw: [UInt8]) {
        guard raw.count <= Self.maxBytes else { return nil }
        if raw.isEmpty { return }
        let parts = raw.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false)
        guard parts.count <= Self.maxArguments else { return nil }
        for part in parts {
            guard part.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                let eq = part.firstIndex(of: UInt8(ascii: "=")), eq > part.startIndex
            else { return nil }
            let key = String(decoding: part[part.startIndex..<eq], as: UTF8.self)
            let value = String(decoding: part[(eq + 1)...], as: UTF8.self)
            guard !arguments.contains(where: { $0.key == key }) else { return nil }
            arguments.append((key, value))
        }
    }

    public subscript(key: String) -> String? { arguments.first { $0.key == key }?.value }

    /// Whether every argument's key is one of `allowed`: an unknown key is a typo a device should hear about.
    public func only(_ allowed: Set<String>) -> Bool { arguments.allSatisfy { allowed.contains($0.key) } }

    /// Whether every argument's key is one `resource` takes (DeviceProtocol's table, which clients build from).
    public func only(_ resource: DeviceResource) -> Bool {
        only(Set(resource.queryKeys.map { $0.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }))
    }
}

/// The device API as pure functions from a request's query and body to a response, so every code and byte
/// can be tested without libcoap or sockets. The CoAP adapter (``CoAPServer``) only moves bytes in and out.
///
/// Reads go to ``ChainNode``'s thread-safe queries and the one write is ``ChainNode/submit(encoded:)``: the
/// gateway never changes chain state except by submitting a transaction like any other client.
public struct DeviceResourceHandlers: Sendable {
    public static let maxDiagnosticBytes = 64
    /// Checkpoints per response when the device does not say.
    public static let defaultCheckpointLimit = 16

    public let node: ChainNode
    /// Largest transaction body accepted on `v1/tx` (a signed transaction never exceeds this).
    public let maxTransactionBytes: Int
    /// Encoded `v1/checkpoints` answers of the current head (see ``CheckpointCache``).
    let checkpointCache: CheckpointCache
    /// The operator's re-anchor statement (`amars device reanchor --out FILE`), read at each request so the
    /// operator can replace it while the gateway runs; nil: `v1/reanchor` answers 4.04.
    public let reanchorFile: String?
    /// The command door whose queues `v1/commands` lists; nil: 4.04.
    public let commands: CommandDoor?
    /// The channel door `v1/channel/message` posts to and `v1/channel/messages` lists; nil: 4.04.
    public let channels: ChannelDoor?

    public init(
        node: ChainNode, maxTransactionBytes: Int = Caps.transactionBytes, reanchorFile: String? = nil,
        commands: CommandDoor? = nil, channels: ChannelDoor? = nil
    ) {
        self.channels = channels
        self.node = node
        self.maxTransactionBytes = maxTransactionBytes
        self.checkpointCache = CheckpointCache()
        self.reanchorFile = reanchorFile
        self.commands = commands
    }

    /// Answers a request to `route` with the raw Uri-Query (arguments joined by '&') and the request body.
    public func handle(_ route: DeviceResource, query rawQuery: [UInt8], body: [UInt8]) -> DeviceResponse {
        guard let query = DeviceQuery(rawQuery) else { return .error(.badRequest, "malformed query") }
        switch route {
        case .head: return head(query)
        case .checkpoints: return checkpoints(query)
        case .headers: return headers(query)
        case .txProof: return transactionProof(query)
        case .accountProof: return accountProof(query)
        case .certificate: return certificate(query)
        case .transaction: return submit(query, body: body)
        case .receipt: return receipt(query)
        case .inbox: return inbox(query)
        case .escrowProof: return objectProof(.escrowProof, query, node.escrow)
        case .htlcProof: return objectProof(.htlcProof, query, node.htlc)
        case .channelProof: return objectProof(.channelProof, query, node.channel)
        case .channelMessages: return channelMessages(query)
        case .channelMessage: return postChannelMessage(query, body: body)
        case .skip: return skip(query)
        case .reanchor: return reanchor(query)
        case .notifications: return notifications(query)
        case .recipientFilter: return recipientFilter(query)
        case .commands: return waitingCommands(query)
        }
    }

    // MARK: resources

    func head(_ query: DeviceQuery) -> DeviceResponse {
        guard query.arguments.isEmpty else { return .error(.badRequest, "v1/head takes no query") }
        return header(at: node.status.head.height)
    }

    func headers(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.headers), let text = query["h"] else { return .error(.badRequest, "need h=<height>") }
        guard let height = Self.decimal(text) else { return .error(.badRequest, "h is not a height") }
        return header(at: height)
    }

    private func header(at height: UInt64) -> DeviceResponse {
        do {
            guard let stored = try node.block(at: height) else { return .error(.notFound, "no block \(height)") }
            return .chain(.content, HeaderPayload(stored.finalized).encoded)
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    func checkpoints(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.checkpoints), let fromText = query["from"] else {
            return .error(.badRequest, "need from=<epoch>[&limit=<n>]")
        }
        guard let from = Self.decimal(fromText) else { return .error(.badRequest, "from is not an epoch") }
        var limit = Self.defaultCheckpointLimit
        if let text = query["limit"] {
            guard let n = Self.decimal(text), n >= 1 else { return .error(.badRequest, "limit is not a count >= 1") }
            limit = Int(min(n, UInt64(CheckpointsPayload.maxCount)))
        }
        // Every device asks for the same few runs, and each answer would otherwise read and decode blocks from
        // SQLite: answers are kept per head height (read before the chain is, so an entry is never older than
        // its key) and dropped when the head moves.
        let height = node.head.height
        if let cached = checkpointCache.payload(from: from, limit: limit, headHeight: height) {
            return .chain(.content, cached)
        }
        do {
            let payload = CheckpointsPayload(try node.checkpoints(from: from, limit: limit)).encoded
            checkpointCache.store(payload, from: from, limit: limit, headHeight: height)
            return .chain(.content, payload)
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    /// The checkpoint closing epoch `to` with the attestations of the pool of epoch `from` (the device's trusted
    /// epoch) and that pool's roster: what a device skipping from `from` counts (``SkipPayload``). Without `to`,
    /// the newest checkpoint that a third of that pool attested, looking back a few epochs (attestations arrive
    /// just after finality), else the newest: the device then bisects. A checkpoint past `from` comes without
    /// its commit signatures.
    func skip(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.skip), let fromText = query["from"] else {
            return .error(.badRequest, "need from=<trusted epoch>[&to=<epoch>]")
        }
        guard let from = Self.decimal(fromText) else { return .error(.badRequest, "from is not an epoch") }
        let length = node.genesis.epochLength
        let headHeight = node.head.height
        var newest = headHeight / length
        guard newest > 0 else { return .error(.notFound, "no checkpoint yet") }
        newest -= 1  // the newest epoch that has closed
        guard let pool = node.poolRoster(epoch: from) else { return .error(.notFound, "no pool of epoch \(from)") }
        var candidates: [UInt64]
        if let text = query["to"] {
            guard let asked = Self.decimal(text) else { return .error(.badRequest, "to is not an epoch") }
            guard asked <= newest else { return .error(.notFound, "epoch \(asked) has not closed") }
            candidates = [asked]
        } else {
            candidates = (0..<Self.attestationLookback).compactMap { newest >= $0 ? newest - $0 : nil }
        }
        do {
            var offered: SkipPayload?
            for epoch in candidates {
                guard var checkpoint = try node.checkpoints(from: epoch, limit: 1).first else { continue }
                // A far checkpoint counts by the pool's attestations alone: its commit signatures (a kilobyte at
                // production size) would only cost a board heap. The adjacent one is checked by them.
                if epoch > from { checkpoint.certificate.signatures = [] }
                let kept = try node.attestations(height: checkpoint.header.height)
                let (attestations, enough) = PoolRoster.attestations(
                    by: pool, height: checkpoint.header.height, blockHash: checkpoint.header.hash
                ) { kept[pool.members[$0].key] }
                let payload = SkipPayload(checkpoint: checkpoint, trustedPool: pool, attestations: attestations)
                if offered == nil || enough { offered = payload }
                if enough { break }
            }
            guard let offered else { return .error(.notFound, "no checkpoint of epoch \(candidates[0])") }
            return .chain(.content, offered.encoded)
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    /// How many closed epochs `v1/skip` looks back for one its pool attested enough.
    static let attestationLookback: UInt64 = 4

    /// The statement as the operator wrote it, if it decodes; the device checks the operator's signature.
    func reanchor(_ query: DeviceQuery) -> DeviceResponse {
        guard query.arguments.isEmpty else { return .error(.badRequest, "v1/reanchor takes no query") }
        guard let reanchorFile,
            let size = (try? FileManager.default.attributesOfItem(atPath: reanchorFile))?[.size] as? Int,
            size <= 1 << 16, let data = FileManager.default.contents(atPath: reanchorFile),
            let statement = try? ReanchorPayload(decoding: Array(data))
        else { return .error(.notFound, "no re-anchor statement") }
        return .chain(.content, statement.encoded)
    }

    func transactionProof(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.txProof), let id = query["id"].flatMap(Self.transactionID) else {
            return .error(.badRequest, "need id=<64 hex>")
        }
        do {
            guard let found = try node.inclusionProof(of: id) else {
                return .error(.notFound, "not in a final block")
            }
            let payload = TransactionProofPayload(
                header: found.block.block.header, certificate: found.block.certificate,
                position: UInt64(found.position), proof: found.proof, receipt: found.receipt,
                receiptProof: found.receiptProof)
            return .chain(.content, payload.encoded)
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    func accountProof(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.accountProof), let address = query["a"].flatMap(Self.address) else {
            return .error(.badRequest, "need a=<amsc1 address or 40 hex>")
        }
        let view = node.account(address)
        let payload = AccountProofPayload(
            height: view.height, stateRoot: view.stateRoot, state: view.state, proof: view.proof)
        return .chain(.content, payload.encoded)
    }

    /// A certificate's records up to its root with their proofs, or the proof that the id holds none.
    func certificate(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.certificate), let id = query["id"].flatMap(Self.transactionID) else {
            return .error(.badRequest, "need id=<64 hex>")
        }
        let view = node.certificate(id)
        let payload = CertificateProofPayload(
            height: view.height, stateRoot: view.stateRoot,
            links: view.links.map {
                CertificateProofPayload.Link(id: $0.id, record: $0.record.encoded, proof: $0.proof)
            },
            absence: view.links.isEmpty ? view.absence : nil)
        return .chain(.content, payload.encoded)
    }

    /// An escrow, HTLC or channel (or its absence) by the id of the transaction that made it, with its proof.
    func objectProof<State: CanonicalCodable & Equatable & Sendable>(
        _ route: DeviceResource, _ query: DeviceQuery, _ view: (Bytes32) -> ChainNode.ObjectView<State>
    ) -> DeviceResponse {
        guard query.only(route), let id = query["id"].flatMap(Self.transactionID) else {
            return .error(.badRequest, "need id=<64 hex>")
        }
        let object = view(id)
        let payload = ObjectProofPayload(
            height: object.height, stateRoot: object.stateRoot, state: object.state, proof: object.proof)
        return .chain(.content, payload.encoded)
    }

    func inbox(_ query: DeviceQuery) -> DeviceResponse {
        listing(.inbox, query) { (address, from, position) throws(StoreError) in
            try node.incomingTransfers(to: address, from: from, position: position, limit: InboxPayload.maxEntries)
        }
    }

    /// The commands waiting for a device at the command door after the sequence it saw last.
    func waitingCommands(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.commands), let address = query["a"].flatMap(Self.address),
            let after = query["after"].flatMap(Self.decimal)
        else { return .error(.badRequest, "need a=<amsc1 address or 40 hex>&after=<sequence>") }
        guard let commands else { return .error(.notFound, "this gateway has no command door") }
        return .chain(.content, CommandsPayload(entries: commands.commands(for: address, after: after)).encoded)
    }

    /// The messages of a channel waiting at the channel door after the sequence the recipient saw last.
    func channelMessages(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.channelMessages), let id = query["id"].flatMap(Self.transactionID),
            let after = query["after"].flatMap(Self.decimal), let key = query["k"].flatMap(Self.transactionID),
            let sigText = query["sig"], sigText.utf8.count == 128, let sigRaw = try? Hex.decode(sigText),
            let signature = Bytes64(sigRaw)
        else { return .error(.badRequest, "need id=<64 hex>&after=<sequence>&k=<64 hex>&sig=<128 hex>") }
        guard let channels else { return .error(.notFound, "this gateway has no channel door") }
        do {
            let entries = try channels.messages(for: id, after: after, readerKey: key, signature: signature)
            return .chain(.content, MailboxPayload(entries: entries).encoded)
        } catch {
            return .error(error == .unknownChannel ? .notFound : .forbidden, error.code)
        }
    }

    /// A sender's channel message, kept for the recipient: 2.01 with the sequence it was given.
    func postChannelMessage(_ query: DeviceQuery, body: [UInt8]) -> DeviceResponse {
        guard query.arguments.isEmpty else { return .error(.badRequest, "v1/channel/message takes no query") }
        guard let channels else { return .error(.notFound, "this gateway has no channel door") }
        do {
            var w = ByteWriter()
            w.writeVarint(try channels.post(body).sequence)
            return .chain(.created, w.bytes)
        } catch .tooLarge {
            return tooLarge(MailboxPayload.maxChannelMessageBytes)
        } catch {
            return .error(.badRequest, error.code)
        }
    }

    /// A notification address's record count and record `i`, proven against the head's state root.
    func notifications(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.notifications), let address = query["a"].flatMap(Self.address),
            let index = query["i"].flatMap(Self.decimal)
        else { return .error(.badRequest, "need a=<amsc1 address or 40 hex>&i=<index>") }
        let view = node.notificationRecord(address, index: index)
        let record = view.record.flatMap { try? PaymentNotificationRecord(decoding: $0) }
        guard (record == nil) == (view.record == nil) else { return .error(.internalServerError, "corrupt record") }
        let payload = NotificationProofPayload(
            height: view.height, stateRoot: view.stateRoot, count: view.count, countProof: view.countProof,
            index: index, record: record, recordProof: view.recordProof)
        return .chain(.content, payload.encoded)
    }

    func recipientFilter(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.recipientFilter), let raw = query["e"], let epoch = Self.decimal(raw) else {
            return .error(.badRequest, "need e=<epoch>")
        }
        do {
            guard let view = try node.recipientFilter(epoch: epoch) else {
                return .error(.notFound, "epoch not finished")
            }
            guard view.filter.count <= RecipientFilterPayload.maxFilterBytes else {
                return .error(.internalServerError, "filter too large")
            }
            let payload = RecipientFilterPayload(
                epoch: epoch, height: view.height, stateRoot: view.stateRoot, committed: view.committed,
                proof: view.proof, filter: view.filter)
            return .chain(.content, payload.encoded)
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    private func listing(
        _ route: DeviceResource, _ query: DeviceQuery,
        _ list: (Address, UInt64, Int) throws(StoreError) -> [(
            height: UInt64, position: Int, transaction: SignedTransaction
        )]
    ) -> DeviceResponse {
        guard query.only(route), let address = query["a"].flatMap(Self.address) else {
            return .error(.badRequest, "need a=<amsc1 address or 40 hex>[&from=<height>[&pos=<position>]]")
        }
        var from: UInt64 = 0
        var position: UInt64 = 0
        if let raw = query["from"] {
            guard let value = Self.decimal(raw) else { return .error(.badRequest, "from=<height>") }
            from = value
        }
        if let raw = query["pos"] {
            guard let value = Self.decimal(raw), value <= UInt64(Caps.transactionsPerBlock) else {
                return .error(.badRequest, "pos=<position in the block>")
            }
            position = value
        }
        do {
            let found = try list(address, from, Int(position))
            let entries = found.map {
                InboxPayload.Entry(height: $0.height, position: UInt64($0.position), transaction: $0.transaction)
            }
            return .chain(.content, InboxPayload(entries: entries).encoded)
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    func receipt(_ query: DeviceQuery) -> DeviceResponse {
        guard query.only(.receipt), let id = query["id"].flatMap(Self.transactionID) else {
            return .error(.badRequest, "need id=<64 hex>")
        }
        do {
            switch try node.status(of: id) {
            case .included(let height, let position, let receipt):
                return .chain(
                    .content, ReceiptPayload(height: height, position: UInt64(position), receipt: receipt).encoded)
            case .pending: return .error(.notFound, "pending")
            case .refused(let code): return .error(.notFound, "refused: \(code)")
            case .unknown: return .error(.notFound, "unknown")
            }
        } catch {
            return .error(.internalServerError, "store error")
        }
    }

    /// 2.01 with the 32-byte id when pooled; 4.00 with the refusal's code; 5.03 when the mempool is full (the
    /// device should retry later, not change the transaction); 4.13 over the size cap.
    func submit(_ query: DeviceQuery, body: [UInt8]) -> DeviceResponse {
        guard query.arguments.isEmpty else { return .error(.badRequest, "v1/tx takes no query") }
        guard body.count <= maxTransactionBytes else { return tooLarge() }
        guard !body.isEmpty else { return .error(.badRequest, "empty body") }
        do {
            // Journaled before the 2.01 leaves: the acknowledgement survives a crash of the gateway.
            let id = try node.submitAcknowledged(encoded: body, fromDevice: true)
            return .chain(.created, id.bytes)
        } catch {
            switch error {
            case .refused(.mempoolFull): return .error(.serviceUnavailable, Self.code(of: .mempoolFull))
            case .refused(let refusal): return .error(.badRequest, Self.code(of: refusal))
            case .notStored: return .error(.serviceUnavailable, "notStored")
            }
        }
    }

    /// 4.13 with Size1 naming the cap (by default a transaction's), for the adapter to answer an upload that
    /// announces or reaches too much.
    public func tooLarge(_ cap: Int? = nil) -> DeviceResponse {
        let cap = cap ?? maxTransactionBytes
        var r = DeviceResponse.error(.requestEntityTooLarge, "over \(cap) bytes")
        r.size1 = UInt32(cap)
        return r
    }

    // MARK: parsing

    /// Plain decimal, no sign, no leading zeros beyond "0", at most UInt64.max.
    static func decimal(_ text: String) -> UInt64? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count <= 20, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        if digits.count > 1 && digits[0] == 0x30 { return nil }
        return UInt64(text)
    }

    /// An account as a person writes it (`amsc1…`) or as a device sends it: 40 lowercase hex digits, which a board
    /// builds without a Bech32m encoder (``DeviceRequest/accountProof(_:)``).
    static func address(_ text: String) -> Address? {
        if let address = try? Address(bech32: text) { return address }
        guard text.utf8.count == 40, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
            let raw = try? Hex.decode(text), let bytes = Bytes20(raw)
        else { return nil }
        return Address(raw: bytes)
    }

    static func transactionID(_ text: String) -> Bytes32? {
        guard text.utf8.count == 64, let raw = try? Hex.decode(text) else { return nil }
        return Bytes32(raw)
    }

    /// The stable camelCase name of a refusal, sent as the 4.00 diagnostic: short, and the same word the HTTP
    /// API uses, so a device log and a node log can be matched.
    public static func code(of error: TransactionError) -> String {
        "\(error.code)"
    }
}

/// The encoded answers of `v1/checkpoints` for one head height, keyed by (from, limit).
///
/// A checkpoint is the last block of a finished epoch, final and never rewritten, so an answer changes only
/// when a new block finishes an epoch; keying the whole table by the head height (and emptying it when the
/// height changes) is simpler and still leaves each answer computed once per block. Bounded: at `capacity`
/// entries the table is emptied before the next one goes in, so a client walking through every `from` cannot
/// grow it. Thread-safe (one lock), so handlers can be shared by any number of threads.
final class CheckpointCache: @unchecked Sendable {
    static let capacity = 64

    private struct Key: Hashable {
        var from: UInt64
        var limit: Int
    }

    private let lock = NSLock()
    private var headHeight: UInt64 = .max
    private var entries: [Key: [UInt8]] = [:]

    func payload(from: UInt64, limit: Int, headHeight: UInt64) -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        guard headHeight == self.headHeight else { return nil }
        return entries[Key(from: from, limit: limit)]
    }

    /// `headHeight` must have been read before the chain was queried for `payload`.
    func store(_ payload: [UInt8], from: UInt64, limit: Int, headHeight: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        if headHeight != self.headHeight {
            // Only move forward: a slow request that read an older head must not evict the newer table.
            guard self.headHeight == .max || headHeight > self.headHeight else { return }
            self.headHeight = headHeight
            entries.removeAll(keepingCapacity: true)
        }
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[Key(from: from, limit: limit)] = payload
    }

    var count: Int { lock.withLock { entries.count } }
}
