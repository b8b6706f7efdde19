import AmarsCodec
import AmarsCrypto
import DeviceClient
import DeviceCore
import DeviceIdentity
import DeviceProtocol
import GatewayTestSupport
import Ledger
import LightClient
import XCTest

@testable import DeviceGateway

/// The gateway's command door against a real chain: it queues only commands signed, for this chain, by the key a
/// certificate valid on chain certifies; a bulb's session fetches them over `v1/commands` in order and the bulb
/// obeys them after proving the certificate itself. Revocation closes the door to a controller at once; what a
/// gateway lists out of order is refused by the session; queues stay bounded.
final class CommandDoorTests: XCTestCase {
    let base: UInt64 = 1_700_000_000
    let residentKey = CoAPFixture.key(41)
    let guestKey = CoAPFixture.key(42)
    let strangerKey = CoAPFixture.key(43)
    let bulbAddress = CoAPFixture.address(CoAPFixture.key(44))

    private func certificate(_ key: PrivateKey, by signer: PrivateKey, root: Bool, serial: UInt8 = 1)
        -> DeviceCertificate
    {
        let rootName = Array("Door home".utf8)
        return DeviceCertificate(
            signing: CertificateFields(
                serial: [serial], issuerName: rootName,
                subjectName: root ? rootName : Array(CoAPFixture.address(key).bech32.utf8), notBefore: base - 60,
                notAfter: base + (1 << 28), publicKey: key.publicKey, isCA: true, pathLength: root ? 1 : 0,
                keyUsage: KeyUsage.keyCertSign | KeyUsage.digitalSignature,
                authorityKeyID: Address(publicKey: signer.xOnlyPublicKey)),
            with: signer)
    }

    /// A chain where alice's root certifies the resident and the guest.
    private func household() throws -> (
        CoAPFixture, resident: Bytes32, guest: Bytes32, send: (TransactionPayload) throws -> Void
    ) {
        let f = try CoAPFixture(epochLength: 4, start: false)
        func send(_ payload: TransactionPayload) throws { try f.aliceIncludes(payload) }
        let root = certificate(f.alice, by: f.alice, root: true)
        let resident = certificate(residentKey, by: f.alice, root: false, serial: 2)
        let guest = certificate(guestKey, by: f.alice, root: false, serial: 3)
        for c in [root, resident, guest] { try send(.certificatePublish(CertificatePublish(der: c.der))) }
        return (f, resident.id, guest.id, send)
    }

    private func command(
        _ f: CoAPFixture, _ action: BulbCommand.Action, counter: UInt64, key: PrivateKey, certificate: Bytes32
    ) -> [UInt8] {
        BulbCommand(
            bulb: bulbAddress, counter: counter, action: action, certificateID: certificate, controller: key,
            genesis: f.node.genesisBlockHash
        ).encoded
    }

    func testTheDoorQueuesOnlyCertifiedCommandsAndTheBulbObeysWhatItFetches() throws {
        let (f, resident, guest, send) = try household()
        defer { f.close() }
        let door = f.commandDoor
        let dim = command(f, .dim(40), counter: 1, key: residentKey, certificate: resident)
        let off = command(f, .off, counter: 2, key: guestKey, certificate: guest)
        let first = try door.post(dim)
        let second = try door.post(off)
        XCTAssertEqual(first.device, bulbAddress)
        XCTAssertGreaterThan(second.sequence, first.sequence)

        // What a stranger should not be able to queue.
        var forged = dim
        forged[forged.count - 1] ^= 1
        let refusals: [([UInt8], CommandDoor.Refusal)] = [
            (command(f, .on, counter: 3, key: strangerKey, certificate: resident), .keyNotCertified),
            (
                command(f, .on, counter: 3, key: strangerKey, certificate: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)),
                .certificateUnknown
            ),
            (forged, .badSignature),
            (Array(dim.dropLast()), .undecodable),
            ([UInt8](repeating: 7, count: CommandsPayload.maxCommandBytes + 1), .tooLarge),
        ]
        for (bytes, refusal) in refusals {
            XCTAssertThrowsError(try door.post(bytes)) { XCTAssertEqual($0 as? CommandDoor.Refusal, refusal) }
        }
        // For another chain the signature does not verify.
        let otherChain = BulbCommand(
            bulb: bulbAddress, counter: 3, action: .on, certificateID: resident, controller: residentKey,
            genesis: Bytes32(w0: 1, w1: 1, w2: 1, w3: 1)
        ).encoded
        XCTAssertThrowsError(try door.post(otherChain)) { XCTAssertEqual($0 as? CommandDoor.Refusal, .badSignature) }

