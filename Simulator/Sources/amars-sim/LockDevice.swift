import AmarsClient
import AmarsCodec
import AmarsCrypto
import DeviceCore
import Foundation
import Ledger
import LightClient

/// A bike-share lock and its renter. Each round the renter opens a rental escrow naming the lock (over the HTTP
/// API, as a wallet app would); the lock proves the escrow itself, opens only when ``RentalLock`` admits it, and
/// after the ride signs the return and submits the close from its own account. Around that the simulation tries
/// what a dishonest renter would: another lock's escrow, and the same escrow again after the return. Both must
/// keep the lock shut. Then the chain's word is checked: the escrow closed with the damages the lock signed, and
/// the renter got the deposit back exactly once (its balance moved by the fee, the damages and the opening
/// transaction's fee, nothing more). A silent lock goes quiet in its first rental: it never signs the return, and
/// once the return deadline passed the owner closes the escrow as kept and takes deposit and fee.
final class LockDevice: @unchecked Sendable {
    // @unchecked: driven by one task at a time (its own).
    let device: VirtualDevice
    let renter: Person
    /// Keeps the lock and its renter funded; its gateway is the one the lock and the renter use.
    let funder: Funder
    let core: RentalLock
    private let owner: SharedWallet
    private let silent: Bool
    private let terms: Terms
    private let board: RentalBoard
    /// The escrow of a round that was cut short (the gateway went away): settled before the next rental.
    private var pending: Bytes32?

    struct Terms {
        var deposit: UInt64
        var fee: UInt64
        var maxDamages: UInt64
        /// Blocks from the opening head to the rental's expiry.
        var blocks: UInt64
        /// Seconds between the lock opening and the return.
        var ride: Double
    }

    init(
        device: VirtualDevice, renter: Person, funder: Funder, owner: SharedWallet, silent: Bool, genesis: Bytes32,
        terms: Terms, board: RentalBoard
    ) {
        self.device = device
        self.funder = funder
        self.renter = renter
        self.owner = owner
        self.silent = silent
        self.terms = terms
        self.board = board
        core = RentalLock(key: device.key, genesis: genesis)
    }

    /// One rental, start to end. Failures the fleet should never see are thrown; expected refusals are recorded.
    func round(_ n: Int, fund: UInt64, stats: FleetStats) async throws {
        let (renter, node) = (renter, funder.home)
        try await funder.topUp(renter.address, to: fund)
        try await funder.topUp(device.address, to: fund)
        try await device.follow()
        await renewIfDue(stats: stats)
        if let id = pending {
            try await settle(interrupted: id, node: node, stats: stats)
            pending = nil
        }
        let before = try await node { try $0.account(renter.address).balance }
        let head = try await node { try $0.head() }
        let open = EscrowOpen(
            device: core.address, owner: owner.address, deposit: terms.deposit, rentalFee: terms.fee,
            maxDamages: terms.maxDamages, expiryHeight: head.height + terms.blocks)
        let start = DispatchTime.now()
        let id = try await node { try renter.submit(.escrowOpen(open), via: $0) }
        pending = id

        // A renter holding another lock's escrow tries it here: the lock must stay shut.
        if let foreign = board.latest(excluding: device.index) {
            do {
                _ = try core.admit(try await device.verifiedEscrow(foreign))
                throw FleetFailure.openedForeign
            } catch is RentalRefusal {
                stats.record("lock refused another lock's escrow")
            }
        }

        // The lock proves the renter's escrow until it is final and open.
        let rental = try await admitWhenFinal(id)
        stats.record("rental opened", millis: millis(since: start))
        board.opened(id, by: device.index)
        guard rental.renter == renter.address else { throw FleetFailure.wrongRenter }

        if silent && n == 1 {
            try await kept(id, paidBefore: before, node: node, stats: stats)
            pending = nil
            return
        }
        if terms.ride > 0 { try await Task.sleep(nanoseconds: UInt64(terms.ride * 1e9)) }

        // The return: damages on every fourth ride, within the terms.
        let damages = n % 4 == 0 ? terms.maxDamages / 2 : 0
        let returned = DispatchTime.now()
        try await submitReturn(
            try core.attestReturn(try await device.verifiedEscrow(id), damages: damages, auxRandom: fresh()))
        stats.record(device.overMQTT ? "return signed (MQTT)" : "return signed (CoAP)", millis: millis(since: returned))

        // The same escrow again after the return: closed, so the lock stays shut.
        do {
            _ = try core.admit(try await device.verifiedEscrow(id))
            throw FleetFailure.openedClosed
        } catch RentalRefusal.notOpen {
            stats.record("lock refused a returned escrow")
        }

        // The chain's word on the settlement.
        let settled = try await node { try $0.escrow(id).state }
        guard settled.status == .closed, settled.damages == damages else { throw FleetFailure.notSettledAsSigned }
        guard case .included(_, _, let receipt) = try await node({ try $0.transactionStatus(id).state }) else {
            throw FleetFailure.notSettledAsSigned
        }
        let after = try await node { try $0.account(renter.address).balance }
        guard before &- after == terms.fee + damages + receipt.feePaid else {
            throw FleetFailure.refundWrong(expected: terms.fee + damages + receipt.feePaid, got: before &- after)
        }
        stats.record("deposit refunded once")
        pending = nil
    }

    /// A TLS lock whose certificate is half spent renews it before the rental. A failed renewal is counted, not
    /// thrown: the lock goes on with the session it has (its certificate still valid, or CoAP without one).
    private func renewIfDue(stats: FleetStats) async {
        let start = DispatchTime.now()
        do {
            if try await device.renewIfDue(now: UInt64(Date().timeIntervalSince1970)) != nil {
                stats.record("certificate renewed on chain", millis: millis(since: start))
            }
        } catch {
            stats.fail("certificate renewal failed")
        }
    }

