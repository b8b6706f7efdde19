import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger
import PaymentCodes

/// `amars stealth`: Cryptonote-style dual-key stealth addresses for wallets. A key's stealth keys are BIP32
/// nodes of its 32-byte secret taken as a seed (m/1717'/1'/0'/0' scans, m/1717'/1'/0'/1' spends), so a key file
/// is all a wallet keeps; the view key is the scan secret and the spend public key, which finds payments and
/// cannot spend them.
struct StealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stealth",
        abstract: "Be paid at addresses nobody can link to you: stealth addresses with a view-only key.",
        discussion: """
            Bob publishes his stealth address. Each payer draws a fresh key r, pays the one-time account \
            B + SHA256(x(r·A))·G and publishes R = r·G with the payment. Bob's view key (the scan secret a) finds \
            the payment from R; only his spend key can move it. Each epoch's last block commits to every R of \
            the epoch and to a filter of every account paid, so a scan sees every payment and asks the gateway \
            only about the accounts of epochs whose filter matched.

            Example (make devnet running):
              amars stealth address --key bob.key
              amars stealth pay --key alice.key --to amscst1... --amount 2.5 --wait
              amars stealth view-key --key bob.key > bob.view
              amars stealth scan --view-key bob.view
              amars stealth spend --key bob.key --from amsc1... --to amsc1... --amount 1 --wait
            """,
        subcommands: [AddressCmd.self, ViewKey.self, Pay.self, Scan.self, Spend.self])

    static func keys(_ path: String) throws -> StealthKeys {
        let signer = try loadKey(path)
        do { return try StealthKeys(seed: signer.secret.bytes) } catch {
            throw CLIError("this key has no stealth keys (\(error)); make another key")
        }
    }

    struct AddressCmd: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "address",
            abstract: "Print the key's stealth address (to publish) and its two public keys.",
            discussion: "Example:\n  amars stealth address --key bob.key")

        @Option(help: "Secret key file of the wallet.")
        var key: String

        func run() throws {
            let address = try StealthCommand.keys(key).address
            print(address.text)
            print("scan key  \(Hex.encode(address.scanKey.compressed))")
            print("spend key \(Hex.encode(address.spendKey.compressed))")
        }
    }

    struct ViewKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "view-key",
            abstract: "Print the key's view-only key (amscsv1...): it finds payments and cannot spend them.",
            discussion: """
                Keep it as secret as the payments' privacy matters: whoever holds it sees every payment to the \
                stealth address, though none can spend.

                Example:
                  amars stealth view-key --key bob.key > bob.view && chmod 600 bob.view
                """)

        @Option(help: "Secret key file of the wallet.")
        var key: String

        func run() throws { print(try StealthCommand.keys(key).viewKey.text) }
    }

    struct Pay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pay a stealth address at a fresh one-time account.",
            discussion: """
                A fresh ephemeral key is drawn for every payment, so two payments to one address share nothing \
                on chain. Example:
                  amars stealth pay --key alice.key --to amscst1... --amount 2.5 --wait
                """)

        @Option(help: "Secret key file of the payer.")
        var key: String
        @Option(help: "The receiver's stealth address (amscst1...).")
        var to: String
        @Option(help: "Amount in AMSC, e.g. 10 or 0.25.")
        var amount: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let receiver: StealthAddress
            do { receiver = try StealthAddress(text: to) } catch {
                throw ValidationError("--to: not a stealth address (\(error)); it starts with 'amscst1'")
            }
            let units = try parseAmount(amount, flag: "--amount")
            let signer = try loadKey(key)
            var payment: StealthPayment?
            while payment == nil {
                // BIP47's 2^-128 case: another ephemeral key.
                payment = try? receiver.payment(ephemeral: KeyFile.generate())
            }
            let p = payment!
            let sent = try send.send(
                .stealthTransfer(StealthTransfer(to: p.address, amount: units, ephemeralKey: p.ephemeralKey)),
                signer: signer, node: node)
            print("sent \(Amount.format(units)) AMSC to one-time address \(p.address.bech32)")
            print("ephemeral key \(Hex.encode(p.ephemeralKey.compressed))")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find payments to your stealth address, with the view key or the wallet key.",
            discussion: """
                For each finished epoch: reads its stealth announcements and its recipient filter, checks both \
                against the hashes the chain's state commits to, turns each ephemeral key into the account it \
                would pay, and tests those accounts against the filter locally. Only accounts of matching \
                epochs are asked for, with their state proofs.

                Examples:
                  amars stealth scan --view-key bob.view
                  amars stealth scan --key bob.key --from-epoch 3
                """)

        @Option(help: "File holding the view-only key (amscsv1..., from 'amars stealth view-key').")
        var viewKey: String?
        @Option(help: "Secret key file of the wallet (instead of --view-key).")
        var key: String?
        @Option(help: "First epoch to scan.")
        var fromEpoch: UInt64 = 0
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (viewKey == nil) != (key == nil) else {
                throw ValidationError("give exactly one of --view-key and --key")
            }
        }

        func run() throws {
            let view: StealthViewKey
            if let key {
                view = try StealthCommand.keys(key).viewKey
            } else {
                let path = viewKey!
                guard let data = FileManager.default.contents(atPath: path),
                    let text = String(data: data, encoding: .utf8)
                else { throw CLIError("cannot read --view-key \(path)") }
                do { view = try StealthViewKey(text: text.trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
                    throw CLIError(
                        "--view-key \(path): not a view key (\(error)); make one with 'amars stealth view-key'")
                }
            }
            let lines = try node.typed { client in try StealthCommand.scan(client, view: view, fromEpoch: fromEpoch) }
            for line in lines { print(line) }
        }
    }

    struct Spend: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move tokens out of a one-time account a stealth payment went to.",
            discussion: """
                The account's secret is b + SHA256(x(a·R)), from the wallet key and the payment's ephemeral key R, \
                which the command finds in the announcements of the epoch 'amars stealth scan' printed; the fee \
                is paid from the one-time account too.

                Example:
                  amars stealth spend --key bob.key --from amsc1... --to amsc1... --amount 1 --wait
                """)

        @Option(help: "Secret key file of the wallet.")
        var key: String
        @Option(help: "The one-time account, as 'amars stealth scan' printed it (amsc1...).")
        var from: String
        @Option(help: "Epoch of the payment, as 'amars stealth scan' printed it.")
        var epoch: UInt64
        @Option(help: "Recipient address (amsc1...).")
        var to: String
        @Option(help: "Amount in AMSC.")
        var amount: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let oneTime = try parseAddress(from)
            let recipient = try parseAddress(to)
            let units = try parseAmount(amount, flag: "--amount")
            let keys = try StealthCommand.keys(key)
            let announcements = try node.typed { client in
                try StealthCommand.checkedAnnouncements(client, epoch: epoch)
            }
            guard let announcements else { throw CLIError("epoch \(epoch) has not finished yet") }
            let secret = announcements.announcements.lazy.compactMap {
                try? keys.secret(ephemeralKey: $0.ephemeralKey)
            }.first { Address(publicKey: $0.xOnlyPublicKey) == oneTime }
            guard let secret else {
                throw CLIError(
                    "no stealth payment of epoch \(epoch) went to \(oneTime.bech32) for this key; "
                        + "run 'amars stealth scan' to list yours")
            }
            let sent = try send.send(
                .transfer(Ledger.Transfer(to: recipient, amount: units)), signer: secret, node: node)
            print("sent \(Amount.format(units)) AMSC from one-time address \(oneTime.bech32) to \(recipient.bech32)")
            try send.finish(sent, sender: oneTime, node: node)
        }
    }

    /// `epoch`'s announcements checked against their committed hash, or nil until the epoch has finished.
    static func checkedAnnouncements(_ client: NodeClient, epoch: UInt64) throws -> StealthAnnouncementsInfo? {
        let info: StealthAnnouncementsInfo
        do { info = try client.stealthAnnouncements(epoch: epoch) } catch {
            if case .api(let status, _, _) = error, status == 404 { return nil }
            throw error
        }
        guard info.verify() else {
            throw CLIError(
                "the node's stealth announcements of epoch \(epoch) do not match the hash its state commits to")
        }
        return info
    }

    /// The scan itself: every line it prints, payments last.
    static func scan(_ client: NodeClient, view: StealthViewKey, fromEpoch: UInt64) throws -> [String] {
        var lines = ["stealth address \(view.address.text)"]
        let genesis = try client.head().genesisBlockHash
        var epoch = fromEpoch
        var announced = 0
        var paid: [(epoch: UInt64, address: Address, transaction: Bytes32)] = []
        while let announcements = try checkedAnnouncements(client, epoch: epoch) {
            defer { epoch += 1 }
            guard !announcements.announcements.isEmpty else { continue }
            announced += announcements.announcements.count
            let candidates = announcements.announcements.compactMap { a in
                (try? view.account(ephemeralKey: a.ephemeralKey)).map { (a.transaction, $0) }
            }
            let filter = try client.recipientFilter(epoch: epoch)
            // Each answer is checked against the state root it came with: a block may land between the two.
            guard filter.verify() else {
                throw CLIError("the node's filter of epoch \(epoch) does not match the hash its state commits to")
            }
            var matcher = RecipientFilterMatcher(
                watching: candidates.map(\.1), key: RecipientFilter.key(genesis: genesis, epoch: epoch))
            try matcher.feed(filter.filter)
            for (i, hit) in try matcher.finish(committed: filter.hash).enumerated() where hit {
                paid.append((epoch, candidates[i].1, candidates[i].0))
            }
        }
        lines.append(
            "epochs \(fromEpoch)–\(epoch == fromEpoch ? fromEpoch : epoch - 1): "
                + "\(announced) announcement(s) checked against their committed hashes")
        // Every payment's account is in its epoch's filter; the proven account state decides (a filter can match
        // by chance, about one in 784,931).
        var found: [String] = []
        for hit in paid {
            let account = try client.account(hit.address)
            guard account.verifyProof() else {
                throw CLIError("the node's proof for \(hit.address.bech32) does not verify")
            }
            guard account.balance > 0 || account.nonce > 0 else { continue }
            found.append(
                "paid at \(hit.address.bech32) (epoch \(hit.epoch), transaction \(Hex.encode(hit.transaction.bytes))): "
                    + "balance \(Amount.format(account.balance)) AMSC")
        }
        lines.append("\(paid.count) account(s) matched a filter and were asked for")
        return lines + found
    }
}
