import Foundation

/// The MQTT client id of a gateway's bridge, kept in its data directory.
///
/// The broker keeps one session per client id (our QoS 1 subscriptions and the submits queued for us while we
/// are away), and a second connection with the same id takes that session over. So the id must be stable
/// across restarts, differ between gateways sharing a broker (a fixed id made them disconnect each other in
/// turn), and be unguessable (a client that reused a known id took the session and its 20 acknowledged submits
/// were never seen again). A random id written once to the data directory is all three.
public enum MqttClientID {
    public static let fileName = "mqtt-client-id"
    static let prefix = "amars-gateway-"

    /// The id stored in `dataDirectory`, created on first use.
    public static func persistent(in dataDirectory: String) throws -> String {
        let path = "\(dataDirectory)/\(fileName)"
        if let stored = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = stored.trimmingCharacters(in: .whitespacesAndNewlines)
            guard isValid(id) else {
                throw MqttClientIDError(
                    path: path, reason: "is not an id this gateway wrote; delete it to get a new one")
            }
            return id
        }
        var rng = SystemRandomNumberGenerator()
        let id = prefix + String(format: "%016llx%016llx", rng.next() as UInt64, rng.next() as UInt64)
        do { try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw MqttClientIDError(path: path, reason: "cannot be written: \(error.localizedDescription)")
        }
        return id
    }

    /// Our prefix and 32 lowercase hex digits: nothing an operator typed by mistake, no bytes MQTT refuses.
    static func isValid(_ id: String) -> Bool {
        guard id.hasPrefix(prefix) else { return false }
        let digits = id.dropFirst(prefix.count)
        return digits.count == 32 && digits.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

public struct MqttClientIDError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "the MQTT client id file \(path) \(reason)" }
}
