import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import DeviceCore
import DeviceIdentity
import DeviceProtocol
import Foundation
import Ledger
import LightClient
import PaymentCodes

/// `amars device …`: act as a device would. Talks to a gateway only over its device transports (CoAP, MQTT)
/// and believes nothing it has not verified with the light client, starting from the local genesis file.
/// Useful to check a gateway from the outside, and to see what a lock or a card terminal sees.
struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Act as a light-client device: sync checkpoints over CoAP, verify heads, balances and payments.",
        discussion: """
            Trust comes only from --genesis (the genesis header's hash and the first committee are computed from
            it); everything the gateway sends is checked: each epoch checkpoint against the committee trusted
            for that epoch, headers against their epoch's committee, balances against a verified state root,
            transactions against a verified transactions root.

              amars device head
              amars device balance --key data/keys/alice.key
              amars device send --key data/keys/alice.key --to amsc1... --amount 1 --mqtt 127.0.0.1:1883
              amars device inbox --key data/keys/alice.key

            A device asleep longer than the genesis's trusting period refuses to follow the chain; its operator
            brings it back with a signed re-anchor statement:

              amars device reanchor --operator-key data/keys/operator.key --out reanchor.bin
              amars device sync --state device.state --reanchor-key <operator x-only key> --reanchor reanchor.bin
            """,
        subcommands: [
            Head.self, Sync.self, Balance.self, Send.self, Inbox.self, Escrow.self, HTLC.self, Channel.self, Cert.self,
            Renew.self, Commands.self, Paycode.self, Reanchor.self,
        ])

    struct Reanchor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a re-anchor statement for devices asleep past their trusting period.",
            discussion: """
                Takes the newest checkpoint from the gateway at --coap, which the operator trusts (their own), and
                signs its header with the operator's key under the tag AmarsReanchor. A device provisioned with that
                key (--reanchor-key) accepts the statement with --reanchor once its trust has expired, if the
                checkpoint is of its chain, not older than its trusted one, and younger than the trusting period.

                  amars device reanchor --operator-key data/keys/operator.key --out reanchor.bin
                """)

        @Option(help: "The gateway's CoAP endpoint (one the operator trusts).")
        var coap: String = ProcessInfo.processInfo.environment["AMARS_COAP"] ?? "coap://127.0.0.1:5683"

        @Option(help: "The operator's key file, whose x-only key devices were provisioned with.")
        var operatorKey: String

        @Option(help: "Where to write the statement.")
        var out: String

        func run() throws {
            let key: PrivateKey
            do { key = try loadKey(operatorKey) } catch { throw CLIError("--operator-key: \(error)") }
            let client: CoAPDeviceClient
            do { client = try CoAPDeviceClient(configuration: try CoAPDeviceClient.Configuration(url: coap)) } catch {
                throw CLIError("--coap: \(error)")
            }
            let answer: DeviceAnswer
            do { answer = try client.exchange(.skip(from: 0, to: nil)) } catch {
                throw CLIError("gateway \(coap): \(error)")
            }
            guard answer.code == .content, let offer = try? SkipPayload(decoding: answer.body) else {
                throw CLIError("gateway \(coap) has no checkpoint to re-anchor at (\(answer.code))")
            }
            let header = offer.checkpoint.header
            // The statement names the chain by its genesis block, taken from the same trusted gateway.
            let genesisAnswer: DeviceAnswer
            do { genesisAnswer = try client.exchange(.header(at: 0)) } catch {
                throw CLIError("gateway \(coap): \(error)")
            }
            guard genesisAnswer.code == .content, let genesis = try? HeaderPayload(decoding: genesisAnswer.body) else {
                throw CLIError("gateway \(coap) does not serve its genesis header (\(genesisAnswer.code))")
            }
            var rng = SystemRandomNumberGenerator()
            let aux = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
            let signature = key.signSchnorr(
                ReanchorPayload.signingHash(header: header, genesis: genesis.header.hash), auxRandom: aux)
            let statement = ReanchorPayload(
                header: header, committee: offer.checkpoint.nextCommittee, signature: signature)
            do { try Data(statement.encoded).write(to: URL(fileURLWithPath: out)) } catch {
                throw CLIError("cannot write \(out): \(error)")
            }
            print(
                "reanchor    checkpoint of epoch \(header.epoch) at height \(header.height), committee of epoch "
                    + "\(statement.committee.epoch) (\(statement.committee.members.count) members)")
            print("            signed by operator key \(Hex.encode(key.xOnlyPublicKey.bytes.bytes)); wrote \(out)")
        }
    }

    struct Head: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sync, then verify and show the gateway's head.")

        @OptionGroup var device: DeviceOptions

        func run() throws {
            var session = try device.open()
            let head = try session.verifiedHead()
            session.printHead(head)
            try session.save()
        }
    }

    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow the checkpoint chain from the trusted state and show the trusted committee.")

        @OptionGroup var device: DeviceOptions

        func run() throws {
            var session = try device.open()
            _ = try session.syncCheckpoints()
            let t = session.sync.trusted
            print("trusted     epoch \(t.epoch), from the checkpoint at height \(t.height)")
            print("            \(Hex.encode(t.checkpointHash.bytes))")
            print("committee   \(t.committee.members.count) members, total weight \(t.committee.totalWeight)")
            for (i, m) in t.committee.members.enumerated() {
                print("  [\(i)] \(Hex.encode(m.key.bytes)) weight \(m.weight)")
            }
            try session.save()
        }
    }

    struct Balance: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an account's balance, proven against a verified state root.")

        @Argument(help: "An amsc1... address (or give --key).")
        var address: String?

        @Option(help: "Secret key file whose address to show.")
        var key: String?

        @OptionGroup var device: DeviceOptions

        func validate() throws {
            guard (address == nil) != (key == nil) else { throw ValidationError("give an address or --key") }
        }

        func run() throws {
            let who = try key.map { Address(publicKey: try loadKey($0).xOnlyPublicKey) } ?? parseAddress(address!)
            var session = try device.open()
            let account = try session.verifiedAccount(who)
            print("address     \(who.bech32)")
            print("balance     \(Amount.format(account.state.balance)) AMSC (\(account.state.balance) units)")
            print("nonce       \(account.state.nonce)")
            DeviceRun.printProven(account.header)
            try session.save()
        }
    }

    struct Escrow: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a lock checks before it opens: an escrow's status, proven against a verified header.")

        @Argument(help: "The escrow id (the id of the transaction that opened it).")
        var id: String

        @Option(help: "The device's address: also check that the escrow names it (and is open).")
        var device: String?

        @OptionGroup var options: DeviceOptions

        func run() throws {
            let escrowID = try parseEscrowID(id)
            let lock = try device.map(parseAddress)
            var session = try options.open()
            let proven = try session.verifiedEscrow(escrowID)
            guard let e = proven.state else {
                throw DeviceRun.absent("escrow     ", id: id, at: proven.header)
            }
            print("escrow      \(e.status), device \(e.device.bech32), renter \(e.renter.bech32)")
            print(
                "            deposit \(Amount.format(e.deposit)) AMSC, fee \(Amount.format(e.rentalFee)) AMSC, expires after block \(e.expiryHeight)"
            )
            DeviceRun.printProven(proven.header)
            try session.save()
            if let lock {
                // The rule a lock's firmware and the simulator's locks run.
                do {
                    let rental = try RentalLock.admit(proven, for: lock)
                    print("lock        OPENS for \(lock.bech32) until block \(rental.until)")
                } catch {
                    print("lock        stays locked for \(lock.bech32): \(error.name)")
                    throw ExitCode(3)
                }
            }
        }
    }

    struct Cert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a device checks before it trusts a peer: a certificate's chain and status, proven.",
            discussion: """
                The device session verifies the head, then proves the records of the certificate and of each \
                ancestor up to its root against a header no older than it (or the id's absence), checks their \
                signatures and links, and judges the status at that header's time. Exit 0 when valid, 2 when no \
                certificate has the id, 3 when it is revoked, expired, not yet valid, its chain is broken or (with \
                --root) it ends at another root.

                Example:
                  amars device cert pki/lock1/short/cert.pem --root pki/root.pem --coap coap://127.0.0.1:5683 \\
                    --genesis data/genesis.json
                """)

        @Argument(help: "A certificate file (PEM or DER), or its id (64 hex digits).")
        var certificate: String

        @Option(
            help: "The operator's root (file or id): anyone may anchor a root, so a chain ending elsewhere is refused.")
        var root: String?

        @OptionGroup var options: DeviceOptions

        func run() throws {
            let id = try certificateID(fileOrID: certificate)
            let expectedRoot = try root.map { try certificateID(fileOrID: $0) }
            var session = try options.open()
            let proven = try session.verifiedCertificate(id)
            try session.save()
            let at = "block \(proven.header.height) (\(DeviceRun.basisText(proven.header.basis)))"
            guard let standing = proven.standing else {
                print("certificate none with id \(Hex.encode(id.bytes)) (absence proven against \(at))")
                throw ExitCode(2)
            }
            if let account = proven.account { print("account     \(account.bech32)") }
            print("proven      every record of its chain checked against the state root of \(at)")
            if let root = proven.root { print("root        \(Hex.encode(root.bytes))") }
            switch standing {
            case .valid where expectedRoot != nil && proven.root != expectedRoot:
                print("certificate NOT VALID: its chain ends at another root than --root")
                throw ExitCode(3)
            case .valid:
                print("certificate VALID at \(isoTime(proven.header.timestamp / 1000))")
            case .notYetValid(let c), .expired(let c), .broken(let c):
                let why =
                    switch standing {
                    case .notYetValid: "not valid yet"
                    case .expired: "expired"
                    default: "its chain is broken"
                    }
                print("certificate NOT VALID: \(why) (\(Hex.encode(c.bytes).prefix(16))…)")
                throw ExitCode(3)
            case .revoked(let c, let height):
                print(
                    "certificate REVOKED at height \(height)\(c == id ? "" : " (an ancestor, \(Hex.encode(c.bytes).prefix(16))…)")"
                )
                throw ExitCode(3)
            }
        }
    }

    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Renew the device's short-lived certificate as the device does: signed, published, proven final.",
            discussion: """
                The device session verifies the head, signs a certificate for a fresh key with the device's \
                long-lived key (dated by the head's time, not the host's clock), proves the device's account, signs \
                and submits the publication from it and proves it final and successful. The board's renew app runs \
                the same operation. Only then are the fresh key and certificate written to OUT (key, key.pem, \
                cert.pem, chain.pem), as `amars cert issue` writes them; until then the fresh key waits in OUT/key.pending, \
                so a renewal that lands after the command gave up keeps its key. A device whose own certificate is \
                revoked or expired is refused with the chain's reason (issuerNotValid), and nothing is kept.

                Example:
                  amars device renew --device-key lock1.key --device-cert pki/lock1/device.pem --lifetime 1h \\
                    --out pki/lock1/short
                """)

        @OptionGroup var shortLived: ShortLivedOptions
        @OptionGroup var signing: DeviceSigningOptions
        @OptionGroup var options: DeviceOptions

        func run() throws {
            let (deviceKey, device, seconds) = try shortLived.load()
            let fresh = KeyFile.generate()
            guard
                let order = CertificateRenewalOrder(
                    publicKey: fresh.publicKey, lifetimeSeconds: seconds, tipPerUnit: signing.tip,
                    maxFeePerUnit: signing.maxFee, auxRandom: signing.auxRandom(),
                    finalityMillis: signing.finalityMillis)
            else { throw ValidationError("--lifetime must be 5m to 24h") }
            var session = try options.open()
            // The fresh key is on disk before its certificate can reach the chain: a renewal that is submitted but
            // not proven final (a dropped link, a slow chain) may still land, and its key must not be lost.
            let pending = URL(fileURLWithPath: shortLived.out).appendingPathComponent("key.pending").path
            do {
                try FileManager.default.createDirectory(atPath: shortLived.out, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: pending)
                try KeyFile.write(fresh, to: pending)
            } catch { throw CLIError("cannot write the fresh key to \(pending): \(error)") }
            let outcome: DeviceOutcome
            do { outcome = try session.run(.renew(order), wallet: DeviceWallet(key: deviceKey, nextNonce: 0)) } catch {
                // Refused by the gateway, with the chain confirming its nonce unused: that key is never needed.
                if case .device(.transactionRefused)? = (error as? CLIError)?.cause as? DeviceSyncError {
                    try? FileManager.default.removeItem(atPath: pending)
                }
                throw error
            }
            guard case .renewed(let renewed) = outcome else { throw CLIError("unexpected outcome \(outcome)") }
            try session.save()
            let short: DeviceCertificate
            do { short = try DeviceCertificate(der: renewed.der) } catch {
                throw CLIError("the session's certificate does not parse: \(error)")
            }
            DeviceRun.printFinal(renewed.payment.inclusion)
            try writeShortLived(short, key: fresh, device: device, out: shortLived.out)
            try? FileManager.default.removeItem(atPath: pending)
        }
    }

    struct Commands: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a bulb fetches from the command door, and whether it obeys each command.",
            discussion: """
                Fetches the commands waiting for --device after sequence --after (over CoAP, as the bulb does), \
                decodes each, proves its controller's certificate against a verified header and, with \
                --controllers (the certificate ids the bulb was paired with), judges them in order as the bulb's \
                own code does: obeys, or refuses with its reason. Exit 3 when a command was refused.

                Example:
                  amars device commands --device amsc1... --controllers <certificate id> --coap coap://127.0.0.1:5683
                """)

        @Option(help: "The bulb's address.")
        var device: String
        @Option(help: "The last sequence already seen (0: everything waiting).")
        var after: UInt64 = 0
        @Option(help: "Certificate ids the bulb was paired with, comma-separated.")
        var controllers: String?
        @OptionGroup var options: DeviceOptions

        func run() throws {
            let bulbAddress = try parseAddress(device)
            let paired = try controllers.map {
                try $0.split(separator: ",").map { try certificateID(id: String($0), file: nil) }
            }
            var session = try options.open()
            guard case .commands(let waiting) = try session.run(.commands(bulbAddress, after: after)) else {
                throw CLIError("the device session answered something else than commands")
            }
            var bulb = paired.map {
                SmartBulb(address: bulbAddress, genesis: session.sync.trusted.genesis, controllers: $0)
            }
            var refused = false
            for entry in waiting.entries {
                guard let command = try? BulbCommand(decoding: entry.message) else {
                    print("command     #\(entry.sequence): not a bulb command (\(entry.message.count) bytes)")
                    refused = true
                    continue
                }
                let proven = try session.verifiedCertificate(command.certificateID)
                let standing = proven.standing.map { "\($0)" } ?? "unknown"
                print(
                    "command     #\(entry.sequence): \(BulbCommandCLI.text(command.action)), counter \(command.counter), "
                        + "controller certificate \(Hex.encode(command.certificateID.bytes).prefix(16))… "
                        + "(\(standing) at block \(proven.header.height))")
                guard bulb != nil else { continue }
                do {
                    let light = try bulb!.obey(command, certificate: proven)
                    print("            OBEYS: the light is \(light.on ? "on at \(light.level)%" : "off")")
                } catch {
                    print("            REFUSED: \(error.name)")
                    refused = true
                }
            }
            if waiting.entries.isEmpty { print("commands    none waiting after sequence \(after)") }
            print("next        --after \(waiting.entries.last?.sequence ?? after)")
            try session.save()
            if refused { throw ExitCode(3) }
        }
    }

    struct Inbox: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List transfers paying an address, each proven final and successful by the light client.",
            discussion: """
                The gateway lists final transfers to the address (v1/inbox, a few per request); each is checked
                here: it pays this address, its id is in the transactions root of a verified header, and its
                receipt is in that header's receipts root. A gateway can leave transfers out; it cannot add one.
                """)

        @Argument(help: "An amsc1... address (or give --key).")
        var address: String?

        @Option(help: "Secret key file whose address to use.")
        var key: String?

        @Option(help: "First block height to list from.")
        var from: UInt64 = 0

        @Option(help: "Stop after this many transfers.")
        var limit: Int = 20

        @OptionGroup var device: DeviceOptions

        func validate() throws {
            guard (address == nil) != (key == nil) else { throw ValidationError("give an address or --key") }
            guard limit > 0 else { throw ValidationError("--limit must be positive") }
        }

        func run() throws {
            let who = try key.map { Address(publicKey: try loadKey($0).xOnlyPublicKey) } ?? parseAddress(address!)
            var session = try device.open()
            print("address     \(who.bech32)")
            // The session proves each listed transfer and moves its cursor past it, so a gateway cannot keep the
            // listing going round; an empty page ends it.
            var cursor = (height: from, position: UInt64(0))
            var shown = 0
            while shown < limit {
                guard let incoming = try session.nextIncoming(who, from: cursor.height, position: cursor.position)
                else { break }
                let t = incoming.transfer
                let sender = Address(publicKey: try XOnlyPublicKey(bytes: t.sender))
                let at = incoming.inclusion
                print(
                    "received    \(Amount.format(t.amount)) AMSC from \(sender.bech32), "
                        + "block \(at.header.height) position \(at.position), success")
                cursor = (at.header.height, at.position + 1)
                shown += 1
            }
            print("proven      \(shown) transfer(s): inclusion and receipt checked against verified headers")
            try session.save()
        }
    }

    struct Paycode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive by payment code as a device: find payments without naming them to the gateway.",
            discussion: """
                Proves and unmasks each new notification to the device's notification address, tests the \
                one-time addresses of every payer against each finished epoch's committed recipient filter \
                (asking the gateway only for the epoch), and proves the accounts of the addresses that matched. \
                The cursors and payers are saved in --paycode-state (default: the --state file with \
                ".paycode" appended), so the next run goes on where this one stopped.

                Example:
                  amars device paycode --key data/keys/lock.key --state lock.state
                """)

        @OptionGroup var key: PaycodeCommand.KeyOption

        @Option(help: "Where the receiving cursors and payers are kept between runs.")
        var paycodeState: String?

        @OptionGroup var device: DeviceOptions

        func run() throws {
            let keys = try key.load().keys
            let statePath = paycodeState ?? device.state.map { $0 + ".paycode" }
            var saved = PaymentCodeReceiver.State()
            if let statePath, let data = FileManager.default.contents(atPath: statePath) {
                guard let state = try? PaymentCodeReceiver.State(decoding: Array(data)) else {
                    throw CLIError("\(statePath) is not a payment-code state file")
                }
                saved = state
            }
            var session = try device.open()
            var receiver = try PaymentCodeReceiver(
                keys: keys, state: saved, epochLength: session.sync.session.anchor.epochLength)
            print("payment code \(receiver.code.text)")
            print("notify at   \(receiver.code.notificationAddress.bech32)")
            var payments = 0
            while let operation = receiver.next() {
                let outcome = try session.run(operation)
                let events: [PaymentCodeReceiver.Event]
                do { events = try receiver.handle(outcome) } catch { throw CLIError("unexpected outcome: \(error)") }
                for event in events {
                    switch event {
                    case .payerAdded(let sender): print("notified    by \(sender.bech32): payer added")
                    case .payerKnown(let sender): print("notified    by \(sender.bech32) again: payer already known")
                    case .payersFull(let sender):
                        print(
                            "notified    by \(sender.bech32): not kept, the device keeps \(PaymentCodeReceiver.maxPayers)"
                        )
                    case .notificationSkipped(let index, let fault):
                        print("skipped     notification \(index): does not unmask to a code (\(fault))")
                    case .epochTested(let epoch, let matches, let bytes):
                        print(
                            "epoch \(epoch)     filter of \(bytes) bytes checked against its committed hash, "
                                + "\(matches) match(es)")
                    case .emptyMatch(let address):
                        print("match       \(address.bech32) holds nothing (a filter false positive)")
                    case .payment(let p):
                        payments += 1
                        print(
                            "paid        \(Amount.format(p.account.state.balance)) AMSC at \(p.address.bech32) "
                                + "(epoch \(p.epoch), payer \(p.payer), index \(p.index)), "
                                + "proven at block \(p.account.header.height)")
                    }
                }
            }
            print("found       \(payments) payment(s); tested up to epoch \(Int64(receiver.state.nextEpoch) - 1)")
            try session.save()
            if let statePath {
                guard FileManager.default.createFile(atPath: statePath, contents: Data(receiver.state.encoded)) else {
                    throw CLIError("cannot write \(statePath)")
                }
            }
        }
    }

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a transfer as a device, submit it over CoAP or MQTT, and verify that it is final.",
            discussion: """
                The nonce comes from the sender's verified account state and the fee cap from the verified head's
                base fee (twice the next base fee plus the tip, unless --max-fee). With --mqtt the transfer goes
                to the broker and the gateway's "accepted" and "final" receipts come back there; the inclusion
                proof is always fetched over CoAP and checked before the transfer is reported final.

                With --tls-cert, --tls-key and --tls-ca the device connects to the broker's TLS listener with its \
                short-lived certificate (`amars cert issue` writes chain.pem and key.pem), which is its login \
                there: it may publish only on its own topic.

                Example:
                  amars device send --key lock.key --to amsc1... --amount 1 --mqtt 127.0.0.1:8883 \
                      --tls-cert lock/short/chain.pem --tls-key lock/short/key.pem --tls-ca pki/root.pem
                """)

        @Option(help: "Secret key file of the sender (the device's key).")
        var key: String

        @Option(help: "Recipient address (amsc1...).")
        var to: String

        @Option(help: "Amount in AMSC, e.g. 10 or 0.25.")
        var amount: String

        @Option(help: "Submit over MQTT to this broker (host:port) instead of CoAP.")
        var mqtt: String?

        @Option(help: "With --mqtt: connect over TLS 1.2 with this certificate chain (the device's first: chain.pem).")
        var tlsCert: String?

        @Option(help: "With --tls-cert: the key of the device's certificate (key.pem).")
        var tlsKey: String?

        @Option(help: "With --tls-cert: the operator's root the broker's certificate chains to (root.pem).")
        var tlsCA: String?

        @OptionGroup var signing: DeviceSigningOptions
        @OptionGroup var device: DeviceOptions

        func validate() throws {
            let given = [tlsCert, tlsKey, tlsCA].filter { $0 != nil }.count
            guard given == 0 || given == 3 else {
                throw ValidationError("give --tls-cert, --tls-key and --tls-ca together")
            }
            guard given == 0 || mqtt != nil else { throw ValidationError("--tls-cert is for --mqtt") }
        }

        func run() throws {
            let signer = try loadKey(key)
            let recipient = try parseAddress(to)
            let units = try parseAmount(amount, flag: "--amount")
            var session = try device.open()
            let head = try session.verifiedHead()
            session.printHead(head)
            let sender = Address(publicKey: signer.xOnlyPublicKey)
            var mqttLink: MqttDeviceLink?
            if let mqtt {
                do {
                    var config = try MqttDeviceClient.Configuration(endpoint: mqtt)
                    if let tlsCert, let tlsKey, let tlsCA {
                        config.tls = .init(caFile: tlsCA, chainFile: tlsCert, keyFile: tlsKey)
                    }
                    mqttLink = MqttDeviceLink(client: try MqttDeviceClient(device: sender, configuration: config))
                } catch {
                    throw CLIError("MQTT: \(error)")
                }
            }
            let order = PaymentOrder(
                recipient: recipient, amount: units, tipPerUnit: signing.tip, maxFeePerUnit: signing.maxFee,
                auxRandom: signing.auxRandom(), finalityMillis: signing.finalityMillis)
            let paid = try session.pay(order, wallet: DeviceWallet(key: signer, nextNonce: 0), submitOver: mqttLink)
            if let client = mqttLink?.client {
                // The gateway's own "final" over MQTT must name the block the proof came from.
                let announced: MqttDeviceClient.FinalReceipt
                do { announced = try client.waitForFinal(paid.id, timeoutMillis: 10_000) } catch {
                    throw CLIError("MQTT: \(error)")
                }
                client.disconnect()
                guard announced.height == paid.inclusion.header.height else {
                    throw CLIError(
                        "the gateway announced height \(announced.height) over MQTT but proved height "
                            + "\(paid.inclusion.header.height) over CoAP")
                }
                print("announced   final at height \(announced.height) over MQTT too")
            }
            DeviceRun.printFinal(paid.inclusion)
            try session.save()
            if paid.inclusion.receipt.status != .success { throw ExitCode(2) }
        }
    }
}

