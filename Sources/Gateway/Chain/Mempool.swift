import AmarsCodec
import Ledger

/// Transactions waiting for a block: per sender a gap-free run of nonces starting at the account's nonce.
///
/// Admission checks everything a block would check against the current state (nonce, funds for the whole
/// run at the fee cap, fee cap against the base fee), so a block builder rarely meets a transaction that
/// fails. A transaction at a nonce already queued replaces it only when it pays at least 10% more, and a full
/// pool makes room only by evicting the cheapest last-in-line transaction of another sender. Every refusal
/// names its reason.
public struct Mempool {
    public struct Limits: Sendable {
        public var maxTransactions: Int
        public var maxPerSender: Int

        public init(maxTransactions: Int = 50_000, maxPerSender: Int = 64) {
            self.maxTransactions = maxTransactions
            self.maxPerSender = maxPerSender
        }
    }

    struct SenderQueue {
        /// Account nonce of the first entry.
        var firstNonce: UInt64
        var entries: [VerifiedTransaction]
        var costs: [UInt64]
    }

    public let limits: Limits
    private var queues: [Address: SenderQueue] = [:]
    private var known: [Bytes32: Address] = [:]
    public private(set) var count = 0
    /// Admitted transactions let go of without a block including them, with the code a client reads back
    /// (`replaced`, `evicted`, `nonceUsed`, `insufficientBalance`, `notExecutable`); ``ChainNode`` drains them
    /// into its ``SubmitJournal``. ``removeCommitted(accounts:)`` also lists the included ones as `nonceUsed`:
    /// only the caller knows which were. Kept only when ``recordsDrops`` (a node with a journal).
    private var dropped: [(id: Bytes32, code: String)] = []
    public let recordsDrops: Bool

    public init(limits: Limits = Limits(), recordsDrops: Bool = false) {
        self.limits = limits
        self.recordsDrops = recordsDrops
    }

    private mutating func drop(_ id: Bytes32, _ code: String) {
        known[id] = nil
        if recordsDrops { dropped.append((id, code)) }
    }

    public func contains(_ id: Bytes32) -> Bool { known[id] != nil }

    /// What was dropped since the last call (see ``dropped``).
    public mutating func takeDropped() -> [(id: Bytes32, code: String)] {
        defer { dropped = [] }
        return dropped
    }

    /// The admitted, already verified form of `tx` when the mempool holds exactly it, signature included (the id
    /// covers the body only, so a block could carry the same body with another signature, which must be
    /// checked). A block of transactions this node admitted is then validated without checking any signature
    /// a second time.
    public func verified(_ tx: SignedTransaction) -> VerifiedTransaction? {
        guard let sender = known[tx.id], let queue = queues[sender], tx.body.nonce >= queue.firstNonce else {
            return nil
        }
        let index = tx.body.nonce - queue.firstNonce
        guard index < UInt64(queue.entries.count) else { return nil }
        let entry = queue.entries[Int(index)]
        return entry.transaction == tx ? entry : nil
    }

    /// Admits `tx` or says why not. `account` is the sender's committed state.
    public mutating func insert(
        _ tx: VerifiedTransaction, account: AccountState, executor: TransactionExecutor, baseFee: UInt64
    ) throws(TransactionError) {
        guard known[tx.id] == nil else { throw .alreadyKnown }
        try executor.checkStateless(tx, baseFee: baseFee)
        let cost = try executor.maxCost(tx)
        let body = tx.transaction.body
        let sender = tx.senderAddress
        let slot: Int
        let replacing: Bool
        do {
            // Read in place: a copy of the queue held across the mutation below would make it copy every entry.
            let firstNonce = queues[sender]?.firstNonce ?? account.nonce
            let queued = queues[sender]?.entries.count ?? 0
            let next = firstNonce + UInt64(queued)
            guard body.nonce >= firstNonce else { throw .nonceReplayed(expected: next, got: body.nonce) }
            guard body.nonce <= next else { throw .nonceGap(expected: next, got: body.nonce) }
            slot = Int(body.nonce - firstNonce)
            replacing = slot < queued
            if replacing {
                let old = queues[sender]!.entries[slot].transaction.body
                guard Self.isBump(new: body.maxFeePerUnit, old: old.maxFeePerUnit),
                    Self.isBump(new: body.tipPerUnit, old: old.tipPerUnit)
                else { throw .replacementUnderpriced }
            } else {
                guard queued < limits.maxPerSender else { throw .senderQueueFull }
            }
            // Funds for the whole run, with this transaction in its slot, at every fee cap.
            var needed: UInt64 = 0
            let costs = queues[sender]?.costs ?? []
            for i in 0..<max(queued, slot + 1) {
                let c = i == slot ? cost : costs[i]
                let (s, o) = needed.addingReportingOverflow(c)
                guard !o else { throw .amountOverflow }
                needed = s
            }
            guard needed <= account.balance else {
                throw .insufficientBalance(needed: needed, available: account.balance)
            }
        }
        if !replacing && count >= limits.maxTransactions {
            try evictCheapest(cheaperThan: body.maxFeePerUnit, sparing: sender)
        }
        // Taken out while it changes, so its arrays are not shared with the dictionary and change in place.
        var queue =
            queues.removeValue(forKey: sender) ?? SenderQueue(firstNonce: account.nonce, entries: [], costs: [])
        if replacing {
            drop(queue.entries[slot].id, "replaced")
            queue.entries[slot] = tx
            queue.costs[slot] = cost
        } else {
            queue.entries.append(tx)
            queue.costs.append(cost)
            count += 1
        }
        known[tx.id] = sender
        queues[sender] = queue
    }

