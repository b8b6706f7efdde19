import AmarsCodec
import AmarsCrypto
import DeviceClient
import DeviceCore
import Foundation
import Ledger
import LightClient

/// One simulated device: its own key, its own CoAP socket (and MQTT session when it submits that way) and its own
/// light-client state, anchored at the genesis file and nothing else. It does what a card terminal does between
/// sleeps: follow the checkpoint chain, verify the head, prove its balance, pay, and prove the payment final.
///
/// Used from one thread at a time (the fleet gives each device its own): hence `@unchecked Sendable`.
final class VirtualDevice: @unchecked Sendable {
    let index: Int
    let key: PrivateKey
    let address: Address
    private let coap: CoAPDeviceClient
    private let mqtt: MqttDeviceClient?
    private var sync: DeviceSync

    /// Deterministic keys: the same `seed` gives the same fleet, so a rerun finds its devices funded.
    static func key(seed: UInt64, index: Int) -> PrivateKey {
        var w = ByteWriter()
        w.writeVarint(seed)
        w.writeVarint(UInt64(index))
        // A tagged hash is a valid secret key except with negligible probability; the next counter value then.
        var counter: UInt64 = 0
        while true {
            var attempt = w
            attempt.writeVarint(counter)
            if let key = try? PrivateKey(bytes: Self.keyTag.hash(attempt.bytes)) { return key }
            counter += 1
        }
    }

    private static let keyTag = TaggedHash(tag: "AmarsSimDevice")

    init(
        index: Int, seed: UInt64, anchor: DeviceTrustAnchor, coap: CoAPDeviceClient.Configuration,
        mqtt: MqttDeviceClient.Configuration?
    ) throws {
        self.index = index
        key = Self.key(seed: seed, index: index)
        address = Address(publicKey: key.xOnlyPublicKey)
        self.coap = try CoAPDeviceClient(configuration: coap)
        if let mqtt {
            var config = mqtt
            config.clientID = "amars-sim-\(seed)-\(index)"
            let client = try MqttDeviceClient(device: address, configuration: config)
            self.mqtt = client
        } else {
            self.mqtt = nil
        }
        sync = try DeviceSync.anchor(anchor, source: self.coap)
    }

    struct Round {
        var checkpoints = 0
        var signatures = 0
        var headHeight: UInt64 = 0
        var balance: UInt64 = 0
        /// Set when the device paid and proved the payment final.
        var paid: (height: UInt64, millis: Double, overMQTT: Bool)?
    }

    /// Follows the chain, proves the balance, and (when it can afford it) pays `amount` to `recipient`.
    func round(pay recipient: Address, amount: UInt64) throws -> Round {
        var result = Round()
        let progress = try sync.sync(source: coap)
        result.checkpoints = progress.checkpoints
        result.signatures = progress.signaturesChecked
        let head = try sync.verifiedHead(source: coap)
        result.headHeight = head.height
        let account = try sync.verifiedAccount(address, source: coap)
        result.balance = account.state.balance
        let (doubled, o1) = head.nextBaseFee.multipliedReportingOverflow(by: 2)
        let cap = o1 ? UInt64.max : doubled.addingReportingOverflow(1).overflow ? UInt64.max : doubled + 1
        // Enough for the amount and the fee cap of a transfer (well under 10,000 units at these prices).
        let (reserve, o2) = cap.multipliedReportingOverflow(by: 10_000)
        guard !o2, account.state.balance >= amount, account.state.balance - amount >= reserve else { return result }
        var fresh = SystemRandomNumberGenerator()
        let order = PaymentOrder(
            recipient: recipient, amount: amount, tipPerUnit: 1,
            auxRandom: Bytes32(w0: fresh.next(), w1: fresh.next(), w2: fresh.next(), w3: fresh.next()),
            finalityMillis: 30_000)
        let start = DispatchTime.now()
        sync.setWallet(DeviceWallet(key: key, nextNonce: account.state.nonce))
        // The same pay flow as the firmware's: balance proven, signed, submitted, inclusion and receipt proven.
        let outcome =
            if let mqtt {
                try sync.run(.pay(order), source: SplitLink(main: coap, submit: MqttDeviceLink(client: mqtt)))
            } else {
                try sync.run(.pay(order), source: coap)
            }
        guard case .paid(let payment) = outcome else { throw SimulationError.unexpected(outcome) }
        let millis = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
        result.paid = (payment.inclusion.header.height, millis, mqtt != nil)
        return result
    }

    var requests: Int { coap.stats.requests }
    var retransmissions: Int { coap.stats.retransmissions }

    func close() { mqtt?.disconnect() }
}

enum SimulationError: Error, CustomStringConvertible {
    case unexpected(DeviceOutcome)
    case fundingNotFinal(Bytes32)
    case fundingRefused(Bytes32, code: String)

    var description: String {
        switch self {
        case .unexpected(let outcome): "the device session answered \(outcome) to a payment"
        case .fundingNotFinal(let id): "funding transfer \(Hex.encode(id.bytes)) not final in 60 s"
        case .fundingRefused(let id, let code):
            "funding transfer \(Hex.encode(id.bytes)) was dropped without a block (\(code))"
        }
    }
}
