import AmarsCodec
import Foundation
import Ledger

#if canImport(Glibc)
    import Glibc
#endif

/// Where a channel party keeps the newest update of each channel: one `<channel id>.update` file of hex per
/// channel in a folder. Each store replaces the file in one rename, so a crash leaves the old update or the new
/// one, never a torn file; a recipient that loses power loses at most the payments after its last store.
public struct ChannelFolder: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public enum Failure: Error, CustomStringConvertible {
        case io(String, errno: Int32)
        case unreadable(String, reason: String)

        public var description: String {
            switch self {
            case .io(let what, let errno): "\(what): \(String(cString: strerror(errno)))"
            case .unreadable(let file, let reason): "the stored update \(file) is unreadable: \(reason)"
            }
        }
    }

    public func file(_ id: Bytes32) -> String { (path as NSString).appendingPathComponent(Hex.encode(id.bytes) + ".update") }

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

    /// Replaces the kept update of `update`'s channel: written to a temporary file beside it, then renamed over it.
    public func store(_ update: ChannelUpdate) throws(Failure) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .io("cannot create \(path)", errno: errno) }
        let target = file(update.channelID)
        let staged = target + ".tmp"
        let fd = open(staged, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("cannot write \(staged)", errno: errno) }
        let bytes = Array((Hex.encode(update.encoded) + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let writeErrno = errno
        guard close(fd) == 0, written == bytes.count else {
            unlink(staged)
            throw .io("cannot write \(staged)", errno: written < 0 ? writeErrno : EIO)
        }
        guard rename(staged, target) == 0 else { throw .io("cannot replace \(target)", errno: errno) }
    }
}
