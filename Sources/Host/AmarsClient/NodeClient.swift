import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger

/// Why a typed call to a node failed: it could not be reached, it refused the request (with its stable
/// error code), or it answered something this client does not understand (usually a version mismatch).
public enum NodeClientError: Error, CustomStringConvertible, Sendable {
    case transport(ClientError)
    case api(status: Int, code: String, message: String)
    case unexpectedResponse(String)

    public var description: String {
        switch self {
        case .transport(let e): e.description
        case .api(let status, let code, let message):
            "the node refused the request (\(code), HTTP \(status)): \(message)"
        case .unexpectedResponse(let why):
            "unexpected answer from the node: \(why); are client and node the same version?"
        }
    }

    /// The API's error code (`"nonceGap"`, `"notFound"`, …), if the node answered with one.
    public var code: String? {
        if case .api(_, let code, _) = self { return code }
        return nil
    }
}

/// `GET /v1/head`.
public struct HeadInfo: Sendable, Equatable {
    public var chainID: UInt32
    public var chainName: String
    public var genesisHash: Bytes32
    /// What transactions name the chain by (``TransactionBody/genesis``).
    public var genesisBlockHash: Bytes32
    public var height: UInt64
    public var hash: Bytes32
    public var timestamp: UInt64
    public var epoch: UInt64
    public var stateRoot: Bytes32
    /// Base fee per unit of the head block.
    public var baseFee: UInt64
    /// Base fee per unit the next block charges: what a new transaction's `maxFeePerUnit` must cover.
    public var nextBaseFee: UInt64
    public var pending: Int
    public var accounts: Int
}

/// `GET /v1/accounts/{address}`: committed state at `height`, with a proof against `stateRoot`.
public struct AccountInfo: Sendable, Equatable {
    public var address: Address
    public var balance: UInt64
    public var nonce: UInt64
    /// The nonce a new transaction should use: committed nonce plus this sender's pending transactions.
    public var nextNonce: UInt64
    public var pending: Int
    public var height: UInt64
    public var stateRoot: Bytes32
    public var stateKey: Bytes32
    public var proof: SparseMerkleProof

    public var state: AccountState { AccountState(balance: balance, nonce: nonce) }

    /// True when the proof shows this balance and nonce (or, for an empty account, its absence) under
    /// `stateRoot`. Check `stateRoot` against a header you trust to make this mean something.
    public func verifyProof() -> Bool {
        let key = StateNamespace.accountKey(address)
        guard key == stateKey else { return false }
        return proof.verify(root: stateRoot, key: key, valueHash: state.isEmpty ? nil : state.valueHash)
    }
}

/// `GET /v1/tx/{id}`.
public struct TxStatusInfo: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case pending
        case included(height: UInt64, position: Int, receipt: Receipt)
        /// The node acknowledged it, then its mempool dropped it without a block (`code`: why).
        case refused(code: String)
    }

    public var id: Bytes32
    public var state: State

    public var isIncluded: Bool {
        if case .included = state { return true }
        return false
    }
}

/// `GET /v1/supply`.
public struct SupplyInfo: Sendable, Equatable {
    public var total: UInt64
    public var burned: UInt64
    public var inAccounts: UInt64
    /// As reported by the node: inAccounts + burned == total.
    public var conserved: Bool
}

/// `GET /v1/blocks/{height}`: the block decoded from its canonical encoding (so it can be re-hashed and its
/// certificate verified), with receipts.
public struct BlockInfo: Sendable, Equatable {
    public var height: UInt64
    public var hash: Bytes32
    public var finalized: FinalizedBlock
    public var receipts: [Receipt]

    public var header: BlockHeader { finalized.block.header }
    public var transactions: [SignedTransaction] { finalized.block.transactions }
}

/// One row of `GET /v1/blocks`.
public struct BlockSummary: Sendable, Equatable {
    public var height: UInt64
    public var hash: Bytes32
    public var transactions: Int
    public var timestamp: UInt64
    public var unitsUsed: UInt64
}

