import AmarsCodec
import AmarsCrypto

/// A payment-code notification as the state keeps it for its notification address: the i-th record under
/// ``StateNamespace/paymentNotification`` (identifier: the address, then i as 8 big-endian bytes) and the count
/// of records (identifier: the address alone).
///
/// Kept in the state, not only in blocks, so a device proves its notifications against the state root of the
/// newest header it verified, however old they are: a light client that synced or skipped past a block can no
/// longer check that block's header, so an inclusion proof would not do.
public struct PaymentNotificationRecord: Equatable, Sendable, CanonicalCodable {
    /// The notification's signer (x-only): the designated key of the mask.
    public var sender: Bytes32
    public var nonce: UInt64
    public var maskedCode: [UInt8]

    public init(sender: Bytes32, nonce: UInt64, maskedCode: [UInt8]) {
        self.sender = sender
        self.nonce = nonce
        self.maskedCode = maskedCode
    }

    public func encode(to w: inout ByteWriter) {
        w.write(sender)
        w.writeVarint(nonce)
        w.write(maskedCode)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        sender = try r.readBytes32()
        nonce = try r.readVarint()
        maskedCode = try r.readBytes(PaymentCodeNotify.maskedCodeBytes)
    }

    /// The identifier of `address`'s record count.
    public static func countIdentifier(_ address: Address) -> [UInt8] { address.raw.bytes }

    /// The identifier of `address`'s record `index`.
    public static func recordIdentifier(_ address: Address, index: UInt64) -> [UInt8] {
        var id = address.raw.bytes
        for shift in stride(from: 56, through: 0, by: -8) {
            id.append(UInt8(truncatingIfNeeded: index >> UInt64(shift)))
        }
        return id
    }

    /// The count as stored: a varint (absent while zero).
    public static func encodeCount(_ count: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 10)
        w.writeVarint(count)
        return w.bytes
    }
}
