import AmarsCodec
import AmarsCrypto

/// The native transaction kinds (SPEC.md "Chain"). The tag byte before each payload is consensus: a new
/// kind takes a new tag, an old tag is never reused.
public enum TransactionPayload: Equatable, Sendable {
    case transfer(Transfer)
    case candidateRegister(CandidateRegister)
    case candidateUpdate(CandidateUpdate)
    case stake(Stake)
    case restake(Restake)
    case unstake(BucketAction)
    case withdraw(BucketAction)
    case certificatePublish(CertificatePublish)
    case certificateRevoke(CertificateRevoke)
    case htlcLock(HTLCLock)
    case htlcClaim(HTLCClaim)
    case htlcRefund(HTLCRefund)
    case escrowOpen(EscrowOpen)
    case escrowClose(EscrowClose)
    case doubleSignEvidence(DoubleSignEvidence)
    case paymentCodeNotify(PaymentCodeNotify)
    case stealthTransfer(StealthTransfer)
    case channelOpen(ChannelOpen)
    case channelClose(ChannelClose)
    case channelRefund(ChannelRefund)

    /// The wire tag of ``transfer(_:)``, for readers that decode that kind alone.
    public static let transferTag: UInt8 = 0
    /// The wire tag of ``paymentCodeNotify(_:)``, for a receiver that decodes that kind alone.
    public static let paymentCodeNotifyTag: UInt8 = 15
    public static let stealthTransferTag: UInt8 = 16

    /// The wire tag, also used for per-kind fee units.
    public var tag: UInt8 {
        switch self {
        case .transfer: Self.transferTag
        case .candidateRegister: 1
        case .candidateUpdate: 2
        case .stake: 3
        case .restake: 4
        case .unstake: 5
        case .withdraw: 6
        case .certificatePublish: 7
        case .certificateRevoke: 8
        case .htlcLock: 9
        case .htlcClaim: 10
        case .htlcRefund: 11
        case .escrowOpen: 12
        case .escrowClose: 13
        case .doubleSignEvidence: 14
        case .paymentCodeNotify: Self.paymentCodeNotifyTag
        case .stealthTransfer: Self.stealthTransferTag
        case .channelOpen: 17
        case .channelClose: 18
        case .channelRefund: 19
        }
    }

    /// Tokens the payload moves out of the sender's balance on top of the fee (zero for kinds that move none).
    public var debitedAmount: UInt64 {
        switch self {
        case .transfer(let t): t.amount
        case .stealthTransfer(let t): t.amount
        case .candidateRegister(let c): c.selfStake
        case .stake(let s): s.amount
        case .htlcLock(let h): h.amount
        case .channelOpen(let c): c.deposit
        case .escrowOpen(let e):
            e.deposit.addingReportingOverflow(e.rentalFee).overflow ? UInt64.max : e.deposit + e.rentalFee
        default: 0
        }
    }
}

