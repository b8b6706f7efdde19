import DeviceProtocol

/// Builds requests with DeviceProtocol's codec.
public enum DeviceRequests {
    nonisolated(unsafe) public static var nextID: UInt16 = 0x1000

    public static func get(
        _ path: StaticString, query: [String] = [], type: CoAPMessageType = .confirmable, token: [UInt8]? = nil
    ) -> CoAPMessage {
        request(.get, path, query: query, type: type, token: token)
    }

    public static func request(
        _ code: CoAPCode, _ path: StaticString, query: [String] = [], type: CoAPMessageType = .confirmable,
        token: [UInt8]? = nil, payload: [UInt8] = []
    ) -> CoAPMessage {
        nextID &+= 1
        var m = CoAPMessage(
            type: type, code: code, messageID: nextID,
            token: token ?? [UInt8(truncatingIfNeeded: nextID >> 8), UInt8(truncatingIfNeeded: nextID), 0xC0])
        m.setUriPath(path)
        m.uriQuery = query.map { Array($0.utf8) }
        m.payload = payload
        return m
    }
}
