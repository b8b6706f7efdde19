import AmarsCodec
import AmarsCrypto
import Ledger

/// An X.509 v3 certificate of the chain's profile (SPEC "Device identity"): ecdsa-with-SHA256 over a secp256k1
/// key (namedCurve 1.3.132.0.10, compressed point), names with one commonName, and four extensions: basic
/// constraints and key usage (both critical), subject and authority key identifiers. A key identifier is the raw
/// 20-byte account address of the key, so a certificate names its issuer's account and its own.
///
/// `openssl x509` reads these and `openssl verify` accepts their chains (IdentityTests). The reader accepts this
/// profile only: a certificate that does not re-encode to exactly its input is refused, so each certificate has
/// one encoding and one id.
public struct DeviceCertificate: Equatable, Sendable {
    public var fields: CertificateFields
    /// The ECDSA signature of SHA-256(tbs), DER-encoded (low S: the chain refuses a high one, as libsecp256k1 does).
    public let signature: [UInt8]
    /// The whole certificate.
    public let der: [UInt8]

    /// SHA-256 of the DER bytes: the fingerprint `openssl x509 -fingerprint -sha256` prints, and the id the chain
    /// keeps the certificate's status under.
    public var id: Bytes32 { SHA256.hash(der) }

    /// Signs `fields` with `issuerKey` (which must be the key `fields.authorityKeyID` names).
    public init(signing fields: CertificateFields, with issuerKey: PrivateKey) {
        self.fields = fields
        let tbs = fields.tbs
        signature = issuerKey.signECDSA(digest: SHA256.hash(tbs))
        der = DeviceCertificate.assemble(tbs: tbs, signature: signature)
    }

    /// A whole certificate from its TBSCertificate, signed by `issuerKey`: for certificates outside this
    /// profile that a host still makes with the same primitives (a broker's TLS server certificate).
    public static func signed(tbs: [UInt8], with issuerKey: PrivateKey) -> [UInt8] {
        assemble(tbs: tbs, signature: issuerKey.signECDSA(digest: SHA256.hash(tbs)))
    }

    static func assemble(tbs: [UInt8], signature: [UInt8]) -> [UInt8] {
        DER.sequence([tbs, DER.sequence([DER.oid(OID.ecdsaWithSHA256)]), DER.bits(signature)])
    }

    /// Parses a certificate of this profile. Throws for anything else, with the reason.
    public init(der: [UInt8]) throws(CertificateError) {
        guard der.count <= DeviceCertificate.maxBytes else { throw .tooLarge(der.count) }
        var outer = DERReader(der)
        var certificate = try outer.nested(DER.sequence)
        try outer.finish()
        let tbsValue = try certificate.read()
        guard tbsValue.tag == DER.sequence else {
            throw .malformed(.unexpectedTag(expected: DER.sequence, got: tbsValue.tag))
        }
        var algorithm = try certificate.nested(DER.sequence)
        guard try algorithm.readBytes(DER.objectIdentifier) == OID.ecdsaWithSHA256 else { throw .unsupportedAlgorithm }
        try algorithm.finish()
        let signature = try certificate.readBits()
        try certificate.finish()
        let fields = try CertificateFields(tbs: Array(der[tbsValue.whole]))
        self.fields = fields
        self.signature = signature
        self.der = der
        // One encoding per certificate: what we would write for these fields must be the input.
        guard DeviceCertificate.assemble(tbs: fields.tbs, signature: signature) == der else { throw .notCanonical }
    }

    /// Whether `issuerKey` signed this certificate.
    public func isSigned(by issuerKey: PublicKey) -> Bool {
        issuerKey.verifyECDSA(derSignature: signature, digest: SHA256.hash(fields.tbs))
    }

    /// The chain's transaction cap on a certificate (``Caps/certificateBytes``).
    public static let maxBytes = Caps.certificateBytes
}

/// What a certificate says (its TBSCertificate), apart from the signature.
public struct CertificateFields: Equatable, Sendable {
    /// Positive serial number, big-endian, at most 20 bytes (RFC 5280), no leading zeros.
    public var serial: [UInt8]
    /// The issuer's and the subject's commonName (UTF-8, 1 to 64 bytes).
    public var issuerName: [UInt8]
    public var subjectName: [UInt8]
    /// Unix seconds, inclusive at both ends.
    public var notBefore: UInt64
    public var notAfter: UInt64
    public var publicKey: PublicKey
    /// A CA may sign certificates; `pathLength` bounds how many CA levels may follow it.
    public var isCA: Bool
    public var pathLength: UInt8?
    /// X.509 key usage bits (``KeyUsage``).
    public var keyUsage: UInt8
    /// The subject's account (the key identifier of ``publicKey``) and the issuer's.
    public var subjectKeyID: Address
    public var authorityKeyID: Address