/// What a device's own transaction pays and how long it waits to see it final (`device send`, `device htlc`).
struct DeviceSigningOptions: ParsableArguments {
    @Option(help: "Tip per resource unit for the proposer, in base units.")
    var tip: UInt64 = 1

    @Option(help: "Most you will pay per resource unit, in base units (default: 2 × next base fee + tip).")
    var maxFee: UInt64?

    @Option(help: "Seconds to wait for the transaction to become final.")
    var timeout: UInt64 = 60

    var finalityMillis: UInt32 { UInt32(min(timeout * 1000, UInt64(UInt32.max))) }

    /// Fresh BIP340 auxiliary randomness for the signature.
    func auxRandom() -> Bytes32 {
        var rng = SystemRandomNumberGenerator()
        return Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
    }
}

/// Where the device's gateway and trust anchor are.
struct DeviceOptions: ParsableArguments {
    @Option(help: "The gateway's CoAP endpoint.")
    var coap: String = ProcessInfo.processInfo.environment["AMARS_COAP"] ?? "coap://127.0.0.1:5683"

    @Option(help: "Genesis file: the trust anchor (genesis header hash and first committee are computed from it).")
    var genesis: String = "data/genesis.json"

    @Option(help: "Trusted-state file: resume from it and save the new state to it (created if missing).")
    var state: String?

