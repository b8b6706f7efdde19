import AmarsClient
import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Foundation
import Ledger

/// The household's certificate authority: a root certificate published on chain with the household's key, the
/// controllers' certificates under it, and revocations. Its key is shared by the bulbs' tasks (a
/// ``SharedWallet``).
final class Household: Sendable {
    let wallet: SharedWallet
    let root: DeviceCertificate

    var person: Person { wallet.person }

    init(person: Person) {
        wallet = SharedWallet(person)
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
    func publish(_ certificates: [DeviceCertificate], node: NodeAPI) async throws {
        try await wallet.publish([[root], certificates], node: node)
    }

    /// Revokes `certificate` with the root's key and waits until the revocation is final.
    func revoke(_ certificate: Bytes32, node: NodeAPI) async throws {
        let wallet = wallet
        let id = try await node {
            try wallet.submit(.certificateRevoke(CertificateRevoke(certificateID: certificate, reason: 0)), via: $0)
        }
        try await Funder.waitFinal(id, node: node, what: "certificate revocation")
    }

    private static func serial() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        bytes[0] = (bytes[0] & 0x7F) | 0x01
        return bytes
    }
}
