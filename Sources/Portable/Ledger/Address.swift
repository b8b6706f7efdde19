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

    @inlinable
    public init(raw: Bytes20) { self.raw = raw }

    public init(publicKey: XOnlyPublicKey) { self.init(keyBytes: publicKey.bytes) }

    /// The address the x-only key `bytes` has, without checking that they are a key: for keys already parsed (a
    /// stored transaction's sender) or parsed later (an MQTT submit's, at its signature check). Parsing a key
    /// costs a square root, a tenth of a signature check.
    public init(keyBytes bytes: Bytes32) {
        let digest = Domain.address.hash(bytes.bytes)
        raw = Bytes20(hi: digest.w0, mid: digest.w1, lo: UInt32(truncatingIfNeeded: digest.w2 >> 32))
    }

    public init(bech32 text: String) throws(Bech32Error) {
        let data = try Bech32m.decodeBytes(text, expectedHRP: Address.humanReadablePart)
        guard let raw = Bytes20(data) else { throw .wrongDataLength(data.count) }
        self.raw = raw
    }

    public var bech32: String { Bech32m.encode(hrp: Address.humanReadablePart, bytes: raw.bytes) }

    /// ``bech32`` as ASCII bytes, built without a String: a board names its account in a certificate with it and
    /// links none of String's Unicode code.
    public var bech32ASCII: [UInt8] {
        Bech32m.encodeASCII(hrp: [0x61, 0x6D, 0x73, 0x63], fiveBitData: Bech32m.fiveBitGroups(from: raw.bytes))
    }

    public static func < (a: Address, b: Address) -> Bool { a.raw < b.raw }

    public func encode(to writer: inout ByteWriter) { writer.write(raw) }
    public init(from reader: inout ByteReader) throws(CodecError) { raw = try reader.readBytes20() }
}
