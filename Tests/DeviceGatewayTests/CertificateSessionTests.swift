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

/// A device checking a peer's certificate with the session (the code the board, `amars device cert` and the
/// simulator share) against a real chain and its `v1/cert` door: valid, revoked with everything below it, absent;
/// and every forgery a gateway could answer with refused with its own reason.
final class CertificateSessionTests: XCTestCase {
    let rootName = Array("Session root".utf8)
    let deviceKey = CoAPFixture.key(31)
    let freshKey = CoAPFixture.key(32)
    let base: UInt64 = 1_700_000_000

    func certificate(
        key: PrivateKey, signer: PrivateKey, issuer: [UInt8], subject: [UInt8], ca: Bool, lifetime: UInt64
    ) -> DeviceCertificate {
        DeviceCertificate(
            signing: CertificateFields(
                serial: [1], issuerName: issuer, subjectName: subject, notBefore: base - 60,
                notAfter: base - 60 + lifetime, publicKey: key.publicKey, isCA: ca, pathLength: ca ? 1 : nil,
                keyUsage: ca ? KeyUsage.keyCertSign | KeyUsage.digitalSignature : KeyUsage.digitalSignature,
                authorityKeyID: Address(publicKey: signer.xOnlyPublicKey)),
            with: signer)
    }

