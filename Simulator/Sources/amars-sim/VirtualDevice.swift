import AmarsCodec
import AmarsCrypto
import DeviceClient
import Chain
import DeviceCore
import DeviceIdentity
import DeviceProtocol
import Foundation
import Ledger
import LightClient

/// One simulated device's plumbing: its own key, its own CoAP socket on the fleet's ``CoAPReactor`` (and an MQTT
/// session when it submits that way) and its own light-client session, anchored at the genesis file and nothing
/// else. The kinds (``LockDevice``, ``TerminalDevice``, ``BulbDevice``) decide what to do with what the session
/// proves.
///
/// The session is the portable ``DeviceSession`` the firmware runs; this class only moves its requests: each one
/// is awaited on the reactor (or, for an MQTT submit, on the blocking pool), so a device holds no thread.
/// Used by one task at a time (its device's): hence `@unchecked Sendable`.
final class VirtualDevice: @unchecked Sendable {
    let index: Int
    let key: PrivateKey
    let address: Address
    private let reactor: CoAPReactor
    private let endpoint: CoAPReactor.Endpoint
    private var mqtt: MqttDeviceClient?
    private let blocking: BlockingPool
    private var session: DeviceSession
    /// What the device renews its TLS certificate with again, once it renewed it on chain the first time.
    private var tls: TLSRenewal?

    /// A TLS device's own certificate and where its renewed files go, and when the certificate it connects with
    /// ends.
    struct TLSRenewal {
        var device: DeviceCertificate
        var caFile: String
        var directory: String
        var lifetime: UInt64
        var notAfter: UInt64
    }

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

