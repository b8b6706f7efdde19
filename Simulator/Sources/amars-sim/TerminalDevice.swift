import AmarsClient
import AmarsCodec
import AmarsCrypto
import DeviceCore
import Foundation
import Ledger
import LightClient

/// A shop's card terminal and its customer. Each round the terminal asks for an amount; the customer pays it
/// from a wallet (over the HTTP API); the terminal shows the order paid only once its own session has proven a
/// final, successful transfer of at least that amount to it, and keeps the receipt (in ``FleetStats``). The
/// receipts are checked against the chain at the end of the run. A terminal paid by HTLC (`htlc-share`) shows the
/// hash of its order's secret instead; the customer locks the amount to it, and the terminal claims it with the
/// secret through its own session (DeviceCore's `claim`: the contract proven, the claim signed and proven final).
final class TerminalDevice: @unchecked Sendable {
    // @unchecked: driven by one task at a time (its own).
    let device: VirtualDevice
    let customer: Person
    /// Keeps the customer funded; its gateway is the one the terminal and the customer use.
    let funder: Funder
    private let maxAmount: UInt64
    private let byHTLC: Bool

    init(device: VirtualDevice, customer: Person, funder: Funder, maxAmount: UInt64, byHTLC: Bool = false) {
        self.device = device
        self.funder = funder
        self.customer = customer
        self.maxAmount = maxAmount
        self.byHTLC = byHTLC
    }

    func round(_ n: Int, fund: UInt64, stats: FleetStats) async throws {
        let node = funder.home
        try await funder.topUp(customer.address, to: fund)
        try await device.follow()
        // The order's payment is looked for after the head verified now: it cannot be in an earlier block, and a
        // payment of an order given up on (a failed round) is never taken for this one.
        let from = try await device.verifiedHead().height + 1
        // Amounts vary by order so a payment for one order never passes for another.
        let amount = max(1, maxAmount / 10 * UInt64(1 + (n * 7 + device.index) % 10))
        let start = DispatchTime.now()
        if byHTLC { return try await claimSale(amount, fund: fund, since: start, stats: stats) }
        let (customer, to) = (customer, device.address)
        let sent = try await node { try customer.submit(.transfer(Transfer(to: to, amount: amount)), via: $0) }
        let outcome = try await device.run(.receive(device.address, from: from, position: 0, waitMillis: 30_000))
        guard case .received(let incoming) = outcome else { throw FleetFailure.saleNeverProven }
        guard incoming.transfer.amount >= amount else {
            throw FleetFailure.underpaid(expected: amount, got: incoming.transfer.amount)
        }
        guard incoming.transfer.id == sent else { throw FleetFailure.saleNeverProven }
        stats.keep(
            FleetStats.SaleReceipt(
                terminal: device.address, id: sent, height: incoming.inclusion.header.height, amount: amount))
        stats.record("sale proven paid", millis: millis(since: start))
    }

    /// The order paid by HTLC: a fresh secret per order, the customer's lock proven final, then claimed by the
    /// terminal (which pays the claim's fee from what it earned, topped up when short).
    private func claimSale(_ amount: UInt64, fund: UInt64, since start: DispatchTime, stats: FleetStats) async throws {
        try await funder.topUp(device.address, to: fund)
        var rng = SystemRandomNumberGenerator()
        let secret = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
        let expiry = try await device.verifiedHead().height + 200
        let lock = HTLCLock(
            recipient: device.address, amount: amount, hashLock: SHA256.hash(secret.bytes), expiryHeight: expiry)
        let customer = customer
        let lockID = try await funder.home { try customer.submit(.htlcLock(lock), via: $0) }
        guard case .included = try await device.run(.inclusion(lockID, waitMillis: 30_000)) else {
            throw FleetFailure.saleNeverProven
        }
        let claimed = try await device.claim(HTLCClaimOrder(lockID: lockID, preimage: secret))
        guard claimed.amount == amount, claimed.lockID == lockID else {
            throw FleetFailure.underpaid(expected: amount, got: claimed.amount)
        }
        stats.record("sale claimed by HTLC", millis: millis(since: start))
    }
}