    public init(
        serial: [UInt8], issuerName: [UInt8], subjectName: [UInt8], notBefore: UInt64, notAfter: UInt64,
        publicKey: PublicKey, isCA: Bool, pathLength: UInt8?, keyUsage: UInt8, authorityKeyID: Address
    ) {
        var trimmed = Array(serial.drop { $0 == 0 })
        if trimmed.isEmpty { trimmed = [1] }
        self.serial = trimmed
        self.issuerName = issuerName
        self.subjectName = subjectName
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.publicKey = publicKey
        self.isCA = isCA
        self.pathLength = isCA ? pathLength : nil
        self.keyUsage = keyUsage
        self.subjectKeyID = Address(publicKey: publicKey.xOnly)
        self.authorityKeyID = authorityKeyID
    }

    /// Self-signed: the subject's own key signs (a root).
    public var isSelfSigned: Bool { authorityKeyID == subjectKeyID && issuerName == subjectName }

    public static let maxNameBytes = 64

    /// The DER TBSCertificate.
    public var tbs: [UInt8] { tbs(appending: []) }

    /// The TBSCertificate with `extra` extensions after the profile's four (each from ``extensionValue(_:critical:_:)``).
    /// Certificates with extra extensions are outside the profile: the chain does not take them.
    public func tbs(appending extra: [[UInt8]]) -> [UInt8] {
        var extensions: [[UInt8]] = []
        var constraints: [[UInt8]] = []
        if isCA {
            constraints.append(DER.tlv(DER.boolean, [0xFF]))
            if let pathLength { constraints.append(DER.smallInteger(pathLength)) }
        }
        extensions.append(Self.extensionValue(OID.basicConstraints, critical: true, DER.sequence(constraints)))
        extensions.append(Self.extensionValue(OID.keyUsage, critical: true, DER.namedBits(keyUsage)))
        extensions.append(
            Self.extensionValue(
                OID.subjectKeyIdentifier, critical: false, DER.tlv(DER.octetString, subjectKeyID.raw.bytes)))
        extensions.append(
            Self.extensionValue(
                OID.authorityKeyIdentifier, critical: false,
                DER.sequence([DER.tlv(DER.implicit(0), authorityKeyID.raw.bytes)])))
        extensions += extra
        return DER.sequence([
            DER.tlv(DER.explicit(0), DER.smallInteger(2)),
            DER.unsignedInteger(serial),
            DER.sequence([DER.oid(OID.ecdsaWithSHA256)]),
            Self.name(issuerName),
            DER.sequence([CertificateTime.encode(notBefore), CertificateTime.encode(notAfter)]),
            Self.name(subjectName),
            DER.sequence([
                DER.sequence([DER.oid(OID.ecPublicKey), DER.oid(OID.secp256k1)]), DER.bits(publicKey.compressed),
            ]),
            DER.tlv(DER.explicit(3), DER.sequence(extensions)),
        ])
    }

    static func name(_ commonName: [UInt8]) -> [UInt8] {
        DER.sequence([DER.tlv(DER.set, DER.sequence([DER.oid(OID.commonName), DER.tlv(DER.utf8String, commonName)]))])
    }

    public static func extensionValue(_ oid: [UInt8], critical: Bool, _ value: [UInt8]) -> [UInt8] {
        var parts = [DER.oid(oid)]
        if critical { parts.append(DER.tlv(DER.boolean, [0xFF])) }
        parts.append(DER.tlv(DER.octetString, value))
        return DER.sequence(parts)
    }

