import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger

/// `amars htlc`: hash time-locked payments. The sender locks tokens for a recipient under SHA-256 of a secret;
/// the recipient claims them by showing the secret before the expiry height, the sender takes them back after.
struct HTLCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "htlc",
        abstract: "Hash time-locked payments: lock, claim with the secret, refund after the timeout, show.",
        discussion: """
            Example (make devnet running):
              amars htlc lock --key alice.key --to amsc1... --amount 2 --secret-out secret.hex --blocks 30 --wait
              amars htlc claim --key bob.key --id <lock id> --secret secret.hex --wait
              amars htlc refund --key alice.key --id <lock id> --wait      # only after the expiry height
              amars htlc show <lock id>                                     # status, and the secret once claimed
            """,
        subcommands: [Lock.self, Claim.self, Refund.self, Show.self])

    struct Lock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lock tokens for a recipient under SHA-256 of a secret, until an expiry height.",
            discussion: """
                Give the hash (--hash, when the recipient or another party holds the secret) or let the command draw \
                a secret and write it to --secret-out (hex, mode 0600). The lock's id is the transaction's id.

                Example:
                  amars htlc lock --key alice.key --to amsc1... --amount 2 --secret-out secret.hex --blocks 30 --wait
                """)

        @Option(help: "Secret key file of the sender.")
        var key: String
        @Option(help: "Recipient address (amsc1...).")
        var to: String
        @Option(help: "Amount in AMSC.")
        var amount: String
        @Option(help: "SHA-256 of the secret, 64 hex digits.")
        var hash: String?
        @Option(help: "Draw a fresh 32-byte secret and write it here (hex).")
        var secretOut: String?
        @Option(help: "Blocks from the head until the expiry height (the recipient's time to claim).")
        var blocks: UInt64 = 30
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (hash == nil) != (secretOut == nil) else {
                throw ValidationError("give exactly one of --hash and --secret-out")
            }
            guard (1...1_000_000).contains(blocks) else { throw ValidationError("--blocks must be 1 to 1000000") }
        }

        func run() throws {
            let recipient = try parseAddress(to)
            let units = try parseAmount(amount, flag: "--amount")
            let signer = try loadKey(key)
            let hashLock: Bytes32
            if let hash {
                guard hash.utf8.count == 64, let raw = try? Hex.decode(hash), let h = Bytes32(raw) else {
                    throw ValidationError("--hash must be 64 hex digits (SHA-256 of the secret)")
                }
                hashLock = h
            } else {
                var rng = SystemRandomNumberGenerator()
                let secret = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
                guard
                    FileManager.default.createFile(
                        atPath: secretOut!, contents: Data((Hex.encode(secret.bytes) + "\n").utf8),
                        attributes: [.posixPermissions: 0o600])
                else { throw CLIError("cannot write --secret-out \(secretOut!)") }
                hashLock = SHA256.hash(secret.bytes)
            }
            let head = try node.typed { try $0.head() }
            let expiry = try heightAfter(head.height, blocks)
            let sent = try send.send(
                .htlcLock(HTLCLock(recipient: recipient, amount: units, hashLock: hashLock, expiryHeight: expiry)),
                signer: signer, node: node)
            print("locked \(Amount.format(units)) AMSC for \(recipient.bech32) until height \(expiry)")
            print("hash lock \(Hex.encode(hashLock.bytes))")
            print("lock id \(sent.id)")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Claim: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Claim an HTLC as its recipient by showing the secret (up to its expiry height).",
            discussion: "Example:\n  amars htlc claim --key bob.key --id <lock id> --secret secret.hex --wait")

        @Option(help: "Secret key file of the recipient.")
        var key: String
        @Option(help: "The lock id (the id of the transaction that locked it).")
        var id: String
        @Option(help: "File holding the secret (hex), or the secret itself as 64 hex digits.")
        var secret: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let lockID = try parseLockID(id)
            let preimage = try readSecret(secret)
            let signer = try loadKey(key)
            let sent = try send.send(
                .htlcClaim(HTLCClaim(lockID: lockID, preimage: preimage)), signer: signer, node: node)
            print("claiming \(id)")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Refund: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take an HTLC back as its sender once its expiry height has passed.",
            discussion: "Example:\n  amars htlc refund --key alice.key --id <lock id> --wait")

        @Option(help: "Secret key file of the sender.")
        var key: String
        @Option(help: "The lock id.")
        var id: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let lockID = try parseLockID(id)
            let signer = try loadKey(key)
            let sent = try send.send(.htlcRefund(HTLCRefund(lockID: lockID)), signer: signer, node: node)
            print("refunding \(id)")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An HTLC's status, checked against its state proof; the secret once it was claimed.",
            discussion: "Example:\n  amars htlc show <lock id>")

        @Argument(help: "The lock id.")
        var id: String
        @OptionGroup var node: NodeOptions

        func run() throws {
            let lockID = try parseLockID(id)
            let info = try node.typed { try $0.htlc(lockID) }
            guard info.verify() else { throw CLIError("the node's proof for HTLC \(id) does not verify") }
            let h = info.state
            let status =
                switch h.status {
                case .open: "open"
                case .claimed: "claimed"
                case .refunded: "refunded"
                }
            print(
                "htlc      \(status): \(Amount.format(h.amount)) AMSC from \(h.sender.bech32) to \(h.recipient.bech32)")
            print("hash lock \(Hex.encode(h.hashLock.bytes)), expires after height \(h.expiryHeight)")
            if h.status == .claimed { print("secret    \(Hex.encode(h.preimage.bytes))") }
            print("proven    against the state root of block \(info.height)")
        }
    }
}

func parseLockID(_ text: String) throws -> Bytes32 {
    guard text.utf8.count == 64, let raw = try? Hex.decode(text), let id = Bytes32(raw) else {
        throw ValidationError("a lock id is the 64-hex-digit id of the transaction that locked it")
    }
    return id
}

/// `--secret`: a file holding the secret as hex, or the secret itself as 64 hex digits.
func readSecret(_ secret: String, flag: String = "--secret") throws -> Bytes32 {
    let text =
        FileManager.default.fileExists(atPath: secret)
        ? (try String(contentsOfFile: secret, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
        : secret
    guard text.utf8.count == 64, let raw = try? Hex.decode(text), let preimage = Bytes32(raw) else {
        throw ValidationError("\(flag) must be 64 hex digits or a file holding them")
    }
    return preimage
}