extension TransactionPayload: CanonicalCodable {
    public func encode(to w: inout ByteWriter) {
        w.write(tag)
        switch self {
        case .transfer(let p): w.write(p)
        case .candidateRegister(let p): w.write(p)
        case .candidateUpdate(let p): w.write(p)
        case .stake(let p): w.write(p)
        case .restake(let p): w.write(p)
        case .unstake(let p): w.write(p)
        case .withdraw(let p): w.write(p)
        case .certificatePublish(let p): w.write(p)
        case .certificateRevoke(let p): w.write(p)
        case .htlcLock(let p): w.write(p)
        case .htlcClaim(let p): w.write(p)
        case .htlcRefund(let p): w.write(p)
        case .escrowOpen(let p): w.write(p)
        case .escrowClose(let p): w.write(p)
        case .doubleSignEvidence(let p): w.write(p)
        case .paymentCodeNotify(let p): w.write(p)
        case .stealthTransfer(let p): w.write(p)
        case .channelOpen(let p): w.write(p)
        case .channelClose(let p): w.write(p)
        case .channelRefund(let p): w.write(p)
        }
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let tag = try r.readU8()
        switch tag {
        case Self.transferTag: self = .transfer(try r.read())
        case 1: self = .candidateRegister(try r.read())
        case 2: self = .candidateUpdate(try r.read())
        case 3: self = .stake(try r.read())
        case 4: self = .restake(try r.read())
        case 5: self = .unstake(try r.read())
        case 6: self = .withdraw(try r.read())
        case 7: self = .certificatePublish(try r.read())
        case 8: self = .certificateRevoke(try r.read())
        case 9: self = .htlcLock(try r.read())
        case 10: self = .htlcClaim(try r.read())
        case 11: self = .htlcRefund(try r.read())
        case 12: self = .escrowOpen(try r.read())
        case 13: self = .escrowClose(try r.read())
        case 14: self = .doubleSignEvidence(try r.read())
        case Self.paymentCodeNotifyTag: self = .paymentCodeNotify(try r.read())
        case Self.stealthTransferTag: self = .stealthTransfer(try r.read())
        case 17: self = .channelOpen(try r.read())
        case 18: self = .channelClose(try r.read())
        case 19: self = .channelRefund(try r.read())
        default: throw .unknownTag(tag)
        }
    }
}

/// Moves `amount` base units to `to`. A zero amount is refused at decoding: it could only be spam.
public struct Transfer: Equatable, Sendable, CanonicalCodable {
    public var to: Address
    public var amount: UInt64
    public var memo: [UInt8]

    public init(to: Address, amount: UInt64, memo: [UInt8] = []) {
        self.to = to
        self.amount = amount
        self.memo = memo
    }

    public func encode(to w: inout ByteWriter) {
        w.write(to)
        w.writeVarint(amount)
        w.writeLengthPrefixed(memo)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        to = try r.read()
        amount = try r.readVarint()
        guard amount > 0 else { throw .invalidValue(.amount) }
        memo = try r.readLengthPrefixed(cap: Caps.memoBytes)
    }
}

/// BIP47's notification (SPEC "Payment codes"): the sender's payment code masked for the owner of the
/// notification address `to`. It moves no tokens; the sender pays the fee. Only `to`'s owner can unmask it, and the
/// sender's later payments go to one-time addresses nothing on chain links to `to`.
public struct PaymentCodeNotify: Equatable, Sendable, CanonicalCodable {
    public static let maskedCodeBytes = 80

    public var to: Address
    /// Exactly 80 bytes (a payment code's binary length): anything else cannot unmask to a code.
    public var maskedCode: [UInt8]

    public init(to: Address, maskedCode: [UInt8]) {
        self.to = to
        self.maskedCode = maskedCode
    }

    public func encode(to w: inout ByteWriter) {
        w.write(to)
        w.write(maskedCode)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        to = try r.read()
        maskedCode = try r.readBytes(Self.maskedCodeBytes)
    }
}

/// A transfer to a stealth address's one-time account (SPEC "Payment codes"): `to` is P = B + SHA256(x(r·A))·G's
/// account and `ephemeralKey` is R = r·G, which the receiver's scan key turns back into P. The epoch's last block
/// commits to every R of the epoch (``StealthAnnouncements``), so a wallet scanning with a view key knows it saw them
/// all. A zero amount is refused at decoding, as for ``Transfer``.
public struct StealthTransfer: Equatable, Sendable, CanonicalCodable {
    public var to: Address
    public var amount: UInt64
    /// R, compressed (33 bytes), a point on the curve (checked at decoding). Kept as bytes: a parsed key would
    /// widen every ``TransactionPayload`` value, and devices copy those while they sign.
    public var ephemeralKey: [UInt8]

    public init(to: Address, amount: UInt64, ephemeralKey: PublicKey) {
        self.to = to
        self.amount = amount
        self.ephemeralKey = ephemeralKey.compressed
    }