    /// Reads a TBSCertificate of this profile (the caller checks the whole certificate re-encodes exactly).
    init(tbs: [UInt8]) throws(CertificateError) {
        var outer = DERReader(tbs)
        var r = try outer.nested(DER.sequence)
        var version = try r.nested(DER.explicit(0))
        guard try version.readUnsignedInteger(maxBytes: 1) == [2] else { throw .unsupportedVersion }
        serial = try r.readUnsignedInteger(maxBytes: 20)
        guard !serial.isEmpty else { throw .badSerial }
        var algorithm = try r.nested(DER.sequence)
        guard try algorithm.readBytes(DER.objectIdentifier) == OID.ecdsaWithSHA256 else {
            throw .unsupportedAlgorithm
        }
        issuerName = try Self.readName(&r)
        var validity = try r.nested(DER.sequence)
        let times = (try validity.read(), try validity.read())
        guard let from = CertificateTime.decode(tag: times.0.tag, tbs[times.0.content]),
            let to = CertificateTime.decode(tag: times.1.tag, tbs[times.1.content])
        else { throw .badTime }
        guard from <= to else { throw .badTime }
        notBefore = from
        notAfter = to
        subjectName = try Self.readName(&r)
        var spki = try r.nested(DER.sequence)
        var keyAlgorithm = try spki.nested(DER.sequence)
        guard try keyAlgorithm.readBytes(DER.objectIdentifier) == OID.ecPublicKey,
            try keyAlgorithm.readBytes(DER.objectIdentifier) == OID.secp256k1
        else { throw .unsupportedKey }
        let point = try spki.readBits()
        guard let key = try? PublicKey(compressed: point) else { throw .unsupportedKey }
        publicKey = key
        subjectKeyID = Address(publicKey: key.xOnly)
        var wrapper = try r.nested(DER.explicit(3))
        var extensions = try wrapper.nested(DER.sequence)
        // basicConstraints
        var bc = try Self.readExtension(&extensions, OID.basicConstraints, critical: true)
        var constraints = try bc.nested(DER.sequence)
        isCA = false
        if !constraints.isAtEnd { isCA = try constraints.readBoolean() }
        guard constraints.isAtEnd || isCA else { throw .badExtension }
        pathLength = nil
        if !constraints.isAtEnd {
            let length = try constraints.readUnsignedInteger(maxBytes: 1)
            pathLength = length.first ?? 0
        }
        var ku = try Self.readExtension(&extensions, OID.keyUsage, critical: true)
        keyUsage = try ku.readNamedBits()
        var ski = try Self.readExtension(&extensions, OID.subjectKeyIdentifier, critical: false)
        guard let own = Bytes20(try ski.readBytes(DER.octetString)), own == subjectKeyID.raw else {
            throw .keyIdentifierMismatch
        }
        var aki = try Self.readExtension(&extensions, OID.authorityKeyIdentifier, critical: false)
        var akiSequence = try aki.nested(DER.sequence)
        guard let authority = Bytes20(try akiSequence.readBytes(DER.implicit(0))) else {
            throw .badExtension
        }
        authorityKeyID = Address(raw: authority)
        try akiSequence.finish()
        try extensions.finish()
        try r.finish()
        try outer.finish()
    }

    static func readName(_ r: inout DERReader) throws(CertificateError) -> [UInt8] {
        var name = try r.nested(DER.sequence)
        var rdn = try name.nested(DER.set)
        var attribute = try rdn.nested(DER.sequence)
        guard try attribute.readBytes(DER.objectIdentifier) == OID.commonName else { throw .badName }
        let value = try attribute.readBytes(DER.utf8String)
        guard !value.isEmpty, value.count <= maxNameBytes else { throw .badName }
        try attribute.finish()
        try rdn.finish()
        try name.finish()
        return value
    }

    /// The next extension, which must be `oid` with the given criticality: a reader over its value.
    static func readExtension(_ r: inout DERReader, _ oid: [UInt8], critical: Bool) throws(CertificateError)
        -> DERReader
    {
        var ext = try r.nested(DER.sequence)
        guard try ext.readBytes(DER.objectIdentifier) == oid else { throw .badExtension }
        if critical { guard try ext.readBoolean() else { throw .badExtension } }
        let value = try ext.readBytes(DER.octetString)
        try ext.finish()
        return DERReader(value)
    }
}

/// X.509 key usage bits as this profile uses them (bit 0 is the most significant bit of the byte).
public enum KeyUsage {
    public static let digitalSignature: UInt8 = 0x80
    public static let keyCertSign: UInt8 = 0x04
    public static let cRLSign: UInt8 = 0x02
}

/// The object identifiers of the profile, as DER content bytes.
public enum OID {
    /// 1.2.840.10045.4.3.2
    public static let ecdsaWithSHA256: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]
    /// 1.2.840.10045.2.1
    public static let ecPublicKey: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    /// 1.3.132.0.10
    public static let secp256k1: [UInt8] = [0x2B, 0x81, 0x04, 0x00, 0x0A]
    /// 2.5.4.3
    public static let commonName: [UInt8] = [0x55, 0x04, 0x03]
    /// 2.5.29.19, 2.5.29.15, 2.5.29.14, 2.5.29.35
    public static let basicConstraints: [UInt8] = [0x55, 0x1D, 0x13]
    public static let keyUsage: [UInt8] = [0x55, 0x1D, 0x0F]
    public static let subjectKeyIdentifier: [UInt8] = [0x55, 0x1D, 0x0E]
    public static let authorityKeyIdentifier: [UInt8] = [0x55, 0x1D, 0x23]
}
