import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Ledger
import XCTest

@testable import Chain

/// The chain as a PKI through real blocks: a root anchored by its own key, a device CA under it, short-lived
/// certificates under the device; every rule refused with its own reason; revocation by an ancestor falls on
/// everything below it in the next block; expiry by block time; a replica agrees on every state root, and the
/// records' proofs verify against the header.
final class CertificateRulesTests: ReplicatedChainTestCase {

    var rootKey: PrivateKey { t.funded[0] }
    var stranger: PrivateKey { t.funded[1] }
    let deviceKey = TestChain.key(600)
    let freshKey = TestChain.key(601)
    var now: UInt64 { timestamp / 1000 }
    /// Certificates are made from this fixed time, so each is the same bytes whenever it is made.
    let base: UInt64 = 1_700_000_001
    let rootName = Array("Test root".utf8)

    func certificate(
        key: PrivateKey, signer: PrivateKey, issuerName: [UInt8], subjectName: [UInt8], ca: Bool,
        pathLength: UInt8? = nil, from: UInt64? = nil, lifetime: UInt64 = 3600, serial: UInt8 = 1
    ) -> DeviceCertificate {
        let start = from ?? base - 60
        return DeviceCertificate(
            signing: CertificateFields(
                serial: [serial], issuerName: issuerName, subjectName: subjectName, notBefore: start,
                notAfter: start + lifetime, publicKey: key.publicKey, isCA: ca, pathLength: pathLength,
                keyUsage: ca ? KeyUsage.keyCertSign | KeyUsage.digitalSignature : KeyUsage.digitalSignature,
                authorityKeyID: Address(publicKey: signer.xOnlyPublicKey)),
            with: signer)
    }

    var root: DeviceCertificate {
        certificate(
            key: rootKey, signer: rootKey, issuerName: rootName, subjectName: rootName, ca: true, lifetime: 1 << 30)
    }
    var deviceName: [UInt8] { Array(TestChain.address(deviceKey).bech32.utf8) }
    var device: DeviceCertificate {
        certificate(
            key: deviceKey, signer: rootKey, issuerName: rootName, subjectName: deviceName, ca: true, pathLength: 0,
            lifetime: 1 << 28)
    }
    func short(lifetime: UInt64 = 3600, serial: UInt8 = 1, key: PrivateKey? = nil) -> DeviceCertificate {
        certificate(
            key: key ?? freshKey, signer: deviceKey, issuerName: deviceName, subjectName: deviceName, ca: false,
            lifetime: lifetime, serial: serial)
    }

    func plan(_ payload: TransactionPayload, sender: PrivateKey) -> CertificateRefusal? {
        let overlay = StateOverlay(base: WorldStateProbe.world(of: node))
        do {
            switch payload {
            case .certificatePublish(let p):
                _ = try CertificateRules.planPublish(
                    p, sender: TestChain.address(sender), height: node.head.height + 1, time: now, state: overlay)
            case .certificateRevoke(let r):
                _ = try CertificateRules.planRevoke(
                    r, sender: TestChain.address(sender), height: node.head.height + 1, state: overlay)
            default: XCTFail("not a certificate payload")
            }
            return nil
        } catch { return error }
    }

    func publish(_ c: DeviceCertificate) -> TransactionPayload { .certificatePublish(CertificatePublish(der: c.der)) }

    func standing(_ c: DeviceCertificate) -> CertificateStanding? {
        let view = node.certificate(c.id)
        // Every record is proven against the head's state root, as a client checks it.
        for link in view.links {
            XCTAssertTrue(
                link.proof.verify(
                    root: node.head.stateRoot, key: CertificateRecord.stateKey(link.id),
                    valueHash: Domain.stateValue.hash(link.record.encoded)))
        }
        return view.standing
    }

