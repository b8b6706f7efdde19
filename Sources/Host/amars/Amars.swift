import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import Foundation
import Ledger
import QRCode
import BuildInfo

@main
struct Amars: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amars",
        abstract: "Amarscity command line: keys, transfers, staking, chain queries and genesis files.",
        discussion: """
            Commands that talk to a node use --node (default $AMARS_NODE or http://127.0.0.1:8645).
            Amounts are in AMSC with up to 6 decimals (1 AMSC = 1,000,000 base units).

            First steps on a devnet (make devnet):
              amars key new --out data/keys/alice.key
              amars transfer --key data/keys/app-user-incentive.key --to $(amars address --key data/keys/alice.key) --amount 10
              amars balance $(amars address --key data/keys/alice.key)

            Staking (see 'amars candidate register --help' and 'amars stake --help'):
              amars candidate list
              amars stake --key data/keys/alice.key --candidate validator-1 --amount 5 --duration 30 --wait
              amars buckets $(amars address --key data/keys/alice.key)
            """,
        version: BuildInfo.description,
        subcommands: [
            KeyCommand.self, AddressCommand.self, Balance.self, Transfer.self, RequestCommand.self, Head.self,
            TxStatus.self,
            GenesisCommand.self, CandidateCommand.self, StakeCommand.self, RestakeCommand.self, UnstakeCommand.self,
            WithdrawCommand.self, BucketsCommand.self, CommitteeCommand.self, CheckpointsCommand.self,
            DeviceCommand.self,
            EscrowCommand.self, EvidenceCommand.self, PaycodeCommand.self, StealthCommand.self, CertCommand.self,
            HTLCCommand.self, ChannelCommand.self, BulbCommandCLI.self,
        ]
    )

    /// ArgumentParser's own entry, except that a device's refusals a script acts on get their own status
    /// (``DeviceSyncError/exitStatus``) instead of the generic 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let status = (error as? CLIError)?.exitStatus ?? (error as? DeviceSyncError)?.exitStatus ?? 1
            guard status != 1 else { exit(withError: error) }
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(status)
        }
    }
}

/// Where the node is: flag, then environment, then the devnet default.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "Base URL of an amarsd HTTP API.")
    var node: String = ProcessInfo.processInfo.environment["AMARS_NODE"] ?? "http://127.0.0.1:8645"

    func get(_ path: String) throws -> [String: Any] {
        try call { try HTTPClient(baseURL: node).get(path) }
    }

    /// The genesis block hash in a `/v1/head` answer: what signed transactions and votes name the chain by.
    static func genesisBlockHash(in head: [String: Any]) throws -> Bytes32 {
        guard let hash = (head["genesisBlockHash"] as? String).flatMap({ try? Hex.decode($0) }).flatMap(Bytes32.init)
        else { throw CLIError("the node's head has no genesisBlockHash") }
        return hash
    }

    func post(_ path: String, json: [String: Any]) throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: json)
        return try call { try HTTPClient(baseURL: node).post(path, body: Array(body), contentType: "application/json") }
    }

    /// A typed call through ``NodeClient``; its errors become one CLI line like the raw calls'.
    func typed<T>(_ body: (NodeClient) throws -> T) throws -> T {
        do {
            return try body(try NodeClient(baseURL: node))
        } catch let e as NodeClientError {
            if case .api(let status, let code, let message) = e {
                throw CLIError("node refused (\(code.isEmpty ? String(status) : code)): \(message)")
            }
            throw CLIError("\(e)")
        }
    }

    private func call(_ request: () throws -> HTTPResponse) throws -> [String: Any] {
        let response: HTTPResponse
        do { response = try request() } catch { throw CLIError("\(error)") }
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        guard (200..<300).contains(response.status) else {
            if let e = object?["error"] as? [String: Any] {
                throw CLIError("node refused (\(e["code"] ?? response.status)): \(e["message"] ?? "")")
            }
            throw CLIError("node answered HTTP \(response.status)")
        }
        guard let object else { throw CLIError("node answered something that is not a JSON object") }
        return object
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    /// The exit status (1 unless a script should be able to tell this failure apart).
    var exitStatus: Int32
    /// The typed failure behind the line, when a caller may act on its case.
    var cause: (any Error)?
    init(_ description: String, exitStatus: Int32 = 1, cause: (any Error)? = nil) {
        self.description = description
        self.exitStatus = exitStatus
        self.cause = cause
    }
}

