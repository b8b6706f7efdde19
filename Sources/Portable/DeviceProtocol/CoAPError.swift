/// Why a CoAP message, block or option value was refused.
///
/// Each case is something a server can act on without looking at the bytes again: ``responseCode`` is the
/// code to answer with, and ``isMessageFormatError`` says whether RFC 7252 wants no answer at all (a Reset
/// for a Confirmable message, silence otherwise) because the message could not be parsed far enough to
/// answer it. No case carries untrusted bytes, only small numbers, so errors can be counted and logged.
public enum CoAPError: Error, Equatable, Sendable {
    // MARK: Message format errors (RFC 7252 §3, §4.1)

    /// Fewer than the 4 header bytes: there is not even a Message ID to reset.
    case truncatedHeader
    /// A version other than 1; §3 says such messages are silently ignored.
    case unsupportedVersion(UInt8)
    /// Token Length 9–15, reserved by §3.
    case invalidTokenLength(UInt8)
    /// The message ends inside the token.
    case truncatedToken
    /// An option delta or length nibble of 15 that is not part of the 0xFF payload marker.
    case reservedOptionNibble
    /// The message ends inside an option's extended delta, extended length or value.
    case truncatedOption
    /// The option deltas add up past 65535.
    case optionNumberOverflow
    /// A payload marker with nothing after it (§3: a format error).
    case emptyPayloadAfterMarker
    /// An Empty message (code 0.00) with a token, options or payload (§4.1).
    case nonEmptyEmptyMessage
    /// More than ``CoAPMessage/maxMessageSize`` bytes.
    case messageTooLarge
    /// More than ``CoAPMessage/maxOptions`` options.
    case tooManyOptions

    // MARK: Option errors a server answers

    /// A known option whose value length is outside the range of RFC 7252 §5.10 (or of the RFC defining it).
    /// Stricter than §5.4.3, which would ignore a bad elective option: keeping it as an error keeps decode and
    /// encode exact inverses.
    case optionValueLength(number: UInt16)
    /// A critical option (odd number) the receiver does not implement (§5.4.1): answer 4.02.
    case unknownCriticalOption(number: UInt16)
    /// A Block1/Block2 value with SZX 7, reserved by RFC 7959 §2.2 ("MUST lead to a 4.00").
    case reservedBlockSize
    /// A Block2 request for a block that starts at or past the end of the representation.
    case blockOutOfRange

    // MARK: Block-wise upload errors (RFC 7959 §2.3, §2.9)

    /// A Block1 block that does not start where the data received so far ends (lost, repeated with
    /// different content, reordered, or a new upload without block 0).
    case blockOutOfOrder
    /// A block with M set whose payload is not exactly the block size SZX announces.
    case blockSizeMismatch
    /// The reassembled body (or the Size1 the client announced) is over the assembler's cap.
    case entityTooLarge

    /// What a server answers with when it can answer at all.
    ///
    /// Format errors map to 4.00 for callers that answer anyway (for example over a serial link where no Reset
    /// exists); RFC-following UDP servers check ``isMessageFormatError`` first.
    public var responseCode: CoAPCode {
        switch self {
        case .truncatedHeader, .unsupportedVersion, .invalidTokenLength, .truncatedToken, .reservedOptionNibble,
            .truncatedOption, .optionNumberOverflow, .emptyPayloadAfterMarker, .nonEmptyEmptyMessage,
            .tooManyOptions, .reservedBlockSize:
            return .badRequest
        case .messageTooLarge, .entityTooLarge:
            return .requestEntityTooLarge
        case .optionValueLength(let number):
            return CoAPOptionNumber(rawValue: number).isCritical ? .badOption : .badRequest
        case .unknownCriticalOption, .blockOutOfRange:
            return .badOption
        case .blockOutOfOrder, .blockSizeMismatch:
            // The upload as sent cannot be completed; 4.08 tells the client to start again from block 0.
            return .requestEntityIncomplete
        }
    }

    /// True when RFC 7252 §4.2/§4.3 says to reject the message (Reset if Confirmable, ignore otherwise)
    /// instead of answering it with a response code.
    public var isMessageFormatError: Bool {
        switch self {
        case .truncatedHeader, .unsupportedVersion, .invalidTokenLength, .truncatedToken, .reservedOptionNibble,
            .truncatedOption, .optionNumberOverflow, .emptyPayloadAfterMarker, .nonEmptyEmptyMessage:
            return true
        case .messageTooLarge, .tooManyOptions, .optionValueLength, .unknownCriticalOption, .reservedBlockSize,
            .blockOutOfRange, .blockOutOfOrder, .blockSizeMismatch, .entityTooLarge:
            return false
        }
    }
}
