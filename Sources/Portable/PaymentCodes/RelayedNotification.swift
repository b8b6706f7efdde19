import AmarsCodec
import AmarsCrypto
import Ledger

/// The white paper's relayable payment code (§7.1): a payer's notification that travels to the receiver over
/// payment channels instead of a notification transaction, so nothing on chain links payer and receiver.
///
/// The payer (Alice) masks her payment code for the receiver (Charlie) as BIP47 does, with a fresh designated key
/// whose x-only public key travels with it. Whoever relays it (Bob) is paid through a channel condition locked to
/// `hashLock` = SHA256(SHA256(chain code of Alice's code)): only the receiver can unmask the code, so only he can
/// reveal the preimage SHA256(chain code) that unlocks his own hop's condition, and with it every hop upstream.
/// The mask's HMAC key (BIP47's outpoint) is the hash lock, which both sides know before anything is sent.
public struct RelayedNotification: Equatable, Sendable, CanonicalCodable {
    /// The receiver's notification address (where a notification transaction would have gone): how a relay
    /// knows which of its peers to forward to.
    public var to: Address
    public var maskedCode: [UInt8]
    /// The x-only public key of the payer's designated key, for the receiver's side of the ECDH (the x of the shared
    /// point is the same for either y).
    public var designated: Bytes32
    public var hashLock: Bytes32

    public init(to: Address, maskedCode: [UInt8], designated: Bytes32, hashLock: Bytes32) {
        self.to = to
        self.maskedCode = maskedCode
        self.designated = designated
        self.hashLock = hashLock
    }

    /// The payer's side: `code` is the payer's own payment code, `designated` a fresh key used for this
    /// notification only, `receiver` the code to notify.
    public init(code: PaymentCode, designated: PrivateKey, receiver: PaymentCode) throws(PaymentCodeError) {
        let hashLock = Self.hashLock(of: code)
        self.init(
            to: receiver.notificationAddress,
            maskedCode: try PaymentCodeNotification.mask(
                code, designated: designated, receiver: receiver, binding: hashLock.bytes),
            designated: designated.xOnlyPublicKey.bytes, hashLock: hashLock)
    }

    /// SHA256(SHA256(chain code)): the lock every hop's condition uses.
    public static func hashLock(of code: PaymentCode) -> Bytes32 { SHA256.hash(preimage(of: code).bytes) }

    /// SHA256(chain code): what the receiver reveals to be paid for the relay.
    public static func preimage(of code: PaymentCode) -> Bytes32 { SHA256.hash(code.chainCode.bytes) }

    /// The receiver's side: the payer's payment code and the preimage that claims the relay's condition. Throws
    /// `.notificationUnreadable` when the bytes do not unmask to a payment code and `.relayHashMismatch` when they
    /// do but the hash lock is not the code's; nothing about the receiver changes then.
    public func unmask(notificationKey: PrivateKey) throws(PaymentCodeError) -> (payer: PaymentCode, preimage: Bytes32) {
        let key: XOnlyPublicKey
        do { key = try XOnlyPublicKey(bytes: designated) } catch { throw .notificationUnreadable(.notOnCurve) }
        let payer = try PaymentCodeNotification.unmask(
            maskedCode, designated: key, notificationKey: notificationKey, binding: hashLock.bytes)
        guard Self.hashLock(of: payer) == hashLock else { throw .relayHashMismatch }
        return (payer, Self.preimage(of: payer))
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
