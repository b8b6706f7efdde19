import AmarsClient
import AmarsCodec
import AmarsCrypto
import DeviceCore
import DeviceIdentity
import Foundation
import Ledger

/// A smart-home bulb, its resident and a guest. The household's root certificate certifies both controllers; the
/// bulb was paired with their certificate ids. Each round the resident dims or switches the bulb and the guest
/// tries too; from the second round the household has revoked the guest on chain, so the bulb, proving the
/// certificate at every command, must refuse the guest. A replayed command and a stranger who signs with their own
/// key under the resident's certificate id must be refused every round. Commands go to the bulb as bytes (there
/// is no command door on the gateway yet: the simulator hands them over), and the bulb decodes them itself.
final class BulbDevice: @unchecked Sendable {
    // @unchecked: driven by one thread at a time (its own).
    let device: VirtualDevice
    let resident: Person
    let guest: Person
    private let household: Household
    private let residentCertificate: Bytes32
    private let guestCertificate: Bytes32
    private var bulb: SmartBulb
    private var guestRevoked = false

    init(
        device: VirtualDevice, resident: Person, guest: Person, household: Household, residentCertificate: Bytes32,
        guestCertificate: Bytes32, genesis: Bytes32
    ) {
        self.device = device
        self.resident = resident
        self.guest = guest
        self.household = household
        self.residentCertificate = residentCertificate
        self.guestCertificate = guestCertificate
        bulb = SmartBulb(
            address: device.address, genesis: genesis, controllers: [residentCertificate, guestCertificate])
    }

    func round(_ n: Int, client: NodeClient, stats: FleetStats) throws {
        try device.follow()
        if n >= 2, !guestRevoked {
            try household.revoke(guestCertificate, client: client)
            guestRevoked = true
            stats.record("guest revoked on chain")
            stats.mark("bulb \(device.index)'s guest revoked")
        }
        let level = UInt8(10 * (1 + (n + device.index) % 10))
        let counter = UInt64(n) * 10

        let start = DispatchTime.now()
        let command = sign(.dim(level), counter: counter, by: resident, certificate: residentCertificate)
        let light = try obey(command)
        guard light == SmartBulb.Light(on: true, level: level) else { throw FleetFailure.bulbIgnoredResident }
        stats.record("bulb obeyed its resident", millis: millis(since: start))

        // The guest: obeyed until revoked, refused after.
        let guestCommand = sign(.off, counter: counter + 1, by: guest, certificate: guestCertificate)
        do {
            _ = try obey(guestCommand)
            if guestRevoked { throw FleetFailure.bulbObeyedRevoked }
            stats.record("bulb obeyed the guest")
        } catch BulbRefusal.controllerNotValid(.revoked) where guestRevoked {
            stats.record("bulb refused a revoked guest")
        }

        // The resident's command again, byte for byte: a replay.
        do {
            _ = try obey(command)
            throw FleetFailure.bulbObeyedReplay
        } catch BulbRefusal.replayed {
            stats.record("bulb refused a replay")
        }

        // A stranger signs with their own key under the resident's certificate id.
        let stranger = Person(role: "stranger", seed: UInt64(n), index: 90_000 + device.index)
        do {
            _ = try obey(sign(.on, counter: counter + 2, by: stranger, certificate: residentCertificate))
            throw FleetFailure.bulbObeyedStranger
        } catch BulbRefusal.keyNotCertified {
            stats.record("bulb refused a stranger")
        }
    }

    private func sign(_ action: BulbCommand.Action, counter: UInt64, by person: Person, certificate: Bytes32)
        -> [UInt8]
    {
        BulbCommand(
            bulb: device.address, counter: counter, action: action, certificateID: certificate,
            controller: person.key, genesis: bulb.genesis
        ).encoded
    }

    /// What the bulb does with the bytes it was handed: decode, the cheap checks, the certificate proven, obey.
    private func obey(_ bytes: [UInt8]) throws -> SmartBulb.Light {
        let command = try BulbCommand(decoding: bytes)
        let id = try bulb.certificateToProve(command)
        return try bulb.obey(command, certificate: try device.verifiedCertificate(id))
    }
}

/// The household's certificate authority: a root certificate published on chain with the household's key, the
/// controllers' certificates under it, and revocations. Its key is shared by the bulbs' threads, so one lock
/// keeps its transactions' nonces in order.
final class Household: @unchecked Sendable {
    // @unchecked: `person` is immutable; submits are serialized by `lock`.
    let person: Person
    let root: DeviceCertificate
    private let lock = NSLock()

    init(person: Person) {
        self.person = person
        let now = UInt64(Date().timeIntervalSince1970)
        let name = Array("amars-sim home \(person.address.bech32.suffix(8))".utf8)
        root = DeviceCertificate(
            signing: CertificateFields(
                serial: Self.serial(), issuerName: name, subjectName: name, notBefore: now - 60,
                notAfter: now + 365 * 86_400, publicKey: person.key.publicKey, isCA: true, pathLength: 1,
                keyUsage: KeyUsage.keyCertSign | KeyUsage.cRLSign, authorityKeyID: person.address),
            with: person.key)
    }

    /// A controller's long-lived device certificate under the root, for a year (what `amars cert enroll` gives a
    /// device: a CA for its own short-lived keys only).
    func certify(_ controller: Person) -> DeviceCertificate {
        let now = UInt64(Date().timeIntervalSince1970)
        return DeviceCertificate(
            signing: CertificateFields(
                serial: Self.serial(), issuerName: root.fields.subjectName,
                subjectName: Array(controller.address.bech32.utf8), notBefore: now - 60,
                notAfter: min(now + 365 * 86_400, root.fields.notAfter), publicKey: controller.key.publicKey,
                isCA: true, pathLength: 0, keyUsage: KeyUsage.digitalSignature | KeyUsage.keyCertSign,
                authorityKeyID: root.fields.subjectKeyID),
            with: person.key)
    }

    /// Publishes the root, then (once it is final: the chain takes a certificate only under a published issuer)
    /// `certificates`, and waits until all are final.
    func publish(_ certificates: [DeviceCertificate], client: NodeClient) throws {
        for batch in [[root], certificates] {
            let ids = try lock.withLock {
                try batch.map { try person.submit(.certificatePublish(CertificatePublish(der: $0.der)), via: client) }
            }
            for id in ids { try Funder.waitFinal(id, client: client, what: "certificate publish") }
        }
    }

    /// Revokes `certificate` with the root's key and waits until the revocation is final.
    func revoke(_ certificate: Bytes32, client: NodeClient) throws {
        let id = try lock.withLock {
            try person.submit(.certificateRevoke(CertificateRevoke(certificateID: certificate, reason: 0)), via: client)
        }
        try Funder.waitFinal(id, client: client, what: "certificate revocation")
    }

    private static func serial() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        bytes[0] = (bytes[0] & 0x7F) | 0x01
        return bytes
    }
}
