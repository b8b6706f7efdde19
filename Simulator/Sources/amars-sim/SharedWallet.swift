import AmarsClient
import AmarsCodec
import Foundation
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
}
