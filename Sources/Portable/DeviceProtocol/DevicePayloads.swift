import AmarsCodec
import AmarsCrypto
import Ledger

// The response bodies of the CoAP device API (content-format 42), in the chain's canonical binary encoding.
//
// Each is a plain record of chain types a light client already decodes, so firmware needs no second codec, and
// each decodes with explicit caps so a device can read a gateway's answer without trusting it.

/// A block header with the certificate that finalized it: the answer to `v1/head` (and every Observe
/// notification of it) and to `v1/headers?h=`. A device checks the certificate against its trusted committee.
public struct HeaderPayload: Equatable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    public var certificate: CommitCertificate

    public init(header: BlockHeader, certificate: CommitCertificate) {
        self.header = header
        self.certificate = certificate
    }

    public init(_ block: FinalizedBlock) {
        self.init(header: block.block.header, certificate: block.certificate)
    }

    public func encode(to w: inout ByteWriter) {
        w.write(header)
        w.write(certificate)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        header = try r.read()
        certificate = try r.read()
    }
}

/// A run of epoch checkpoints (`v1/checkpoints`): a varint count, then each checkpoint.
public struct CheckpointsPayload: Equatable, Sendable, CanonicalCodable {
    /// Most checkpoints one response carries; a device asks again from where the answer stopped.
    public static let maxCount = 64

    public var checkpoints: [Checkpoint]

    public init(_ checkpoints: [Checkpoint]) { self.checkpoints = checkpoints }

    public func encode(to w: inout ByteWriter) { w.write(list: checkpoints) }

    public init(from r: inout ByteReader) throws(CodecError) {
        checkpoints = try r.readList(Checkpoint.self, cap: Self.maxCount)
    }
}

/// A checkpoint for a device that skips (`v1/skip?from=E`): the checkpoint closing an epoch, the roster of the
/// pool of epoch E (the one the device trusts), and the attestations of that checkpoint by members of the roster,
/// indexed into it. The device trusts none of it: the roster must hash to its trusted pool hash, and each
/// attestation is checked against the key the roster gives (``SkippingCheckpoint``). The checkpoint keeps its
/// commit certificate, which an adjacent (sequential) step checks instead.
public struct SkipPayload: Equatable, Sendable, CanonicalCodable {
    public var checkpoint: Checkpoint
    public var trustedPool: Committee
    public var attestations: CommitCertificate

    public init(checkpoint: Checkpoint, trustedPool: Committee, attestations: CommitCertificate) {
        self.checkpoint = checkpoint
        self.trustedPool = trustedPool
        self.attestations = attestations
    }

    public func encode(to w: inout ByteWriter) {
        w.write(checkpoint)
        w.write(trustedPool)
        w.write(attestations)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        checkpoint = try r.read()
        trustedPool = try r.read()
        attestations = try r.read()
    }
}

/// An operator's statement that a checkpoint is on the chain it runs (`amars device reanchor`): what brings back
/// a device that slept past its trusting period, when no committee it knew can vouch for anything any more. The
/// device was provisioned with the operator's key; the statement signs the header of a checkpoint (which names
/// the committee given here) under the tag `AmarsReanchor`.
public struct ReanchorPayload: Equatable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    /// The committee `header` names (of the epoch after the header's).
    public var committee: Committee
    /// BIP340 by the operator's key over ``signingHash``.
    public var signature: Bytes64

    public init(header: BlockHeader, committee: Committee, signature: Bytes64) {
        self.header = header
        self.committee = committee
        self.signature = signature
    }

    /// What the operator signs: the chain's genesis block hash and the checkpoint header's hash, tagged, so no
    /// other signature of that key counts, nor its statement for another network it runs.
    public static func signingHash(header: BlockHeader, genesis: Bytes32) -> Bytes32 {
        Domain.reanchor.hash(genesis.bytes + header.hash.bytes)
    }

    public func encode(to w: inout ByteWriter) {
        w.write(header)
        w.write(committee)
        w.write(signature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        header = try r.read()
        committee = try r.read()
        signature = try r.readBytes64()
    }
}