    @Option(help: "Milliseconds before the first CoAP retransmission (doubled per retry, 4 retries).")
    var ackTimeout: UInt64 = 500

    @Option(help: "The operator's x-only key (64 hex) whose re-anchor statements this device accepts.")
    var reanchorKey: String?

    @Option(help: "A re-anchor statement (amars device reanchor) to trust instead of the saved state.")
    var reanchor: String?

    func open() throws -> DeviceRun {
        let g: Genesis
        do { g = try Genesis.load(path: genesis) } catch { throw CLIError("\(error)") }
        let anchor = DeviceTrustAnchor(
            genesisHeader: g.header, committee: g.committee(epoch: 0), epochLength: g.epochLength,
            trustingPeriodMillis: g.trustingPeriodMillis, reanchorKey: try reanchorKeyBytes())
        var config: CoAPDeviceClient.Configuration
        do { config = try CoAPDeviceClient.Configuration(url: coap) } catch { throw CLIError("--coap: \(error)") }
        config.ackTimeoutMillis = max(1, ackTimeout)
        let client: CoAPDeviceClient
        do { client = try CoAPDeviceClient(configuration: config) } catch { throw CLIError("--coap: \(error)") }
        print("trust       genesis header \(Hex.encode(anchor.genesisHeaderHash.bytes)) of chain \(anchor.chainID)")
        print(
            "            (from \(genesis): committee of \(anchor.committee.members.count), "
                + "epoch length \(anchor.epochLength), trusting period \(GenesisCommand.Inspect.duration(anchor.trustingPeriodMillis)))"
        )
        var sync: DeviceSync
        if let state, let stored = try Self.loadState(state) {
            // A state from before it named its genesis (zero) is completed from this anchor by the session.
            guard stored.chainID == anchor.chainID, stored.epochLength == anchor.epochLength,
                stored.genesis == .zero || stored.genesis == anchor.genesisHeaderHash
            else { throw CLIError("\(state) belongs to another chain than \(genesis)") }
            sync = DeviceSync(anchor: anchor, trusted: stored)
            print("resumed     trusted epoch \(stored.epoch) from \(state)")
        } else {
            do { sync = try DeviceSync.anchor(anchor, source: client) } catch {
                throw CLIError("gateway \(coap): \(error)")
            }
            print("anchored    genesis header fetched from \(config.host):\(config.port) matches the trusted hash")
        }
        if let reanchor {
            guard let data = FileManager.default.contents(atPath: reanchor), data.count <= 1 << 16,
                let statement = try? ReanchorPayload(decoding: Array(data))
            else { throw CLIError("\(reanchor) is not a re-anchor statement") }
            do { try sync.reanchor(statement) } catch { throw CLIError("\(reanchor): \(error)") }
            print("reanchored  trusted epoch \(sync.trusted.epoch) on the operator's word (\(reanchor))")
        }
        return DeviceRun(client: client, sync: sync, statePath: state)
    }

