import AmarsCodec
import AmarsCrypto
import Ledger

/// All committed account state in memory, with the authenticated tree over it.
///
/// Changes arrive only as whole-block change sets (``apply(_:)``), after the store has committed them, so
/// memory and disk never disagree about which block the state belongs to.
public final class WorldState {
    public private(set) var accounts: [Address: AccountState]
    private let tree = StateTree()
    /// Sum of all balances, kept incrementally: it must always equal the genesis allocation.
    public private(set) var totalBalance: UInt64 = 0

    public init(accounts: [Address: AccountState]) {
        self.accounts = [:]
        apply(accounts)
    }

    public func account(_ address: Address) -> AccountState { accounts[address] ?? AccountState() }

    public var root: Bytes32 { tree.root }

    public var count: Int { accounts.count }

    /// Applies a change set and returns the change set that undoes it.
    @discardableResult
    public func apply(_ changes: [Address: AccountState]) -> [Address: AccountState] {
        var undo: [Address: AccountState] = [:]
        undo.reserveCapacity(changes.count)
        var treeChanges: [(key: Bytes32, valueHash: Bytes32?)] = []
        treeChanges.reserveCapacity(changes.count)
        for (address, state) in changes {
            let old = accounts[address]
            undo[address] = old ?? AccountState()
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
        tree.update(treeChanges)
        return undo
    }

    /// The account and a proof of it (or of its absence) against ``root``.
    public func proof(for address: Address) -> (state: AccountState, proof: SparseMerkleProof) {
        (account(address), tree.proof(for: StateNamespace.accountKey(address)))
    }
}

/// Uncommitted account changes layered over the world state while a block is built or checked.
public struct StateOverlay {
    public let base: WorldState
    public private(set) var changes: [Address: AccountState] = [:]

    public init(base: WorldState) { self.base = base }

    public subscript(address: Address) -> AccountState {
        get { changes[address] ?? base.account(address) }
        set { changes[address] = newValue }
    }
}