/// Integers arrive as JSON numbers or, when they may exceed 2^53, as decimal strings.
func jsonUInt64(_ value: Any?) -> UInt64? {
    if let s = value as? String { return UInt64(s) }
    if let n = value as? NSNumber, n.int64Value >= 0 { return n.uint64Value }
    return nil
}

func parseAddress(_ text: String) throws -> Address {
    do { return try Address(bech32: text) } catch {
        throw CLIError("'\(text)' is not an amsc address (\(error)); addresses look like amsc1...")
    }
}

struct AddressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "address", abstract: "Print the address of a key file or of an x-only public key.")

    @Option(help: "Secret key file.")
    var key: String?

    @Option(help: "x-only public key, 64 hex digits.")
    var publicKey: String?

    func validate() throws {
        guard (key == nil) != (publicKey == nil) else {
            throw ValidationError("give exactly one of --key or --public-key")
        }
    }

    func run() throws {
        if let key {
            print(Address(publicKey: try loadKey(key).xOnlyPublicKey).bech32)
        } else if let publicKey {
            guard let bytes = try? Hex.decode(publicKey), let raw = Bytes32(bytes),
                let pub = try? XOnlyPublicKey(bytes: raw)
            else { throw CLIError("--public-key must be 64 hex digits of a valid x-only key") }
            print(Address(publicKey: pub).bech32)
        }
    }
}

// MARK: - queries

struct Balance: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an account's balance and nonce.")

    @Argument(help: "An amsc1... address.")
    var address: String

    @OptionGroup var node: NodeOptions

    func run() throws {
        _ = try parseAddress(address)
        let a = try node.get("/v1/accounts/\(address)")
        print("address  \(a["address"] ?? address)")
        print("balance  \(a["balanceAMSC"] ?? "?") AMSC (\(a["balance"] ?? "?") units)")
        print("nonce    \(a["nonce"] ?? "?") (pending \(a["pending"] ?? 0))")
        print("at       height \(a["height"] ?? "?")")
    }
}

struct Head: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the node's latest finalized block.")

    @OptionGroup var node: NodeOptions

    func run() throws {
        let h = try node.get("/v1/head")
        for key in [
            "chainName", "chainID", "height", "hash", "epoch", "stateRoot", "baseFee", "nextBaseFee", "pending",
        ] {
            print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + "\(h[key] ?? "?")")
        }
    }
}

struct TxStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tx", abstract: "Show a transaction's status.")

    @Argument(help: "Transaction id (64 hex digits).")
    var id: String

    @OptionGroup var node: NodeOptions

    func run() throws {
        guard let bytes = try? Hex.decode(id), bytes.count == 32 else {
            throw CLIError("a transaction id is 64 hex digits")
        }
        let s = try node.get("/v1/tx/\(Hex.encode(bytes))")
        print("status  \(s["status"] ?? "?")")
        if let code = s["code"] { print("code    \(code) (dropped without a block)") }
        if let h = s["height"] { print("height  \(h)") }
        if let r = s["receipt"] as? [String: Any] { print("fee     \(r["feePaid"] ?? "?") units") }
    }
}

// MARK: - transfer