    private func reanchorKeyBytes() throws -> Bytes32? {
        guard let reanchorKey else { return nil }
        guard let raw = try? Hex.decode(reanchorKey), let key = Bytes32(raw), (try? XOnlyPublicKey(bytes: key)) != nil
        else { throw CLIError("--reanchor-key takes an x-only public key: 64 hex digits") }
        return key
    }

    static func loadState(_ path: String) throws -> TrustedState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), data.count <= TrustedState.maxEncodedSize,
            let state = try? TrustedState(decoding: Array(data))
        else { throw CLIError("\(path) is not a trusted-state file") }
        return state
    }
}

/// One run of a device command: the CoAP client, the device session, and printing what was verified.
struct DeviceRun {
    let client: CoAPDeviceClient
    var sync: DeviceSync
    let statePath: String?
    private var synced = false

    init(client: CoAPDeviceClient, sync: DeviceSync, statePath: String?) {
        self.client = client
        self.sync = sync
        self.statePath = statePath
    }

    mutating func syncCheckpoints() throws -> SyncProgress {
        let progress: SyncProgress
        do { progress = try sync.sync(source: client, onReport: Self.show) } catch { throw failure(error) }
        synced = true
        if progress.checkpoints == 0 {
            print("synced      already at epoch \(progress.toEpoch): no newer checkpoint")
        } else {
            let how =
                progress.skips == 0
                ? "each > 2/3 of its epoch's committee"
                : "\(progress.skips) skip\(progress.skips == 1 ? "" : "s") carrying >= 1/3 of the trusted pool"
            print(
                "synced      epochs \(progress.fromEpoch) → \(progress.toEpoch): "
                    + "\(progress.checkpoints) checkpoint\(progress.checkpoints == 1 ? "" : "s"), "
                    + "\(progress.signaturesChecked) signatures checked, \(how)")
        }
        return progress
    }