/// Proof that a transaction is final (`v1/proof/tx`): the block header and its certificate, the transaction's
/// position, the Merkle path from its leaf to the header's transactions root, and its receipt.
public struct TransactionProofPayload: Equatable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    public var certificate: CommitCertificate
    public var position: UInt64
    public var proof: MerkleProof
    public var receipt: Receipt
    /// The receipt's path to the header's receipts root, so the device checks success itself.
    public var receiptProof: MerkleProof

    public init(
        header: BlockHeader, certificate: CommitCertificate, position: UInt64, proof: MerkleProof,
        receipt: Receipt, receiptProof: MerkleProof
    ) {
        self.header = header
        self.certificate = certificate
        self.position = position
        self.proof = proof
        self.receipt = receipt
        self.receiptProof = receiptProof
    }

    public func encode(to w: inout ByteWriter) {
        w.write(header)
        w.write(certificate)
        w.writeVarint(position)
        w.write(proof)
        w.write(receipt)
        w.write(receiptProof)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        header = try r.read()
        certificate = try r.read()
        position = try r.readVarint()
        proof = try r.read()
        receipt = try r.read()
        receiptProof = try r.read()
    }
}

/// A state object kept by the id of the transaction that made it (a rental escrow, an HTLC, a payment channel), or
/// its absence (`state` nil), with the sparse-Merkle proof against the state root of block `height`
/// (`v1/proof/escrow`, `v1/proof/htlc`, `v1/proof/channel`). A device that verified that block's header checks it
/// with `ProofVerifier.verifyValue` under the object's key and acts only on what is proven.
public struct ObjectProofPayload<State: CanonicalCodable & Equatable & Sendable>: Equatable, Sendable,
    CanonicalCodable
{
    public var height: UInt64
    public var stateRoot: Bytes32
    public var state: State?
    public var proof: SparseMerkleProof

    public init(height: UInt64, stateRoot: Bytes32, state: State?, proof: SparseMerkleProof) {
        self.height = height
        self.stateRoot = stateRoot
        self.state = state
        self.proof = proof
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.write(stateRoot)
        w.write(optional: state)
        w.write(proof)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        height = try r.readVarint()
        stateRoot = try r.readBytes32()
        state = try r.readOptional()
        proof = try r.read()
    }
}

/// What a lock checks before it opens: it opens only for an escrow proven open and naming it.
public typealias EscrowProofPayload = ObjectProofPayload<EscrowState>
/// What a device checks before it claims an HTLC with its secret.
public typealias HTLCProofPayload = ObjectProofPayload<HTLCState>
/// What a channel's recipient checks an off-chain update against.
public typealias ChannelProofPayload = ObjectProofPayload<PaymentChannel>

/// Final transfers paying one address (`v1/inbox?a=<address>&from=<height>`), oldest first: what a terminal
/// polls while it waits to be paid. The gateway could omit or invent entries; the device proves each one it
/// acts on with `v1/proof/tx`, and its balance with `v1/proof/account`.
public struct InboxPayload: Equatable, Sendable, CanonicalCodable {
    /// Entries per answer: a few signed transfers stay within a handful of CoAP blocks.
    public static let maxEntries = 4

    public struct Entry: Equatable, Sendable, CanonicalCodable {
        public var height: UInt64
        public var position: UInt64
        public var transaction: SignedTransaction

        public init(height: UInt64, position: UInt64, transaction: SignedTransaction) {
            self.height = height
            self.position = position
            self.transaction = transaction
        }