/// Typed access to a gateway's JSON API over ``HTTPClient``.
public struct NodeClient: Sendable {
    /// How a transaction travels to `POST /v1/tx`.
    public enum SubmitEncoding: Sendable {
        /// `application/json` `{"tx":"<hex>"}`.
        case json
        /// `application/octet-stream` with the canonical bytes: half the size, no hex.
        case binary
    }

    public let http: HTTPClient

    public init(baseURL: String, timeoutSeconds: Double = 10) throws(NodeClientError) {
        do { http = try HTTPClient(baseURL: baseURL, timeoutSeconds: timeoutSeconds) } catch { throw .transport(error) }
    }

    public init(http: HTTPClient) { self.http = http }

    // MARK: calls

    public func head() throws(NodeClientError) -> HeadInfo {
        let o = try getJSON("/v1/head")
        return HeadInfo(
            chainID: try o.uint32("chainID"), chainName: try o.string("chainName"),
            genesisHash: try o.bytes32("genesisHash"), genesisBlockHash: try o.bytes32("genesisBlockHash"),
            height: try o.uint("height"), hash: try o.bytes32("hash"),
            timestamp: try o.uint("timestamp"), epoch: try o.uint("epoch"), stateRoot: try o.bytes32("stateRoot"),
            baseFee: try o.units("baseFee"), nextBaseFee: try o.units("nextBaseFee"), pending: try o.int("pending"),
            accounts: try o.int("accounts"))
    }

