import AmarsCodec
import AmarsCrypto

/// The outcome of one included transaction, committed to by the header's receipts root.
public struct Receipt: Equatable, Sendable, CanonicalCodable {
    public enum Status: UInt8, Sendable {
        case success = 0
        /// Included and charged, but the payload had no effect (an expired HTLC claim, say).
        case failed = 1
    }

    public var transactionID: Bytes32
    public var status: Status
    public var unitsUsed: UInt64
    public var feePaid: UInt64

    public init(transactionID: Bytes32, status: Status, unitsUsed: UInt64, feePaid: UInt64) {
        self.transactionID = transactionID
        self.status = status
        self.unitsUsed = unitsUsed
        self.feePaid = feePaid
    }

    public static func root(_ receipts: [Receipt]) -> Bytes32 {
        MerkleTree.root(leaves: receipts.map { MerkleTree.leafHash($0.encoded) })
    }

    public func encode(to w: inout ByteWriter) {
        w.write(transactionID)
        w.write(status.rawValue)
        w.writeVarint(unitsUsed)
        w.writeVarint(feePaid)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        transactionID = try r.readBytes32()
        let s = try r.readU8()
        guard let status = Status(rawValue: s) else { throw .unknownTag(s) }
        self.status = status
        unitsUsed = try r.readVarint()
        feePaid = try r.readVarint()
    }
}
