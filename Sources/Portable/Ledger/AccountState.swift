import AmarsCodec
import AmarsCrypto

/// What the state tree holds for an account. A light client checks it with a ``SparseMerkleProof``.
public struct AccountState: Equatable, Sendable, CanonicalCodable {
    public var balance: UInt64
    /// Number of transactions this account has had executed: the next valid nonce.
    public var nonce: UInt64

    public init(balance: UInt64 = 0, nonce: UInt64 = 0) {
        self.balance = balance
        self.nonce = nonce
    }

    public var isEmpty: Bool { balance == 0 && nonce == 0 }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(balance)
        w.writeVarint(nonce)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        balance = try r.readVarint()
        nonce = try r.readVarint()
    }

    public var valueHash: Bytes32 { Domain.stateValue.hash(encoded) }
}

/// The namespaces of the state tree. Every kind of state lives under its own prefix so keys never collide.
public enum StateNamespace: UInt8, Sendable {
    case account = 1
    case candidate = 2
    case bucket = 3
    /// Published certificates and their status, by id (``CertificateRecord`` in DeviceIdentity).
    case certificate = 4
    case htlc = 5
    case escrow = 6
    /// Candidate names, so each is unique.
    case candidateName = 7
    /// Elected delegate pools by epoch.
    case election = 8
    /// Chain-wide counters (the next bucket id).
    case counters = 9
    /// Voter rewards accrued per candidate during an epoch, paid to its buckets at the epoch's end.
    case voterRewards = 10
    /// Double-sign evidence already used, so one offence is punished once.
    case evidence = 11
    /// The hash of each finished epoch's recipient filter, by epoch (``RecipientFilter``).
    case recipientFilter = 12
    /// Payment-code notifications per notification address, and their count (``PaymentNotificationRecord``).
    case paymentNotification = 13
    /// The hash of each finished epoch's stealth announcements, by epoch (``StealthAnnouncements``).
    case stealthAnnouncements = 14
    /// The newest CA certificate of each key, by the key's account: how a child finds its issuer.
    case certificateKey = 15
    /// The serial numbers each CA has used (issuer id, then the serial): RFC 5280 wants them unique per issuer.
    case certificateSerial = 16
    /// One-way payment channels by the id of the transaction that opened them (``PaymentChannel``).
    case channel = 17

    /// The tree key of an object: a tagged hash of namespace and identifier, so keys spread evenly.
    public func key(_ identifier: [UInt8]) -> Bytes32 {
        var bytes: [UInt8] = [rawValue]
        bytes.append(contentsOf: identifier)
        return Domain.stateKey.hash(bytes)
    }

    public static func accountKey(_ address: Address) -> Bytes32 { StateNamespace.account.key(address.raw.bytes) }
}
