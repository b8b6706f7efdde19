import AmarsCodec

/// Several encoded transactions in one payload: a count (varint, at least 1), then each transaction
/// length-prefixed. Gateways gossip batches to each other and clients submit them (`POST /v1/txs`); the items
/// stay bytes, because each is decoded and verified by whoever admits it.
public enum TransactionBatch {
    public static func encode(_ items: [[UInt8]]) -> [UInt8] {
        var w = ByteWriter(capacity: items.reduce(4) { $0 + $1.count + 3 })
        w.writeVarint(UInt64(items.count))
        for bytes in items { w.writeLengthPrefixed(bytes) }
        return w.bytes
    }

    /// Refuses an empty batch, more than `maxCount` items, an empty or over-long item, and trailing bytes.
    public static func decode(_ bytes: [UInt8], maxCount: Int) throws(CodecError) -> [[UInt8]] {
        var r = ByteReader(bytes)
        let items = try decode(from: &r, maxCount: maxCount)
        try r.finish()
        return items
    }

    public static func decode(from r: inout ByteReader, maxCount: Int) throws(CodecError) -> [[UInt8]] {
        let count = try r.readVarint()
        guard count >= 1, count <= UInt64(maxCount) else { throw .invalidValue(.range) }
        var items: [[UInt8]] = []
        items.reserveCapacity(Int(count))
        for _ in 0..<count {
            let item = try r.readLengthPrefixed(cap: Caps.transactionBytes)
            guard !item.isEmpty else { throw .truncated }
            items.append(item)
        }
        return items
    }
}