    public func account(_ address: String) throws(NodeClientError) -> AccountInfo {
        let trimmed = address.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x2F && $0 != 0x3F }) else {
            throw .api(status: 400, code: "invalidAddress", message: "'\(address)' is not an address")
        }
        let o = try getJSON("/v1/accounts/\(trimmed)")
        let addressText = try o.string("address")
        guard let parsed = try? Address(bech32: addressText) else { throw o.bad("address") }
        let proof: SparseMerkleProof
        do { proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        return AccountInfo(
            address: parsed, balance: try o.units("balance"), nonce: try o.uint("nonce"),
            nextNonce: try o.uint("nextNonce"), pending: try o.int("pending"), height: try o.uint("height"),
            stateRoot: try o.bytes32("stateRoot"), stateKey: try o.bytes32("stateKey"), proof: proof)
    }

    public func account(_ address: Address) throws(NodeClientError) -> AccountInfo {
        try account(address.bech32)
    }

    /// Sends a signed transaction; returns its id once the node has admitted it to the mempool.
    @discardableResult
    public func submit(_ tx: SignedTransaction, encoding: SubmitEncoding = .binary) throws(NodeClientError) -> Bytes32 {
        try submit(encoded: tx.encoded, encoding: encoding)
    }

    /// Sends already-encoded transaction bytes (for tools that relay what they received).
    @discardableResult
    public func submit(encoded: [UInt8], encoding: SubmitEncoding = .binary) throws(NodeClientError) -> Bytes32 {
        let response: HTTPResponse
        do {
            switch encoding {
            case .json:
                let body = Array("{\"tx\":\"\(Hex.encode(encoded))\"}".utf8)
                response = try http.post("/v1/tx", body: body, contentType: "application/json")
            case .binary:
                response = try http.post("/v1/tx", body: encoded, contentType: "application/octet-stream")
            }
        } catch {
            throw .transport(error)
        }
        return try JSONObject(response: response).bytes32("id")
    }

    public func transactionStatus(_ id: Bytes32) throws(NodeClientError) -> TxStatusInfo {
        let o = try getJSON("/v1/tx/\(Hex.encode(id.bytes))")
        switch try o.string("status") {
        case "pending":
            return TxStatusInfo(id: id, state: .pending)
        case "included":
            let r = try o.object("receipt")
            let status: Receipt.Status
            switch try r.string("status") {
            case "success": status = .success
            case "failed": status = .failed
            default: throw r.bad("status")
            }
            let receipt = Receipt(
                transactionID: try r.bytes32("id"), status: status, unitsUsed: try r.uint("unitsUsed"),
                feePaid: try r.units("feePaid"))
            return TxStatusInfo(
                id: id,
                state: .included(height: try o.uint("height"), position: try o.int("position"), receipt: receipt))
        case "refused":
            return TxStatusInfo(id: id, state: .refused(code: try o.string("code")))
        default:
            throw o.bad("status")
        }
    }

    /// Polls until the transaction is included, or throws ``NodeClientError/unexpectedResponse(_:)`` after
    /// `timeoutSeconds` (the node drops a transaction that can no longer execute; see its status).
    public func waitForInclusion(_ id: Bytes32, timeoutSeconds: Double = 30, pollSeconds: Double = 0.2)
        throws(NodeClientError) -> TxStatusInfo
    {
        let end = Date().addingTimeInterval(timeoutSeconds)
        while true {
            let status = try transactionStatus(id)
            if status.isIncluded { return status }
            if case .refused(let code) = status.state {
                throw .unexpectedResponse("transaction \(Hex.encode(id.bytes)) was dropped without a block: \(code)")
            }
            guard Date() < end else {
                throw .unexpectedResponse("transaction \(Hex.encode(id.bytes)) still pending after \(timeoutSeconds) s")
            }
            usleep(UInt32(max(pollSeconds, 0.01) * 1_000_000))
        }
    }

    public func block(_ height: UInt64) throws(NodeClientError) -> BlockInfo {
        let o = try getJSON("/v1/blocks/\(height)")
        let block: Block
        do { block = try Block(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        let hash = try o.bytes32("hash")
        guard block.hash == hash, block.header.height == height else {
            throw .unexpectedResponse("block \(height): the encoding does not hash to the reported hash")
        }
        let c = try o.object("certificate")
        var signatures: [CommitCertificate.Signature] = []
        for s in try c.array("signatures") {
            let member = try s.uint("member")
            guard member <= UInt64(UInt16.max) else { throw s.bad("member") }
            guard let sig = Bytes64(try s.hex("signature")) else { throw s.bad("signature") }
            signatures.append(.init(memberIndex: UInt16(member), signature: sig))
        }
        guard let round = UInt32(exactly: try c.uint("round")) else { throw c.bad("round") }
        let certificate = CommitCertificate(height: height, round: round, blockHash: hash, signatures: signatures)
        var receipts: [Receipt] = []
        for r in try o.array("receipts") {
            let status: Receipt.Status = try r.string("status") == "success" ? .success : .failed
            receipts.append(
                Receipt(
                    transactionID: try r.bytes32("id"), status: status, unitsUsed: try r.uint("unitsUsed"),
                    feePaid: try r.units("feePaid")))
        }
        return BlockInfo(
            height: height, hash: hash, finalized: FinalizedBlock(block: block, certificate: certificate),
            receipts: receipts)
    }

    /// Recent blocks, newest first (the node returns at most 100).
    public func blocks(limit: Int = 20) throws(NodeClientError) -> [BlockSummary] {
        let o = try getJSON("/v1/blocks?limit=\(max(limit, 1))")
        var out: [BlockSummary] = []
        for b in try o.array("blocks") {
            out.append(
                BlockSummary(
                    height: try b.uint("height"), hash: try b.bytes32("hash"), transactions: try b.int("transactions"),
                    timestamp: try b.uint("timestamp"), unitsUsed: try b.uint("unitsUsed")))
        }
        return out
    }

    public func supply() throws(NodeClientError) -> SupplyInfo {
        let o = try getJSON("/v1/supply")
        return SupplyInfo(
            total: try o.units("total"), burned: try o.units("burned"), inAccounts: try o.units("inAccounts"),
            conserved: try o.bool("conserved"))
    }

    /// The Prometheus text of `GET /metrics`.
    public func metrics() throws(NodeClientError) -> String {
        let response: HTTPResponse
        do { response = try http.get("/metrics") } catch { throw .transport(error) }
        guard response.status == 200 else { throw JSONObject.apiError(response) }
        return response.text
    }

    private func getJSON(_ path: String) throws(NodeClientError) -> JSONObject {
        let response: HTTPResponse
        do { response = try http.get(path) } catch { throw .transport(error) }
        return try JSONObject(response: response)
    }
}

/// Typed field access over a decoded JSON object; every miss names the field, so a version mismatch is
/// reported precisely rather than as a generic decoding failure.
struct JSONObject {
    let fields: [String: Any]
    let context: String

    init(fields: [String: Any], context: String) {
        self.fields = fields
        self.context = context
    }

    /// A 2xx JSON object, or the API error the body describes.
    init(response: HTTPResponse) throws(NodeClientError) {
        guard (200..<300).contains(response.status) else { throw Self.apiError(response) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)),
            let dict = object as? [String: Any]
        else {
            throw .unexpectedResponse("HTTP \(response.status) without a JSON object body")
        }
        self.init(fields: dict, context: "response")
    }

    static func apiError(_ response: HTTPResponse) -> NodeClientError {
        if let object = try? JSONSerialization.jsonObject(with: Data(response.body)),
            let dict = object as? [String: Any], let error = dict["error"] as? [String: Any],
            let code = error["code"] as? String
        {
            return .api(status: response.status, code: code, message: error["message"] as? String ?? "")
        }
        let snippet = String(response.text.prefix(200))
        return .api(status: response.status, code: "http\(response.status)", message: snippet)
    }

    func bad(_ key: String) -> NodeClientError { .unexpectedResponse("field '\(key)' of the \(context) is invalid") }

    private func value(_ key: String) throws(NodeClientError) -> Any {
        guard let v = fields[key] else { throw .unexpectedResponse("field '\(key)' is missing from the \(context)") }
        return v
    }

    func string(_ key: String) throws(NodeClientError) -> String {
        guard let s = try value(key) as? String else { throw bad(key) }
        return s
    }

    func bool(_ key: String) throws(NodeClientError) -> Bool {
        let v = try value(key)
        if let b = v as? Bool { return b }
        if let n = v as? NSNumber { return n.boolValue }
        throw bad(key)
    }

    /// A non-negative integer sent as a JSON number.
    func uint(_ key: String) throws(NodeClientError) -> UInt64 {
        let v = try value(key)
        if let n = v as? UInt64 { return n }
        if let n = v as? Int, n >= 0 { return UInt64(n) }
        if let n = v as? NSNumber, n.int64Value >= 0, n.doubleValue == n.doubleValue.rounded() {
            return n.uint64Value
        }
        throw bad(key)
    }

    func uint32(_ key: String) throws(NodeClientError) -> UInt32 {
        guard let v = UInt32(exactly: try uint(key)) else { throw bad(key) }
        return v
    }

    func int(_ key: String) throws(NodeClientError) -> Int {
        guard let v = Int(exactly: try uint(key)) else { throw bad(key) }
        return v
    }

    /// Base units sent as a decimal string (they exceed what a JSON number keeps exactly).
    func units(_ key: String) throws(NodeClientError) -> UInt64 {
        guard let v = UInt64(try string(key)) else { throw bad(key) }
        return v
    }

    func hex(_ key: String) throws(NodeClientError) -> [UInt8] {
        guard let bytes = try? Hex.decode(try string(key), maxBytes: 16 << 20) else { throw bad(key) }
        return bytes
    }

    func bytes32(_ key: String) throws(NodeClientError) -> Bytes32 {
        guard let b = Bytes32(try hex(key)) else { throw bad(key) }
        return b
    }

    func object(_ key: String) throws(NodeClientError) -> JSONObject {
        guard let o = try value(key) as? [String: Any] else { throw bad(key) }
        return JSONObject(fields: o, context: "'\(key)' object")
    }

    func array(_ key: String) throws(NodeClientError) -> [JSONObject] {
        guard let items = try value(key) as? [Any] else { throw bad(key) }
        var out: [JSONObject] = []
        for item in items {
            guard let o = item as? [String: Any] else { throw bad(key) }
            out.append(JSONObject(fields: o, context: "'\(key)' item"))
        }
        return out
    }
}