    mutating func verifiedHead() throws -> TrustedHeader {
        if !synced { _ = try syncCheckpoints() }
        do { return try sync.verifiedHead(source: client) } catch { throw failure(error) }
    }

    mutating func verifiedAccount(_ address: Address) throws -> VerifiedAccount {
        if !synced { _ = try syncCheckpoints() }
        do { return try sync.verifiedAccount(address, source: client) } catch { throw failure(error) }
    }

    mutating func verifiedEscrow(_ id: Bytes32) throws -> VerifiedEscrow {
        if !synced { _ = try syncCheckpoints() }
        do { return try sync.verifiedEscrow(id, source: client) } catch { throw failure(error) }
    }

    mutating func verifiedCertificate(_ id: Bytes32) throws -> VerifiedCertificate {
        if !synced { _ = try syncCheckpoints() }
        do { return try sync.verifiedCertificate(id, source: client) } catch { throw failure(error) }
    }

    mutating func verifiedInclusion(_ id: Bytes32) throws -> VerifiedInclusion {
        do { return try sync.verifiedInclusion(id, source: client) } catch { throw failure(error) }
    }

    mutating func waitForInclusion(_ id: Bytes32, timeoutMillis: UInt64) throws -> VerifiedInclusion {
        do { return try sync.waitForInclusion(id, source: client, timeoutMillis: timeoutMillis) } catch {
            throw failure(error)
        }
    }

