import AmarsCodec
import AmarsCrypto
import Ledger

/// Hash time-locked contracts (white paper §7.1): a sender locks an amount for a recipient under SHA-256 of a
/// secret; the recipient takes it by showing the secret up to the expiry height, and after it the sender takes
/// it back. Pure planning, like ``EscrowRules``: every check runs on the state as it is, and the caller writes
/// only if nothing threw.
enum HTLCRules {
    static func key(_ id: Bytes32) -> ObjectKey { ObjectKey(.htlc, id.bytes) }

    /// The contract `lock` creates; `id` is the locking transaction's id. The sender's debit of the amount is the
    /// executor's (``TransactionPayload/debitedAmount``).
    static func planLock(_ lock: HTLCLock, id: Bytes32, sender: Address, height: UInt64) throws(HTLCError) -> (
        ObjectKey, [UInt8]
    ) {
        guard lock.recipient != sender else { throw .sameParty }
        guard lock.expiryHeight > height else { throw .expiryPassed(height: height) }
        let state = HTLCState(
            sender: sender, recipient: lock.recipient, amount: lock.amount, hashLock: lock.hashLock,
            expiryHeight: lock.expiryHeight)
        return (key(id), state.encoded)
    }

    static func open(_ id: Bytes32, in state: StateOverlay) throws(HTLCError) -> HTLCState {
        // Only these rules write HTLC objects; one that does not decode is a corrupt store.
        guard let raw = state.object(key(id)) else { throw .unknownHTLC }
        let htlc = try! HTLCState(decoding: raw)
        guard htlc.status == .open else { throw .notOpen }
        return htlc
    }

    static func planClaim(_ claim: HTLCClaim, sender: Address, height: UInt64, state: StateOverlay)
        throws(HTLCError) -> (write: (ObjectKey, [UInt8]), credit: (to: Address, amount: UInt64))
    {
        var htlc = try open(claim.lockID, in: state)
        try htlc.checkClaim(by: sender, preimage: claim.preimage, height: height)
        htlc.status = .claimed
        htlc.preimage = claim.preimage
        return ((key(claim.lockID), htlc.encoded), (htlc.recipient, htlc.amount))
    }

    static func planRefund(_ refund: HTLCRefund, sender: Address, height: UInt64, state: StateOverlay)
        throws(HTLCError) -> (write: (ObjectKey, [UInt8]), credit: (to: Address, amount: UInt64))
    {
        var htlc = try open(refund.lockID, in: state)
        guard sender == htlc.sender else { throw .notSender }
        guard height > htlc.expiryHeight else { throw .refundTooEarly(expiryHeight: htlc.expiryHeight) }
        htlc.status = .refunded
        return ((key(refund.lockID), htlc.encoded), (htlc.sender, htlc.amount))
    }
}