// MARK: - staking, committees, checkpoints

/// `GET /v1/staking`: the chain's staking rules and where the epochs stand.
public struct StakingOverview: Sendable, Equatable {
    public var epochLength: UInt64
    public var headHeight: UInt64
    public var headEpoch: UInt64
    /// The epoch the next block executes in: locks and unbonding are measured against it.
    public var nextBlockEpoch: UInt64
    public var minSelfStake: UInt64
    public var unbondingEpochs: UInt64
    public var maxDurationEpochs: UInt32
    public var poolSize: Int
    public var candidates: Int
    public var staked: UInt64
    /// Epoch and height of the last finished epoch's checkpoint block, if any epoch has finished.
    public var latestCheckpoint: (epoch: UInt64, height: UInt64)?

    public static func == (a: StakingOverview, b: StakingOverview) -> Bool {
        a.epochLength == b.epochLength && a.headHeight == b.headHeight && a.headEpoch == b.headEpoch
            && a.nextBlockEpoch == b.nextBlockEpoch && a.minSelfStake == b.minSelfStake
            && a.unbondingEpochs == b.unbondingEpochs && a.maxDurationEpochs == b.maxDurationEpochs
            && a.poolSize == b.poolSize && a.candidates == b.candidates && a.staked == b.staked
            && a.latestCheckpoint?.epoch == b.latestCheckpoint?.epoch
            && a.latestCheckpoint?.height == b.latestCheckpoint?.height
    }
}

