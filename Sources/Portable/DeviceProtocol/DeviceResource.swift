/// The resources of the device API: path, method, query arguments, whether they can be observed. One table for
/// the gateway's handlers, the firmware and the host clients, so neither end can drift from the other.
public enum DeviceResource: Int, CaseIterable, Sendable {
    case head
    case checkpoints
    case headers
    case txProof
    case accountProof
    case certificate
    case transaction
    case receipt
    case inbox
    case escrowProof
    case skip
    case reanchor
    case notifications
    case recipientFilter
    case commands
    case htlcProof
    case channelProof
    case channelMessages
    case channelMessage

    public var path: StaticString {
        switch self {
        case .head: DeviceResources.head
        case .checkpoints: DeviceResources.checkpoints
        case .headers: DeviceResources.headers
        case .txProof: DeviceResources.txProof
        case .accountProof: DeviceResources.accountProof
        case .certificate: DeviceResources.certificate
        case .transaction: DeviceResources.transaction
        case .receipt: DeviceResources.receipt
        case .inbox: DeviceResources.inbox
        case .escrowProof: DeviceResources.escrowProof
        case .skip: DeviceResources.skip
        case .reanchor: DeviceResources.reanchor
        case .notifications: DeviceResources.notifications
        case .recipientFilter: DeviceResources.recipientFilter
        case .commands: DeviceResources.commands
        case .htlcProof: DeviceResources.htlcProof
        case .channelProof: DeviceResources.channelProof
        case .channelMessages: DeviceResources.channelMessages
        case .channelMessage: DeviceResources.channelMessage
        }
    }

    /// The one method each resource implements; any other gets 4.05.
    public var method: CoAPCode { self == .transaction || self == .channelMessage ? .post : .get }

    /// Only the head changes under a device that waits; everything else is asked for when needed.
    public var isObservable: Bool { self == .head }

    /// The Uri-Query keys the resource takes (`key=value`); any other key is a 4.00.
    public var queryKeys: [StaticString] {
        switch self {
        case .head, .transaction, .reanchor, .channelMessage: []
        case .checkpoints: ["from", "limit"]
        case .headers: ["h"]
        case .txProof, .receipt, .escrowProof, .certificate, .htlcProof, .channelProof: ["id"]
        case .accountProof: ["a"]
        case .inbox: ["a", "from", "pos"]
        case .notifications: ["a", "i"]
        case .recipientFilter: ["e"]
        case .skip: ["from", "to"]
        case .commands: ["a", "after"]
        case .channelMessages: ["id", "after", "k", "sig"]
        }
    }

    /// Answers carry the chain's canonical encoding (content-format 42); errors carry a short ASCII diagnostic.
    public var contentFormat: UInt16 { ContentFormat.chainPayload }
}
