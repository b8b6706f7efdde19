import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import Ledger

/// A smart-home bulb: it obeys a command only from a controller it was paired with, whose certificate the
/// session proved valid (unexpired, unrevoked, its chain unbroken) against chain state at the time of the
/// command, signed by that certificate's key, for this bulb, with a counter past every command it obeyed. The
/// same rules run on a board, in the simulator and in tests; revoking a controller on chain takes effect at the
/// next command.
public struct SmartBulb: Sendable {
    public let address: Address
    /// The chain's genesis block hash: a command is signed for this chain only.
    public let genesis: Bytes32
    /// Certificate ids of the controllers the bulb was paired with at installation.
    public let controllers: [Bytes32]
    /// The highest counter obeyed; a command must name a higher one.
    public private(set) var lastCounter: UInt64 = 0
    public private(set) var light = Light(on: false, level: 100)

    public struct Light: Equatable, Sendable {
        public var on: Bool
        /// Brightness in percent.
        public var level: UInt8

        public init(on: Bool, level: UInt8) {
            self.on = on
            self.level = level
        }
    }

    public init(address: Address, genesis: Bytes32, controllers: [Bytes32]) {
        self.address = address
        self.genesis = genesis
        self.controllers = controllers
    }

    /// A command whose signature the bulb checked: what it proves the certificate for. Only the bulb makes one,
    /// so obeying it does not verify the signature a second time (a Schnorr check is the costly part on a board).
    public struct SignedByItsKey: Sendable {
        public let command: BulbCommand
        fileprivate init(_ command: BulbCommand) { self.command = command }
        /// The certificate the session must prove.
        public var certificateID: Bytes32 { command.certificateID }
    }

    /// The checks that need no proof, done first so a stranger's command costs the bulb no round trip.
    public func check(_ command: BulbCommand) throws(BulbRefusal) -> SignedByItsKey {
        try checkUnsigned(command)
        guard command.isSigned(genesis: genesis) else { throw .badSignature }
        return SignedByItsKey(command)
    }

    /// What may have changed since the signature was checked (another command obeyed meanwhile) is checked again.
    private func checkUnsigned(_ command: BulbCommand) throws(BulbRefusal) {
        guard command.bulb == address else { throw .anotherDevice }
        guard command.counter > lastCounter else { throw .replayed(last: lastCounter) }
        guard controllers.contains(command.certificateID) else { throw .unpairedController }
        if case .dim(let level) = command.action, level > 100 { throw .levelOutOfRange }
    }

    /// ``check(_:)`` and ``obey(_:certificate:)-swift.method`` in one.
    public mutating func obey(_ command: BulbCommand, certificate: VerifiedCertificate) throws(BulbRefusal) -> Light {
        try obey(try check(command), certificate: certificate)
    }

    /// Obeys the checked command when `certificate` (proven by the session) is its controller's, valid, and
    /// certifies the key that signed it; returns the light as it is now.
    public mutating func obey(_ checked: SignedByItsKey, certificate: VerifiedCertificate) throws(BulbRefusal)
        -> Light
    {
        let command = checked.command
        try checkUnsigned(command)
        guard certificate.id == command.certificateID else { throw .unpairedController }
        guard let standing = certificate.standing else { throw .controllerUnknown }
        guard standing == .valid else { throw .controllerNotValid(standing) }
        guard certificate.account == Address(keyBytes: command.controllerKey) else { throw .keyNotCertified }
        lastCounter = command.counter
        switch command.action {
        case .on: light.on = true
        case .off: light.on = false
        case .dim(let level):
            light.on = level > 0
            light.level = level
        }
        return light
    }
}

/// A command to one bulb, signed by a controller's certified key.
public struct BulbCommand: Equatable, Sendable, CanonicalCodable {
    public enum Action: Equatable, Sendable {
        case on
        case off
        /// Brightness 0 to 100 percent.
        case dim(UInt8)
    }

    public var bulb: Address
    public var counter: UInt64
    public var action: Action
    /// The controller's certificate, which the bulb proves against chain state.
    public var certificateID: Bytes32
    public var controllerKey: Bytes32
    public var signature: Bytes64

    /// A command signed with the controller's key.
    public init(
        bulb: Address, counter: UInt64, action: Action, certificateID: Bytes32, controller: PrivateKey,
        genesis: Bytes32, auxRandom: Bytes32 = .zero
    ) {
        self.bulb = bulb
        self.counter = counter
        self.action = action
        self.certificateID = certificateID
        controllerKey = controller.xOnlyPublicKey.bytes
        signature = Bytes64([UInt8](repeating: 0, count: 64))!
        signature = controller.signSchnorr(signingHash(genesis: genesis), auxRandom: auxRandom)
    }

    static let domain = TaggedHash(tag: "AmarsBulbCommand")

    /// Whether the controller key it names signed it for this chain: the bulb's first check and the door's.
    public func isSigned(genesis: Bytes32) -> Bool {
        guard let key = try? XOnlyPublicKey(bytes: controllerKey) else { return false }
        return key.verifySchnorr(signature, message: signingHash(genesis: genesis))
    }

    /// What the controller signs: everything but the signature, bound to the chain's genesis.
    public func signingHash(genesis: Bytes32) -> Bytes32 {
        var w = ByteWriter()
        w.write(genesis)
        encodeUnsigned(to: &w)
        return Self.domain.hash(w.bytes)
    }

    private func encodeUnsigned(to w: inout ByteWriter) {
        w.write(bulb)
        w.writeVarint(counter)
        switch action {
        case .on: w.write(UInt8(1))
        case .off: w.write(UInt8(0))
        case .dim(let level):
            w.write(UInt8(2))
            w.write(level)
        }
        w.write(certificateID)
        w.write(controllerKey)
    }

    public func encode(to w: inout ByteWriter) {
        encodeUnsigned(to: &w)
        w.write(signature)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        bulb = try r.read()
        counter = try r.readVarint()
        switch try r.readU8() {
        case 0: action = .off
        case 1: action = .on
        case 2: action = .dim(try r.readU8())
        case let tag: throw .unknownTag(tag)
        }
        certificateID = try r.readBytes32()
        controllerKey = try r.readBytes32()
        signature = try r.readBytes64()
    }
}

/// Why a bulb ignored a command.
public enum BulbRefusal: Error, Equatable, Sendable {
    /// The command names another bulb.
    case anotherDevice
    /// Its counter is not past the last command obeyed.
    case replayed(last: UInt64)
    /// Not one of the controllers paired with this bulb.
    case unpairedController
    /// A dim level over 100 percent.
    case levelOutOfRange
    /// The signature does not verify under the key the command names.
    case badSignature
    /// The state proves no such certificate.
    case controllerUnknown
    /// The certificate is revoked, expired, not yet valid, or its chain is broken.
    case controllerNotValid(CertificateStanding)
    /// The certificate certifies another key than the one that signed.
    case keyNotCertified

    /// One short name per case, written once (a board prints it as it is).
    public var name: StaticString {
        switch self {
        case .anotherDevice: "command for another device"
        case .replayed: "command replayed"
        case .unpairedController: "controller not paired"
        case .levelOutOfRange: "dim level over 100"
        case .badSignature: "bad command signature"
        case .controllerUnknown: "controller certificate unknown"
        case .controllerNotValid: "controller certificate not valid"
        case .keyNotCertified: "signing key not certified"
        }
    }
}
