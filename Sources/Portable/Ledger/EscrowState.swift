import AmarsCodec
import AmarsCrypto

/// A rental escrow as the state tree holds it, under ``StateNamespace/escrow`` keyed by the id of the
/// transaction that opened it (``StateNamespace/escrowKey(_:)``).
///
/// The object stays after the escrow ends, with its outcome, so a device (the lock) can prove with one state
/// proof both that an escrow naming it is open (it may open) and, later, that it was closed (it must lock).
/// While open it holds the deposit and the rental fee, which no account holds meanwhile.
public struct EscrowState: Equatable, Sendable, CanonicalCodable {
    public enum Status: UInt8, Sendable {
        /// Deposit and fee held: the device may serve the renter until `expiryHeight`.
        case open = 0
        /// Closed with the device's signature: fee and damages to the owner, the rest of the deposit back.
        case closed = 1
        /// Closed by the renter after `expiryHeight` without the device (the rule before ``kept``; no longer
        /// produced, still read).
        case expired = 2
        /// Closed by the owner after the return deadline (``returnDeadline``) with no return attested by the device:
        /// the item is deemed kept, and deposit and fee go to the owner (``damages`` is the whole deposit).
        case kept = 3
    }

    public var renter: Address
    public var device: Address
    public var owner: Address
    public var deposit: UInt64
    public var rentalFee: UInt64
    /// The most damages the device's close may keep from the deposit, fixed when the renter opened the escrow.
    public var maxDamages: UInt64
    /// The rental's end: the lock opens for the renter up to this height (a late return is still attested up
    /// to ``returnDeadline``).
    public var expiryHeight: UInt64
    public var status: Status
    /// What the device's close kept from the deposit for the owner (zero unless closed).
    public var damages: UInt64

    public init(
        renter: Address, device: Address, owner: Address, deposit: UInt64, rentalFee: UInt64,
        maxDamages: UInt64? = nil, expiryHeight: UInt64, status: Status = .open, damages: UInt64 = 0
    ) {
        self.renter = renter
        self.device = device
        self.owner = owner
        self.deposit = deposit
        self.rentalFee = rentalFee
        self.maxDamages = maxDamages ?? deposit
        self.expiryHeight = expiryHeight
        self.status = status
        self.damages = damages
    }

    /// Blocks after the expiry height in which the device may still attest a late return.
    public static let returnGraceBlocks: UInt64 = 20

    /// The last height at which the device's signed return closes the escrow; after it, the owner may close it as
    /// kept.
    public var returnDeadline: UInt64 {
        let (deadline, overflow) = expiryHeight.addingReportingOverflow(Self.returnGraceBlocks)
        return overflow ? .max : deadline
    }

    /// Tokens the escrow holds: deposit and fee while open, nothing once it ended.
    public var held: UInt64 { status == .open ? deposit &+ rentalFee : 0 }

    public func encode(to w: inout ByteWriter) {
        w.write(renter)
        w.write(device)
        w.write(owner)
        w.writeVarint(deposit)
        w.writeVarint(rentalFee)
        w.writeVarint(maxDamages)
        w.writeVarint(expiryHeight)
        w.write(status.rawValue)
        w.writeVarint(damages)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        renter = try r.read()
        device = try r.read()
        owner = try r.read()
        deposit = try r.readVarint()
        rentalFee = try r.readVarint()
        guard !deposit.addingReportingOverflow(rentalFee).overflow else { throw .invalidValue(.amount) }
        maxDamages = try r.readVarint()
        guard maxDamages <= deposit else { throw .invalidValue(.amount) }
        expiryHeight = try r.readVarint()
        let raw = try r.readU8()
        guard let status = Status(rawValue: raw) else { throw .unknownTag(raw) }
        self.status = status
        damages = try r.readVarint()
        guard damages <= deposit else { throw .invalidValue(.amount) }
    }

    public var valueHash: Bytes32 { Domain.stateValue.hash(encoded) }
}

extension StateNamespace {
    /// The tree key of the escrow opened by transaction `id`.
    public static func escrowKey(_ id: Bytes32) -> Bytes32 { StateNamespace.escrow.key(id.bytes) }
}

/// Why an escrow transaction was refused; each case names the rule broken.
public enum EscrowError: Error, Equatable, Sendable {
    /// An escrow holding nothing, or naming its renter as owner or device.
    case emptyEscrow
    case sameParty
    /// The expiry height is not after the block the escrow would open in.
    case expiryPassed(height: UInt64)
    case unknownEscrow
    case notOpen
    /// The close's device key is not the key of the escrow's device address.
    case wrongDevice
    case badDeviceSignature
    case damagesOverDeposit(deposit: UInt64)
    /// The device's close claims more damages than the renter accepted when it opened the escrow.
    case damagesOverAgreed(maximum: UInt64)
    /// After the return deadline only the owner may close (the item deemed kept).
    case notOwner
    /// Up to the return deadline only the device's signed return closes the escrow.
    case returnWindowOpen(until: UInt64)

    public var code: StaticString {
        switch self {
        case .emptyEscrow: "emptyEscrow"
        case .sameParty: "sameParty"
        case .expiryPassed: "expiryPassed"
        case .unknownEscrow: "unknownEscrow"
        case .notOpen: "escrowNotOpen"
        case .wrongDevice: "wrongDevice"
        case .badDeviceSignature: "badDeviceSignature"
        case .damagesOverDeposit: "damagesOverDeposit"
        case .damagesOverAgreed: "damagesOverAgreed"
        case .notOwner: "notOwner"
        case .returnWindowOpen: "returnWindowOpen"
        }
    }
}