    /// R as a key. Decoding checked it, so this fails only for a value built in memory from bad bytes.
    public var ephemeralPublicKey: PublicKey? { try? PublicKey(compressed: ephemeralKey) }

    /// Not inlined into ``TransactionPayload``'s encoder: a device encodes only transfers, and each inlined case
    /// costs its flash.
    @inline(never)
    public func encode(to w: inout ByteWriter) {
        w.write(to)
        w.writeVarint(amount)
        w.write(ephemeralKey)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        to = try r.read()
        amount = try r.readVarint()
        guard amount > 0 else { throw .invalidValue(.amount) }
        ephemeralKey = try r.readBytes(33)
        guard (try? PublicKey(compressed: ephemeralKey)) != nil else { throw .invalidValue(.publicKey) }
    }
}

/// Registers the sender as a delegate candidate with a self-stake locked for `durationEpochs`.
public struct CandidateRegister: Equatable, Sendable, CanonicalCodable {
    public var name: [UInt8]
    public var operatorKey: Bytes32
    public var rewardAddress: Address
    public var selfStake: UInt64
    public var durationEpochs: UInt32
    /// Share of the delegate's rewards passed on to its voters, in basis points (0...10_000).
    public var rewardShareBps: UInt16

    public init(
        name: [UInt8], operatorKey: Bytes32, rewardAddress: Address, selfStake: UInt64, durationEpochs: UInt32,
        rewardShareBps: UInt16
    ) {
        self.name = name
        self.operatorKey = operatorKey
        self.rewardAddress = rewardAddress
        self.selfStake = selfStake
        self.durationEpochs = durationEpochs
        self.rewardShareBps = rewardShareBps
    }

    public func encode(to w: inout ByteWriter) {
        w.writeLengthPrefixed(name)
        w.write(operatorKey)
        w.write(rewardAddress)
        w.writeVarint(selfStake)
        w.writeVarint(UInt64(durationEpochs))
        w.writeVarint(UInt64(rewardShareBps))
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        name = try r.readLengthPrefixed(cap: Caps.candidateNameBytes)
        guard !name.isEmpty, name.allSatisfy(CandidateRegister.isNameByte) else { throw .invalidValue(.text) }
        operatorKey = try r.readBytes32()
        rewardAddress = try r.read()
        selfStake = try r.readVarint()
        durationEpochs = try r.readVarint32()
        let share = try r.readVarint()
        guard share <= 10_000 else { throw .invalidValue(.range) }
        rewardShareBps = UInt16(share)
    }

    /// Names are lowercase ASCII letters, digits and '-', so they render the same everywhere.
    public static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D
    }
}

/// Changes a candidate's operator key, reward address or reward share; absent fields stay as they are.
public struct CandidateUpdate: Equatable, Sendable, CanonicalCodable {
    public var operatorKey: Bytes32?
    public var rewardAddress: Address?
    public var rewardShareBps: UInt16?

    public init(operatorKey: Bytes32? = nil, rewardAddress: Address? = nil, rewardShareBps: UInt16? = nil) {
        self.operatorKey = operatorKey
        self.rewardAddress = rewardAddress
        self.rewardShareBps = rewardShareBps
    }

    public func encode(to w: inout ByteWriter) {
        w.write(optional: operatorKey)
        w.write(optional: rewardAddress)
        w.writeBool(rewardShareBps != nil)
        if let s = rewardShareBps { w.writeVarint(UInt64(s)) }
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        operatorKey = try r.readOptional()
        rewardAddress = try r.readOptional()
        if try r.readBool() {
            let share = try r.readVarint()
            guard share <= 10_000 else { throw .invalidValue(.range) }
            rewardShareBps = UInt16(share)
        } else {
            rewardShareBps = nil
        }
        guard operatorKey != nil || rewardAddress != nil || rewardShareBps != nil else { throw .invalidValue(.range) }
    }
}

