/// Content-Format numbers (RFC 7252 §12.3 registry) the project uses.
///
/// Device payloads use the chain's compact binary encoding, registered as nothing more specific than
/// octet-stream; the others are here so a gateway can recognise (and refuse with 4.15) what a device did not
/// mean to send.
public enum ContentFormat {
    /// text/plain; charset=utf-8: diagnostic payloads of error responses.
    public static let textPlain: UInt16 = 0
    /// application/link-format (RFC 6690): `/.well-known/core`.
    public static let linkFormat: UInt16 = 40
    /// application/octet-stream: every chain payload (transactions, headers, proofs, certificates).
    public static let octetStream: UInt16 = 42
    /// application/json: only for humans; devices never receive it.
    public static let json: UInt16 = 50
    /// application/cbor.
    public static let cbor: UInt16 = 60
    /// The format of chain payloads, under the name callers look for.
    public static let chainPayload: UInt16 = octetStream
}
