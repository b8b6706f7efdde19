import AmarsCodec
import AmarsCrypto
import Ledger

/// Who an epoch's blocks paid, gathered block by block: the recipients of its recipient filter and the ephemeral
/// keys of its stealth transfers. The epoch's last block commits to both (``commitments(genesis:epoch:)``); a
/// gateway rebuilds them from the blocks to serve them.
struct EpochPayees: Sendable {
    var recipients: [Address] = []
    var announcements: [StealthAnnouncement] = []

    init() {}

    init(_ transactions: [SignedTransaction], receipts: [Receipt]) {
        add(transactions, receipts: receipts)
    }

    mutating func add(_ transactions: [SignedTransaction], receipts: [Receipt]) {
        recipients += RecipientFilter.recipients(of: transactions, receipts: receipts)
        announcements += StealthAnnouncements.announcements(of: transactions, receipts: receipts)
    }

    static func + (a: EpochPayees, b: EpochPayees) -> EpochPayees {
        var sum = a
        sum.recipients += b.recipients
        sum.announcements += b.announcements
        return sum
    }

    func filter(genesis: Bytes32, epoch: UInt64) -> [UInt8] {
        RecipientFilter.build(recipients, key: RecipientFilter.key(genesis: genesis, epoch: epoch))
    }

    /// The state records the epoch's last block writes: the hash of the filter and of the announcements.
    func commitments(genesis: Bytes32, epoch: UInt64) -> [(ObjectKey, [UInt8])] {
        let id = RecipientFilter.stateIdentifier(epoch: epoch)
        return [
            (ObjectKey(.recipientFilter, id), RecipientFilter.hash(filter(genesis: genesis, epoch: epoch)).bytes),
            (ObjectKey(.stealthAnnouncements, id), StealthAnnouncements.hash(announcements).bytes),
        ]
    }
}
