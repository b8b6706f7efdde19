import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import DeviceIdentity
import GatewayTestSupport
import Ledger
import XCTest

@testable import DeviceCore

/// The rules of the device kinds, on values the session would have proven: a lock opens only for its own open,
/// unexpired escrow and signs returns only within the renter's terms; a bulb obeys only a paired, valid,
/// matching controller with a fresh counter, and a refusal changes nothing. The simulator's fleet runs the same
/// types against real gateways (`SimulatorTests`).
final class DeviceKindTests: XCTestCase {
    let lockKey = CoAPFixture.key(41)
    let renter = CoAPFixture.address(CoAPFixture.key(42))
    let owner = CoAPFixture.address(CoAPFixture.key(43))
    let genesis = Bytes32(w0: 7, w1: 7, w2: 7, w3: 7)

    func header(_ height: UInt64, time: UInt64 = 1_700_000_000) -> TrustedHeader {
        TrustedHeader(
            BlockHeader(
                chainID: 1, height: height, previousHash: .zero, timestamp: time, epoch: 0, round: 0,
                proposer: .zero, baseFee: 1, unitsUsed: 0, transactionsRoot: .zero, stateRoot: .zero,
                receiptsRoot: .zero, nextCommitteeHash: nil),
            hash: Bytes32(w0: height, w1: 0, w2: 0, w3: 0), basis: .trustedCheckpoint)
    }