/// Opens a stake bucket delegated to `candidate`, locked for `durationEpochs`.
public struct Stake: Equatable, Sendable, CanonicalCodable {
    public var candidate: Address
    public var amount: UInt64
    public var durationEpochs: UInt32
    /// When set, the lock period restarts every epoch (the bucket keeps its bonus until unstaked).
    public var autoStake: Bool

    public init(candidate: Address, amount: UInt64, durationEpochs: UInt32, autoStake: Bool) {
        self.candidate = candidate
        self.amount = amount
        self.durationEpochs = durationEpochs
        self.autoStake = autoStake
    }

    public func encode(to w: inout ByteWriter) {
        w.write(candidate)
        w.writeVarint(amount)
        w.writeVarint(UInt64(durationEpochs))
        w.writeBool(autoStake)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        candidate = try r.read()
        amount = try r.readVarint()
        guard amount > 0 else { throw .invalidValue(.amount) }
        durationEpochs = try r.readVarint32()
        autoStake = try r.readBool()
    }
}

/// Changes the duration or auto-stake flag of an existing bucket (and so its vote weight).
public struct Restake: Equatable, Sendable, CanonicalCodable {
    public var bucket: UInt64
    public var durationEpochs: UInt32
    public var autoStake: Bool

    public init(bucket: UInt64, durationEpochs: UInt32, autoStake: Bool) {
        self.bucket = bucket
        self.durationEpochs = durationEpochs
        self.autoStake = autoStake
    }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(bucket)
        w.writeVarint(UInt64(durationEpochs))
        w.writeBool(autoStake)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        bucket = try r.readVarint()
        durationEpochs = try r.readVarint32()
        autoStake = try r.readBool()
    }
}

/// Names one stake bucket: used by unstake (start unbonding) and withdraw (after unbonding).
public struct BucketAction: Equatable, Sendable, CanonicalCodable {
    public var bucket: UInt64

    public init(bucket: UInt64) { self.bucket = bucket }

    public func encode(to w: inout ByteWriter) { w.writeVarint(bucket) }
    public init(from r: inout ByteReader) throws(CodecError) { bucket = try r.readVarint() }
}

/// Publishes an X.509 DER certificate (device or operational) on chain.
public struct CertificatePublish: Equatable, Sendable, CanonicalCodable {
    public var der: [UInt8]

    public init(der: [UInt8]) { self.der = der }

    public func encode(to w: inout ByteWriter) { w.writeLengthPrefixed(der) }

    public init(from r: inout ByteReader) throws(CodecError) {
        der = try r.readLengthPrefixed(cap: Caps.certificateBytes)
        guard !der.isEmpty else { throw .invalidValue(.range) }
    }
}

/// Revokes a published certificate; only an ancestor in its chain may do so (checked at execution).
public struct CertificateRevoke: Equatable, Sendable, CanonicalCodable {
    public var certificateID: Bytes32
    public var reason: UInt8

    public init(certificateID: Bytes32, reason: UInt8) {
        self.certificateID = certificateID
        self.reason = reason
    }

    public func encode(to w: inout ByteWriter) {
        w.write(certificateID)
        w.write(reason)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        certificateID = try r.readBytes32()
        reason = try r.readU8()
    }
}

/// Locks `amount` for `recipient` until the preimage of `hashLock` is shown or `expiryHeight` passes.
public struct HTLCLock: Equatable, Sendable, CanonicalCodable {
    public var recipient: Address
    public var amount: UInt64
    /// SHA-256 of the secret preimage.
    public var hashLock: Bytes32
    public var expiryHeight: UInt64

    public init(recipient: Address, amount: UInt64, hashLock: Bytes32, expiryHeight: UInt64) {
        self.recipient = recipient
        self.amount = amount
        self.hashLock = hashLock
        self.expiryHeight = expiryHeight
    }

