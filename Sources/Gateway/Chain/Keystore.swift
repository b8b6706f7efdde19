import AmarsCodec
import AmarsCrypto
import CSodium
import Foundation
import Ledger

/// An encrypted secret key: the key sealed with XChaCha20-Poly1305 under a key stretched from a passphrase by
/// Argon2id, both from libsodium (checked against their published vectors in `ChainTests/KeystoreTests`).
///
/// The file is one JSON object, so a person can see what it is and whose key it holds without the passphrase:
///
///     {"amarsKeystore":1,"address":"amsc1…","kdf":"argon2id","opsLimit":3,"memLimit":67108864,
///      "salt":"<16 bytes hex>","cipher":"xchacha20poly1305","nonce":"<24 bytes hex>",
///      "ciphertext":"<48 bytes hex>","check":"<32 bytes hex>"}
///
/// Argon2id yields 64 bytes: the first 32 are the cipher key, the hash of the last 32 is `check`. `check` lets
/// a wrong passphrase be told apart from a file someone changed: a wrong passphrase fails `check`, while a
/// changed ciphertext, nonce, address or parameter passes `check` (or fails it, if the KDF inputs changed) and
/// then fails authentication, because every field is bound into the cipher as associated data. `check` tells
/// an attacker nothing the ciphertext's tag does not already: both only let a guess be tested at Argon2id's cost.
public enum Keystore {
    public static let version = 1
    /// libsodium's "moderate" operations limit with 64 MiB: about half a second here, once per command.
    public static let defaultOpsLimit: UInt64 = 3
    public static let defaultMemLimit: UInt64 = 64 << 20
    /// The most a file may ask for: a hostile keystore cannot make a reader spend more than 1 GiB or minutes.
    static let maxOpsLimit: UInt64 = 16
    static let maxMemLimit: UInt64 = 1 << 30
    static let maxFileBytes = 4096

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Not a complete keystore: cut short, not JSON, or a field missing or of the wrong size.
        case truncated(String)
        /// Complete JSON, but not a keystore (another JSON file given as a key).
        case notAKeystore
        case unsupportedVersion(Int)
        /// KDF or cipher parameters this reader does not accept (unknown names, limits out of range).
        case unsupportedParameters(String)
        case wrongPassphrase
        /// The passphrase is right but the sealed key or its fields fail authentication.
        case tampered
        case emptyPassphrase
        /// Argon2id could not run (libsodium failed to start, or the memory it needs was not available).
        case kdfFailed

