import AmarsClient
import AmarsCodec
import Foundation
import DeviceIdentity
import Ledger

/// A person whose key several devices use at once (a household's, the fleet owner's): one lock keeps the
/// transactions' nonces in order within this process, each taken from the node's count of the account's
/// transactions, pending ones included.
final class SharedWallet: @unchecked Sendable {
    // @unchecked: `person` is immutable; submits are serialized by `lock` (held on a pool thread, never across an
    // await).
    let person: Person
    private let lock = NSLock()

    init(_ person: Person) { self.person = person }

    var address: Address { person.address }

    /// Signs `payload` with the node's next nonce for this key and submits it. Another process may send from the
    /// same key at the same instant (a shard of the same fleet: the owner, the operator's root), and a nonce it
    /// took is tried again with the node's next one, as ``Funder`` does, for a few seconds at most.
    func submit(_ payload: TransactionPayload, via client: NodeClient) throws -> Bytes32 {
        try lock.withLock {
            let deadline = Date().addingTimeInterval(5)
            while true {
                do {
                    return try person.submit(payload, via: client)
                } catch let error as NodeClientError
                    where Funder.nonceTaken.contains(error.code ?? "") && Date() < deadline
                {
                    usleep(UInt32.random(in: 20_000...100_000))
                }
            }
        }
    }

    /// Publishes `batches` of certificates in order, each final before the next (the chain takes a certificate
    /// only under an issuer it already has), in groups under the 64 transactions a sender may have pending. One
    /// already on chain (another shard of the fleet published it) is not an error.
    func publish(_ batches: [[DeviceCertificate]], node: NodeAPI) async throws {
        let groups = batches.flatMap { batch in
            stride(from: 0, to: batch.count, by: 50).map { Array(batch[$0..<min($0 + 50, batch.count)]) }
        }
        for group in groups {
            let ids = try await node { client in
                try group.compactMap { c -> Bytes32? in
                    do {
                        return try self.submit(.certificatePublish(CertificatePublish(der: c.der)), via: client)
                    } catch NodeClientError.api(_, "certificateAlreadyPublished", _) {
                        return nil
                    }
                }
            }
            for id in ids { try await Funder.waitFinal(id, node: node, what: "certificate publish") }
        }
    }
}