/// One candidate of `GET /v1/candidates`: the state as the chain stores it (decoded from its encoding and
/// checked against the JSON fields).
public struct CandidateInfo: Sendable, Equatable {
    public var owner: Address
    public var state: CandidateState
    /// Member of the delegate pool elected for the epoch of the next block.
    public var inPool: Bool

    public var name: String { String(decoding: state.name, as: UTF8.self) }
}

/// `GET /v1/buckets/{id}` (with a proof) or a row of `GET /v1/buckets?owner=` (without).
/// A rental escrow as `GET /v1/escrows/{id}` reports it, with the proof against the head's state root.
public struct EscrowInfo: Sendable, Equatable {
    public var id: Bytes32
    public var state: EscrowState
    public var height: UInt64
    public var stateRoot: Bytes32
    public var proof: SparseMerkleProof

    /// True when the proof shows exactly this escrow under `stateRoot`.
    public func verifyProof() -> Bool {
        proof.verify(root: stateRoot, key: StateNamespace.escrowKey(id), valueHash: state.valueHash)
    }
}

public struct BucketInfo: Sendable, Equatable {
    public var id: UInt64
    public var state: BucketState
    public var withdrawableFromEpoch: UInt64?
    public var stateRoot: Bytes32?
    public var proof: SparseMerkleProof?

    public static func stateKey(id: UInt64) -> Bytes32 {
        var bytes: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: id >> UInt64(shift)))
        }
        return StateNamespace.bucket.key(bytes)
    }

    /// True when the proof shows this bucket under `stateRoot` (false for listing rows, which carry none).
    public func verifyProof() -> Bool {
        guard let stateRoot, let proof else { return false }
        return proof.verify(
            root: stateRoot, key: Self.stateKey(id: id), valueHash: Domain.stateValue.hash(state.encoded))
    }
}