struct Transfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign and send a transfer.",
        discussion: """
            The nonce and the base fee come from the node. Before sending, the fee is printed: what the transfer \
            is expected to cost at the next block's base fee plus the tip, and the cap you agree to (by default \
            twice the next base fee plus the tip, so the transfer still fits if the base fee rises for a few \
            blocks). You pay only the base fee at inclusion plus the tip.

            Examples:
              amars transfer --key alice.key --to amsc1... --amount 2.5 --memo "coffee" --wait
              amars transfer --key alice.key --request "amarscity:amsc1...?amount=2.5&memo=coffee"
            """)

    @Option(help: "Secret key file of the sender.")
    var key: String

    @Option(help: "Recipient address (amsc1...).")
    var to: String?

    @Option(help: "Amount in AMSC, e.g. 10 or 0.25.")
    var amount: String?

    @Option(help: "A note for the recipient, up to 64 bytes of UTF-8 (public on chain).")
    var memo: String?

    @Option(help: "Pay a payment request (an amarscity: URI from 'amars request' or a scanned QR code).")
    var request: String?

    @OptionGroup var send: SendOptions

    @OptionGroup var node: NodeOptions

    /// What to pay: the request's fields, each overridable only where the request left it open.
    func payment() throws -> PaymentRequest {
        let address: Address
        var amountText = amount
        var memoText = memo ?? ""
        if let request {
            let asked: PaymentRequest
            do { asked = try PaymentRequest(uri: request) } catch { throw CLIError("--request: \(error)") }
            guard to == nil else { throw ValidationError("--to comes from --request; give one or the other") }
            if let fixed = asked.amount {
                guard amount == nil else { throw ValidationError("the request fixes the amount; drop --amount") }
                amountText = Amount.format(fixed)
            }
            if !asked.memo.isEmpty {
                guard memo == nil else { throw ValidationError("the request fixes the memo; drop --memo") }
                memoText = asked.memo
            }
            address = asked.address
        } else {
            guard let to else { throw ValidationError("give --to (or --request)") }
            address = try parseAddress(to)
        }
        let payment = try PaymentRequest.fromFlags(address: address, amount: amountText, memo: memoText)
        guard payment.amount != nil else { throw ValidationError("give --amount (the request leaves it open)") }
        return payment
    }

    func run() throws {
        let signer = try loadKey(key)
        let payment = try payment()
        let units = payment.amount ?? 0
        let recipient = payment.address
        let sender = Address(publicKey: signer.xOnlyPublicKey)
        let sent = try send.send(
            .transfer(Ledger.Transfer(to: recipient, amount: units, memo: Array(payment.memo.utf8))), signer: signer,
            node: node)
        print("sent \(Amount.format(units)) AMSC from \(sender.bech32) to \(recipient.bech32)")
        try send.finish(sent, sender: sender, node: node)
    }
}

struct RequestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request", abstract: "Print a payment request: a URI and its QR code.",
        discussion: """
            The URI is amarscity:<address>?amount=<AMSC>&memo=<text> (BIP21's form). A payer runs \
            'amars transfer --request URI' or scans the QR code; the explorer's /request page shows the same code.

            Example:
              amars request --to $(amars address --key shop.key) --amount 2.5 --memo "order 17"
            """)

    @Option(help: "Address to be paid (amsc1...).")
    var to: String

    @Option(help: "Amount in AMSC; leave out to let the payer choose.")
    var amount: String?

    @Option(help: "A note the payment carries, up to 64 bytes of UTF-8.")
    var memo: String = ""

    @Option(help: "Also write the QR code as an SVG file.")
    var svg: String?

    @Flag(help: "Print only the URI, no QR code.")
    var noQR = false

    func run() throws {
        let uri = try PaymentRequest.fromFlags(address: try parseAddress(to), amount: amount, memo: memo).uri
        print(uri)
        guard !noQR || svg != nil else { return }
        let code: QRCode
        do { code = try QRCode(uri) } catch { throw CLIError("\(error)") }
        if let svg {
            guard FileManager.default.createFile(atPath: svg, contents: Data(code.svg().utf8)) else {
                throw CLIError("cannot write --svg \(svg)")
            }
        }
        if !noQR { print(code.terminal, terminator: "") }
    }
}

