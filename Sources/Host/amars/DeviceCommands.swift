import DeviceProtocol
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import DeviceCore
import Foundation
import Ledger
import LightClient

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
            """,
        subcommands: [Head.self, Sync.self, Balance.self, Send.self, Inbox.self, Escrow.self])

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
            print("proven      state proof checked against the state root of block \(account.header.height)")
            print("            (\(DeviceSession.basisText(account.header.basis)))")
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
                print("escrow      none with id \(id) (absence proven against block \(proven.header.height))")
                throw ExitCode(2)
            }
            print("escrow      \(e.status), device \(e.device.bech32), renter \(e.renter.bech32)")
            print(
                "            deposit \(Amount.format(e.deposit)) AMSC, fee \(Amount.format(e.rentalFee)) AMSC, expires after block \(e.expiryHeight)"
            )
            print("proven      state proof checked against the state root of block \(proven.header.height)")
            print("            (\(DeviceSession.basisText(proven.header.basis)))")
            try session.save()
            if let lock {
                let opens = e.status == .open && e.device == lock && proven.header.height <= e.expiryHeight
                print("lock        \(opens ? "OPENS" : "stays locked") for \(lock.bech32)")
                if !opens { throw ExitCode(3) }
            }
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
            // The cursor moves past every listed entry, so a gateway cannot keep the listing going round.
            var cursor = (height: from, position: UInt64(0))
            var shown = 0
            listing: while shown < limit {
                let page: InboxPayload
                do { page = try session.client.inbox(who, from: cursor.height, position: cursor.position) } catch {
                    throw CLIError("inbox: \(error)")
                }
                for entry in page.entries {
                    guard (entry.height, entry.position) >= cursor else {
                        throw CLIError("NOT VERIFIED: the gateway listed a transfer before the one asked for")
                    }
                    guard case .transfer(let transfer) = entry.transaction.body.payload, transfer.to == who else {
                        throw CLIError("NOT VERIFIED: the gateway lists a transaction that does not pay \(who.bech32)")
                    }
                    let proven = try session.verifiedInclusion(entry.transaction.id)
                    guard proven.header.height == entry.height, proven.position == entry.position else {
                        throw CLIError("NOT VERIFIED: the gateway listed the transfer at another place than it proved")
                    }
                    let sender = Address(publicKey: try XOnlyPublicKey(bytes: entry.transaction.body.sender))
                    let status = proven.receipt.status == .success ? "success" : "failed"
                    print(
                        "received    \(Amount.format(transfer.amount)) AMSC from \(sender.bech32), "
                            + "block \(entry.height) position \(entry.position), \(status)")
                    cursor = (entry.height, entry.position + 1)
                    shown += 1
                    if shown == limit { break listing }
                }
                // A short answer was the end.
                guard page.entries.count == InboxPayload.maxEntries else { break }
            }
            print("proven      \(shown) transfer(s): inclusion and receipt checked against verified headers")
            try session.save()
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
                """)

        @Option(help: "Secret key file of the sender (the device's key).")
        var key: String

        @Option(help: "Recipient address (amsc1...).")
        var to: String

        @Option(help: "Amount in AMSC, e.g. 10 or 0.25.")
        var amount: String

        @Option(help: "Tip per resource unit for the proposer, in base units.")
        var tip: UInt64 = 1

        @Option(help: "Most you will pay per resource unit, in base units (default: 2 × next base fee + tip).")
        var maxFee: UInt64?

        @Option(help: "Submit over MQTT to this broker (host:port) instead of CoAP.")
        var mqtt: String?

        @Option(help: "Seconds to wait for the transfer to become final.")
        var timeout: UInt64 = 60

        @OptionGroup var device: DeviceOptions

        func run() throws {
            let signer = try loadKey(key)
            let recipient = try parseAddress(to)
            let units = try parseAmount(amount, flag: "--amount")
            var session = try device.open()
            let head = try session.verifiedHead()
            session.printHead(head)
            let sender = Address(publicKey: signer.xOnlyPublicKey)
            let account = try session.verifiedAccount(sender)
            print("sender      \(sender.bech32): \(Amount.format(account.state.balance)) AMSC")
            print("            nonce \(account.state.nonce)")
            print("            (state proof checked against block \(account.header.height))")
            let cap = maxFee ?? (FeeSchedule.standard.nextBaseFee(after: head.header) * 2 + tip)
            let wallet = DeviceWallet(key: signer, nextNonce: account.state.nonce)
            var rng = SystemRandomNumberGenerator()
            let tx: SignedTransaction
            do {
                tx = try wallet.transfer(
                    chainID: session.sync.trusted.chainID, to: recipient, amount: units, maxFeePerUnit: cap,
                    tipPerUnit: tip,
                    auxRandom: Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next()))
            } catch {
                throw CLIError("cannot sign: \(error)")
            }
            print("signed      \(Amount.format(units)) AMSC to \(recipient.bech32)")
            print("            nonce \(tx.body.nonce), fee cap \(cap) per unit, tip \(tip)")
            print("transaction \(Hex.encode(tx.id.bytes))")
            let timeoutMillis = timeout * 1000
            var announced: MqttDeviceClient.FinalReceipt?
            if let mqtt {
                let config: MqttDeviceClient.Configuration
                do { config = try MqttDeviceClient.Configuration(endpoint: mqtt) } catch { throw CLIError("\(error)") }
                do {
                    let client = try MqttDeviceClient(device: sender, configuration: config)
                    try client.submit(tx, timeoutMillis: 10_000)
                    print("accepted    by the gateway over MQTT (\(config.host):\(config.port))")
                    let final = try client.waitForFinal(tx.id, timeoutMillis: timeoutMillis)
                    print("announced   final at height \(final.height) over MQTT; verifying over CoAP")
                    announced = final
                    client.disconnect()
                } catch {
                    throw CLIError("MQTT: \(error)")
                }
            } else {
                do { _ = try session.client.submit(tx) } catch { throw CLIError("CoAP submit: \(error)") }
                print("accepted    by the gateway over CoAP (2.01)")
            }
            let inclusion = try session.waitForInclusion(tx.id, timeoutMillis: timeoutMillis)
            if let announced, announced.height != inclusion.header.height {
                throw CLIError(
                    "the gateway announced height \(announced.height) over MQTT but proved height "
                        + "\(inclusion.header.height) over CoAP")
            }
            let r = inclusion.receipt
            print(
                "final       at height \(inclusion.header.height) (epoch \(inclusion.header.epoch)), "
                    + "position \(inclusion.position)")
            print("            inclusion proof checked against the block's transactions root")
            print("            (\(DeviceSession.basisText(inclusion.header.basis)))")
            print("receipt     \(r.status == .success ? "success" : "failed"), fee \(r.feePaid) units (proven)")
            try session.save()
            if r.status != .success { throw ExitCode(2) }
        }
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

    func open() throws -> DeviceSession {
        let g: Genesis
        do { g = try Genesis.load(path: genesis) } catch { throw CLIError("\(error)") }
        let anchor = DeviceTrustAnchor(genesisHeader: g.header, committee: g.committee(epoch: 0), epochLength: g.epochLength)
        var config: CoAPDeviceClient.Configuration
        do { config = try CoAPDeviceClient.Configuration(url: coap) } catch { throw CLIError("--coap: \(error)") }
        config.ackTimeoutMillis = max(1, ackTimeout)
        let client: CoAPDeviceClient
        do { client = try CoAPDeviceClient(configuration: config) } catch { throw CLIError("--coap: \(error)") }
        print("trust       genesis header \(Hex.encode(anchor.genesisHeaderHash.bytes)) of chain \(anchor.chainID)")
        print(
            "            (from \(genesis): committee of \(anchor.committee.members.count), "
                + "epoch length \(anchor.epochLength))")
        var sync: DeviceSync
        if let state, let stored = try Self.loadState(state) {
            guard stored.chainID == anchor.chainID, stored.epochLength == anchor.epochLength else {
                throw CLIError("\(state) belongs to another chain than \(genesis)")
            }
            sync = DeviceSync(trusted: stored)
            print("resumed     trusted epoch \(stored.epoch) from \(state)")
        } else {
            do { sync = try DeviceSync.anchor(anchor, source: client) } catch {
                throw CLIError("gateway \(coap): \(error)")
            }
            print("anchored    genesis header fetched from \(config.host):\(config.port) matches the trusted hash")
        }
        return DeviceSession(client: client, sync: sync, statePath: state)
    }

    static func loadState(_ path: String) throws -> TrustedState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), data.count <= TrustedState.maxEncodedSize,
            let state = try? TrustedState(decoding: Array(data))
        else { throw CLIError("\(path) is not a trusted-state file") }
        return state
    }
}

