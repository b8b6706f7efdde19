import AmarsCodec
import AmarsCrypto
import Ledger

/// The white paper's relayable payment code (§7.1): a payer's notification that travels to the receiver over
/// payment channels instead of a notification transaction, so nothing on chain links payer and receiver.
///
/// The payer (Alice) masks her payment code for the receiver (Charlie) as BIP47 does, with a fresh designated key
/// whose x-only public key travels with it. Whoever relays it (Bob) is paid through a channel condition locked to
/// `hashLock` = SHA256(preimage), where the preimage is a tagged hash of the ECDH point's x (designated key ×
/// Charlie's notification key) and Alice's code: only Alice and Charlie can compute it, it is new with every
/// designated key, and it says nothing about Alice to whoever sees it revealed. (The paper's Hash²(chain code)
/// would be public: a payment code's chain code is in the code.) Charlie, having unmasked the code, recomputes
/// the preimage and checks its hash: a message nobody with the shared point made is refused. Showing the
/// preimage unlocks his own hop's condition, and with it every hop upstream. The mask's HMAC key (BIP47's
/// outpoint) is the hash lock, which both sides know before anything is sent.
public struct RelayedNotification: Equatable, Sendable, CanonicalCodable {
    /// The receiver's notification address (where a notification transaction would have gone): how a relay
    /// knows which of its peers to forward to.
    public var to: Address
    public var maskedCode: [UInt8]
    /// The x-only public key of the payer's designated key, for the receiver's side of the ECDH (the x of the shared
    /// point is the same for either y).
    public var designated: Bytes32
    public var hashLock: Bytes32

    static let preimageTag = TaggedHash(tag: "AmarsRelayPreimage")

    public init(to: Address, maskedCode: [UInt8], designated: Bytes32, hashLock: Bytes32) {
        self.to = to
        self.maskedCode = maskedCode
        self.designated = designated
        self.hashLock = hashLock
    }

    /// The payer's side: `code` is the payer's own payment code, `designated` a fresh key used for this
    /// notification only, `receiver` the code to notify.
    public init(code: PaymentCode, designated: PrivateKey, receiver: PaymentCode) throws(PaymentCodeError) {
        let shared = designated.sharedX(try receiver.key(at: 0))
        let hashLock = SHA256.hash(Self.preimage(shared: shared, code: code).bytes)
        self.init(
            to: receiver.notificationAddress,
            maskedCode: try PaymentCodeNotification.mask(
                code, designated: designated, receiver: receiver, binding: hashLock.bytes),
            designated: designated.xOnlyPublicKey.bytes, hashLock: hashLock)
    }

    /// What the receiver reveals to be paid for the relay: a tagged hash of the shared x and the payer's code.
    static func preimage(shared: Bytes32, code: PaymentCode) -> Bytes32 {
        preimageTag.hash(shared.bytes + code.binary)
    }

    /// The receiver's side: the payer's payment code and the preimage that claims the relay's condition. Throws
    /// `.notificationUnreadable` when the bytes do not unmask to a payment code and `.relayHashMismatch` when they
    /// do but the hash lock is not the one the shared point and that code give; nothing about the receiver
    /// changes then.
    public func unmask(notificationKey: PrivateKey) throws(PaymentCodeError) -> (payer: PaymentCode, preimage: Bytes32)
    {
        var compressed: [UInt8] = [2]
        compressed.append(contentsOf: designated.bytes)
        guard let key = try? XOnlyPublicKey(bytes: designated), let point = try? PublicKey(compressed: compressed)
        else { throw .notificationUnreadable(.notOnCurve) }
        let payer = try PaymentCodeNotification.unmask(
            maskedCode, designated: key, notificationKey: notificationKey, binding: hashLock.bytes)
        let preimage = Self.preimage(shared: notificationKey.sharedX(point), code: payer)
        guard SHA256.hash(preimage.bytes) == hashLock else { throw .relayHashMismatch }
        return (payer, preimage)
    }

    public func encode(to w: inout ByteWriter) {
        w.write(to)
        w.write(maskedCode)
        w.write(designated)
        w.write(hashLock)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        to = try r.read()
        maskedCode = try r.readBytes(PaymentCode.binaryLength)
        designated = try r.readBytes32()
        hashLock = try r.readBytes32()
    }
}

/// What one hop of a relayed payment code sends the next over their channel: the sender's update, which adds
/// the condition locked to the notification's hash lock, and the notification itself.
public struct RelayMessage: Equatable, Sendable, CanonicalCodable {
    public var update: ChannelUpdate
    public var notification: RelayedNotification

    public init(update: ChannelUpdate, notification: RelayedNotification) {
        self.update = update
        self.notification = notification
    }

    /// The condition of ``update`` that pays for the relay: the one locked to the notification's hash lock.
    public var condition: ChannelCondition? {
        update.conditions.first { $0.hashLock == notification.hashLock }
    }

    public func encode(to w: inout ByteWriter) {
        w.write(update)
        w.write(notification)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        update = try r.read()
        notification = try r.read()
    }
}