/// Fee and wait flags of every command that sends a transaction, and the one place that signs and sends.
struct SendOptions: ParsableArguments {
    @Option(help: "Tip per resource unit for the proposer, in base units.")
    var tip: UInt64 = 1

    @Option(help: "Most you will pay per resource unit, in base units (default: 2 × next base fee + tip).")
    var maxFee: UInt64?

    @Flag(help: "Wait until the transaction is in a finalized block (or report that it was dropped).")
    var wait = false

    struct Sent {
        var id: String
        var nonce: UInt64
    }

    /// Signs `payload` with the nonce and base fee the node reports and submits it; the node's refusal (code
    /// and message) is the error.
    func send(_ payload: TransactionPayload, signer: PrivateKey, node: NodeOptions) throws -> Sent {
        try send(signer: signer, node: node) { _ in payload }
    }

    /// As ``send(_:signer:node:)`` for a payload that depends on the nonce (a payment-code notification's mask
    /// binds to it).
    func send(signer: PrivateKey, node: NodeOptions, payload: (UInt64) throws -> TransactionPayload) throws -> Sent {
        let sender = Address(publicKey: signer.xOnlyPublicKey)
        let head = try node.get("/v1/head")
        let account = try node.get("/v1/accounts/\(sender.bech32)")
        let genesis = try NodeOptions.genesisBlockHash(in: head)
        guard let nextBaseFee = jsonUInt64(head["nextBaseFee"]), let nonce = jsonUInt64(account["nextNonce"]) else {
            throw CLIError("the node's answer lacks nextBaseFee or nextNonce")
        }
        let cap = maxFee ?? (nextBaseFee * 2 + tip)
        guard tip <= cap else { throw CLIError("--tip cannot exceed --max-fee") }
        let body = TransactionBody(
            genesis: genesis, sender: signer.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: cap, tipPerUnit: tip,
            payload: try payload(nonce))
        var rng = SystemRandomNumberGenerator()
        let aux = Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())
        let tx = SignedTransaction(body: body, signer: signer, auxRandom: aux)
        print(
            Self.feeLine(
                units: FeeSchedule.fromHead(head).units(encodedSize: tx.encoded.count), baseFee: nextBaseFee, cap: cap,
                tip: tip))
        let answer = try node.post("/v1/tx", json: ["tx": Hex.encode(tx.encoded)])
        return Sent(id: answer["id"] as? String ?? Hex.encode(tx.id.bytes), nonce: nonce)
    }

    /// Prints the transaction's id and, with `--wait`, waits until it is final (or dropped: then the error).
    func finish(_ sent: Sent, sender: Address, node: NodeOptions) throws {
        print("transaction \(sent.id) (nonce \(sent.nonce))")
        guard wait else { return }
        switch try waitForInclusion(sent, node: node) {
        case .included(let height, let fee):
            print("final in block \(height) (fee \(Amount.format(fee)) AMSC = \(fee) units)")
        case .dropped:
            throw CLIError(
                "not included: the node dropped transaction \(sent.id) when building a block "
                    + "(its balance or nonce changed); check with: amars balance \(sender.bech32)")
        }
    }

    /// What a sender agrees to, in words: the expected fee at the next base fee and the most it can cost.
    static func feeLine(units: UInt64, baseFee: UInt64, cap: UInt64, tip: UInt64) -> String {
        // Saturating: a cap a sender typed can be any 64-bit number, and the line must not trap before sending.
        func cost(_ price: UInt64) -> String {
            let (total, overflow) = units.multipliedReportingOverflow(by: price)
            return overflow ? "more than \(Amount.format(.max))" : Amount.format(total)
        }
        let price = FeeSchedule.standard.effectivePrice(baseFee: baseFee, maxFeePerUnit: cap, tipPerUnit: tip)
        let expected =
            price.map {
                "expected \(cost($0)) AMSC (\(units) units × \($0): base fee \(baseFee) + tip \($0 - baseFee))"
            }
            ?? "cap below the next base fee \(baseFee): it waits until the base fee falls"
        return "fee         \(expected); at most \(cost(cap)) AMSC (cap \(cap) per unit)"
    }

    enum Outcome {
        case included(height: UInt64, fee: UInt64)
        /// Neither pending nor in a block: the block builder found that it no longer executes and dropped it.
        case dropped
    }

    /// Polls the transaction's status for up to 30 s.
    func waitForInclusion(_ sent: Sent, node: NodeOptions) throws -> Outcome {
        guard let raw = try? Hex.decode(sent.id), let id = Bytes32(raw) else {
            throw CLIError("the node answered a malformed transaction id \(sent.id)")
        }
        let client: NodeClient
        do { client = try NodeClient(baseURL: node.node) } catch { throw CLIError("\(error)") }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            do {
                switch try client.transactionStatus(id).state {
                case .included(let height, _, let receipt): return .included(height: height, fee: receipt.feePaid)
                case .refused: return .dropped  // the node journaled it, then its block builder dropped it
                case .pending: break
                }
            } catch  where error.code == "notFound" {
                return .dropped
            } catch {
                // A transient failure (the node restarting): keep polling until the deadline.
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw CLIError("not final after 30 s; check with: amars tx \(sent.id)")
    }
}

