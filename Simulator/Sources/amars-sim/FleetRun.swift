import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import DeviceCore
import DeviceIdentity
import Foundation
import Ledger
import LightClient
import BuildInfo

/// `amars-sim run` (the default): a fleet of virtual devices against running gateways, each kind with its people.
/// Every device is a light client of its own (its own key, socket and trusted state, anchored at the genesis
/// file), so the fleet exercises the device doors the way boards do; its people (renters, customers, the fleet's
/// owner) are wallets on the HTTP API. Locks admit rentals only on escrows they prove themselves and sign the
/// returns; terminals show an order paid only once they proved the payment final.
struct FleetRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Drive a fleet of bike-share locks, shop terminals and smart-home bulbs, with their people.",
        discussion: """
            A scenario file (--scenario, YAML; Simulator/scenarios/ has smoke, bike-share, smart-building, \
            shop-street and faults) sets the fleet; each flag below overrides its key. Keys come from --seed, so a \
            rerun finds the same devices and people. The funder (a wallet, over the HTTP API) tops up every person and lock below \
            half of the fund between their rounds, so a fleet with no round or time limit runs until stopped.

            A lock's round: its renter opens a rental escrow naming it; the lock proves the escrow itself and opens \
            only for one that is open, unexpired and names it; after the ride it signs the return (damages on every \
            fourth ride, within the renter's terms) and submits the close from its own account (over MQTT for a \
            share of the devices when --mqtt is given). Another lock's escrow and the returned one must then keep it \
            shut, and the renter's balance must show the deposit back exactly once.
            A terminal's round: it asks for an amount, its customer pays, and it shows the order paid only once it \
            proved a final transfer of that amount to itself. Its receipts are checked against the blocks at the end.
            A bulb's round: its resident posts a signed command at the gateway's command door, the bulb fetches it \
            over CoAP and obeys once it proved the resident's certificate valid on chain; the guest's too, until the \
            household revokes the guest (from round 2); the door and the bulb refuse the revoked guest and a \
            stranger signing under the resident's certificate, and the bulb refuses a replay.

            One process runs up to 10,000 devices (each a task with its own socket). --coap and --node may list \
            several gateways (comma-separated, in the same order): the fleet is spread over them. --loss and \
            --cut-share/--cut-at/--cut-for inject faults on the devices' links; --kill-gateway and --kill-broker-at \
            kill a gateway or the broker through their pid files, for their supervisor to start again.

            Failures (anything a device or the chain got wrong) are counted by reason and make the exit status 1.

              amars-sim --scenario Simulator/scenarios/smoke.yaml --genesis data/genesis.json \\
                --funder data/keys/app-user-incentive.key --report fleet.json --html fleet.html
            """,
        version: BuildInfo.description)

    @Option(help: "Scenario file (YAML); the flags below override its keys.")
    var scenario: String?

    @Option(help: "Genesis file: each device's only trust anchor.")
    var genesis: String = "data/genesis.json"

    @Option(help: "The gateways' CoAP endpoints, comma-separated; the devices are spread over them.")
    var coap: String = "coap://127.0.0.1:5683"

    @Option(help: "A broker (host:port) the gateway bridges: a share of the devices submit there.")
    var mqtt: String?

    @Option(
        help: """
            With --mqtt at the broker's TLS listener: the operator's root key file. The root is anchored on chain \
            (its key topped up by the funder), each MQTT lock gets a long-lived certificate under it, published, \
            and a first short-lived one to connect with; then each lock renews its short-lived certificate on chain \
            through its own session, as a board does, and reconnects with it.
            """)
    var mqttCAKey: String?

    @Option(help: "With --mqtt-ca-key: the operator's root certificate (PEM or DER), which the broker's must chain to.")
    var mqttCACert: String?

    @Option(help: "The same gateways' HTTP APIs, in the same order: each device's people use its gateway's.")
    var node: String = "http://127.0.0.1:8645"

    @Option(help: "Secret key file that funds the fleet.")
    var funder: String

    @Option(help: "Seed of the fleet's keys.")
    var seed: UInt64 = 1

    @Option(help: "Devices in all, the scenario's mix of kinds kept (before --locks, --terminals and --bulbs).")
    var devices: Int?

    @Option(help: "Bike-share locks, each with a renter (scenario: locks; default 2).")
    var locks: Int?

    @Option(help: "Locks that go silent in their first rental; the owner closes it as kept (scenario: silent-locks).")
    var silentLocks: Int?

    @Option(help: "Shop terminals, each with a customer (scenario: terminals; default 2).")
    var terminals: Int?

    @Option(help: "Smart-home bulbs, each with a resident and a guest (scenario: bulbs; default 2).")
    var bulbs: Int?

    @Option(help: "Rounds per device, 0 for no limit (scenario: rounds; default 3).")
    var rounds: Int?

    @Option(help: "Seconds after which no device starts a round, 0 for no limit (scenario: duration).")
    var duration: Double?

    @Option(help: "Seconds a device waits between its rounds (scenario: interval).")
    var interval: Double?

    @Option(help: "Seconds over which the devices start (scenario: ramp-up).")
    var rampUp: Double?

    @Option(help: "Share of the devices that submit over MQTT, 0 to 1 (scenario: mqtt-share; default 0.5).")
    var mqttShare: Double?

    @Option(
        help: "Share of the terminals paid by HTLC, which they claim with the order's secret (scenario: htlc-share).")
    var htlcShare: Double?

    @Option(help: "AMSC each person and lock is topped up to (scenario: fund; default 5).")
    var fund: String?

    @Option(help: "Largest order a terminal asks for, in AMSC (scenario: amount; default 0.25).")
    var amount: String?

    @Option(help: "Rental deposit in AMSC (scenario: deposit; default 1).")
    var deposit: String?

    @Option(help: "Rental fee in AMSC (scenario: fee; default 0.1).")
    var fee: String?

    @Option(help: "Blocks a rental lasts (scenario: rental-blocks; default 60).")
    var rentalBlocks: UInt64?

    @Option(help: "Seconds between a lock opening and the return (scenario: ride).")
    var ride: Double?

    @Option(help: "Share of datagrams lost each way on every device's link, 0 to 0.5 (scenario: loss).")
    var loss: Double?

    @Option(help: "Seconds into the run when --cut-share of the devices lose their link (scenario: cut-at).")
    var cutAt: Double?

    @Option(help: "Seconds the cut links stay down (scenario: cut-for).")
    var cutFor: Double?

    @Option(help: "Share of the devices whose link is cut, 0 to 1 (scenario: cut-share).")
    var cutShare: Double?

    @Option(help: "Kill gateway N (1-based, in --coap's order) at --kill-gateway-at seconds (scenario: kill-gateway).")
    var killGateway: Int?

    @Option(help: "Seconds into the run when --kill-gateway is killed (scenario: kill-gateway-at).")
    var killGatewayAt: Double?

    @Option(help: "Seconds into the run when the broker is killed, 0 for never (scenario: kill-broker-at).")
    var killBrokerAt: Double?

    @Option(help: "The gateways' pid files, comma-separated in --coap's order: what --kill-gateway kills.")
    var gatewayPidFiles: String?

    @Option(help: "The broker's pid file: what --kill-broker-at kills.")
    var brokerPidFile: String?

    @Option(help: "Run only this process's share of the fleet, I/N (0-based): N processes run the whole fleet.")
    var shard: String?

    @Option(help: "Seconds between progress lines.")
    var progress: Double = 5

    @Option(help: "JSON report, rewritten with every progress line.")
    var report: String?

    @Option(help: "HTML report (self-contained, SVG plots), rewritten with every progress line.")
    var html: String?

    /// The scenario file's values with the flags laid over them, checked.
    func resolved() throws -> (Scenario, Scenario.Units) {
        var s = Scenario()
        if let scenario {
            do { s = try Scenario.load(path: scenario) } catch { throw ValidationError("--scenario \(error)") }
        }
        if let devices {
            guard (1...Scenario.maxDevices).contains(devices) else {
                throw ValidationError("--devices must be 1 to \(Scenario.maxDevices)")
            }
            s = s.scaled(to: devices)
        }
        s.locks = locks ?? s.locks
        s.silentLocks = silentLocks ?? min(s.silentLocks, s.locks)
        s.terminals = terminals ?? s.terminals
        s.bulbs = bulbs ?? s.bulbs
        s.rounds = rounds ?? s.rounds
        s.duration = duration ?? s.duration
        s.interval = interval ?? s.interval
        s.rampUp = rampUp ?? s.rampUp
        s.mqttShare = mqttShare ?? s.mqttShare
        s.htlcShare = htlcShare ?? s.htlcShare
        s.fund = fund ?? s.fund
        s.amount = amount ?? s.amount
        s.deposit = deposit ?? s.deposit
        s.fee = fee ?? s.fee
        s.rentalBlocks = rentalBlocks ?? s.rentalBlocks
        s.ride = ride ?? s.ride
        s.loss = loss ?? s.loss
        s.cutAt = cutAt ?? s.cutAt
        s.cutFor = cutFor ?? s.cutFor
        s.cutShare = cutShare ?? s.cutShare
        s.killGateway = killGateway ?? s.killGateway
        s.killGatewayAt = killGatewayAt ?? s.killGatewayAt
        s.killBrokerAt = killBrokerAt ?? s.killBrokerAt
        // A value the file had was checked with the file's name; what fails now came from a flag.
        do { return (s, try s.check(naming: { "--\($0)" })) } catch { throw ValidationError(error.message) }
    }

    func validate() throws {
        _ = try shardPosition()
        let (plan, _) = try resolved()
        _ = try kills(plan, gateways: try gateways().0.count)
        guard (mqttCAKey == nil) == (mqttCACert == nil) else {
            throw ValidationError("give --mqtt-ca-key and --mqtt-ca-cert together")
        }
        guard mqttCAKey == nil || mqtt != nil else { throw ValidationError("--mqtt-ca-key is for --mqtt") }
        guard progress >= 0.1, progress <= 3_600 else {
            throw ValidationError("--progress must be 0.1 to 3600 seconds")
        }
    }

    /// Each TLS lock's certificate renewed as the board and `amars device renew` renew it: the root and the locks'
    /// long-lived certificates anchored, each lock funded for the fee, then DeviceCore's `renew` through the lock's
    /// own session (signed by its long-lived key, published, proven final), and the lock reconnected to the broker
    /// with the certificate the chain now holds.
    private func renewOnChain(
        _ enrolled: [Int: DeviceCertificate], root: FleetRoot, devices: [Int: VirtualDevice], funders: [Int: Funder],
        fund: UInt64, node: NodeAPI, directory: String, stats: FleetStats
    ) async throws {
        try await root.anchor(Array(enrolled.values), funder: funders.values.first!, fund: fund, node: node)
        let lifetime = Self.tlsLifetime
        // One lock that cannot renew is counted and goes on with the certificate it has, as a board would; the
        // run stops only when no lock could.
        let outcomes = await withTaskGroup(of: (Int, Result<VerifiedRenewal, any Error>).self) { group in
            for (i, device) in enrolled {
                let (lock, funder) = (devices[i]!, funders[i]!)
                group.addTask {
                    let start = DispatchTime.now()
                    do {
                        try await funder.topUp(lock.address, to: fund)
                        let renewal = try await lock.renewCertificate(
                            lifetime: lifetime, device: device, caFile: root.file,
                            directory: "\(directory)/renewed-\(i)")
                        stats.record("certificate renewed on chain", millis: millis(since: start))
                        return (i, .success(renewal))
                    } catch {
                        stats.fail("certificate renewal failed")
                        return (i, .failure(error))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        var renewed = 0
        var lastFailure: (any Error)?
        for (i, outcome) in outcomes.sorted(by: { $0.0 < $1.0 }) {
            switch outcome {
            case .success(let renewal):
                renewed += 1
                say(
                    "lock \(i): certificate \(Hex.encode(renewal.id.bytes)) renewed on chain at height "
                        + "\(renewal.payment.inclusion.header.height), valid until \(renewal.notAfter); "
                        + "reconnected with it")
            case .failure(let error):
                lastFailure = error
                say("lock \(i): certificate renewal failed (\(error)); it goes on with the certificate it has")
            }
        }
        if renewed == 0, let lastFailure { throw lastFailure }
        say("mqtt: \(renewed) locks renewed their certificates on chain and connect with them")
    }

    /// How long a lock's renewed certificate lasts; each lock renews again once half of it has passed.
    static let tlsLifetime: UInt64 = 3_600

    /// The operator's root, when the devices connect over TLS (`--mqtt-ca-key`, `--mqtt-ca-cert`).
    private func fleetRoot() throws -> FleetRoot? {
        guard let mqttCAKey, let mqttCACert else { return nil }
        let key: PrivateKey
        do { key = try KeyFile.load(mqttCAKey, passphrase: { KeyFile.environmentPassphrase() }) } catch {
            throw ValidationError("--mqtt-ca-key: \(error)")
        }
        let certificate: DeviceCertificate
        do { certificate = try DeviceTLSIdentity.readCertificate(mqttCACert) } catch {
            throw ValidationError("--mqtt-ca-cert: \(mqttCACert) \(error)")
        }
        guard certificate.fields.publicKey == key.publicKey else {
            throw ValidationError("--mqtt-ca-key is not the key of --mqtt-ca-cert \(mqttCACert)")
        }
        return FleetRoot(key: key, certificate: certificate, file: mqttCACert)
    }

    func run() async throws {
        let (plan, units) = try resolved()
        let g: Genesis
        do { g = try Genesis.load(path: genesis) } catch { throw ValidationError("--genesis: \(error)") }
        let anchor = DeviceTrustAnchor(
            genesisHeader: g.header, committee: g.committee(epoch: 0), epochLength: g.epochLength,
            trustingPeriodMillis: g.trustingPeriodMillis)
        let (coapConfigs, nodeURLs) = try gateways()
        var mqttConfig: MqttDeviceClient.Configuration?
        if let mqtt {
            do { mqttConfig = try MqttDeviceClient.Configuration(endpoint: mqtt) } catch {
                throw ValidationError("--mqtt: \(error)")
            }
        }
        let tlsRoot = try fleetRoot()
        let funderKey: PrivateKey
        do { funderKey = try KeyFile.load(funder, passphrase: { KeyFile.environmentPassphrase() }) } catch {
            throw ValidationError("--funder: \(error)")
        }
        let client: NodeClient
        do { client = try NodeClient(baseURL: nodeURLs[0]) } catch { throw ValidationError("--node: \(error)") }
        let genesisBlock = try client.head().genesisBlockHash

        // One device over a blocking socket first, at each gateway: it answers and serves this genesis (a gateway
        // on another chain, one that cannot be reached or one that answers garbage stops the run here, in one line).
        for config in coapConfigs {
            _ = try DeviceSync.anchor(anchor, source: try CoAPDeviceClient(configuration: config))
        }
        let reactors = try coapConfigs.map { try CoAPReactor(configuration: $0) }
        for reactor in reactors { reactor.setLoss(plan.loss) }
        // The people's HTTP calls: at most this many at once, each on its own connection.
        let pool = BlockingPool(threads: Self.httpConnections, name: "amars-sim-http")
        let apis = nodeURLs.map { NodeAPI(pool: pool, url: $0) }

        let (locks, terminals, bulbs) = (plan.locks, plan.terminals, plan.bulbs)
        // Devices are numbered across the whole fleet; a shard runs every n-th of them, so shards never share a
        // device or a person, and the same numbers find the same keys in every run.
        let (shardIndex, shardCount) = try shardPosition()
        let mine = (0..<(locks + terminals + bulbs)).filter { $0 % shardCount == shardIndex }
        try Self.raiseFileLimit(devices: mine.count)
        let myLocks = mine.filter { $0 < locks }
        let myTerminals = mine.filter { $0 >= locks && $0 < locks + terminals }
        let myBulbs = mine.filter { $0 >= locks + terminals }

        // Past a few hundred devices, or over several gateways, branches each fund their share of the locks (with
        // their renters) and terminals (their customers); a device and its people use its branch's gateway.
        let funder = Funder(key: funderKey, home: apis[0])
        let paying = myLocks + myTerminals
        let branches = max(
            (paying.count + Funder.devicesPerBranch - 1) / Funder.devicesPerBranch, paying.isEmpty ? 1 : apis.count)
        let funders =
            branches <= 1
            ? [funder]
            : funder.branches(
                count: branches, seed: seed, shard: shardIndex,
                reserve: units.fund * UInt64(2 * (paying.count + branches - 1) / branches), gateways: apis)
        var funderOf: [Int: Funder] = [:]
        for (n, i) in paying.enumerated() { funderOf[i] = funders[n % funders.count] }

        // Each kind draws keys from its own range, so a rerun with other counts finds every device as it was.
        func keyIndex(_ i: Int) -> Int {
            i < locks ? i : i < locks + terminals ? 100_000 + i - locks : 200_000 + i - locks - terminals
        }
        var sessions: [Int: MqttDeviceClient] = [:]
        /// The TLS locks' long-lived certificates, published before each lock renews under its own.
        var enrolledTLS: [Int: DeviceCertificate] = [:]
        let tlsDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "amars-sim-tls-\(ProcessInfo.processInfo.processIdentifier)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: tlsDirectory) }
        if let mqttConfig {
            // Only locks submit; the broker sessions come first, while descriptors are low.
            let wanted = myLocks.filter { plan.overMQTT($0) }
            let kept = wanted.prefix(VirtualDevice.maxMQTTSessions)
            if kept.count < wanted.count {
                say(
                    "mqtt: \(kept.count) locks return over MQTT, the other \(wanted.count - kept.count) over CoAP "
                        + "(libmosquitto's loop takes \(VirtualDevice.maxMQTTSessions) sessions per process)")
            }
            for i in kept {
                var config = mqttConfig
                if let tlsRoot {
                    let enrolled = try tlsRoot.enroll(
                        VirtualDevice.key(seed: seed, index: keyIndex(i)), directory: "\(tlsDirectory)/\(keyIndex(i))")
                    config.tls = enrolled.files
                    enrolledTLS[i] = enrolled.device
                }
                sessions[i] = try VirtualDevice.mqttSession(keyIndex: keyIndex(i), seed: seed, configuration: config)
            }
            if tlsRoot != nil, !kept.isEmpty {
                say("mqtt: \(kept.count) locks connect over TLS, each with its own certificate")
            }
        }
        let mqttPool = BlockingPool(threads: min(64, sessions.count), name: "amars-sim-mqtt")
        // Each device sends from its own loopback address when its gateway is on this host, so the gateway tells
        // (and rate-limits) the devices apart as it would boards on a network.
        let onThisHost = coapConfigs.map { ["127.0.0.1", "localhost"].contains($0.host) }
        var made: [Int: VirtualDevice] = [:]
        for i in mine {
            let gateway = funderOf[i]?.gateway ?? 0
            made[i] = try VirtualDevice(
                index: i, keyIndex: keyIndex(i), seed: seed, anchor: anchor, genesisHeader: g.header,
                reactor: reactors[gateway], source: onThisHost[gateway] ? VirtualDevice.loopbackSource(i) : nil,
                mqtt: sessions[i], blocking: mqttPool)
        }
        defer { made.values.forEach { $0.close() } }
        // The devices hold their broker sessions now: one a device replaces (a renewal) is freed with its descriptors.
        sessions = [:]
        // The owner's and the household's keys sign from several devices; from several processes they would race
        // for nonces, so each shard has its own.
        let personal = shardCount == 1 ? 0 : 40_000 + shardIndex * 2
        let owner = SharedWallet(Person(role: "owner", seed: seed, index: personal))
        let household = Person(role: "household", seed: seed, index: shardCount == 1 ? 30_000 : personal + 1)
        // The owner pays for the closes of kept rentals before any fee has come in.
        if myLocks.contains(where: { $0 < plan.silentLocks }) {
            try await funder.topUp(owner.address, to: units.fund)
        }
        if !myBulbs.isEmpty { try await funder.topUp(household.address, to: units.fund) }
        let board = RentalBoard()
        let terms = LockDevice.Terms(
            deposit: units.deposit, fee: units.fee, maxDamages: units.deposit / 2, blocks: plan.rentalBlocks,
            ride: plan.ride)
        let fleet = Fleet(
            locks: myLocks.map { i in
                LockDevice(
                    device: made[i]!, renter: Person(role: "renter", seed: seed, index: 10_000 + i),
                    funder: funderOf[i]!, owner: owner, silent: i < plan.silentLocks, genesis: genesisBlock,
                    terms: terms, board: board)
            },
            terminals: myTerminals.map { i in
                TerminalDevice(
                    device: made[i]!, customer: Person(role: "customer", seed: seed, index: 20_000 + i - locks),
                    funder: funderOf[i]!, maxAmount: units.amount, byHTLC: plan.paidByHTLC(i - locks))
            },
            bulbs: try await makeBulbs(
                myBulbs.map { ($0 - locks - terminals, made[$0]!) }, household: household, node: apis[0],
                genesis: genesisBlock),
            node: apis[0], fund: units.fund)

        if shardCount > 1 { say("shard \(shardIndex)/\(shardCount): \(mine.count) of the fleet's devices") }
        say(
            "fleet (\(plan.name)): \(locks) locks, \(terminals) terminals and \(bulbs) bulbs of seed \(seed), anchored at "
                + "genesis \(Hex.encode(anchor.genesisHeaderHash.bytes))")
        say("owner: \(owner.address.bech32) (rental fees and damages)")
        func via(_ funder: Funder) -> String { apis.count > 1 ? ", through gateway \(funder.gateway + 1)" : "" }
        for lock in fleet.locks {
            say(
                "lock \(lock.device.index): \(lock.device.address.bech32)\(lock.device.overMQTT ? " (returns over MQTT)" : ""), "
                    + "renter \(lock.renter.address.bech32)\(via(lock.funder))")
        }
        for terminal in fleet.terminals {
            say(
                "terminal \(terminal.device.index): \(terminal.device.address.bech32), customer \(terminal.customer.address.bech32)\(via(terminal.funder))"
            )
        }
        for bulb in fleet.bulbs {
            say(
                "bulb \(bulb.device.index): \(bulb.device.address.bech32), resident \(bulb.resident.address.bech32), "
                    + "guest \(bulb.guest.address.bech32) (revoked from round 2)")
        }
        if let tlsRoot, !enrolledTLS.isEmpty {
            try await renewOnChain(
                enrolledTLS, root: tlsRoot, devices: made, funders: funderOf, fund: units.fund, node: apis[0],
                directory: tlsDirectory, stats: fleet.stats)
        }
        let configuration: [String: String] = [
            "scenario": plan.name, "shard": "\(shardIndex)/\(shardCount)", "locks": "\(locks)",
            "silent-locks": "\(plan.silentLocks)",
            "terminals": "\(terminals)", "bulbs": "\(bulbs)",
            "rounds": "\(plan.rounds)", "duration": "\(plan.duration)", "interval": "\(plan.interval)",
            "ramp-up": "\(plan.rampUp)", "mqtt-share": "\(mqtt == nil ? 0 : plan.mqttShare)",
            "htlc-share": "\(plan.htlcShare)", "seed": "\(seed)",
            "ride": "\(plan.ride)", "rental-blocks": "\(plan.rentalBlocks)", "coap": coap, "node": node,
            "loss": "\(plan.loss)", "cut": "\(plan.cutShare) of the devices at \(plan.cutAt) s for \(plan.cutFor) s",
            "kill-gateway": "\(plan.killGateway) at \(plan.killGatewayAt) s", "kill-broker-at": "\(plan.killBrokerAt)",
        ]
        let (reportPath, htmlPath) = (report, html)
        let live = plan.rounds == 0 && plan.duration == 0
        let stats = fleet.stats
        let count = fleet.deviceCount
        @Sendable func publish(final: Bool) {
            let transport = reactors.map(\.stats)
            stats.set(UInt64(transport.map(\.retransmissions).reduce(0, +)), for: "coapRetransmissions")
            stats.set(UInt64(transport.map(\.dropped).reduce(0, +)), for: "datagramsLostToInjectedFaults")
            let r = stats.report(configuration: configuration)
            if let reportPath { ReportFiles.write(ReportFiles.json(r), to: reportPath) }
            if let htmlPath { ReportFiles.write(Array(ReportPage.render(r, live: live && !final).utf8), to: htmlPath) }
        }
        let faults = try kills(plan, gateways: coapConfigs.count)
        let cut =
            plan.cutShare > 0 && plan.cutFor > 0
            ? Fleet.LinkCut(at: plan.cutAt, seconds: plan.cutFor, share: plan.cutShare) : nil
        await fleet.run(
            rounds: plan.rounds, duration: plan.duration, interval: plan.interval, rampUp: plan.rampUp,
            progress: progress, cut: cut, kills: faults
        ) {
            emit("progress: " + stats.progressLine(devices: count))
            publish(final: false)
        }

        let receipts = try fleet.checkReceipts()
        let supply = try client.supply()
        if !supply.conserved { stats.fail("supply not conserved") }
        say(
            "fleet: \(stats.count("rental opened")) rentals opened and \(stats.count("deposit refunded once")) settled "
                + "with the deposit refunded once, \(stats.count("kept item paid its owner")) kept and paid to the owner; "
                + "\(stats.count("sale proven paid")) sales proven paid, \(receipts) "
                + "receipts match their blocks; \(stats.count("bulb obeyed its resident")) bulb commands obeyed and "
                + "\(stats.count("bulb refused a revoked guest")) from revoked guests refused; supply "
                + "\(supply.conserved ? "conserved" : "NOT conserved"); \(stats.failureCount) failures")
        publish(final: true)
        if stats.failureCount > 0 { throw ExitCode(1) }
    }

    /// The household's root and a resident and a guest certificate per bulb, published and final before any bulb
    /// runs: the bulbs are paired with them. `bulbs`: each bulb's number among the fleet's bulbs, and its device.
    private func makeBulbs(
        _ bulbs: [(Int, VirtualDevice)], household person: Person, node: NodeAPI, genesis: Bytes32
    ) async throws -> [BulbDevice] {
        guard !bulbs.isEmpty else { return [] }
        let household = Household(person: person)
        var certificates: [DeviceCertificate] = []
        var made: [BulbDevice] = []
        for (n, device) in bulbs {
            let resident = Person(role: "resident", seed: seed, index: 50_000 + 2 * n)
            let guest = Person(role: "guest", seed: seed, index: 50_001 + 2 * n)
            let residentCertificate = household.certify(resident)
            let guestCertificate = household.certify(guest)
            certificates += [residentCertificate, guestCertificate]
            made.append(
                BulbDevice(
                    device: device, resident: resident, guest: guest, household: household,
                    residentCertificate: residentCertificate.id, guestCertificate: guestCertificate.id,
                    genesis: genesis, node: node))
        }
        try await household.publish(certificates, node: node)
        say(
            "household \(household.person.address.bech32): root \(Hex.encode(household.root.id.bytes)) and "
                + "\(certificates.count) controller certificates published")
        return made
    }

    /// `--coap` and `--node` as lists (comma-separated), one entry per gateway and in the same order: device and
    /// people of one gateway ask the same node.
    func gateways() throws -> ([CoAPDeviceClient.Configuration], [String]) {
        let doors = coap.split(separator: ",").map(String.init)
        let nodes = node.split(separator: ",").map(String.init)
        guard !doors.isEmpty, doors.count == nodes.count, doors.count <= 16 else {
            throw ValidationError(
                "--coap and --node name the same gateways in the same order (1 to 16, comma-separated); "
                    + "got \(doors.count) CoAP and \(nodes.count) HTTP endpoints")
        }
        var configs: [CoAPDeviceClient.Configuration] = []
        for door in doors {
            do { configs.append(try CoAPDeviceClient.Configuration(url: door)) } catch {
                throw ValidationError("--coap: \(error)")
            }
        }
        return (configs, nodes)
    }

    /// The process kills the scenario asks for, each with the pid file that names its process.
    func kills(_ plan: Scenario, gateways: Int) throws -> [ProcessKill] {
        var kills: [ProcessKill] = []
        if plan.killGateway > 0 {
            let files = gatewayPidFiles?.split(separator: ",").map(String.init) ?? []
            guard files.count == gateways else {
                throw ValidationError(
                    "kill-gateway needs --gateway-pid-files naming each gateway's pid file in --coap's order "
                        + "(\(gateways) of them)")
            }
            guard plan.killGateway <= gateways else {
                throw ValidationError("kill-gateway must be 0 (none) to the number of gateways (\(gateways))")
            }
            kills.append(
                ProcessKill(
                    what: "gateway \(plan.killGateway)", at: plan.killGatewayAt, pidFile: files[plan.killGateway - 1],
                    program: "amarsd"))
        }
        if plan.killBrokerAt > 0 {
            guard let brokerPidFile else { throw ValidationError("kill-broker-at needs --broker-pid-file") }
            kills.append(
                ProcessKill(what: "the broker", at: plan.killBrokerAt, pidFile: brokerPidFile, program: "mosquitto"))
        }
        return kills
    }

    /// `--shard i/n` as (i, n); (0, 1) without it.
    func shardPosition() throws -> (Int, Int) {
        guard let shard else { return (0, 1) }
        let parts = shard.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 64, i >= 0, i < n else {
            throw ValidationError("--shard takes I/N with 0 <= I < N <= 64, e.g. 0/2 and 1/2 for two processes")
        }
        return (i, n)
    }

    /// HTTP connections the people hold at once (the gateway's HTTP door takes 512 by default).
    static let httpConnections = 48

    /// Each device holds a UDP socket, an MQTT session (three descriptors) for some, and the people share
    /// ``httpConnections``: the soft limit on open files (1,024 on many systems) is raised to the hard one, and a
    /// fleet that would not fit is refused before it starts.
    static func raiseFileLimit(devices: Int) throws {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let needed = rlim_t(devices + 3 * min(devices, VirtualDevice.maxMQTTSessions) + httpConnections + 64)
        guard limit.rlim_cur >= needed else {
            throw ValidationError(
                "\(devices) devices need about \(needed) open files; the limit here is \(limit.rlim_cur) "
                    + "(raise it with ulimit -n, or run fewer devices per process)")
        }
    }

    private func say(_ line: String) { emit(line) }
}

/// One line to standard output, unbuffered: the devnet script and tests read the fleet's progress as it happens.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The operator's root as the simulator uses it, as an operator with `amars cert` would: it anchors the root on
/// chain (unless it is there already), enrolls each TLS lock with a long-lived certificate under it, published, and
/// gives the lock a first short-lived certificate to connect with. Each lock then renews that certificate on chain
/// itself, through its session (``VirtualDevice/renewCertificate(lifetime:device:caFile:directory:)``).
final class FleetRoot: Sendable {
    let wallet: SharedWallet
    let certificate: DeviceCertificate
    let file: String

    init(key: PrivateKey, certificate: DeviceCertificate, file: String) {
        wallet = SharedWallet(Person(role: "operator", key: key))
        self.certificate = certificate
        self.file = file
    }

    /// A lock's long-lived certificate (a day) and the TLS files of a short-lived one (an hour) for a fresh key,
    /// made here: what the lock connects with before its own first renewal.
    func enroll(_ device: PrivateKey, directory: String) throws -> (
        device: DeviceCertificate, files: MqttDeviceClient.Configuration.TLSFiles
    ) {
        let now = UInt64(Date().timeIntervalSince1970)
        let long = DeviceCertificate(
            signing: DeviceTLSIdentity.deviceFields(device, ca: certificate, days: 1, pathLength: 0, now: now),
            with: wallet.person.key)
        let fresh = KeyFile.generate()
        let short = DeviceCertificate(
            signing: DeviceTLSIdentity.shortLivedFields(
                device: long, publicKey: fresh.publicKey, lifetime: 3_600, now: now),
            with: device)
        let written = try DeviceTLSIdentity.writeTLSFiles(chain: [short, long], key: fresh, directory: directory)
        return (long, .init(caFile: file, chainFile: written.chainFile, keyFile: written.keyFile))
    }

    /// The root anchored (published by its own key, which `funder` tops up first; a root already on chain is
    /// refused as such and left), then `devices` published under it; returns once all are final.
    func anchor(_ devices: [DeviceCertificate], funder: Funder, fund: UInt64, node: NodeAPI) async throws {
        try await funder.topUp(wallet.address, to: fund)
        try await wallet.publish([[certificate], devices], node: node)
    }
}
