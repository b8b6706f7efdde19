import AmarsCodec
import AmarsCrypto
import Ledger

/// A state object other than an account: a candidate, a stake bucket, a name, an election result. Kept as
/// its canonical encoding so the tree, the store and the executor agree byte for byte.
public struct ObjectKey: Hashable, Sendable {
    public var namespace: StateNamespace
    public var id: [UInt8]

    public init(_ namespace: StateNamespace, _ id: [UInt8]) {
        self.namespace = namespace
        self.id = id
    }

    public var treeKey: Bytes32 { namespace.key(id) }
}

/// One block's worth of state changes. An empty object value means the object is deleted (no canonical
/// encoding of a state object is empty).
public struct StateChanges: Sendable {
    public var accounts: [Address: AccountState] = [:]
    public var objects: [ObjectKey: [UInt8]] = [:]

    public init(accounts: [Address: AccountState] = [:], objects: [ObjectKey: [UInt8]] = [:]) {
        self.accounts = accounts
        self.objects = objects
    }
}

/// All committed state in memory, with the authenticated tree over it.
///
/// Changes arrive only as whole-block change sets (``apply(_:)``), after the block was executed, and are undone
/// if the store refuses the block, so memory and disk never disagree about which block the state belongs to.
public final class WorldState {
    public private(set) var accounts: [Address: AccountState] = [:]
    public private(set) var objects: [ObjectKey: [UInt8]] = [:]
    private let tree = StateTree()
    /// Sum of all balances, kept incrementally.
    public private(set) var totalBalance: UInt64 = 0
    /// Sum of all stake buckets, kept incrementally: balances plus stakes always equal the genesis allocation.
    public private(set) var totalStaked: UInt64 = 0
    /// Sum of what open escrows (deposit and fee) open HTLCs (their amount) and open channels (their deposit) hold, kept the same way.
    public private(set) var totalEscrowed: UInt64 = 0

    public init(_ initial: StateChanges) {
        apply(initial)
    }

    public func account(_ address: Address) -> AccountState { accounts[address] ?? AccountState() }

    public func object(_ key: ObjectKey) -> [UInt8]? { objects[key] }

    /// Every object of one namespace, in a deterministic order (by id).
    public func objects(in namespace: StateNamespace) -> [(id: [UInt8], value: [UInt8])] {
        objects.filter { $0.key.namespace == namespace }.map { ($0.key.id, $0.value) }
            .sorted { $0.id.lexicographicallyPrecedes($1.id) }
    }

    public var root: Bytes32 { tree.root }

    public var count: Int { accounts.count }

    /// Applies a change set and returns the change set that undoes it.
    @discardableResult
    public func apply(_ changes: StateChanges) -> StateChanges {
        var undo = StateChanges()
        undo.accounts.reserveCapacity(changes.accounts.count)
        var treeChanges: [(key: Bytes32, valueHash: Bytes32?)] = []
        treeChanges.reserveCapacity(changes.accounts.count + changes.objects.count)
        for (address, state) in changes.accounts {
            let old = accounts[address]
            undo.accounts[address] = old ?? AccountState()
            totalBalance = totalBalance - (old?.balance ?? 0) + state.balance
            let key = StateNamespace.accountKey(address)
            if state.isEmpty {
                accounts[address] = nil
                treeChanges.append((key, nil))
            } else {
                accounts[address] = state
                treeChanges.append((key, state.valueHash))
            }
        }
        for (key, value) in changes.objects {
            let old = objects[key]
            undo.objects[key] = old ?? []
            if key.namespace == .bucket {
                totalStaked = totalStaked - Self.bucketAmount(old) + Self.bucketAmount(value)
            }
            if key.namespace == .escrow {
                totalEscrowed = totalEscrowed - Self.escrowHeld(old) + Self.escrowHeld(value)
            }
            if key.namespace == .htlc {
                totalEscrowed = totalEscrowed - Self.htlcHeld(old) + Self.htlcHeld(value)
            }
            if key.namespace == .channel {
                totalEscrowed = totalEscrowed - Self.channelHeld(old) + Self.channelHeld(value)
            }
            if value.isEmpty {
                objects[key] = nil
                treeChanges.append((key.treeKey, nil))
            } else {
                objects[key] = value
                treeChanges.append((key.treeKey, Domain.stateValue.hash(value)))
            }
        }
        tree.update(treeChanges)
        return undo
    }

    private static func escrowHeld(_ bytes: [UInt8]?) -> UInt64 {
        guard let bytes, !bytes.isEmpty, let e = try? EscrowState(decoding: bytes) else { return 0 }
        return e.held
    }

    private static func htlcHeld(_ bytes: [UInt8]?) -> UInt64 {
        guard let bytes, !bytes.isEmpty, let h = try? HTLCState(decoding: bytes) else { return 0 }
        return h.held
    }

    private static func channelHeld(_ bytes: [UInt8]?) -> UInt64 {
        guard let bytes, !bytes.isEmpty, let c = try? PaymentChannel(decoding: bytes) else { return 0 }
        return c.held
    }

    private static func bucketAmount(_ bytes: [UInt8]?) -> UInt64 {
        guard let bytes, !bytes.isEmpty, let b = try? BucketState(decoding: bytes) else { return 0 }
        return b.amount
    }

    /// The account and a proof of it (or of its absence) against ``root``.
    public func proof(for address: Address) -> (state: AccountState, proof: SparseMerkleProof) {
        (account(address), tree.proof(for: StateNamespace.accountKey(address)))
    }

    /// An object and a proof of it (or of its absence) against ``root``.
    public func proof(for key: ObjectKey) -> (value: [UInt8]?, proof: SparseMerkleProof) {
        (objects[key], tree.proof(for: key.treeKey))
    }
}

/// Uncommitted changes layered over the world state while a block is built or checked.
public struct StateOverlay {
    public let base: WorldState
    public private(set) var changes = StateChanges()

    public init(base: WorldState) { self.base = base }

    public subscript(address: Address) -> AccountState {
        get { changes.accounts[address] ?? base.account(address) }
        set { changes.accounts[address] = newValue }
    }

    /// The object's current bytes, nil when absent (or deleted in this block).
    public func object(_ key: ObjectKey) -> [UInt8]? {
        if let changed = changes.objects[key] { return changed.isEmpty ? nil : changed }
        return base.object(key)
    }

    public mutating func setObject(_ key: ObjectKey, _ value: [UInt8]?) {
        changes.objects[key] = value ?? []
    }
}