    func testAPeerCertificateIsProvenValidThenRevokedAndForgeriesAreRefused() throws {
        let f = try CoAPFixture(epochLength: 4, start: false)
        defer { f.close() }
        let deviceName = Array(CoAPFixture.address(deviceKey).bech32.utf8)
        let root = certificate(
            key: f.alice, signer: f.alice, issuer: rootName, subject: rootName, ca: true, lifetime: 1 << 30)
        let device = certificate(
            key: deviceKey, signer: f.alice, issuer: rootName, subject: deviceName, ca: true, lifetime: 1 << 28)
        let short = certificate(
            key: freshKey, signer: deviceKey, issuer: deviceName, subject: deviceName, ca: false, lifetime: 86_400)
        func send(_ payload: TransactionPayload) throws { try f.aliceIncludes(payload) }
        for c in [root, device, short] { try send(.certificatePublish(CertificatePublish(der: c.der))) }

        var (session, link) = try anchored(f)
        guard case .certificate(let proven) = try session.run(.certificate(short.id), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(proven.standing, .valid)
        XCTAssertEqual(proven.account, CoAPFixture.address(freshKey))
        XCTAssertEqual(proven.header.height, f.node.head.height)
        // No certificate has this id: its absence is proven.
        let unknown = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        guard case .certificate(let absent) = try session.run(.certificate(unknown), over: &link) else {
            return XCTFail()
        }
        XCTAssertNil(absent.standing)

        // Forgeries: a record changed (its proof fails), the chain cut before the root, a link swapped for another
        // certificate's, another state root, a proof from before the head.
        let request = DeviceRequest.certificateProof(short.id)
        let genuine = try CertificateProofPayload(
            decoding: f.server.handlers.handle(.certificate, query: request.joinedQuery, body: []).payload)
        func refusal(_ payload: CertificateProofPayload) -> DeviceError? {
            link.intercept = { $0.resource == .certificate ? DeviceAnswer(code: .content, body: payload.encoded) : nil }
            defer { link.intercept = nil }
            return deviceError { _ = try session.run(.certificate(short.id), over: &link) }
        }
        var tampered = genuine
        var record = try CertificateRecord(decoding: tampered.links[1].record)
        record.revokedAt = 0
        record.publishedAt += 1
        tampered.links[1].record = record.encoded
        XCTAssertEqual(refusal(tampered), .rejected(.stateProofMismatch, stage: .certificateProof))
        var cut = genuine
        cut.links.removeLast()
        XCTAssertEqual(refusal(cut), .inconsistent(.certificateChain))
        var swapped = genuine
        swapped.links[0] = genuine.links[1]
        XCTAssertEqual(refusal(swapped), .inconsistent(.certificateChain))
        var otherRoot = genuine
        otherRoot.stateRoot = Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)
        XCTAssertEqual(refusal(otherRoot), .inconsistent(.stateRootMismatch(.certificate, height: genuine.height)))
        var stale = genuine
        stale.height -= 1
        XCTAssertEqual(
            refusal(stale), .inconsistent(.staleCertificateProof(proofHeight: stale.height, headHeight: genuine.height))
        )
        XCTAssertTrue(session.isIdle)

        // The root revokes the device: the short-lived certificate falls with it at that block.
        try send(.certificateRevoke(CertificateRevoke(certificateID: device.id, reason: 1)))
        guard case .certificate(let after) = try session.run(.certificate(short.id), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(after.standing, .revoked(device.id, height: f.node.head.height))
        XCTAssertFalse(after.isValid)
    }

    /// The renewal the board, `amars device renew` and the simulator share: the device signs a certificate for its
    /// fresh key dated by the verified head, publishes it from its own account and proves it final; the chain then
    /// holds it valid under the device's certificate. Once the root revokes the device, the gateway refuses its renewal
    /// with the chain's reason and nothing is spent.
    func testTheDeviceRenewsItsShortLivedCertificateAndARevokedDeviceCannot() throws {
        let f = try CoAPFixture(epochLength: 4, start: false)
        defer { f.close() }
        let device = CoAPFixture.address(deviceKey)
        let deviceName = Array(device.bech32.utf8)
        let root = certificate(
            key: f.alice, signer: f.alice, issuer: rootName, subject: rootName, ca: true, lifetime: 1 << 30)
        let long = certificate(
            key: deviceKey, signer: f.alice, issuer: rootName, subject: deviceName, ca: true, lifetime: 1 << 28)
        try f.aliceIncludes(.transfer(Transfer(to: device, amount: 5_000_000)))
        for c in [root, long] { try f.aliceIncludes(.certificatePublish(CertificatePublish(der: c.der))) }

        XCTAssertNil(CertificateRenewalOrder(publicKey: freshKey.publicKey, lifetimeSeconds: 299))
        XCTAssertNil(CertificateRenewalOrder(publicKey: freshKey.publicKey, lifetimeSeconds: 86_401))
        let order = try XCTUnwrap(
            CertificateRenewalOrder(publicKey: freshKey.publicKey, lifetimeSeconds: 3_600, finalityMillis: 5_000))
        var (keyless, keylessLink) = try anchored(f)
        XCTAssertEqual(deviceError { _ = try keyless.run(.renew(order), over: &keylessLink) }, .noWallet)

        var (session, link) = try anchored(f, wallet: DeviceWallet(key: deviceKey, nextNonce: 0))
        link.onSleep = { _ in _ = try? f.produceBlock() }
        var reports: [DeviceReport] = []
        guard case .renewed(let renewed) = try session.run(.renew(order), over: &link, onReport: { reports.append($0) })
        else { return XCTFail() }
        let short = try DeviceCertificate(der: renewed.der)
        XCTAssertEqual(short.id, renewed.id)
        XCTAssertEqual(short.fields.publicKey, freshKey.publicKey)
        XCTAssertEqual(short.fields.subjectName, deviceName)
        XCTAssertEqual(short.fields.issuerName, deviceName)
        XCTAssertEqual(short.fields.authorityKeyID, device)
        XCTAssertFalse(short.fields.isCA)
        XCTAssertEqual(short.fields.serial, ShortLivedCertificate.serial(for: freshKey.publicKey))
        XCTAssertTrue(short.isSigned(by: deviceKey.publicKey))
        XCTAssertFalse(short.isSigned(by: f.alice.publicKey))
        // Dated by the verified head's time when it was signed, a minute back, for exactly the lifetime asked.
        let issuedAt = try XCTUnwrap(
            reports.compactMap { if case .certificateIssued(let id, _, let h) = $0, id == short.id { h } else { nil } }
                .first)
        let signedHeader = try XCTUnwrap(f.node.block(at: issuedAt)?.finalized.block.header)
        XCTAssertEqual(renewed.notBefore, signedHeader.timestamp / 1000 - ShortLivedCertificate.backdate)
        XCTAssertEqual(renewed.notAfter - renewed.notBefore, 3_600)
        XCTAssertEqual(renewed.payment.inclusion.receipt.status, .success)
        XCTAssertEqual(session.wallet?.nextNonce, 1)
        // The chain holds it, valid, under the device's certificate and the root.
        guard case .certificate(let proven) = try session.run(.certificate(short.id), over: &link) else {
            return XCTFail()
        }
        XCTAssertEqual(proven.standing, .valid)
        XCTAssertEqual(proven.account, CoAPFixture.address(freshKey))
        XCTAssertEqual(proven.root, root.id)
        // The order of the renewal's requests: head, the account, the publication, its proof.
        let renewal = link.requests.map(\.resource).filter { $0 != .headers }.drop { $0 != .head }
        XCTAssertEqual(Array(renewal.prefix(4)), [.head, .accountProof, .transaction, .txProof])

        // The root revokes the device: the gateway refuses its next renewal with the chain's reason, and the
        // device's nonce stays unused (proven again after the refusal).
        try f.aliceIncludes(.certificateRevoke(CertificateRevoke(certificateID: long.id, reason: 1)))
        let again = try XCTUnwrap(
            CertificateRenewalOrder(
                publicKey: CoAPFixture.key(33).publicKey, lifetimeSeconds: 600, finalityMillis: 5_000))
        XCTAssertEqual(
            deviceError { _ = try session.run(.renew(again), over: &link) },
            .transactionRefused(code: ShortText(Array("issuerNotValid".utf8))))
        XCTAssertEqual(f.node.account(device).state.nonce, 1)
    }
}
