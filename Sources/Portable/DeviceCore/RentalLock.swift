import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient

/// A rental lock (a shared bike, a locker): what it decides from an escrow the session proved, and the return it
/// signs. It acts only on a ``VerifiedEscrow``, so a gateway that lies about an escrow gets a proof failure
/// before this is asked, and the same rules run on a board, in `amars device escrow` and in the simulator.
public struct RentalLock: Sendable {
    public let key: PrivateKey
    public let address: Address
    /// The chain's genesis block hash: the return is signed for this chain only.
    public let genesis: Bytes32

    public init(key: PrivateKey, genesis: Bytes32) {
        self.key = key
        address = Address(publicKey: key.xOnlyPublicKey)
        self.genesis = genesis
    }

    /// A rental the lock opened for.
    public struct Rental: Equatable, Sendable {
        public let escrowID: Bytes32
        public let renter: Address
        /// The last block the lock opens at.
        public let until: UInt64
    }

    /// Opens only for an escrow that exists, names this lock, is still open, and has not expired at the proven
    /// block; anything else keeps the lock shut, with the reason.
    public func admit(_ escrow: VerifiedEscrow) throws(RentalRefusal) -> Rental {
        try Self.admit(escrow, for: address)
    }

    /// ``admit(_:)`` for the lock at `device`, without its key: what `amars device escrow --device` shows.
    public static func admit(_ escrow: VerifiedEscrow, for device: Address) throws(RentalRefusal) -> Rental {
        let state = try named(escrow, device)
        guard escrow.header.height <= state.expiryHeight else { throw .expired(at: state.expiryHeight) }
        return Rental(escrowID: escrow.id, renter: state.renter, until: state.expiryHeight)
    }

    /// The lock's signed word that the item came back, keeping `damages` of the deposit for the owner. Refused
    /// past the return deadline (the owner's `kept` close then applies) and above the damages the renter agreed
    /// to, both of which the chain would refuse too.
    public func attestReturn(_ escrow: VerifiedEscrow, damages: UInt64, auxRandom: Bytes32 = .zero)
        throws(RentalRefusal) -> EscrowClose
    {
        let state = try Self.named(escrow, address)
        guard escrow.header.height < state.returnDeadline else { throw .pastReturnDeadline(state.returnDeadline) }
        guard damages <= state.maxDamages else { throw .damagesOverAgreed(maximum: state.maxDamages) }
        return EscrowClose(genesis: genesis, escrowID: escrow.id, damages: damages, device: key, auxRandom: auxRandom)
    }

    private static func named(_ escrow: VerifiedEscrow, _ device: Address) throws(RentalRefusal) -> EscrowState {
        guard let state = escrow.state else { throw .noSuchEscrow }
        guard state.device == device else { throw .anotherDevice }
        guard state.status == .open else { throw .notOpen }
        return state
    }
}

/// Why a lock stays shut (or will not sign a return).
public enum RentalRefusal: Error, Equatable, Sendable {
    /// The state proves no escrow has this id.
    case noSuchEscrow
    /// The escrow pays for another device.
    case anotherDevice
    /// Already closed (returned, or kept by the owner).
    case notOpen
    /// The rental ended after block `at`.
    case expired(at: UInt64)
    /// Past the last block a return may be attested at: the item is deemed kept.
    case pastReturnDeadline(UInt64)
    /// More damages than the renter accepted when opening.
    case damagesOverAgreed(maximum: UInt64)

    /// One short name per case, written once (a board prints it as it is).
    public var name: StaticString {
        switch self {
        case .noSuchEscrow: "no such escrow"
        case .anotherDevice: "escrow for another device"
        case .notOpen: "escrow not open"
        case .expired: "rental expired"
        case .pastReturnDeadline: "past the return deadline"
        case .damagesOverAgreed: "damages over the agreed maximum"
        }
    }
}
