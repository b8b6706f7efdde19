import AmarsCodec
import Ledger

/// The consensus messages as they travel between gateways, for values that have a canonical encoding.
///
/// One tag byte, then the fields. Decoding is the first line of defence against untrusted bytes: anything that
/// fails is counted as ``DropReason/malformed`` by ``ConsensusCore/handle(message:into:)`` and changes nothing.
public enum ConsensusMessage<Value: CanonicalCodable>: CanonicalCodable {
    case proposal(SignedProposal, Value)
    case vote(Vote)
    case decision(Value, CommitCertificate)

    public func encode(to w: inout ByteWriter) {
        switch self {
        case .proposal(let signed, let value):
            w.write(UInt8(1))
            signed.encode(to: &w)
            value.encode(to: &w)
        case .vote(let vote):
            w.write(UInt8(2))
            vote.encode(to: &w)
        case .decision(let value, let certificate):
            w.write(UInt8(3))
            value.encode(to: &w)
            certificate.encode(to: &w)
        }
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let tag = try r.readU8()
        switch tag {
        case 1: self = .proposal(try SignedProposal(from: &r), try Value(from: &r))
        case 2: self = .vote(try Vote(from: &r))
        case 3: self = .decision(try Value(from: &r), try CommitCertificate(from: &r))
        default: throw .unknownTag(tag)
        }
    }
}

extension ConsensusCore where App.Value: CanonicalCodable {
    /// Decodes one network message and handles it; bytes that do not decode canonically are counted and
    /// otherwise ignored.
    public mutating func handle(message bytes: [UInt8], into out: inout [Action]) {
        let message: ConsensusMessage<App.Value>
        do {
            message = try ConsensusMessage(decoding: bytes)
        } catch {
            drop(.malformed)
            return
        }
        switch message {
        case .proposal(let signed, let value): handle(.proposalReceived(signed, value), into: &out)
        case .vote(let vote): handle(.voteReceived(vote), into: &out)
        case .decision(let value, let certificate): handle(.decidedElsewhere(value, certificate), into: &out)
        }
    }

    public mutating func handle(message bytes: [UInt8]) -> [Action] {
        var out: [Action] = []
        handle(message: bytes, into: &out)
        return out
    }
}
