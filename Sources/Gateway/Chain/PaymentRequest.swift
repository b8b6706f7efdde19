import AmarsCodec
import Ledger

/// A request to be paid, as a URI a wallet opens or a QR code carries, in the form of BIP21:
///
///     amarscity:<amsc1 address>[?amount=<AMSC, up to 6 decimals>][&memo=<percent-encoded UTF-8>]
///
/// The scheme is case-insensitive; `amount` is in AMSC (not base units) as a person reads it; `memo` is at most
/// ``Caps/memoBytes`` bytes of UTF-8 once decoded, and becomes the transfer's memo. As in BIP21, an unknown
/// parameter is ignored unless its name starts with `req-`, which marks it as one a payer must understand, so
/// such a request is refused rather than paid without its condition.
public struct PaymentRequest: Equatable, Sendable {
    public static let scheme = "amarscity"

    public var address: Address
    /// Base units; nil when the payer chooses.
    public var amount: UInt64?
    public var memo: String

    public init(address: Address, amount: UInt64? = nil, memo: String = "") {
        self.address = address
        self.amount = amount
        self.memo = memo
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notAPaymentRequest
        case badAddress
        case badAmount(Amount.ParseError)
        case badEncoding(String)
        case memoTooLong(Int)
        case duplicate(String)
        case requiredUnknown(String)

        public var description: String {
            switch self {
            case .notAPaymentRequest: "a payment request starts with '\(PaymentRequest.scheme):' and an amsc1 address"
            case .badAddress: "the request's address is not a valid amsc1 address"
            case .badAmount(let e): "the request's amount: \(e)"
            case .badEncoding(let name): "the request's \(name) has a bad percent-encoding or is not UTF-8"
            case .memoTooLong(let n): "the request's memo is \(n) bytes; at most \(Caps.memoBytes) fit in a transfer"
            case .duplicate(let name): "the request gives \(name) twice"
            case .requiredUnknown(let name):
                "the request requires '\(name)', which this wallet does not understand; it cannot be paid as asked"
            }
        }
    }

    /// The URI text.
    public var uri: String {
        var out = "\(Self.scheme):\(address.bech32)"
        var separator = "?"
        if let amount {
            out += "\(separator)amount=\(Amount.format(amount))"
            separator = "&"
        }
        if !memo.isEmpty { out += "\(separator)memo=\(Self.percentEncode(memo))" }
        return out
    }

    /// A request from the parts a person fills in (a form, command-line flags): the amount as AMSC text (nil or
    /// empty: the payer chooses) and the memo as text, checked by the same rules as a URI's fields.
    public init(address: Address, amount amountText: String?, memo: String) throws(ParseError) {
        self.address = address
        amount = nil
        if let amountText, !amountText.isEmpty {
            do { amount = try Amount.parse(amountText) } catch { throw .badAmount(error) }
        }
        guard memo.utf8.count <= Caps.memoBytes else { throw .memoTooLong(memo.utf8.count) }
        self.memo = memo
    }

    public init(uri text: String) throws(ParseError) {
        guard text.utf8.count <= 512 else { throw .notAPaymentRequest }
        let prefix = Self.scheme + ":"
        guard text.lowercased().hasPrefix(prefix) else { throw .notAPaymentRequest }
        let rest = text.dropFirst(prefix.count)
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = try? Address(bech32: String(parts[0])) else { throw .badAddress }
        var amountText: String?
        var memo = ""
        var seen: Set<String> = []
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(kv[0])
                let value = kv.count > 1 ? String(kv[1]) : ""
                guard seen.insert(name).inserted else { throw .duplicate(name) }
                switch name {
                case "amount":
                    // Present but empty is a mistake in a URI, not "the payer chooses".
                    guard !value.isEmpty else { throw .badAmount(.empty) }
                    amountText = value
                case "memo":
                    guard let decoded = Self.percentDecode(value) else { throw .badEncoding("memo") }
                    memo = decoded
                default:
                    if name.hasPrefix("req-") { throw .requiredUnknown(name) }
                }
            }
        }
        try self.init(address: address, amount: amountText, memo: memo)
    }

    /// RFC 3986 unreserved characters stay; every other byte of the UTF-8 becomes %XX.
    static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in text.utf8 {
            let unreserved =
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
            if unreserved {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil for a malformed escape or bytes that are not UTF-8. `+` stays `+` (this is a URI, not a form).
    public static func percentDecode(_ text: String) -> String? {
        var out: [UInt8] = []
        var bytes = text.utf8.makeIterator()
        func digit(_ c: UInt8?) -> UInt8? {
            guard let c else { return nil }
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        while let b = bytes.next() {
            if b == UInt8(ascii: "%") {
                guard let hi = digit(bytes.next()), let lo = digit(bytes.next()) else { return nil }
                out.append(hi << 4 | lo)
            } else {
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
