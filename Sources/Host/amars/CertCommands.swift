import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import DeviceClient
import DeviceIdentity
import Foundation
import Ledger

/// `amars cert`: provisioning device certificates with the chain as the PKI (SPEC "Device identity"), what
/// step-ca or a cloud's fleet provisioning gives operators, without a central server. Certificates are X.509 v3
/// over secp256k1 that OpenSSL reads; the chain keeps their status, so anyone checks one with a state proof.
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Device certificates: a root, long-lived device certificates, short-lived ones, revocation.",
        discussion: """
            An operator makes a root and anchors it on chain; each device gets a long-lived certificate signed by \
            the root (its key stays on the device); the device issues itself short-lived certificates (5 minutes \
            to 24 hours) for fresh keys and publishes them. Any ancestor's key revokes a certificate, and \
            everything under it falls with it in the next block.

            Example (make devnet running; keys made by 'amars key new' or 'amars genesis new'):
              amars cert ca init --key ops.key --name "Acme fleet root" --out pki --wait
              amars cert enroll --ca-key ops.key --ca-cert pki/root.pem --device-key lock1.key --kind lock \\
                --out pki/lock1 --wait
              amars cert issue --device-key lock1.key --device-cert pki/lock1/device.pem --lifetime 24h \\
                --out pki/lock1/short --wait
              amars cert verify pki/lock1/short/cert.pem
              amars cert revoke --key ops.key --cert pki/lock1/device.pem --wait
            """,
        subcommands: [
            CA.self, Enroll.self, Fleet.self, Issue.self, Renew.self, Revoke.self, Inspect.self, Verify.self,
            Export.self,
            Publish.self, Server.self,
        ])

    struct CA: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "The operator's root.", subcommands: [Init.self])

        struct Init: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a self-signed root certificate for a key and anchor it on chain.",
                discussion: """
                    Only a transaction signed with the root's own key anchors it, so the key's account pays the fee. \
                    Writes OUT/root.pem (and root.der).

                    Example:
                      amars cert ca init --key ops.key --name "Acme fleet root" --out pki --wait
                    """)

            @Option(help: "Secret key file of the root (keep it offline once the fleet is enrolled).")
            var key: String
            @Option(help: "The root's name (its subject commonName, 1 to 64 bytes).")
            var name: String
            @Option(help: "Validity in years.")
            var years: UInt64 = 10
            @Option(help: "Most CA levels allowed below the root (1: devices only; 2: hubs, then devices).")
            var pathLength: UInt8?
            @Option(help: "Directory for root.pem and root.der.")
            var out: String
            @Flag(help: "Write the certificate only; do not publish it.")
            var noPublish = false
            @OptionGroup var send: SendOptions
            @OptionGroup var node: NodeOptions

            func run() throws {
                let nameBytes = Array(name.utf8)
                guard !nameBytes.isEmpty, nameBytes.count <= CertificateFields.maxNameBytes else {
                    throw ValidationError("--name must be 1 to \(CertificateFields.maxNameBytes) bytes")
                }
                guard years >= 1, years <= 100 else { throw ValidationError("--years must be 1 to 100") }
                let key = try loadKey(self.key)
                let account = Address(publicKey: key.xOnlyPublicKey)
                let now = unixNow()
                let root = DeviceCertificate(
                    signing: CertificateFields(
                        serial: DeviceTLSIdentity.randomSerial(), issuerName: nameBytes, subjectName: nameBytes,
                        notBefore: now - 60,
                        notAfter: now + years * 365 * 86_400, publicKey: key.publicKey, isCA: true,
                        pathLength: pathLength, keyUsage: KeyUsage.keyCertSign | KeyUsage.cRLSign,
                        authorityKeyID: account),
                    with: key)
                try writeCertificate(root, directory: out, name: "root")
                print("root \(Hex.encode(root.id.bytes)) written to \(out)/root.pem")
                try publish(root, signer: key, send: send, node: node, skip: noPublish)
            }
        }
    }

    struct Enroll: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a device its long-lived certificate, signed by the root (or by a hub's key).",
            discussion: """
                The device key is made when the file does not exist (plain hex, mode 0600: what a board build \
                embeds). The bundle OUT holds device.pem/der, issuer.pem and bundle.json; the certificate is \
                published with a transaction from the CA's key. A device certificate may sign the device's \
                short-lived certificates (CA, path length 0, or --path-length 1 for a hub over its sensors).

                Example:
                  amars cert enroll --ca-key ops.key --ca-cert pki/root.pem --device-key lock1.key --kind lock \\
                    --out pki/lock1 --wait
                """)

        @Option(help: "Secret key file of the issuing CA (the root, or a hub device).")
        var caKey: String
        @Option(help: "The issuing CA's certificate (PEM or DER).")
        var caCert: String
        @Option(help: "The device's secret key file; made if it does not exist.")
        var deviceKey: String
        @Option(help: "What the device is: lock, bulb, terminal, hub, sensor (kept in bundle.json).")
        var kind: String = "device"
        @Option(help: "Validity in days.")
        var days: UInt64 = 365
        @Option(help: "CA levels the device may have below it (0: only its own short-lived certificates).")
        var pathLength: UInt8 = 0
        @Option(help: "Bundle directory.")
        var out: String
        @Flag(help: "Write the bundle only; do not publish the certificate.")
        var noPublish = false
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            guard days >= 1, days <= 36_500 else { throw ValidationError("--days must be 1 to 36500") }
            guard ["lock", "bulb", "terminal", "hub", "sensor", "device"].contains(kind) else {
                throw ValidationError("--kind must be lock, bulb, terminal, hub, sensor or device")
            }
            let caKey = try loadKey(self.caKey)
            let ca = try readCertificate(caCert, flag: "--ca-cert")
            guard ca.fields.publicKey == caKey.publicKey else {
                throw CLIError("--ca-key is not the key of --ca-cert \(caCert)")
            }
            guard ca.fields.isCA else { throw CLIError("--ca-cert \(caCert) is not a CA certificate") }
            let (deviceKey, made) = try loadOrMakeKey(self.deviceKey)
            let account = Address(publicKey: deviceKey.xOnlyPublicKey)
            let device = DeviceCertificate(
                signing: DeviceTLSIdentity.deviceFields(
                    deviceKey, ca: ca, days: days, pathLength: pathLength, now: unixNow()), with: caKey)
            try writeCertificate(device, directory: out, name: "device")
            try writeCertificate(ca, directory: out, name: "issuer", derToo: false)
            let manifest: [String: Any] = [
                "kind": kind, "account": account.bech32, "certificate": Hex.encode(device.id.bytes),
                "issuer": Hex.encode(ca.id.bytes), "keyFile": self.deviceKey, "notAfter": device.fields.notAfter,
            ]
            let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            try json.write(to: URL(fileURLWithPath: out).appendingPathComponent("bundle.json"))
            if made { print("device key made: \(self.deviceKey) (\(account.bech32))") }
            print("device certificate \(Hex.encode(device.id.bytes)) for \(account.bech32) written to \(out)")
            try publish(device, signer: caKey, send: send, node: node, skip: noPublish)
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a short-lived certificate for a fresh key, signed by the device's long-lived key.",
            discussion: """
                What a device does for itself (the same as 'renew'): a fresh key (OUT/key, plain hex, mode 0600), \
                its certificate (OUT/cert.pem, and chain.pem with the device certificate after it) lasting 5 \
                minutes to 24 hours, published with a transaction from the device's account.

                Example:
                  amars cert issue --device-key lock1.key --device-cert pki/lock1/device.pem --lifetime 24h \\
                    --out pki/lock1/short --wait
                """)

        @OptionGroup var shortLived: ShortLivedOptions
        @Flag(help: "Write the files only; do not publish the certificate.")
        var noPublish = false
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let (deviceKey, device, seconds) = try shortLived.load()
            let short = try issueShortLived(
                deviceKey: deviceKey, device: device, lifetime: seconds, out: shortLived.out)
            try publish(short, signer: deviceKey, send: send, node: node, skip: noPublish)
        }
    }

    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue and publish short-lived certificates again and again: once, or as a daemon.",
            discussion: """
                Without --daemon it is 'issue'. With --daemon it issues, publishes and waits for each to be final, \
                then sleeps until 2/3 of the lifetime has passed (or --renew-every) and renews, until stopped \
                (SIGTERM, SIGINT). A failed publish is retried every 10 s while the current certificate is valid; \
                a refusal that retrying cannot fix (the device's certificate revoked or expired) exits 1 with the \
                reason. Files in OUT are replaced in place, so a TLS client that rereads them picks the new key up.

                Example:
                  amars cert renew --device-key lock1.key --device-cert pki/lock1/device.pem --lifetime 1h \\
                    --out pki/lock1/short --daemon
                """)

        @OptionGroup var shortLived: ShortLivedOptions
        @Option(help: "Seconds between renewals (default: 2/3 of the lifetime).")
        var renewEvery: UInt64?
        @Flag(help: "Keep renewing until stopped.")
        var daemon = false
        @OptionGroup var node: NodeOptions

        func run() throws {
            let (deviceKey, device, seconds) = try shortLived.load()
            let every = renewEvery ?? seconds * 2 / 3
            guard every >= 1, every < seconds else {
                throw ValidationError("--renew-every must be at least 1 and below the lifetime (\(seconds) s)")
            }
            let send = try SendOptions.parse(["--wait"])
            repeat {
                let short = try issueShortLived(
                    deviceKey: deviceKey, device: device, lifetime: seconds, out: shortLived.out)
                var attempt = 0
                while true {
                    do {
                        try publish(short, signer: deviceKey, send: send, node: node, skip: false)
                        break
                    } catch let e as CLIError where !e.description.contains("node refused") {
                        // Unreachable node, dropped transaction: retry while the certificate is still worth it.
                        attempt += 1
                        guard daemon, UInt64(attempt) * 10 < every else { throw e }
                        print("renew: \(e.description); retrying in 10 s")
                        Thread.sleep(forTimeInterval: 10)
                    }
                }
                guard daemon else { return }
                print("renew: next in \(every) s")
                Thread.sleep(forTimeInterval: TimeInterval(every))
            } while true
        }
    }

    struct Fleet: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll many devices at once: a key and a bundle each, and a manifest the simulator reads.",
            discussion: """
                Makes OUT/<kind>-<n>.key and the bundle OUT/<kind>-<n>/ for each new device (existing keys are \
                kept, so a second run adds devices), publishes each certificate from the CA's account and writes \
                OUT/fleet.json: one entry per device with its name, kind, account, key file and certificate id.

                Example:
                  amars cert fleet --ca-key ops.key --ca-cert pki/root.pem --count 20 --kind bulb --out pki/bulbs --wait
                """)

        @Option(help: "Secret key file of the issuing CA.")
        var caKey: String
        @Option(help: "The issuing CA's certificate (PEM or DER).")
        var caCert: String
        @Option(help: "How many devices (1 to 10000).")
        var count: Int
        @Option(help: "lock, bulb or terminal.")
        var kind: String
        @Option(help: "Validity in days.")
        var days: UInt64 = 365
        @Option(help: "Output directory.")
        var out: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (1...10_000).contains(count) else { throw ValidationError("--count must be 1 to 10000") }
            guard ["lock", "bulb", "terminal"].contains(kind) else {
                throw ValidationError("--kind must be lock, bulb or terminal")
            }
            guard days >= 1, days <= 36_500 else { throw ValidationError("--days must be 1 to 36500") }
        }

        func run() throws {
            let caKey = try loadKey(self.caKey)
            let ca = try readCertificate(caCert, flag: "--ca-cert")
            guard ca.fields.publicKey == caKey.publicKey, ca.fields.isCA else {
                throw CLIError("--ca-key is not the key of the CA certificate --ca-cert \(caCert)")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            var entries: [[String: Any]] = []
            var last: (SendOptions.Sent, DeviceCertificate)?
            for n in 1...count {
                let name = "\(kind)-\(n)"
                let keyPath = "\(out)/\(name).key"
                let (key, _) = try loadOrMakeKey(keyPath)
                let account = Address(publicKey: key.xOnlyPublicKey)
                let certificate = DeviceCertificate(
                    signing: DeviceTLSIdentity.deviceFields(key, ca: ca, days: days, pathLength: 0, now: unixNow()),
                    with: caKey)
                try writeCertificate(certificate, directory: "\(out)/\(name)", name: "device")
                try writeCertificate(ca, directory: "\(out)/\(name)", name: "issuer", derToo: false)
                let sent = try send.send(
                    .certificatePublish(CertificatePublish(der: certificate.der)), signer: caKey, node: node)
                last = (sent, certificate)
                entries.append([
                    "name": name, "kind": kind, "account": account.bech32, "keyFile": keyPath,
                    "certificate": Hex.encode(certificate.id.bytes), "bundle": "\(out)/\(name)",
                ])
            }
            let manifest: [String: Any] = [
                "issuer": Hex.encode(ca.id.bytes), "kind": kind, "devices": entries,
            ]
            let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            try json.write(to: URL(fileURLWithPath: out).appendingPathComponent("fleet.json"))
            print("\(count) \(kind) certificate(s) published; manifest \(out)/fleet.json")
            if let (sent, _) = last {
                try send.finish(sent, sender: Address(publicKey: caKey.xOnlyPublicKey), node: node)
            }
        }
    }

    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a certificate file made earlier with --no-publish.",
            discussion: """
                A root must be published with its own key; any funded key may publish another certificate.

                Example:
                  amars cert publish --key ops.key pki/root.pem --wait
                """)

        @Option(help: "Secret key file of the account that sends (and pays for) the transaction.")
        var key: String
        @Argument(help: "The certificate file (PEM or DER).")
        var file: String
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func run() throws {
            let certificate = try readCertificate(file, flag: "file")
            try publish(certificate, signer: try loadKey(key), send: send, node: node, skip: false)
        }
    }

    struct Server: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a TLS server certificate for a broker, signed by a CA (kept off chain).",
            discussion: """
                Writes OUT/server.pem (the certificate, then the CA's) and OUT/server-key.pem (SEC1 PEM, mode 0600) \
                for mosquitto's certfile and keyfile. The certificate names the broker's addresses (subject \
                alternative names), so clients check the host they dialed; it is not one of the chain's \
                certificates and is never published.

                Example:
                  amars cert server --ca-key ops.key --ca-cert pki/root.pem --ip 127.0.0.1 --dns localhost --out pki/broker
                """)

        @Option(help: "Secret key file of the CA.")
        var caKey: String
        @Option(help: "The CA's certificate (PEM or DER).")
        var caCert: String
        @Option(help: "An IPv4 address clients dial (repeatable).")
        var ip: [String] = []
        @Option(help: "A DNS name clients dial (repeatable).")
        var dns: [String] = []
        @Option(help: "Validity in days.")
        var days: UInt64 = 825
        @Option(help: "Output directory.")
        var out: String

        func validate() throws {
            guard !ip.isEmpty || !dns.isEmpty else { throw ValidationError("give at least one --ip or --dns") }
            for a in ip where TLSFiles.ipv4(a) == nil { throw ValidationError("--ip \(a) is not an IPv4 address") }
            for d in dns
            where d.isEmpty || d.utf8.count > 64
                || !d.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" })
            {
                throw ValidationError("--dns \(d) is not a host name")
            }
            guard days >= 1, days <= 3650 else { throw ValidationError("--days must be 1 to 3650") }
        }

        func run() throws {
            let caKey = try loadKey(self.caKey)
            let ca = try readCertificate(caCert, flag: "--ca-cert")
            guard ca.fields.publicKey == caKey.publicKey, ca.fields.isCA else {
                throw CLIError("--ca-key is not the key of the CA certificate --ca-cert \(caCert)")
            }
            let key = KeyFile.generate()
            let der = TLSFiles.serverCertificate(
                key: key, caKey: caKey, ca: ca, ips: ip.compactMap(TLSFiles.ipv4), dnsNames: dns, days: days)
            let dir = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try (DeviceTLSIdentity.certificatePEM(der) + DeviceTLSIdentity.certificatePEM(ca.der)).write(
                toFile: dir.appendingPathComponent("server.pem").path, atomically: true, encoding: .utf8)
            let keyPath = dir.appendingPathComponent("server-key.pem").path
            try? FileManager.default.removeItem(atPath: keyPath)
            guard
                FileManager.default.createFile(
                    atPath: keyPath, contents: Data(DeviceTLSIdentity.privateKeyPEM(key).utf8),
                    attributes: [.posixPermissions: 0o600])
            else { throw CLIError("cannot write \(keyPath)") }
            print("server certificate for \((dns + ip).joined(separator: ", ")) written to \(out)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate with an ancestor's key; everything under it falls too.",
            discussion: """
                Only the key of one of the certificate's ancestors (its issuer, the issuer's issuer, ...) may \
                revoke it; a root is revoked with its own key. It takes effect in the block that includes it.

                Example:
                  amars cert revoke --key ops.key --cert pki/lock1/device.pem --wait
                  amars cert revoke --key lock1.key --id 3f1c... --reason 1 --wait
                """)

        @Option(help: "Secret key file of an ancestor.")
        var key: String
        @Option(help: "The certificate's id (64 hex digits).")
        var id: String?
        @Option(help: "The certificate file (PEM or DER), instead of --id.")
        var cert: String?
        @Option(help: "RFC 5280 reason code (0 unspecified, 1 keyCompromise, 4 superseded, 5 cessationOfOperation).")
        var reason: UInt8 = 0
        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (id == nil) != (cert == nil) else { throw ValidationError("give exactly one of --id and --cert") }
            guard reason <= 10, reason != 7 else {
                throw ValidationError("--reason must be an RFC 5280 code: 0-6, 8-10")
            }
        }

        func run() throws {
            let target = try certificateID(id: id, file: cert)
            let signer = try loadKey(key)
            let sent = try send.send(
                .certificateRevoke(CertificateRevoke(certificateID: target, reason: reason)), signer: signer,
                node: node)
            print("revoking \(Hex.encode(target.bytes))")
            try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print what a certificate file says, or why it is not one of the chain's profile.",
            discussion: "Example:\n  amars cert inspect pki/lock1/device.pem")

        @Argument(help: "A certificate file (PEM or DER).")
        var file: String

        func run() throws {
            let c = try readCertificate(file, flag: "file")
            let f = c.fields
            print("id          \(Hex.encode(c.id.bytes))")
            print("subject     \(String(decoding: f.subjectName, as: UTF8.self))")
            print(
                "issuer      \(String(decoding: f.issuerName, as: UTF8.self))\(f.isSelfSigned ? " (self-signed root)" : "")"
            )
            print("account     \(f.subjectKeyID.bech32)")
            print("issued by   \(f.authorityKeyID.bech32)")
            print("valid       \(isoTime(f.notBefore)) to \(isoTime(f.notAfter))")
            print(
                "kind        \(f.isCA ? "CA" + (f.pathLength.map { ", path length \($0)" } ?? "") : "end entity (short-lived)")"
            )
            var usages: [String] = []
            if f.keyUsage & KeyUsage.digitalSignature != 0 { usages.append("digitalSignature") }
            if f.keyUsage & KeyUsage.keyCertSign != 0 { usages.append("keyCertSign") }
            if f.keyUsage & KeyUsage.cRLSign != 0 { usages.append("cRLSign") }
            print("key usage   \(usages.joined(separator: ", "))")
            print("serial      \(Hex.encode(f.serial))")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a certificate's chain and on-chain status; exits 1 with the reason unless it is valid.",
            discussion: """
                Fetches the records of the certificate and every ancestor with their state proofs, checks each \
                proof, each signature and each link, and judges the status at the head's time itself.

                Examples:
                  amars cert verify pki/lock1/short/cert.pem
                  amars cert verify --id 3f1c...
                """)

        @Argument(help: "A certificate file (PEM or DER).")
        var file: String?
        @Option(help: "The certificate's id instead of a file.")
        var id: String?
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (id == nil) != (file == nil) else { throw ValidationError("give a certificate file or --id") }
        }

        func run() throws {
            let target = try certificateID(id: id, file: file)
            let info: CertificateInfo
            do { info = try node.typed { try $0.certificate(target) } } catch let e as CLIError {
                if e.description.contains("404") || e.description.contains("notFound") {
                    throw CLIError("\(Hex.encode(target.bytes)) is not on chain; publish it (amars cert enroll/issue)")
                }
                throw e
            }
            guard let standing = info.verify() else {
                throw CLIError("the node's proofs for \(Hex.encode(target.bytes)) do not verify against its state root")
            }
            for (i, link) in info.links.enumerated() {
                let fields = try? DeviceCertificate(der: link.record.der).fields
                let name = fields.map { String(decoding: $0.subjectName, as: UTF8.self) } ?? "?"
                let revoked = link.record.revokedAt == 0 ? "" : ", revoked at height \(link.record.revokedAt)"
                print("\(String(repeating: "  ", count: i))\(Hex.encode(link.id.bytes).prefix(16))… \(name)\(revoked)")
            }
            switch standing {
            case .valid: print("valid at height \(info.height) (\(isoTime(info.time)))")
            case .notYetValid(let at): throw CLIError("not valid yet: \(Hex.encode(at.bytes)) starts later")
            case .expired(let at): throw CLIError("expired: \(Hex.encode(at.bytes)) ended before \(isoTime(info.time))")
            case .revoked(let at, let height):
                throw CLIError(
                    "revoked: \(Hex.encode(at.bytes))\(at == target ? "" : " (an ancestor)") at height \(height)")
            case .broken(let at): throw CLIError("the chain of certificates is broken at \(Hex.encode(at.bytes))")
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a published certificate and its chain as PEM files for TLS and mosquitto.",
            discussion: """
                OUT/cert.pem is the certificate, OUT/chain.pem it and its ancestors up to (not including) the root, \
                OUT/root.pem the root (mosquitto's cafile). Each record is checked against its state proof first.

                Example:
                  amars cert export --id 3f1c... --out tls
                """)

        @Option(help: "The certificate's id (64 hex digits).")
        var id: String
        @Option(help: "Output directory.")
        var out: String
        @OptionGroup var node: NodeOptions

        func run() throws {
            let target = try certificateID(id: id, file: nil)
            let info = try node.typed { try $0.certificate(target) }
            guard info.verify() != nil, let root = info.links.last, root.record.isRoot else {
                throw CLIError("the node's answer for \(id) does not verify")
            }
            let dir = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try DeviceTLSIdentity.certificatePEM(info.links[0].record.der).write(
                toFile: dir.appendingPathComponent("cert.pem").path, atomically: true, encoding: .utf8)
            try info.links.dropLast().map { DeviceTLSIdentity.certificatePEM($0.record.der) }.joined().write(
                toFile: dir.appendingPathComponent("chain.pem").path, atomically: true, encoding: .utf8)
            try DeviceTLSIdentity.certificatePEM(root.record.der).write(
                toFile: dir.appendingPathComponent("root.pem").path, atomically: true, encoding: .utf8)
            print("wrote \(out)/cert.pem, chain.pem and root.pem")
        }
    }
}

