import Ledger

/// AMSC amounts for people: decimal text with up to six fractional digits, parsed exactly (no floating point).
public enum Amount {
    public static let unitsPerAMSC: UInt64 = 1_000_000
    /// 500,000,000,000 AMSC: fixed forever; fits UInt64 with room to spare.
    public static let totalSupply: UInt64 = 500_000_000_000 * unitsPerAMSC

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case invalidCharacter
        case tooManyDecimals
        case overflow
        case zero

        public var description: String {
            switch self {
            case .empty: "amount is empty"
            case .invalidCharacter: "amount must be digits with an optional '.' and up to 6 decimals"
            case .tooManyDecimals: "AMSC has 6 decimals at most"
            case .overflow: "amount is larger than the total supply"
            case .zero: "amount must be greater than zero"
            }
        }
    }

    /// Parses "12", "12.5", "0.000001" into base units; refuses signs, exponents, separators and overflow.
    public static func parse(_ text: String, allowZero: Bool = false) throws(ParseError) -> UInt64 {
        guard !text.isEmpty else { throw .empty }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count > 1 ? parts[1] : ""
        guard !whole.isEmpty || !fraction.isEmpty else { throw .invalidCharacter }
        if parts.count > 1 && fraction.isEmpty { throw .invalidCharacter }
        guard whole.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            fraction.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else { throw .invalidCharacter }
        guard fraction.count <= 6 else { throw .tooManyDecimals }
        var units: UInt64 = 0
        for d in whole.utf8 {
            let (m, o1) = units.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d - 0x30))
            guard !o1, !o2 else { throw .overflow }
            units = a
        }
        let (scaled, o) = units.multipliedReportingOverflow(by: unitsPerAMSC)
        guard !o else { throw .overflow }
        var frac: UInt64 = 0
        for d in fraction.utf8 { frac = frac * 10 + UInt64(d - 0x30) }
        for _ in fraction.count..<6 { frac *= 10 }
        let total = scaled + frac
        guard total <= totalSupply else { throw .overflow }
        guard allowZero || total > 0 else { throw .zero }
        return total
    }

    /// "1234.5" style: trailing fractional zeros dropped, no grouping, so it parses back exactly.
    public static func format(_ units: UInt64) -> String {
        let whole = units / unitsPerAMSC
        var frac = units % unitsPerAMSC
        guard frac > 0 else { return String(whole) }
        var digits = 6
        while frac % 10 == 0 {
            frac /= 10
            digits -= 1
        }
        let fracText = String(frac)
        return String(whole) + "." + String(repeating: "0", count: digits - fracText.count) + fracText
    }

    /// "91,000,000,000" style for tables meant for reading, not parsing.
    public static func grouped(_ units: UInt64) -> String {
        let text = format(units)
        let split = text.split(separator: ".", maxSplits: 1)
        var whole = Array(split[0])
        var out: [Character] = []
        while whole.count > 3 {
            out = [","] + Array(whole.suffix(3)) + out
            whole.removeLast(3)
        }
        let head = String(whole + out)
        return split.count > 1 ? head + "." + split[1] : head
    }
}