    func testRootDeviceAndShortLivedPublishedAndEveryRuleRefused() throws {
        // A root only its own key anchors.
        XCTAssertEqual(plan(publish(root), sender: stranger), .rootNotSentByItsKey)
        let notCA = certificate(key: rootKey, signer: rootKey, issuerName: rootName, subjectName: rootName, ca: false)
        XCTAssertEqual(plan(publish(notCA), sender: rootKey), .notACertificateAuthority)
        XCTAssertEqual(plan(.certificatePublish(CertificatePublish(der: [0x30, 0x00])), sender: rootKey), .unreadable)
        // Children before their issuer is on chain.
        XCTAssertEqual(plan(publish(device), sender: rootKey), .unknownIssuer)
        XCTAssertNil(plan(publish(root), sender: rootKey))
        let anchored = try send(rootKey, publish(root))
        try block()
        XCTAssertNotNil(try node.status(of: anchored.id))
        XCTAssertEqual(standing(root), .valid)
        XCTAssertEqual(plan(publish(root), sender: rootKey), .alreadyPublished)

        // The device CA: its subject must be its account, its issuer name the root's, signed by the root.
        let misnamed = certificate(
            key: deviceKey, signer: rootKey, issuerName: rootName, subjectName: Array("lock".utf8), ca: true,
            pathLength: 0)
        XCTAssertEqual(plan(publish(misnamed), sender: stranger), .subjectNotItsAccount)
        let wrongIssuerName = certificate(
            key: deviceKey, signer: rootKey, issuerName: Array("Other".utf8), subjectName: deviceName, ca: true)
        XCTAssertEqual(plan(publish(wrongIssuerName), sender: stranger), .issuerNameMismatch)
        // Signed by another key that claims to be the root (its authority key id names the root).
        var forgedFields = device.fields
        forgedFields.serial = [9]
        let forged = DeviceCertificate(signing: forgedFields, with: stranger)
        XCTAssertEqual(plan(publish(forged), sender: stranger), .badSignature)
        // Anyone may publish a correctly signed child (the root authorised it by signing).
        try send(stranger, publish(device))
        try block()
        XCTAssertEqual(standing(device), .valid)

        // Short-lived: 5 minutes to 24 hours, naming the device, under a CA with path length 0.
        XCTAssertEqual(plan(publish(short(lifetime: 299)), sender: deviceKey), .lifetimeOutOfRange(seconds: 299))
        XCTAssertEqual(
            plan(publish(short(lifetime: 86_401)), sender: deviceKey), .lifetimeOutOfRange(seconds: 86_401))
        let impersonating = certificate(
            key: freshKey, signer: deviceKey, issuerName: deviceName, subjectName: Array("amsc1other".utf8), ca: false)
        XCTAssertEqual(plan(publish(impersonating), sender: deviceKey), .subjectNotTheIssuer)
        let subCA = certificate(
            key: freshKey, signer: deviceKey, issuerName: deviceName,
            subjectName: Array(TestChain.address(freshKey).bech32.utf8), ca: true)
        XCTAssertEqual(plan(publish(subCA), sender: deviceKey), .pathLengthExceeded)
        let expired = certificate(
            key: freshKey, signer: deviceKey, issuerName: deviceName, subjectName: deviceName, ca: false,
            from: base - 7200, lifetime: 3600)
        XCTAssertEqual(plan(publish(expired), sender: deviceKey), .expired)
        // A short-lived certificate cannot sign others.
        let leaf = short()
        try send(t.funded[2], publish(leaf))
        try block()
        XCTAssertEqual(standing(leaf), .valid)
        // Another certificate from the same issuer with the same serial (another key) is refused.
        XCTAssertEqual(plan(publish(short(serial: 1, key: TestChain.key(605))), sender: deviceKey), .serialReused)
        let underLeaf = certificate(
            key: TestChain.key(602), signer: freshKey, issuerName: deviceName, subjectName: deviceName, ca: false)
        XCTAssertEqual(plan(publish(underLeaf), sender: stranger), .unknownIssuer)
        XCTAssertEqual(replica.head.stateRoot, node.head.stateRoot)
    }

