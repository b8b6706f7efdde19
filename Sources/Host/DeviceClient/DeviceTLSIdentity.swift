import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Foundation
import Ledger

/// A device's identity on the broker's TLS listener, as `amars cert` provisions it and the simulator makes it for
/// its virtual devices: a long-lived certificate under the operator's root whose subject is the device's account,
/// a short-lived certificate for a fresh key signed by the device, and the PEM files TLS software reads.
public enum DeviceTLSIdentity {
    /// 16 random bytes, top bit clear: a positive INTEGER of the same length every time.
    public static func randomSerial() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[0] = (bytes[0] & 0x7F) | 0x01
        return bytes
    }

    /// A device's long-lived certificate under `ca`: a CA of the given path length whose subject is the device's
    /// account, valid for `days` (never past the CA).
    public static func deviceFields(
        _ key: PrivateKey, ca: DeviceCertificate, days: UInt64, pathLength: UInt8, now: UInt64
    ) -> CertificateFields {
        CertificateFields(
            serial: randomSerial(), issuerName: ca.fields.subjectName,
            subjectName: Array(Address(publicKey: key.xOnlyPublicKey).bech32.utf8), notBefore: now - 60,
            notAfter: min(now + days * 86_400, ca.fields.notAfter), publicKey: key.publicKey, isCA: true,
            pathLength: pathLength, keyUsage: KeyUsage.digitalSignature | KeyUsage.keyCertSign,
            authorityKeyID: ca.fields.subjectKeyID)
    }

    /// The short-lived certificate `device` issues for `publicKey`, lasting `lifetime` seconds from a minute ago.
    public static func shortLivedFields(device: DeviceCertificate, publicKey: PublicKey, lifetime: UInt64, now: UInt64)
        -> CertificateFields
    {
        ShortLivedCertificate.fields(
            deviceName: device.fields.subjectName, device: device.fields.subjectKeyID, publicKey: publicKey,
            lifetime: lifetime, now: now, serial: randomSerial())
    }

    /// A certificate file in PEM (its first CERTIFICATE block) or DER, parsed; the failure says what is wrong.
    public static func readCertificate(_ path: String) throws(ReadFailure) -> DeviceCertificate {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable }
        var der = [UInt8](data)
        if let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") {
            let body = text.components(separatedBy: "-----BEGIN CERTIFICATE-----")[1]
                .components(separatedBy: "-----END CERTIFICATE-----")[0]
                .components(separatedBy: .whitespacesAndNewlines).joined()
            guard let decoded = Data(base64Encoded: body) else { throw .badPEM }
            der = [UInt8](decoded)
        }
        do { return try DeviceCertificate(der: der) } catch { throw .notOfTheProfile(error) }
    }

    public enum ReadFailure: Error, CustomStringConvertible {
        case unreadable
        case badPEM
        case notOfTheProfile(CertificateError)

        public var description: String {
            switch self {
            case .unreadable: "cannot be read"
            case .badPEM: "has bad PEM base64"
            case .notOfTheProfile(let error): "is not a certificate of the chain's profile: \(error)"
            }
        }
    }

    public static func pem(_ der: [UInt8], label: String) -> String {
        "-----BEGIN \(label)-----\n"
            + Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            + "\n-----END \(label)-----\n"
    }

    public static func certificatePEM(_ der: [UInt8]) -> String { pem(der, label: "CERTIFICATE") }

    /// RFC 5915 ECPrivateKey over secp256k1, PEM "EC PRIVATE KEY".
    public static func privateKeyPEM(_ key: PrivateKey) -> String {
        let der = DER.sequence([
            DER.smallInteger(1),
            DER.tlv(DER.octetString, key.secret.bytes),
            DER.tlv(DER.explicit(0), DER.oid(OID.secp256k1)),
            DER.tlv(DER.explicit(1), DER.bits(key.publicKey.compressed)),
        ])
        return pem(der, label: "EC PRIVATE KEY")
    }

    /// Writes `chain.pem` (`chain`, the leaf first) and `key.pem` (mode 0600) into `directory`, each replaced by a
    /// rename so a reader never sees half of one; returns both paths.
    @discardableResult
    public static func writeTLSFiles(chain: [DeviceCertificate], key: PrivateKey, directory: String) throws -> (
        chainFile: String, keyFile: String
    ) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let chainPath = (directory as NSString).appendingPathComponent("chain.pem")
        try chain.map { certificatePEM($0.der) }.joined().write(toFile: chainPath, atomically: true, encoding: .utf8)
        let keyPath = (directory as NSString).appendingPathComponent("key.pem")
        let staged = keyPath + ".new"
        try? FileManager.default.removeItem(atPath: staged)
        guard
            FileManager.default.createFile(
                atPath: staged, contents: Data(privateKeyPEM(key).utf8), attributes: [.posixPermissions: 0o600]),
            rename(staged, keyPath) == 0
        else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: keyPath]) }
        return (chainPath, keyPath)
    }
}
