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
/// receipts are checked against the chain at the end of the run.
final class TerminalDevice: @unchecked Sendable {
    // @unchecked: driven by one task at a time (its own).
    let device: VirtualDevice
    let customer: Person
    /// Keeps the customer funded; its gateway is the one the terminal and the customer use.
    let funder: Funder
    private let maxAmount: UInt64

    init(device: VirtualDevice, customer: Person, funder: Funder, maxAmount: UInt64) {
        self.device = device
        self.funder = funder
        self.customer = customer
        self.maxAmount = maxAmount
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
}