    /// Runs `operation` after the first sync of this run.
    mutating func run(_ operation: DeviceOperation) throws -> DeviceOutcome {
        if !synced { _ = try syncCheckpoints() }
        do { return try sync.run(operation, source: client, onReport: Self.show) } catch { throw failure(error) }
    }

    /// The next transfer paying `address` listed from (`from`, `position`) on, proven final and successful
    /// (failed ones are passed over and shown); nil when the gateway lists no more.
    mutating func nextIncoming(_ address: Address, from: UInt64, position: UInt64) throws -> VerifiedIncoming? {
        if !synced { _ = try syncCheckpoints() }
        do {
            let outcome = try sync.run(
                .receive(address, from: from, position: position, waitMillis: 0), source: client, onReport: Self.show)
            guard case .received(let incoming) = outcome else { return nil }
            return incoming
        } catch .device(.nothingReceived) {
            return nil
        } catch {
            throw failure(error)
        }
    }

    /// Runs `operation` with `wallet` as the device's own account (a payment, a claim).
    mutating func run(_ operation: DeviceOperation, wallet: DeviceWallet) throws -> DeviceOutcome {
        sync.setWallet(wallet)
        return try run(operation)
    }

    /// Pays from `wallet`'s account: balance proven, transfer signed and submitted (over `submitOver` when given,
    /// CoAP otherwise), inclusion and receipt proven.
    mutating func pay(_ order: PaymentOrder, wallet: DeviceWallet, submitOver mqtt: MqttDeviceLink?) throws
        -> VerifiedPayment
    {
        sync.setWallet(wallet)
        let outcome: DeviceOutcome
        do {
            if let mqtt {
                outcome = try sync.run(.pay(order), source: SplitLink(main: client, submit: mqtt), onReport: Self.show)
            } else {
                outcome = try sync.run(.pay(order), source: client, onReport: Self.show)
            }
        } catch {
            throw failure(error)
        }
        guard case .paid(let payment) = outcome else { throw CLIError("unexpected outcome \(outcome)") }
        return payment
    }

