import AmarsCodec
import Consensus
import Ledger
import Network

/// The gateway-to-gateway messages of a committee node, one frame kind each, and their payload encodings.
///
/// The frame kind is the message tag, so a payload is just the canonical encoding of its fields: the network can
/// enforce each kind's size cap before a byte is decoded, and the node never sees a proposal frame bigger than
/// the largest block. Consensus traffic (proposal, vote, decision) and transactions are gossip: deduplicated by
/// the network and re-broadcast by the node after it accepted them. Status and block sync are direct messages:
/// asked twice, answered twice.
public enum PeerMessage: Equatable, Sendable {
    /// A signed proposal with the block whose hash it names.
    case proposal(SignedProposal, Block)
    case vote(Vote)
    /// A block with its commit certificate (catch-up for peers still at that height).
    case decision(FinalizedBlock)
    /// An encoded `SignedTransaction`, kept as bytes: the chain decodes and verifies it on submit. Gateways now
    /// send ``transactions(_:)``; one transaction alone is still accepted from a peer of the release before.
    case transaction([UInt8])
    /// Several encoded transactions in one frame (a few milliseconds' worth of admissions): one frame tag, one
    /// syscall and one gossip entry instead of one each per transaction.
    case transactions([[UInt8]])
    /// "My committed head is at this height, with this hash": lets a lagging peer notice it must sync.
    case status(height: UInt64, hash: Bytes32)
    /// "Send me the finalized blocks from height `from`, at most `count` of them."
    case blockRequest(from: UInt64, count: UInt32)
    /// Consecutive finalized blocks, the answer to a request (possibly fewer than asked, never more).
    case blockResponse([FinalizedBlock])

    /// Frame kinds (the network reserves the ones below 0x10).
    public enum Kind {
        public static let proposal: UInt8 = 0x10
        public static let vote: UInt8 = 0x11
        public static let decision: UInt8 = 0x12
        public static let transaction: UInt8 = 0x13
        public static let status: UInt8 = 0x14
        public static let blockRequest: UInt8 = 0x15
        public static let blockResponse: UInt8 = 0x16
        public static let transactions: UInt8 = 0x17
    }

    /// Caps. A block is at most `Caps.blockBytes`; a certificate at most a signature per committee member.
    public enum Limits {
        static let certificateBytes = 32 + Caps.committeeMembers * 70
        public static let proposalBytes = Caps.blockBytes + 256
        public static let voteBytes = 256
        public static let decisionBytes = Caps.blockBytes + certificateBytes
        public static let transactionBytes = Caps.transactionBytes
        /// Most transactions and bytes in one batch frame.
        public static let transactionsPerBatch = 1024
        public static let transactionBatchBytes = 256 * 1024
        public static let statusBytes = 64
        public static let blockRequestBytes = 32
        /// A response holds as many whole blocks as fit; one block of the maximum size always fits.
        public static let blockResponseBytes = decisionBytes + 16
        /// Blocks one request may ask for; bounds the work one request costs the answering node.
        public static let blocksPerRequest: UInt32 = 64
        /// The largest frame of any kind, plus the kind byte.
        public static let maxFrameSize = blockResponseBytes + 1
    }

    /// The kinds table for `NetworkConfiguration`.
    public static func frameKinds() -> FrameKinds {
        var kinds = FrameKinds(maxFrameSize: Limits.maxFrameSize)
        // Registration fails only for a programming error (a duplicate or reserved kind): trap loudly.
        do {
            try kinds.register(kind: Kind.proposal, maxPayload: Limits.proposalBytes, delivery: .gossip)
            try kinds.register(kind: Kind.vote, maxPayload: Limits.voteBytes, delivery: .gossip)
            try kinds.register(kind: Kind.decision, maxPayload: Limits.decisionBytes, delivery: .gossip)
            try kinds.register(kind: Kind.transaction, maxPayload: Limits.transactionBytes, delivery: .gossip)
            try kinds.register(kind: Kind.transactions, maxPayload: Limits.transactionBatchBytes, delivery: .gossip)
            try kinds.register(kind: Kind.status, maxPayload: Limits.statusBytes, delivery: .direct)
            try kinds.register(kind: Kind.blockRequest, maxPayload: Limits.blockRequestBytes, delivery: .direct)
            try kinds.register(kind: Kind.blockResponse, maxPayload: Limits.blockResponseBytes, delivery: .direct)
        } catch {
            preconditionFailure("frame kinds: \(error)")
        }
        return kinds
    }

    public var frame: Frame {
        var w = ByteWriter()
        let kind: UInt8
        switch self {
        case .proposal(let signed, let block):
            kind = Kind.proposal
            signed.encode(to: &w)
            block.encode(to: &w)
        case .vote(let vote):
            kind = Kind.vote
            vote.encode(to: &w)
        case .decision(let finalized):
            kind = Kind.decision
            finalized.encode(to: &w)
        case .transaction(let bytes):
            kind = Kind.transaction
            w.write(bytes)
        case .transactions(let list):
            kind = Kind.transactions
            w.write(TransactionBatch.encode(list))
        case .status(let height, let hash):
            kind = Kind.status
            w.writeVarint(height)
            w.write(hash)
        case .blockRequest(let from, let count):
            kind = Kind.blockRequest
            w.writeVarint(from)
            w.writeVarint(UInt64(count))
        case .blockResponse(let blocks):
            kind = Kind.blockResponse
            w.write(list: blocks)
        }
        return Frame(kind: kind, payload: w.bytes)
    }

    /// Decodes a frame's payload; trailing bytes, truncation and unknown kinds are errors.
    public init(frame: Frame) throws(CodecError) {
        var r = ByteReader(frame.payload)
        switch frame.kind {
        case Kind.proposal:
            self = .proposal(try SignedProposal(from: &r), try Block(from: &r))
        case Kind.vote:
            self = .vote(try Vote(from: &r))
        case Kind.decision:
            self = .decision(try FinalizedBlock(from: &r))
        case Kind.transaction:
            guard !frame.payload.isEmpty else { throw .truncated }
            self = .transaction(frame.payload)
            return
        case Kind.transactions:
            self = .transactions(try TransactionBatch.decode(from: &r, maxCount: Limits.transactionsPerBatch))
        case Kind.status:
            self = .status(height: try r.readVarint(), hash: try r.readBytes32())
        case Kind.blockRequest:
            let from = try r.readVarint()
            let count = try r.readVarint32()
            guard count >= 1, count <= Limits.blocksPerRequest else { throw .invalidValue(.range) }
            self = .blockRequest(from: from, count: count)
        case Kind.blockResponse:
            self = .blockResponse(try r.readList(FinalizedBlock.self, cap: Int(Limits.blocksPerRequest)))
        default:
            throw .unknownTag(frame.kind)
        }
        try r.finish()
    }
}
