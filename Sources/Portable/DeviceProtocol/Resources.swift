/// The CoAP resource paths of the device API, shared by firmware, simulator and gateway so they cannot drift.
///
/// Versioned under `v1/` so a gateway can serve old firmware after the payloads change. Paths are
/// '/'-separated for ``CoAPMessage/setUriPath(_:)``; on the wire each segment is one Uri-Path option.
public enum DeviceResources {
    /// GET, Observe: the current head (height, hash, finality); notifications on each new block.
    public static let head: StaticString = "v1/head"
    /// GET: signed checkpoints a light client syncs from (Uri-Query `from=<height>`).
    public static let checkpoints: StaticString = "v1/checkpoints"
    /// GET: the checkpoint closing an epoch with the pool's attestations, for a device that skips (Uri-Query
    /// `from=<trusted epoch>` and `to=<epoch>`; without `to`, the newest checkpoint the pool attested).
    public static let skip: StaticString = "v1/skip"
    /// GET: the operator's re-anchor statement (``ReanchorPayload``) for devices whose trust expired; 4.04 when
    /// the gateway has none.
    public static let reanchor: StaticString = "v1/reanchor"
    /// GET: a run of block headers (Uri-Query `from=<height>`, `count=<n>`), block-wise when large.
    public static let headers: StaticString = "v1/headers"
    /// GET/FETCH: inclusion proof of a transaction by hash.
    public static let txProof: StaticString = "v1/proof/tx"
    /// GET/FETCH: state proof of an account (balance, nonce, escrows).
    public static let accountProof: StaticString = "v1/proof/account"
    /// GET: a rental escrow's state (or absence) and its proof against the head's state root (Uri-Query
    /// `id=<opening transaction id>`): what a lock checks before it opens.
    public static let escrowProof: StaticString = "v1/proof/escrow"
    /// GET: an HTLC's state (or absence) and its proof against the head's state root (Uri-Query `id=<locking
    /// transaction id>`): what a device checks before it claims with the secret.
    public static let htlcProof: StaticString = "v1/proof/htlc"
    /// GET: a payment channel's state (or absence) and its proof against the head's state root (Uri-Query
    /// `id=<opening transaction id>`): what a recipient checks an off-chain update against.
    public static let channelProof: StaticString = "v1/proof/channel"
    /// GET: a certificate and its chain-state proof, for devices checking who may command them.
    public static let certificate: StaticString = "v1/cert"
    /// POST: submit a signed transaction (2.01 when pooled), Block1 when large.
    public static let transaction: StaticString = "v1/tx"
    /// GET: a transaction's receipt once included (Uri-Query `id=<hash>`).
    public static let receipt: StaticString = "v1/receipt"
    /// GET: final transfers paying an address (Uri-Query `a=<address>`, `from=<height>`, `pos=<position>`: the
    /// first to list), oldest first.
    public static let inbox: StaticString = "v1/inbox"
    /// GET: an address's payment-code notification count and record `i`, proven against the head's state root
    /// (Uri-Query `a=<address>`, `i=<index>`).
    public static let notifications: StaticString = "v1/notifications"
    /// GET: a finished epoch's recipient filter with the proof of its committed hash (Uri-Query `e=<epoch>`).
    public static let recipientFilter: StaticString = "v1/filter"
    /// GET: commands waiting for a device at the gateway's command door, oldest first (Uri-Query
    /// `a=<address>`, `after=<sequence>`: the last one the device has seen). The gateway checked each signature
    /// and certificate before taking it; the device checks them again itself.
    public static let commands: StaticString = "v1/commands"
    /// GET: a payment channel's messages waiting at the gateway's channel door, oldest first (Uri-Query
    /// `id=<channel id>`, `after=<sequence>`: the last one the recipient has seen).
    public static let channelMessages: StaticString = "v1/channel/messages"
    /// POST: a channel message from the channel's sender (a signed update or a relay message), kept for its
    /// recipient if the channel is open on chain and the update is its sender's (2.01 with the sequence given).
    public static let channelMessage: StaticString = "v1/channel/message"
    /// POST: a payment note from a payer to a payment code's receiver.
    public static let paymentNote: StaticString = "v1/note"
    /// GET: CoRE link-format discovery (RFC 6690), the path every CoAP client knows.
    public static let wellKnownCore: StaticString = ".well-known/core"
}
