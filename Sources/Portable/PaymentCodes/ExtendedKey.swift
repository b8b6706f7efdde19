import AmarsCodec
import AmarsCrypto

/// A BIP32 node with its secret: a key and a chain code. Payment codes are BIP32 nodes, and BIP47's test vectors
/// are stated over BIP32 derivation, so it is implemented exactly as published (checked against BIP32's vectors).
public struct ExtendedPrivateKey: Sendable {
    public let key: PrivateKey
    public let chainCode: Bytes32

    /// Indices at or above this are hardened children (written `i'` or `iH`).
    public static let hardened: UInt32 = 0x8000_0000

    public init(key: PrivateKey, chainCode: Bytes32) {
        self.key = key
        self.chainCode = chainCode
    }

    /// The master node of a seed (16 to 64 bytes in BIP32; any length is hashed the same way).
    public init(seed: [UInt8]) throws(PaymentCodeError) {
        let i = HMAC.sha512(key: Array("Bitcoin seed".utf8), message: seed)
        guard let left = Bytes32(i[0..<32]), let key = try? PrivateKey(bytes: left) else {
            throw .invalidChild(index: 0)
        }
        self.init(key: key, chainCode: Bytes32(i[32..<64])!)
    }

    /// CKDpriv. Throws `.invalidChild` in the 2^-127 case BIP32 tells callers to skip.
    public func child(_ index: UInt32) throws(PaymentCodeError) -> ExtendedPrivateKey {
        var data: [UInt8]
        if index >= Self.hardened {
            data = [0]
            data.append(contentsOf: key.secret.bytes)
        } else {
            data = key.publicKey.compressed
        }
        appendBigEndian(index, to: &data)
        let i = HMAC.sha512(key: chainCode.bytes, message: data)
        guard let child = try? key.tweakAdded(Bytes32(i[0..<32])!) else { throw .invalidChild(index: index) }
        return ExtendedPrivateKey(key: child, chainCode: Bytes32(i[32..<64])!)
    }

    /// The node at `path` below this one, e.g. `[47 | hardened, 1717 | hardened, 0 | hardened]`.
    public func derive(_ path: [UInt32]) throws(PaymentCodeError) -> ExtendedPrivateKey {
        var node = self
        for index in path { node = try node.child(index) }
        return node
    }

    /// The same node without its secret (BIP32's N()).
    public var publicNode: ExtendedPublicKey { ExtendedPublicKey(key: key.publicKey, chainCode: chainCode) }
}

/// A BIP32 node without its secret: anyone holding it derives the public keys of its non-hardened children.
public struct ExtendedPublicKey: Equatable, Sendable {
    public let key: PublicKey
    public let chainCode: Bytes32

    public init(key: PublicKey, chainCode: Bytes32) {
        self.key = key
        self.chainCode = chainCode
    }

    /// CKDpub: non-hardened children only.
    public func child(_ index: UInt32) throws(PaymentCodeError) -> ExtendedPublicKey {
        guard index < ExtendedPrivateKey.hardened else { throw .hardenedFromPublicKey(index: index) }
        var data = key.compressed
        appendBigEndian(index, to: &data)
        let i = HMAC.sha512(key: chainCode.bytes, message: data)
        guard let child = try? key.tweakAdded(Bytes32(i[0..<32])!) else { throw .invalidChild(index: index) }
        return ExtendedPublicKey(key: child, chainCode: Bytes32(i[32..<64])!)
    }
}

func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
    bytes.append(UInt8(truncatingIfNeeded: value >> 24))
    bytes.append(UInt8(truncatingIfNeeded: value >> 16))
    bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    bytes.append(UInt8(truncatingIfNeeded: value))
}
