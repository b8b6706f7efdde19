import AmarsCodec
import AmarsCrypto
import Ledger

/// A notification transaction as a wallet reads it: what unmasking needs (signer, nonce, masked code) and where
/// it is, so the next query starts after it.
public struct NotificationInfo: Sendable, Equatable {
    public var height: UInt64
    public var position: Int
    public var id: Bytes32
    public var senderKey: XOnlyPublicKey
    public var sender: Address
    public var nonce: UInt64
    public var maskedCode: [UInt8]
}

/// `GET /v1/filters/{epoch}`.
public struct RecipientFilterInfo: Sendable, Equatable {
    public var epoch: UInt64
    public var filter: [UInt8]
    public var hash: Bytes32
    public var height: UInt64
    public var stateRoot: Bytes32
    public var proof: SparseMerkleProof

    /// True when the bytes hash to `hash` and the proof shows that hash recorded for `epoch` under `stateRoot`.
    /// Check `stateRoot` against a header you trust to make this mean something.
    public func verify() -> Bool {
        RecipientFilter.hash(filter) == hash
            && proof.verify(
                root: stateRoot, key: RecipientFilter.stateKey(epoch: epoch),
                valueHash: Domain.stateValue.hash(hash.bytes))
    }
}

/// `GET /v1/stealth/{epoch}`.
public struct StealthAnnouncementsInfo: Sendable, Equatable {
    public var epoch: UInt64
    public var announcements: [StealthAnnouncement]
    public var hash: Bytes32
    public var height: UInt64
    public var stateRoot: Bytes32
    public var proof: SparseMerkleProof

    /// True when the list hashes to `hash` and the proof shows that hash recorded for `epoch` under `stateRoot`:
    /// no announcement of the epoch was left out. Check `stateRoot` against a header you trust.
    public func verify() -> Bool {
        StealthAnnouncements.hash(announcements) == hash
            && proof.verify(
                root: stateRoot, key: StealthAnnouncements.stateKey(epoch: epoch),
                valueHash: Domain.stateValue.hash(hash.bytes))
    }
}

extension NodeClient {
    /// Notifications sent to `address`, oldest first, from position `position` of block `from` on (at most 100).
    public func notifications(to address: Address, from: UInt64 = 0, position: Int = 0)
        throws(NodeClientError) -> [NotificationInfo]
    {
        let o = try getObject("/v1/accounts/\(address.bech32)/notifications?from=\(from)&position=\(position)")
        var out: [NotificationInfo] = []
        for row in try o.array("notifications") {
            guard let key = try? XOnlyPublicKey(bytes: try row.bytes32("senderKey")) else { throw row.bad("senderKey") }
            out.append(
                NotificationInfo(
                    height: try row.uint("height"), position: try row.int("position"), id: try row.bytes32("id"),
                    senderKey: key, sender: Address(publicKey: key), nonce: try row.uint("nonce"),
                    maskedCode: try row.hex("maskedCode")))
        }
        return out
    }

    /// `epoch`'s recipient filter; `.api(status: 404, …)` until the epoch is finished.
    public func recipientFilter(epoch: UInt64) throws(NodeClientError) -> RecipientFilterInfo {
        let o = try getObject("/v1/filters/\(epoch)")
        guard try o.uint("epoch") == epoch else { throw o.bad("epoch") }
        let proof: SparseMerkleProof
        do { proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        return RecipientFilterInfo(
            epoch: epoch, filter: try o.hex("filter"), hash: try o.bytes32("hash"), height: try o.uint("height"),
            stateRoot: try o.bytes32("stateRoot"), proof: proof)
    }

    /// `epoch`'s stealth announcements; `.api(status: 404, …)` until the epoch is finished.
    public func stealthAnnouncements(epoch: UInt64) throws(NodeClientError) -> StealthAnnouncementsInfo {
        let o = try getObject("/v1/stealth/\(epoch)")
        guard try o.uint("epoch") == epoch else { throw o.bad("epoch") }
        let proof: SparseMerkleProof
        do { proof = try SparseMerkleProof(decoding: try o.hex("proof")) } catch { throw o.bad("proof") }
        let list: [StealthAnnouncement]
        do { list = try StealthAnnouncements.decode(try o.hex("announcements")) } catch {
            throw o.bad("announcements")
        }
        return StealthAnnouncementsInfo(
            epoch: epoch, announcements: list, hash: try o.bytes32("hash"), height: try o.uint("height"),
            stateRoot: try o.bytes32("stateRoot"), proof: proof)
    }
}
