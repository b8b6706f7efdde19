import AmarsTestSupport
import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger
import XCTest

@testable import DeviceIdentity

/// The certificate profile against tools nobody here wrote: OpenSSL parses what we issue, prints our fields,
/// computes our ids as its SHA-256 fingerprints and verifies root → device → short-lived chains; our reader
/// takes back exactly what we wrote and refuses every other encoding with its reason.
final class CertificateTests: XCTestCase {
    let rootKey = try! PrivateKey(bytes: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4))
    let deviceKey = try! PrivateKey(bytes: Bytes32(w0: 5, w1: 6, w2: 7, w3: 8))
    let freshKey = try! PrivateKey(bytes: Bytes32(w0: 9, w1: 10, w2: 11, w3: 12))
    let now = UInt64(Date().timeIntervalSince1970)

    func chain(leafLifetime: UInt64 = 86_400) -> (
        root: DeviceCertificate, device: DeviceCertificate, leaf: DeviceCertificate
    ) {
        let rootAddress = Address(publicKey: rootKey.xOnlyPublicKey)
        let deviceAddress = Address(publicKey: deviceKey.xOnlyPublicKey)
        let rootName = Array("Amarscity test root".utf8)
        let root = DeviceCertificate(
            signing: CertificateFields(
                serial: [1], issuerName: rootName, subjectName: rootName, notBefore: now - 60,
                notAfter: now + 10 * 365 * 86_400, publicKey: rootKey.publicKey, isCA: true, pathLength: nil,
                keyUsage: KeyUsage.keyCertSign | KeyUsage.cRLSign, authorityKeyID: rootAddress),
            with: rootKey)
        let deviceName = Array(deviceAddress.bech32.utf8)
        let device = DeviceCertificate(
            signing: CertificateFields(
                serial: [0x80, 2], issuerName: rootName, subjectName: deviceName, notBefore: now - 60,
                notAfter: now + 365 * 86_400, publicKey: deviceKey.publicKey, isCA: true, pathLength: 0,
                keyUsage: KeyUsage.digitalSignature | KeyUsage.keyCertSign, authorityKeyID: rootAddress),
            with: rootKey)
        let leaf = DeviceCertificate(
            signing: CertificateFields(
                serial: [3], issuerName: deviceName, subjectName: deviceName, notBefore: now - 60,
                notAfter: now - 60 + leafLifetime, publicKey: freshKey.publicKey, isCA: false, pathLength: nil,
                keyUsage: KeyUsage.digitalSignature, authorityKeyID: deviceAddress),
            with: deviceKey)
        return (root, device, leaf)
    }

    func write(_ certificate: DeviceCertificate, _ name: String, in dir: URL) throws -> String {
        let b64 = Data(certificate.der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        let path = dir.appendingPathComponent(name).path
        try ("-----BEGIN CERTIFICATE-----\n" + b64 + "\n-----END CERTIFICATE-----\n").write(
            toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runTool("/usr/bin/openssl", arguments)
    }

    func testOpenSSLReadsOurCertificatesAndVerifiesTheChain() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-certs-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (root, device, leaf) = chain()
        let rootPEM = try write(root, "root.pem", in: dir)
        let devicePEM = try write(device, "device.pem", in: dir)
        let leafPEM = try write(leaf, "leaf.pem", in: dir)

        let text = try openssl(["x509", "-in", devicePEM, "-noout", "-text"])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("Signature Algorithm: ecdsa-with-SHA256"), text.output)
        XCTAssertTrue(text.output.contains("ASN1 OID: secp256k1"), text.output)
        XCTAssertTrue(text.output.contains("CA:TRUE, pathlen:0"), text.output)
        XCTAssertTrue(text.output.contains("Digital Signature, Certificate Sign"), text.output)
        XCTAssertTrue(text.output.contains("CN = \(Address(publicKey: deviceKey.xOnlyPublicKey).bech32)"), text.output)
        let fingerprint = try openssl(["x509", "-in", leafPEM, "-noout", "-fingerprint", "-sha256"])
        let hex = fingerprint.output.split(separator: "=").last.map {
            $0.replacingOccurrences(of: ":", with: "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        }
        XCTAssertEqual(hex, Hex.encode(leaf.id.bytes))

        let verified = try openssl(["verify", "-CAfile", rootPEM, "-untrusted", devicePEM, leafPEM])
        XCTAssertEqual(verified.status, 0, verified.output)
        XCTAssertTrue(verified.output.contains("\(leafPEM): OK"), verified.output)
        // Without the device certificate, or with another root, OpenSSL refuses too.
        XCTAssertNotEqual(try openssl(["verify", "-CAfile", rootPEM, leafPEM]).status, 0)
        // (OpenSSL does not check a trust anchor's own signature, so "another root" is one with another key.)
        let strangerKey = try PrivateKey(bytes: Bytes32(w0: 13, w1: 0, w2: 0, w3: 1))
        var strangerFields = root.fields
        strangerFields.publicKey = strangerKey.publicKey
        strangerFields.subjectKeyID = Address(publicKey: strangerKey.xOnlyPublicKey)
        strangerFields.authorityKeyID = strangerFields.subjectKeyID
        let otherRoot = DeviceCertificate(signing: strangerFields, with: strangerKey)
        let otherPEM = try write(otherRoot, "other.pem", in: dir)
        XCTAssertNotEqual(try openssl(["verify", "-CAfile", otherPEM, "-untrusted", devicePEM, leafPEM]).status, 0)

        // A certificate OpenSSL writes for the same key: ours reads it only if it is of the profile; a plain
        // `openssl req -x509` certificate is not (other extensions, other names), and is refused with a reason.
        let keyPEM = dir.appendingPathComponent("k.pem").path
        XCTAssertEqual(try openssl(["ecparam", "-name", "secp256k1", "-genkey", "-noout", "-out", keyPEM]).status, 0)
        let theirs = dir.appendingPathComponent("theirs.der").path
        let made = try openssl([
            "req", "-x509", "-new", "-key", keyPEM, "-subj", "/CN=theirs", "-days", "1", "-outform", "DER", "-out",
            theirs,
        ])
        XCTAssertEqual(made.status, 0, made.output)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: theirs)))
        XCTAssertThrowsError(try DeviceCertificate(der: bytes))
        // An RSA certificate and one over P-256 are refused for their algorithm and their curve.
        for (keyArguments, expected) in [
            (["-newkey", "rsa:2048", "-nodes"], CertificateError.unsupportedAlgorithm),
            (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"], .unsupportedKey),
        ] {
            let out = dir.appendingPathComponent("other.der").path
            let made = try openssl(
                ["req", "-x509"] + keyArguments + [
                    "-keyout", dir.appendingPathComponent("other.key").path, "-subj", "/CN=other", "-days", "1",
                    "-outform", "DER", "-out", out,
                ])
            XCTAssertEqual(made.status, 0, made.output)
            let der = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
            XCTAssertThrowsError(try DeviceCertificate(der: der)) { XCTAssertEqual($0 as? CertificateError, expected) }
        }
    }

    func testReaderReturnsExactlyWhatWasWrittenAndChecksSignatures() throws {
        let (root, device, leaf) = chain()
        for certificate in [root, device, leaf] {
            let read = try DeviceCertificate(der: certificate.der)
            XCTAssertEqual(read, certificate)
            XCTAssertEqual(read.fields.tbs, certificate.fields.tbs)
        }
        XCTAssertTrue(root.fields.isSelfSigned)
        XCTAssertFalse(device.fields.isSelfSigned)
        XCTAssertTrue(root.isSigned(by: rootKey.publicKey))
        XCTAssertTrue(device.isSigned(by: rootKey.publicKey))
        XCTAssertTrue(leaf.isSigned(by: deviceKey.publicKey))
        XCTAssertFalse(leaf.isSigned(by: rootKey.publicKey))
        XCTAssertEqual(leaf.fields.subjectKeyID, Address(publicKey: freshKey.xOnlyPublicKey))
        XCTAssertEqual(leaf.fields.authorityKeyID, Address(publicKey: deviceKey.xOnlyPublicKey))
        XCTAssertEqual(device.fields.pathLength, 0)
        XCTAssertNil(leaf.fields.pathLength)
        XCTAssertEqual(leaf.fields.notAfter - leaf.fields.notBefore, 86_400)
    }

    /// A short-lived certificate is due for renewal from the middle of its life, whatever its length, and a
    /// certificate ending before half a lifetime has passed since the epoch does not wrap.
    func testRenewalIsDueFromHalfTheLifetime() {
        let now: UInt64 = 1_800_000_000
        for lifetime in [ShortLivedCertificate.lifetimes.lowerBound, 3_600, ShortLivedCertificate.lifetimes.upperBound]
        {
            let fields = ShortLivedCertificate.fields(
                deviceName: [0x61], device: Address(raw: Bytes20([UInt8](repeating: 1, count: 20))!),
                publicKey: try! PrivateKey(bytes: Bytes32([UInt8](repeating: 7, count: 32))!).publicKey,
                lifetime: lifetime, now: now, serial: [1])
            let middle = fields.notBefore + lifetime / 2
            XCTAssertFalse(ShortLivedCertificate.isRenewalDue(notAfter: fields.notAfter, lifetime: lifetime, now: now))
            XCTAssertFalse(
                ShortLivedCertificate.isRenewalDue(notAfter: fields.notAfter, lifetime: lifetime, now: middle - 1))
            XCTAssertTrue(
                ShortLivedCertificate.isRenewalDue(notAfter: fields.notAfter, lifetime: lifetime, now: middle))
            XCTAssertTrue(
                ShortLivedCertificate.isRenewalDue(
                    notAfter: fields.notAfter, lifetime: lifetime, now: fields.notAfter + 1))
        }
        XCTAssertTrue(ShortLivedCertificate.isRenewalDue(notAfter: 100, lifetime: 3_600, now: 0))
    }

    func testTimesRoundTripAcrossTheUTCTimeBoundary() {
        for seconds: UInt64 in [
            0, 951_782_400, 1_700_000_000, 2_524_607_999, 2_524_608_000, 4_102_444_800, 32_503_680_000,
        ] {
            let der = CertificateTime.encode(seconds)
            XCTAssertEqual(der[0], seconds < 2_524_608_000 ? DER.utcTime : DER.generalizedTime)
            XCTAssertEqual(CertificateTime.decode(tag: der[0], der[2...]), seconds, "\(seconds)")
        }
        // 2000-02-29 exists, 1900-02-29 and 2023-02-29 do not; GeneralizedTime before 2050 is not DER's.
        XCTAssertEqual(CertificateTime.decode(tag: DER.utcTime, Array("000229000000Z".utf8)[...]), 951_782_400)
        XCTAssertNil(CertificateTime.decode(tag: DER.utcTime, Array("230229000000Z".utf8)[...]))
        XCTAssertNil(CertificateTime.decode(tag: DER.generalizedTime, Array("20240101000000Z".utf8)[...]))
        XCTAssertNil(CertificateTime.decode(tag: DER.utcTime, Array("240101000000+0100".utf8)[...]))
        XCTAssertNil(CertificateTime.decode(tag: DER.utcTime, Array("2401010000Z".utf8)[...]))
    }

    func testEveryOtherEncodingIsRefusedWithItsReason() throws {
        let (_, device, _) = chain()
        let der = device.der
        func fault(_ bytes: [UInt8]) -> CertificateError? {
            do {
                _ = try DeviceCertificate(der: bytes)
                return nil
            } catch { return error }
        }
        XCTAssertNil(fault(der))
        XCTAssertEqual(fault(Array(der.dropLast())), .malformed(.truncated))
        XCTAssertEqual(fault(der + [0]), .malformed(.trailingBytes))
        XCTAssertEqual(fault([UInt8](repeating: 0, count: 1025)), .tooLarge(1025))
        // Long-form length where the short form fits (the outer SEQUENCE re-encoded with 0x82 00 xx).
        var padded = der
        padded.replaceSubrange(1..<4, with: [0x82, 0x00, der[3]])
        XCTAssertEqual(fault(padded), .malformed(.badLength))
        // Another signature algorithm (ecdsa-with-SHA384: last OID byte 3).
        let algorithm = try XCTUnwrap(find(OID.ecdsaWithSHA256, in: der))
        var sha384 = der
        sha384[algorithm + OID.ecdsaWithSHA256.count - 1] = 3
        XCTAssertEqual(fault(sha384), .unsupportedAlgorithm)
        // Another curve (prime256v1's OID is longer: changing secp256k1's last byte makes 1.3.132.0.11).
        let curve = try XCTUnwrap(find(OID.secp256k1, in: der))
        var otherCurve = der
        otherCurve[curve + OID.secp256k1.count - 1] = 0x0B
        XCTAssertEqual(fault(otherCurve), .unsupportedKey)
        // A key identifier that is not the key's account.
        let ski = try XCTUnwrap(find(device.fields.subjectKeyID.raw.bytes, in: der))
        var wrongID = der
        wrongID[ski] ^= 1
        XCTAssertEqual(fault(wrongID), .keyIdentifierMismatch)
        // A changed byte anywhere in the TBS still parses (a name letter) but no longer verifies.
        let name = try XCTUnwrap(find(Array("amsc1".utf8), in: der))
        var renamed = der
        renamed[name + 6] = renamed[name + 6] == UInt8(ascii: "q") ? UInt8(ascii: "p") : UInt8(ascii: "q")
        let forged = try DeviceCertificate(der: renamed)
        XCTAssertFalse(forged.isSigned(by: rootKey.publicKey))
        // Random bytes never crash the reader.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var bytes = der
            for _ in 0..<3 {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if let read = try? DeviceCertificate(der: bytes) { XCTAssertEqual(read.der, bytes) }
        }
    }

    func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<$0 + needle.count]) == needle }
    }
}
