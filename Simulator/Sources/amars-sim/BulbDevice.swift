import AmarsClient
import AmarsCodec
import AmarsCrypto
import DeviceClient
import DeviceCore
import DeviceIdentity
import Foundation
import Ledger

/// A smart-home bulb, its resident and a guest. The household's root certificate certifies both controllers; the
/// bulb was paired with their certificate ids. Each round the resident dims or switches the bulb and the guest
/// tries too, each posting the signed command at the gateway's command door (HTTP) and the bulb fetching what
/// waits for it there (its session, over CoAP), then checking and proving it itself. From the second round the
/// household has revoked the guest on chain: the door refuses the guest's command, and handed to the bulb directly
/// (as a gateway that did not check would pass it on) the bulb, proving the certificate at every command, refuses
/// it too. A replayed command goes through the door (which keeps no counters) and the bulb refuses it; a stranger
/// signing with their own key under the resident's certificate id is refused by the door and by the bulb.
final class BulbDevice: @unchecked Sendable {
    // @unchecked: driven by one task at a time (its own).
    let device: VirtualDevice
    let resident: Person
    let guest: Person
    /// The household's gateway: the bulb fetches commands and proves certificates there, so a revocation the
    /// household saw final is in the bulb's view too.
    let node: NodeAPI
    private let household: Household
    private let residentCertificate: Bytes32
    private let guestCertificate: Bytes32
    private var bulb: SmartBulb
    private var guestRevoked = false
    /// The last command sequence fetched from the door.
    private var cursor: UInt64 = 0

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
        let light = try await throughTheDoor(command)
        guard light == SmartBulb.Light(on: true, level: level) else { throw FleetFailure.bulbIgnoredResident }
        stats.record("bulb obeyed its resident", millis: millis(since: start))

        // The guest: obeyed until revoked; after, refused at the door and by the bulb.
        let guestCommand = sign(.off, counter: counter + 1, by: guest, certificate: guestCertificate)
        if guestRevoked {
            try await refusedAtTheDoor(guestCommand, "certificateNotValid", whose: "a revoked guest's")
            stats.record("door refused a revoked guest")
            do {
                _ = try await obey(guestCommand)
                throw FleetFailure.bulbObeyedRevoked
            } catch BulbRefusal.controllerNotValid(.revoked) {
                stats.record("bulb refused a revoked guest")
            }
        } else {
            _ = try await throughTheDoor(guestCommand)
            stats.record("bulb obeyed the guest")
        }

        // The resident's command again, byte for byte: the door passes it on, the bulb refuses the replay.
        do {
            _ = try await throughTheDoor(command)
            throw FleetFailure.bulbObeyedReplay
        } catch BulbRefusal.replayed {
            stats.record("bulb refused a replay")
        }

        // A stranger signs with their own key under the resident's certificate id.
        let stranger = Person(role: "stranger", seed: UInt64(n), index: 90_000 + device.index)
        let forged = sign(.on, counter: counter + 2, by: stranger, certificate: residentCertificate)
        try await refusedAtTheDoor(forged, "keyNotCertified", whose: "a stranger's")
        stats.record("door refused a stranger")
        do {
            _ = try await obey(forged)
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

    /// Posts `command` at the door, then the bulb fetches until it has it and obeys what it fetched in order.
    private func throughTheDoor(_ command: [UInt8]) async throws -> SmartBulb.Light {
        let sequence = try await node { try $0.postCommand(command) }
        let deadline = Date().addingTimeInterval(10)
        var light = bulb.light
        while cursor < sequence {
            guard case .commands(let waiting) = try await device.run(.commands(device.address, after: cursor)) else {
                throw DeviceSyncError.device(.busy)
            }
            for entry in waiting.entries {
                cursor = entry.sequence
                light = try await obey(entry.message)
            }
            if cursor < sequence {
                guard Date() < deadline else { throw FleetFailure.commandNeverArrived }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
        }
        return light
    }

    /// The door must refuse `command` with `code`.
    private func refusedAtTheDoor(_ command: [UInt8], _ code: String, whose: String) async throws {
        do {
            _ = try await node { try $0.postCommand(command) }
            throw FleetFailure.doorTook(whose)
        } catch let error as NodeClientError where error.code == code {}
    }

    /// What the bulb does with the bytes it was handed: decode, the cheap checks, the certificate proven, obey.
    private func obey(_ bytes: [UInt8]) async throws -> SmartBulb.Light {
        let command = try BulbCommand(decoding: bytes)
        let checked = try bulb.check(command)
        return try bulb.obey(checked, certificate: try await device.verifiedCertificate(checked.certificateID))
    }
}
