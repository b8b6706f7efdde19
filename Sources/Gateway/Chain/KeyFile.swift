import AmarsCodec
import AmarsCrypto
import Foundation

/// A secret key on disk, readable by the owner only: either an encrypted keystore (``Keystore``, what
/// `amars key new` writes) or one line of hex (what `amars genesis new` writes for a devnet, and what
/// `amars key import` takes in).
///
/// Every reader of a key goes through ``load(_:passphrase:)``, so a command never needs to know which form a
/// file has: a keystore asks for its passphrase, a hex file does not.
public enum KeyFile {
    public enum KeyFileError: Error, CustomStringConvertible, Equatable {
        case unreadable(String)
        case malformed(String)
        case exists(String)
        case unwritable(String)
        /// The file is a keystore but nothing gave a passphrase.
        case passphraseNeeded(String)
        case keystore(String, Keystore.Failure)

        public var description: String {
            switch self {
            case .unreadable(let p): "cannot read key file \(p)"
            case .malformed(let p):
                "key file \(p) must be an amars keystore or hold one line of 64 hex digits (a valid secp256k1 secret)"
            case .exists(let p): "\(p) already exists; refusing to overwrite a key"
            case .unwritable(let p): "cannot write key file \(p)"
            case .passphraseNeeded(let p):
                "\(p) is an encrypted keystore and no passphrase was given: set AMARS_PASSPHRASE_FILE to a file "
                    + "holding it (or AMARS_PASSPHRASE)"
            case .keystore(let p, let failure): "\(p): \(failure)"
            }
        }
    }

    /// Reads a key. `passphrase` is asked only when the file is a keystore (and at most once); nil from it
    /// means no passphrase is available.
    public static func load(_ path: String, passphrase: () -> String? = { nil }) throws(KeyFileError) -> PrivateKey {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        guard data.count <= Keystore.maxFileBytes else { throw .malformed(path) }
        let bytes = [UInt8](data)
        if Keystore.isJSON(bytes) {
            // Checked before the passphrase is asked: a damaged keystore or another JSON file (a genesis given
            // as a key) is refused without anyone typing a passphrase for it.
            let sealed: Keystore.Sealed
            do { sealed = try Keystore.Sealed(bytes) } catch {
                throw error == .notAKeystore ? .malformed(path) : .keystore(path, error)
            }
            guard let secret = passphrase() else { throw .passphraseNeeded(path) }
            do { return try sealed.open(passphrase: secret) } catch { throw .keystore(path, error) }
        }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = try? Hex.decode(text, maxBytes: 32), let secret = Bytes32(raw),
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

    /// Writes a new key file with mode 0600; never overwrites. With a passphrase the file is a keystore;
    /// without one it is plain hex (devnet keys only).
    public static func write(_ key: PrivateKey, to path: String, passphrase: String? = nil) throws(KeyFileError) {
        let contents: [UInt8]
        if let passphrase {
            do { contents = try Keystore.seal(key, passphrase: passphrase) } catch { throw .keystore(path, error) }
        } else {
            contents = Array((Hex.encode(key.secret.bytes) + "\n").utf8)
        }
        let fm = FileManager.default
        guard !fm.fileExists(atPath: path) else { throw .exists(path) }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        guard fm.createFile(atPath: path, contents: Data(contents), attributes: [.posixPermissions: 0o600]) else {
            throw .unwritable(path)
        }
    }

    /// The passphrase the environment gives, for programs that run unattended (amarsd under systemd, scripts):
    /// the first line of the file `AMARS_PASSPHRASE_FILE` names, else `AMARS_PASSPHRASE`; nil when neither is
    /// set. An unreadable passphrase file is nil too, and the caller reports the keystore as needing one.
    public static func environmentPassphrase(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String?
    {
        if let file = environment["AMARS_PASSPHRASE_FILE"] { return passphrase(fromFile: file) }
        return environment["AMARS_PASSPHRASE"]
    }

    /// A passphrase file's first line (without its newline), as `systemd-creds` or `echo … >` write it; nil when
    /// the file cannot be read.
    public static func passphrase(fromFile path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        // `isNewline` covers "\n" and the single Character "\r\n", so a file saved with CRLF gives the same line.
        return String(text.prefix { !$0.isNewline })
    }
}