    /// What the session did on the way, in the command's columns.
    static func show(_ report: DeviceReport) {
        switch report {
        case .signed(let id, let nonce, let maxFee, let baseFee, let height):
            print("signed      nonce \(nonce), fee cap \(maxFee) per unit (base fee \(baseFee) after block \(height))")
            print("transaction \(Hex.encode(id.bytes))")
        case .submitted(_, let bytes): print("accepted    by the gateway (\(bytes) bytes)")
        case .failedTransferSkipped(let id):
            print("failed      \(Hex.encode(id.bytes)): final, but its proven receipt says failed")
        case .skipped(let from, let to, let height, let signatures):
            print("skipped     from epoch \(from) to \(to) (checkpoint at height \(height), \(signatures) signatures)")
        case .reanchored(let epoch, let height):
            print(
                "reanchored  trust had expired: the operator's statement moved it to epoch \(epoch) (height \(height))")
        case .claimable(_, let amount, let expiry, let height):
            print(
                "claimable   \(Amount.format(amount)) AMSC for this device up to block \(expiry), locked to the "
                    + "secret's hash (proven at block \(height))")
        case .certificateIssued(let id, let notAfter, let height):
            print(
                "issued      certificate \(Hex.encode(id.bytes)) until \(isoTime(notAfter)) (dated by block \(height))")
        case .checkpointVerified, .headerVerified, .listed: break
        }
    }

