import AmarsCodec
import AmarsCrypto
import DeviceClient
import DeviceIdentity
import Foundation
import Ledger

/// The files TLS software (OpenSSL, mosquitto) reads that the chain's certificates do not cover: a key as a SEC1
/// PEM, and a broker's server certificate (the profile's extensions plus extended key usage and subject
/// alternative names, which hostname checks need; it is never published on chain).
enum TLSFiles {
    /// 1.3.6.1.5.5.7.3.1 (id-kp-serverAuth) inside extKeyUsage 2.5.29.37; subjectAltName is 2.5.29.17.
    static let extendedKeyUsage: [UInt8] = [0x55, 0x1D, 0x25]
    static let serverAuth: [UInt8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
    static let subjectAltName: [UInt8] = [0x55, 0x1D, 0x11]

    /// A TLS server certificate for `key`, signed by the CA, valid for the IPv4 addresses and DNS names given.
    static func serverCertificate(
        key: PrivateKey, caKey: PrivateKey, ca: DeviceCertificate, ips: [[UInt8]], dnsNames: [String], days: UInt64
    ) -> [UInt8] {
        let now = UInt64(Date().timeIntervalSince1970)
        let name = Array(
            (dnsNames.first ?? ips.first.map { $0.map(String.init).joined(separator: ".") } ?? "broker").utf8)
        let fields = CertificateFields(
            serial: DeviceTLSIdentity.randomSerial(), issuerName: ca.fields.subjectName, subjectName: name,
            notBefore: now - 60,
            notAfter: min(now + days * 86_400, ca.fields.notAfter), publicKey: key.publicKey, isCA: false,
            pathLength: nil, keyUsage: KeyUsage.digitalSignature, authorityKeyID: ca.fields.subjectKeyID)
        var names: [[UInt8]] = dnsNames.map { DER.tlv(DER.implicit(2), Array($0.utf8)) }
        names += ips.map { DER.tlv(DER.implicit(7), $0) }
        let tbs = fields.tbs(appending: [
            CertificateFields.extensionValue(
                extendedKeyUsage, critical: false, DER.sequence([DER.oid(serverAuth)])),
            CertificateFields.extensionValue(subjectAltName, critical: false, DER.sequence(names)),
        ])
        return DeviceCertificate.signed(tbs: tbs, with: caKey)
    }

    /// "127.0.0.1" as four bytes; nil for anything else.
    static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard let v = UInt8(p), String(v) == p else { return nil }
            out.append(v)
        }
        return out
    }
}
