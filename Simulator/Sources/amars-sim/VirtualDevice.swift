import AmarsCodec
import AmarsCrypto
import DeviceClient
import DeviceCore
import Foundation
import Ledger
import LightClient

/// One simulated device's plumbing: its own key, its own CoAP socket (and MQTT session when it submits that way)
/// and its own light-client session, anchored at the genesis file and nothing else. The kinds (``LockDevice``,
/// ``TerminalDevice``) decide what to do with what the session proves.
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

    /// `mqtt`: the device's broker session when it submits there, made (and connected) beforehand by
    /// ``mqttSession(keyIndex:seed:configuration:)``.
    init(
        index: Int, keyIndex: Int, seed: UInt64, anchor: DeviceTrustAnchor, coap: CoAPDeviceClient.Configuration,
        mqtt: MqttDeviceClient?
    ) throws {
        self.index = index
        key = Self.key(seed: seed, index: keyIndex)
        address = Address(publicKey: key.xOnlyPublicKey)
        self.coap = try CoAPDeviceClient(configuration: coap)
        self.mqtt = mqtt
        sync = try DeviceSync.anchor(anchor, source: self.coap)
    }

    /// A device's broker session, connected. The fleet makes these before any other socket: libmosquitto's loop
    /// uses select(), which takes only descriptors under 1,024, and a session holds three.
    static func mqttSession(keyIndex: Int, seed: UInt64, configuration: MqttDeviceClient.Configuration) throws
        -> MqttDeviceClient
    {
        var config = configuration
        config.clientID = "amars-sim-\(seed)-\(keyIndex)"
        let address = Address(publicKey: key(seed: seed, index: keyIndex).xOnlyPublicKey)
        let client = try MqttDeviceClient(device: address, configuration: config)
        try client.connect()
        return client
    }

    /// Devices per process that can submit over MQTT (see ``mqttSession(keyIndex:seed:configuration:)``).
    static let maxMQTTSessions = 300

    /// The device's link for a submit: MQTT when it has a session there, CoAP otherwise; proofs always over CoAP.
    /// Submits `transaction` and proves it final with a successful receipt, as the firmware's pay flow does.
    func send(_ transaction: SignedTransaction, finalityMillis: UInt64 = 30_000) throws -> VerifiedInclusion {
        let outgoing = OutgoingTransaction(transaction)
        let outcome =
            if let mqtt {
                try sync.run(.submit(outgoing), source: SplitLink(main: coap, submit: MqttDeviceLink(client: mqtt)))
            } else {
                try sync.run(.submit(outgoing), source: coap)
            }
        guard case .submitted(let id) = outcome, id == outgoing.id else { throw SimulationError.unexpected(outcome) }
        let inclusion = try sync.waitForInclusion(id, source: coap, timeoutMillis: finalityMillis)
        guard inclusion.receipt.status == .success else { throw SimulationError.failedOnChain(id) }
        return inclusion
    }

    /// Runs one session operation over CoAP.
    func run(_ operation: DeviceOperation) throws -> DeviceOutcome { try sync.run(operation, source: coap) }

    func verifiedHead() throws -> TrustedHeader { try sync.verifiedHead(source: coap) }

    func verifiedAccount(_ address: Address) throws -> VerifiedAccount {
        try sync.verifiedAccount(address, source: coap)
    }

    func verifiedEscrow(_ id: Bytes32) throws -> VerifiedEscrow { try sync.verifiedEscrow(id, source: coap) }

    func verifiedCertificate(_ id: Bytes32) throws -> VerifiedCertificate {
        try sync.verifiedCertificate(id, source: coap)
    }

    @discardableResult
    func follow() throws -> SyncProgress { try sync.sync(source: coap) }

    var overMQTT: Bool { mqtt != nil }

    var requests: Int { coap.stats.requests }
    var retransmissions: Int { coap.stats.retransmissions }

    func close() { mqtt?.disconnect() }
}

enum SimulationError: Error, CustomStringConvertible {
    case unexpected(DeviceOutcome)
    case failedOnChain(Bytes32)
    case notFinal(String, Bytes32)
    case refused(String, Bytes32, code: String)

    var description: String {
        switch self {
        case .unexpected(let outcome): "the device session answered \(outcome)"
        case .failedOnChain(let id): "transaction \(Hex.encode(id.bytes)) is final but its receipt says it failed"
        case .notFinal(let what, let id): "\(what) \(Hex.encode(id.bytes)) not final in 60 s"
        case .refused(let what, let id, let code):
            "\(what) \(Hex.encode(id.bytes)) was dropped without a block (\(code))"
        }
    }
}
