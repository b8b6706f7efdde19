import AmarsCodec
import Foundation
import Ledger

extension NodeClient {
    /// Posts a signed device command (its encoding) at the gateway's command door, which queues it for the device
    /// it names once its signature and certificate check out; returns the sequence it was given there. A refusal
    /// is ``NodeClientError/api(status:code:message:)`` with the door's reason (`certificateNotValid`, say).
    public func postCommand(_ encoded: [UInt8]) throws(NodeClientError) -> UInt64 {
        try postToDoor("/v1/commands", encoded)
    }

    /// Posts a channel message (a `ChannelMessage` encoding: a signed update or a relay message) at the gateway's
    /// channel door, which keeps it for the channel's recipient once the channel is open on chain and the update
    /// its sender's; returns the sequence it was given there. A refusal names the door's reason
    /// (`badUpdateSignature`, `channelNotOpen`, ...).
    public func postChannelMessage(_ encoded: [UInt8]) throws(NodeClientError) -> UInt64 {
        try postToDoor("/v1/channel-messages", encoded)
    }

    private func postToDoor(_ path: String, _ encoded: [UInt8]) throws(NodeClientError) -> UInt64 {
        let response: HTTPResponse
        do {
            response = try http.post(path, body: encoded, contentType: "application/octet-stream")
        } catch { throw .transport(error) }
        return try JSONObject(response: response).uint("sequence")
    }
}
