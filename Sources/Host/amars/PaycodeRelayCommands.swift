import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger
import PaymentCodes

/// `amars paycode relay`: the white paper's relayable payment code (§7.1). Alice tells Charlie her payment code
/// through Bob over two payment channels instead of a notification transaction, paying Bob for it with a
/// condition only Charlie can unlock; then she pays Charlie at one-time addresses and nothing on chain ever
/// linked the two.
struct PaycodeRelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Notify a payment code through payment channels: no notification transaction on chain.",
        discussion: """
            Alice has a channel to Bob, Bob one to Charlie. Alice masks her code for Charlie and sends it to Bob \
            with an update adding X AMSC locked to the hash of a secret; Bob forwards it to Charlie with \
            Y < X locked the same way; Charlie unmasks it, which gives him the secret (a hash of the ECDH point \
            and her code, which only he and Alice can compute): showing it gets him Y from Bob, and Bob, showing \
            it to Alice, gets X.

            Example (make devnet running; ch1 Alice→Bob, ch2 Bob→Charlie opened with 'amars channel open'):
              amars paycode relay send --key alice.key --to <Charlie's amscpc1...> --channel <ch1> \\
                  --amount 0.02 --blocks 200 --dir alice-ch --out m1.hex
              amars paycode relay forward --key bob.key --message m1.hex --from <ch1> --channel <ch2> \\
                  --amount 0.01 --blocks 100 --dir bob-ch --out m2.hex
              amars paycode relay claim --key charlie.key --message m2.hex --channel <ch2> --dir charlie-ch \\
                  --secret-out secret.hex                   # prints Alice's payment code
              amars channel settle --key bob.key --id <ch2> --secret <secret> --dir bob-ch --out s2.hex
              amars channel accept --id <ch2> --update s2.hex --dir charlie-ch
              amars channel settle --key alice.key --id <ch1> --secret <secret> --dir alice-ch --out s1.hex
              amars channel accept --id <ch1> --update s1.hex --dir bob-ch
              amars paycode pay --key alice.key --to <Charlie's code> --amount 1 --relayed --wait
              amars paycode scan --key charlie.key --payer <Alice's code>
            """,
        subcommands: [Send.self, Forward.self, Claim.self])

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the payer, send your code masked for the receiver to the first relay, with its fee.",
            discussion: """
                Signs the next update of your channel to the relay with a condition of --amount locked to the \
                notification's hash lock, expiring --blocks after the head, and writes the message (update and masked code) \
                to --out. The designated key of the mask is fresh each time.

                Example:
                  amars paycode relay send --key alice.key --to amscpc1... --channel <ch1> --amount 0.02 \\
                      --blocks 200 --dir alice-ch --out m1.hex
                """)

        @Option(help: "Secret key file of the payer (its payment code is the one sent).")
        var key: String
        @Option(help: "The receiver's payment code (amscpc1...).")
        var to: String
        @Option(help: "Your channel to the first relay.")
        var channel: String
        @Option(help: "The relay's fee in AMSC, paid when the receiver shows the secret.")
        var amount: String
        @Option(help: "Blocks from the head until the condition expires.")
        var blocks: UInt64 = 200
        @Option(help: "Write the message (hex) here instead of stdout.")
        var out: String?
        @OptionGroup var post: ChannelCommand.PostOption
        @OptionGroup var folder: ChannelCommand.Folder
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (2...1_000_000).contains(blocks) else { throw ValidationError("--blocks must be 2 to 1000000") }
        }

        func run() throws { try folder.locked(perform) }

        private func perform() throws {
            let receiver = try PaycodeCommand.parseCode(to, flag: "--to")
            let channelID = try parseChannelID(channel)
            let units = try parseAmount(amount, flag: "--amount")
            let (signer, keys) = try PaycodeCommand.loadWallet(key)
            let (onChain, height) = try provenChannel(channelID, node: node)
            var rng = SystemRandomNumberGenerator()
            func fresh() -> Bytes32 { Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next()) }
            var designated: PrivateKey?
            while designated == nil { designated = try? PrivateKey(bytes: fresh()) }
            let notification: RelayedNotification
            do {
                notification = try RelayedNotification(code: keys.code, designated: designated!, receiver: receiver)
            } catch { throw CLIError("cannot mask your code for \(to): \(error)") }
            let expiry = try heightAfter(height, blocks)
            let last = try folder.load(channelID)
            let update: ChannelUpdate
            do {
                update = try onChain.lock(
                    ChannelCondition(hashLock: notification.hashLock, amount: units, expiryHeight: expiry),
                    after: last, channelID: channelID, height: height, sender: signer, auxRandom: fresh())
            } catch { throw refusal(error) }
            try folder.store(update)
            let message = RelayMessage(update: update, notification: notification)
            try writeHex(message.encoded, to: out)
            try post.send(
                .relay(message), node: node, again: "amars channel post --id \(channel) --message <the message>")
            print(
                "relay fee \(Amount.format(units)) AMSC locked to \(Hex.encode(notification.hashLock.bytes)) "
                    + "until height \(expiry), for \(notification.to.bech32)")
        }
    }

    struct Forward: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As a relay, accept the incoming message and pass the code on for less, expiring earlier.",
            discussion: """
                Checks the incoming update against its channel on chain (as 'amars channel accept' does) and that it \
                adds a condition locked to the message's hash lock; keeps it; then signs the next update of your \
                channel onward with a condition of --amount (less than the incoming one) locked the same way, \
                expiring at least 10 blocks before the incoming one, so you have time to claim upstream.

                Example:
                  amars paycode relay forward --key bob.key --message m1.hex --from <ch1> --channel <ch2> \\
                      --amount 0.01 --blocks 100 --dir bob-ch --out m2.hex
                """)

        @Option(help: "Secret key file of the relay.")
        var key: String
        @Option(help: "File holding the incoming message (hex), or the message itself.")
        var message: String
        @Option(help: "The incoming channel (to you).")
        var from: String
        @Option(help: "Your channel onward (from you).")
        var channel: String
        @Option(help: "What you pass on in AMSC: less than what you were offered.")
        var amount: String
        @Option(help: "Blocks from the head until your condition expires.")
        var blocks: UInt64 = 100
        @Option(help: "Write the message (hex) here instead of stdout.")
        var out: String?
        @OptionGroup var post: ChannelCommand.PostOption
        @OptionGroup var folder: ChannelCommand.Folder
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (1...1_000_000).contains(blocks) else { throw ValidationError("--blocks must be 1 to 1000000") }
        }

        func run() throws { try folder.locked(perform) }

        private func perform() throws {
            let incoming = try readRelayMessage(message)
            let fromID = try parseChannelID(from)
            let onwardID = try parseChannelID(channel)
            let units = try parseAmount(amount, flag: "--amount")
            let signer = try loadKey(key)
            guard let offered = incoming.condition else {
                throw CLIError("refused (relayHashMismatch): the update has no condition locked to the message's hash")
            }
            let (incomingChannel, height) = try provenChannel(fromID, node: node)
            let expiry = try heightAfter(height, blocks)
            guard units < offered.amount else {
                throw CLIError(
                    "--amount must be less than the \(Amount.format(offered.amount)) AMSC offered for the relay")
            }
            guard expiry + Self.safety <= offered.expiryHeight else {
                let most =
                    offered.expiryHeight >= height + Self.safety ? offered.expiryHeight - height - Self.safety : 0
                throw CLIError(
                    "the incoming condition expires at height \(offered.expiryHeight); yours must expire at least "
                        + "\(Self.safety) blocks earlier (--blocks at most \(most))")
            }
            // A retry (after a failed --out, say) finds the incoming update kept and its onward lock signed: it
            // writes the same message again instead of refusing a stale update or locking twice.
            let heldIncoming = try folder.load(fromID)
            if incoming.update != heldIncoming {
                do {
                    try incomingChannel.accept(
                        incoming.update, channelID: fromID, holding: heldIncoming, height: height)
                } catch { throw refusal(error, exitStatus: 2) }
            }
            let (onward, _) = try provenChannel(onwardID, node: node)
            let heldOnward = try folder.load(onwardID)
            let update: ChannelUpdate
            if let heldOnward, heldOnward.conditions.contains(where: { $0.hashLock == offered.hashLock }) {
                update = heldOnward
            } else {
                var rng = SystemRandomNumberGenerator()
                do {
                    update = try onward.lock(
                        ChannelCondition(hashLock: offered.hashLock, amount: units, expiryHeight: expiry),
                        after: heldOnward, channelID: onwardID, height: height, sender: signer,
                        auxRandom: Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next()))
                } catch { throw refusal(error) }
            }
            try folder.store(incoming.update)
            try folder.store(update)
            let message = RelayMessage(update: update, notification: incoming.notification)
            try writeHex(message.encoded, to: out)
            try post.send(
                .relay(message), node: node, again: "amars channel post --id \(channel) --message <the message>")
            print(
                "accepted \(Amount.format(offered.amount)) AMSC on \(from) until height \(offered.expiryHeight); "
                    + "passed on \(Amount.format(units)) AMSC until height \(expiry) for "
                    + incoming.notification.to.bech32)
        }

        /// Blocks between a relay's own condition's expiry and the incoming one's: its time to claim upstream.
        static let safety: UInt64 = 10
    }

    struct Claim: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "As the receiver, accept the last hop's update, unmask the payer's code and get the secret.",
            discussion: """
                Refuses (exit 2) a message not for you or forged (it does not unmask to a code whose hash lock it \
                carries) and an update that does not verify against its channel. Prints the payer's payment code \
                and the secret; show the secret to the relay to be paid ('amars channel settle' on its side), or \
                close with it ('amars channel close --secret').

                Example:
                  amars paycode relay claim --key charlie.key --message m2.hex --channel <ch2> --dir charlie-ch \\
                      --secret-out secret.hex
                """)

        @Option(help: "Secret key file of the receiver.")
        var key: String
        @Option(help: "File holding the message (hex), or the message itself.")
        var message: String
        @Option(help: "The channel the message came over (to you).")
        var channel: String
        @Option(help: "Write the secret (hex, mode 0600) here too.")
        var secretOut: String?
        @OptionGroup var folder: ChannelCommand.Folder
        @OptionGroup var node: NodeOptions

        func run() throws { try folder.locked(perform) }

        private func perform() throws {
            let incoming = try readRelayMessage(message)
            let channelID = try parseChannelID(channel)
            let keys = try PaycodeCommand.loadWallet(key).keys
            guard incoming.notification.to == keys.code.notificationAddress else {
                throw CLIError(
                    "refused: the message is for \(incoming.notification.to.bech32), not your notification address",
                    exitStatus: 2)
            }
            guard let notificationKey = try? keys.key(at: 0) else { throw CLIError("this key has no notification key") }
            let unmasked: (payer: PaymentCode, preimage: Bytes32)
            do { unmasked = try incoming.notification.unmask(notificationKey: notificationKey) } catch {
                throw CLIError("refused: \(error)", exitStatus: 2)
            }
            guard let condition = incoming.condition else {
                throw CLIError("refused: the update has no condition locked to the message's hash", exitStatus: 2)
            }
            let (onChain, height) = try provenChannel(channelID, node: node)
            guard condition.expiryHeight > height else {
                throw CLIError(
                    "refused: the relay's condition expired at height \(condition.expiryHeight); showing the secret "
                        + "would earn nothing", exitStatus: 2)
            }
            let held = try folder.load(channelID)
            if incoming.update != held {
                do { try onChain.accept(incoming.update, channelID: channelID, holding: held, height: height) } catch {
                    throw refusal(error, exitStatus: 2)
                }
            }
            // The secret is written before the update is kept: a claim that fails half way can be run again and
            // still yields it (the kept update is then the same, and taken as already accepted).
            let secret = Hex.encode(unmasked.preimage.bytes)
            if let secretOut {
                guard
                    FileManager.default.createFile(
                        atPath: secretOut, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
                else { throw CLIError("cannot write --secret-out \(secretOut)") }
            }
            try folder.store(incoming.update)
            print("payer     \(unmasked.payer.text)")
            print("secret    \(secret)")
            print(
                "condition \(Amount.format(condition.amount)) AMSC on \(channel) until height \(condition.expiryHeight)"
            )
        }
    }
}

func readRelayMessage(_ text: String) throws -> RelayMessage {
    let content =
        FileManager.default.fileExists(atPath: text)
        ? ((try? String(contentsOfFile: text, encoding: .utf8)) ?? "") : text
    guard let raw = try? Hex.decode(content.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw CLIError("--message is not hex")
    }
    do { return try RelayMessage(decoding: raw) } catch { throw CLIError("--message is not a relay message: \(error)") }
}