    /// Names the gateway in transport failures, and says plainly when the light client refused its data.
    private func failure(_ error: DeviceSyncError) -> CLIError {
        let gateway = "coap://\(client.configuration.host):\(client.configuration.port)"
        guard error.isVerificationFailure else {
            return CLIError("gateway \(gateway): \(error)", exitStatus: error.exitStatus, cause: error)
        }
        return CLIError(
            "NOT VERIFIED: data from \(gateway) refused: \(error)", exitStatus: error.exitStatus, cause: error)
    }

    func printHead(_ head: TrustedHeader) {
        print("head        height \(head.height), epoch \(head.epoch), hash \(Hex.encode(head.hash.bytes))")
        print("            state root \(Hex.encode(head.stateRoot.bytes)), base fee \(head.baseFee)")
        print("            verified: \(Self.basisText(head.basis))")
    }

    /// The line for an object proven absent, and the exit status that says so (2).
    static func absent(_ label: String, id: String, at header: TrustedHeader) -> ExitCode {
        print("\(label) none with id \(id) (absence proven against block \(header.height))")
        return ExitCode(2)
    }

    /// The lines under a state the device proved.
    static func printProven(_ header: TrustedHeader) {
        print("proven      state proof checked against the state root of block \(header.height)")
        print("            (\(basisText(header.basis)))")
    }

    /// The lines under a transaction of the device's own, proven final.
    static func printFinal(_ inclusion: VerifiedInclusion) {
        let r = inclusion.receipt
        print(
            "final       at height \(inclusion.header.height) (epoch \(inclusion.header.epoch)), "
                + "position \(inclusion.position)")
        print("            inclusion proof checked against the block's transactions root")
        print("            (\(basisText(inclusion.header.basis)))")
        print("receipt     \(r.status == .success ? "success" : "failed"), fee \(r.feePaid) units (proven)")
    }

    static func basisText(_ basis: TrustedHeader.Basis) -> String {
        switch basis {
        case .certificate(let signatures, let weight, let total):
            "certificate with \(signatures) valid signature\(signatures == 1 ? "" : "s"), "
                + "weight \(weight) of \(total) > 2/3"
        case .trustedCheckpoint:
            "it is the trusted checkpoint itself"
        }
    }

    /// Writes the trusted state atomically, so an interrupted write leaves the previous file.
    func save() throws {
        guard let statePath else { return }
        do { try Data(sync.trusted.encoded).write(to: URL(fileURLWithPath: statePath), options: .atomic) } catch {
            throw CLIError("cannot save the trusted state to \(statePath): \(error)")
        }
    }
}
