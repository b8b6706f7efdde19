/// X.509 times (RFC 5280 §4.1.2.5): UTCTime "YYMMDDHHMMSSZ" through 2049, GeneralizedTime "YYYYMMDDHHMMSSZ" from
/// 2050, always in UTC with seconds. Converted to and from Unix seconds with the proleptic Gregorian calendar
/// (days from civil, as in Howard Hinnant's date algorithms), so no calendar library is needed on a device.
public enum CertificateTime {
    /// The DER value (tag and content) of `seconds` since the Unix epoch.
    public static func encode(_ seconds: UInt64) -> [UInt8] {
        let days = Int64(seconds / 86_400)
        let rest = Int(seconds % 86_400)
        let (year, month, day) = civil(fromDays: days)
        var text: [UInt8] = []
        func two(_ v: Int) { text += [UInt8(48 + v / 10), UInt8(48 + v % 10)] }
        let utc = year < 2050
        if utc {
            two(Int(year % 100))
        } else {
            two(Int(year / 100))
            two(Int(year % 100))
        }
        two(month)
        two(day)
        two(rest / 3600)
        two(rest / 60 % 60)
        two(rest % 60)
        text.append(UInt8(ascii: "Z"))
        return DER.tlv(utc ? DER.utcTime : DER.generalizedTime, text)
    }

    /// Reads a UTCTime or GeneralizedTime in the forms RFC 5280 allows; nil for anything else.
    public static func decode(tag: UInt8, _ text: ArraySlice<UInt8>) -> UInt64? {
        let digits: Int
        switch tag {
        case DER.utcTime: digits = 12
        case DER.generalizedTime: digits = 14
        default: return nil
        }
        guard text.count == digits + 1, text.last == UInt8(ascii: "Z") else { return nil }
        var values: [Int] = []
        var i = text.startIndex
        while i < text.startIndex + digits {
            let hi = Int(text[i]) - 48
            let lo = Int(text[i + 1]) - 48
            guard (0...9).contains(hi), (0...9).contains(lo) else { return nil }
            values.append(hi * 10 + lo)
            i += 2
        }
        var year: Int64
        if tag == DER.utcTime {
            year = Int64(values[0]) + (values[0] >= 50 ? 1900 : 2000)
            values.removeFirst()
        } else {
            year = Int64(values[0] * 100 + values[1])
            values.removeFirst(2)
            // GeneralizedTime is for 2050 and later only (RFC 5280): earlier years must be UTCTime.
            guard year >= 2050 else { return nil }
        }
        let (month, day, hour, minute, second) = (values[0], values[1], values[2], values[3], values[4])
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
            second < 60, year >= 1970
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return UInt64(days) * 86_400 + UInt64(hour * 3600 + minute * 60 + second)
    }

    static func daysIn(month: Int, year: Int64) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func daysFromCivil(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
