import AmarsClient
import AmarsCodec
import Foundation
import DeviceIdentity
import Ledger

/// A person whose key several devices use at once (a household's, the fleet owner's): one lock keeps the
/// transactions' nonces in order, each taken from the node's count of the account's transactions, pending ones
/// included.
final class SharedWallet: @unchecked Sendable {
    // @unchecked: `person` is immutable; submits are serialized by `lock` (held on a pool thread, never across an
    // await).
    let person: Person
    private let lock = NSLock()

    init(_ person: Person) { self.person = person }

    var address: Address { person.address }

    func submit(_ payload: TransactionPayload, via client: NodeClient) throws -> Bytes32 {
        try lock.withLock { try person.submit(payload, via: client) }
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
