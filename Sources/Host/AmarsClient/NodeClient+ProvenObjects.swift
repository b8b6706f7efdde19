import AmarsCodec
import AmarsCrypto
import Ledger

/// An object of the state tree as the node encoded it (an HTLC, a payment channel), with its proof.
public struct ProvenObject<Value: CanonicalCodable & Sendable & Equatable>: Sendable, Equatable {
    public var id: Bytes32
    public var state: Value
    public var namespace: StateNamespace
    public var height: UInt64
    public var stateRoot: Bytes32
    public var proof: SparseMerkleProof

    /// True when the proof shows exactly this state for `id` under ``stateRoot`` (check that against a header
    /// you trust to make it mean something).
    public func verify() -> Bool {
        proof.verify(root: stateRoot, key: namespace.key(id.bytes), valueHash: Domain.stateValue.hash(state.encoded))
    }
}

/// `GET /v1/htlcs/{id}`.
public typealias HTLCInfo = ProvenObject<HTLCState>
/// `GET /v1/channels/{id}`.
public typealias ChannelInfo = ProvenObject<PaymentChannel>

extension NodeClient {
    /// The HTLC locked by transaction `id`; `.api(status: 404, …)` when there is none.
    public func htlc(_ id: Bytes32) throws(NodeClientError) -> HTLCInfo {
        try provenObject("/v1/htlcs/", id: id, namespace: .htlc)
    }

    /// The payment channel opened by transaction `id`; `.api(status: 404, …)` when there is none.
    public func channel(_ id: Bytes32) throws(NodeClientError) -> ChannelInfo {
        try provenObject("/v1/channels/", id: id, namespace: .channel)
    }

    private func provenObject<Value>(_ path: String, id: Bytes32, namespace: StateNamespace)
        throws(NodeClientError) -> ProvenObject<Value>
    {
        let o = try getObject(path + Hex.encode(id.bytes))
        guard try o.bytes32("id") == id else { throw o.bad("id") }
        let state: Value
        do { state = try Value(decoding: try o.hex("encoded")) } catch { throw o.bad("encoded") }
        let proof: SparseMerkleProof
        do { proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        return ProvenObject(
            id: id, state: state, namespace: namespace, height: try o.uint("height"),
            stateRoot: try o.bytes32("stateRoot"), proof: proof)
    }
}
