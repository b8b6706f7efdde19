import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import DeviceCore
import Foundation
import Ledger
import LightClient
import BuildInfo

/// `amars-sim`: a fleet of virtual devices against a running gateway. Each device is a light client of its own
/// (its own key, socket and trusted state, anchored at the genesis file), so the fleet exercises the device
/// doors the way real boards do: checkpoint sync, head and balance proofs, payments submitted over CoAP (or
/// MQTT) and proven final with inclusion and receipt proofs. Devices pay each other round robin.
@main
struct AmarsSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amars-sim",
        abstract: "Drive a fleet of virtual light-client devices against a gateway.",
        discussion: """
            The fleet's keys come from --seed, so a rerun finds the same devices (funded once). The funder's key
            (a person's wallet, over the HTTP API) tops up every device below --fund / 2 before the first round.
            Each round every device syncs, proves its balance, pays the next device --amount over CoAP (odd
            devices over MQTT with --mqtt) and proves the payment final. --rounds 0 runs until stopped.

              amars-sim --genesis data/genesis.json --funder data/keys/app-user-incentive.key --devices 6
            """,
        version: BuildInfo.description)

    @Option(help: "Genesis file: each device's only trust anchor.")
    var genesis: String = "data/genesis.json"

    @Option(help: "The gateway's CoAP endpoint.")
    var coap: String = "coap://127.0.0.1:5683"

    @Option(help: "A broker (host:port) the gateway bridges: odd-numbered devices submit over MQTT.")
    var mqtt: String?

    @Option(help: "HTTP API the funder uses.")
    var node: String = "http://127.0.0.1:8645"

    @Option(help: "Secret key file that funds the fleet.")
    var funder: String

    @Option(help: "Number of devices.")
    var devices: Int = 6

    @Option(help: "Rounds of payments (0: until stopped).")
    var rounds: Int = 3

    @Option(help: "Seconds between rounds.")
    var interval: Double = 0

    @Option(help: "Seed of the fleet's keys.")
    var seed: UInt64 = 1

    @Option(help: "AMSC each device is topped up to.")
    var fund: String = "1"

    @Option(help: "AMSC each payment moves.")
    var amount: String = "0.01"

    func validate() throws {
        guard (2...256).contains(devices) else { throw ValidationError("--devices must be 2 to 256") }
        guard rounds >= 0 else { throw ValidationError("--rounds must be 0 (forever) or more") }
        guard interval >= 0, interval <= 3_600 else { throw ValidationError("--interval must be 0 to 3600 seconds") }
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
        let fundUnits: UInt64
        let payUnits: UInt64
        do {
            fundUnits = try Amount.parse(fund)
            payUnits = try Amount.parse(amount)
        } catch {
            throw ValidationError("--fund / --amount: \(error)")
        }
        guard payUnits < fundUnits else { throw ValidationError("--amount must be less than --fund") }
        let funderKey: PrivateKey
        do { funderKey = try KeyFile.load(funder, passphrase: { KeyFile.environmentPassphrase() }) } catch { throw ValidationError("--funder: \(error)") }

        let fleet = try (0..<devices).map { i in
            try VirtualDevice(
                index: i, seed: seed, anchor: anchor, coap: coapConfig, mqtt: i % 2 == 1 ? mqttConfig : nil)
        }
        defer { fleet.forEach { $0.close() } }
        say(
            "fleet: \(devices) devices of seed \(seed), anchored at genesis \(Hex.encode(anchor.genesisHeaderHash.bytes))"
        )
        for device in fleet {
            say(
                "device \(device.index): \(device.address.bech32)\(device.index % 2 == 1 && mqtt != nil ? " (MQTT)" : "")"
            )
        }
        try topUp(fleet, to: fundUnits, funder: funderKey)

        var totals = Totals()
        var round = 0
        while rounds == 0 || round < rounds {
            round += 1
            totals.add(try runRound(round, fleet, payUnits))
            // Running until stopped (the devnet's fleet): a summary every ten rounds.
            if rounds == 0, round % 10 == 0 { totals.report(fleet) }
            if interval > 0, rounds == 0 || round < rounds { Thread.sleep(forTimeInterval: interval) }
        }
        totals.report(fleet)
        // Failure is a payment tried and not proven; a device too poor to pay is reported, not failed.
        if totals.failed > 0 || totals.proven < totals.attempted - totals.skipped { throw ExitCode(1) }
    }

    /// Funds each device below half of `units` up to `units`, from the funder, and waits until all are final.
    private func topUp(_ fleet: [VirtualDevice], to units: UInt64, funder: PrivateKey) throws {
        let client: NodeClient
        do { client = try NodeClient(baseURL: node) } catch { throw ValidationError("--node: \(error)") }
        let head = try client.head()
        var nonce = try client.account(Address(publicKey: funder.xOnlyPublicKey)).nextNonce
        var sent: [Bytes32] = []
        for device in fleet {
            let balance = try client.account(device.address).balance
            guard balance < units / 2 else { continue }
            let body = TransactionBody(
                genesis: head.genesisBlockHash, sender: funder.xOnlyPublicKey.bytes, nonce: nonce,
                maxFeePerUnit: head.nextBaseFee * 2 + 1, tipPerUnit: 1,
                payload: .transfer(Transfer(to: device.address, amount: units - balance)))
            sent.append(try client.submit(SignedTransaction(body: body, signer: funder)))
            nonce += 1
        }
        guard !sent.isEmpty else { return }
        let deadline = Date().addingTimeInterval(60)
        for id in sent {
            while true {
                let state = try client.transactionStatus(id).state
                if case .included = state { break }
                if case .refused(let code) = state { throw SimulationError.fundingRefused(id, code: code) }
                guard Date() < deadline else {
                    throw SimulationError.fundingNotFinal(id)
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        say("funded \(sent.count) devices up to \(Amount.format(units)) AMSC each")
    }

    /// Every device at once, each on its own thread: sync, prove, pay the next one, prove final.
    private func runRound(_ round: Int, _ fleet: [VirtualDevice], _ units: UInt64) throws -> Totals {
        let results = Results(count: fleet.count)
        DispatchQueue.concurrentPerform(iterations: fleet.count) { i in
            let device = fleet[i]
            let next = fleet[(i + 1) % fleet.count]
            do {
                results.set(i, .success(try device.round(pay: next.address, amount: units)))
            } catch {
                results.set(i, .failure(error))
            }
        }
        var totals = Totals()
        for (i, result) in results.all.enumerated() {
            totals.attempted += 1
            switch result {
            case .success(let r):
                totals.checkpoints += r.checkpoints
                totals.signatures += r.signatures
                if let paid = r.paid {
                    totals.proven += 1
                    totals.latencies.append(paid.millis)
                    say(
                        "round \(round) device \(i): synced \(r.checkpoints) checkpoints, head \(r.headHeight) verified, "
                            + "balance \(Amount.format(r.balance)) AMSC proven; paid device \((i + 1) % fleet.count) "
                            + "over \(paid.overMQTT ? "MQTT" : "CoAP"), final at height \(paid.height) in "
                            + "\(Int(paid.millis)) ms, inclusion and receipt proven")
                } else {
                    totals.skipped += 1
                    say("round \(round) device \(i): balance \(Amount.format(r.balance)) AMSC proven, too low to pay")
                }
            case .failure(let error):
                totals.failed += 1
                say("round \(round) device \(i): FAILED: \(error)")
            }
        }
        return totals
    }

    private func say(_ line: String) { emit(line) }
}

/// One slot per device, written from the device's own thread.
final class Results: @unchecked Sendable {
    // @unchecked: each index is written by exactly one thread of concurrentPerform and read after it returns.
    private let lock = NSLock()
    private var results: [Result<VirtualDevice.Round, Error>?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<VirtualDevice.Round, Error>) { lock.withLock { results[i] = r } }

    var all: [Result<VirtualDevice.Round, Error>] {
        lock.withLock { results.map { $0 ?? .failure(ValidationError("no result")) } }
    }
}

struct Totals {
    var attempted = 0
    var proven = 0
    var skipped = 0
    var failed = 0
    var checkpoints = 0
    var signatures = 0
    var latencies: [Double] = []

    mutating func add(_ other: Totals) {
        attempted += other.attempted
        proven += other.proven
        skipped += other.skipped
        failed += other.failed
        checkpoints += other.checkpoints
        signatures += other.signatures
        latencies += other.latencies
    }

    func report(_ fleet: [VirtualDevice]) {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Int {
            sorted.isEmpty ? 0 : Int(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))])
        }
        let requests = fleet.reduce(0) { $0 + $1.requests }
        let retransmissions = fleet.reduce(0) { $0 + $1.retransmissions }
        emit(
            "fleet: \(fleet.count) devices, \(proven) payments proven final of \(attempted - skipped) attempted "
                + "(\(skipped) too poor, \(failed) failed); submit -> proven final p50 \(percentile(0.5)) ms, "
                + "p99 \(percentile(0.99)) ms; \(checkpoints) checkpoints verified (\(signatures) signatures); "
                + "\(requests) CoAP requests, \(retransmissions) retransmissions")
    }
}

/// One line to standard output, unbuffered: the devnet script and tests read the fleet's progress as it happens.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
