import AmarsClient
import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger

/// The wallet that keeps the fleet's people and devices funded, topping each one up when it runs low so a fleet
/// can run for days. Devices call it between their rounds; one lock keeps its nonces in order, and a nonce
/// another process took (shards funded from one key) is given up for the next.
///
/// A sender may have only so many transactions pending (64 by default), so one key funds a few hundred accounts
/// a block. A large fleet is funded through branches (``branches(count:seed:shard:reserve:gateways:)``): each a
/// wallet of its own that the root keeps stocked, serving its share of the devices.
///
/// A funder talks to one gateway, its `home`, for everything (nonces, submits, finality), and the devices it
/// serves use the same gateway, so nobody reads a balance from a gateway a block behind the one that paid it.
final class Funder: @unchecked Sendable {
    // @unchecked: `nextNonce` and `refill` are only touched under `lock` (never held across an await).
    private let key: PrivateKey
    let home: NodeAPI
    /// The position of `home` among the fleet's gateways.
    let gateway: Int
    private let parent: Funder?
    private let reserve: UInt64
    private let lock = NSLock()
    private var nextNonce: UInt64 = 0
    private var refill: Task<Void, Error>?
    private(set) var transfers = 0

    /// `parent`: the funder that keeps this one stocked with `reserve` (refilled below half of it).
    init(key: PrivateKey, home: NodeAPI, gateway: Int = 0, parent: Funder? = nil, reserve: UInt64 = 0) {
        self.key = key
        self.home = home
        self.gateway = gateway
        self.parent = parent
        self.reserve = reserve
    }

    /// Devices one funder serves before the fleet is funded through branches.
    static let devicesPerBranch = 250

    /// `count` branch funders under this one, each stocked with `reserve`, at `gateways` in turn. Their keys come
    /// from the fleet's seed, apart for each shard, so a rerun finds them as it left them.
    func branches(count: Int, seed: UInt64, shard: Int, reserve: UInt64, gateways: [NodeAPI]) -> [Funder] {
        (0..<count).map {
            Funder(
                key: Person(role: "funder", seed: seed, index: 200_000 + shard * 1_000 + $0).key,
                home: gateways[$0 % gateways.count], gateway: $0 % gateways.count, parent: self, reserve: reserve)
        }
    }

    var address: Address { Address(publicKey: key.xOnlyPublicKey) }

    /// Brings `address` up to `units` when it holds less than `units / 2`, and waits until the top-up is final.
    /// Returns the balance after.
    @discardableResult
    func topUp(_ address: Address, to units: UInt64) async throws -> UInt64 {
        let node = home
        let balance = try await node { try $0.account(address).balance }
        guard balance < units / 2 else { return balance }
        // A large fleet starting at once asks for more top-ups than a sender may have pending: a full queue is
        // waited out (a block empties it), for a minute at most.
        try await stocked()
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

    /// A branch's own balance brought up from its parent before it pays; devices asking at once share one refill.
    /// The parent's gateway may be a block ahead of this one's: the refill is done when `home` shows it.
    private func stocked() async throws {
        guard let parent else { return }
        let (address, reserve, home) = (address, reserve, home)
        let task = lock.withLock {
            if let refill { return refill }
            let task = Task {
                try await parent.topUp(address, to: reserve)
                let deadline = Date().addingTimeInterval(30)
                while try await home({ try $0.account(address).balance }) < reserve / 2, Date() < deadline {
                    try await Task.sleep(nanoseconds: 100_000_000)
                }
            }
            refill = task
            return task
        }
        defer { lock.withLock { if refill == task { refill = nil } } }
        try await task.value
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