// MARK: helpers

/// The device key, its certificate and the short-lived certificates' lifetime and directory: what `issue` and
/// `renew` share.
struct ShortLivedOptions: ParsableArguments {
    @Option(help: "The device's long-lived secret key file.")
    var deviceKey: String
    @Option(help: "The device's long-lived certificate (PEM or DER).")
    var deviceCert: String
    @Option(help: "How long each certificate lasts: 5m to 24h (e.g. 30m, 12h).")
    var lifetime: String = "24h"
    @Option(help: "Directory for key, key.pem, cert.pem and chain.pem (replaced if they exist).")
    var out: String

    func load() throws -> (PrivateKey, DeviceCertificate, lifetime: UInt64) {
        let seconds = try parseLifetime(lifetime)
        let (key, device) = try loadDevice(key: deviceKey, certificate: deviceCert)
        return (key, device, seconds)
    }
}

/// A device's long-lived key and certificate, checked to belong together.
func loadDevice(key path: String, certificate: String) throws -> (PrivateKey, DeviceCertificate) {
    let key = try loadKey(path)
    let device = try readCertificate(certificate, flag: "--device-cert")
    guard device.fields.publicKey == key.publicKey else {
        throw CLIError("--device-key is not the key of --device-cert \(certificate)")
    }
    return (key, device)
}