/// One run of a device command: the CoAP client, the trusted state, and printing what was verified.
struct DeviceSession {
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
        do { progress = try sync.sync(source: client) } catch { throw failure(error) }
        synced = true
        if progress.checkpoints == 0 {
            print("synced      already at epoch \(progress.toEpoch): no newer checkpoint")
        } else {
            print(
                "synced      epochs \(progress.fromEpoch) → \(progress.toEpoch): "
                    + "\(progress.checkpoints) checkpoint\(progress.checkpoints == 1 ? "" : "s"), "
                    + "\(progress.signaturesChecked) signatures checked, each > 2/3 of its epoch's committee")
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

    mutating func verifiedInclusion(_ id: Bytes32) throws -> VerifiedInclusion {
        do { return try sync.verifiedInclusion(id, source: client) } catch { throw failure(error) }
    }

    mutating func waitForInclusion(_ id: Bytes32, timeoutMillis: UInt64) throws -> VerifiedInclusion {
        do { return try sync.waitForInclusion(id, source: client, timeoutMillis: timeoutMillis) } catch {
            throw failure(error)
        }
    }

    /// Names the gateway in transport failures, and says plainly when the light client refused its data.
    private func failure(_ error: DeviceSyncError) -> CLIError {
        let gateway = "coap://\(client.configuration.host):\(client.configuration.port)"
        switch error {
        case .transport(let e): return CLIError("gateway \(gateway): \(e)")
        case .rejected, .inconsistent, .outsideTrust:
            return CLIError("NOT VERIFIED: data from \(gateway) refused: \(error)")
        }
    }

    func printHead(_ head: TrustedHeader) {
        let h = head.header
        print("head        height \(h.height), epoch \(h.epoch), hash \(Hex.encode(head.hash.bytes))")
        print("            state root \(Hex.encode(h.stateRoot.bytes)), base fee \(h.baseFee)")
        print("            verified: \(Self.basisText(head.basis))")
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
