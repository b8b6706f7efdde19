import AmarsCodec
import AmarsCrypto
import Chain
import DeviceIdentity
import Ledger

/// `GET /v1/certs/{id}`: a published certificate, its standing at the head's time and the chain of records up to
/// its root, each with its proof against the head's state root, so a client checks the answer itself.
extension APIRouter {
    func certificate(_ text: Substring) -> APIResponse {
        guard text.utf8.count == 64, let raw = try? Hex.decode(String(text)), let id = Bytes32(raw) else {
            return .error(400, "invalidCertificateID", "a certificate id is the SHA-256 of its DER, 64 hex digits")
        }
        let view = node.certificate(id)
        guard let first = view.links.first, let standing = view.standing,
            let certificate = try? DeviceCertificate(der: first.record.der)
        else {
            return .error(404, "notFound", "no certificate with id \(Hex.encode(id.bytes)) is on chain")
        }
        let f = certificate.fields
        var fields: [(String, JSONValue)] = [
            ("id", .hex(id)),
            ("status", .string(Self.statusName(standing))),
        ]
        switch standing {
        case .valid: break
        case .notYetValid(let at), .expired(let at), .broken(let at): fields.append(("because", .hex(at)))
        case .revoked(let at, let height):
            fields.append(("because", .hex(at)))
            fields.append(("revokedAt", .number(height)))
        }
        fields += [
            ("subject", .string(String(decoding: f.subjectName, as: UTF8.self))),
            ("issuer", .string(String(decoding: f.issuerName, as: UTF8.self))),
            ("account", .string(f.subjectKeyID.bech32)),
            ("issuerAccount", .string(f.authorityKeyID.bech32)),
            ("notBefore", .number(f.notBefore)),
            ("notAfter", .number(f.notAfter)),
            ("ca", .bool(f.isCA)),
            ("root", .bool(first.record.isRoot)),
            ("publishedAt", .number(first.record.publishedAt)),
            ("der", .hex(first.record.der)),
            (
                "chain",
                .array(
                    view.links.map { link in
                        .object([
                            ("id", .hex(link.id)), ("record", .hex(link.record.encoded)),
                            ("proof", .hex(link.proof.encoded)),
                        ])
                    })
            ),
            ("height", .number(view.height)),
            ("time", .number(view.time)),
            ("stateRoot", .hex(view.stateRoot)),
        ]
        return .json(200, .object(fields))
    }

    static func statusName(_ standing: CertificateStanding) -> String {
        switch standing {
        case .valid: "valid"
        case .notYetValid: "notYetValid"
        case .expired: "expired"
        case .revoked: "revoked"
        case .broken: "broken"
        }
    }
}
