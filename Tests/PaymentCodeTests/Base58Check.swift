import AmarsCodec
import AmarsCrypto

/// Base58Check, for reading the published vectors only: BIP32's xprv/xpub, BIP47's "PM8T…" codes and P2PKH
/// addresses are written in it. The chain itself never uses base58.
enum Base58Check {
    static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)

    /// The payload (version byte included) or nil for a bad character or checksum.
    static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for c in text.utf8 {
            guard let digit = alphabet.firstIndex(of: c) else { return nil }
            var carry = digit
            for i in bytes.indices.reversed() {
                carry += Int(bytes[i]) * 58
                bytes[i] = UInt8(carry & 0xFF)
                carry >>= 8
            }
            while carry > 0 {
                bytes.insert(UInt8(carry & 0xFF), at: 0)
                carry >>= 8
            }
        }
        let zeros = text.utf8.prefix { $0 == alphabet[0] }.count
        bytes = [UInt8](repeating: 0, count: zeros) + bytes
        guard bytes.count >= 4 else { return nil }
        let payload = Array(bytes.dropLast(4))
        let check = SHA256.hash(SHA256.hash(payload).bytes).bytes.prefix(4)
        guard Array(check) == Array(bytes.suffix(4)) else { return nil }
        return payload
    }
}
