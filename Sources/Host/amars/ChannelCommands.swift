import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger
import PaymentCodes

/// `amars channel`: one-way payment channels. The sender locks a deposit on chain once; every payment after that
/// is an update it signs off chain, which the recipient checks against the channel the chain holds and keeps if it
/// pays more; the recipient closes with one transaction. Each party keeps its newest update in a channel folder.
struct ChannelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel",
        abstract: "One-way payment channels: open, pay off chain, accept, close, refund after expiry, show.",
        discussion: """
            Each party keeps its newest update per channel in --dir (default ./channels, one <id>.update file in \
            hex). An update travels as that hex text: pay writes it, accept reads it.

            Example (make devnet running):
              amars channel open --key alice.key --to amsc1... --deposit 10 --blocks 600 --wait
              amars channel pay --key alice.key --id <channel id> --amount 0.25 --dir alice-ch --out u.hex
              amars channel accept --id <channel id> --update u.hex --dir bob-ch
              amars channel close --key bob.key --id <channel id> --dir bob-ch --wait
              amars channel refund --key alice.key --id <channel id> --wait     # only after the expiry height
              amars channel show <channel id> --dir bob-ch
            """,
        subcommands: [Open.self, Pay.self, Settle.self, Post.self, Accept.self, Close.self, Refund.self, Show.self])

    /// Where a party keeps the newest update of each channel.
    struct Folder: ParsableArguments {
        @Option(help: "Folder holding this party's newest update of each channel.")
        var dir: String = "channels"

        var store: ChannelFolder { ChannelFolder(path: dir) }

        func load(_ id: Bytes32) throws -> ChannelUpdate? {
            do { return try store.load(id) } catch { throw CLIError("\(error)") }
        }

        func store(_ update: ChannelUpdate) throws {
            do { try store.store(update) } catch {
                if case .notFlushed = error {
                    FileHandle.standardError.write(Data("warning: \(error)\n".utf8))
                    return
                }
                throw CLIError("cannot store the update: \(error)")
            }
        }

        /// The recipient's rule: `offered` checked against `channel` as proven at `height` and kept if it pays
        /// more than the update held (exit status 2 when refused). Run holding the folder's lock.
        func accept(_ offered: ChannelUpdate, channelID: Bytes32, channel: PaymentChannel, height: UInt64) throws {
            let holding = try load(channelID)
            guard offered != holding else {
                print(
                    "already kept: settles \(Amount.format(offered.paid)) AMSC of \(Amount.format(channel.deposit)) AMSC"
                )
                return
            }
            do { try channel.accept(offered, channelID: channelID, holding: holding, height: height) } catch {
                throw refusal(error, exitStatus: 2)
            }
            try store(offered)
            let gained = offered.paid - (holding?.paid ?? 0)
            print(
                "accepted: settles \(Amount.format(offered.paid)) AMSC of \(Amount.format(channel.deposit)) AMSC "
                    + "(+\(Amount.format(gained))), \(offered.conditions.count) pending condition(s)")
        }

        /// Runs `body` holding the folder's lock.
        func locked<T>(_ body: () throws -> T) throws -> T {
            do { return try store.locked(body) } catch let e as ChannelFolder.Failure { throw CLIError("\(e)") }
        }
    }

    /// `--post`: the message also goes to the gateway's channel door, where the recipient fetches it (`amars device
    /// channel --fetch`) or receives it on its MQTT topic. Its line goes to stderr: stdout may be the message.
    struct PostOption: ParsableArguments {
        @Flag(help: "Also post the message at the gateway's channel door for the recipient to fetch.")
        var post = false

        func send(_ message: ChannelMessage, node: NodeOptions, again: String) throws {
            guard post else { return }
            try ChannelCommand.post(message, node: node, again: again)
        }
    }

    /// Posts `message` at the channel door; a failure says how to post it again (`again`), since the update is kept.
    static func post(_ message: ChannelMessage, node: NodeOptions, again: String) throws {
        let sequence: UInt64
        do { sequence = try node.typed { try $0.postChannelMessage(message.encoded) } } catch {
            throw CLIError("the message is kept but was not posted (\(error)); post it again: \(again)")
        }
        FileHandle.standardError.write(Data("posted at the gateway's channel door as message \(sequence)\n".utf8))
    }

    struct Post: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the sender, post the newest update kept in --dir, or a relay message, at the channel door.",
            discussion: """
                Posts again what a --post could not deliver: the newest update kept in --dir, or with --message a \
                relay message ('amars paycode relay send|forward' writes it).

                Example:
                  amars channel post --id <channel id> --dir alice-ch
                  amars channel post --id <channel id> --message m1.hex
                """)

        @Option(help: "The channel id.")
        var id: String
        @Option(help: "A relay message (a file holding its hex, or the hex) instead of the kept update.")
        var message: String?
        @OptionGroup var folder: Folder
        @OptionGroup var node: NodeOptions

        func run() throws {
            let channelID = try parseChannelID(id)
            let again = "amars channel post --id \(id)"
            if let message {
                let relay = try readRelayMessage(message)
                guard relay.update.channelID == channelID else {
                    throw CLIError("--message is a message of channel \(Hex.encode(relay.update.channelID.bytes))")
                }
                return try ChannelCommand.post(.relay(relay), node: node, again: again)
            }
            guard let update = try folder.load(channelID) else {
                throw CLIError("no update of channel \(id) in \(folder.dir): pay first")
            }
            try ChannelCommand.post(.update(update), node: node, again: again)
        }
    }

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lock a deposit for a recipient until an expiry height; the channel id is the transaction's id.",
            discussion: "Example:\n  amars channel open --key alice.key --to amsc1... --deposit 10 --blocks 600 --wait")

        @Option(help: "Secret key file of the sender.")
        var key: String
        @Option(help: "Recipient address (amsc1...).")
        var to: String
        @Option(help: "Deposit in AMSC: the most the channel can ever pay.")
        var deposit: String
        @Option(help: "Blocks from the head until the expiry height (the recipient must close before it).")
        var blocks: UInt64 = 600
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (PaymentChannel.closeMargin + 1...10_000_000).contains(blocks) else {
                throw ValidationError("--blocks must be \(PaymentChannel.closeMargin + 1) to 10000000")
            }
        }

        func run() throws {
            let recipient = try parseAddress(to)
            let units = try parseAmount(deposit, flag: "--deposit")
            let signer = try loadKey(key)
            let expiry = try heightAfter(try node.typed { try $0.head() }.height, blocks)
            let sent = try send.send(
                .channelOpen(ChannelOpen(recipient: recipient, deposit: units, expiryHeight: expiry)), signer: signer,
                node: node)
            print("opening a channel of \(Amount.format(units)) AMSC to \(recipient.bech32) until height \(expiry)")
            print("channel id \(sent.id)")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Pay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the sender, sign the next update: the amount on top of everything paid so far.",
            discussion: """
                Reads the channel from the node (its proof checked) and the newest update from --dir, signs the next \
                one, stores it, and writes it as hex to --out (or stdout). --count repeats the payment, one update \
                each; only the last needs to reach the recipient, since it settles all before it.

                Example:
                  amars channel pay --key alice.key --id <channel id> --amount 0.25 --dir alice-ch --out u.hex
                """)

        @Option(help: "Secret key file of the sender.")
        var key: String
        @Option(help: "The channel id.")
        var id: String
        @Option(help: "Amount in AMSC paid by each update.")
        var amount: String
        @Option(help: "Payments to make, one update each.")
        var count: Int = 1
        @Option(help: "Write the newest update (hex) here instead of stdout.")
        var out: String?
        @OptionGroup var post: PostOption
        @OptionGroup var folder: Folder
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (1...1_000_000).contains(count) else { throw ValidationError("--count must be 1 to 1000000") }
        }

        func run() throws { try folder.locked(perform) }

        private func perform() throws {
            let channelID = try parseChannelID(id)
            let units = try parseAmount(amount, flag: "--amount")
            let signer = try loadKey(key)
            let (channel, height) = try provenChannel(channelID, node: node)
            var last = try folder.load(channelID)
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<count {
                let aux = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
                do {
                    last = try channel.pay(
                        units, after: last, channelID: channelID, height: height, sender: signer, auxRandom: aux)
                } catch { throw refusal(error) }
            }
            guard let update = last else { return }
            try folder.store(update)
            try writeHex(update.encoded, to: out)
            try post.send(.update(update), node: node, again: "amars channel post --id \(id) --dir \(folder.dir)")
            if let out {
                print(
                    "update settles \(Amount.format(update.paid)) AMSC of \(Amount.format(channel.deposit)) AMSC; "
                        + "written to \(out)")
            }
        }
    }

    struct Settle: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the sender, settle a pending condition once the recipient showed its secret.",
            discussion: """
                The condition leaves the update and its amount joins the settled total, so the recipient is paid \
                without closing on chain. Refused when no pending condition is locked to SHA-256 of the secret, or \
                when that condition has expired.

                Example:
                  amars channel settle --key bob.key --id <channel id> --secret <64 hex> --dir bob-ch --out s.hex
                """)

        @Option(help: "Secret key file of the sender.")
        var key: String
        @Option(help: "The channel id.")
        var id: String
        @Option(help: "The condition's secret: 64 hex digits, or a file holding them.")
        var secret: String
        @Option(help: "Write the new update (hex) here instead of stdout.")
        var out: String?
        @OptionGroup var post: PostOption
        @OptionGroup var folder: Folder
        @OptionGroup var node: NodeOptions

        func run() throws { try folder.locked(perform) }

        private func perform() throws {
            let channelID = try parseChannelID(id)
            let preimage = try readSecret(secret, flag: "--secret")
            let signer = try loadKey(key)
            let (channel, height) = try provenChannel(channelID, node: node)
            let last = try folder.load(channelID)
            var rng = SystemRandomNumberGenerator()
            let update: ChannelUpdate
            do {
                update = try channel.settle(
                    preimage, after: last, channelID: channelID, height: height, sender: signer,
                    auxRandom: Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next()))
            } catch { throw refusal(error) }
            try folder.store(update)
            try writeHex(update.encoded, to: out)
            try post.send(.update(update), node: node, again: "amars channel post --id \(id) --dir \(folder.dir)")
            if out != nil { print("update settles \(Amount.format(update.paid)) AMSC; written to \(out!)") }
        }
    }

    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the recipient, check an update against the channel on chain and keep it if it pays more.",
            discussion: """
                Refuses (exit status 2), with the reason, an update for another channel, not signed by the \
                channel's sender, promising more than the deposit, with a condition that outlives the channel, \
                dropping a pending condition without settling it, or no better than the one kept (it must settle \
                more, or settle the same and promise more on conditions); and any update once the channel is \
                within 5 blocks of its expiry.

                Example:
                  amars channel accept --id <channel id> --update u.hex --dir bob-ch
                """)

        @Option(help: "The channel id.")
        var id: String
        @Option(help: "File holding the update (hex), or the update itself in hex.")
        var update: String
        @OptionGroup var folder: Folder
        @OptionGroup var node: NodeOptions

        func run() throws { try folder.locked(perform) }

        private func perform() throws {
            let channelID = try parseChannelID(id)
            let offered = try readOrDecodeUpdate(update, what: "--update")
            let (channel, height) = try provenChannel(channelID, node: node)
            try folder.accept(offered, channelID: channelID, channel: channel, height: height)
        }
    }

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the recipient, close the channel on chain with the newest update kept in --dir.",
            discussion: """
                The recipient is paid what the update settles plus every condition whose secret is given with \
                --secret; the rest of the deposit goes back to the sender. Close before the expiry height.

                Example:
                  amars channel close --key bob.key --id <channel id> --dir bob-ch --wait
                """)

        @Option(help: "Secret key file of the recipient.")
        var key: String
        @Option(help: "The channel id.")
        var id: String
        @Option(help: "A condition's secret (64 hex digits, or a file holding them); repeat for several.")
        var secret: [String] = []
        @OptionGroup var folder: Folder
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let channelID = try parseChannelID(id)
            guard let update = try folder.load(channelID) else {
                throw CLIError("no update of channel \(id) in \(folder.dir): accept one first")
            }
            let preimages = try secret.map { try readSecret($0, flag: "--secret") }
            let signer = try loadKey(key)
            let sent = try send.send(
                .channelClose(ChannelClose(update: update, preimages: preimages)), signer: signer, node: node)
            print("closing \(id) with the update settling \(Amount.format(update.paid)) AMSC")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Refund: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the sender, take back the deposit of a channel nobody closed, after its expiry height.",
            discussion: "Example:\n  amars channel refund --key alice.key --id <channel id> --wait")

        @Option(help: "Secret key file of the sender.")
        var key: String
        @Option(help: "The channel id.")
        var id: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let channelID = try parseChannelID(id)
            let signer = try loadKey(key)
            let sent = try send.send(.channelRefund(ChannelRefund(channelID: channelID)), signer: signer, node: node)
            print("refunding \(id)")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A channel's status, checked against its state proof, and the newest update kept in --dir.",
            discussion: "Example:\n  amars channel show <channel id> --dir bob-ch")

        @Argument(help: "The channel id.")
        var id: String
        @OptionGroup var folder: Folder
        @OptionGroup var node: NodeOptions

        func run() throws {
            let channelID = try parseChannelID(id)
            let info = try node.typed { try $0.channel(channelID) }
            guard info.verify() else { throw CLIError("the node's proof for channel \(id) does not verify") }
            let c = info.state
            let status =
                switch c.status {
                case .open: "open"
                case .closed: "closed, \(Amount.format(c.paidOut)) AMSC paid to the recipient"
                case .refunded: "refunded to the sender"
                }
            print("channel   \(status)")
            print("deposit   \(Amount.format(c.deposit)) AMSC from \(c.sender.bech32) to \(c.recipient.bech32)")
            print("expires   after height \(c.expiryHeight)")
            for secret in c.revealed { print("secret    \(Hex.encode(secret.bytes)) (shown at the close)") }
            if let held = try folder.load(channelID) {
                print(
                    "kept      update settling \(Amount.format(held.paid)) AMSC, "
                        + "\(held.conditions.count) pending condition(s)")
            }
            print("proven    against the state root of block \(info.height)")
        }
    }
}

