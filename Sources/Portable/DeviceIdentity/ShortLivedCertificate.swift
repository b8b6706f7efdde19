import AmarsCodec
import AmarsCrypto
import Ledger

/// The short-lived certificate a device issues for a fresh key of its own, signed by its long-lived key (SPEC
/// "Device identity"): what `amars cert issue|renew`, the device session's renewal and the simulator all make, and
/// what the chain takes (CertificateRules: same subject as its issuer, not a CA, 5 minutes to 24 hours).
public enum ShortLivedCertificate {
    /// The lifetimes the chain accepts, in seconds.
    public static let lifetimes: ClosedRange<UInt64> = 300...86_400
    /// Seconds before `now` that a certificate starts: a verifier whose clock is a little behind accepts it too.
    public static let backdate: UInt64 = 60

    /// Whether a certificate that ends at `notAfter` after lasting `lifetime` seconds is due for renewal at
    /// `now`: once half its life has passed, so a device whose gateway is away for a while still renews before the
    /// certificate ends.
    public static func isRenewalDue(notAfter: UInt64, lifetime: UInt64, now: UInt64) -> Bool {
        now >= notAfter - min(notAfter, lifetime / 2)
    }

    /// The fields of the certificate the device whose long-lived certificate has subject `deviceName` and key
    /// account `device` issues for `publicKey`, lasting `lifetime` seconds from ``backdate`` before `now`.
    public static func fields(
        deviceName: [UInt8], device: Address, publicKey: PublicKey, lifetime: UInt64, now: UInt64, serial: [UInt8]
    ) -> CertificateFields {
        let start = now > backdate ? now - backdate : 0
        return CertificateFields(
            serial: serial, issuerName: deviceName, subjectName: deviceName, notBefore: start,
            notAfter: start + lifetime, publicKey: publicKey, isCA: false, pathLength: nil,
            keyUsage: KeyUsage.digitalSignature, authorityKeyID: device)
    }

    /// A serial for a device without a random source: 16 bytes of SHA-256 of the fresh key, positive and of fixed
    /// length. Fresh keys differ, so the serials under one issuer do too, as the chain requires.
    public static func serial(for publicKey: PublicKey) -> [UInt8] {
        var bytes = Array(SHA256.hash(publicKey.compressed).bytes.prefix(16))
        bytes[0] = (bytes[0] & 0x7F) | 0x01
        return bytes
    }

    /// The device's `counter`-th fresh key, derived from its long-lived secret with HKDF-Expand (RFC 5869): a board
    /// has no random source, and one that counts its renewals (by the verified height it renews at) gets a new key
    /// each time, which only the holder of the long-lived key can derive again.
    public static func freshKey(deviceSecret: Bytes32, counter: UInt64) -> PrivateKey {
        var round: UInt8 = 0
        while true {
            var info = Array("amars short-lived key".utf8)
            withUnsafeBytes(of: counter.bigEndian) { info += $0 }
            info.append(round)
            // A derived value that is no key (0, or not below n) has probability about 2^-128; the next round.
            if let key = try? PrivateKey(bytes: HKDF.expandSHA256(prk: deviceSecret, info: info)) { return key }
            round &+= 1
        }
    }
}