/// A fresh key and its short-lived certificate signed by the device, written to OUT (key, cert.pem, chain.pem),
/// each file replaced by a rename so a reader never sees half of one.
func issueShortLived(deviceKey: PrivateKey, device: DeviceCertificate, lifetime: UInt64, out: String) throws
    -> DeviceCertificate
{
    let fresh = KeyFile.generate()
    let short = DeviceCertificate(
        signing: DeviceTLSIdentity.shortLivedFields(
            device: device, publicKey: fresh.publicKey, lifetime: lifetime, now: unixNow()),
        with: deviceKey)
    try writeShortLived(short, key: fresh, device: device, out: out)
    return short
}

/// A short-lived certificate's files in OUT (key, cert.pem, chain.pem, key.pem), each replaced by a rename.
func writeShortLived(_ short: DeviceCertificate, key fresh: PrivateKey, device: DeviceCertificate, out: String) throws {
    let dir = URL(fileURLWithPath: out)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let keyPath = dir.appendingPathComponent("key").path
    let staged = keyPath + ".new"
    try? FileManager.default.removeItem(atPath: staged)
    do { try KeyFile.write(fresh, to: staged) } catch { throw CLIError("\(error)") }
    guard rename(staged, keyPath) == 0 else { throw CLIError("cannot replace \(keyPath)") }
    try DeviceTLSIdentity.certificatePEM(short.der).write(
        toFile: dir.appendingPathComponent("cert.pem").path, atomically: true, encoding: .utf8)
    // chain.pem, and the same key as SEC1 PEM for TLS clients (mosquitto_pub --key, openssl s_client -key).
    do { try DeviceTLSIdentity.writeTLSFiles(chain: [short, device], key: fresh, directory: out) } catch {
        throw CLIError("cannot write the TLS files in \(out): \(error)")
    }
    print(
        "short-lived certificate \(Hex.encode(short.id.bytes)) until \(isoTime(short.fields.notAfter)) written to \(out)"
    )
}

