/// Why a canonical decoding was refused.
///
/// Every case names something a caller can act on (drop the frame, score the peer, answer 4.00); none of
/// them carries untrusted bytes, so an error can be logged or counted without copying attacker data.
public enum CodecError: Error, Equatable, Sendable {
    /// The input ended before a field was complete.
    case truncated
    /// Bytes remained after the value was fully decoded.
    case trailingBytes(count: Int)
    /// A varint used more bytes than its value needs (a second encoding of the same number).
    case nonMinimalVarint
    /// A varint does not fit in 64 bits.
    case varintOverflow
    /// A length or count exceeded the cap set for that field.
    case lengthOverCap(length: UInt64, cap: Int)
    /// A tag or enum discriminant that this version does not know.
    case unknownTag(UInt8)
    /// A boolean or option flag other than 0 or 1.
    case invalidFlag(UInt8)
    /// A field whose value is out of its domain (zero where not allowed, unsorted list, duplicate).
    case invalidValue(Field)

    /// The field a ``CodecError/invalidValue(_:)`` refers to, as a small closed set rather than a string.
    public enum Field: UInt8, Sendable {
        case version
        case amount
        case signature
        case publicKey
        case ordering
        case duplicate
        case range
        case text
    }
}
