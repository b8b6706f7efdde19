import AmarsCodec
import Foundation
import Ledger

extension NodeClient {
    /// Posts a signed device command (its encoding) at the gateway's command door, which queues it for the device
    /// it names once its signature and certificate check out; returns the sequence it was given there. A refusal
    /// is ``NodeClientError/api(status:code:message:)`` with the door's reason (`certificateNotValid`, say).
    public func postCommand(_ encoded: [UInt8]) throws(NodeClientError) -> UInt64 {
        let response: HTTPResponse
        do {
            response = try http.post("/v1/commands", body: encoded, contentType: "application/octet-stream")
        } catch { throw .transport(error) }
        return try JSONObject(response: response).uint("sequence")
    }
}
