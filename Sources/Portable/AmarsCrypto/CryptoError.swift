/// Why a key, signature or tweak was refused. The cases carry no payload on purpose: secret material and
/// attacker-chosen bytes never travel inside an error that may end up in a log.
public enum CryptoError: Error, Equatable, Sendable {
    /// A secret key was zero or not below the group order n.
    case invalidPrivateKey
    /// Bytes that do not encode a point on secp256k1 in the expected format.
    case invalidPublicKey
    /// A signature that cannot be parsed in the expected encoding.
    case invalidSignature
    /// A tweak not below n, or one that turned the key into zero / the point at infinity.
    case invalidTweak
    /// The library refused to produce a signature (only possible with a corrupt key).
    case signingFailed
    /// A message or digest of a length the operation does not accept.
    case invalidMessageLength
}