        public func encode(to w: inout ByteWriter) {
            w.writeVarint(height)
            w.writeVarint(position)
            w.write(transaction)
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            height = try r.readVarint()
            position = try r.readVarint()
            transaction = try r.read()
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public func encode(to w: inout ByteWriter) { w.write(list: entries) }

    public init(from r: inout ByteReader) throws(CodecError) { entries = try r.readList(cap: Self.maxEntries) }
}

/// Messages waiting at one of the gateway's doors, oldest first, each with the sequence number the gateway gave it:
/// the commands for a device (`v1/commands`), the bytes as its controller signed them (a ``BulbCommand`` for a
/// bulb), or the messages of a payment channel (`v1/channel/messages`), as its sender signed them. The reader
/// decodes and checks them itself.
public typealias CommandsPayload = MailboxPayload

public struct MailboxPayload: Equatable, Sendable, CanonicalCodable {
    /// Messages per answer.
    public static let maxEntries = 8
    /// Largest command the command door takes.
    public static let maxCommandBytes = 256
    /// Largest channel message the channel door takes (an update with its conditions and a relayed notification).
    public static let maxChannelMessageBytes = 1_024

    public struct Entry: Equatable, Sendable, CanonicalCodable {
        public var sequence: UInt64
        public var message: [UInt8]

        public init(sequence: UInt64, message: [UInt8]) {
            self.sequence = sequence
            self.message = message
        }

        public func encode(to w: inout ByteWriter) {
            w.writeVarint(sequence)
            w.writeLengthPrefixed(message)
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            sequence = try r.readVarint()
            message = try r.readLengthPrefixed(cap: MailboxPayload.maxChannelMessageBytes)
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public func encode(to w: inout ByteWriter) { w.write(list: entries) }

    public init(from r: inout ByteReader) throws(CodecError) { entries = try r.readList(cap: Self.maxEntries) }
}

/// An account's state with its sparse-Merkle proof against the state root of block `height`
/// (`v1/proof/account`). A device that verified that block's header checks the proof against its root.
public struct AccountProofPayload: Equatable, Sendable, CanonicalCodable {
    public var height: UInt64
    public var stateRoot: Bytes32
    public var state: AccountState
    public var proof: SparseMerkleProof

    public init(height: UInt64, stateRoot: Bytes32, state: AccountState, proof: SparseMerkleProof) {
        self.height = height
        self.stateRoot = stateRoot
        self.state = state
        self.proof = proof
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.write(stateRoot)
        w.write(state)
        w.write(proof)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        height = try r.readVarint()
        stateRoot = try r.readBytes32()
        state = try r.read()
        proof = try r.read()
    }
}

/// An address's payment-code notification count and its record `index` (absent past the count), each with its
/// sparse-Merkle proof against the state root of block `height` (`v1/notifications`).
public struct NotificationProofPayload: Equatable, Sendable, CanonicalCodable {
    public var height: UInt64
    public var stateRoot: Bytes32
    public var count: UInt64
    public var countProof: SparseMerkleProof
    public var index: UInt64
    public var record: PaymentNotificationRecord?
    public var recordProof: SparseMerkleProof

    public init(
        height: UInt64, stateRoot: Bytes32, count: UInt64, countProof: SparseMerkleProof, index: UInt64,
        record: PaymentNotificationRecord?, recordProof: SparseMerkleProof
    ) {
        self.height = height
        self.stateRoot = stateRoot
        self.count = count
        self.countProof = countProof
        self.index = index
        self.record = record
        self.recordProof = recordProof
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.write(stateRoot)
        w.writeVarint(count)
        w.write(countProof)
        w.writeVarint(index)
        w.write(optional: record)
        w.write(recordProof)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        height = try r.readVarint()
        stateRoot = try r.readBytes32()
        count = try r.readVarint()
        countProof = try r.read()
        index = try r.readVarint()
        record = try r.readOptional()
        recordProof = try r.read()
    }
}

/// A finished epoch's recipient filter (``RecipientFilter``) with the sparse-Merkle proof that the state at block
/// `height` records `committed` as its hash (`v1/filter`). A device that verified that block's header checks the
/// proof against its root, then the filter bytes against `committed` as it tests them.
public struct RecipientFilterPayload: Equatable, Sendable, CanonicalCodable {
    /// The largest filter a gateway serves: about 200,000 recipients in one epoch.
    public static let maxFilterBytes = 1 << 19

