import AmarsCodec
import AmarsCrypto
import Chain
import Consensus
import Ledger
import Network

/// A JSON value built by hand so that objects keep the key order we write: responses read the same on every
/// run and every platform, and a diff of two responses shows only what changed.
///
/// Amounts and fee prices are rendered as decimal strings (``JSONValue/units(_:)``) because they exceed
/// 2^53, past which a JavaScript number silently loses digits.
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case number(UInt64)
    case signed(Int64)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.rendered == b.rendered }

    /// Base units (or a per-unit price) as a decimal string.
    public static func units(_ value: UInt64) -> JSONValue { .string(String(value)) }

    /// Lowercase hex of a hash or key.
    public static func hex(_ value: Bytes32) -> JSONValue { .string(Hex.encode(value.bytes)) }

    public static func hex(_ bytes: [UInt8]) -> JSONValue { .string(Hex.encode(bytes)) }

    public static func int(_ value: Int) -> JSONValue { .signed(Int64(value)) }

    /// Compact UTF-8 text.
    public var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    public var bytes: [UInt8] { Array(rendered.utf8) }

    private func render(into out: inout String) {
        switch self {
        case .string(let s): Self.quote(s, into: &out)
        case .number(let n): out += String(n)
        case .signed(let n): out += String(n)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.render(into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// RFC 8259 string escaping; everything outside ASCII control characters passes through as UTF-8.
    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Nearly every string (hex, addresses, decimal amounts, codes) needs no escape: one append, not one per
        // scalar (that loop was 2% of a gateway's CPU under load, rendering the ids of submitted batches).
        if !s.utf8.contains(where: needsEscape) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// The JSON shapes of the HTTP API (documented in the module's APIRouter). One function per chain object so
/// the explorer, the API and the tests agree on field names.
public enum APIJSON {
    /// The encoded size of a transfer without a memo, for fee estimates: measured on one with a large amount
    /// and nonce, so the varints are at their usual widths or wider (the signature's value does not change the size).
    static let plainTransferBytes: Int = {
        let body = TransactionBody(
            genesis: .zero, sender: .zero, nonce: 1 << 20, maxFeePerUnit: 1 << 20, tipPerUnit: 1 << 10,
            payload: .transfer(Transfer(to: Address(raw: .zero), amount: 1 << 40)))
        return SignedTransaction(body: body, signature: .zero).encoded.count
    }()

    public static func header(_ h: BlockHeader) -> JSONValue {
        .object([
            ("chainID", .number(UInt64(h.chainID))),
            ("height", .number(h.height)),
            ("previousHash", .hex(h.previousHash)),
            ("timestamp", .number(h.timestamp)),
            ("epoch", .number(h.epoch)),
            ("round", .number(UInt64(h.round))),
            ("proposer", .hex(h.proposer)),
            ("baseFee", .units(h.baseFee)),
            ("unitsUsed", .number(h.unitsUsed)),
            ("transactionsRoot", .hex(h.transactionsRoot)),
            ("stateRoot", .hex(h.stateRoot)),
            ("receiptsRoot", .hex(h.receiptsRoot)),
            ("nextCommitteeHash", h.nextCommitteeHash.map { .hex($0) } ?? .null),
            ("nextPoolHash", h.nextPoolHash.map { .hex($0) } ?? .null),
        ])
    }

    public static func head(node: ChainNode, status: ChainNode.Status? = nil) -> JSONValue {
        let status = status ?? node.status
        let h = status.head
        return .object([
            ("chainID", .number(UInt64(node.genesis.chainID))),
            ("chainName", .string(node.genesis.chainName)),
            ("genesisHash", .hex(node.genesisHash)),
            ("genesisBlockHash", .hex(node.genesisBlockHash)),
            ("height", .number(h.height)),
            ("hash", .hex(h.hash)),
            ("timestamp", .number(h.timestamp)),
            ("epoch", .number(h.epoch)),
            ("stateRoot", .hex(h.stateRoot)),
            ("baseFee", .units(h.baseFee)),
            ("nextBaseFee", .units(status.nextBaseFee)),
            ("pending", .int(status.pending)),
            ("accounts", .int(status.accounts)),
            (
                "fees",
                .object([
                    ("unitsPerTransaction", .number(node.fees.unitsPerTransaction)),
                    ("unitsPerByte", .number(node.fees.unitsPerByte)),
                    // A plain transfer without a memo, so a page can show what sending costs now.
                    ("transferUnits", .number(node.fees.units(encodedSize: APIJSON.plainTransferBytes))),
                ])
            ),
        ])
    }

    /// The wire name of each transaction kind, stable across releases like the tag itself.
    public static func kindName(_ payload: TransactionPayload) -> String {
        switch payload {
        case .transfer: "transfer"
        case .candidateRegister: "candidateRegister"
        case .candidateUpdate: "candidateUpdate"
        case .stake: "stake"
        case .restake: "restake"
        case .unstake: "unstake"
        case .withdraw: "withdraw"
        case .certificatePublish: "certificatePublish"
        case .certificateRevoke: "certificateRevoke"
        case .htlcLock: "htlcLock"
        case .htlcClaim: "htlcClaim"
        case .htlcRefund: "htlcRefund"
        case .escrowOpen: "escrowOpen"
        case .escrowClose: "escrowClose"
        case .doubleSignEvidence: "doubleSignEvidence"
        case .paymentCodeNotify: "paymentCodeNotify"
        case .stealthTransfer: "stealthTransfer"
        case .channelOpen: "channelOpen"
        case .channelClose: "channelClose"
        case .channelRefund: "channelRefund"
        }
    }

    public static func transaction(_ tx: SignedTransaction) -> JSONValue {
        let body = tx.body
        // Stored transactions were verified before inclusion, so the key parses; "" only for a corrupt row.
        let sender = (try? XOnlyPublicKey(bytes: body.sender)).map { Address(publicKey: $0).bech32 } ?? ""
        var fields: [(String, JSONValue)] = [
            ("id", .hex(tx.id)),
            ("sender", .string(sender)),
            ("senderKey", .hex(body.sender)),
            ("nonce", .number(body.nonce)),
            ("kind", .string(kindName(body.payload))),
        ]
        if case .transfer(let t) = body.payload {
            fields.append(("to", .string(t.to.bech32)))
            fields.append(("amount", .units(t.amount)))
            fields.append(("amountAMSC", .string(Amount.format(t.amount))))
            if !t.memo.isEmpty { fields.append(("memo", .hex(t.memo))) }
        }
        switch body.payload {
        case .htlcLock(let h):
            fields.append(("to", .string(h.recipient.bech32)))
            fields.append(("amount", .units(h.amount)))
            fields.append(("amountAMSC", .string(Amount.format(h.amount))))
            fields.append(("hashLock", .hex(h.hashLock)))
            fields.append(("expiryHeight", .number(h.expiryHeight)))
        case .htlcClaim(let c):
            fields.append(("lockID", .hex(c.lockID)))
            fields.append(("preimage", .hex(c.preimage)))
        case .htlcRefund(let r):
            fields.append(("lockID", .hex(r.lockID)))
        case .channelOpen(let c):
            fields.append(("to", .string(c.recipient.bech32)))
            fields.append(("amount", .units(c.deposit)))
            fields.append(("amountAMSC", .string(Amount.format(c.deposit))))
            fields.append(("expiryHeight", .number(c.expiryHeight)))
        case .channelClose(let c):
            fields.append(("channelID", .hex(c.update.channelID)))
            fields.append(("paid", .units(c.update.paid)))
            fields.append(("conditions", .number(UInt64(c.update.conditions.count))))
            fields.append(("preimages", .number(UInt64(c.preimages.count))))
        case .channelRefund(let r):
            fields.append(("channelID", .hex(r.channelID)))
        default: break
        }
        if case .stealthTransfer(let t) = body.payload {
            fields.append(("to", .string(t.to.bech32)))
            fields.append(("amount", .units(t.amount)))
            fields.append(("amountAMSC", .string(Amount.format(t.amount))))
            fields.append(("ephemeralKey", .hex(t.ephemeralKey)))
        }
        if case .paymentCodeNotify(let n) = body.payload {
            fields.append(("to", .string(n.to.bech32)))
            fields.append(("maskedCode", .hex(n.maskedCode)))
        }
        fields.append(("maxFeePerUnit", .units(body.maxFeePerUnit)))
        fields.append(("tipPerUnit", .units(body.tipPerUnit)))
        return .object(fields)
    }

    public static func receipt(_ r: Receipt) -> JSONValue {
        .object([
            ("id", .hex(r.transactionID)),
            ("status", .string(r.status == .success ? "success" : "failed")),
            ("unitsUsed", .number(r.unitsUsed)),
            ("feePaid", .units(r.feePaid)),
        ])
    }

    public static func certificate(_ c: CommitCertificate) -> JSONValue {
        .object([
            ("round", .number(UInt64(c.round))),
            (
                "signatures",
                .array(
                    c.signatures.map {
                        .object([("member", .number(UInt64($0.memberIndex))), ("signature", .hex($0.signature.bytes))])
                    })
            ),
        ])
    }

    public static func block(_ stored: BlockStore.StoredBlock) -> JSONValue {
        let block = stored.finalized.block
        return .object([
            ("height", .number(block.header.height)),
            ("hash", .hex(block.hash)),
            ("header", header(block.header)),
            ("encoded", .hex(block.encoded)),
            ("transactions", .array(block.transactions.map(transaction))),
            ("certificate", certificate(stored.finalized.certificate)),
            ("receipts", .array(stored.receipts.map(receipt))),
        ])
    }

    /// One row of the recent-blocks list: enough for a table, without transactions.
    public static func blockSummary(_ stored: BlockStore.StoredBlock) -> JSONValue {
        let h = stored.finalized.block.header
        return .object([
            ("height", .number(h.height)),
            ("hash", .hex(h.hash)),
            ("transactions", .int(stored.finalized.block.transactions.count)),
            ("timestamp", .number(h.timestamp)),
            ("unitsUsed", .number(h.unitsUsed)),
            ("baseFee", .units(h.baseFee)),
        ])
    }

    public static func account(_ view: ChainNode.AccountView) -> JSONValue {
        let state = view.state
        return .object([
            ("address", .string(view.address.bech32)),
            ("balance", .units(state.balance)),
            ("balanceAMSC", .string(Amount.format(state.balance))),
            ("nonce", .number(state.nonce)),
            ("nextNonce", .number(state.nonce &+ UInt64(view.pending))),
            ("pending", .int(view.pending)),
            ("height", .number(view.height)),
            ("stateRoot", .hex(view.stateRoot)),
            ("stateKey", .hex(StateNamespace.accountKey(view.address))),
            ("proof", .hex(view.proof.encoded)),
        ])
    }

    public static func escrow(_ view: ChainNode.EscrowView) -> JSONValue {
        guard let e = view.state else { return .null }
        let status: String =
            switch e.status {
            case .open: "open"
            case .closed: "closed"
            case .expired: "expired"
            case .kept: "kept"
            }
        return .object([
            ("id", .hex(view.id)),
            ("status", .string(status)),
            ("renter", .string(e.renter.bech32)),
            ("device", .string(e.device.bech32)),
            ("owner", .string(e.owner.bech32)),
            ("deposit", .units(e.deposit)),
            ("rentalFee", .units(e.rentalFee)),
            ("maxDamages", .units(e.maxDamages)),
            ("damages", .units(e.damages)),
            ("held", .units(e.held)),
            ("expiryHeight", .number(e.expiryHeight)),
            ("returnDeadline", .number(e.returnDeadline)),
            ("height", .number(view.height)),
            ("stateRoot", .hex(view.stateRoot)),
            ("stateKey", .hex(StateNamespace.escrowKey(view.id))),
            ("proof", .hex(view.proof.encoded)),
        ])
    }

    public static func supply(_ s: ChainNode.Supply) -> JSONValue {
        let (held, o1) = s.inAccounts.addingReportingOverflow(s.staked)
        let (heldAll, o3) = held.addingReportingOverflow(s.escrowed)
        let (sum, o2) = heldAll.addingReportingOverflow(s.burned)
        return .object([
            ("total", .units(s.total)),
            ("burned", .units(s.burned)),
            ("inAccounts", .units(s.inAccounts)),
            ("staked", .units(s.staked)),
            ("escrowed", .units(s.escrowed)),
            ("totalAMSC", .string(Amount.format(s.total))),
            ("burnedAMSC", .string(Amount.format(s.burned))),
            ("inAccountsAMSC", .string(Amount.format(s.inAccounts))),
            ("stakedAMSC", .string(Amount.format(s.staked))),
            ("escrowedAMSC", .string(Amount.format(s.escrowed))),
            ("conserved", .bool(!o1 && !o2 && !o3 && sum == s.total)),
        ])
    }

    public static func status(id: Bytes32, _ status: ChainNode.TransactionStatus) -> JSONValue {
        switch status {
        case .pending:
            return .object([("id", .hex(id)), ("status", .string("pending"))])
        case .included(let height, let position, let r):
            return .object([
                ("id", .hex(id)), ("status", .string("included")), ("height", .number(height)),
                ("position", .int(position)), ("receipt", receipt(r)),
            ])
        case .refused(let code):
            return .object([("id", .hex(id)), ("status", .string("refused")), ("code", .string(code))])
        case .unknown:
            return .object([("id", .hex(id)), ("status", .string("unknown"))])
        }
    }

    /// `{"error":{"code","message"}}`: the code is stable for programs, the message is for people.
    public static func error(code: String, message: String) -> JSONValue {
        .object([("error", .object([("code", .string(code)), ("message", .string(message))]))])
    }
}

// MARK: - staking, committees, checkpoints

extension APIJSON {
    /// Candidate names are lowercase ASCII by the register rule, so they render as text unchanged.
    static func name(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    public static func candidate(owner: Address, _ c: CandidateState, inPool: Bool) -> JSONValue {
        .object([
            ("owner", .string(owner.bech32)),
            ("name", .string(name(c.name))),
            ("operatorKey", .hex(c.operatorKey)),
            ("rewardAddress", .string(c.rewardAddress.bech32)),
            ("rewardShareBps", .number(UInt64(c.rewardShareBps))),
            ("selfStakeBucket", .number(c.selfStakeBucket)),
            ("totalWeight", .units(c.totalWeight)),
            ("ejected", .bool(c.ejected)),
            ("inPool", .bool(inPool)),
            ("stateKey", .hex(StakingRules.candidateKey(owner).treeKey)),
            ("encoded", .hex(c.encoded)),
        ])
    }

    /// A bucket's fields and derived values; `unbondingEpochs` gives the first epoch it can be withdrawn.
    public static func bucketFields(id: UInt64, _ b: BucketState, unbondingEpochs: UInt64) -> [(String, JSONValue)] {
        let withdrawable: JSONValue =
            b.unstakedEpoch.map { e in
                let (sum, overflow) = e.addingReportingOverflow(unbondingEpochs)
                return overflow ? .null : .number(sum)
            } ?? .null
        return [
            ("id", .number(id)),
            ("owner", .string(b.owner.bech32)),
            ("candidate", .string(b.candidate.bech32)),
            ("amount", .units(b.amount)),
            ("amountAMSC", .string(Amount.format(b.amount))),
            ("durationEpochs", .number(UInt64(b.durationEpochs))),
            ("autoStake", .bool(b.autoStake)),
            ("startEpoch", .number(b.startEpoch)),
            ("lockEndEpoch", b.autoStake ? .null : .number(b.lockEndEpoch)),
            ("unstakedEpoch", b.unstakedEpoch.map { .number($0) } ?? .null),
            ("withdrawableFromEpoch", withdrawable),
            ("weight", .units(b.weight)),
            ("stateKey", .hex(StakingRules.bucketKey(id).treeKey)),
            ("encoded", .hex(b.encoded)),
        ]
    }

    public static func member(_ m: Committee.Member, index: Int) -> JSONValue {
        let address = (try? XOnlyPublicKey(bytes: m.key)).map { Address(publicKey: $0).bech32 } ?? ""
        return .object([
            ("index", .int(index)), ("key", .hex(m.key)), ("address", .string(address)), ("weight", .units(m.weight)),
        ])
    }

    public static func committee(_ c: Committee) -> JSONValue {
        .object([
            ("epoch", .number(c.epoch)),
            ("members", .array(c.members.enumerated().map { member($1, index: $0) })),
            ("totalWeight", .units(c.totalWeight)),
            ("hash", .hex(c.hash)),
        ])
    }

    /// `attesters`: the pool members whose attestation of the checkpoint this node keeps (what `v1/skip` serves).
    public static func checkpoint(_ cp: Checkpoint, attesters: [Bytes32]) -> JSONValue {
        let h = cp.header
        return .object([
            ("epoch", .number(h.epoch)),
            ("height", .number(h.height)),
            ("hash", .hex(h.hash)),
            ("nextCommitteeHash", h.nextCommitteeHash.map { .hex($0) } ?? .null),
            ("nextPoolHash", h.nextPoolHash.map { .hex($0) } ?? .null),
            ("nextCommittee", committee(cp.nextCommittee)),
            ("certificate", certificate(cp.certificate)),
            ("attesters", .array(attesters.sorted { $0 < $1 }.map { .hex($0) })),
            ("encoded", .hex(cp.encoded)),
        ])
    }
}

// MARK: - consensus status

extension APIJSON {
    /// The wire name of a consensus step, stable like the step numbers of votes.
    public static func stepName(_ step: ConsensusStep) -> String {
        switch step {
        case .propose: "propose"
        case .prepare: "prepare"
        case .commit: "commit"
        }
    }

    /// The network's counters an operator watches: traffic, and what was dropped, reported or banned and why.
    /// Reasons are sorted by name so the shape is stable; only non-zero reasons appear.
    public static func networkCounters(_ m: NetworkMetrics) -> JSONValue {
        let drops = m.drops.filter { $0.value > 0 }.map { ($0.key.rawValue, $0.value) }.sorted { $0.0 < $1.0 }
        // Several reasons may print alike (handshake failures by kind); their counts are summed.
        let byName = Dictionary(
            m.disconnects.filter { $0.value > 0 }.map { ("\($0.key)", $0.value) }, uniquingKeysWith: +)
        let disconnects = byName.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return .object([
            ("framesReceived", .int(m.framesReceived)),
            ("framesSent", .int(m.framesSent)),
            ("framesDelivered", .int(m.framesDelivered)),
            ("reports", .int(m.reports)),
            ("bans", .int(m.bans)),
            ("drops", .object(drops.map { ($0.0, .int($0.1)) })),
            ("disconnects", .object(disconnects.map { ($0.0, .int($0.1)) })),
        ])
    }
}

// MARK: - explorer

extension APIJSON {
    /// One row of an account's activity: `direction` is `out` (it sent the transaction), `in` (a transfer paid
    /// it) or `self` (both). The row comes from the account's activity index, so it is one of the three.
    public static func activity(_ row: ChainNode.Activity, of account: Address) -> JSONValue {
        let body = row.transaction.body
        let sender = (try? XOnlyPublicKey(bytes: body.sender)).map { Address(publicKey: $0) }
        var recipient: Address?
        var amount: UInt64?
        var memo: [UInt8] = []
        switch body.payload {
        case .transfer(let t):
            recipient = t.to
            amount = t.amount
            memo = t.memo
        case .stealthTransfer(let t):
            recipient = t.to
            amount = t.amount
        default: break
        }
        let direction = sender != account ? "in" : recipient == account ? "self" : "out"
        let counterparty = sender == account ? recipient : sender
        var fields: [(String, JSONValue)] = [
            // The receipt names the id: no need to encode and hash the body again.
            ("id", .hex(row.receipt.transactionID)),
            ("height", .number(row.height)),
            ("position", .int(row.position)),
            ("timestamp", .number(row.timestamp)),
            ("kind", .string(kindName(body.payload))),
            ("direction", .string(direction)),
            ("counterparty", counterparty.map { .string($0.bech32) } ?? .null),
            ("amount", amount.map { .units($0) } ?? .null),
            ("status", .string(row.receipt.status == .success ? "success" : "failed")),
            ("feePaid", .units(row.receipt.feePaid)),
        ]
        if let text = String(validating: memo, as: UTF8.self), !text.isEmpty {
            fields.append(("memoText", .string(text)))
        }
        return .object(fields)
    }
}