    /// Anchors the session at `genesisHeader` (from the provisioned genesis file, as a board's is); the
    /// first sync asks the gateway for it and refuses a gateway on another chain. `source`: the IPv4 address the
    /// device's socket is bound to, so the gateway sees (and rate-limits) each device apart. `mqtt`: the device's
    /// broker session when it submits there, made (and connected) beforehand by
    /// ``mqttSession(keyIndex:seed:configuration:)``.
    init(
        index: Int, keyIndex: Int, seed: UInt64, anchor: DeviceTrustAnchor, genesisHeader: BlockHeader,
        reactor: CoAPReactor, source: String?, mqtt: MqttDeviceClient?, blocking: BlockingPool
    ) throws {
        self.index = index
        key = Self.key(seed: seed, index: keyIndex)
        address = Address(publicKey: key.xOnlyPublicKey)
        self.reactor = reactor
        endpoint = try reactor.endpoint(source: source)
        self.mqtt = mqtt
        self.blocking = blocking
        session = DeviceSession(anchor: anchor)
        do { try session.anchor(genesisHeader: genesisHeader) } catch { throw DeviceSyncError.device(error) }
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

    /// The loopback address device `index` sends from when the gateway is on this host (127.0.0.0/8 is all
    /// local on Linux): 127.10.0.2 and on, 250 to a /24.
    static func loopbackSource(_ index: Int) -> String { "127.10.\(index / 250 % 256).\(index % 250 + 2)" }

    /// Submits `transaction` (over MQTT when the device has a session there, CoAP otherwise; proofs always over
    /// CoAP) and proves it final with a successful receipt, as the firmware's pay flow does.
    func send(_ transaction: SignedTransaction, finalityMillis: UInt32 = 30_000) async throws -> VerifiedInclusion {
        let outgoing = OutgoingTransaction(transaction)
        let id = outgoing.id
        do {
            guard case .submitted(let submitted) = try await run(.submit(outgoing)), submitted == id else {
                throw SimulationError.unexpected(.submitted(id))
            }
        } catch DeviceSyncError.device(.transactionRefused(let code))
            where Self.refusalsOfACopy.contains(String(decoding: code.bytes, as: UTF8.self))
        {
            // A copy sent again (a CoAP retransmission whose first answer was lost, an MQTT resend to a loaded
            // gateway) is refused because the chain has the first one, pooled or final: not a refusal of the
            // transaction. Its inclusion proof decides.
        }
        session.configuration.pollMillis = 200
        guard case .included(let inclusion) = try await run(.inclusion(id, waitMillis: finalityMillis)) else {
            throw DeviceSyncError.device(.busy)
        }
        guard inclusion.receipt.status == .success else { throw SimulationError.failedOnChain(id) }
        return inclusion
    }

    /// What a gateway answers a copy of a transaction the chain already has.
    static let refusalsOfACopy: Set<String> = ["alreadyKnown", "nonceReplayed"]

    /// Runs one session operation to its end. A link failure is ``DeviceSyncError/transport(_:)``, the device's
    /// own refusal ``DeviceSyncError/device(_:)``, as over the blocking links.
    func run(_ operation: DeviceOperation) async throws -> DeviceOutcome {
        var action = session.start(operation, now: deviceClockMillis(), wallClock: wallClockNow())
        while true {
            _ = session.takeReports()
            switch action {
            case .send(let request):
                let answer: Result<DeviceAnswer, DeviceClientError>
                if request.resource == .transaction, let mqtt {
                    answer = await Self.submit(request, client: mqtt, pool: blocking)
                } else {
                    answer = await reactor.exchange(request, on: endpoint)
                }
                switch answer {
                case .success(let a): action = session.receive(a, now: deviceClockMillis())
                case .failure(let error):
                    session.abandon()
                    throw DeviceSyncError.transport(error)
                }
            case .sleep(let millis):
                try await Task.sleep(nanoseconds: UInt64(millis) * 1_000_000)
                action = session.wake(now: deviceClockMillis())
            case .done(let outcome):
                return outcome
            case .failed(let error):
                throw DeviceSyncError.device(error)
            }
        }
    }

    private static func submit(_ request: DeviceRequest, client: MqttDeviceClient, pool: BlockingPool) async
        -> Result<DeviceAnswer, DeviceClientError>
    {
        nonisolated(unsafe) let client = client
        do {
            return .success(try await pool.run { try MqttDeviceLink(client: client).exchange(request) })
        } catch let error as DeviceClientError {
            return .failure(error)
        } catch {
            return .failure(.unsupported("\(error)"))
        }
    }

    /// Claims an HTLC with the device's own key (DeviceCore's `claim`), which pays the fee.
    func claim(_ order: HTLCClaimOrder) async throws -> VerifiedClaim {
        session.setWallet(DeviceWallet(key: key, nextNonce: 0))
        guard case .claimed(let claimed) = try await run(.claim(order)) else { throw DeviceSyncError.device(.busy) }
        return claimed
    }

    /// Renews the device's short-lived certificate with DeviceCore's `renew`, as the renew firmware and `amars
    /// device renew` do: a fresh key, its certificate signed by the device's long-lived key and published from the
    /// device's account (which pays the fee), proven final. Then the broker session is made again with that
    /// certificate, `device` (the long-lived one) after it, written to `directory`.
    func renewCertificate(lifetime: UInt64, device: DeviceCertificate, caFile: String, directory: String)
        async throws -> VerifiedRenewal
    {
        let fresh = KeyFile.generate()
        guard let order = CertificateRenewalOrder(publicKey: fresh.publicKey, lifetimeSeconds: lifetime) else {
            throw DeviceSyncError.device(.busy)
        }
        session.setWallet(DeviceWallet(key: key, nextNonce: 0))
        guard case .renewed(let renewed) = try await run(.renew(order)) else { throw DeviceSyncError.device(.busy) }
        let short = try DeviceCertificate(der: renewed.der)
        let written = try DeviceTLSIdentity.writeTLSFiles(chain: [short, device], key: fresh, directory: directory)
        guard var config = mqtt?.configuration else { return renewed }
        config.tls = .init(caFile: caFile, chainFile: written.chainFile, keyFile: written.keyFile)
        // The old session is closed and freed first (this device held its last reference), so the new one takes
        // its descriptors again, low enough for libmosquitto's select() (see `mqttSession`).
        mqtt?.disconnect()
        mqtt = nil
        let client = try MqttDeviceClient(device: address, configuration: config)
        // The TLS handshake and the subscriptions wait on the network: on the blocking pool, not on this task.
        nonisolated(unsafe) let connecting = client
        try await blocking.run { try connecting.connect() }
        mqtt = client
        tls = TLSRenewal(
            device: device, caFile: caFile, directory: directory, lifetime: lifetime, notAfter: renewed.notAfter)
        return renewed
    }

    /// Renews the TLS certificate again (``renewCertificate(lifetime:device:caFile:directory:)``) when half its
    /// life has passed (``ShortLivedCertificate/isRenewalDue(notAfter:lifetime:now:)``), so a run longer than one
    /// lifetime (a live run, or one whose broker restarts late) reconnects with a certificate still valid; nil when
    /// not due, or the device does not connect over TLS.
    func renewIfDue(now: UInt64) async throws -> VerifiedRenewal? {
        guard let tls, ShortLivedCertificate.isRenewalDue(notAfter: tls.notAfter, lifetime: tls.lifetime, now: now)
        else { return nil }
        return try await renewCertificate(
            lifetime: tls.lifetime, device: tls.device, caFile: tls.caFile, directory: tls.directory)
    }

    func verifiedHead() async throws -> TrustedHeader {
        guard case .head(let head) = try await run(.head) else { throw DeviceSyncError.device(.busy) }
        return head
    }

    func verifiedAccount(_ address: Address) async throws -> VerifiedAccount {
        guard case .account(let account) = try await run(.account(address)) else { throw DeviceSyncError.device(.busy) }
        return account
    }

    func verifiedEscrow(_ id: Bytes32) async throws -> VerifiedEscrow {
        guard case .escrow(let escrow) = try await run(.escrow(id)) else { throw DeviceSyncError.device(.busy) }
        return escrow
    }

    func verifiedCertificate(_ id: Bytes32) async throws -> VerifiedCertificate {
        guard case .certificate(let c) = try await run(.certificate(id)) else { throw DeviceSyncError.device(.busy) }
        return c
    }

    /// Follows checkpoints from the trusted epoch until the gateway has none left.
    func follow() async throws {
        session.configuration.checkpointPage = CheckpointsPayload.maxCount
        guard case .synced = try await run(.sync(maxEpochs: .max)) else { throw DeviceSyncError.device(.busy) }
    }

    var overMQTT: Bool { mqtt != nil }

    /// The device's link goes down (an injected fault) or comes back; the device is not told.
    func cutLink() { reactor.cut([endpoint]) }
    func restoreLink() { reactor.restore([endpoint]) }

    func close() {
        mqtt?.disconnect()
        reactor.close(endpoint)
    }
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