    public func encode(to w: inout ByteWriter) {
        w.write(recipient)
        w.writeVarint(amount)
        w.write(hashLock)
        w.writeVarint(expiryHeight)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        recipient = try r.read()
        amount = try r.readVarint()
        guard amount > 0 else { throw .invalidValue(.amount) }
        hashLock = try r.readBytes32()
        expiryHeight = try r.readVarint()
    }
}

/// Claims an HTLC with its preimage.
public struct HTLCClaim: Equatable, Sendable, CanonicalCodable {
    public var lockID: Bytes32
    public var preimage: Bytes32

    public init(lockID: Bytes32, preimage: Bytes32) {
        self.lockID = lockID
        self.preimage = preimage
    }

    public func encode(to w: inout ByteWriter) {
        w.write(lockID)
        w.write(preimage)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        lockID = try r.readBytes32()
        preimage = try r.readBytes32()
    }
}

/// Returns an expired HTLC to its sender.
public struct HTLCRefund: Equatable, Sendable, CanonicalCodable {
    public var lockID: Bytes32

    public init(lockID: Bytes32) { self.lockID = lockID }

    public func encode(to w: inout ByteWriter) { w.write(lockID) }
    public init(from r: inout ByteReader) throws(CodecError) { lockID = try r.readBytes32() }
}

/// Opens a one-way payment channel: the sender locks `deposit` for `recipient` until `expiryHeight`
/// (``PaymentChannel``). The channel's id is this transaction's id.
public struct ChannelOpen: Equatable, Sendable, CanonicalCodable {
    public var recipient: Address
    public var deposit: UInt64
    public var expiryHeight: UInt64

    public init(recipient: Address, deposit: UInt64, expiryHeight: UInt64) {
        self.recipient = recipient
        self.deposit = deposit
        self.expiryHeight = expiryHeight
    }

    public func encode(to w: inout ByteWriter) {
        w.write(recipient)
        w.writeVarint(deposit)
        w.writeVarint(expiryHeight)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        recipient = try r.read()
        deposit = try r.readVarint()
        guard deposit > 0 else { throw .invalidValue(.amount) }
        expiryHeight = try r.readVarint()
    }
}

/// The recipient closes a channel with the best update it holds and the preimages of the conditions it can open.
public struct ChannelClose: Equatable, Sendable, CanonicalCodable {
    public var update: ChannelUpdate
    public var preimages: [Bytes32]

    public init(update: ChannelUpdate, preimages: [Bytes32] = []) {
        self.update = update
        self.preimages = preimages
    }

    public func encode(to w: inout ByteWriter) {
        w.write(update)
        w.write(list: preimages)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        update = try r.read()
        preimages = try r.readList(cap: Caps.channelConditions)
    }
}

/// Returns an expired, unclosed channel's deposit to its sender.
public struct ChannelRefund: Equatable, Sendable, CanonicalCodable {
    public var channelID: Bytes32

    public init(channelID: Bytes32) { self.channelID = channelID }

    public func encode(to w: inout ByteWriter) { w.write(channelID) }
    public init(from r: inout ByteReader) throws(CodecError) { channelID = try r.readBytes32() }
}

/// A renter locks a deposit and a rental fee naming a device (a lock); the device opens only after it has
/// verified this escrow's inclusion and finality itself.
public struct EscrowOpen: Equatable, Sendable, CanonicalCodable {
    public var device: Address
    public var owner: Address
    public var deposit: UInt64
    public var rentalFee: UInt64
    /// The most damages the device may keep from the deposit at the return: a term the renter accepts here.
    public var maxDamages: UInt64
    public var expiryHeight: UInt64

