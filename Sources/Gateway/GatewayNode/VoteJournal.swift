import AmarsCodec
import Foundation
import Ledger

/// This node's own consensus votes, written to disk (and fsynced) before any of them leaves the process.
///
/// The consensus core never signs two different votes for one (height, round, step) — but it forgets what it
/// signed when the process dies. A node killed right after sending a commit vote could come back, start the
/// same height afresh and sign a different block in the same round: a double sign, slashable, and a fault the
/// committee did not plan for. The journal closes that gap: ``permits(_:)`` refuses to let out a vote that
/// conflicts with one recorded, and ``record(_:)`` makes the vote durable before it is sent.
///
/// Format: an append-only text file, one `height round step hash` line per vote (hex hash), so a torn final line
/// (power loss mid-write) is recognised and ignored: that vote was never sent, because sending waits for the
/// fsync. Only the highest height is kept in memory; the file is compacted to it when opened.
///
/// Not thread-safe: owned by the ``ConsensusDriver`` actor.
final class VoteJournal {
    struct Entry: Equatable {
        var height: UInt64
        var round: UInt32
        var step: UInt8
        var hash: Bytes32
    }

    enum JournalError: Error, CustomStringConvertible {
        case io(String)

        var description: String {
            switch self {
            case .io(let s): "vote journal: \(s)"
            }
        }
    }

    private let path: String
    private var handle: FileHandle
    /// Votes of the highest journaled height.
    private(set) var entries: [Entry] = []

    init(path: String) throws(JournalError) {
        self.path = path
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var all: [Entry] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let e = Self.parse(line) { all.append(e) }
        }
        if let top = all.map(\.height).max() { entries = all.filter { $0.height == top } }
        // Compact: write the kept entries to a temporary file, fsync, rename over the journal.
        let tmp = path + ".tmp"
        let body = entries.map(Self.line).joined()
        guard FileManager.default.createFile(atPath: tmp, contents: Data(body.utf8)) else {
            throw .io("cannot write \(tmp)")
        }
        do {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
            try h.synchronize()
            try h.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
        } catch {
            throw .io("\(path): \(error)")
        }
    }

    private static func line(_ e: Entry) -> String {
        "\(e.height) \(e.round) \(e.step) \(Hex.encode(e.hash.bytes))\n"
    }

    private static func parse(_ line: Substring) -> Entry? {
        let f = line.split(separator: " ")
        guard f.count == 4, let h = UInt64(f[0]), let r = UInt32(f[1]), let s = UInt8(f[2]),
            let bytes = try? Hex.decode(String(f[3]), maxBytes: 32), let hash = Bytes32(bytes)
        else { return nil }
        return Entry(height: h, round: r, step: s, hash: hash)
    }

    /// False when the journal holds a different vote for the same (height, round, step), or when the vote is
    /// for a height below the journal's (what was signed there is no longer known, so nothing is sent).
    func permits(_ vote: Vote) -> Bool {
        if let top = entries.first?.height, vote.height < top { return false }
        return !entries.contains {
            $0.height == vote.height && $0.round == vote.round && $0.step == vote.step.rawValue
                && $0.hash != vote.blockHash
        }
    }

    /// Makes the vote durable (append + fsync). Re-sending a recorded vote writes nothing.
    func record(_ vote: Vote) throws(JournalError) {
        let e = Entry(height: vote.height, round: vote.round, step: vote.step.rawValue, hash: vote.blockHash)
        if entries.contains(e) { return }
        if let top = entries.first?.height, e.height > top { entries = [] }
        do {
            try handle.write(contentsOf: Data(Self.line(e).utf8))
            try handle.synchronize()
        } catch {
            throw .io("\(path): \(error)")
        }
        entries.append(e)
    }
}
