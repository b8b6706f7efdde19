import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Ledger

/// `GET /v1/certs/{id}` as a client checks it: the records of the certificate and its ancestors with their
/// proofs. ``verify()`` checks each proof against the answer's state root and judges the standing itself, so
/// the node's own verdict is only a cross-check.
public struct CertificateInfo: Sendable {
    public var id: Bytes32
    public var links: [(id: Bytes32, record: CertificateRecord, proof: SparseMerkleProof)]
    /// The node's verdict (`status`), as sent.
    public var status: String
    public var height: UInt64
    public var time: UInt64
    public var stateRoot: Bytes32

    public var certificate: DeviceCertificate? { links.first.flatMap { try? DeviceCertificate(der: $0.record.der) } }

    /// Every record proven under ``stateRoot`` and the standing they give at ``time``; nil when a proof fails.
    /// Check ``stateRoot`` against a header you trust to make this mean something.
    public func verify() -> CertificateStanding? {
        guard links.first?.id == id else { return nil }
        for link in links {
            guard
                link.proof.verify(
                    root: stateRoot, key: CertificateRecord.stateKey(link.id),
                    valueHash: Domain.stateValue.hash(link.record.encoded))
            else { return nil }
        }
        return CertificateStanding.of(links.map { ($0.id, $0.record) }, time: time)
    }
}

extension NodeClient {
    /// Certificate `id` with its chain of records; `.api(status: 404, …)` when no certificate has that id.
    public func certificate(_ id: Bytes32) throws(NodeClientError) -> CertificateInfo {
        let o = try getObject("/v1/certs/\(Hex.encode(id.bytes))")
        var links: [(id: Bytes32, record: CertificateRecord, proof: SparseMerkleProof)] = []
        for link in try o.array("chain") {
            let record: CertificateRecord
            let proof: SparseMerkleProof
            do { record = try CertificateRecord(decoding: try link.hex("record")) } catch { throw link.bad("record") }
            do { proof = try SparseMerkleProof(decoding: try link.hex("proof")) } catch { throw link.bad("proof") }
            links.append((try link.bytes32("id"), record, proof))
        }
        return CertificateInfo(
            id: id, links: links, status: try o.string("status"), height: try o.uint("height"),
            time: try o.uint("time"), stateRoot: try o.bytes32("stateRoot"))
    }
}
