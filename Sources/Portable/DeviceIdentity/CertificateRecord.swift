import AmarsCodec
import AmarsCrypto
import Ledger

/// A published certificate as the chain's state keeps it, under ``StateNamespace/certificate`` by id: the
/// certificate itself, its issuer's id and whether it was revoked. A light client proves the record of each
/// certificate in a chain against a header it verified, and ``CertificateStanding`` tells it what they mean.
public struct CertificateRecord: Equatable, Sendable, CanonicalCodable {
    public var der: [UInt8]
    /// The issuer certificate's id; zero for a root.
    public var issuer: Bytes32
    /// The height of the block that published it.
    public var publishedAt: UInt64
    /// The height of the block that revoked it; zero while it is not revoked.
    public var revokedAt: UInt64
    /// RFC 5280's CRLReason code given with the revocation (1 keyCompromise, 4 superseded, ...).
    public var reason: UInt8

    public init(der: [UInt8], issuer: Bytes32, publishedAt: UInt64, revokedAt: UInt64 = 0, reason: UInt8 = 0) {
        self.der = der
        self.issuer = issuer
        self.publishedAt = publishedAt
        self.revokedAt = revokedAt
        self.reason = reason
    }

    public var isRoot: Bool { issuer == .zero }

    public func encode(to w: inout ByteWriter) {
        w.writeLengthPrefixed(der)
        w.write(issuer)
        w.writeVarint(publishedAt)
        w.writeVarint(revokedAt)
        w.write(reason)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        der = try r.readLengthPrefixed(cap: Caps.certificateBytes)
        issuer = try r.readBytes32()
        publishedAt = try r.readVarint()
        revokedAt = try r.readVarint()
        reason = try r.readU8()
    }

    /// The state tree key of certificate `id`'s record.
    public static func stateKey(_ id: Bytes32) -> Bytes32 { StateNamespace.certificate.key(id.bytes) }
}

/// What a chain of certificate records (the certificate first, its root last) means at a given time: valid, or
/// why not and because of which certificate. Everything under a revoked or expired certificate falls with it.
public enum CertificateStanding: Equatable, Sendable {
    case valid
    case notYetValid(Bytes32)
    case expired(Bytes32)
    case revoked(Bytes32, height: UInt64)
    /// The records do not form a chain: a link's issuer id, signature or name does not match, or the last is not
    /// a root.
    case broken(Bytes32)

    /// `chain[0]` is the certificate asked about, each next entry its issuer's record, the last a root.
    public static func of(_ chain: [(id: Bytes32, record: CertificateRecord)], time: UInt64) -> CertificateStanding {
        guard let last = chain.last else { return .broken(.zero) }
        guard last.record.isRoot else { return .broken(last.id) }
        var certificates: [DeviceCertificate] = []
        for link in chain {
            guard let certificate = try? DeviceCertificate(der: link.record.der), certificate.id == link.id else {
                return .broken(link.id)
            }
            certificates.append(certificate)
        }
        for i in chain.indices {
            let (id, record) = chain[i]
            let fields = certificates[i].fields
            if i + 1 < chain.count {
                let issuer = certificates[i + 1]
                guard record.issuer == chain[i + 1].id, certificates[i].isSigned(by: issuer.fields.publicKey),
                    fields.authorityKeyID == issuer.fields.subjectKeyID
                else { return .broken(id) }
            }
            if record.revokedAt != 0 { return .revoked(id, height: record.revokedAt) }
            if time < fields.notBefore { return .notYetValid(id) }
            if time > fields.notAfter { return .expired(id) }
        }
        return .valid
    }
}
