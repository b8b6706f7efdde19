import AmarsCodec
import AmarsCrypto
import Ledger

/// Checks state and inclusion proofs against roots the device already trusts (SPEC "Light client").
///
/// A root is only as good as where it came from: pass the roots of a ``VerifiedHeader`` or of the
/// ``TrustedState``, never a root taken from the same message as the proof. Work is bounded by the proof
/// formats (at most 257 hashes for a state proof, 64 for an inclusion proof) and memory by fixed sizes.
public enum ProofVerifier {
    /// The escrow opened by transaction `id` under `stateRoot`: `claimed` if the proof shows it, nil if `claimed`
    /// is nil and the proof shows no escrow with that id. A lock opens for an escrow proven `.open` naming it,
    /// against the root of a header it verified.
    public static func verifyEscrow(
        _ claimed: EscrowState?, id: Bytes32, proof: SparseMerkleProof, stateRoot: Bytes32
    ) throws(LightClientError) -> EscrowState? {
        try verifyValue(
            key: StateNamespace.escrowKey(id), valueHash: claimed?.valueHash, proof: proof, stateRoot: stateRoot)
        return claimed
    }

    /// Checks that `key` holds the value hashing to `valueHash` under `stateRoot`, or is absent when
    /// `valueHash` is nil. The general form behind accounts, certificates, escrows (see `StateNamespace`).
    public static func verifyValue(
        key: Bytes32, valueHash: Bytes32?, proof: SparseMerkleProof, stateRoot: Bytes32
    ) throws(LightClientError) {
        guard proof.verify(root: stateRoot, key: key, valueHash: valueHash) else { throw .stateProofMismatch }
    }

    /// The state of `address` under `stateRoot`: `claimed` if the proof shows it, an empty account if
    /// `claimed` is nil and the proof shows the address absent (the state tree holds no empty accounts).
    public static func verifyAccount(
        _ claimed: AccountState?, of address: Address, proof: SparseMerkleProof, stateRoot: Bytes32
    ) throws(LightClientError) -> AccountState {
        try verifyValue(
            key: StateNamespace.accountKey(address), valueHash: claimed?.valueHash, proof: proof, stateRoot: stateRoot)
        return claimed ?? AccountState()
    }

    /// ``verifyAccount(_:of:proof:stateRoot:)`` against the state root of a verified header.
    public static func verifyAccount(
        _ claimed: AccountState?, of address: Address, proof: SparseMerkleProof, in header: VerifiedHeader
    ) throws(LightClientError) -> AccountState {
        try verifyAccount(claimed, of: address, proof: proof, stateRoot: header.stateRoot)
    }

    /// Checks that the transaction `id` is in the block whose transactions root is `transactionsRoot` (leaves
    /// are `MerkleTree.leafHash(id.bytes)`, see `Block.transactionsRoot(ids:)`). Inclusion in a final block
    /// means executed, not succeeded: the receipt says which.
    public static func verifyTransaction(id: Bytes32, proof: MerkleProof, transactionsRoot: Bytes32)
        throws(LightClientError)
    {
        guard proof.verify(leafHash: MerkleTree.leafHash(id.bytes), root: transactionsRoot) else {
            throw .inclusionProofMismatch
        }
    }

    /// ``verifyTransaction(id:proof:transactionsRoot:)`` against a verified header.
    public static func verifyTransaction(id: Bytes32, proof: MerkleProof, in header: VerifiedHeader)
        throws(LightClientError)
    {
        try verifyTransaction(id: id, proof: proof, transactionsRoot: header.transactionsRoot)
    }

    /// Checks that `receipt` is the receipt at `proof.index` of the block whose receipts root is `receiptsRoot`
    /// (leaves are `MerkleTree.leafHash(receipt.encoded)`, see `Receipt.root(_:)`). With the inclusion proof of
    /// the same position this turns "executed" into "succeeded" or "failed", on the device's own checks.
    public static func verifyReceipt(_ receipt: Receipt, proof: MerkleProof, receiptsRoot: Bytes32)
        throws(LightClientError)
    {
        guard proof.verify(leafHash: MerkleTree.leafHash(receipt.encoded), root: receiptsRoot) else {
            throw .receiptProofMismatch
        }
    }
}
