import AmarsCodec
import AmarsCrypto
import Chain
import DeviceProtocol
import Foundation
import Ledger
import PaymentCodes

/// The gateway's channel door: a channel's sender posts its signed off-chain messages (updates, relay messages)
/// over CoAP, MQTT or HTTP, and the recipient fetches them by channel id over CoAP (`v1/channel/messages`) or
/// HTTP, signing each read, or receives them on its own MQTT topic over the TLS listener. The door decides nothing
/// for the recipient, which checks each update against the channel it proved itself; it only refuses what a
/// stranger could use to crowd a channel's mailbox: anything but a well-formed message whose update the sender of
/// an open channel signed, within its deposit, and that is better for the recipient than the last one kept (a
/// copy of a message seen, or an older one, is refused), and a relay message whose update does not carry the
/// condition its notification is locked to. Only a channel's recipient reads its messages: a relay message names
/// the next hop's notification address, which nobody else should link to the channel's sender.
///
/// Messages live in memory, bounded per channel and in channels, for an hour: an update supersedes the ones before
/// it, so a recipient that was away longer needs only the sender's newest, which the sender posts again. When
/// every channel slot holds live messages, a new channel is refused (`channelDoorFull`) rather than another's
/// messages dropped.
public final class ChannelDoor: Sendable {
    public struct Limits: Sendable, Equatable {
        public var perChannel: Int
        public var channels: Int
        public var lifetimeSeconds: UInt64

        /// At most 4,096 × 16 × 1 KiB (64 MiB) held, and only by senders of open channels.
        public init(perChannel: Int = 16, channels: Int = 4_096, lifetimeSeconds: UInt64 = 3_600) {
            self.perChannel = perChannel
            self.channels = channels
            self.lifetimeSeconds = lifetimeSeconds
        }
    }

    /// Why the door refused a message; `code` is its name in every door's error.
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case undecodable
        case tooLarge
        case unknownChannel
        case channelNotOpen
        /// Posted on another sender's MQTT topic than the channel's sender.
        case notSender
        /// A relay message whose update carries no condition locked to its notification's hash.
        case relayNotLocked
        /// Every channel slot holds messages still waiting.
        case full
        /// The update is not this open channel's sender's within its deposit (`wrongChannel` cannot happen: the
        /// channel is the one the update names).
        case rejected(ChannelError)

        public var code: String {
            switch self {
            case .undecodable: "undecodable"
            case .tooLarge: "tooLarge"
            case .unknownChannel: "unknownChannel"
            case .channelNotOpen: "channelNotOpen"
            case .notSender: "channelNotSender"
            case .relayNotLocked: "relayNotLocked"
            case .full: "channelDoorFull"
            case .rejected(let error): "\(error.code)"
            }
        }

        public var description: String {
            switch self {
            case .undecodable: "the body is not a channel message (a signed update or a relay message)"
            case .tooLarge: "a channel message is at most \(MailboxPayload.maxChannelMessageBytes) bytes"
            case .unknownChannel: "no channel on chain has the update's channel id"
            case .channelNotOpen: "the channel is closed or refunded"
            case .notSender: "the message is posted on another sender's topic than the channel's"
            case .relayNotLocked: "the relay message's update has no condition locked to its notification's hash"
            case .full: "the channel door holds messages for as many channels as it takes; try again later"
            case .rejected(let error): "the update is refused: \(error)"
            }
        }
    }

    public let limits: Limits
    private let node: ChainNode
    private let mailbox: Mailbox<Bytes32>

    /// `clock`: wall-clock seconds, for the messages' lifetime; sequences start at `firstSequence`.
    public init(
        node: ChainNode, limits: Limits = Limits(),
        clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) },
        firstSequence: UInt64 = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    ) {
        self.node = node
        self.limits = limits
        mailbox = Mailbox(
            limits: .init(
                perKey: limits.perChannel, keys: limits.channels, lifetimeSeconds: limits.lifetimeSeconds,
                refuseWhenFull: true),
            clock: clock, firstSequence: firstSequence)
    }

    /// Checks `bytes` against the channel on chain and keeps them for its recipient; returns the channel, its
    /// recipient (whose MQTT topic the message goes to) and the sequence given. `sender`: the account whose topic
    /// the message came on (MQTT), which must be the channel's sender.
    public func post(_ bytes: [UInt8], from sender: Address? = nil) throws(Refusal) -> (
        channel: Bytes32, recipient: Address, sequence: UInt64
    ) {
        guard bytes.count <= MailboxPayload.maxChannelMessageBytes else { throw .tooLarge }
        guard let message = try? ChannelMessage(decoding: bytes) else { throw .undecodable }
        let id = message.update.channelID
        guard let channel = node.channelState(id) else { throw .unknownChannel }
        guard channel.status == .open else { throw .channelNotOpen }
        if let sender, sender != channel.sender { throw .notSender }
        do { try channel.check(message.update, channelID: id) } catch { throw .rejected(error) }
        if case .relay(let relay) = message, relay.condition == nil { throw .relayNotLocked }
        let height = node.head.height
        let sequence = try mailbox.post(bytes, to: id) { (newest: [UInt8]?) throws(Refusal) in
            // Only what is better for the recipient than the last message kept: a copy of any message, or an older
            // update however wrapped, is refused, so only the sender's new updates take a slot.
            guard let newest, let kept = try? ChannelMessage(decoding: newest) else { return }
            do throws(ChannelError) { try message.update.supersedes(kept.update, height: height) } catch {
                throw .rejected(error)
            }
        }
        guard let sequence else { throw .full }
        return (id, channel.recipient, sequence)
    }

    /// The messages of `channel` after sequence `after` for the reader whose x-only key is `readerKey`, which must
    /// be the channel's recipient's and have signed ``ChannelUpdate/readHash(genesis:channelID:after:)``.
    public func messages(for channel: Bytes32, after: UInt64, readerKey: Bytes32, signature: Bytes64)
        throws(ReadRefusal) -> [MailboxPayload.Entry]
    {
        guard let state = node.channelState(channel) else { throw .unknownChannel }
        guard Address(keyBytes: readerKey) == state.recipient else { throw .notRecipient }
        let hash = ChannelUpdate.readHash(genesis: node.genesisBlockHash, channelID: channel, after: after)
        guard let key = try? XOnlyPublicKey(bytes: readerKey), key.verifySchnorr(signature, message: hash) else {
            throw .badSignature
        }
        return messages(for: channel, after: after)
    }

    /// Why a read was refused; `code` is its name in every door's error.
    public enum ReadRefusal: Error, Equatable, Sendable {
        case unknownChannel
        case notRecipient
        case badSignature

        public var code: String {
            switch self {
            case .unknownChannel: "unknownChannel"
            case .notRecipient: "notRecipient"
            case .badSignature: "badReadSignature"
            }
        }
    }

    /// The messages of `channel` after sequence `after`, oldest first, at most `limit` (for whoever is entitled).
    func messages(for channel: Bytes32, after: UInt64, limit: Int = MailboxPayload.maxEntries)
        -> [MailboxPayload.Entry]
    {
        mailbox.entries(for: channel, after: after, limit: limit)
    }
}