/// `GET /v1/election/{epoch}`.
public struct ElectionInfo: Sendable, Equatable {
    public var pool: DelegatePool
    public var electedAtHeight: UInt64?
    /// Candidate names in pool order ("" when the candidate is gone).
    public var names: [String]
}

/// `GET /v1/committee?epoch=E`.
public struct CommitteeInfo: Sendable, Equatable {
    public var committee: Committee
    /// The block whose header names this committee (its `nextCommitteeHash`).
    public var namedAtHeight: UInt64
    public var source: String
}

extension NodeClient {
    public func staking() throws(NodeClientError) -> StakingOverview {
        let o = try getObject("/v1/staking")
        var latest: (UInt64, UInt64)?
        if let l = o.fields["latestCheckpoint"] as? [String: Any] {
            let c = JSONObject(fields: l, context: "'latestCheckpoint' object")
            latest = (try c.uint("epoch"), try c.uint("height"))
        }
        guard let maxDuration = UInt32(exactly: try o.uint("maxDurationEpochs")) else {
            throw o.bad("maxDurationEpochs")
        }
        return StakingOverview(
            epochLength: try o.uint("epochLength"), headHeight: try o.uint("headHeight"),
            headEpoch: try o.uint("headEpoch"), nextBlockEpoch: try o.uint("nextBlockEpoch"),
            minSelfStake: try o.units("minSelfStake"), unbondingEpochs: try o.uint("unbondingEpochs"),
            maxDurationEpochs: maxDuration, poolSize: try o.int("poolSize"), candidates: try o.int("candidates"),
            staked: try o.units("staked"), latestCheckpoint: latest)
    }

    /// Every candidate, heaviest first.
    public func candidates() throws(NodeClientError) -> [CandidateInfo] {
        var out: [CandidateInfo] = []
        for c in try getObject("/v1/candidates").array("candidates") { out.append(try Self.candidate(c)) }
        return out
    }

    public func candidate(_ owner: Address) throws(NodeClientError) -> CandidateInfo {
        try Self.candidate(try getObject("/v1/candidates/\(owner.bech32)"))
    }

