import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger

#if canImport(Glibc)
    import Glibc
#endif

/// Where a channel party keeps the newest update of each channel: one `<channel id>.update` file of hex per
/// channel in a folder. Each store replaces the file in one rename after flushing it, so a crash or a power cut
/// leaves the old update or the new one, never a torn file, and a stored update stays stored.
public struct ChannelFolder: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public enum Failure: Error, CustomStringConvertible {
        case io(String, errno: Int32)
        case unreadable(String, reason: String)
        /// The update is in place, but the folder could not be flushed: it may not survive a power cut. Not a
        /// reason to do the payment again.
        case notFlushed(String, errno: Int32)

        public var description: String {
            switch self {
            case .io(let what, let errno): "\(what): \(String(cString: strerror(errno)))"
            case .unreadable(let file, let reason): "the stored update \(file) is unreadable: \(reason)"
            case .notFlushed(let folder, let errno):
                "the update is stored, but \(folder) could not be flushed (\(String(cString: strerror(errno)))): "
                    + "it may not survive a power cut"
            }
        }
    }

    /// The last channel-door message fetched for channel `id` from `gateway` (0: none yet). Sequences are one
    /// gateway's, so each gateway has its own cursor.
    public func cursor(_ id: Bytes32, gateway: String) throws(Failure) -> UInt64 {
        let name = cursorFile(id, gateway: gateway)
        guard FileManager.default.fileExists(atPath: name) else { return 0 }
        guard let text = try? String(contentsOfFile: name, encoding: .utf8),
            let value = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw .unreadable(name, reason: "not a sequence number") }
        return value
    }

    /// Keeps the cursor (written beside and renamed over: a torn write leaves the previous one). A lost cursor only
    /// makes the next fetch judge messages again, which keeps nothing worse than the update held.
    public func setCursor(_ id: Bytes32, _ sequence: UInt64, gateway: String) throws(Failure) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .io("cannot create \(path)", errno: errno) }
        let name = cursorFile(id, gateway: gateway)
        do { try Data("\(sequence)\n".utf8).write(to: URL(fileURLWithPath: name), options: .atomic) } catch {
            throw .io("cannot write \(name)", errno: EIO)
        }
    }

    /// `<channel id>.<8 hex digits of SHA-256 of the gateway's endpoint>.cursor`.
    private func cursorFile(_ id: Bytes32, gateway: String) -> String {
        let tag = Hex.encode(Array(SHA256.hash(Array(gateway.utf8)).bytes.prefix(4)))
        return (path as NSString).appendingPathComponent(Hex.encode(id.bytes) + ".\(tag).cursor")
    }

    public func file(_ id: Bytes32) -> String {
        (path as NSString).appendingPathComponent(Hex.encode(id.bytes) + ".update")
    }

    /// The newest update kept for channel `id`, or nil when none is.
    public func load(_ id: Bytes32) throws(Failure) -> ChannelUpdate? {
        let name = file(id)
        guard FileManager.default.fileExists(atPath: name) else { return nil }
        guard let text = try? String(contentsOfFile: name, encoding: .utf8) else {
            throw .unreadable(name, reason: "not text")
        }
        guard let raw = try? Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .unreadable(name, reason: "not hex")
        }
        do { return try ChannelUpdate(decoding: raw) } catch { throw .unreadable(name, reason: "\(error)") }
    }

    /// Replaces the kept update of `update`'s channel: written and flushed to a temporary file of its own beside
    /// it, renamed over it, and the folder flushed, so the new update survives a power cut once this returns.
    public func store(_ update: ChannelUpdate) throws(Failure) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .io("cannot create \(path)", errno: errno) }
        let target = file(update.channelID)
        var template = Array((target + ".XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .io("cannot write beside \(target)", errno: errno) }
        let staged = String(cString: template)
        let bytes = Array((Hex.encode(update.encoded) + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let flushed = written == bytes.count && fsync(fd) == 0
        let failure = errno
        guard close(fd) == 0, flushed else {
            unlink(staged)
            throw .io("cannot write \(staged)", errno: written < 0 || !flushed ? failure : EIO)
        }
        guard rename(staged, target) == 0 else {
            let failure = errno
            unlink(staged)
            throw .io("cannot replace \(target)", errno: failure)
        }
        let folder = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { throw .notFlushed(path, errno: errno) }
        defer { close(folder) }
        guard fsync(folder) == 0 else { throw .notFlushed(path, errno: errno) }
    }

    /// Runs `body` holding the folder's lock (`flock` on `.lock` in it), so two commands on one party's folder
    /// cannot interleave a load, a check and a store and keep the worse update.
    public func locked<T>(_ body: () throws -> T) throws -> T {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw Failure.io("cannot create \(path)", errno: errno) }
        let lockFile = (path as NSString).appendingPathComponent(".lock")
        let fd = open(lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure.io("cannot open \(lockFile)", errno: errno) }
        defer { close(fd) }  // closing releases the lock
        guard flock(fd, LOCK_EX) == 0 else { throw Failure.io("cannot lock \(lockFile)", errno: errno) }
        return try body()
    }
}