    func testAnAncestorRevokesAndEverythingBelowFallsInTheNextBlock() throws {
        try send(rootKey, publish(root))
        try block()
        try send(rootKey, publish(device))
        try block()
        let first = short(serial: 1)
        try send(rootKey, publish(first))
        try block()
        XCTAssertEqual(standing(first), .valid)

        let revokeDevice = TransactionPayload.certificateRevoke(CertificateRevoke(certificateID: device.id, reason: 1))
        // Not an ancestor: a stranger, the device itself, or the short-lived key.
        XCTAssertEqual(plan(revokeDevice, sender: stranger), .notAnAncestor)
        XCTAssertEqual(plan(revokeDevice, sender: deviceKey), .notAnAncestor)
        XCTAssertEqual(
            plan(
                .certificateRevoke(CertificateRevoke(certificateID: Bytes32(w0: 1, w1: 1, w2: 1, w3: 1), reason: 0)),
                sender: rootKey),
            .unknownCertificate)
        // The device's own key revokes its short-lived certificate (it is that certificate's issuer).
        let second = short(serial: 2, key: TestChain.key(603))
        try send(rootKey, publish(second))
        try block()
        try send(t.funded[3], .transfer(Transfer(to: TestChain.address(deviceKey), amount: 1_000_000)))
        try block()
        try send(deviceKey, .certificateRevoke(CertificateRevoke(certificateID: second.id, reason: 4)))
        try block()
        guard case .revoked(let at, _) = standing(second) else {
            return XCTFail("\(String(describing: standing(second)))")
        }
        XCTAssertEqual(at, second.id)
        XCTAssertEqual(standing(first), .valid)

        // The root revokes the device: the device and every certificate under it fall at that block.
        try send(rootKey, revokeDevice)
        try block()
        let height = node.head.height
        XCTAssertEqual(standing(device), .revoked(device.id, height: height))
        XCTAssertEqual(standing(first), .revoked(device.id, height: height))
        XCTAssertEqual(plan(revokeDevice, sender: rootKey), .alreadyRevoked)
        // Nothing new is issued under it.
        XCTAssertEqual(plan(publish(short(serial: 3, key: TestChain.key(604))), sender: deviceKey), .issuerNotValid)
        XCTAssertEqual(replica.head.stateRoot, node.head.stateRoot)
    }

    func testExpiryByBlockTime() throws {
        try send(rootKey, publish(root))
        try block()
        try send(rootKey, publish(device))
        try block()
        let leaf = short(lifetime: 600)
        try send(rootKey, publish(leaf))
        try block()
        XCTAssertEqual(standing(leaf), .valid)
        try block(advance: 601)
        XCTAssertEqual(standing(leaf), .expired(leaf.id))
        XCTAssertEqual(standing(device), .valid)
    }

    /// What a broker is told to deny: the accounts whose device certificate is revoked at the head, by its own
    /// revocation or an ancestor's (a hub's falls on the devices under it), and nobody else; the counter a watcher
    /// reads moves only with blocks that change a certificate.
    func testRevokedDeviceAccountsFollowAncestors() throws {
        let hubKey = TestChain.key(610)
        let childKey = TestChain.key(611)
        let hubName = Array(TestChain.address(hubKey).bech32.utf8)
        let hub = certificate(
            key: hubKey, signer: rootKey, issuerName: rootName, subjectName: hubName, ca: true, pathLength: 1,
            lifetime: 1 << 28, serial: 2)
        let child = certificate(
            key: childKey, signer: hubKey, issuerName: hubName,
            subjectName: Array(TestChain.address(childKey).bech32.utf8), ca: true, pathLength: 0, lifetime: 1 << 28)
        // A device whose certificate is not valid yet: it is revoked with its hub all the same, so that it cannot
        // come back when its time comes.
        let lateKey = TestChain.key(612)
        let late = certificate(
            key: lateKey, signer: hubKey, issuerName: hubName,
            subjectName: Array(TestChain.address(lateKey).bech32.utf8), ca: true, pathLength: 0,
            from: base + 100_000, lifetime: 1 << 20, serial: 3)
        try send(rootKey, publish(root))
        try block()
        for c in [device, hub, child, late] {
            try send(rootKey, publish(c))
            try block()
        }
        XCTAssertEqual(standing(child), .valid)
        XCTAssertEqual(standing(late), .notYetValid(late.id))
        XCTAssertEqual(node.revokedDeviceAccounts(), [])
        let before = node.status.certificateBlocks
        try send(t.funded[3], .transfer(Transfer(to: TestChain.address(hubKey), amount: 1)))
        try block()
        XCTAssertEqual(node.status.certificateBlocks, before, "a block of transfers changed no certificate")

        try send(rootKey, .certificateRevoke(CertificateRevoke(certificateID: hub.id, reason: 1)))
        try block()
        XCTAssertEqual(node.status.certificateBlocks, before + 1)
        // The doors judge at the head's time and refuse it as not valid yet; the broker's list has it already.
        XCTAssertEqual(standing(late), .notYetValid(late.id))
        let expected = [TestChain.address(hubKey), TestChain.address(childKey), TestChain.address(lateKey)].sorted {
            $0.raw.bytes.lexicographicallyPrecedes($1.raw.bytes)
        }
        XCTAssertEqual(node.revokedDeviceAccounts(), expected)
        XCTAssertFalse(node.revokedDeviceAccounts().contains(TestChain.address(deviceKey)))
        XCTAssertEqual(replica.revokedDeviceAccounts(), expected)
    }
}
