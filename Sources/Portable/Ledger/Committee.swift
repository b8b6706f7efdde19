import AmarsCodec
import AmarsCrypto

/// The members who vote in an epoch, in proposer-rotation order, with their vote weights.
public struct Committee: Equatable, Sendable, CanonicalCodable {
    public struct Member: Equatable, Sendable, CanonicalCodable {
        /// The member's x-only consensus key.
        public var key: Bytes32
        public var weight: UInt64

        public init(key: Bytes32, weight: UInt64) {
            self.key = key
            self.weight = weight
        }

        public func encode(to w: inout ByteWriter) {
            w.write(key)
            w.writeVarint(weight)
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            key = try r.readBytes32()
            weight = try r.readVarint()
            guard weight > 0 else { throw .invalidValue(.range) }
        }
    }

    public var epoch: UInt64
    public var members: [Member]
    /// Sum of weights, checked for overflow when the committee is built or decoded.
    public let totalWeight: UInt64

    public enum BuildError: Error, Equatable, Sendable {
        case empty, tooMany, duplicateMember, zeroWeight, weightOverflow
    }

    public init(epoch: UInt64, members: [Member]) throws(BuildError) {
        guard !members.isEmpty else { throw .empty }
        guard members.count <= Caps.committeeMembers else { throw .tooMany }
        var total: UInt64 = 0
        for (i, m) in members.enumerated() {
            guard m.weight > 0 else { throw .zeroWeight }
            for j in 0..<i where members[j].key == m.key { throw .duplicateMember }
            let (sum, overflow) = total.addingReportingOverflow(m.weight)
            guard !overflow else { throw .weightOverflow }
            total = sum
        }
        self.epoch = epoch
        self.members = members
        self.totalWeight = total
    }

    public var hash: Bytes32 { Domain.committee.hash(encoded) }

    /// Strictly more than two thirds of the total weight: the BFT quorum. 128-bit arithmetic so no weight
    /// distribution can overflow the comparison.
    public func isQuorum(_ weight: UInt64) -> Bool {
        let lhs = weight.multipliedFullWidth(by: 3)
        let rhs = totalWeight.multipliedFullWidth(by: 2)
        return lhs.high > rhs.high || (lhs.high == rhs.high && lhs.low > rhs.low)
    }

    /// At least one third of the total weight: enough to hold one honest member when fewer than a third are
    /// faulty (what skipping and the pool's attestations rely on). 128-bit arithmetic, like ``isQuorum(_:)``.
    public func reachesOneThird(_ weight: UInt64) -> Bool { Self.reachesOneThird(weight, of: totalWeight) }

    public static func reachesOneThird(_ weight: UInt64, of total: UInt64) -> Bool {
        let lhs = weight.multipliedFullWidth(by: 3)
        return lhs.high > 0 || lhs.low >= total
    }

    public func index(of key: Bytes32) -> Int? { members.firstIndex { $0.key == key } }

    public func encode(to w: inout ByteWriter) {
        w.writeVarint(epoch)
        w.write(list: members)
    }

    public init(from r: inout ByteReader) throws(CodecError) {
        let epoch = try r.readVarint()
        let members: [Member] = try r.readList(cap: Caps.committeeMembers)
        do {
            self = try Committee(epoch: epoch, members: members)
        } catch .duplicateMember {
            throw .invalidValue(.duplicate)
        } catch {
            throw .invalidValue(.range)
        }
    }
}
