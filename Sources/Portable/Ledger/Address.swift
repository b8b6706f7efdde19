import AmarsCodec
import AmarsCrypto

/// An account: the first 20 bytes of a tagged hash of its owner's x-only public key.
///
/// Hashing the key (rather than using it) keeps addresses short on device screens and QR codes, and keeps
/// a future key-type change from changing the address format.
public struct Address: Hashable, Comparable, Sendable, CanonicalCodable {
    public var raw: Bytes20

    /// The human-readable part of every bech32m address of this chain.
    public static let humanReadablePart = "amsc"
    /// ``humanReadablePart`` as bytes, so a device encodes addresses without String.
    static let humanReadableASCII: [UInt8] = [0x61, 0x6D, 0x73, 0x63]

    @inlinable
    public init(raw: Bytes20) { self.raw = raw }

    public init(publicKey: XOnlyPublicKey) {
        let digest = Domain.address.hash(publicKey.bytes.bytes)
        raw = Bytes20(hi: digest.w0, mid: digest.w1, lo: UInt32(truncatingIfNeeded: digest.w2 >> 32))
    }

    public init(bech32 text: String) throws(Bech32Error) {
        let data = try Bech32m.decodeBytes(text, expectedHRP: Address.humanReadablePart)
        guard let raw = Bytes20(data) else { throw .wrongDataLength(data.count) }
        self.raw = raw
    }

    public var bech32: String { Bech32m.encode(hrp: Address.humanReadablePart, bytes: raw.bytes) }

    /// ``bech32`` as ASCII bytes, for a device that sends it without building a String.
    public var bech32ASCII: [UInt8] {
        Bech32m.encodeASCII(hrp: Self.humanReadableASCII, fiveBitData: Bech32m.fiveBitGroups(from: raw.bytes))
    }

    public static func < (a: Address, b: Address) -> Bool { a.raw < b.raw }

    public func encode(to writer: inout ByteWriter) { writer.write(raw) }
    public init(from reader: inout ByteReader) throws(CodecError) { raw = try reader.readBytes20() }
}