// MARK: - genesis

struct GenesisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genesis", abstract: "Create or inspect a genesis file.", subcommands: [New.self, Inspect.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a genesis file allocating the whole supply (white paper §14), with a key per category.",
            discussion: """
                Creates <keys>/validator.key (the single validator of a dev chain; validator-1.key ... with
                --validators N) and one key per allocation category (<keys>/reserve-fund.key, ...), each holding
                that category's tokens. Each validator is also a genesis candidate ("validator-1", ...), self-staked
                with 1,000,000,000 AMSC of the reserve fund allocated to its own address, which also keeps 1,000
                AMSC for fees (the evidence it reports). Unsold sale tokens can be burned with
                --unsold ico-stage-4=1000000 (AMSC), repeated per stage.
                """)

        @Option(help: "Genesis file to write.")
        var out: String = "data/genesis.json"

        @Option(help: "Directory for the generated key files.")
        var keys: String = "data/keys"

        @Option(
            help: """
                Chain id (default: a fresh random one, so two networks never share an id by accident; signed \
                objects name the genesis block itself as well).
                """)
        var chainID: UInt32?

        @Option(help: "Human-readable chain name.")
        var chainName: String = "amars-devnet"

        @Option(help: "Blocks per epoch (production: 3600, hourly epochs at 1 s blocks).")
        var epochLength: UInt64 = 60

        @Option(help: "Shortest time between blocks, ms; gateways never produce faster.")
        var blockInterval: UInt64 = Genesis.defaultBlockIntervalMillis

        @Option(
            help: """
                Epochs an unstaked bucket stays slashable (production: 505, 21 days of hourly epochs after the epoch of the unstake). Default: \
                a day's worth, so a device may sleep 16 hours (the trusting period is two thirds of it).
                """)
        var unbondingEpochs: UInt64?

        @Option(help: "Validators in the genesis committee (1 for a single-node devnet, 4 for a four-gateway one).")
        var validators: Int = 1

        @Option(help: "Unsold tokens of a sale stage to burn, as STAGE=AMSC (ico-stage-1 ... ico-stage-4).")
        var unsold: [String] = []

        /// The devnet validator's genesis self-stake: large enough that it holds more than two thirds of any
        /// committee while a newcomer experiments with a few candidates of their own.
        static let validatorStake: UInt64 = 1_000_000_000 * Amount.unitsPerAMSC
        /// What each devnet validator holds besides its self-stake: fees for the evidence it reports.
        static let validatorFloat: UInt64 = 1_000 * Amount.unitsPerAMSC
        static let dayMillis: UInt64 = 86_400_000

        func run() throws {
            guard (1...Caps.committeeMembers).contains(validators) else {
                throw CLIError("--validators must be 1...\(Caps.committeeMembers)")
            }
            guard !FileManager.default.fileExists(atPath: out) else {
                throw CLIError("\(out) already exists; remove it (and the data next to it) to start a new chain")
            }
            var burned: [Genesis.Category: UInt64] = [:]
            for item in unsold {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let stage = Genesis.Category(rawValue: parts[0]), stage.isSaleStage else {
                    throw CLIError("--unsold takes STAGE=AMSC with STAGE one of ico-stage-1...ico-stage-4")
                }
                do { burned[stage, default: 0] += try Amount.parse(parts[1]) } catch {
                    throw CLIError("--unsold \(item): \(error)")
                }
            }
            // One key per validator: validator.key for a single-node chain, validator-1.key ... otherwise.
            var validators: [PrivateKey] = []
            for i in 1...self.validators {
                let key = KeyFile.generate()
                let name = self.validators == 1 ? "validator.key" : "validator-\(i).key"
                do { try KeyFile.write(key, to: "\(keys)/\(name)") } catch { throw CLIError("\(error)") }
                validators.append(key)
            }
            // Each validator is also a genesis candidate, self-staked with tokens of the reserve fund allocated to
            // its own address, so the chain has an elected pool from its first epoch and the validators keep
            // finalizing once committees are drawn by VRF.
            let stakes = UInt64(self.validators) * (Self.validatorStake + Self.validatorFloat)
            var allocations: [Genesis.Allocation] = []
            var candidates: [Genesis.GenesisCandidate] = []
            for category in Genesis.Category.allCases {
                let burn = burned[category] ?? 0
                guard burn <= category.amount else {
                    throw CLIError(
                        "cannot burn more than \(Amount.grouped(category.amount)) AMSC of \(category.rawValue)")
                }
                var amount = category.amount - burn
                if category == .reserveFund {
                    amount -= stakes
                    for (i, v) in validators.enumerated() {
                        let owner = Address(publicKey: v.xOnlyPublicKey)
                        allocations.append(
                            .init(category: category, address: owner, amount: Self.validatorStake + Self.validatorFloat)
                        )
                        candidates.append(
                            .init(
                                name: Array("validator-\(i + 1)".utf8), owner: owner,
                                operatorKey: v.xOnlyPublicKey.bytes, selfStake: Self.validatorStake,
                                durationEpochs: 8_760))
                    }
                }
                guard amount > 0 else { continue }
                let key = KeyFile.generate()
                do { try KeyFile.write(key, to: "\(keys)/\(category.rawValue).key") } catch {
                    throw CLIError("\(error)")
                }
                allocations.append(
                    .init(category: category, address: Address(publicKey: key.xOnlyPublicKey), amount: amount))
            }
            let epochMillis = max(1, epochLength.multipliedReportingOverflow(by: blockInterval).partialValue)
            let id = chainID ?? UInt32.random(in: 1_000...UInt32.max)
            var staking = Genesis.StakingParameters()
            staking.unbondingEpochs =
                unbondingEpochs ?? max(Genesis.minUnbondingEpochs, (Self.dayMillis + epochMillis - 1) / epochMillis + 1)
            let genesis = Genesis(
                chainID: id, chainName: chainName, timestamp: UInt64(Date().timeIntervalSince1970 * 1000),
                epochLength: epochLength, blockIntervalMillis: blockInterval, initialBaseFee: 1,
                validators: validators.map { .init(key: $0.xOnlyPublicKey.bytes, weight: 1) }, allocations: allocations,
                burned: burned.filter { $0.value > 0 }, staking: staking, candidates: candidates)
            do { try genesis.validate() } catch { throw CLIError("\(error)") }
            let dir = (out as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try genesis.jsonData().write(to: URL(fileURLWithPath: out))
            print("wrote \(out) (chain \(chainName), id \(id)); keys in \(keys)/")
            print(Inspect.timing(genesis))
            print(Inspect.table(genesis))
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a genesis file and print its allocation table.")

        @Argument(help: "Genesis file.")
        var file: String = "data/genesis.json"

        func run() throws {
            let genesis: Genesis
            do { genesis = try Genesis.load(path: file) } catch { throw CLIError("\(error)") }
            print("chain \(genesis.chainName) (id \(genesis.chainID)), genesis hash \(Hex.encode(genesis.hash.bytes))")
            print("epoch length \(genesis.epochLength) blocks, \(genesis.validators.count) validator(s)")
            print(Self.timing(genesis))
            for c in genesis.candidates {
                print(
                    "genesis candidate \(String(decoding: c.name, as: UTF8.self)): owner \(c.owner.bech32), "
                        + "self-stake \(Amount.grouped(c.selfStake)) AMSC")
            }
            print(Self.table(genesis))
        }

        /// The block interval, the unbonding period and the trusting period devices get from them.
        static func timing(_ genesis: Genesis) -> String {
            "blocks at least \(genesis.blockIntervalMillis) ms apart; unbonding \(genesis.staking.unbondingEpochs) epochs "
                + "(\(duration(genesis.unbondingMillis ?? 0))); devices trust a committee for "
                + "\(duration(genesis.trustingPeriodMillis)) (the trusting period)"
        }

        /// "10 s", "2 min", "16 h", "14 d 0 h": how long a period is, for a person.
        static func duration(_ millis: UInt64) -> String {
            if millis < 120_000 { return "\(millis / 1000) s" }
            let minutes = millis / 60_000
            if minutes < 120 { return "\(minutes) min" }
            let hours = minutes / 60
            return hours < 48 ? "\(hours) h" : "\(hours / 24) d \(hours % 24) h"
        }

        static func table(_ g: Genesis) -> String {
            func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
                a.padding(toLength: 26, withPad: " ", startingAt: 0) + leftPad(b, 20) + leftPad(c, 20) + "  " + d
            }
            var lines = [row("category", "allocated AMSC", "burned AMSC", "address")]
            for c in Genesis.Category.allCases {
                let allocs = g.allocations.filter { $0.category == c }
                let allocated = allocs.reduce(0) { $0 + $1.amount }
                let addresses = allocs.map(\.address.bech32).joined(separator: " ")
                lines.append(row(c.title, Amount.grouped(allocated), Amount.grouped(g.burned[c] ?? 0), addresses))
            }
            lines.append(row("total", Amount.grouped(g.totalAllocated), Amount.grouped(g.totalBurned), ""))
            lines.append(
                "allocated + burned = \(Amount.grouped(g.totalAllocated + g.totalBurned)) AMSC "
                    + "(fixed supply \(Amount.grouped(Amount.totalSupply)))")
            return lines.joined(separator: "\n")
        }

        static func leftPad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s : String(repeating: " ", count: n - s.count) + s
        }
    }
}

extension PaymentRequest {
    /// The request that `--amount` and `--memo` describe, with each mistake named by its flag.
    static func fromFlags(address: Address, amount: String?, memo: String) throws -> PaymentRequest {
        do { return try PaymentRequest(address: address, amount: amount, memo: memo) } catch {
            switch error {
            case .badAmount(let why): throw CLIError("--amount: \(why)")
            case .memoTooLong(let n):
                throw CLIError("--memo is \(n) bytes; at most \(Caps.memoBytes) fit in a transfer")
            default: throw CLIError("\(error)")
            }
        }
    }
}

extension FeeSchedule {
    /// The node's unit prices from its `/v1/head` (`fees`), or the standard schedule from a node too old to say.
    static func fromHead(_ head: [String: Any]) -> FeeSchedule {
        guard let fees = head["fees"] as? [String: Any], let perTx = jsonUInt64(fees["unitsPerTransaction"]),
            let perByte = jsonUInt64(fees["unitsPerByte"])
        else { return .standard }
        return FeeSchedule(unitsPerTransaction: perTx, unitsPerByte: perByte)
    }
}
