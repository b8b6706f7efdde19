import Foundation

/// The gateway's login at the broker: the one account allowed to publish the chain's topics (head, checkpoints,
/// receipts, commands) and to read every device's submissions. Devices connect without one and the broker's ACL
/// lets them only read the chain's public topics and submit signed transactions (see ``BrokerProcess``).
///
/// Kept in a file of one line, `USERNAME PASSWORD`, readable by its owner only: a file a person or a script can
/// hand to `amarsd` without putting the password on a command line.
public struct MqttCredentials: Equatable, Sendable {
    public var username: String
    public var password: String

    /// The gateway's username in the broker's ACL.
    public static let gatewayUsername = "amars-gateway"

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public enum LoadError: Error, Equatable, CustomStringConvertible {
        case unreadable(String)
        case malformed(String)

        public var description: String {
            switch self {
            case .unreadable(let path): "cannot read MQTT credentials from \(path)"
            case .malformed(let path): "\(path) must hold one line: USERNAME PASSWORD (printable, no spaces in either)"
            }
        }
    }

    /// Both words printable ASCII without spaces, at most 128 bytes each: what mosquitto_passwd and a
    /// CONNECT packet take without surprises.
    public static func isValidWord(_ word: Substring) -> Bool {
        !word.isEmpty && word.utf8.count <= 128 && word.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    public static func load(path: String) throws(LoadError) -> MqttCredentials {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1024 else {
            throw .unreadable(path)
        }
        let words = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count == 2, words.allSatisfy(isValidWord) else { throw .malformed(path) }
        return MqttCredentials(username: String(words[0]), password: String(words[1]))
    }

    /// A fresh gateway login with 128 random bits of password.
    public static func generate(username: String = gatewayUsername) -> MqttCredentials {
        var rng = SystemRandomNumberGenerator()
        let password = (0..<2).map { _ in String(rng.next() as UInt64, radix: 16) }.joined(separator: "-")
        return MqttCredentials(username: username, password: password)
    }

    /// Writes the one-line file, readable by its owner only.
    public func write(path: String) throws {
        let created = FileManager.default.createFile(
            atPath: path, contents: Data("\(username) \(password)\n".utf8), attributes: [.posixPermissions: 0o600])
        guard created else { throw LoadError.unreadable(path) }
    }
}