        public var description: String {
            switch self {
            case .truncated(let why): "the keystore is truncated or damaged (\(why)); restore it from a backup"
            case .notAKeystore: "this JSON file is not an amars keystore"
            case .unsupportedVersion(let v):
                "keystore version \(v) is not supported (this amars reads version \(Keystore.version))"
            case .unsupportedParameters(let why): "the keystore's parameters are not accepted: \(why)"
            case .wrongPassphrase: "wrong passphrase"
            case .tampered:
                "the keystore was tampered with: the passphrase is right but the sealed key fails authentication"
            case .emptyPassphrase: "the passphrase is empty; choose one"
            case .kdfFailed: "Argon2id could not run (not enough memory for the keystore's memLimit?)"
            }
        }
    }

    /// Whether `bytes` is JSON (a keystore, or another JSON file given as a key) rather than a hex key file.
    static func isJSON(_ bytes: [UInt8]) -> Bool {
        bytes.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{")
    }

    fileprivate struct Fields {
        var address: String
        var opsLimit: UInt64
        var memLimit: UInt64
        var salt: [UInt8]
        var nonce: [UInt8]

        /// Every field the cipher binds, in one fixed order.
        var associatedData: [UInt8] {
            Array(
                "amarsKeystore/\(Keystore.version)|\(address)|argon2id|\(opsLimit)|\(memLimit)|\(Hex.encode(salt))|xchacha20poly1305|\(Hex.encode(nonce))"
                    .utf8)
        }
    }

    fileprivate static func ready() throws(Failure) {
        guard sodium_init() >= 0 else { throw .kdfFailed }
    }

    /// Argon2id over the passphrase: 32 bytes of cipher key, then the check value.
    fileprivate static func derive(_ passphrase: String, _ f: Fields) throws(Failure) -> (key: [UInt8], check: [UInt8])
    {
        var out = [UInt8](repeating: 0, count: 64)
        var pass = Array(passphrase.utf8CString)
        defer { sodium_memzero(&pass, pass.count) }
        let status = crypto_pwhash(
            &out, 64, pass, UInt64(pass.count - 1), f.salt, f.opsLimit, Int(f.memLimit), crypto_pwhash_ALG_ARGON2ID13)
        guard status == 0 else { throw .kdfFailed }
        var check = [UInt8](repeating: 0, count: 32)
        let tail = Array(out[32...])
        crypto_generichash(&check, 32, tail, UInt64(tail.count), nil, 0)
        let key = Array(out[..<32])
        sodium_memzero(&out, out.count)
        return (key, check)
    }

    /// Seals `key` under `passphrase` with fresh salt and nonce; returns the file's bytes.
    public static func seal(
        _ key: PrivateKey, passphrase: String, opsLimit: UInt64 = defaultOpsLimit, memLimit: UInt64 = defaultMemLimit
    ) throws(Failure) -> [UInt8] {
        try ready()
        guard !passphrase.isEmpty else { throw .emptyPassphrase }
        var salt = [UInt8](repeating: 0, count: Int(crypto_pwhash_SALTBYTES))
        var nonce = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        randombytes_buf(&salt, salt.count)
        randombytes_buf(&nonce, nonce.count)
        let fields = Fields(
            address: Address(publicKey: key.xOnlyPublicKey).bech32, opsLimit: opsLimit, memLimit: memLimit,
            salt: salt, nonce: nonce)
        var (cipherKey, check) = try derive(passphrase, fields)
        defer { sodium_memzero(&cipherKey, cipherKey.count) }
        let secret = key.secret.bytes
        var sealed = [UInt8](repeating: 0, count: secret.count + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES))
        var sealedCount: UInt64 = 0
        let ad = fields.associatedData
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            &sealed, &sealedCount, secret, UInt64(secret.count), ad, UInt64(ad.count), nil, nonce, cipherKey)
        let text = """
            {"amarsKeystore":\(version),"address":"\(fields.address)","kdf":"argon2id","opsLimit":\(opsLimit),\
            "memLimit":\(memLimit),"salt":"\(Hex.encode(salt))","cipher":"xchacha20poly1305",\
            "nonce":"\(Hex.encode(nonce))","ciphertext":"\(Hex.encode(sealed))","check":"\(Hex.encode(check))"}

            """
        return Array(text.utf8)
    }

    /// Opens a keystore file's bytes with `passphrase`.
    public static func open(_ bytes: [UInt8], passphrase: String) throws(Failure) -> PrivateKey {
        try Sealed(bytes).open(passphrase: passphrase)
    }

    /// A keystore file read and checked field by field, before any passphrase is asked: a damaged or foreign
    /// file is refused without making anyone type a passphrase for it.
    public struct Sealed {
        fileprivate let fields: Fields
        fileprivate let sealed: [UInt8]
        fileprivate let check: [UInt8]

        public init(_ bytes: [UInt8]) throws(Failure) {
            guard bytes.count <= maxFileBytes,
                let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            else { throw .truncated("it is not a complete JSON object") }
            guard let version = object["amarsKeystore"] as? Int else { throw .notAKeystore }
            guard version == Keystore.version else { throw .unsupportedVersion(version) }
            func text(_ name: String) throws(Failure) -> String {
                guard let value = object[name] as? String else { throw .truncated("no \(name)") }
                return value
            }
            func hex(_ name: String, count: Int) throws(Failure) -> [UInt8] {
                guard let value = try? Hex.decode(try text(name), maxBytes: count), value.count == count else {
                    throw .truncated("\(name) is not \(count) bytes of hex")
                }
                return value
            }
            func limit(_ name: String) throws(Failure) -> UInt64 {
                guard let value = object[name] as? NSNumber, let n = UInt64(exactly: value.doubleValue) else {
                    throw .truncated("no \(name)")
                }
                return n
            }
            guard try text("kdf") == "argon2id" else { throw .unsupportedParameters("kdf must be argon2id") }
            guard try text("cipher") == "xchacha20poly1305" else {
                throw .unsupportedParameters("cipher must be xchacha20poly1305")
            }
            fields = Fields(
                address: try text("address"), opsLimit: try limit("opsLimit"), memLimit: try limit("memLimit"),
                salt: try hex("salt", count: Int(crypto_pwhash_SALTBYTES)),
                nonce: try hex("nonce", count: Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)))
            sealed = try hex("ciphertext", count: 32 + Int(crypto_aead_xchacha20poly1305_ietf_ABYTES))
            check = try hex("check", count: 32)
            guard fields.opsLimit >= UInt64(crypto_pwhash_OPSLIMIT_MIN), fields.opsLimit <= maxOpsLimit,
                fields.memLimit >= UInt64(crypto_pwhash_MEMLIMIT_MIN), fields.memLimit <= maxMemLimit
            else {
                throw .unsupportedParameters(
                    "opsLimit must be 1...\(maxOpsLimit) and memLimit 8 KiB...1 GiB (got \(fields.opsLimit), \(fields.memLimit))"
                )
            }
        }

        public func open(passphrase: String) throws(Failure) -> PrivateKey {
            try ready()
            var (cipherKey, expected) = try derive(passphrase, fields)
            defer { sodium_memzero(&cipherKey, cipherKey.count) }
            guard sodium_memcmp(expected, check, 32) == 0 else { throw .wrongPassphrase }
            expected = []
            var secret = [UInt8](repeating: 0, count: 32)
            defer { sodium_memzero(&secret, secret.count) }
            var secretCount: UInt64 = 0
            let ad = fields.associatedData
            guard
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    &secret, &secretCount, nil, sealed, UInt64(sealed.count), ad, UInt64(ad.count), fields.nonce,
                    cipherKey) == 0, secretCount == 32, let raw = Bytes32(secret),
                let key = try? PrivateKey(bytes: raw),
                Address(publicKey: key.xOnlyPublicKey).bech32 == fields.address
            else { throw .tampered }
            return key
        }
    }
}
