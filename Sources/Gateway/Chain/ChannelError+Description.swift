import Ledger

/// Each channel refusal in words, written once: the HTTP API's message and `amars channel`'s line.
extension ChannelError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .sameParty: "a channel's recipient cannot be its sender"
        case .expiryPassed(let height): "the expiry height must be after the block it opens in (\(height))"
        case .unknownChannel: "no channel was opened by that transaction id"
        case .notOpen: "the channel is already closed or refunded"
        case .notRecipient: "only the channel's recipient may close it"
        case .notSender: "only the channel's sender signs its updates and takes its deposit back"
        case .wrongChannel: "the update names another channel"
        case .badUpdateSignature: "the update is not signed by the channel's sender key"
        case .overDeposit(let committed, let deposit):
            "the update commits \(committed) units, more than the deposit of \(deposit)"
        case .unmatchedPreimage: "a preimage opens none of the update's conditions, or is given twice"
        case .conditionExpired(let expiry): "a condition's preimage came after its expiry height \(expiry)"
        case .closeTooLate(let expiry):
            "the channel expired at height \(expiry); only its sender may take the deposit back now"
        case .refundTooEarly(let expiry): "the channel's deposit can be taken back only after height \(expiry)"
        case .tooManyConditions: "an update holds at most 8 pending conditions; settle some, or wait until some expire"
        case .conditionExists: "a condition with this hash lock is already pending in the channel"
        case .closingSoon(let expiry):
            "the channel expires at height \(expiry), too soon to be sure a close reaches a block; take no more updates"
        case .conditionOutlivesChannel(let expiry):
            "a condition must expire at least 5 blocks before the channel (height \(expiry)), or it could never be claimed"
        case .conditionDropped: "the update drops or shrinks a pending condition without settling it"
        case .staleUpdate(let held, let offered):
            "the update settles \(offered) units; the one held already settles \(held)"
        }
    }
}