    func escrow(
        at height: UInt64, device: Address? = nil, status: EscrowState.Status = .open, expiry: UInt64 = 100,
        present: Bool = true
    ) -> VerifiedEscrow {
        let state = EscrowState(
            renter: renter, device: device ?? CoAPFixture.address(lockKey), owner: owner, deposit: 1_000,
            rentalFee: 100, maxDamages: 400, expiryHeight: expiry, status: status)
        return VerifiedEscrow(
            id: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9), state: present ? state : nil, header: header(height))
    }

    func testALockOpensOnlyForItsOwnOpenUnexpiredEscrow() throws {
        let lock = RentalLock(key: lockKey, genesis: genesis)
        let rental = try lock.admit(escrow(at: 100))
        XCTAssertEqual(rental.renter, renter)
        XCTAssertEqual(rental.until, 100)
        XCTAssertEqual(rental.escrowID, escrow(at: 1).id)

        func refusal(_ e: VerifiedEscrow) -> RentalRefusal? {
            do {
                _ = try lock.admit(e)
                return nil
            } catch { return error }
        }
        XCTAssertEqual(refusal(escrow(at: 101)), .expired(at: 100))
        XCTAssertEqual(refusal(escrow(at: 5, present: false)), .noSuchEscrow)
        XCTAssertEqual(refusal(escrow(at: 5, device: owner)), .anotherDevice)
        XCTAssertEqual(refusal(escrow(at: 5, status: .closed)), .notOpen)
        XCTAssertEqual(refusal(escrow(at: 5, status: .kept)), .notOpen)
    }

    func testALockSignsAReturnTheChainAcceptsAndOnlyWithinTheTerms() throws {
        let lock = RentalLock(key: lockKey, genesis: genesis)
        // A late return, after the expiry but before the deadline, is still signed.
        let close = try lock.attestReturn(escrow(at: 110), damages: 400)
        XCTAssertEqual(close.damages, 400)
        XCTAssertEqual(close.deviceKey, lockKey.xOnlyPublicKey.bytes)
        let message = EscrowClose.signingHash(genesis: genesis, escrowID: close.escrowID, damages: 400)
        XCTAssertTrue(lockKey.xOnlyPublicKey.verifySchnorr(close.deviceSignature, message: message))
        // Signed for this chain only.
        let elsewhere = EscrowClose.signingHash(genesis: .zero, escrowID: close.escrowID, damages: 400)
        XCTAssertFalse(lockKey.xOnlyPublicKey.verifySchnorr(close.deviceSignature, message: elsewhere))

        XCTAssertThrowsError(try lock.attestReturn(escrow(at: 50), damages: 401)) {
            XCTAssertEqual($0 as? RentalRefusal, .damagesOverAgreed(maximum: 400))
        }
        XCTAssertThrowsError(try lock.attestReturn(escrow(at: 120), damages: 0)) {
            XCTAssertEqual($0 as? RentalRefusal, .pastReturnDeadline(120))
        }
        XCTAssertThrowsError(try lock.attestReturn(escrow(at: 50, device: owner), damages: 0)) {
            XCTAssertEqual($0 as? RentalRefusal, .anotherDevice)
        }
        XCTAssertThrowsError(try lock.attestReturn(escrow(at: 50, status: .closed), damages: 0)) {
            XCTAssertEqual($0 as? RentalRefusal, .notOpen)
        }
    }

    // MARK: bulbs

    let resident = CoAPFixture.key(51)
    let stranger = CoAPFixture.key(52)
    let residentCertificate = Bytes32(w0: 51, w1: 0, w2: 0, w3: 0)
    let bulbAddress = CoAPFixture.address(CoAPFixture.key(53))

    func command(
        _ action: BulbCommand.Action, counter: UInt64, by key: PrivateKey? = nil, certificate: Bytes32? = nil,
        bulb: Address? = nil
    ) -> BulbCommand {
        BulbCommand(
            bulb: bulb ?? bulbAddress, counter: counter, action: action,
            certificateID: certificate ?? residentCertificate, controller: key ?? resident, genesis: genesis)
    }

    func proven(_ standing: CertificateStanding?, id: Bytes32? = nil, account: Address? = nil) -> VerifiedCertificate {
        VerifiedCertificate(
            id: id ?? residentCertificate, standing: standing,
            account: account ?? CoAPFixture.address(resident), header: header(10))
    }

    func testABulbObeysItsValidControllerOnceAndRefusesEverythingElseWithoutChanging() throws {
        var bulb = SmartBulb(address: bulbAddress, genesis: genesis, controllers: [residentCertificate])
        XCTAssertEqual(
            try bulb.obey(command(.dim(40), counter: 3), certificate: proven(.valid)), .init(on: true, level: 40))
        XCTAssertEqual(bulb.lastCounter, 3)

        func refusal(_ c: BulbCommand, _ certificate: VerifiedCertificate? = nil) -> BulbRefusal? {
            do {
                _ = try bulb.obey(c, certificate: certificate ?? proven(.valid))
                return nil
            } catch { return error }
        }
        var forged = command(.off, counter: 4)
        forged.action = .on
        let revoked = CertificateStanding.revoked(residentCertificate, height: 9)
        XCTAssertEqual(refusal(command(.off, counter: 3)), .replayed(last: 3))
        XCTAssertEqual(refusal(command(.off, counter: 4, bulb: renter)), .anotherDevice)
        XCTAssertEqual(refusal(command(.off, counter: 4, certificate: .zero)), .unpairedController)
        XCTAssertEqual(refusal(command(.dim(101), counter: 4)), .levelOutOfRange)
        XCTAssertEqual(refusal(forged), .badSignature)
        XCTAssertEqual(refusal(command(.off, counter: 4), proven(nil)), .controllerUnknown)
        XCTAssertEqual(refusal(command(.off, counter: 4), proven(revoked)), .controllerNotValid(revoked))
        XCTAssertEqual(
            refusal(command(.off, counter: 4), proven(.expired(residentCertificate))),
            .controllerNotValid(.expired(residentCertificate)))
        // A stranger's own signature under the resident's certificate: the certificate certifies another key.
        XCTAssertEqual(refusal(command(.off, counter: 4, by: stranger)), .keyNotCertified)
        // A proof of some other certificate than the one the command names.
        XCTAssertEqual(refusal(command(.off, counter: 4), proven(.valid, id: .zero)), .unpairedController)
        XCTAssertEqual(bulb.light, .init(on: true, level: 40))
        XCTAssertEqual(bulb.lastCounter, 3)

        XCTAssertEqual(
            try bulb.obey(command(.off, counter: 9), certificate: proven(.valid)), .init(on: false, level: 40))
        XCTAssertEqual(bulb.lastCounter, 9)
    }

    func testABulbCommandHasOneEncodingAndDecodesNothingElse() throws {
        let c = command(.dim(70), counter: 300)
        XCTAssertEqual(try BulbCommand(decoding: c.encoded), c)
        XCTAssertThrowsError(try BulbCommand(decoding: c.encoded + [0])) {
            XCTAssertEqual($0 as? CodecError, .trailingBytes(count: 1))
        }
        XCTAssertThrowsError(try BulbCommand(decoding: Array(c.encoded.dropLast()))) {
            XCTAssertEqual($0 as? CodecError, .truncated)
        }
        var badTag = c.encoded
        badTag[20 + 2] = 9  // after the 20-byte address and the two-byte counter 300
        XCTAssertThrowsError(try BulbCommand(decoding: badTag)) { XCTAssertEqual($0 as? CodecError, .unknownTag(9)) }
        // Random bytes: refused, or one encoding; never a trap.
        var rng = SplitMix64(seed: 5)
        for _ in 0..<20_000 {
            var bytes = c.encoded
            for _ in 0..<Int(rng.next() % 4) + 1 {
                bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if let decoded = try? BulbCommand(decoding: bytes) { XCTAssertEqual(decoded.encoded, bytes) }
        }
    }
}