    /// The escrow opened by transaction `id`; `notFound` when there is none.
    public func escrow(_ id: Bytes32) throws(NodeClientError) -> EscrowInfo {
        let o = try getObject("/v1/escrows/\(Hex.encode(id.bytes))")
        guard try o.bytes32("id") == id else { throw o.bad("id") }
        func address(_ key: String) throws(NodeClientError) -> Address {
            guard let a = try? Address(bech32: try o.string(key)) else { throw o.bad(key) }
            return a
        }
        let status: EscrowState.Status
        switch try o.string("status") {
        case "open": status = .open
        case "closed": status = .closed
        case "expired": status = .expired
        case "kept": status = .kept
        default: throw o.bad("status")
        }
        let state = EscrowState(
            renter: try address("renter"), device: try address("device"), owner: try address("owner"),
            deposit: try o.units("deposit"), rentalFee: try o.units("rentalFee"), maxDamages: try o.units("maxDamages"),
            expiryHeight: try o.uint("expiryHeight"), status: status, damages: try o.units("damages"))
        guard state.maxDamages <= state.deposit else { throw o.bad("maxDamages") }
        let proof: SparseMerkleProof
        do { proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        return EscrowInfo(
            id: id, state: state, height: try o.uint("height"), stateRoot: try o.bytes32("stateRoot"), proof: proof)
    }

    public func bucket(_ id: UInt64) throws(NodeClientError) -> BucketInfo {
        let o = try getObject("/v1/buckets/\(id)")
        var info = try Self.bucket(o)
        guard info.id == id else { throw o.bad("id") }
        info.stateRoot = try o.bytes32("stateRoot")
        do { info.proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        return info
    }

    /// Buckets owned by `owner` (and/or delegated to `candidate`), in id order, without proofs.
    public func buckets(owner: Address? = nil, candidate: Address? = nil) throws(NodeClientError) -> [BucketInfo] {
        var query: [String] = []
        if let owner { query.append("owner=\(owner.bech32)") }
        if let candidate { query.append("candidate=\(candidate.bech32)") }
        var out: [BucketInfo] = []
        for b in try getObject("/v1/buckets?" + query.joined(separator: "&")).array("buckets") {
            out.append(try Self.bucket(b))
        }
        return out
    }

    public func election(epoch: UInt64) throws(NodeClientError) -> ElectionInfo {
        let o = try getObject("/v1/election/\(epoch)")
        let pool: DelegatePool
        do { pool = try DelegatePool(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        guard pool.epoch == epoch else { throw o.bad("epoch") }
        let rows = try o.array("delegates")
        guard rows.count == pool.delegates.count else { throw o.bad("delegates") }
        var names: [String] = []
        for r in rows { names.append(try r.string("name")) }
        var electedAt: UInt64?
        if !(o.fields["electedAtHeight"] is NSNull) { electedAt = try o.uint("electedAtHeight") }
        return ElectionInfo(pool: pool, electedAtHeight: electedAt, names: names)
    }

    /// The committee of `epoch` (default: the head's epoch).
    public func committee(epoch: UInt64? = nil) throws(NodeClientError) -> CommitteeInfo {
        let o = try getObject("/v1/committee" + (epoch.map { "?epoch=\($0)" } ?? ""))
        let committee: Committee
        do { committee = try Committee(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        guard committee.hash == (try o.bytes32("hash")), epoch == nil || committee.epoch == epoch else {
            throw o.bad("hash")
        }
        return CommitteeInfo(
            committee: committee, namedAtHeight: try o.uint("namedAtHeight"), source: try o.string("source"))
    }

    /// The checkpoint chain from epoch `from` (the node returns at most 256), each decoded from its canonical
    /// encoding, which checks that the header names the committee it carries and the certificate is for it.
    public func checkpoints(from: UInt64 = 0, limit: Int = 16) throws(NodeClientError) -> [Checkpoint] {
        let o = try getObject("/v1/checkpoints?from=\(from)&limit=\(max(limit, 1))")
        var out: [Checkpoint] = []
        for c in try o.array("checkpoints") {
            let cp: Checkpoint
            do { cp = try Checkpoint(decoding: try c.hex("encoded")) } catch { throw c.bad("encoded") }
            guard cp.header.epoch == (try c.uint("epoch")), cp.header.height == (try c.uint("height")) else {
                throw c.bad("epoch")
            }
            out.append(cp)
        }
        return out
    }

    func getObject(_ path: String) throws(NodeClientError) -> JSONObject {
        let response: HTTPResponse
        do { response = try http.get(path) } catch { throw .transport(error) }
        return try JSONObject(response: response)
    }

    private static func candidate(_ o: JSONObject) throws(NodeClientError) -> CandidateInfo {
        let state: CandidateState
        do { state = try CandidateState(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        guard let owner = try? Address(bech32: try o.string("owner")) else { throw o.bad("owner") }
        guard String(decoding: state.name, as: UTF8.self) == (try o.string("name")),
            state.totalWeight == (try o.units("totalWeight"))
        else { throw o.bad("encoded") }
        return CandidateInfo(owner: owner, state: state, inPool: try o.bool("inPool"))
    }

    private static func bucket(_ o: JSONObject) throws(NodeClientError) -> BucketInfo {
        let state: BucketState
        do { state = try BucketState(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        guard state.amount == (try o.units("amount")) else { throw o.bad("encoded") }
        var withdrawable: UInt64?
        if !(o.fields["withdrawableFromEpoch"] is NSNull) { withdrawable = try o.uint("withdrawableFromEpoch") }
        return BucketInfo(id: try o.uint("id"), state: state, withdrawableFromEpoch: withdrawable)
    }
}