    public var epoch: UInt64
    public var height: UInt64
    public var stateRoot: Bytes32
    public var committed: Bytes32
    public var proof: SparseMerkleProof
    public var filter: [UInt8]

    public init(
        epoch: UInt64, height: UInt64, stateRoot: Bytes32, committed: Bytes32, proof: SparseMerkleProof,
        filter: [UInt8]
    ) {
        self.epoch = epoch
        self.height = height
        self.stateRoot = stateRoot
        self.committed = committed
        self.proof = proof
        self.filter = filter
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(epoch)
        w.writeVarint(height)
        w.write(stateRoot)
        w.write(committed)
        w.write(proof)
        w.writeLengthPrefixed(filter)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        epoch = try r.readVarint()
        height = try r.readVarint()
        stateRoot = try r.readBytes32()
        committed = try r.readBytes32()
        proof = try r.read()
        filter = try r.readLengthPrefixed(cap: Self.maxFilterBytes)
    }
}

/// A final transaction's receipt with where it landed (`v1/receipt`), so a device that wants more than the
/// receipt knows which header to fetch and which proof to ask for.
public struct ReceiptPayload: Equatable, Sendable, CanonicalCodable {
    public var height: UInt64
    public var position: UInt64
    public var receipt: Receipt

    public init(height: UInt64, position: UInt64, receipt: Receipt) {
        self.height = height
        self.position = position
        self.receipt = receipt
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.writeVarint(position)
        w.write(receipt)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        height = try r.readVarint()
        position = try r.readVarint()
        receipt = try r.read()
    }
}

/// The answer of `v1/cert?id=…`: the records of a certificate and of each ancestor up to its root, each with its
/// state proof against the state root of block `height`, or, when no certificate has the id, the proof of its
/// absence. Records are the state's bytes (DeviceIdentity's `CertificateRecord`), so the device hashes exactly what
/// the proof covers and decodes only what verified.
public struct CertificateProofPayload: Equatable, Sendable, CanonicalCodable {
    /// Deepest chain a gateway serves (root → hub → device → short-lived is 4).
    public static let maxLinks = 8

    public struct Link: Equatable, Sendable, CanonicalCodable {
        public var id: Bytes32
        public var record: [UInt8]
        public var proof: SparseMerkleProof

        public init(id: Bytes32, record: [UInt8], proof: SparseMerkleProof) {
            self.id = id
            self.record = record
            self.proof = proof
        }

        public func encode(to w: inout ByteWriter) {
            w.write(id)
            w.writeLengthPrefixed(record)
            w.write(proof)
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            id = try r.readBytes32()
            // A certificate of the cap plus the record's own fields.
            record = try r.readLengthPrefixed(cap: Caps.certificateBytes + 64)
            proof = try r.read()
        }
    }

    public var height: UInt64
    public var stateRoot: Bytes32
    /// The certificate first, its root last; empty when none has the id.
    public var links: [Link]
    /// With no links: the proof that the id holds nothing.
    public var absence: SparseMerkleProof?

    public init(height: UInt64, stateRoot: Bytes32, links: [Link], absence: SparseMerkleProof?) {
        self.height = height
        self.stateRoot = stateRoot
        self.links = links
        self.absence = absence
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(height)
        w.write(stateRoot)
        w.writeVarint(UInt64(links.count))
        for link in links { w.write(link) }
        w.write(optional: absence)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        height = try r.readVarint()
        stateRoot = try r.readBytes32()
        let count = try r.readCount(cap: Self.maxLinks)
        links = []
        for _ in 0..<count { links.append(try r.read()) }
        absence = try r.readOptional()
        guard links.isEmpty == (absence != nil) else { throw .invalidValue(.range) }
    }
}