    /// At least 10% more (and at least one unit more), so replacements cannot churn the pool for free.
    static func isBump(new: UInt64, old: UInt64) -> Bool {
        new >= old + max(old / 10, 1) || (old > UInt64.max - max(old / 10, 1) && new == UInt64.max)
    }

    private mutating func evictCheapest(cheaperThan price: UInt64, sparing: Address) throws(TransactionError) {
        var victim: (address: Address, price: UInt64, id: Bytes32)?
        for (address, q) in queues where address != sparing {
            guard let last = q.entries.last else { continue }
            let p = last.transaction.body.maxFeePerUnit
            if victim == nil || p < victim!.price || (p == victim!.price && last.id < victim!.id) {
                victim = (address, p, last.id)
            }
        }
        guard let victim, victim.price < price else { throw .mempoolFull }
        var q = queues[victim.address]!
        let removed = q.entries.removeLast()
        q.costs.removeLast()
        drop(removed.id, "evicted")
        count -= 1
        queues[victim.address] = q.entries.isEmpty ? nil : q
    }

    /// Candidates for the next block in priority order: highest effective price first across senders, nonce
    /// order within a sender, ties broken by id so every node picks the same order.
    public func ordered(baseFee: UInt64, fees: FeeSchedule, limit: Int) -> [VerifiedTransaction] {
        var heap = PriorityHeap()
        var cursor: [Address: Int] = [:]
        for (address, q) in queues {
            if let head = q.entries.first,
                let item = PriorityHeap.Item(head, address: address, baseFee: baseFee, fees: fees)
            {
                heap.push(item)
            }
            cursor[address] = 0
        }
        var out: [VerifiedTransaction] = []
        out.reserveCapacity(min(limit, count))
        while out.count < limit, let top = heap.pop() {
            let q = queues[top.address]!
            let i = cursor[top.address]!
            out.append(q.entries[i])
            cursor[top.address] = i + 1
            if i + 1 < q.entries.count,
                let item = PriorityHeap.Item(q.entries[i + 1], address: top.address, baseFee: baseFee, fees: fees)
            {
                heap.push(item)
            }
        }
        return out
    }

    /// Drops what a committed block made stale: included transactions and any nonce below the account's.
    public mutating func removeCommitted(accounts: [Address: AccountState]) {
        for (address, state) in accounts {
            // Taken out while it changes (see ``insert``), and the used prefix removed in one step.
            guard var q = queues.removeValue(forKey: address) else { continue }
            let used = Int(min(state.nonce - min(q.firstNonce, state.nonce), UInt64(q.entries.count)))
            for entry in q.entries.prefix(used) { drop(entry.id, "nonceUsed") }
            q.entries.removeFirst(used)
            q.costs.removeFirst(used)
            count -= used
            q.firstNonce = max(q.firstNonce, state.nonce)
            // A run whose funds no longer cover it is cut where it stops being payable.
            var needed: UInt64 = 0
            var keep = 0
            for c in q.costs {
                let (s, o) = needed.addingReportingOverflow(c)
                if o || s > state.balance { break }
                needed = s
                keep += 1
            }
            while q.entries.count > keep {
                drop(q.entries.removeLast().id, "insufficientBalance")
                q.costs.removeLast()
                count -= 1
            }
            queues[address] = q.entries.isEmpty ? nil : q
        }
    }

    /// Drops one sender's run from `nonce` on (a transaction that failed in a block makes its successors fail too).
    public mutating func removeSender(_ address: Address, from nonce: UInt64) {
        guard let first = queues[address]?.firstNonce, nonce >= first, var q = queues.removeValue(forKey: address)
        else { return }
        let keep = Int(min(nonce - q.firstNonce, UInt64(q.entries.count)))
        while q.entries.count > keep {
            drop(q.entries.removeLast().id, "notExecutable")
            q.costs.removeLast()
            count -= 1
        }
        queues[address] = q.entries.isEmpty ? nil : q
    }

    public func pendingCount(for address: Address) -> Int { queues[address]?.entries.count ?? 0 }
}

/// A binary max-heap of sender heads, ordered by effective price then id.
struct PriorityHeap {
    struct Item {
        var price: UInt64
        var id: Bytes32
        var address: Address

        init?(_ tx: VerifiedTransaction, address: Address, baseFee: UInt64, fees: FeeSchedule) {
            let b = tx.transaction.body
            guard
                let p = fees.effectivePrice(baseFee: baseFee, maxFeePerUnit: b.maxFeePerUnit, tipPerUnit: b.tipPerUnit)
            else { return nil }
            price = p
            id = tx.id
            self.address = address
        }

        func outranks(_ other: Item) -> Bool { price != other.price ? price > other.price : id < other.id }
    }

    private var items: [Item] = []

    mutating func push(_ item: Item) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].outranks(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Item? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var best = i
            if l < items.count && items[l].outranks(items[best]) { best = l }
            if r < items.count && items[r].outranks(items[best]) { best = r }
            if best == i { break }
            items.swapAt(i, best)
            i = best
        }
        return top
    }
}
