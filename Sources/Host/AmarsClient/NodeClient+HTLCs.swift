import AmarsCodec
import AmarsCrypto
import Ledger

/// `GET /v1/htlcs/{id}`: the contract's state as the node encoded it, with its proof.
public struct HTLCInfo: Sendable, Equatable {
    public var id: Bytes32
    public var state: HTLCState
    public var height: UInt64
    public var stateRoot: Bytes32
    public var proof: SparseMerkleProof

    /// True when the proof shows exactly this state for `id` under ``stateRoot`` (check that against a header
    /// you trust to make it mean something).
    public func verify() -> Bool {
        proof.verify(root: stateRoot, key: StateNamespace.htlcKey(id), valueHash: state.valueHash)
    }
}

extension NodeClient {
    /// The HTLC locked by transaction `id`; `.api(status: 404, …)` when there is none.
    public func htlc(_ id: Bytes32) throws(NodeClientError) -> HTLCInfo {
        let o = try getObject("/v1/htlcs/\(Hex.encode(id.bytes))")
        guard try o.bytes32("id") == id else { throw o.bad("id") }
        let state: HTLCState
        do { state = try HTLCState(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        guard state.amount == (try o.units("amount")) else { throw o.bad("amount") }
        let proof: SparseMerkleProof
        do { proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        return HTLCInfo(
            id: id, state: state, height: try o.uint("height"), stateRoot: try o.bytes32("stateRoot"), proof: proof)
    }
}
