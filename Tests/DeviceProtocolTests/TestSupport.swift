import AmarsTestSupport
import DeviceProtocol

/// Bytes from hex text; spaces and newlines are ignored.
func hex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8?
    for scalar in text.unicodeScalars {
        let nibble: UInt8
        switch scalar {
        case "0"..."9": nibble = UInt8(scalar.value - 48)
        case "a"..."f": nibble = UInt8(scalar.value - 87)
        case "A"..."F": nibble = UInt8(scalar.value - 55)
        default: continue
        }
        if let h = high {
            out.append(h << 4 | nibble)
            high = nil
        } else {
            high = nibble
        }
    }
    precondition(high == nil, "odd number of hex digits")
    return out
}

func bytes(_ text: StaticString) -> [UInt8] {
    text.withUTF8Buffer { Array($0) }
}

/// Decodes, returning the error instead of throwing, so tests can compare results directly.
func decodeResult(_ input: [UInt8]) -> Result<CoAPMessage, CoAPError> {
    do {
        return .success(try CoAPMessage.decode(input))
    } catch {
        return .failure(error)
    }
}

/// Random valid messages: every header field, tokens of 0–8 bytes, registered options with values inside their
/// length ranges (integer options sometimes non-minimal), unknown options up to number 65535, payloads
/// of 0–300 bytes. The size stays under the 1152-byte cap by construction.
func randomMessage(_ rng: inout SplitMix64) -> CoAPMessage {
    let type = CoAPMessageType(rawValue: UInt8(rng.below(4)))!
    var code = CoAPCode(rawValue: rng.byte())
    if code.isEmpty { code = .get }
    let token = rng.bytes(rng.below(9))
    var options: [CoAPOption] = []
    let optionCount = rng.below(10)
    for _ in 0..<optionCount {
        let number: CoAPOptionNumber
        switch rng.below(4) {
        case 0, 1:
            number = CoAPOptionNumber.registered[rng.below(CoAPOptionNumber.registered.count)]
        case 2:
            number = CoAPOptionNumber(rawValue: UInt16(rng.below(300)))
        default:
            number = CoAPOptionNumber(rawValue: UInt16(truncatingIfNeeded: rng.next()))
        }
        let range = number.valueLengthRange ?? 0...40
        let upper = min(range.upperBound, 40)
        let length = range.lowerBound + rng.below(upper - range.lowerBound + 1)
        options.append(CoAPOption(number: number, value: rng.bytes(length)))
    }
    let payload = rng.below(3) == 0 ? [] : rng.bytes(1 + rng.below(300))
    return CoAPMessage(
        type: type, code: code, messageID: UInt16(truncatingIfNeeded: rng.next()), token: token,
        options: options, payload: payload)
}
