import AmarsCodec
import AmarsCrypto
import Chain
import DeviceCore
import DeviceIdentity
import DeviceProtocol
import Foundation
import Ledger

/// The gateway's command door: a controller (a phone app, `amars bulb`) posts a signed command for a device over
/// HTTP, and the device fetches what waits for it over CoAP (`v1/commands`). The door keeps no secret and decides
/// nothing for the device, which checks every command again itself; it only refuses what a stranger should not
/// be able to queue: anything but a well-formed command signed, for this chain, by the key of a certificate that
/// is valid on chain now. That keeps a stranger from crowding a device's queue out with junk.
///
/// Commands live in memory, a few per device for a few minutes: a device that was away longer asks its controller
/// again. Sequence numbers start from the wall clock in microseconds when the door opens, so they keep growing
/// across a gateway restart and a device's cursor is never ahead of them.
public final class CommandDoor: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Commands kept per device; a new one pushes the oldest out.
        public var perDevice: Int
        /// Devices with commands waiting; past it the device whose newest command is oldest is dropped.
        public var devices: Int
        /// Seconds a command waits before it is dropped.
        public var lifetimeSeconds: UInt64

        /// At most 4,096 × 16 × 256 bytes (16 MiB) held, whoever holds a valid certificate.
        public init(perDevice: Int = 16, devices: Int = 4_096, lifetimeSeconds: UInt64 = 300) {
            self.perDevice = perDevice
            self.devices = devices
            self.lifetimeSeconds = lifetimeSeconds
        }
    }

    /// Why the door refused a command; `code` is its name in the API's error.
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case undecodable
        case tooLarge
        case badSignature
        case certificateUnknown
        case certificateNotValid(CertificateStanding)
        case keyNotCertified

        public var code: String {
            switch self {
            case .undecodable: "undecodable"
            case .tooLarge: "tooLarge"
            case .badSignature: "badSignature"
            case .certificateUnknown: "certificateUnknown"
            case .certificateNotValid: "certificateNotValid"
            case .keyNotCertified: "keyNotCertified"
            }
        }

        public var description: String {
            switch self {
            case .undecodable: "the body is not a signed bulb command"
            case .tooLarge: "a command is at most \(CommandsPayload.maxCommandBytes) bytes"
            case .badSignature: "the command's signature does not verify for this chain"
            case .certificateUnknown: "no certificate on chain has the command's certificate id"
            case .certificateNotValid(let standing): "the controller's certificate is \(standing)"
            case .keyNotCertified: "the command is not signed by the key its certificate certifies"
            }
        }
    }

    public let limits: Limits
    private let node: ChainNode
    private let mailbox: Mailbox<Address>

    /// `clock`: wall-clock seconds, for the commands' lifetime; sequences start at `firstSequence`.
    public init(
        node: ChainNode, limits: Limits = Limits(),
        clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) },
        firstSequence: UInt64 = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    ) {
        self.node = node
        self.limits = limits
        mailbox = Mailbox(
            limits: .init(perKey: limits.perDevice, keys: limits.devices, lifetimeSeconds: limits.lifetimeSeconds),
            clock: clock, firstSequence: firstSequence)
    }

    /// Checks `bytes` and queues them for the device they command; returns that device and the sequence given.
    public func post(_ bytes: [UInt8]) throws(Refusal) -> (device: Address, sequence: UInt64) {
        guard bytes.count <= CommandsPayload.maxCommandBytes else { throw .tooLarge }
        guard let command = try? BulbCommand(decoding: bytes) else { throw .undecodable }
        guard command.isSigned(genesis: node.genesisBlockHash) else { throw .badSignature }
        let view = node.certificate(command.certificateID)
        guard let standing = view.standing, let leaf = view.links.first else { throw .certificateUnknown }
        guard standing == .valid else { throw .certificateNotValid(standing) }
        guard
            (try? DeviceCertificate(der: leaf.record.der))?.fields.subjectKeyID
                == Address(keyBytes: command.controllerKey)
        else { throw .keyNotCertified }
        // The command door drops the stalest device when full, so a post always gets a sequence.
        return (command.bulb, mailbox.post(bytes, to: command.bulb) ?? 0)
    }

    /// The commands for `device` after sequence `after`, oldest first, at most `limit`.
    public func commands(for device: Address, after: UInt64, limit: Int = CommandsPayload.maxEntries)
        -> [CommandsPayload.Entry]
    {
        mailbox.entries(for: device, after: after, limit: limit)
    }
}
