import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Foundation
import Ledger
import Logging
import Synchronization

/// One node's chain: committed blocks and state, the mempool, and the two ways a block arrives — produced
/// here (``produceBlock(timestamp:)``, the single-node dev mode) or imported with its certificate
/// (``importBlock(_:)``). Thread-safe: every entry point takes one lock, so the API and the block timer can
/// call in from any thread.
public final class ChainNode: @unchecked Sendable {
    public enum NodeError: Error, CustomStringConvertible {
        case store(StoreError)
        case genesisMismatch(stored: Bytes32, configured: Bytes32)
        case corruptState(String)
        case notAValidator
        case invalidBlock(String)
        case invalidGenesis(Genesis.ValidationError)
        case notInCommittee(epoch: UInt64)
        case cannotFinalizeAlone(epoch: UInt64)

        public var description: String {
            switch self {
            case .store(let e): "\(e)"
            case .genesisMismatch: "the data directory belongs to another genesis; use a new --data directory"
            case .corruptState(let s): "stored state is inconsistent: \(s)"
            case .notAValidator: "this node has no validator key in the genesis committee"
            case .invalidBlock(let s): "invalid block: \(s)"
            case .invalidGenesis(let e): "invalid genesis: \(e)"
            case .notInCommittee(let epoch): "this node's key is not in the committee of epoch \(epoch)"
            case .cannotFinalizeAlone(let epoch):
                "this node holds no more than 2/3 of the weight of epoch \(epoch)'s committee: one node cannot finalize"
            }
        }
    }

    public let genesis: Genesis
    public let genesisHash: Bytes32
    /// Hash of the height-0 block header: what transactions and devices name the chain by.
    public let genesisBlockHash: Bytes32
    public let fees: FeeSchedule
    public let executor: TransactionExecutor
    private let store: BlockStore
    private let world: WorldState
    private var mempool: Mempool
    private var headBlock: FinalizedBlock
    private let validatorKey: PrivateKey?
    private let lock = NSLock()
    /// The sender keys parsed and the signatures checked before, shared by every door's checks.
    private let checker = TransactionChecker()
    /// What ``head`` and ``status`` answer: published under the chain lock after every change, read under a
    /// lock of its own. Building and executing a block holds the chain lock for its whole run; a reader of the
    /// head (the API's `/v1/head`, `/readyz`, `/metrics`, a device door) must not wait for that.
    private let board: Mutex<Status>
    private let logger: Logger
    /// Where acknowledged submits wait for their block (``submitAcknowledged(encoded:)``); nil: nothing is
    /// journaled (tests, tools).
    public let journal: SubmitJournal?

    public init(
        genesis: Genesis, store: BlockStore, validatorKey: PrivateKey? = nil, fees: FeeSchedule = .standard,
        mempoolLimits: Mempool.Limits = .init(), journal: SubmitJournal? = nil,
        logger: Logger = Logger(label: "amars.chain")
    ) throws(NodeError) {
        self.journal = journal
        do { try genesis.validate(fees: fees) } catch { throw .invalidGenesis(error) }
        self.genesis = genesis
        self.genesisHash = genesis.hash
        self.fees = fees
        self.store = store
        self.validatorKey = validatorKey
        self.mempool = Mempool(limits: mempoolLimits, recordsDrops: journal != nil)
        self.logger = logger
        do {
            if let stored = try store.genesisHash() {
                guard stored == genesisHash else {
                    throw NodeError.genesisMismatch(stored: stored, configured: genesisHash)
                }
                guard let height = try store.headHeight(), let head = try store.block(at: height) else {
                    throw NodeError.corruptState("no head block")
                }
                // Block 0 as stored, rather than the genesis state built again to hash its header.
                guard let first = try store.block(at: 0) else { throw NodeError.corruptState("no genesis block") }
                genesisBlockHash = first.finalized.block.hash
                world = WorldState(try store.loadState())
                headBlock = head.finalized
                guard world.root == head.finalized.block.header.stateRoot else {
                    throw NodeError.corruptState("state root of accounts does not match head block \(height)")
                }
            } else {
                let initial = genesis.initialState
                world = WorldState(initial)
                headBlock = Self.genesisBlock(genesis, genesisHash: genesisHash, stateRoot: world.root)
                genesisBlockHash = headBlock.block.hash
                try store.initialize(genesisHash: genesisHash, genesisBlock: headBlock, state: initial)
            }
        } catch let e as StoreError {
            throw .store(e)
        } catch let e as NodeError {
            throw e
        } catch {
            throw .corruptState("\(error)")
        }
        executor = TransactionExecutor(
            chainID: genesis.chainID, genesisBlock: genesisBlockHash, fees: fees, staking: genesis.staking,
            epochLength: genesis.epochLength)
        board = Mutex(Status(head: headBlock.block.header, nextBaseFee: 0, pending: 0, accounts: 0))
        // Open escrows, HTLCs and channels hold tokens no account holds.
        let held = world.totalBalance + world.totalStaked + world.totalEscrowed
        guard held == genesis.totalAllocated else {
            throw .corruptState(
                "balances, stakes, escrows, HTLCs and channels sum to \(held), "
                    + "genesis allocated \(genesis.totalAllocated)")
        }
        if let key = validatorKey, genesis.committee(epoch: 0).index(of: key.xOnlyPublicKey.bytes) == nil {
            throw .notAValidator
        }
        let head = headBlock.block.header.height
        if head % genesis.epochLength != 0 {
            let first = head - head % genesis.epochLength + 1
            do {
                for h in first...head {
                    guard let stored = try store.block(at: h),
                        let beta = ECVRF.proofToHash(stored.finalized.block.header.vrfProof)
                    else { throw NodeError.corruptState("block \(h) lacks its VRF proof") }
                    epochOutputs.append(beta)
                    epochPayees.add(stored.finalized.block.transactions, receipts: stored.receipts)
                }
            } catch let e as StoreError { throw .store(e) } catch let e as NodeError { throw e } catch {
                throw .corruptState("\(error)")
            }
        }
        publishUnlocked()
    }

