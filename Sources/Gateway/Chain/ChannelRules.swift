import AmarsCodec
import AmarsCrypto
import Ledger

/// One-way payment channels (white paper §7.1): the sender locks a deposit for a recipient until an expiry
/// height; the recipient closes once, with the best update the sender signed off chain and the preimages of any
/// conditions it can open; after the expiry an unclosed channel's deposit goes back to the sender. Pure planning,
/// like ``HTLCRules``: every check runs on the state as it is, and the caller writes only if nothing threw.
enum ChannelRules {
    static func key(_ id: Bytes32) -> ObjectKey { ObjectKey(.channel, id.bytes) }

    /// The channel `open` creates; `id` is the opening transaction's id. The sender's debit of the deposit is the
    /// executor's (``TransactionPayload/debitedAmount``).
    static func planOpen(_ open: ChannelOpen, id: Bytes32, sender: Address, senderKey: Bytes32, height: UInt64)
        throws(ChannelError) -> (ObjectKey, [UInt8])
    {
        guard open.recipient != sender else { throw .sameParty }
        guard open.expiryHeight > height else { throw .expiryPassed(height: height) }
        let channel = PaymentChannel(
            sender: sender, senderKey: senderKey, recipient: open.recipient, deposit: open.deposit,
            expiryHeight: open.expiryHeight)
        return (key(id), channel.encoded)
    }

    static func open(_ id: Bytes32, in state: StateOverlay) throws(ChannelError) -> PaymentChannel {
        // Only these rules write channel objects; one that does not decode is a corrupt store.
        guard let raw = state.object(key(id)) else { throw .unknownChannel }
        let channel = try! PaymentChannel(decoding: raw)
        guard channel.status == .open else { throw .notOpen }
        return channel
    }

    static func planClose(_ close: ChannelClose, sender: Address, height: UInt64, state: StateOverlay)
        throws(ChannelError) -> (write: (ObjectKey, [UInt8]), credits: [(to: Address, amount: UInt64)])
    {
        let id = close.update.channelID
        var channel = try open(id, in: state)
        guard sender == channel.recipient else { throw .notRecipient }
        guard height <= channel.expiryHeight else { throw .closeTooLate(expiryHeight: channel.expiryHeight) }
        try channel.check(close.update, channelID: id)
        let payout = try PaymentChannel.payout(close.update, preimages: close.preimages, height: height)
        channel.status = .closed
        channel.paidOut = payout
        channel.revealed = close.preimages
        return ((key(id), channel.encoded), [(channel.recipient, payout), (channel.sender, channel.deposit - payout)])
    }

    static func planRefund(_ refund: ChannelRefund, sender: Address, height: UInt64, state: StateOverlay)
        throws(ChannelError) -> (write: (ObjectKey, [UInt8]), credit: (to: Address, amount: UInt64))
    {
        var channel = try open(refund.channelID, in: state)
        guard sender == channel.sender else { throw .notSender }
        guard height > channel.expiryHeight else { throw .refundTooEarly(expiryHeight: channel.expiryHeight) }
        channel.status = .refunded
        return ((key(refund.channelID), channel.encoded), (channel.sender, channel.deposit))
    }
}
