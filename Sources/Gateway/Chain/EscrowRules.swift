import AmarsCodec
import AmarsCrypto
import Ledger

/// Rental escrows (SPEC "Shared economy"): a renter locks a deposit and a fee naming a device and its owner; the
/// device closes it with its own signature when the rental ends, and the chain pays the fee (and any damages)
/// to the owner and the rest of the deposit back to the renter. No company holds the money in between.
///
/// Pure planning, like ``StakingRules``: every check runs on the state as it is, and the caller writes the
/// object and credits only if nothing threw.
enum EscrowRules {
    static func key(_ id: Bytes32) -> ObjectKey { ObjectKey(.escrow, id.bytes) }

    /// The escrow object `open` creates; `id` is the opening transaction's id. The renter's debit of deposit
    /// and fee is the executor's (``TransactionPayload/debitedAmount``).
    static func planOpen(_ open: EscrowOpen, id: Bytes32, renter: Address, height: UInt64) throws(EscrowError) -> (
        ObjectKey, [UInt8]
    ) {
        guard open.deposit > 0 || open.rentalFee > 0 else { throw .emptyEscrow }
        guard open.device != renter, open.owner != renter else { throw .sameParty }
        guard open.expiryHeight > height else { throw .expiryPassed(height: height) }
        let state = EscrowState(
            renter: renter, device: open.device, owner: open.owner, deposit: open.deposit,
            rentalFee: open.rentalFee, maxDamages: open.maxDamages, expiryHeight: open.expiryHeight)
        return (key(id), state.encoded)
    }

    /// The ended escrow and who is paid. Up to the return deadline (the expiry height plus a grace period for a
    /// late return) only the device's signature closes it; after it the owner may, and keeps the deposit: an item
    /// no device saw returned is deemed kept, so keeping the bike costs the deposit, not just the fee.
    static func planClose(
        _ close: EscrowClose, sender: Address, genesis: Bytes32, height: UInt64, state: StateOverlay
    ) throws(EscrowError) -> (write: (ObjectKey, [UInt8]), credits: [(to: Address, amount: UInt64)]) {
        let objectKey = key(close.escrowID)
        guard let raw = state.object(objectKey), let escrow = try? EscrowState(decoding: raw) else {
            throw .unknownEscrow
        }
        guard escrow.status == .open else { throw .notOpen }
        var ended = escrow
        if height <= escrow.returnDeadline {
            if close.deviceKey == .zero { throw .returnWindowOpen(until: escrow.returnDeadline) }
            guard let key = try? XOnlyPublicKey(bytes: close.deviceKey), Address(publicKey: key) == escrow.device else {
                throw .wrongDevice
            }
            let message = EscrowClose.signingHash(genesis: genesis, escrowID: close.escrowID, damages: close.damages)
            guard key.verifySchnorr(close.deviceSignature, message: message) else { throw .badDeviceSignature }
            guard close.damages <= escrow.deposit else { throw .damagesOverDeposit(deposit: escrow.deposit) }
            guard close.damages <= escrow.maxDamages else { throw .damagesOverAgreed(maximum: escrow.maxDamages) }
            ended.status = .closed
            ended.damages = close.damages
        } else {
            guard sender == escrow.owner else { throw .notOwner }
            // The close names no damages: the chain takes the whole deposit, whatever it says.
            guard close.damages == 0 else { throw .damagesOverDeposit(deposit: 0) }
            ended.status = .kept
            ended.damages = escrow.deposit
        }
        // deposit + fee fits (checked when decoded), so each part does.
        let toOwner = escrow.rentalFee + ended.damages
        let toRenter = escrow.deposit - ended.damages
        return ((objectKey, ended.encoded), [(escrow.owner, toOwner), (escrow.renter, toRenter)])
    }
}
