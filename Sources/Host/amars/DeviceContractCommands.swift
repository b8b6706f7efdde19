import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import DeviceCore
import Foundation
import DeviceProtocol
import Ledger
import LightClient
import PaymentCodes

// `amars device htlc` and `amars device channel`: a device's side of hash time-locked payments and of the payment
// channels it is paid through, every state proven by DeviceCore's session against a header it verified itself,
// the same operations the board and the simulator run.

extension DeviceCommand {
    struct HTLC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "htlc",
            abstract: "An HTLC's status proven against a verified header; with --secret, claim it as the device.",
            discussion: """
                Without --secret: the contract's status (exit status 2 when none has the id). With --secret and \
                --key: the device proves the contract open, locked for its own account, unexpired at the next \
                block and locked to the secret's hash, then signs the claim, submits it and proves it final and \
                successful. A contract the chain would refuse to pay is refused before anything is signed (exit \
                status 3, with the chain's reason: htlcNotOpen, notRecipient, claimTooLate, wrongPreimage, \
                unknownHTLC). The device's account pays the fee.

                Example:
                  amars device htlc <lock id>
                  amars device htlc <lock id> --key lock.key --secret secret.hex
                """)

        @Argument(help: "The lock id (the id of the transaction that locked it).")
        var id: String
        @Option(help: "Secret key file of the device (the HTLC's recipient); with --secret.")
        var key: String?
        @Option(help: "File holding the secret (hex), or the secret itself as 64 hex digits: claim the HTLC.")
        var secret: String?
        @OptionGroup var signing: DeviceSigningOptions
        @OptionGroup var options: DeviceOptions

        func validate() throws {
            guard (key == nil) == (secret == nil) else { throw ValidationError("give --key and --secret together") }
        }

        func run() throws {
            let lockID = try parseLockID(id)
            var session = try options.open()
            guard let secret, let key else {
                guard case .htlc(let proven) = try session.run(.htlc(lockID)) else { throw ExitCode(1) }
                try session.save()
                guard let h = proven.state else {
                    throw DeviceRun.absent("htlc       ", id: id, at: proven.header)
                }
                print("htlc        \(h.status), \(Amount.format(h.amount)) AMSC from \(h.sender.bech32)")
                print("            to \(h.recipient.bech32), claimable up to block \(h.expiryHeight)")
                print("            hash lock \(Hex.encode(h.hashLock.bytes))")
                if h.status == .claimed { print("            secret \(Hex.encode(h.preimage.bytes))") }
                DeviceRun.printProven(proven.header)
                return
            }
            let preimage = try readSecret(secret)
            let signer = try loadKey(key)
            let order = HTLCClaimOrder(
                lockID: lockID, preimage: preimage, tipPerUnit: signing.tip, maxFeePerUnit: signing.maxFee,
                auxRandom: signing.auxRandom(), finalityMillis: signing.finalityMillis)
            let outcome = try session.run(.claim(order), wallet: DeviceWallet(key: signer, nextNonce: 0))
            guard case .claimed(let claimed) = outcome else { throw CLIError("unexpected outcome \(outcome)") }
            print("claimed     \(Amount.format(claimed.amount)) AMSC (the contract proven open before signing)")
            DeviceRun.printFinal(claimed.payment.inclusion)
            try session.save()
        }
    }

    struct Channel: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "channel",
            abstract: "A payment channel proven against a verified header; with --update, accept it as the recipient.",
            discussion: """
                Without --update: the channel's status (exit status 2 when none has the id). With --update: the \
                update is checked against the channel the device proved itself, not against a node's word, by the \
                rule `amars channel accept` applies, and kept in --dir if it pays more (exit status 2 when refused).

                With --fetch (and the recipient's --key, which signs the read: only the recipient reads a channel's \
                messages): the messages the sender posted at the gateway's channel door since the last fetch from it \
                (`amars channel pay --post`), each update judged the same way (a refused one is shown and passed \
                over), each relay message written to --dir as <channel id>.relay-<n>.hex for `amars paycode relay \
                claim|forward --message`. The cursor is kept in --dir, one per gateway.

                Example:
                  amars device channel <channel id>
                  amars device channel <channel id> --update u.hex --dir bob-ch
                  amars device channel <channel id> --fetch --key bob.key --dir bob-ch
                """)

        @Argument(help: "The channel id (the id of the transaction that opened it).")
        var id: String
        @Option(help: "File holding the update (hex), or the update itself in hex: check it and keep it.")
        var update: String?
        @Flag(help: "Fetch the sender's messages from the gateway's channel door and judge each.")
        var fetch = false
        @Option(help: "With --fetch: the recipient's secret key file, which signs the read.")
        var key: String?
        @OptionGroup var folder: ChannelCommand.Folder
        @OptionGroup var options: DeviceOptions

        func validate() throws {
            guard fetch == (key != nil) else {
                throw ValidationError("--fetch needs the recipient's --key, and --key is for --fetch")
            }
        }

        func run() throws {
            let channelID = try parseChannelID(id)
            let offered = try update.map { try readOrDecodeUpdate($0, what: "--update") }
            let reader = try key.map { DeviceWallet(key: try loadKey($0), nextNonce: 0) }
            var session = try options.open()
            guard case .channel(let proven) = try session.run(.channel(channelID)) else { throw ExitCode(1) }
            try session.save()
            guard let c = proven.state else {
                throw DeviceRun.absent("channel    ", id: id, at: proven.header)
            }
            print("channel     \(c.status), deposit \(Amount.format(c.deposit)) AMSC from \(c.sender.bech32)")
            print("            to \(c.recipient.bech32), closable up to block \(c.expiryHeight)")
            if c.status == .closed { print("            paid out \(Amount.format(c.paidOut)) AMSC") }
            DeviceRun.printProven(proven.header)
            if let offered {
                try folder.locked {
                    try folder.accept(offered, channelID: channelID, channel: c, height: proven.header.height)
                }
            }
            if let reader {
                guard reader.address == c.recipient else {
                    throw CLIError(
                        "--key is not the channel's recipient \(c.recipient.bech32): only it reads the messages")
                }
                try folder.locked { try fetchMessages(channelID, c, at: proven.header.height, reader, &session) }
            }
        }

        /// The door's messages after the kept cursor, page by page, each judged; the cursor moves past each.
        private func fetchMessages(
            _ channelID: Bytes32, _ channel: PaymentChannel, at height: UInt64, _ reader: DeviceWallet,
            _ session: inout DeviceRun
        ) throws {
            let store = folder.store
            // Sequences are one gateway's: each gateway has its own cursor.
            let gateway = options.coap
            var cursor: UInt64
            do { cursor = try store.cursor(channelID, gateway: gateway) } catch { throw CLIError("\(error)") }
            var fetched = 0
            while true {
                guard
                    case .channelMessages(let page) = try session.run(
                        .channelMessages(channelID, after: cursor), wallet: reader)
                else { throw ExitCode(1) }
                for entry in page.entries {
                    fetched += 1
                    try judge(entry, channelID, channel, at: height)
                    cursor = entry.sequence
                    do { try store.setCursor(channelID, cursor, gateway: gateway) } catch { throw CLIError("\(error)") }
                }
                if page.entries.count < MailboxPayload.maxEntries { break }
            }
            print("fetched     \(fetched) message(s) from the gateway's channel door, cursor \(cursor)")
        }

        /// A refused update is shown and passed over; anything else that fails (the folder, the disk) stops the
        /// fetch before the cursor moves past the message.
        private func judge(
            _ entry: MailboxPayload.Entry, _ channelID: Bytes32, _ channel: PaymentChannel, at height: UInt64
        ) throws {
            let prefix = "message #\(entry.sequence): "
            switch try? ChannelMessage(decoding: entry.message) {
            case .update(let update):
                do { try folder.accept(update, channelID: channelID, channel: channel, height: height) } catch let
                    refused as CLIError where refused.exitStatus == 2
                {
                    print(prefix + "\(refused)")
                }
            case .relay(let message):
                let file = (folder.dir as NSString).appendingPathComponent(
                    "\(Hex.encode(channelID.bytes)).relay-\(entry.sequence).hex")
                try writeHex(message.encoded, to: file)
                print(prefix + "relay message written to \(file): claim or forward it (amars paycode relay)")
            case nil:
                print(prefix + "not a channel message (\(entry.message.count) bytes): passed over")
            }
        }
    }
}
