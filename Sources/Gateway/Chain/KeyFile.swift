import AmarsCodec
import AmarsCrypto
import Foundation

/// A secret key on disk: one line of hex, readable by the owner only.
public enum KeyFile {
    public enum KeyFileError: Error, CustomStringConvertible {
        case unreadable(String)
        case malformed(String)
        case exists(String)
        case unwritable(String)

        public var description: String {
            switch self {
            case .unreadable(let p): "cannot read key file \(p)"
            case .malformed(let p): "key file \(p) must hold one line of 64 hex digits (a valid secp256k1 secret)"
            case .exists(let p): "\(p) already exists; refusing to overwrite a key"
            case .unwritable(let p): "cannot write key file \(p)"
            }
        }
    }

    public static func load(_ path: String) throws(KeyFileError) -> PrivateKey {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .unreadable(path) }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = try? Hex.decode(trimmed, maxBytes: 32), let secret = Bytes32(bytes),
            let key = try? PrivateKey(bytes: secret)
        else { throw .malformed(path) }
        return key
    }

    /// Draws a fresh key from the system's secure generator.
    public static func generate() -> PrivateKey {
        var rng = SystemRandomNumberGenerator()
        while true {
            let secret = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
            if let key = try? PrivateKey(bytes: secret) { return key }
        }
    }

    /// Writes a new key file with mode 0600; never overwrites.
    public static func write(_ key: PrivateKey, to path: String) throws(KeyFileError) {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: path) else { throw .exists(path) }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let data = Data((Hex.encode(key.secret.bytes) + "\n").utf8)
        guard fm.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw .unwritable(path)
        }
    }
}