func unixNow() -> UInt64 { UInt64(Date().timeIntervalSince1970) }

func isoTime(_ seconds: UInt64) -> String {
    let f = ISO8601DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
}

/// A certificate file in PEM (the first CERTIFICATE block) or DER, parsed; each failure names the file.
func readCertificate(_ path: String, flag: String) throws -> DeviceCertificate {
    do { return try DeviceTLSIdentity.readCertificate(path) } catch { throw CLIError("\(flag): \(path) \(error)") }
}

func writeCertificate(_ certificate: DeviceCertificate, directory: String, name: String, derToo: Bool = true) throws {
    let dir = URL(fileURLWithPath: directory)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try DeviceTLSIdentity.certificatePEM(certificate.der).write(
        toFile: dir.appendingPathComponent("\(name).pem").path, atomically: true, encoding: .utf8)
    if derToo { try Data(certificate.der).write(to: dir.appendingPathComponent("\(name).der")) }
}

func certificateID(id: String?, file: String?) throws -> Bytes32 {
    if let file { return try readCertificate(file, flag: "certificate").id }
    guard let id, id.utf8.count == 64, let raw = try? Hex.decode(id), let bytes = Bytes32(raw) else {
        throw ValidationError("--id must be 64 hex digits (a certificate's SHA-256)")
    }
    return bytes
}

