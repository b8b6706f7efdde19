import AmarsCodec
import AmarsCrypto

/// The ephemeral keys R of one epoch's successful stealth transfers (``StealthTransfer``), in block order, each
/// with its transaction id. A wallet scanning with a view key must see every R of an epoch to find every payment,
/// so, like the recipient filter, the list is committed: the epoch's last block writes its hash into the state
/// under ``StateNamespace/stealthAnnouncements``, and a gateway that leaves one out serves a list whose hash the
/// state proof refuses.
///
/// Encoding: each announcement is the 32-byte transaction id then the 33-byte compressed R; the list is their
/// concatenation, and the committed value is `Domain.stealthAnnouncements` over it.
public struct StealthAnnouncement: Equatable, Sendable {
    public static let encodedLength = 65

    public var transaction: Bytes32
    public var ephemeralKey: PublicKey

    public init(transaction: Bytes32, ephemeralKey: PublicKey) {
        self.transaction = transaction
        self.ephemeralKey = ephemeralKey
    }
}

public enum StealthAnnouncements {
    /// The announcements a block adds to its epoch's list.
    public static func announcements(of transactions: [SignedTransaction], receipts: [Receipt])
        -> [StealthAnnouncement]
    {
        var out: [StealthAnnouncement] = []
        for (tx, receipt) in zip(transactions, receipts) where receipt.status == .success {
            // A decoded stealth transfer's R is a point, so none is dropped here.
            if case .stealthTransfer(let transfer) = tx.body.payload, let key = transfer.ephemeralPublicKey {
                out.append(StealthAnnouncement(transaction: receipt.transactionID, ephemeralKey: key))
            }
        }
        return out
    }

    public static func encode(_ list: [StealthAnnouncement]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(list.count * StealthAnnouncement.encodedLength)
        for a in list {
            out += a.transaction.bytes
            out += a.ephemeralKey.compressed
        }
        return out
    }

    /// The list from its encoding; throws for a length that is not a whole number of announcements or a key that
    /// is not a point.
    public static func decode(_ bytes: [UInt8]) throws(CodecError) -> [StealthAnnouncement] {
        guard bytes.count % StealthAnnouncement.encodedLength == 0 else { throw .truncated }
        var out: [StealthAnnouncement] = []
        var at = 0
        while at < bytes.count {
            guard let key = try? PublicKey(compressed: Array(bytes[at + 32..<at + 65])) else {
                throw .invalidValue(.publicKey)
            }
            out.append(StealthAnnouncement(transaction: Bytes32(bytes[at..<at + 32])!, ephemeralKey: key))
            at += StealthAnnouncement.encodedLength
        }
        return out
    }

    /// The committed value.
    public static func hash(_ list: [StealthAnnouncement]) -> Bytes32 {
        Domain.stealthAnnouncements.hash(encode(list))
    }

    /// The state tree key of `epoch`'s record (the identifier is the epoch, as for ``RecipientFilter``).
    public static func stateKey(epoch: UInt64) -> Bytes32 {
        StateNamespace.stealthAnnouncements.key(RecipientFilter.stateIdentifier(epoch: epoch))
    }
}
