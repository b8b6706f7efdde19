/// Why a certificate, or its place in a chain of certificates, was refused. Each case names what to fix.
public enum CertificateError: Error, Equatable, Sendable {
    /// Not DER, or not the structure of an X.509 certificate.
    case malformed(DERError)
    /// Over the chain's certificate cap.
    case tooLarge(Int)
    /// DER that is valid but not this profile's one encoding of its fields (e.g. extensions in another order).
    case notCanonical
    case unsupportedVersion
    /// A signature algorithm other than ecdsa-with-SHA256.
    case unsupportedAlgorithm
    /// A key that is not a compressed secp256k1 point.
    case unsupportedKey
    /// A serial number that is zero, negative or over 20 bytes.
    case badSerial
    /// A name that is not one UTF-8 commonName of 1 to 64 bytes.
    case badName
    /// A validity time that is not UTCTime/GeneralizedTime in UTC with seconds, or ends before it starts.
    case badTime
    /// The profile's extensions missing, out of order, with the wrong criticality or contents.
    case badExtension
    /// The subject key identifier is not the account of the certificate's key.
    case keyIdentifierMismatch
}