/// A certificate named as a file (PEM or DER) when one exists at that path, else as its id.
func certificateID(fileOrID text: String) throws -> Bytes32 {
    FileManager.default.fileExists(atPath: text)
        ? try certificateID(id: nil, file: text) : try certificateID(id: text, file: nil)
}

func loadOrMakeKey(_ path: String) throws -> (PrivateKey, made: Bool) {
    if FileManager.default.fileExists(atPath: path) { return (try loadKey(path), false) }
    let key = KeyFile.generate()
    do { try KeyFile.write(key, to: path) } catch { throw CLIError("\(error)") }
    return (key, true)
}

/// "5m" to "24h" (also plain seconds, "s", "m", "h" suffixes).
func parseLifetime(_ text: String) throws -> UInt64 {
    var digits = Substring(text)
    var unit: UInt64 = 1
    switch text.last {
    case "s": digits = digits.dropLast()
    case "m": (digits, unit) = (digits.dropLast(), 60)
    case "h": (digits, unit) = (digits.dropLast(), 3600)
    default: break
    }
    guard let n = UInt64(digits), n <= 1_000_000 else {
        throw ValidationError("--lifetime must be a duration like 30m or 24h")
    }
    let seconds = n * unit
    guard ShortLivedCertificate.lifetimes.contains(seconds) else {
        throw ValidationError("--lifetime must be 5m to 24h (short-lived certificates); got \(text)")
    }
    return seconds
}

/// Sends the publish transaction unless `skip`.
func publish(_ certificate: DeviceCertificate, signer: PrivateKey, send: SendOptions, node: NodeOptions, skip: Bool)
    throws
{
    guard !skip else { return }
    let sent = try send.send(.certificatePublish(CertificatePublish(der: certificate.der)), signer: signer, node: node)
    print("publishing \(Hex.encode(certificate.id.bytes))")
    try send.finish(sent, sender: Address(publicKey: signer.xOnlyPublicKey), node: node)
}