        // The bulb's session fetches both, in order, with their bytes; then only what came after its cursor.
        var (session, link) = try anchored(f)
        guard case .commands(let waiting) = try session.run(.commands(bulbAddress, after: 0), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(waiting.entries.map(\.sequence), [first.sequence, second.sequence])
        XCTAssertEqual(waiting.entries.map(\.message), [dim, off])
        guard case .commands(let later) = try session.run(.commands(bulbAddress, after: first.sequence), over: &link)
        else { return XCTFail() }
        XCTAssertEqual(later.entries.map(\.sequence), [second.sequence])
        guard case .commands(let none) = try session.run(.commands(strangerAddress, after: 0), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(none.entries, [])

        // The bulb obeys each after proving its controller's certificate.
        var bulb = SmartBulb(address: bulbAddress, genesis: f.node.genesisBlockHash, controllers: [resident, guest])
        for entry in waiting.entries {
            let checked = try bulb.check(try BulbCommand(decoding: entry.message))
            guard case .certificate(let proven) = try session.run(.certificate(checked.certificateID), over: &link)
            else { return XCTFail() }
            _ = try bulb.obey(checked, certificate: proven)
        }
        XCTAssertEqual(bulb.light, SmartBulb.Light(on: false, level: 40))

        // Revoked on chain: the door refuses the guest from the next block on.
        try send(.certificateRevoke(CertificateRevoke(certificateID: guest, reason: 1)))
        XCTAssertThrowsError(try door.post(command(f, .on, counter: 5, key: guestKey, certificate: guest))) {
            guard case .certificateNotValid(.revoked)? = $0 as? CommandDoor.Refusal else { return XCTFail("\($0)") }
        }
        XCTAssertNoThrow(try door.post(command(f, .on, counter: 6, key: residentKey, certificate: resident)))
    }

    var strangerAddress: Address { CoAPFixture.address(strangerKey) }

    /// A gateway that lists commands out of order, or one the device has seen again, is refused by the session.
    func testTheSessionRefusesCommandsListedOutOfOrder() throws {
        let (f, resident, _, _) = try household()
        defer { f.close() }
        var (session, link) = try anchored(f)
        let a = command(f, .on, counter: 1, key: residentKey, certificate: resident)
        let cases: [([(UInt64, [UInt8])], UInt64)] = [([(5, a), (4, a)], 0), ([(5, a)], 5), ([(3, a)], 4)]
        for (entries, after) in cases {
            let payload = CommandsPayload(entries: entries.map { CommandsPayload.Entry(sequence: $0.0, message: $0.1) })
            link.intercept = { $0.resource == .commands ? DeviceAnswer(code: .content, body: payload.encoded) : nil }
            XCTAssertEqual(
                deviceError { _ = try session.run(.commands(bulbAddress, after: after), over: &link) },
                .inconsistent(.messageSequence))
        }
        link.intercept = { $0.resource == .commands ? DeviceAnswer(code: .content, body: [0xFF]) : nil }
        guard
            case .undecodable(.commands, _)? = deviceError({
                _ = try session.run(.commands(bulbAddress, after: 0), over: &link)
            })
        else { return XCTFail("garbage must be undecodable") }
        link.intercept = nil
        // A bad query is the door's 4.00, not a crash.
        let answer = f.server.handlers.handle(.commands, query: Array("a=zz&after=x".utf8), body: [])
        XCTAssertEqual(answer.code, .badRequest)
    }

    /// Queues are bounded per device and in devices, commands expire, and sequences keep growing when a door
    /// reopens (a restarted gateway) so a device's cursor is never ahead of them.
    func testQueuesAreBoundedCommandsExpireAndSequencesGrowAcrossRestarts() throws {
        let (f, resident, _, _) = try household()
        defer { f.close() }
        nonisolated(unsafe) var now: UInt64 = 1_000
        let door = CommandDoor(
            node: f.node, limits: .init(perDevice: 3, devices: 2, lifetimeSeconds: 60), clock: { now },
            firstSequence: 100)
        func post(_ counter: UInt64, to bulb: Address? = nil) throws -> UInt64 {
            let c = BulbCommand(
                bulb: bulb ?? bulbAddress, counter: counter, action: .on, certificateID: resident,
                controller: residentKey, genesis: f.node.genesisBlockHash)
            return try door.post(c.encoded).sequence
        }
        let sequences = try (1...5).map { try post($0) }
        XCTAssertEqual(sequences, [101, 102, 103, 104, 105])
        XCTAssertEqual(door.commands(for: bulbAddress, after: 0).map(\.sequence), [103, 104, 105])
        XCTAssertEqual(door.commands(for: bulbAddress, after: 0, limit: 2).map(\.sequence), [103, 104])
        // A third device pushes out the one whose newest command is oldest.
        now += 1
        _ = try post(1, to: CoAPFixture.address(CoAPFixture.key(51)))
        now += 1
        _ = try post(1, to: CoAPFixture.address(CoAPFixture.key(52)))
        XCTAssertEqual(door.commands(for: bulbAddress, after: 0), [])
        XCTAssertEqual(door.commands(for: CoAPFixture.address(CoAPFixture.key(52)), after: 0).count, 1)
        // Past their lifetime commands are gone.
        now += 61
        XCTAssertEqual(door.commands(for: CoAPFixture.address(CoAPFixture.key(52)), after: 0), [])
        // A door opened later (the default start is the clock in microseconds) numbers past what came before.
        let reopened = CommandDoor(node: f.node)
        let next = try reopened.post(
            BulbCommand(
                bulb: bulbAddress, counter: 9, action: .on, certificateID: resident, controller: residentKey,
                genesis: f.node.genesisBlockHash
            ).encoded)
        let earlier = try f.commandDoor.post(
            BulbCommand(
                bulb: bulbAddress, counter: 8, action: .on, certificateID: resident, controller: residentKey,
                genesis: f.node.genesisBlockHash
            ).encoded)
        XCTAssertGreaterThan(next.sequence, earlier.sequence)
    }
}
