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

/// `amars-sim`: a fleet of virtual devices against running gateways, each kind with its people. Every device is
/// a light client of its own (its own key, socket and trusted state, anchored at the genesis file), so the fleet
/// exercises the device doors the way boards do; its people (renters, customers, the fleet's owner) are wallets
/// on the HTTP API. Locks admit rentals only on escrows they prove themselves and sign the returns; terminals
/// show an order paid only once they proved the payment final.
@main
struct AmarsSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amars-sim",
        abstract: "Drive a fleet of bike-share locks and shop terminals, with their renters and customers.",
        discussion: """
            Keys come from --seed, so a rerun finds the same devices and people. The funder (a wallet, over the
            HTTP API) tops up every person and lock below --fund / 2 between their rounds, so a fleet run with
            --rounds 0 keeps going until stopped.

            A lock's round: its renter opens a rental escrow naming it; the lock proves the escrow itself and
            opens only for one that is open, unexpired and names it; after the ride (--ride) it signs the return
            (damages on every fourth ride, within the renter's terms) and submits the close from its own account,
            over MQTT for odd-numbered devices when --mqtt is given. Another lock's escrow and the returned one
            must then keep it shut, and the renter's balance must show the deposit back exactly once.
            A terminal's round: it asks for an amount, its customer pays, and it shows the order paid only once
            it proved a final transfer of that amount to itself.

            Failures (anything a device or the chain got wrong) are counted by reason and make the exit status 1.

              amars-sim --genesis data/genesis.json --funder data/keys/app-user-incentive.key --locks 4 --terminals 4
            """,
        version: BuildInfo.description)

    @Option(help: "Genesis file: each device's only trust anchor.")
    var genesis: String = "data/genesis.json"

    @Option(help: "The gateway's CoAP endpoint.")
    var coap: String = "coap://127.0.0.1:5683"

    @Option(help: "A broker (host:port) the gateway bridges: odd-numbered devices submit over MQTT.")
    var mqtt: String?

    @Option(help: "HTTP API the people (and the funder) use.")
    var node: String = "http://127.0.0.1:8645"

    @Option(help: "Secret key file that funds the fleet.")
    var funder: String

    @Option(help: "Bike-share locks, each with a renter.")
    var locks: Int = 2

    @Option(help: "Shop terminals, each with a customer.")
    var terminals: Int = 2

    @Option(help: "Smart-home bulbs, each with a resident and a guest as controllers.")
    var bulbs: Int = 2

    @Option(help: "Rounds per device (0: until stopped).")
    var rounds: Int = 3

    @Option(help: "Seconds a device waits between its rounds.")
    var interval: Double = 0

    @Option(help: "Seed of the fleet's keys.")
    var seed: UInt64 = 1

    @Option(help: "AMSC each person and lock is topped up to.")
    var fund: String = "5"

    @Option(help: "Largest order a terminal asks for, in AMSC.")
    var amount: String = "0.25"

    @Option(help: "Rental deposit, in AMSC.")
    var deposit: String = "1"

    @Option(help: "Rental fee, in AMSC.")
    var fee: String = "0.1"

    @Option(help: "Blocks a rental lasts.")
    var rentalBlocks: UInt64 = 60

    @Option(help: "Seconds between a lock opening and the bike's return.")
    var ride: Double = 0

    @Option(help: "Seconds between progress lines.")
    var progress: Double = 5

    @Option(help: "JSON report, rewritten with every progress line.")
    var report: String?

    func validate() throws {
        guard (0...256).contains(locks) else { throw ValidationError("--locks must be 0 to 256") }
        guard (0...256).contains(terminals) else { throw ValidationError("--terminals must be 0 to 256") }
        guard (0...256).contains(bulbs) else { throw ValidationError("--bulbs must be 0 to 256") }
        guard locks + terminals + bulbs > 0 else { throw ValidationError("--locks, --terminals and --bulbs are all 0") }
        guard locks + terminals + bulbs <= 256 else { throw ValidationError("at most 256 devices in all") }
        guard rounds >= 0 else { throw ValidationError("--rounds must be 0 (forever) or more") }
        guard interval >= 0, interval <= 3_600 else { throw ValidationError("--interval must be 0 to 3600 seconds") }
        guard ride >= 0, ride <= 3_600 else { throw ValidationError("--ride must be 0 to 3600 seconds") }
        guard progress >= 0.1, progress <= 3_600 else {
            throw ValidationError("--progress must be 0.1 to 3600 seconds")
        }
        guard (2...100_000).contains(rentalBlocks) else { throw ValidationError("--rental-blocks must be 2 to 100000") }
    }

    func run() throws {
        let g: Genesis
        do { g = try Genesis.load(path: genesis) } catch { throw ValidationError("--genesis: \(error)") }
        let anchor = DeviceTrustAnchor(
            genesisHeader: g.header, committee: g.committee(epoch: 0), epochLength: g.epochLength,
            trustingPeriodMillis: g.trustingPeriodMillis)
        let coapConfig: CoAPDeviceClient.Configuration
        do { coapConfig = try CoAPDeviceClient.Configuration(url: coap) } catch {
            throw ValidationError("--coap: \(error)")
        }
        var mqttConfig: MqttDeviceClient.Configuration?
        if let mqtt {
            do { mqttConfig = try MqttDeviceClient.Configuration(endpoint: mqtt) } catch {
                throw ValidationError("--mqtt: \(error)")
            }
        }
        func units(_ text: String, _ name: String) throws -> UInt64 {
            do { return try Amount.parse(text) } catch { throw ValidationError("\(name): \(error)") }
        }
        let fundUnits = try units(fund, "--fund")
        let saleUnits = try units(amount, "--amount")
        let depositUnits = try units(deposit, "--deposit")
        let feeUnits = try units(fee, "--fee")
        guard saleUnits > 0, saleUnits < fundUnits / 2 else {
            throw ValidationError("--amount must be more than 0 and less than half of --fund")
        }
        guard depositUnits > 0, depositUnits + feeUnits < fundUnits / 2 else {
            throw ValidationError("--deposit plus --fee must be less than half of --fund")
        }
        let funderKey: PrivateKey
        do { funderKey = try KeyFile.load(funder, passphrase: { KeyFile.environmentPassphrase() }) } catch {
            throw ValidationError("--funder: \(error)")
        }
        let client: NodeClient
        do { client = try NodeClient(baseURL: node) } catch { throw ValidationError("--node: \(error)") }
        let genesisBlock = try client.head().genesisBlockHash

        let devices = try (0..<(locks + terminals + bulbs)).map { i in
            // Each kind draws keys from its own range, so a rerun with other counts finds every device as it was.
            let keyIndex = i < locks ? i : i < locks + terminals ? 100_000 + i - locks : 200_000 + i - locks - terminals
            return try VirtualDevice(
                index: i, keyIndex: keyIndex, seed: seed, anchor: anchor, coap: coapConfig,
                mqtt: i % 2 == 1 ? mqttConfig : nil)
        }
        defer { devices.forEach { $0.close() } }
        let owner = Person(role: "owner", seed: seed, index: 0)
        let funder = Funder(key: funderKey, node: node)
        if bulbs > 0 {
            try funder.topUp(Person(role: "household", seed: seed, index: 3_000).address, to: fundUnits, client: client)
        }
        let board = RentalBoard()
        let terms = LockDevice.Terms(
            deposit: depositUnits, fee: feeUnits, maxDamages: depositUnits / 2, blocks: rentalBlocks, ride: ride)
        let fleet = Fleet(
            locks: (0..<locks).map { i in
                LockDevice(
                    device: devices[i], renter: Person(role: "renter", seed: seed, index: 1_000 + i),
                    owner: owner.address, genesis: genesisBlock, terms: terms, board: board)
            },
            terminals: (0..<terminals).map { i in
                TerminalDevice(
                    device: devices[locks + i], customer: Person(role: "customer", seed: seed, index: 2_000 + i),
                    maxAmount: saleUnits)
            },
            bulbs: try makeBulbs(
                devices[(locks + terminals)...], funder: funder, client: client, genesis: genesisBlock),
            funder: funder, node: node, fund: fundUnits)

        say(
            "fleet: \(locks) locks and \(terminals) terminals of seed \(seed), anchored at genesis "
                + Hex.encode(anchor.genesisHeaderHash.bytes))
        say("owner: \(owner.address.bech32) (rental fees and damages)")
        for lock in fleet.locks {
            say(
                "lock \(lock.device.index): \(lock.device.address.bech32)\(lock.device.overMQTT ? " (returns over MQTT)" : ""), "
                    + "renter \(lock.renter.address.bech32)")
        }
        for terminal in fleet.terminals {
            say(
                "terminal \(terminal.device.index): \(terminal.device.address.bech32), customer \(terminal.customer.address.bech32)"
            )
        }
        for bulb in fleet.bulbs {
            say(
                "bulb \(bulb.device.index): \(bulb.device.address.bech32), resident \(bulb.resident.address.bech32), "
                    + "guest \(bulb.guest.address.bech32) (revoked from round 2)")
        }
        let configuration: [String: String] = [
            "bulbs": "\(bulbs)",
            "locks": "\(locks)", "terminals": "\(terminals)", "rounds": "\(rounds)", "interval": "\(interval)",
            "seed": "\(seed)", "ride": "\(ride)", "rentalBlocks": "\(rentalBlocks)", "coap": coap, "mqtt": mqtt ?? "",
            "node": node,
        ]
        let reportPath = report
        let stats = fleet.stats
        let count = fleet.deviceCount
        fleet.run(rounds: rounds, interval: interval, progress: progress) {
            emit("progress: " + stats.progressLine(devices: count))
            if let reportPath { Self.write(stats.report(configuration: configuration), to: reportPath) }
        }

        let receipts = try fleet.checkReceipts()
        let supply = try client.supply()
        if !supply.conserved { stats.fail("supply not conserved") }
        say(
            "fleet: \(stats.count("rental opened")) rentals opened and \(stats.count("deposit refunded once")) settled "
                + "with the deposit refunded once; \(stats.count("sale proven paid")) sales proven paid, \(receipts) "
                + "receipts match their blocks; supply \(supply.conserved ? "conserved" : "NOT conserved"); "
                + "\(stats.failureCount) failures")
        if let reportPath { Self.write(stats.report(configuration: configuration), to: reportPath) }
        if stats.failureCount > 0 { throw ExitCode(1) }
    }

    /// The household's root and a resident and a guest certificate per bulb, published and final before any bulb
    /// runs: the bulbs are paired with them.
    private func makeBulbs(
        _ devices: ArraySlice<VirtualDevice>, funder: Funder, client: NodeClient, genesis: Bytes32
    ) throws -> [BulbDevice] {
        guard !devices.isEmpty else { return [] }
        let household = Household(person: Person(role: "household", seed: seed, index: 3_000))
        var certificates: [DeviceCertificate] = []
        var made: [BulbDevice] = []
        for (n, device) in devices.enumerated() {
            let resident = Person(role: "resident", seed: seed, index: 3_001 + 2 * n)
            let guest = Person(role: "guest", seed: seed, index: 3_002 + 2 * n)
            let residentCertificate = household.certify(resident)
            let guestCertificate = household.certify(guest)
            certificates += [residentCertificate, guestCertificate]
            made.append(
                BulbDevice(
                    device: device, resident: resident, guest: guest, household: household,
                    residentCertificate: residentCertificate.id, guestCertificate: guestCertificate.id,
                    genesis: genesis))
        }
        try household.publish(certificates, client: client)
        say(
            "household \(household.person.address.bech32): root \(Hex.encode(household.root.id.bytes)) and "
                + "\(certificates.count) controller certificates published")
        return made
    }

    /// Written whole, then renamed: a reader never sees half a report.
    static func write(_ report: [String: Any], to path: String) {
        guard let data = try? JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        else { return }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            emit("report: cannot write \(path)")
            return
        }
        _ = rename(temporary, path)
    }

    private func say(_ line: String) { emit(line) }
}

/// One line to standard output, unbuffered: the devnet script and tests read the fleet's progress as it happens.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
