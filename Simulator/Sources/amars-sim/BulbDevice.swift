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
    // @unchecked: driven by one task at a time (its own).
    let device: VirtualDevice
    let resident: Person
    let guest: Person
    /// The household's gateway: the bulb proves certificates there, so a revocation the household saw final is
    /// in the bulb's view too.
    let node: NodeAPI
    private let household: Household
    private let residentCertificate: Bytes32
    private let guestCertificate: Bytes32
    private var bulb: SmartBulb
    private var guestRevoked = false

    init(
        device: VirtualDevice, resident: Person, guest: Person, household: Household, residentCertificate: Bytes32,
        guestCertificate: Bytes32, genesis: Bytes32, node: NodeAPI
    ) {
        self.device = device
        self.node = node
        self.resident = resident
        self.guest = guest
        self.household = household
        self.residentCertificate = residentCertificate
        self.guestCertificate = guestCertificate
        bulb = SmartBulb(
            address: device.address, genesis: genesis, controllers: [residentCertificate, guestCertificate])
    }

    func round(_ n: Int, stats: FleetStats) async throws {
        try await device.follow()
        if n >= 2, !guestRevoked {
            try await household.revoke(guestCertificate, node: node)
            guestRevoked = true
            stats.record("guest revoked on chain")
            stats.mark("bulb \(device.index)'s guest revoked")
        }
        let level = UInt8(10 * (1 + (n + device.index) % 10))
        let counter = UInt64(n) * 10

        let start = DispatchTime.now()
        let command = sign(.dim(level), counter: counter, by: resident, certificate: residentCertificate)
        let light = try await obey(command)
        guard light == SmartBulb.Light(on: true, level: level) else { throw FleetFailure.bulbIgnoredResident }
        stats.record("bulb obeyed its resident", millis: millis(since: start))

        // The guest: obeyed until revoked, refused after.
        let guestCommand = sign(.off, counter: counter + 1, by: guest, certificate: guestCertificate)
        do {
            _ = try await obey(guestCommand)
            if guestRevoked { throw FleetFailure.bulbObeyedRevoked }
            stats.record("bulb obeyed the guest")
        } catch BulbRefusal.controllerNotValid(.revoked) where guestRevoked {
            stats.record("bulb refused a revoked guest")
        }

        // The resident's command again, byte for byte: a replay.
        do {
            _ = try await obey(command)
            throw FleetFailure.bulbObeyedReplay
        } catch BulbRefusal.replayed {
            stats.record("bulb refused a replay")
        }

        // A stranger signs with their own key under the resident's certificate id.
        let stranger = Person(role: "stranger", seed: UInt64(n), index: 90_000 + device.index)
        do {
            _ = try await obey(sign(.on, counter: counter + 2, by: stranger, certificate: residentCertificate))
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
    private func obey(_ bytes: [UInt8]) async throws -> SmartBulb.Light {
        let command = try BulbCommand(decoding: bytes)
        let checked = try bulb.check(command)
        return try bulb.obey(checked, certificate: try await device.verifiedCertificate(checked.certificateID))
    }
}
