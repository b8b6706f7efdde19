import AmarsClient
import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger

/// The wallet that keeps the fleet's people and devices funded, topping each one up when it runs low so a fleet
/// can run for days. Devices call it between their rounds; one lock keeps its nonces in order, and a nonce
/// another process took (shards funded from one key) is given up for the next.
final class Funder: @unchecked Sendable {
    // @unchecked: `nextNonce` is only touched under `lock` (held on a pool thread, never across an await).
    private let key: PrivateKey
    private let lock = NSLock()
    private var nextNonce: UInt64 = 0
    private(set) var transfers = 0

    init(key: PrivateKey) { self.key = key }

    var address: Address { Address(publicKey: key.xOnlyPublicKey) }

    /// Brings `address` up to `units` when it holds less than `units / 2`, and waits until the top-up is final.
    /// Returns the balance after.
    @discardableResult
    func topUp(_ address: Address, to units: UInt64, node: NodeAPI) async throws -> UInt64 {
        let balance = try await node { try $0.account(address).balance }
        guard balance < units / 2 else { return balance }
        // A large fleet starting at once asks for more top-ups than a sender may have pending: a full queue is
        // waited out (a block empties it), for a minute at most.
        let deadline = Date().addingTimeInterval(60)
        var sent: Bytes32?
        while sent == nil {
            do {
                sent = try await node { client in try self.submit(units - balance, to: address, client: client) }
            } catch let error as NodeClientError where error.code == "senderQueueFull" && Date() < deadline {
                try await Task.sleep(nanoseconds: 500_000_000)
            } catch let error as NodeClientError
                where Self.nonceTaken.contains(error.code ?? "") && Date() < deadline
            {
                // Another process funding from the same key (a shard) took this nonce: the next one, from the node.
                lock.withLock { nextNonce = 0 }
                try await Task.sleep(nanoseconds: UInt64.random(in: 50_000_000...300_000_000))
            }
        }
        guard let id = sent else { return balance }
        try await Self.waitFinal(id, node: node, what: "funding transfer")
        return units
    }

    /// Signs and submits one transfer with the next nonce, under the lock.
    private func submit(_ amount: UInt64, to address: Address, client: NodeClient) throws -> Bytes32 {
        try lock.withLock {
            let head = try client.head()
            nextNonce = max(nextNonce, try client.account(self.address).nextNonce)
            let body = TransactionBody(
                genesis: head.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nextNonce,
                maxFeePerUnit: head.nextBaseFee * 2 + 1, tipPerUnit: 1,
                payload: .transfer(Transfer(to: address, amount: amount)))
            let id = try client.submit(SignedTransaction(body: body, signer: key))
            nextNonce += 1
            transfers += 1
            return id
        }
    }

    /// What the node answers when a nonce this funder picked was taken by another sender of the same key.
    static let nonceTaken: Set<String> = ["replacementUnderpriced", "nonceReplayed", "nonceGap"]

    /// Waits up to 60 s for `id` to be in a final block; a transaction the gateway dropped is an error.
    static func waitFinal(_ id: Bytes32, node: NodeAPI, what: String) async throws {
        let deadline = Date().addingTimeInterval(60)
        while true {
            let state = try await node { try $0.transactionStatus(id).state }
            if case .included = state { return }
            if case .refused(let code) = state { throw SimulationError.refused(what, id, code: code) }
            guard Date() < deadline else { throw SimulationError.notFinal(what, id) }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }
}