    /// `maxDamages` defaults to the whole deposit.
    public init(
        device: Address, owner: Address, deposit: UInt64, rentalFee: UInt64, maxDamages: UInt64? = nil,
        expiryHeight: UInt64
    ) {
        self.device = device
        self.owner = owner
        self.deposit = deposit
        self.rentalFee = rentalFee
        self.maxDamages = maxDamages ?? deposit
        self.expiryHeight = expiryHeight
    }

    public func encode(to w: inout ByteWriter) {
        w.write(device)
        w.write(owner)
        w.writeVarint(deposit)
        w.writeVarint(rentalFee)
        w.writeVarint(maxDamages)
        w.writeVarint(expiryHeight)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        device = try r.read()
        owner = try r.read()
        deposit = try r.readVarint()
        rentalFee = try r.readVarint()
        guard !deposit.addingReportingOverflow(rentalFee).overflow else { throw .invalidValue(.amount) }
        maxDamages = try r.readVarint()
        guard maxDamages <= deposit else { throw .invalidValue(.amount) }
        expiryHeight = try r.readVarint()
    }
}

/// Closes an escrow with the device's signature over (escrow id, damages): the device, not a company,
/// attests the return. The device's x-only key travels with it (the escrow names only the device's address, and
/// BIP340 has no key recovery). Anyone may submit the close; after the expiry height the renter may close
/// without the device (key and signature are then not checked, damages must be zero).
public struct EscrowClose: Equatable, Sendable, CanonicalCodable {
    public var escrowID: Bytes32
    public var damages: UInt64
    public var deviceKey: Bytes32
    public var deviceSignature: Bytes64

    public init(escrowID: Bytes32, damages: UInt64, deviceKey: Bytes32, deviceSignature: Bytes64) {
        self.escrowID = escrowID
        self.damages = damages
        self.deviceKey = deviceKey
        self.deviceSignature = deviceSignature
    }

    /// The close a device signs with its key.
    /// `genesis`: the chain's genesis block hash, as in ``TransactionBody/genesis``.
    public init(genesis: Bytes32, escrowID: Bytes32, damages: UInt64, device: PrivateKey, auxRandom: Bytes32 = .zero) {
        self.init(
            escrowID: escrowID, damages: damages, deviceKey: device.xOnlyPublicKey.bytes,
            deviceSignature: device.signSchnorr(
                Self.signingHash(genesis: genesis, escrowID: escrowID, damages: damages), auxRandom: auxRandom))
    }

    /// What the device signs: bound to the chain's genesis so a close cannot be replayed on another chain.
    public static func signingHash(genesis: Bytes32, escrowID: Bytes32, damages: UInt64) -> Bytes32 {
        var w = ByteWriter()
        w.write(genesis)
        w.write(escrowID)
        w.writeVarint(damages)
        return Domain.escrowClose.hash(w.bytes)
    }

    public func encode(to w: inout ByteWriter) {
        w.write(escrowID)
        w.writeVarint(damages)
        w.write(deviceKey)
        w.write(deviceSignature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        escrowID = try r.readBytes32()
        damages = try r.readVarint()
        deviceKey = try r.readBytes32()
        deviceSignature = try r.readBytes64()
    }
}

/// Two votes by one member for different blocks at the same height, round and step: proof of equivocation.
public struct DoubleSignEvidence: Equatable, Sendable, CanonicalCodable {
    public var first: Vote
    public var second: Vote

    public init(first: Vote, second: Vote) {
        self.first = first
        self.second = second
    }

    /// Structural check only; signatures are checked where the committee is known.
    public var isConflicting: Bool {
        first.voter == second.voter && first.chainID == second.chainID && first.height == second.height
            && first.round == second.round && first.step == second.step && first.blockHash != second.blockHash
    }

    public func encode(to w: inout ByteWriter) {
        w.write(first)
        w.write(second)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        first = try r.read()
        second = try r.read()
        // Canonical order (lower block hash first) so the same evidence has one encoding and one id.
        guard isConflicting, first.blockHash < second.blockHash else { throw .invalidValue(.ordering) }
    }
}
