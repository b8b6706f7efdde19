import AmarsCodec
import AmarsCrypto
import ArgumentParser
import CSecp256k1
import Chain
import DeviceIdentity
import Foundation
import Ledger

/// `amars-bench identity`: what checking a device certificate costs on the host. One check is what a light
/// client does with a `v1/cert` answer for root → device → short-lived: three state proofs, three certificates
/// parsed (each re-encoded to its one canonical form) and two ECDSA signatures verified. Its rate is printed
/// against raw libsecp256k1 ECDSA verifies (signature and key parsed beforehand) in the same run.
struct IdentityBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity", abstract: "Device certificates: chains with status proofs checked per second.")

    @Option(help: "Seconds to measure each rate.")
    var seconds: Double = 2

    func run() throws {
        let rootKey = try PrivateKey(bytes: Bytes32(w0: 1, w1: 0, w2: 0, w3: 1))
        let deviceKey = try PrivateKey(bytes: Bytes32(w0: 1, w1: 0, w2: 0, w3: 2))
        let freshKey = try PrivateKey(bytes: Bytes32(w0: 1, w1: 0, w2: 0, w3: 3))
        let now = UInt64(Date().timeIntervalSince1970)
        let rootName = Array("Bench root".utf8)
        let deviceName = Array(Address(publicKey: deviceKey.xOnlyPublicKey).bech32.utf8)
        func make(_ key: PrivateKey, by signer: PrivateKey, _ issuer: [UInt8], _ subject: [UInt8], ca: Bool)
            -> DeviceCertificate
        {
            DeviceCertificate(
                signing: CertificateFields(
                    serial: [1], issuerName: issuer, subjectName: subject, notBefore: now - 60, notAfter: now + 3600,
                    publicKey: key.publicKey, isCA: ca, pathLength: ca ? 1 : nil,
                    keyUsage: ca ? KeyUsage.keyCertSign : KeyUsage.digitalSignature,
                    authorityKeyID: Address(publicKey: signer.xOnlyPublicKey)),
                with: signer)
        }
        let root = make(rootKey, by: rootKey, rootName, rootName, ca: true)
        let device = make(deviceKey, by: rootKey, rootName, deviceName, ca: true)
        let short = make(freshKey, by: deviceKey, deviceName, deviceName, ca: false)
        let records = [
            (short.id, CertificateRecord(der: short.der, issuer: device.id, publishedAt: 3)),
            (device.id, CertificateRecord(der: device.der, issuer: root.id, publishedAt: 2)),
            (root.id, CertificateRecord(der: root.der, issuer: .zero, publishedAt: 1)),
        ]
        let tree = StateTree()
        // Other certificates around them, so the proofs have a realistic depth.
        for n in 0..<10_000 {
            tree.set(
                CertificateRecord.stateKey(Bytes32(w0: 9, w1: 9, w2: 0, w3: UInt64(n))),
                Bytes32(w0: UInt64(n), w1: 0, w2: 0, w3: 1))
        }
        for (id, record) in records {
            tree.set(CertificateRecord.stateKey(id), Domain.stateValue.hash(record.encoded))
        }
        let stateRoot = tree.root
        let links = records.map {
            (id: $0.0, record: $0.1, encoded: $0.1.encoded, proof: tree.proof(for: CertificateRecord.stateKey($0.0)))
        }
        var valid = 0
        let checked = callsPerSecond(seconds) {
            var chain: [(id: Bytes32, record: CertificateRecord)] = []
            for link in links {
                guard
                    link.proof.verify(
                        root: stateRoot, key: CertificateRecord.stateKey(link.id),
                        valueHash: Domain.stateValue.hash(link.encoded)),
                    let record = try? CertificateRecord(decoding: link.encoded)
                else { return }
                chain.append((link.id, record))
            }
            if CertificateStanding.of(chain, time: now) == .valid { valid += 1 }
        }
        guard valid > 0 else { throw ValidationError("the benchmark chain does not verify") }

        // Baseline: libsecp256k1's ECDSA verify alone, signature and key parsed once.
        let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
        defer { secp256k1_context_destroy(ctx) }
        var signature = secp256k1_ecdsa_signature()
        _ = short.signature.withUnsafeBufferPointer {
            secp256k1_ecdsa_signature_parse_der(ctx, &signature, $0.baseAddress!, $0.count)
        }
        var key = secp256k1_pubkey()
        _ = deviceKey.publicKey.compressed.withUnsafeBufferPointer {
            secp256k1_ec_pubkey_parse(ctx, &key, $0.baseAddress!, 33)
        }
        let digest = SHA256.hash(short.fields.tbs).bytes
        var ok = 0
        let raw = callsPerSecond(seconds) { ok += Int(secp256k1_ecdsa_verify(ctx, &signature, digest, &key)) }
        guard ok > 0 else { throw ValidationError("the baseline signature does not verify") }
        print("chain: root -> device -> short-lived, 3 records with state proofs (10,003 certificates in the tree)")
        print(String(format: "certificate chains checked: %.0f/s", checked))
        print(String(format: "raw ECDSA verifies:         %.0f/s", raw))
        print("revocation reaches a light client in 1 block: the revoking block's header proves the record")
        print(String(format: "identity/ecdsa ratio: %.3f", checked / raw))
    }
}