    /// Signs the close with the lock's own account and proves it final, as the firmware's send flow does.
    private func submitReturn(_ close: EscrowClose) async throws {
        let account = try await device.verifiedAccount(core.address)
        let verifiedHead = try await device.verifiedHead()
        let wallet = DeviceWallet(key: device.key, nextNonce: account.state.nonce)
        let transaction = try wallet.signed(
            .escrowClose(close), genesis: core.genesis, maxFeePerUnit: verifiedHead.nextBaseFee * 2 + 1,
            tipPerUnit: 1, auxRandom: fresh())
        _ = try await device.send(transaction)
    }

    /// A rental an interrupted round left behind. An opening that never made it into a block is forgotten; an
    /// escrow already closed (the return landed) is done; otherwise the lock signs the return if it still may,
    /// and past the return deadline the owner closes it as kept. Either way it ends settled on chain.
    private func settle(interrupted id: Bytes32, node: NodeAPI, stats: FleetStats) async throws {
        do {
            try await Funder.waitFinal(id, node: node, what: "an interrupted rental's escrow")
        } catch is SimulationError {
            return  // dropped, or never final: no escrow to settle
        } catch let error as NodeClientError {
            if case .api(let status, _, _) = error, status == 404 { return }  // the gateway never took it
            throw error
        }
        guard try await node({ try $0.escrow(id).state.status }) == .open else { return }
        do {
            try await submitReturn(
                try core.attestReturn(try await device.verifiedEscrow(id), damages: 0, auxRandom: fresh()))
        } catch RentalRefusal.pastReturnDeadline {
            try await ownerCloses(id, node: node, stats: stats)
        }
        guard try await node({ try $0.escrow(id).state.status }) != .open else { throw FleetFailure.notSettledAsSigned }
        stats.record("interrupted rental settled")
    }

    /// The lock stays silent: after the return deadline the owner closes the escrow as kept. The chain must then
    /// show it kept with the whole deposit as damages, the renter must have paid deposit and fee (nothing came
    /// back), and the lock, back again, must not open for it.
    private func kept(_ id: Bytes32, paidBefore before: UInt64, node: NodeAPI, stats: FleetStats) async throws {
        stats.record("lock went silent")
        try await ownerCloses(id, node: node, stats: stats)
        let renter = renter
        guard case .included(_, _, let openReceipt) = try await node({ try $0.transactionStatus(id).state }) else {
            throw FleetFailure.notSettledAsSigned
        }
        let settled = try await node { try $0.escrow(id).state }
        guard settled.status == .kept, settled.damages == terms.deposit else { throw FleetFailure.notKept }
        let after = try await node { try $0.account(renter.address).balance }
        let paid = terms.deposit + terms.fee + openReceipt.feePaid
        guard before &- after == paid else { throw FleetFailure.refundWrong(expected: paid, got: before &- after) }
        stats.record("kept item paid its owner")
        do {
            _ = try core.attestReturn(try await device.verifiedEscrow(id), damages: 0)
            throw FleetFailure.openedClosed
        } catch RentalRefusal.notOpen {
            stats.record("lock refused a returned escrow")
        }
    }

    /// Waits for the return deadline to pass, then the owner closes the escrow as kept (its fee is counted).
    private func ownerCloses(_ id: Bytes32, node: NodeAPI, stats: FleetStats) async throws {
        let deadline = try await node { try $0.escrow(id).state.returnDeadline }
        let patience = Date().addingTimeInterval(600)
        while try await node({ try $0.head().height }) <= deadline {
            guard Date() < patience else { throw FleetFailure.deadlineNeverPassed }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        let owner = owner
        let close = try await node {
            try owner.submit(
                .escrowClose(EscrowClose(escrowID: id, damages: 0, deviceKey: .zero, deviceSignature: .zero)), via: $0)
        }
        try await Funder.waitFinal(close, node: node, what: "the owner's close of a kept rental")
        guard case .included(_, _, let receipt) = try await node({ try $0.transactionStatus(close).state }) else {
            throw FleetFailure.notSettledAsSigned
        }
        stats.add(receipt.feePaid, to: "ownerCloseFees")
    }

    /// Asks for the escrow's proof until the lock admits it; proven absence means "not final yet" for 30 s.
    private func admitWhenFinal(_ id: Bytes32) async throws -> RentalLock.Rental {
        let deadline = Date().addingTimeInterval(30)
        while true {
            do {
                return try core.admit(try await device.verifiedEscrow(id))
            } catch RentalRefusal.noSuchEscrow {
                guard Date() < deadline else { throw FleetFailure.escrowNeverFinal }
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        }
    }

    private func fresh() -> Bytes32 {
        var g = SystemRandomNumberGenerator()
        return Bytes32(w0: g.next(), w1: g.next(), w2: g.next(), w3: g.next())
    }
}

/// The latest escrow each lock opened, so a renter can try one at another lock.
final class RentalBoard: @unchecked Sendable {
    // @unchecked: under `lock`.
    private let lock = NSLock()
    private var latest: [Int: Bytes32] = [:]

    func opened(_ id: Bytes32, by lockIndex: Int) { lock.withLock { latest[lockIndex] = id } }

    func latest(excluding lockIndex: Int) -> Bytes32? {
        lock.withLock { latest.filter { $0.key != lockIndex }.min(by: { $0.key < $1.key })?.value }
    }
}