    /// Height 0: links to the genesis document by hash and names the first committee, so a light client that
    /// trusts the genesis hash trusts the first committee.
    static func genesisBlock(_ genesis: Genesis, genesisHash: Bytes32, stateRoot: Bytes32) -> FinalizedBlock {
        let header = genesis.header(genesisHash: genesisHash, stateRoot: stateRoot)
        return FinalizedBlock(
            block: Block(header: header, transactions: []),
            certificate: CommitCertificate(height: 0, round: 0, blockHash: header.hash, signatures: []))
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: queries

    /// The committed world state, for tests in this package only.
    var worldForTesting: WorldState { locked { world } }

    public var head: BlockHeader { board.withLock { $0.head } }

    /// The head with the certificate that finalized it (empty for the genesis block), for finality reports.
    public var finalizedHead: FinalizedBlock { locked { headBlock } }

    /// This node's validator key (x-only), if it has one: what it signs blocks and votes with.
    public var validatorPublicKey: Bytes32? { validatorKey?.xOnlyPublicKey.bytes }

    /// The base fee the next block will charge.
    public var nextBaseFee: UInt64 { locked { nextBaseFeeUnlocked } }

    private var nextBaseFeeUnlocked: UInt64 { fees.nextBaseFee(after: headBlock.block.header) }

    public var pendingCount: Int { locked { mempool.count } }

    public var accountCount: Int { locked { world.count } }

    /// Head, next base fee and counts read under one lock, so they all describe the same block.
    public struct Status: Sendable {
        public var head: BlockHeader
        public var nextBaseFee: UInt64
        public var pending: Int
        public var accounts: Int
        /// Blocks since this node started that could change who ``revokedDeviceAccounts()`` lists (a device
        /// certificate published, a revocation): a watcher looks again only when this moved.
        public var certificateBlocks: UInt64 = 0
    }

    public var status: Status { board.withLock { $0 } }

    /// Called with the chain lock held, after a block changed the head, the state and the mempool.
    private func publishUnlocked() {
        let now = Status(
            head: headBlock.block.header, nextBaseFee: nextBaseFeeUnlocked, pending: mempool.count,
            accounts: world.count, certificateBlocks: certificateBlocks)
        board.withLock { $0 = now }
    }

    public func block(at height: UInt64) throws(StoreError) -> BlockStore.StoredBlock? {
        lock.lock()
        defer { lock.unlock() }
        return try store.block(at: height)
    }

    /// The block with this hash, if this node has it.
    public func block(hash: Bytes32) throws(StoreError) -> BlockStore.StoredBlock? {
        lock.lock()
        defer { lock.unlock() }
        guard let height = try store.height(ofBlock: hash) else { return nil }
        return try store.block(at: height)
    }

    /// One final transaction an account sent or was paid by, with where and when it was included.
    public struct Activity: Sendable {
        public var height: UInt64
        public var position: Int
        public var timestamp: UInt64
        public var transaction: SignedTransaction
        public var receipt: Receipt

        public init(height: UInt64, position: Int, timestamp: UInt64, transaction: SignedTransaction, receipt: Receipt)
        {
            self.height = height
            self.position = position
            self.timestamp = timestamp
            self.transaction = transaction
            self.receipt = receipt
        }
    }

    /// What `address` sent or was paid by transfer in blocks above `after` (nil: any), newest first, at most
    /// `limit` (an explorer's account page, and the receipts of an event stream).
    public func activity(of address: Address, after: UInt64? = nil, limit: Int) throws(StoreError) -> [Activity] {
        lock.lock()
        defer { lock.unlock() }
        var found: [Activity] = []
        var cached: (height: UInt64, block: BlockStore.StoredBlock)?
        for location in try store.activity(of: address, after: after, limit: limit) {
            let stored: BlockStore.StoredBlock
            if let cached, cached.height == location.height {
                stored = cached.block
            } else {
                guard let fetched = try store.block(at: location.height) else {
                    throw StoreError(code: -1, message: "activity index names a missing block \(location.height)")
                }
                stored = fetched
                cached = (location.height, fetched)
            }
            let block = stored.finalized.block
            guard location.position < block.transactions.count, location.position < stored.receipts.count else {
                throw StoreError(code: -1, message: "activity index names a missing transaction")
            }
            found.append(
                Activity(
                    height: location.height, position: location.position, timestamp: block.header.timestamp,
                    transaction: block.transactions[location.position], receipt: stored.receipts[location.position]))
        }
        return found
    }

    public struct AccountView: Sendable {
        public var address: Address
        public var state: AccountState
        /// Transactions of this sender waiting in the mempool; the next nonce to use is state.nonce + pending.
        public var pending: Int
        public var proof: SparseMerkleProof
        public var height: UInt64
        public var stateRoot: Bytes32
    }

    /// An object of the state tree by id (nil when none has that id) with its proof against the head's state root:
    /// an escrow, an HTLC or a payment channel.
    public struct ObjectView<Value: Sendable>: Sendable {
        public var id: Bytes32
        public var state: Value?
        public var proof: SparseMerkleProof
        public var height: UInt64
        public var stateRoot: Bytes32
    }

    public typealias EscrowView = ObjectView<EscrowState>
    public typealias HTLCView = ObjectView<HTLCState>
    public typealias ChannelView = ObjectView<PaymentChannel>

    private func objectView<Value: CanonicalCodable & Sendable>(_ key: ObjectKey, id: Bytes32) -> ObjectView<Value> {
        locked {
            let (value, proof) = world.proof(for: key)
            let h = headBlock.block.header
            return ObjectView(
                id: id, state: value.flatMap { try? Value(decoding: $0) }, proof: proof, height: h.height,
                stateRoot: h.stateRoot)
        }
    }

    /// An HTLC (or its absence) with its proof against the head's state root.
    public func htlc(_ id: Bytes32) -> HTLCView { objectView(HTLCRules.key(id), id: id) }

    /// A payment channel (or its absence) with its proof against the head's state root.
    public func channel(_ id: Bytes32) -> ChannelView { objectView(ChannelRules.key(id), id: id) }

    /// A payment channel at the head, without a proof: what the channel door checks each message against, on the
    /// broker's thread, where building a sparse-Merkle proof per message would be wasted.
    public func channelState(_ id: Bytes32) -> PaymentChannel? {
        locked { world.object(ChannelRules.key(id)).flatMap { try? PaymentChannel(decoding: $0) } }
    }

    /// The escrow opened by transaction `id`, proven against the head (what a lock checks before it opens).
    public func escrow(_ id: Bytes32) -> EscrowView { objectView(EscrowRules.key(id), id: id) }

    /// A certificate's record and each ancestor's, the certificate first and its root last, each with its proof
    /// against the head's state root; `links` is empty when no certificate has that id. `time` is the head's
    /// timestamp in seconds, what ``CertificateStanding`` is judged at.
    public struct CertificateView: Sendable {
        public var links: [(id: Bytes32, record: CertificateRecord, proof: SparseMerkleProof)]
        /// The proof that no certificate has the id asked for, when none has.
        public var absence: SparseMerkleProof?
        public var height: UInt64
        public var stateRoot: Bytes32
        public var time: UInt64

        public var standing: CertificateStanding? {
            links.isEmpty ? nil : CertificateStanding.of(links.map { ($0.id, $0.record) }, time: time)
        }
    }

    public func certificate(_ id: Bytes32) -> CertificateView {
        locked {
            var links: [(id: Bytes32, record: CertificateRecord, proof: SparseMerkleProof)] = []
            var absence: SparseMerkleProof?
            var next = id
            while links.count < CertificateRules.maxDepth {
                let (value, proof) = world.proof(for: CertificateRules.key(next))
                guard let value, let record = try? CertificateRecord(decoding: value) else {
                    if links.isEmpty { absence = proof }
                    break
                }
                links.append((next, record, proof))
                if record.isRoot { break }
                next = record.issuer
            }
            let h = headBlock.block.header
            return CertificateView(
                links: links, absence: absence, height: h.height, stateRoot: h.stateRoot, time: h.timestamp / 1000)
        }
    }

    /// An address's count of payment-code notification records and its record `index` (nil past the count),
    /// each with its proof against the head's state root.
    public struct NotificationRecordView: Sendable {
        public var height: UInt64
        public var stateRoot: Bytes32
        public var count: UInt64
        public var countProof: SparseMerkleProof
        public var record: [UInt8]?
        public var recordProof: SparseMerkleProof
    }

    public func notificationRecord(_ address: Address, index: UInt64) -> NotificationRecordView {
        locked {
            let (countValue, countProof) = world.proof(
                for: ObjectKey(.paymentNotification, PaymentNotificationRecord.countIdentifier(address)))
            var reader = ByteReader(countValue ?? [0])
            let count = (try? reader.readVarint()) ?? 0
            let (record, recordProof) = world.proof(
                for: ObjectKey(.paymentNotification, PaymentNotificationRecord.recordIdentifier(address, index: index)))
            let h = headBlock.block.header
            return NotificationRecordView(
                height: h.height, stateRoot: h.stateRoot, count: count, countProof: countProof, record: record,
                recordProof: recordProof)
        }
    }

    /// A finished epoch's recipient filter and the proof of its committed hash against the head's state root.
    public struct RecipientFilterView: Sendable {
        public var epoch: UInt64
        public var filter: [UInt8]
        public var committed: Bytes32
        public var proof: SparseMerkleProof
        public var height: UInt64
        public var stateRoot: Bytes32
    }

    /// `epoch`'s recipient filter, rebuilt from its blocks (and kept for the last few epochs), or nil while the
    /// epoch is not finished. Throws when the store cannot be read or disagrees with the committed hash.
    public func recipientFilter(epoch: UInt64) throws(StoreError) -> RecipientFilterView? {
        guard let (view, payees) = try finishedEpoch(epoch, namespace: .recipientFilter) else { return nil }
        return RecipientFilterView(
            epoch: epoch, filter: payees.filter, committed: view.committed, proof: view.proof, height: view.height,
            stateRoot: view.stateRoot)
    }

    /// A finished epoch's stealth announcements and the proof of their committed hash against the head's state root.
    public struct StealthAnnouncementsView: Sendable {
        public var epoch: UInt64
        public var announcements: [StealthAnnouncement]
        public var committed: Bytes32
        public var proof: SparseMerkleProof
        public var height: UInt64
        public var stateRoot: Bytes32
    }

    /// `epoch`'s stealth announcements, or nil while the epoch is not finished (as ``recipientFilter(epoch:)``).
    public func stealthAnnouncements(epoch: UInt64) throws(StoreError) -> StealthAnnouncementsView? {
        guard let (view, payees) = try finishedEpoch(epoch, namespace: .stealthAnnouncements) else { return nil }
        return StealthAnnouncementsView(
            epoch: epoch, announcements: payees.announcements, committed: view.committed, proof: view.proof,
            height: view.height, stateRoot: view.stateRoot)
    }

    /// The committed record of a finished epoch under `namespace` with its proof, and the epoch's filter and
    /// announcements rebuilt from its blocks (cached), both checked against what the epoch's last block committed.
    private func finishedEpoch(_ epoch: UInt64, namespace: StateNamespace) throws(StoreError) -> (
        (committed: Bytes32, proof: SparseMerkleProof, height: UInt64, stateRoot: Bytes32),
        (filter: [UInt8], announcements: [StealthAnnouncement])
    )? {
        lock.lock()
        defer { lock.unlock() }
        let length = genesis.epochLength
        let (next, o1) = epoch.addingReportingOverflow(1)
        let (last, o2) = next.multipliedReportingOverflow(by: length)
        guard !o1, !o2, last <= headBlock.block.header.height else { return nil }
        let id = RecipientFilter.stateIdentifier(epoch: epoch)
        let (value, proof) = world.proof(for: ObjectKey(namespace, id))
        guard let value, let committed = Bytes32(value) else { return nil }
        let payees: (filter: [UInt8], announcements: [StealthAnnouncement])
        if let cached = payeesCache.first(where: { $0.epoch == epoch }) {
            payees = (cached.filter, cached.announcements)
        } else {
            var gathered = EpochPayees()
            for height in (last - length + 1)...last {
                guard let stored = try store.block(at: height) else {
                    throw StoreError(code: -1, message: "missing block \(height) while rebuilding epoch \(epoch)")
                }
                gathered.add(stored.finalized.block.transactions, receipts: stored.receipts)
            }
            for (key, value) in gathered.commitments(genesis: genesisBlockHash, epoch: epoch)
            where world.object(key) != value {
                throw StoreError(
                    code: -1, message: "epoch \(epoch)'s blocks do not give its committed \(key.namespace)")
            }
            payees = (gathered.filter(genesis: genesisBlockHash, epoch: epoch), gathered.announcements)
            payeesCache.append((epoch, payees.filter, payees.announcements))
            if payeesCache.count > 16 { payeesCache.removeFirst() }
        }
        let h = headBlock.block.header
        return ((committed, proof, h.height, h.stateRoot), payees)
    }

    public func account(_ address: Address) -> AccountView {
        locked {
            let (state, proof) = world.proof(for: address)
            let h = headBlock.block.header
            return AccountView(
                address: address, state: state, pending: mempool.pendingCount(for: address), proof: proof,
                height: h.height, stateRoot: h.stateRoot)
        }
    }

    public struct Supply: Sendable {
        public var total: UInt64
        public var burned: UInt64
        public var inAccounts: UInt64
        public var staked: UInt64
        /// Held by open rental escrows, HTLCs and channels.
        public var escrowed: UInt64
    }

    public var supply: Supply {
        locked {
            Supply(
                total: Amount.totalSupply, burned: genesis.totalBurned, inAccounts: world.totalBalance,
                staked: world.totalStaked, escrowed: world.totalEscrowed)
        }
    }

    public enum TransactionStatus: Sendable {
        case pending
        case included(height: UInt64, position: Int, receipt: Receipt)
        /// Acknowledged here, then dropped by the mempool without a block: `code` says why (``Mempool``).
        case refused(code: String)
        case unknown
    }

    public func status(of id: Bytes32) throws(StoreError) -> TransactionStatus {
        if let status = try chainStatus(of: id) { return status }
        // Outside the chain lock: the journal may be busy with an fsync.
        if let code = journal?.refusal(of: id) { return .refused(code: code) }
        return .unknown
    }

    /// Pending or included, as the mempool and the store know it; nil for neither.
    private func chainStatus(of id: Bytes32) throws(StoreError) -> TransactionStatus? {
        lock.lock()
        defer { lock.unlock() }
        if mempool.contains(id) { return .pending }
        guard let loc = try store.transactionLocation(id), let b = try store.block(at: loc.height),
            loc.position < b.receipts.count
        else { return nil }
        return .included(height: loc.height, position: loc.position, receipt: b.receipts[loc.position])
    }

    /// Every stake bucket in id order (ids are big-endian, so byte order is numeric order), for listings by
    /// owner or candidate.
    public func buckets() -> [(id: UInt64, state: BucketState)] {
        locked {
            world.objects(in: .bucket).compactMap { id, value in
                guard id.count == 8, let state = try? BucketState(decoding: value) else { return nil }
                return (id.reduce(0) { $0 << 8 | UInt64($1) }, state)
            }
        }
    }

    // MARK: transactions

    /// Decodes, verifies and admits a transaction; the id on success, the reason otherwise. Nothing changes
    /// on failure.
    public func submit(encoded bytes: [UInt8], fromDevice: Bool = false) throws(TransactionError) -> Bytes32 {
        try admit(checker.check(decoding: bytes, unlessKnown: isPending), fromDevice: fromDevice)
    }

    /// Whether the mempool holds transaction `id` (a duplicate is then refused without a signature check). While
    /// a block executes or commits under the lock the answer is "no" instead of a wait: the copy's signature is
    /// found among those checked before (``SignatureCache``), then the mempool refuses it all the same.
    private func isPending(_ id: Bytes32) -> Bool {
        guard lock.try() else { return false }
        defer { lock.unlock() }
        return mempool.contains(id)
    }

    public func submit(_ tx: SignedTransaction) throws(TransactionError) -> Bytes32 {
        try admit(checker.check(tx))
    }

    /// Admits a transaction whose signature was already checked (``verify(batch:)``): the check can run while
    /// this node does other work, and only the admission needs the lock.
    public func submit(_ verified: VerifiedTransaction, fromDevice: Bool = false) throws(TransactionError) -> Bytes32 {
        try admit(verified, fromDevice: fromDevice)
    }

    /// Many at once (a gossip frame, an MQTT turn): the signatures are checked on every core, then each is admitted
    /// or refused on its own, in order.
    public func submit(batch: [[UInt8]], fromDevice: Bool = false) -> [Result<Bytes32, TransactionError>] {
        verify(batch: batch).map { checked in
            checked.flatMap { verified in
                Result { () throws(TransactionError) in try admit(verified, fromDevice: fromDevice) }
            }
        }
    }

    /// `batch` decoded and signature-checked on every core, in order, without admitting anything; a copy of a
    /// pending transaction is `alreadyKnown` without a check.
    public func verify(batch: [[UInt8]]) -> [Result<VerifiedTransaction, TransactionError>] {
        ParallelVerifier.verify(batch, unlessKnown: { [self] id in isPending(id) }, checker: checker)
    }

    /// Whether transactions that arrive through a device door (``submit(encoded:fromDevice:)``,
    /// ``submitAcknowledged(encoded:fromDevice:)``) need a sender with a valid device certificate: one whose key
    /// has a CA certificate on chain (what `amars cert enroll` publishes) that is valid, with all its ancestors,
    /// at the head's time. A revocation bites from the block that includes it. Set before serving.
    public var requireDeviceCertificates: Bool {
        get { locked { certificatePolicy } }
        set { locked { certificatePolicy = newValue } }
    }

    private var certificatePolicy = false
    private var certificateBlocks: UInt64 = 0

    /// The accounts whose device certificate (the newest CA certificate of their key) is revoked at the head,
    /// by its own revocation or an ancestor's, sorted: those a broker must no longer serve (SPEC "Device
    /// identity"). Scans every device certificate, so call it when ``Status/certificateBlocks`` moved, not per
    /// block.
    ///
    /// Judged without the head's time, unlike ``deviceCertificateStanding(of:)``: a certificate that is not valid
    /// yet, or no longer, under a revoked issuer is revoked all the same, and must not come back when its time
    /// comes. Nor are signatures checked again: each record was checked when it was published, and a revocation
    /// only marks a record, so the scan under the chain lock reads records and nothing more.
    public func revokedDeviceAccounts() -> [Address] {
        locked {
            let overlay = StateOverlay(base: world)
            return world.objects(in: .certificateKey).compactMap { entry -> Address? in
                guard let raw = Bytes20(entry.id), let id = Bytes32(entry.value) else { return nil }
                let chain = CertificateRules.chain(from: id, in: overlay)
                return chain.contains { $0.record.revokedAt != 0 } ? Address(raw: raw) : nil
            }
        }
    }

    /// The standing of the device certificate of `account` (the newest CA certificate of its key) at the head's
    /// time; nil when it has none.
    public func deviceCertificateStanding(of account: Address) -> CertificateStanding? {
        locked { deviceStandingUnlocked(account) }
    }

    private func deviceStandingUnlocked(_ account: Address) -> CertificateStanding? {
        let overlay = StateOverlay(base: world)
        guard let raw = overlay.object(CertificateRules.keyIndex(account)), let id = Bytes32(raw) else { return nil }
        let chain = CertificateRules.chain(from: id, in: overlay)
        return CertificateStanding.of(chain, time: headBlock.block.header.timestamp / 1000)
    }

    /// Called with each transaction right after the mempool admitted it, whichever door it came through (HTTP,
    /// CoAP, MQTT, a peer), so a committee node can gossip it at once instead of waiting for its own turn to
    /// propose. Never called for a refused transaction: a peer's flood of stale or duplicate transactions ends
    /// here. The hook runs on the submitting thread, after the lock is released (it may call back into the
    /// node), so it must be quick and must not block. Set it before serving; guarded by the lock all the same.
    public var onAdmit: (@Sendable (SignedTransaction) -> Void)? {
        get { locked { admitHook } }
        set { locked { admitHook = newValue } }
    }

    private var admitHook: (@Sendable (SignedTransaction) -> Void)?

    /// Why an acknowledged submit was not acknowledged.
    public enum SubmitError: Error, Sendable {
        /// The mempool refused it (nothing was kept).
        case refused(TransactionError)
        /// Admitted, but the journal could not keep it: the client must not count on it (it may still be included).
        case notStored(StoreError)
    }

    /// What a door that answers a client (HTTP 202, CoAP 2.01) calls: admits the transaction, then keeps it in
    /// the ``journal`` before returning, so the acknowledgement survives a crash of this node.
    public func submitAcknowledged(encoded bytes: [UInt8], fromDevice: Bool = false) throws(SubmitError) -> Bytes32 {
        try submitAcknowledged(batch: [bytes], fromDevice: fromDevice)[0].get()
    }

    /// ``submitAcknowledged(encoded:)`` for many at once (`POST /v1/txs`): each is admitted or refused on its own,
    /// then the admitted ones reach the journal in one group commit. If the journal fails, every admitted one is
    /// reported `notStored` (none may be counted on).
    public func submitAcknowledged(batch: [[UInt8]], fromDevice: Bool = false) -> [Result<Bytes32, SubmitError>] {
        var results: [Result<Bytes32, SubmitError>] = []
        var admitted: [SignedTransaction] = []
        results.reserveCapacity(batch.count)
        for checked in verify(batch: batch) {
            do {
                let verified = try checked.get()
                _ = try admit(verified, fromDevice: fromDevice)
                admitted.append(verified.transaction)
                results.append(.success(verified.id))
            } catch {
                results.append(.failure(.refused(error)))
            }
        }
        do { try journal?.record(admitted) } catch {
            return results.map { r in r.flatMap { _ in .failure(.notStored(error)) } }
        }
        return results
    }

    /// Admits again what the journal holds (after a restart); each entry ends re-admitted, or out of the journal
    /// as included or refused with its code. Call once, before serving and after the gossip hook is set, so the
    /// re-admitted transactions reach the other members too.
    public func replayJournal() -> (readmitted: Int, included: Int, refused: Int) {
        guard let journal else { return (0, 0, 0) }
        var counts = (readmitted: 0, included: 0, refused: 0)
        // Oldest nonce first, or a sender's later entries would meet a gap.
        let entries = ((try? journal.pending()) ?? []).sorted { $0.body.nonce < $1.body.nonce }
        for tx in entries {
            do {
                _ = try admit(checker.check(tx))
                counts.readmitted += 1
            } catch .alreadyKnown {
                counts.readmitted += 1
            } catch {
                if case .included = try? status(of: tx.id) {
                    journal.included([tx.id])
                    counts.included += 1
                } else {
                    journal.refused([(tx.id, "\(error.code)")])
                    counts.refused += 1
                }
            }
        }
        journal.settle()
        return counts
    }

    /// The signature was checked by the caller, outside the lock: it is the expensive part.
    private func admit(_ verified: VerifiedTransaction, fromDevice: Bool = false) throws(TransactionError) -> Bytes32 {
        lock.lock()
        do {
            try precheck(verified, fromDevice: fromDevice)
            try mempool.insert(
                verified, account: world.account(verified.senderAddress), executor: executor,
                baseFee: nextBaseFeeUnlocked)
        } catch {
            lock.unlock()
            throw error
        }
        let hook = admitHook
        let dropped = mempool.takeDropped()
        // Only the mempool changed: the head, its fee and the accounts wait for the next commit.
        let pending = mempool.count
        board.withLock { $0.pending = pending }
        lock.unlock()
        journal?.refused(dropped)
        hook?(verified.transaction)
        return verified.id
    }

    /// Certificates, HTLCs and channels are judged against the head's state at admission, so a sender hears the rule it
    /// broke at once instead of finding its transaction dropped by the block builder. (They are judged again in the
    /// block, where the state may have changed.) Other kinds' state checks happen in the mempool and the block.
    /// A device door's policy is checked here too (``requireDeviceCertificates``).
    private func precheck(_ verified: VerifiedTransaction, fromDevice: Bool) throws(TransactionError) {
        if fromDevice && certificatePolicy && deviceStandingUnlocked(verified.senderAddress) != .valid {
            throw .certificate(.noValidCertificate)
        }
        let head = headBlock.block.header
        let overlay = StateOverlay(base: world)
        do {
            switch verified.transaction.body.payload {
            case .certificatePublish(let publish):
                _ = try CertificateRules.planPublish(
                    publish, sender: verified.senderAddress, height: head.height + 1, time: head.timestamp / 1000,
                    state: overlay)
            case .certificateRevoke(let revoke):
                _ = try CertificateRules.planRevoke(
                    revoke, sender: verified.senderAddress, height: head.height + 1, state: overlay)
            default: break
            }
        } catch { throw .certificate(error) }
        do {
            switch verified.transaction.body.payload {
            case .htlcLock(let lock):
                _ = try HTLCRules.planLock(
                    lock, id: verified.id, sender: verified.senderAddress, height: head.height + 1)
            case .htlcClaim(let claim):
                _ = try HTLCRules.planClaim(
                    claim, sender: verified.senderAddress, height: head.height + 1, state: overlay)
            case .htlcRefund(let refund):
                _ = try HTLCRules.planRefund(
                    refund, sender: verified.senderAddress, height: head.height + 1, state: overlay)
            default: break
            }
        } catch { throw .htlc(error) }
        do {
            switch verified.transaction.body.payload {
            case .channelOpen(let open):
                _ = try ChannelRules.planOpen(
                    open, id: verified.id, sender: verified.senderAddress,
                    senderKey: verified.transaction.body.sender, height: head.height + 1)
            case .channelClose(let close):
                _ = try ChannelRules.planClose(
                    close, sender: verified.senderAddress, height: head.height + 1, state: overlay)
            case .channelRefund(let refund):
                _ = try ChannelRules.planRefund(
                    refund, sender: verified.senderAddress, height: head.height + 1, state: overlay)
            default: break
            }
        } catch { throw .channel(error) }
    }

    // MARK: blocks

    private func epoch(ofHeight height: UInt64) -> UInt64 { (height - 1) / genesis.epochLength }

    /// A block executed against the committed state but not yet committed: what a proposer offers and a
    /// validator checks, kept so that the commit does not execute it again.
    public struct ExecutedBlock: Sendable {
        public let block: Block
        let receipts: [Receipt]
        let changes: StateChanges
        /// The block's VRF output, for the next epoch's seed.
        let vrfOutput: Bytes32
        /// Senders whose transaction failed while building: their later nonces cannot succeed either.
        let failedSenders: [(Address, UInt64)]
    }

    /// The one block executed but not committed, by hash (the proposal of the current height).
    private var pending: ExecutedBlock?

    /// VRF outputs of the committed blocks of the head's epoch, in order: with the epoch seed they make the
    /// next epoch's seed. Rebuilt from the store at open.
    private var epochOutputs: [Bytes32] = []
    /// The payees of this epoch's committed blocks, for the recipient filter and the stealth announcements its
    /// last block commits to.
    private var epochPayees = EpochPayees()
    /// Recently served epochs' filters and announcements: devices of a fleet ask for the same few epochs.
    private var payeesCache: [(epoch: UInt64, filter: [UInt8], announcements: [StealthAnnouncement])] = []

    /// Builds, signs and commits the next block from the mempool (dev mode: this node is the whole committee).
    /// If storage fails the error is thrown and memory, disk and mempool are exactly as before.
    @discardableResult
    public func produceBlock(timestamp: UInt64) throws(NodeError) -> FinalizedBlock {
        guard let key = validatorKey else { throw .notAValidator }
        lock.lock()
        defer { lock.unlock() }
        let epoch = epoch(ofHeight: headBlock.block.header.height + 1)
        guard let committee = committeeUnlocked(epoch), let index = committee.index(of: key.xOnlyPublicKey.bytes) else {
            throw .notInCommittee(epoch: epoch)
        }
        guard committee.isQuorum(committee.members[index].weight) else { throw .cannotFinalizeAlone(epoch: epoch) }
        // The tree keeps the changes (no undo and redo) because the block is committed right away.
        let (executed, undo) = build(timestamp: timestamp, round: 0, key: key, keepApplied: true)
        let certificate = sign(block: executed.block, key: key, memberIndex: index)
        let finalized = try commit(executed, certificate: certificate, undoIfStoreFails: undo)
        // The whole pool here is this node: it attests its checkpoints as a pool member would. A failed write only
        // costs devices a longer jump; the block stands.
        _ = try? attestUnlocked(height: finalized.block.header.height, key: key)
        return finalized
    }

    /// Builds the next block from the mempool as this node's proposal for `round`, without committing it.
    public func proposeBlock(timestamp: UInt64, round: UInt32) throws(NodeError) -> Block {
        guard let key = validatorKey else { throw .notAValidator }
        lock.lock()
        defer { lock.unlock() }
        let epoch = epoch(ofHeight: headBlock.block.header.height + 1)
        guard committeeUnlocked(epoch)?.index(of: key.xOnlyPublicKey.bytes) != nil else {
            throw .notInCommittee(epoch: epoch)
        }
        let (executed, _) = build(timestamp: timestamp, round: round, key: key, keepApplied: false)
        pending = executed
        return executed.block
    }

    /// Executes a proposed block against the committed state and checks every root, fee and link in its
    /// header. Nothing is committed; the execution is kept for ``commitBlock(_:)``.
    public func validateBlock(_ block: Block) throws(NodeError) {
        let checked = preverified(block)
        lock.lock()
        defer { lock.unlock() }
        _ = try validated(block, checked: checked)
    }

    /// The transactions of `block` verified, by position: those the mempool holds taken from it, the others
    /// checked on every core before the lock is taken (nil: refused, which ``validated(_:checked:)`` finds again).
    /// A proposal full of transactions that had not reached this node yet would otherwise be checked one by one
    /// under the lock, with the node's API and consensus waiting; and what the mempool holds is looked up here
    /// once, not again under the lock. A verified transaction stays verified if the mempool drops it meanwhile:
    /// execution judges it against the state again.
    private func preverified(_ block: Block) -> [VerifiedTransaction?] {
        var checked: [VerifiedTransaction?] = locked {
            if let pending, pending.block.hash == block.hash { return [] }
            return block.transactions.map { mempool.verified($0) }
        }
        let unknown = checked.indices.filter { checked[$0] == nil }
        guard !unknown.isEmpty else { return checked }
        for (i, result) in zip(
            unknown, ParallelVerifier.verify(unknown.map { block.transactions[$0] }, checker: checker))
        {
            checked[i] = try? result.get()
        }
        return checked
    }

    /// Commits a block that carries a certificate from its epoch's committee, re-executing it unless this node
    /// already did (``proposeBlock(timestamp:round:)`` or ``validateBlock(_:)``). Nothing in the block is
    /// trusted: a wrong root, fee, link or signature refuses it and changes nothing.
    public func commitBlock(_ finalized: FinalizedBlock) throws(NodeError) {
        // Checked before its transactions are: a peer gets no signature checks out of this node for a block that
        // was never decided.
        let checked = (locked { certificateRefusal(finalized) }) == nil ? preverified(finalized.block) : []
        lock.lock()
        defer { lock.unlock() }
        if let refusal = certificateRefusal(finalized) { throw refusal }
        let executed = try validated(finalized.block, checked: checked)
        try commit(executed, certificate: finalized.certificate, undoIfStoreFails: nil)
    }

    /// Why `finalized`'s certificate does not make it decided by its epoch's committee; nil when it does.
    private func certificateRefusal(_ finalized: FinalizedBlock) -> NodeError? {
        let h = finalized.block.header
        func refuse(_ why: String) -> NodeError { .invalidBlock("height \(h.height): \(why)") }
        // A block proposed in round r may be decided in a later round (re-proposed with a proof of lock); the
        // certificate signs the round it was decided in.
        guard finalized.certificate.height == h.height, finalized.certificate.round >= h.round else {
            return refuse("certificate is for another height or an earlier round")
        }
        guard let committee = committeeUnlocked(h.epoch) else { return refuse("no committee for epoch \(h.epoch)") }
        do {
            try finalized.certificate.verify(
                committee: committee, chainID: h.chainID, genesis: genesisBlockHash, blockHash: h.hash)
        } catch {
            return refuse("certificate: \(error)")
        }
        return nil
    }

    /// Checks a block produced elsewhere against its certificate and by re-executing it, then commits it.
    public func importBlock(_ finalized: FinalizedBlock) throws(NodeError) { try commitBlock(finalized) }

    /// Executes the mempool's best transactions on top of the head. With `keepApplied` the world keeps the
    /// changes (and the undo is returned); otherwise the root is computed and the world restored.
    private func build(timestamp: UInt64, round: UInt32, key: PrivateKey, keepApplied: Bool)
        -> (ExecutedBlock, StateChanges)
    {
        let parent = headBlock.block.header
        let height = parent.height + 1
        let baseFee = nextBaseFeeUnlocked
        let proposerAddress = Address(publicKey: key.xOnlyPublicKey)
        let context = BlockContext(
            baseFee: baseFee, proposer: proposerAddress, epoch: epoch(ofHeight: height), height: height,
            timestamp: max(timestamp, parent.timestamp))
        var overlay = StateOverlay(base: world)
        var included: [SignedTransaction] = []
        var receipts: [Receipt] = []
        var units: UInt64 = 0
        var failedSenders: [(Address, UInt64)] = []
        for tx in mempool.ordered(baseFee: baseFee, fees: fees, limit: Caps.transactionsPerBlock) {
            let txUnits = fees.units(encodedSize: tx.encodedSize)
            guard units + txUnits <= fees.maxUnitsPerBlock else { break }
            do {
                receipts.append(try executor.apply(tx, to: &overlay, context: context))
                included.append(tx.transaction)
                units += txUnits
            } catch {
                failedSenders.append((tx.senderAddress, tx.transaction.body.nonce))
            }
        }
        let vrfProof = EpochSeed.prove(
            secretKey: key, seed: seedUnlocked(context.epoch), epoch: context.epoch, height: height)
        let vrfOutput = ECVRF.proofToHash(vrfProof)!  // a proof just made is well formed
        let next = endOfBlock(
            height: height, proposer: proposerAddress, vrfOutput: vrfOutput,
            payees: EpochPayees(included, receipts: receipts), state: &overlay)
        let undo = world.apply(overlay.changes)
        let header = BlockHeader(
            chainID: genesis.chainID, height: height, previousHash: parent.hash,
            timestamp: context.timestamp, epoch: context.epoch, round: round,
            proposer: key.xOnlyPublicKey.bytes,
            baseFee: baseFee, unitsUsed: units,
            transactionsRoot: Block.transactionsRoot(ids: receipts.map(\.transactionID)),
            stateRoot: world.root, receiptsRoot: Receipt.root(receipts),
            nextCommitteeHash: next?.committee, nextPoolHash: next?.pool, vrfProof: vrfProof)
        if !keepApplied { world.apply(undo) }
        let executed = ExecutedBlock(
            block: Block(header: header, transactions: included), receipts: receipts, changes: overlay.changes,
            vrfOutput: vrfOutput, failedSenders: failedSenders)
        return (executed, undo)
    }

    /// Re-executes `block` on the head (or returns the kept execution of the same block) and checks its header.
    /// `checked` holds transactions already verified, by position (``preverified(_:)``).
    private func validated(_ block: Block, checked: [VerifiedTransaction?]) throws(NodeError) -> ExecutedBlock {
        let h = block.header
        if let pending, pending.block.hash == h.hash, pending.block.header.previousHash == headBlock.block.hash {
            return pending
        }
        let parent = headBlock.block.header
        func refuse(_ why: String) -> NodeError { .invalidBlock("height \(h.height): \(why)") }
        guard h.chainID == genesis.chainID else { throw refuse("wrong chain id") }
        guard h.height == parent.height + 1 else { throw refuse("expected height \(parent.height + 1)") }
        guard h.previousHash == parent.hash else { throw refuse("does not extend the head") }
        guard h.epoch == epoch(ofHeight: h.height) else { throw refuse("wrong epoch") }
        guard h.baseFee == nextBaseFeeUnlocked else { throw refuse("wrong base fee") }
        guard h.timestamp >= parent.timestamp else { throw refuse("timestamp goes backwards") }
        guard committeeUnlocked(h.epoch)?.index(of: h.proposer) != nil,
            let proposerKey = try? XOnlyPublicKey(bytes: h.proposer)
        else { throw refuse("proposer is not in the committee") }
        guard
            let vrfOutput = EpochSeed.verifiedOutput(
                operatorKey: h.proposer, seed: seedUnlocked(h.epoch), epoch: h.epoch, height: h.height,
                proof: h.vrfProof)
        else { throw refuse("VRF proof does not verify") }
        let context = BlockContext(
            baseFee: h.baseFee, proposer: Address(publicKey: proposerKey), epoch: h.epoch, height: h.height,
            timestamp: h.timestamp)
        var overlay = StateOverlay(base: world)
        var receipts: [Receipt] = []
        var units: UInt64 = 0
        for (i, tx) in block.transactions.enumerated() {
            do {
                let verified =
                    try (i < checked.count ? checked[i] : nil) ?? mempool.verified(tx)
                    ?? checker.check(tx)
                receipts.append(try executor.apply(verified, to: &overlay, context: context))
                units += fees.units(encodedSize: verified.encodedSize)
            } catch {
                throw refuse("transaction \(Hex.encode(tx.id.bytes)): \(error)")
            }
        }
        guard units == h.unitsUsed, units <= fees.maxUnitsPerBlock else { throw refuse("wrong units used") }
        guard Block.transactionsRoot(ids: receipts.map(\.transactionID)) == h.transactionsRoot else {
            throw refuse("wrong transactions root")
        }
        guard Receipt.root(receipts) == h.receiptsRoot else { throw refuse("wrong receipts root") }
        let next = endOfBlock(
            height: h.height, proposer: context.proposer, vrfOutput: vrfOutput,
            payees: EpochPayees(block.transactions, receipts: receipts), state: &overlay)
        guard h.nextCommitteeHash == next?.committee else { throw refuse("wrong next committee") }
        guard h.nextPoolHash == next?.pool else { throw refuse("wrong next pool") }
        let undo = world.apply(overlay.changes)
        let root = world.root
        world.apply(undo)
        guard root == h.stateRoot else { throw refuse("wrong state root") }
        let executed = ExecutedBlock(
            block: block, receipts: receipts, changes: overlay.changes, vrfOutput: vrfOutput, failedSenders: [])
        pending = executed
        return executed
    }

    /// Stores the block with its certificate and makes it the head. `undoIfStoreFails` is given when the world
    /// already holds the block's changes; otherwise they are applied here, after the store accepted them.
    private func commit(_ executed: ExecutedBlock, certificate: CommitCertificate, undoIfStoreFails: StateChanges?)
        throws(NodeError) -> FinalizedBlock
    {
        let finalized = FinalizedBlock(block: executed.block, certificate: certificate)
        do { try store.commit(finalized, receipts: executed.receipts, changes: executed.changes) } catch {
            if let undo = undoIfStoreFails { world.apply(undo) }
            throw .store(error)
        }
        if undoIfStoreFails == nil { world.apply(executed.changes) }
        headBlock = finalized
        pending = nil
        if Self.changesDeviceStanding(executed.changes, height: finalized.block.header.height) {
            certificateBlocks += 1
        }
        if finalized.block.header.height % genesis.epochLength == 0 {
            epochOutputs = []
            epochPayees = EpochPayees()
        } else {
            epochOutputs.append(executed.vrfOutput)
            epochPayees.add(executed.block.transactions, receipts: executed.receipts)
        }
        mempool.removeCommitted(accounts: executed.changes.accounts)
        for (address, nonce) in executed.failedSenders { mempool.removeSender(address, from: nonce) }
        if let journal {
            // Both are queued, not written here: the chain lock is held. Included first: it releases the ids
            // that `removeCommitted` also lists as dropped, so `refused` finds only the others.
            journal.included(executed.receipts.map(\.transactionID))
            journal.refused(mempool.takeDropped())
        }
        publishUnlocked()
        return finalized
    }

    /// Whether a block's changes can move an account's device-certificate standing: a device (CA) certificate
    /// published, which changes the key's newest, or a revocation at this height. A short-lived publish, the
    /// common case, cannot.
    private static func changesDeviceStanding(_ changes: StateChanges, height: UInt64) -> Bool {
        changes.objects.contains { key, value in
            switch key.namespace {
            case .certificateKey: true
            case .certificate: (try? CertificateRecord(decoding: value))?.revokedAt == height
            default: false
            }
        }
    }

    /// Protocol steps that run after a block's transactions, in a fixed order (like iotex-core's protocols):
    /// at the middle of each epoch the delegate pool of the next epoch is elected; at its last block the next
    /// epoch's seed is made from this epoch's VRF outputs and the next committee is drawn from the pool by it, and
    /// the hashes of the epoch's recipient filter and stealth announcements (over `payees`, this block's, and the
    /// epoch's earlier ones) are recorded. All are in the state, so anyone can recompute them from chain data. Returns the hashes of the
    /// next committee and of the next pool's roster on an epoch's last block.
    private func endOfBlock(
        height: UInt64, proposer: Address, vrfOutput: Bytes32, payees: EpochPayees, state: inout StateOverlay
    ) -> (committee: Bytes32, pool: Bytes32)? {
        let length = genesis.epochLength
        let epoch = epoch(ofHeight: height)
        if let committee = committeeUnlocked(epoch) {
            RewardRules.distributeBlockFees(
                state: &state, proposer: proposer, committee: committee, rules: executor.staking)
        }
        if (height - 1) % length == length / 2 {
            let pool = executor.staking.electPool(for: epoch + 1, state: state)
            state.setObject(StakingRules.electionKey(epoch: epoch + 1), pool.encoded)
        }
        guard height % length == 0 else { return nil }
        for (key, value) in (epochPayees + payees).commitments(genesis: genesisBlockHash, epoch: epoch) {
            state.setObject(key, value)
        }
        RewardRules.payVoters(state: &state, rules: executor.staking)
        let seed = EpochSeed.next(seed: seedUnlocked(epoch), epoch: epoch, outputs: epochOutputs + [vrfOutput])
        let committee: Committee
        if let pool = StakingRules.decode(DelegatePool.self, state.object(StakingRules.electionKey(epoch: epoch + 1))),
            let drawn = try? CommitteeSelection.select(
                pool: pool, seed: seed, epoch: epoch + 1, size: genesis.staking.committeeSize)
        {
            committee = drawn
        } else {
            // No eligible candidate yet (a new chain without genesis candidates): the genesis validators go on.
            committee = genesis.committee(epoch: epoch + 1)
        }
        var w = ByteWriter(capacity: 32)
        w.write(seed)
        state.setObject(StakingRules.seedKey(epoch: epoch + 1), w.bytes)
        state.setObject(StakingRules.committeeKey(epoch: epoch + 1), committee.encoded)
        let roster = PoolRoster.roster(epoch: epoch + 1, object: { state.object($0) }, committee: committee)!
        return (committee.hash, roster.hash)
    }

    /// The seed of `epoch`: derived from the genesis hash for epoch 0, recorded in the state after that.
    private func seedUnlocked(_ epoch: UInt64) -> Bytes32 {
        guard epoch > 0 else { return EpochSeed.genesis(genesisHash: genesisHash) }
        guard let bytes = world.object(StakingRules.seedKey(epoch: epoch)), let seed = Bytes32(bytes) else {
            preconditionFailure("seed of epoch \(epoch) missing from the state")
        }
        return seed
    }

    private func committeeUnlocked(_ epoch: UInt64) -> Committee? {
        guard epoch > 0 else { return genesis.committee(epoch: 0) }
        return StakingRules.decode(Committee.self, world.object(StakingRules.committeeKey(epoch: epoch)))
    }

    /// The committee of `epoch`, once the last block of the epoch before has drawn it.
    public func committee(epoch: UInt64) -> Committee? { locked { committeeUnlocked(epoch) } }

    private func poolRosterUnlocked(_ epoch: UInt64) -> Committee? {
        PoolRoster.roster(epoch: epoch, object: { world.object($0) }, committee: committeeUnlocked(epoch))
    }

    /// The roster of `epoch`'s delegate pool (the checkpoint closing the epoch before names its hash): who attests
    /// that epoch's checkpoint, and what a device trusting that epoch counts attestations against.
    public func poolRoster(epoch: UInt64) -> Committee? { locked { poolRosterUnlocked(epoch) } }

    /// The checkpoint chain from epoch `from`: for each finished epoch E, the header of its last block (which
    /// names the committee of E+1), that committee, and the certificate by which the committee of E finalized
    /// it. Everything a light client needs to move its trust forward, and nothing more.
    public func checkpoints(from: UInt64, limit: Int) throws(StoreError) -> [Checkpoint] {
        lock.lock()
        defer { lock.unlock() }
        let length = genesis.epochLength
        let headHeight = headBlock.block.header.height
        var out: [Checkpoint] = []
        var epoch = from
        while out.count < limit {
            let (next, o1) = epoch.addingReportingOverflow(1)
            let (height, o2) = next.multipliedReportingOverflow(by: length)
            guard !o1, !o2, height <= headHeight, let stored = try store.block(at: height) else { break }
            let header = stored.finalized.block.header
            out.append(
                Checkpoint(
                    header: header, nextCommittee: committeeUnlocked(epoch + 1)!,
                    certificate: stored.finalized.certificate))
            epoch += 1
        }
        return out
    }

    // MARK: pool attestations

    /// What became of a checkpoint attestation offered to the chain.
    public enum AttestationOutcome: Equatable, Sendable {
        /// Checked and kept: relay it.
        case stored
        /// Already kept for that member.
        case known
        /// For a checkpoint above the head: check it once the block is here.
        case ahead
        /// Not an attestation of a checkpoint on this chain (round, step, chain, height), or of another block at
        /// that height: nothing to keep, nobody to blame (a slower peer can be on an older view).
        case notApplicable
        /// The voter is not in the pool of the checkpoint's epoch.
        case notInPool
        /// The signature does not verify: the sender sent junk.
        case badSignature
    }

    /// Checks `vote`, a pool member's attestation (``VoteStep/checkpoint``, round 0) of a final checkpoint, and
    /// keeps it for `v1/skip`. Checked against the block stored at its height and the roster of its epoch.
    public func addAttestation(_ vote: Vote) throws(StoreError) -> AttestationOutcome {
        let length = genesis.epochLength
        guard vote.step == .checkpoint, vote.round == 0, vote.chainID == genesis.chainID, vote.height >= length,
            vote.height % length == 0
        else { return .notApplicable }
        lock.lock()
        defer { lock.unlock() }
        guard vote.height <= headBlock.block.header.height else { return .ahead }
        guard let stored = try store.block(at: vote.height), stored.finalized.block.hash == vote.blockHash else {
            return .notApplicable
        }
        guard poolRosterUnlocked(epoch(ofHeight: vote.height))?.index(of: vote.voter) != nil else {
            return .notInPool
        }
        if try store.attestations(height: vote.height)[vote.voter] != nil { return .known }
        guard vote.verifySignature(genesis: genesisBlockHash) else { return .badSignature }
        try store.storeAttestation(height: vote.height, voter: vote.voter, signature: vote.signature)
        return .stored
    }

    /// This node's attestation of the checkpoint at `height` with `key`, kept and returned for gossip; nil when
    /// `height` is no stored checkpoint or `key` is not in its epoch's pool. An honest member attests only what
    /// its own chain finalized, which is one block per height, so attesting twice can never conflict.
    public func attest(height: UInt64, key: PrivateKey) throws(StoreError) -> Vote? {
        lock.lock()
        defer { lock.unlock() }
        return try attestUnlocked(height: height, key: key)
    }

    private func attestUnlocked(height: UInt64, key: PrivateKey) throws(StoreError) -> Vote? {
        let length = genesis.epochLength
        guard height >= length, height % length == 0 else { return nil }
        let voter = key.xOnlyPublicKey.bytes
        guard height <= headBlock.block.header.height, let stored = try store.block(at: height),
            poolRosterUnlocked(epoch(ofHeight: height))?.index(of: voter) != nil
        else { return nil }
        let hash = stored.finalized.block.hash
        let vote = Vote(
            signing: key, chainID: genesis.chainID, genesis: genesisBlockHash, height: height, round: 0,
            step: .checkpoint, blockHash: hash, auxRandom: hash)
        try store.storeAttestation(height: height, voter: voter, signature: vote.signature)
        return vote
    }

    /// The attestations kept for the checkpoint at `height`, by voter key.
    public func attestations(height: UInt64) throws(StoreError) -> [Bytes32: Bytes64] {
        lock.lock()
        defer { lock.unlock() }
        return try store.attestations(height: height)
    }

    /// Proof that transaction `id` is in a finalized block: the block's header (with its certificate) and the
    /// Merkle path to the header's transactions root.
    public func inclusionProof(of id: Bytes32) throws(StoreError) -> (
        block: FinalizedBlock, position: Int, proof: MerkleProof, receipt: Receipt, receiptProof: MerkleProof
    )? {
        lock.lock()
        defer { lock.unlock() }
        guard let location = try store.transactionLocation(id), let stored = try store.block(at: location.height),
            location.position < stored.receipts.count
        else { return nil }
        let leaves = stored.receipts.map { MerkleTree.leafHash($0.transactionID.bytes) }
        let receiptLeaves = stored.receipts.map { MerkleTree.leafHash($0.encoded) }
        return (
            stored.finalized, location.position, MerkleTree.proof(leaves: leaves, index: location.position),
            stored.receipts[location.position], MerkleTree.proof(leaves: receiptLeaves, index: location.position)
        )
    }

    /// Final transfers paying `address`, oldest first, from position `position` of block `from` on: at most
    /// `limit`, each with its block height and position (what a device then asks the inclusion proof of).
    public func incomingTransfers(to address: Address, from: UInt64, position: Int = 0, limit: Int)
        throws(StoreError) -> [(height: UInt64, position: Int, transaction: SignedTransaction)]
    {
        try listed { () throws(StoreError) in
            try store.incomingTransfers(to: address, from: from, position: position, limit: limit)
        }
    }

    /// Final payment-code notifications sent to `address`, listed like ``incomingTransfers(to:from:position:limit:)``.
    public func notifications(to address: Address, from: UInt64, position: Int = 0, limit: Int)
        throws(StoreError) -> [(height: UInt64, position: Int, transaction: SignedTransaction)]
    {
        try listed { () throws(StoreError) in
            try store.notifications(to: address, from: from, position: position, limit: limit)
        }
    }

    private func listed(_ locations: () throws(StoreError) -> [(height: UInt64, position: Int)])
        throws(StoreError) -> [(height: UInt64, position: Int, transaction: SignedTransaction)]
    {
        lock.lock()
        defer { lock.unlock() }
        var found: [(height: UInt64, position: Int, transaction: SignedTransaction)] = []
        for location in try locations() {
            guard let stored = try store.block(at: location.height),
                location.position < stored.finalized.block.transactions.count
            else { throw StoreError(code: -1, message: "an address index names a missing transaction") }
            found.append((location.height, location.position, stored.finalized.block.transactions[location.position]))
        }
        return found
    }

    /// The delegate pool elected for `epoch`, if its election block has been committed.
    public func delegatePool(epoch: UInt64) -> DelegatePool? {
        locked { StakingRules.decode(DelegatePool.self, world.object(StakingRules.electionKey(epoch: epoch))) }
    }

    /// Every registered candidate, by owner address order.
    public func candidates() -> [(owner: Address, state: CandidateState)] {
        locked {
            world.objects(in: .candidate).compactMap { id, value in
                guard let raw = Bytes20(id), let c = try? CandidateState(decoding: value) else { return nil }
                return (Address(raw: raw), c)
            }
        }
    }

    /// A candidate's state, by owner address.
    public func candidate(_ owner: Address) -> CandidateState? {
        locked { StakingRules.decode(CandidateState.self, world.object(StakingRules.candidateKey(owner))) }
    }

    /// Voter rewards accrued for `owner`'s voters since the last epoch end, when they are paid to the buckets.
    public func voterRewardsAccrued(_ owner: Address) -> UInt64 {
        locked {
            guard let bytes = world.object(RewardRules.voterRewardKey(owner)) else { return 0 }
            var r = ByteReader(bytes)
            return (try? r.readVarint()) ?? 0
        }
    }

    /// A stake bucket's state with its proof against the head state root.
    public func bucket(_ id: UInt64) -> (state: BucketState?, proof: SparseMerkleProof, stateRoot: Bytes32) {
        locked {
            let (value, proof) = world.proof(for: StakingRules.bucketKey(id))
            return (StakingRules.decode(BucketState.self, value), proof, headBlock.block.header.stateRoot)
        }
    }

    /// Dev mode's certificate: this node's own commit vote. It finalizes the block only while this node holds
    /// more than two thirds of the committee's weight; otherwise the certificate is refused like any other.
    private func sign(block: Block, key: PrivateKey, memberIndex: Int) -> CommitCertificate {
        let h = block.header
        let message = Vote.signingHash(
            chainID: h.chainID, genesis: genesisBlockHash, height: h.height, round: h.round, step: .commit,
            blockHash: h.hash, voter: key.xOnlyPublicKey.bytes)
        let index = UInt16(memberIndex)
        return CommitCertificate(
            height: h.height, round: h.round, blockHash: h.hash,
            signatures: [.init(memberIndex: index, signature: key.signSchnorr(message, auxRandom: h.hash))])
    }
}

extension Genesis {
    /// The block header at height 0 of the chain this genesis starts: what a device is provisioned to trust (its
    /// hash and the committee it names), derived here once for the node and for every provisioning tool.
    public var header: BlockHeader { header(genesisHash: hash, stateRoot: WorldState(initialState).root) }

    func header(genesisHash: Bytes32, stateRoot: Bytes32) -> BlockHeader {
        // The first committee is the genesis validators, and so is the first pool.
        let first = committee(epoch: 0).hash
        return BlockHeader(
            chainID: chainID, height: 0, previousHash: genesisHash, timestamp: timestamp, epoch: 0, round: 0,
            proposer: .zero, baseFee: initialBaseFee, unitsUsed: 0, transactionsRoot: .zero, stateRoot: stateRoot,
            receiptsRoot: .zero, nextCommitteeHash: first, nextPoolHash: first)
    }
}
