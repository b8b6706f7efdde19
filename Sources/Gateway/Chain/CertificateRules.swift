import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Ledger

/// The chain as a PKI for things (SPEC "Device identity"): publishing anchors a root, a CA certificate signed by
/// its parent, or a short-lived certificate signed by its device; revoking takes an ancestor's key. Pure
/// planning, like ``EscrowRules``: every check runs on the state as it is, and the caller writes only if
/// nothing threw.
///
/// Rules beyond X.509's own: a root is anchored only by a transaction its own key signed; a device CA's subject
/// is the account of its key; a short-lived (end-entity) certificate names its issuer's subject and lasts 5
/// minutes to 24 hours; the issuer is found by the authority key identifier among the newest CA certificate of
/// each key, and must itself be valid (with all its ancestors) at the block's time. The block's time is its
/// header timestamp, which proposers set and the chain only keeps non-decreasing.
enum CertificateRules {
    static let minLifetime = ShortLivedCertificate.lifetimes.lowerBound
    static let maxLifetime = ShortLivedCertificate.lifetimes.upperBound
    /// Deepest chain kept (root → hub → device → short-lived is 4): bounds the work of every check.
    static let maxDepth = 8

    static func key(_ id: Bytes32) -> ObjectKey { ObjectKey(.certificate, id.bytes) }
    static func keyIndex(_ account: Address) -> ObjectKey { ObjectKey(.certificateKey, account.raw.bytes) }
    static func serialKey(issuer: Bytes32, serial: [UInt8]) -> ObjectKey {
        ObjectKey(.certificateSerial, issuer.bytes + serial)
    }

    static func record(_ id: Bytes32, in state: StateOverlay) -> CertificateRecord? {
        // Only these rules write records; one that does not decode is a corrupt store.
        state.object(key(id)).map { try! CertificateRecord(decoding: $0) }
    }

    /// `id`'s record and every ancestor's, the certificate first and its root last (at most ``maxDepth``).
    static func chain(from id: Bytes32, in state: StateOverlay) -> [(id: Bytes32, record: CertificateRecord)] {
        var out: [(id: Bytes32, record: CertificateRecord)] = []
        var next = id
        while out.count < maxDepth, let record = record(next, in: state) {
            out.append((next, record))
            if record.isRoot { break }
            next = record.issuer
        }
        return out
    }

    static func planPublish(
        _ publish: CertificatePublish, sender: Address, height: UInt64, time: UInt64, state: StateOverlay
    )
        throws(CertificateRefusal) -> [(ObjectKey, [UInt8]?)]
    {
        guard let certificate = try? DeviceCertificate(der: publish.der) else { throw .unreadable }
        let fields = certificate.fields
        let id = certificate.id
        guard state.object(key(id)) == nil else { throw .alreadyPublished }
        guard time <= fields.notAfter else { throw .expired }
        let issuer: Bytes32
        if fields.isSelfSigned {
            guard fields.isCA, fields.keyUsage & KeyUsage.keyCertSign != 0 else { throw .notACertificateAuthority }
            guard certificate.isSigned(by: fields.publicKey) else { throw .badSignature }
            guard sender == fields.subjectKeyID else { throw .rootNotSentByItsKey }
            issuer = .zero
        } else {
            guard let raw = state.object(keyIndex(fields.authorityKeyID)), let parentID = Bytes32(raw) else {
                throw .unknownIssuer
            }
            let ancestors = chain(from: parentID, in: state)
            guard ancestors.count < maxDepth, CertificateStanding.of(ancestors, time: time) == .valid else {
                throw .issuerNotValid
            }
            // The standing check parsed every ancestor; these cannot fail.
            let parents = ancestors.map { try! DeviceCertificate(der: $0.record.der).fields }
            let parent = parents[0]
            guard parent.isCA, parent.keyUsage & KeyUsage.keyCertSign != 0 else { throw .notACertificateAuthority }
            guard fields.issuerName == parent.subjectName else { throw .issuerNameMismatch }
            guard certificate.isSigned(by: parent.publicKey) else { throw .badSignature }
            // RFC 5280 path length: the CA certificates below each ancestor, this one included if it is a CA.
            var below = fields.isCA ? 1 : 0
            for (i, ancestor) in parents.enumerated() {
                if let limit = ancestor.pathLength, below > Int(limit) { throw .pathLengthExceeded }
                if i + 1 < parents.count { below += 1 }
            }
            if fields.isCA {
                guard fields.subjectName == Array(fields.subjectKeyID.bech32.utf8) else { throw .subjectNotItsAccount }
            } else {
                let lifetime = fields.notAfter - fields.notBefore
                guard lifetime >= minLifetime, lifetime <= maxLifetime else {
                    throw .lifetimeOutOfRange(seconds: lifetime)
                }
                guard fields.subjectName == parent.subjectName else { throw .subjectNotTheIssuer }
            }
            guard state.object(serialKey(issuer: parentID, serial: fields.serial)) == nil else { throw .serialReused }
            issuer = parentID
        }
        var writes: [(ObjectKey, [UInt8]?)] = [
            (key(id), CertificateRecord(der: publish.der, issuer: issuer, publishedAt: height).encoded)
        ]
        if fields.isCA { writes.append((keyIndex(fields.subjectKeyID), id.bytes)) }
        if !fields.isSelfSigned { writes.append((serialKey(issuer: issuer, serial: fields.serial), [1])) }
        return writes
    }

    static func planRevoke(_ revoke: CertificateRevoke, sender: Address, height: UInt64, state: StateOverlay)
        throws(CertificateRefusal) -> [(ObjectKey, [UInt8]?)]
    {
        let links = chain(from: revoke.certificateID, in: state)
        guard var target = links.first?.record else { throw .unknownCertificate }
        guard target.revokedAt == 0 else { throw .alreadyRevoked }
        // The certificate's own key may revoke only a root (an operator retiring a compromised root).
        let allowed = (target.isRoot ? links : Array(links.dropFirst())).contains { link in
            (try? DeviceCertificate(der: link.record.der))?.fields.subjectKeyID == sender
        }
        guard allowed else { throw .notAnAncestor }
        target.revokedAt = height
        target.reason = revoke.reason
        return [(key(revoke.certificateID), target.encoded)]
    }
}
