import Chain
import Foundation
import Logging

/// Why `amarsd` stopped before serving: one line on stderr saying what to fix, and an exit status a supervisor
/// (systemd's `Restart=on-failure`, a script) can tell apart, from sysexits.h:
///
///   78  configuration: a flag, the node config, the genesis, a key, PSK or credentials file is missing or wrong
///   74  storage: the data directory or its SQLite file cannot be opened or written
///   69  unavailable: a port is taken, the broker or a door will not start
///   65  chain refused: the stored chain belongs to another genesis, or its state does not match its head
public struct StartupFailure: Error, CustomStringConvertible {
    public enum Kind: Int32, Sendable {
        case configuration = 78
        case storage = 74
        case unavailable = 69
        case chainRefused = 65
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Opening the node (genesis, key, data directory, SQLite, the stored chain), sorted by what to fix.
    public static func opening(_ error: any Error) -> StartupFailure {
        let kind: Kind
        switch error {
        case let failure as StartupFailure: return failure
        case let node as ChainNode.NodeError:
            switch node {
            case .store: kind = .storage
            case .genesisMismatch, .corruptState, .invalidBlock: kind = .chainRefused
            case .invalidGenesis, .notAValidator, .notInCommittee, .cannotFinalizeAlone: kind = .configuration
            }
        case is Genesis.FileError, is KeyFile.KeyFileError, is NodeConfig.ConfigError: kind = .configuration
        default: kind = .storage  // the data directory or the SQLite file
        }
        return StartupFailure(kind, "\(error)")
    }

    /// Creates the data directory (`create`), or only checks that it could be used (`--check`: an existing one
    /// must be a writable directory); says in one line why not.
    public static func dataDirectory(_ path: String, create: Bool = true) throws(StartupFailure) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StartupFailure(.storage, "the data directory \(path) is a file") }
            guard create || FileManager.default.isWritableFile(atPath: path) else {
                throw StartupFailure(.storage, "the data directory \(path) is not writable")
            }
        }
        guard create else { return }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw StartupFailure(.storage, "cannot create the data directory \(path): \(error.localizedDescription)")
        }
    }

    /// One line for what the submit journal held at start-up (nothing when it was empty).
    static func logReplay(_ counts: (readmitted: Int, included: Int, refused: Int), logger: Logger) {
        guard counts.readmitted + counts.included + counts.refused > 0 else { return }
        logger.notice(
            "acknowledged transactions from before the restart",
            metadata: [
                "readmitted": "\(counts.readmitted)", "alreadyIncluded": "\(counts.included)",
                "refused": "\(counts.refused)",
            ])
    }
}
