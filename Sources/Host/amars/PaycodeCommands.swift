import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Ledger
import PaymentCodes

/// `amars paycode`: BIP47 payment codes for wallets. A key's payment code is the BIP32 node m/47'/1717'/0' of
/// its 32-byte secret taken as a BIP32 seed, so a key file is all a wallet keeps.
struct PaycodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paycode",
        abstract: "Be paid without revealing who you are: BIP47 payment codes.",
        discussion: """
            Bob publishes his payment code once. Alice sends one notification (her own code masked so only Bob \
            can read it), then pays Bob at one-time addresses derived from both codes: nothing on chain links \
            those payments to Bob's code or to each other. Bob finds them by testing each epoch's committed \
            recipient filter locally, so no gateway learns which addresses he watches.

            Example (make devnet running):
              amars paycode show --key bob.key
              amars paycode notify --key alice.key --to amscpc1... --wait
              amars paycode pay --key alice.key --to amscpc1... --amount 2.5 --wait
              amars paycode scan --key bob.key
              amars paycode spend --key bob.key --payer amscpc1... --index 0 --to amsc1... --amount 1 --wait

            Without a notification transaction, over payment channels: see 'amars paycode relay --help'.
            """,
        subcommands: [Show.self, Notify.self, Pay.self, Scan.self, Spend.self, PaycodeRelayCommand.self])

    struct KeyOption: ParsableArguments {
        @Option(help: "Secret key file of the wallet (its payment code is derived from it).")
        var key: String

        func load() throws -> (signer: PrivateKey, keys: PaymentCodeKeys) { try PaycodeCommand.loadWallet(key) }
    }

    /// A key file and the payment-code keys derived from it.
    static func loadWallet(_ path: String) throws -> (signer: PrivateKey, keys: PaymentCodeKeys) {
        let signer = try loadKey(path)
        do { return (signer, try PaymentCodeKeys(seed: signer.secret.bytes)) } catch {
            throw CLIError("this key has no payment code (\(error)); make another key")
        }
    }

    static func parseCode(_ text: String, flag: String) throws -> PaymentCode {
        do { return try PaymentCode(text: text) } catch {
            throw ValidationError("\(flag): not a payment code (\(error)); it starts with 'amscpc1'")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the key's payment code and its notification address.",
            discussion: "Example:\n  amars paycode show --key bob.key")

        @OptionGroup var key: KeyOption

        func run() throws {
            let code = try key.load().keys.code
            print(code.text)
            print("notification address \(code.notificationAddress.bech32)")
        }
    }

    struct Notify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a receiver your payment code, masked so that only they can read it.",
            discussion: """
                Needed once per receiver, before the first 'amars paycode pay'. The notification goes to the \
                receiver's notification address and costs only the fee.

                Example:
                  amars paycode notify --key alice.key --to amscpc1... --wait
                """)

        @OptionGroup var key: KeyOption
        @Option(help: "The receiver's payment code (amscpc1...).")
        var to: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let receiver = try PaycodeCommand.parseCode(to, flag: "--to")
            let (signer, keys) = try key.load()
            let sender = Address(publicKey: signer.xOnlyPublicKey)
            let sent = try send.send(signer: signer, node: node) { nonce in
                let masked = try PaymentCodeNotification.mask(
                    keys.code, designated: signer, receiver: receiver,
                    binding: PaymentCodeNotification.bindingKey(sender: sender, nonce: nonce))
                return .paymentCodeNotify(PaymentCodeNotify(to: receiver.notificationAddress, maskedCode: masked))
            }
            print("notified \(receiver.notificationAddress.bech32) from \(sender.bech32)")
            try send.finish(sent, sender: sender, node: node)
        }
    }

    struct Pay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pay a payment code at its next one-time address.",
            discussion: """
                The index is the first one-time address of this receiver that has never been used (no balance, no \
                nonce), so a retry after a failure reuses it. Send 'amars paycode notify' once first.

                Example:
                  amars paycode pay --key alice.key --to amscpc1... --amount 2.5 --wait
                """)

        @OptionGroup var key: KeyOption
        @Option(help: "The receiver's payment code (amscpc1...).")
        var to: String
        @Option(help: "Amount in AMSC, e.g. 10 or 0.25.")
        var amount: String
        @Flag(help: "The receiver learnt your code over payment channels ('amars paycode relay'), not on chain.")
        var relayed = false
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let receiver = try PaycodeCommand.parseCode(to, flag: "--to")
            let units = try parseAmount(amount, flag: "--amount")
            let (signer, keys) = try key.load()
            let sender = Address(publicKey: signer.xOnlyPublicKey)
            let notified =
                relayed
                ? []
                : try node.typed { client in
                    try PaycodeCommand.allNotifications(client, to: receiver.notificationAddress)
                }
            guard relayed || notified.contains(where: { $0.sender == sender }) else {
                throw CLIError(
                    "\(receiver.notificationAddress.bech32) has no notification from \(sender.bech32) yet; "
                        + "run first: amars paycode notify --key \(key.key) --to \(to) --wait")
            }
            var index: UInt32 = 0
            var address: Address
            while true {
                do {
                    address = try OneTimeKey.address(payer: keys, receiver: receiver, index: index)
                    let account = try node.typed { try $0.account(address) }
                    if account.balance == 0 && account.nonce == 0 && account.pending == 0 { break }
                } catch PaymentCodeError.unusableIndex {
                    // BIP47: both sides skip an index whose tweak is not a valid scalar.
                }
                index += 1
            }
            let sent = try send.send(.transfer(Ledger.Transfer(to: address, amount: units)), signer: signer, node: node)
            print("sent \(Amount.format(units)) AMSC to one-time address \(address.bech32) (index \(index))")
            try send.finish(sent, sender: sender, node: node)
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find payments to your payment code.",
            discussion: """
                Reads the notifications sent to your notification address, derives each payer's next one-time \
                addresses, and tests them against every finished epoch's recipient filter, checking each filter \
                against the hash the chain's state commits to. Only the one-time accounts of epochs that matched \
                are asked for.

                Example:
                  amars paycode scan --key bob.key
                """)

        @OptionGroup var key: KeyOption
        @Option(help: "First epoch to scan.")
        var fromEpoch: UInt64 = 0
        @Option(help: "One-time addresses watched per payer beyond the last one found.")
        var window: UInt32 = 20
        @Option(help: "A payer's code learnt off chain ('amars paycode relay claim' printed it); repeat for several.")
        var payer: [String] = []
        @OptionGroup var node: NodeOptions

        func run() throws {
            let keys = try key.load().keys
            let own = keys.code
            let relayed = try payer.map { try PaycodeCommand.parseCode($0, flag: "--payer") }
            guard let notificationKey = try? keys.key(at: 0) else { throw CLIError("this key has no notification key") }
            let found = try node.typed { client in
                try PaycodeCommand.scan(
                    client, own: own, keys: keys, notificationKey: notificationKey, fromEpoch: fromEpoch,
                    window: window,
                    relayed: relayed)
            }
            for line in found { print(line) }
        }
    }

    struct Spend: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move tokens out of a one-time address you were paid at.",
            discussion: """
                The one-time address's key is derived from your key, the payer's code and the index that \
                'amars paycode scan' printed; the fee is paid from the one-time account too.

                Example:
                  amars paycode spend --key bob.key --payer amscpc1... --index 0 --to amsc1... --amount 1 --wait
                """)

        @OptionGroup var key: KeyOption
        @Option(help: "The payer's payment code, as 'amars paycode scan' printed it.")
        var payer: String
        @Option(help: "The one-time address's index, as 'amars paycode scan' printed it.")
        var index: UInt32
        @Option(help: "Recipient address (amsc1...).")
        var to: String
        @Option(help: "Amount in AMSC.")
        var amount: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let payerCode = try PaycodeCommand.parseCode(payer, flag: "--payer")
            let recipient = try parseAddress(to)
            let units = try parseAmount(amount, flag: "--amount")
            let keys = try key.load().keys
            let oneTime: PrivateKey
            do { oneTime = try OneTimeKey.secretKey(receiver: keys, payer: payerCode, index: index) } catch {
                throw CLIError("--index \(index): \(error)")
            }
            let from = Address(publicKey: oneTime.xOnlyPublicKey)
            let sent = try send.send(
                .transfer(Ledger.Transfer(to: recipient, amount: units)), signer: oneTime, node: node)
            print("sent \(Amount.format(units)) AMSC from one-time address \(from.bech32) to \(recipient.bech32)")
            try send.finish(sent, sender: from, node: node)
        }
    }

    static func allNotifications(_ client: NodeClient, to address: Address) throws -> [NotificationInfo] {
        var all: [NotificationInfo] = []
        var from: UInt64 = 0
        var position = 0
        while true {
            let page = try client.notifications(to: address, from: from, position: position)
            all += page
            guard page.count == APIPageSize.notifications, let last = page.last else { return all }
            from = last.height
            position = last.position + 1
        }
    }

    /// The scan itself: every line it prints, payments last.
    static func scan(
        _ client: NodeClient, own: PaymentCode, keys: PaymentCodeKeys, notificationKey: PrivateKey, fromEpoch: UInt64,
        window: UInt32, relayed: [PaymentCode] = []
    ) throws -> [String] {
        var lines: [String] = ["payment code \(own.text)"]
        let genesis = try client.head().genesisBlockHash
        var payers: [(code: PaymentCode, notifiedBy: String)] = relayed.map { ($0, "a relay") }
        for n in try allNotifications(client, to: own.notificationAddress) {
            do {
                let code = try PaymentCodeNotification.unmask(
                    n.maskedCode, designated: n.senderKey, notificationKey: notificationKey,
                    binding: PaymentCodeNotification.bindingKey(sender: n.sender, nonce: n.nonce))
                if !payers.contains(where: { $0.code == code }) { payers.append((code, n.sender.bech32)) }
            } catch {
                lines.append("skipped notification \(Hex.encode(n.id.bytes)): \(error)")
            }
        }
        lines.append(
            "\(payers.count - relayed.count) payer(s) notified \(own.notificationAddress.bech32) on chain, "
                + "\(relayed.count) over a relay")
        // Watch indices 0..<window per payer; grow past the last one found and scan again until nothing new.
        var watchedUpTo = [UInt32](repeating: window, count: payers.count)
        var paid: [(payer: Int, index: UInt32, address: Address, epoch: UInt64)] = []
        var filters: [RecipientFilterInfo] = []
        var epoch = fromEpoch
        while true {
            guard let filter = try finishedFilter(client, epoch: epoch) else { break }
            filters.append(filter)
            guard filter.verify() else {
                throw CLIError("the node's filter of epoch \(epoch) does not match the hash its state commits to")
            }
            epoch += 1
        }
        lines.append(
            "epochs \(fromEpoch)–\(epoch == fromEpoch ? fromEpoch : epoch - 1): \(filters.count) filter(s) checked")
        var scannedUpTo = [UInt32](repeating: 0, count: payers.count)
        while true {
            var watched: [(payer: Int, index: UInt32, address: Address)] = []
            for (p, payer) in payers.enumerated() {
                for index in scannedUpTo[p]..<watchedUpTo[p] {
                    // The receiver's side of the derivation: its secret at `index` and the payer's key 0.
                    guard let key = try? OneTimeKey.secretKey(receiver: keys, payer: payer.code, index: index) else {
                        continue  // BIP47: an unusable index is skipped on both sides
                    }
                    watched.append((p, index, Address(publicKey: key.xOnlyPublicKey)))
                }
                scannedUpTo[p] = watchedUpTo[p]
            }
            if watched.isEmpty { break }
            var grew = false
            for filter in filters {
                var matcher = RecipientFilterMatcher(
                    watching: watched.map(\.address),
                    key: RecipientFilter.key(genesis: genesis, epoch: filter.epoch))
                try matcher.feed(filter.filter)
                for (i, hit) in try matcher.finish(committed: filter.hash).enumerated() where hit {
                    let w = watched[i]
                    guard !paid.contains(where: { $0.address == w.address }) else { continue }
                    paid.append((w.payer, w.index, w.address, filter.epoch))
                    if w.index + window > watchedUpTo[w.payer] {
                        watchedUpTo[w.payer] = w.index + window
                        grew = true
                    }
                }
            }
            if !grew { break }
        }
        // A filter match can be a false positive (about one in 784,931 per address): the account's proven state
        // decides.
        for hit in paid.sorted(by: { ($0.epoch, $0.index) < ($1.epoch, $1.index) }) {
            let account = try client.account(hit.address)
            guard account.verifyProof() else {
                throw CLIError("the node's proof for \(hit.address.bech32) does not verify")
            }
            guard account.balance > 0 || account.nonce > 0 else { continue }
            lines.append(
                "paid at \(hit.address.bech32) (epoch \(hit.epoch), index \(hit.index), "
                    + "payer \(payers[hit.payer].code.text), "
                    + "notified by \(payers[hit.payer].notifiedBy)): balance \(Amount.format(account.balance)) AMSC")
        }
        return lines
    }
}

/// The filter of `epoch`, or nil when the node says the epoch has not finished (404).
private func finishedFilter(_ client: NodeClient, epoch: UInt64) throws -> RecipientFilterInfo? {
    do { return try client.recipientFilter(epoch: epoch) } catch {
        if case .api(let status, _, _) = error, status == 404 { return nil }
        throw error
    }
}

enum APIPageSize {
    /// `GET /v1/accounts/{a}/notifications` answers at most this many rows.
    static let notifications = 100
}