func parseChannelID(_ text: String) throws -> Bytes32 {
    guard text.utf8.count == 64, let raw = try? Hex.decode(text), let id = Bytes32(raw) else {
        throw ValidationError("a channel id is the 64-hex-digit id of the transaction that opened it")
    }
    return id
}

/// The channel as the chain holds it, its proof checked against the state root the node names, and the height
/// of that state (what the off-chain rules judge expiries by).
func provenChannel(_ id: Bytes32, node: NodeOptions) throws -> (channel: PaymentChannel, height: UInt64) {
    let info = try node.typed { try $0.channel(id) }
    guard info.verify() else { throw CLIError("the node's proof for channel \(Hex.encode(id.bytes)) does not verify") }
    return (info.state, info.height)
}

/// An update given as a file holding its hex, or as the hex itself.
func readOrDecodeUpdate(_ text: String, what: String) throws -> ChannelUpdate {
    FileManager.default.fileExists(atPath: text) ? try readUpdate(text, what: what) : try decodeUpdate(text, what: what)
}

func readUpdate(_ path: String, what: String) throws -> ChannelUpdate {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw CLIError("cannot read \(what): \(error)")
    }
    return try decodeUpdate(text, what: what)
}

func decodeUpdate(_ text: String, what: String) throws -> ChannelUpdate {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard let raw = try? Hex.decode(trimmed) else { throw CLIError("\(what) is not hex") }
    do { return try ChannelUpdate(decoding: raw) } catch { throw CLIError("\(what) is not a channel update: \(error)") }
}

/// Writes `bytes` as one line of hex to `path` (atomically), or to stdout without a path.
func writeHex(_ bytes: [UInt8], to path: String?) throws {
    let text = Hex.encode(bytes)
    guard let path else {
        print(text)
        return
    }
    do { try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw CLIError("cannot write \(path): \(error)")
    }
}

/// A channel rule's refusal as one line with its code (exit status 2 where a script tells a refused update apart);
/// other errors pass through.
func refusal(_ error: any Error, exitStatus: Int32 = 1) -> any Error {
    guard let e = error as? ChannelError else { return error }
    return CLIError("refused (\(e.code)): \(e)", exitStatus: exitStatus)
}

/// `blocks` after `height`; a node claiming a height near 2^64 is refused rather than trusted into an overflow.
func heightAfter(_ height: UInt64, _ blocks: UInt64) throws -> UInt64 {
    let (sum, overflow) = height.addingReportingOverflow(blocks)
    guard !overflow else {
        throw CLIError("the node reports height \(height), which leaves no room for \(blocks) blocks")
    }
    return sum
}
