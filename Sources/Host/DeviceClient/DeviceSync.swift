// The device-side light-client flow shared by `amars device …` and the simulator: anchor trust, follow the
// checkpoint chain, verify a header, a balance and a transaction's inclusion. Every decision is the
// LightClient module's (the same code firmware runs); this file only fetches, sequences and reports.
import AmarsCodec
import AmarsCrypto
import DeviceCore
import DeviceProtocol
import Foundation
import Ledger
import LightClient

/// Why the device flow stopped. Transport failures and verification failures are separate cases, so a
/// caller can retry the first and must alarm on the second.
public enum DeviceSyncError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What the light client was checking when it refused.
    public enum Stage: Equatable, Sendable {
        case anchor
        case checkpoint(epoch: UInt64)
        case header(height: UInt64)
        case accountProof
        case transactionProof
        case escrowProof
    }

    /// The gateway could not be asked (unreachable, error code, undecodable answer).
    case transport(DeviceClientError)
    /// The light client refused the gateway's data; the trusted state is as it was before that item.
    case rejected(LightClientError, stage: Stage)
    /// Answers that each verify but contradict each other (a proof against a root its header lacks, a receipt
    /// for another transaction): a faulty or lying gateway.
    case inconsistent(String)
    /// A header older than the trusted epoch: its committee is no longer known to the device, so it cannot
    /// be checked (only the trusted checkpoint itself can).
    case outsideTrust(height: UInt64)

    public var description: String {
        switch self {
        case .transport(let e): "\(e)"
        case .rejected(let e, let stage): "light client refused the \(stage): \(e)"
        case .inconsistent(let s): "gateway answers disagree: \(s)"
        case .outsideTrust(let h): "block \(h) is older than the trusted epoch and cannot be verified"
        }
    }
}

/// A header the device now trusts, and why.
public struct TrustedHeader: Equatable, Sendable {
    public enum Basis: Equatable, Sendable {
        /// Its certificate carried `signatures` valid signatures of the trusted committee, `weight` of
        /// `totalWeight`, more than two thirds.
        case certificate(signatures: Int, weight: UInt64, totalWeight: UInt64)
        /// It is the checkpoint (or genesis header) the trusted state itself was advanced to.
        case trustedCheckpoint
    }

    public let header: BlockHeader
    public let hash: Bytes32
    public let basis: Basis

    public var height: UInt64 { header.height }
    public var epoch: UInt64 { header.epoch }
    public var stateRoot: Bytes32 { header.stateRoot }
    public var transactionsRoot: Bytes32 { header.transactionsRoot }
    public var receiptsRoot: Bytes32 { header.receiptsRoot }
}

/// How far one ``DeviceSync/sync(source:pageSize:maxEpochs:)`` moved trust.
public struct SyncProgress: Equatable, Sendable {
    public var fromEpoch: UInt64
    public var toEpoch: UInt64
    public var checkpoints: Int
    /// Schnorr signatures checked across those checkpoints' certificates.
    public var signaturesChecked: Int

    public init(fromEpoch: UInt64, toEpoch: UInt64, checkpoints: Int, signaturesChecked: Int) {
        self.fromEpoch = fromEpoch
        self.toEpoch = toEpoch
        self.checkpoints = checkpoints
        self.signaturesChecked = signaturesChecked
    }
}

/// An account state proven against a trusted header's state root.
public struct VerifiedAccount: Equatable, Sendable {
    public let address: Address
    public let state: AccountState
    public let header: TrustedHeader
}

/// An escrow (or its absence) proven against a trusted header's state root: what a lock acts on.
public struct VerifiedEscrow: Equatable, Sendable {
    public let id: Bytes32
    /// Nil: proven that no escrow has this id.
    public let state: EscrowState?
    public let header: TrustedHeader
}

/// A transaction proven to be in a trusted (hence final) block.
public struct VerifiedInclusion: Equatable, Sendable {
    public let id: Bytes32
    public let header: TrustedHeader
    /// Proven: it is the index the Merkle path was checked at.
    public let position: UInt64
    /// Proven too: its Merkle path to the header's receipts root was checked at the same position, so status
    /// and fee are the chain's word, not the gateway's.
    public let receipt: Receipt
}

/// A device's trusted state and the steps that move it, over any ``DeviceChainSource``.
///
/// Trust only moves through ``CheckpointVerifier`` and headers only count through ``HeaderVerifier``; every
/// failure throws before ``trusted`` changes. A sync that fails at checkpoint N keeps the N − 1 checkpoints
/// before it (each was verified on its own), so a device that loses its gateway mid-sync resumes from there.
public struct DeviceSync: Sendable {
    public private(set) var trusted: TrustedState

    /// Resumes from a state the device stored earlier (it came from an anchor or a verified checkpoint).
    public init(trusted: TrustedState) { self.trusted = trusted }

    /// Fetches the genesis header and anchors trust in it: it must hash to the provisioned hash and name the
    /// provisioned committee.
    public static func anchor(_ anchor: DeviceTrustAnchor, source: some DeviceChainSource)
        throws(DeviceSyncError) -> DeviceSync
    {
        let genesis: HeaderPayload
        do { genesis = try source.header(at: 0) } catch { throw .transport(error) }
        return try Self.anchor(anchor, genesisHeader: genesis.header)
    }

    /// Anchors trust in a genesis header the device already has (rebuilt from the provisioned genesis file with
    /// ``DeviceTrustAnchor/genesisHeader(_:)``): for transports that serve no headers, such as MQTT. The same
    /// checks as over the wire, so a wrong file is refused just as a lying gateway is.
    public static func anchor(_ anchor: DeviceTrustAnchor, genesisHeader: BlockHeader)
        throws(DeviceSyncError) -> DeviceSync
    {
        do {
            return DeviceSync(
                trusted: try TrustedState.anchored(
                    header: genesisHeader, committee: anchor.committee, epochLength: anchor.epochLength,
                    trustedHash: anchor.genesisHeaderHash))
        } catch {
            throw .rejected(error, stage: .anchor)
        }
    }

    /// Follows checkpoints from the trusted epoch until the gateway has no more (or `maxEpochs` were taken),
    /// `pageSize` per request.
    @discardableResult
    public mutating func sync(
        source: some DeviceChainSource, pageSize: Int = CheckpointsPayload.maxCount, maxEpochs: UInt64 = .max
    ) throws(DeviceSyncError) -> SyncProgress {
        var progress = SyncProgress(
            fromEpoch: trusted.epoch, toEpoch: trusted.epoch, checkpoints: 0, signaturesChecked: 0)
        while UInt64(progress.checkpoints) < maxEpochs {
            let page: [Checkpoint]
            do { page = try source.checkpoints(from: trusted.epoch, limit: pageSize) } catch {
                throw .transport(error)
            }
            if page.isEmpty { break }
            for checkpoint in page where UInt64(progress.checkpoints) < maxEpochs {
                do {
                    trusted = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: checkpoint)
                } catch {
                    throw .rejected(error, stage: .checkpoint(epoch: trusted.epoch))
                }
                progress.checkpoints += 1
                progress.signaturesChecked += checkpoint.certificate.signatures.count
                progress.toEpoch = trusted.epoch
            }
        }
        return progress
    }

    /// Checks a header against the trusted state alone (no network): the trusted checkpoint itself, or a
    /// header of the trusted epoch with a valid certificate.
    public func verify(header: BlockHeader, certificate: CommitCertificate) throws(DeviceSyncError) -> TrustedHeader {
        let hash = header.hash
        if hash == trusted.checkpointHash {
            return TrustedHeader(header: header, hash: hash, basis: .trustedCheckpoint)
        }
        if header.height <= trusted.height { throw .outsideTrust(height: header.height) }
        do {
            let verified = try HeaderVerifier.verify(trusted: trusted, header: header, certificate: certificate)
            return TrustedHeader(
                header: header, hash: hash,
                basis: .certificate(
                    signatures: certificate.signatures.count, weight: verified.signedWeight,
                    totalWeight: trusted.committee.totalWeight))
        } catch {
            throw .rejected(error, stage: .header(height: header.height))
        }
    }

    /// ``verify(header:certificate:)``, first syncing checkpoints when the header is past the trusted epoch
    /// (the chain moved on since the last sync, or the block of interest closed an epoch).
    public mutating func verify(_ payload: HeaderPayload, source: some DeviceChainSource)
        throws(DeviceSyncError) -> TrustedHeader
    {
        if let last = trusted.signedHeights?.last, payload.header.height > last {
            try sync(source: source)
        }
        return try verify(header: payload.header, certificate: payload.certificate)
    }

    /// The gateway's head, verified (syncing first if it is in a later epoch).
    public mutating func verifiedHead(source: some DeviceChainSource) throws(DeviceSyncError) -> TrustedHeader {
        let head: HeaderPayload
        do { head = try source.head() } catch { throw .transport(error) }
        return try verify(head, source: source)
    }

    /// The escrow opened by transaction `id`, proven against the state root of the header the gateway's proof
    /// refers to (fetched and verified first). A lock opens only for one proven `.open` that names it.
    ///
    /// The head is verified first and the proof must be from that block or a later one: an escrow's status
    /// changes (a close, an expiry), so a proof from an older block, however genuine, could show an escrow open
    /// that is already closed.
    public mutating func verifiedEscrow(_ id: Bytes32, source: some DeviceEscrowSource)
        throws(DeviceSyncError) -> VerifiedEscrow
    {
        let head = try verifiedHead(source: source)
        let payload: EscrowProofPayload
        do { payload = try source.escrowProof(id) } catch { throw .transport(error) }
        guard payload.height >= head.height else {
            throw .inconsistent(
                "escrow proof from block \(payload.height), older than the verified head \(head.height)")
        }
        let header = try verifiedHeader(naming: payload.stateRoot, at: payload.height, "escrow", source: source)
        do {
            let state = try ProofVerifier.verifyEscrow(
                payload.state, id: id, proof: payload.proof, stateRoot: header.stateRoot)
            return VerifiedEscrow(id: id, state: state, header: header)
        } catch {
            throw .rejected(error, stage: .escrowProof)
        }
    }

    /// The header at `height`, fetched and verified, which must carry `stateRoot`: the root a state proof of
    /// `what` claims is that block's.
    private mutating func verifiedHeader(
        naming stateRoot: Bytes32, at height: UInt64, _ what: StaticString, source: some DeviceChainSource
    ) throws(DeviceSyncError) -> TrustedHeader {
        let headerPayload: HeaderPayload
        do { headerPayload = try source.header(at: height) } catch { throw .transport(error) }
        let header = try verify(headerPayload, source: source)
        guard header.stateRoot == stateRoot else {
            throw .inconsistent("\(what) proof names another state root than block \(height)")
        }
        return header
    }

    /// An account's state, proven against the state root of the header the gateway's proof refers to, which is
    /// fetched and verified first.
    public mutating func verifiedAccount(_ address: Address, source: some DeviceChainSource)
        throws(DeviceSyncError) -> VerifiedAccount
    {
        let payload: AccountProofPayload
        do { payload = try source.accountProof(address) } catch { throw .transport(error) }
        let header = try verifiedHeader(naming: payload.stateRoot, at: payload.height, "account", source: source)
        // The state tree holds no empty accounts, so an empty claimed state must be proven absent.
        let claimed: AccountState? = payload.state.isEmpty ? nil : payload.state
        do {
            let state = try ProofVerifier.verifyAccount(
                claimed, of: address, proof: payload.proof, stateRoot: header.stateRoot)
            return VerifiedAccount(address: address, state: state, header: header)
        } catch {
            throw .rejected(error, stage: .accountProof)
        }
    }

    /// Proves that transaction `id` is in a final block: the block's header (verified, syncing first if it
    /// closed or passed the trusted epoch) and the Merkle path from the id to its transactions root.
    /// ``DeviceClientError/isNotFound`` (inside ``DeviceSyncError/transport(_:)``) while it is not final.
    public mutating func verifiedInclusion(_ id: Bytes32, source: some DeviceChainSource)
        throws(DeviceSyncError) -> VerifiedInclusion
    {
        let payload: TransactionProofPayload
        do { payload = try source.transactionProof(id) } catch { throw .transport(error) }
        let header = try verify(HeaderPayload(header: payload.header, certificate: payload.certificate), source: source)
        do {
            try ProofVerifier.verifyTransaction(id: id, proof: payload.proof, transactionsRoot: header.transactionsRoot)
        } catch {
            throw .rejected(error, stage: .transactionProof)
        }
        guard payload.receipt.transactionID == id, payload.position == payload.proof.index,
            payload.receiptProof.index == payload.proof.index
        else {
            throw .inconsistent("the proof's receipt or position is not the proven transaction's")
        }
        do {
            try ProofVerifier.verifyReceipt(
                payload.receipt, proof: payload.receiptProof, receiptsRoot: header.receiptsRoot)
        } catch {
            throw .rejected(error, stage: .transactionProof)
        }
        return VerifiedInclusion(id: id, header: header, position: payload.proof.index, receipt: payload.receipt)
    }

    /// Polls ``verifiedInclusion(_:source:)`` until the transaction is final or `timeoutMillis` pass: for a
    /// device that submitted over CoAP and has no receipt push.
    public mutating func waitForInclusion(
        _ id: Bytes32, source: some DeviceChainSource, timeoutMillis: UInt64 = 30_000, pollMillis: UInt64 = 200
    ) throws(DeviceSyncError) -> VerifiedInclusion {
        let deadline = deviceClockNanos() + timeoutMillis * 1_000_000
        while true {
            do {
                return try verifiedInclusion(id, source: source)
            } catch .transport(let e) where e.isNotFound {
                guard deviceClockNanos() < deadline else {
                    throw .transport(.timeout("transaction \(Hex.encode(id.bytes)) not final"))
                }
                usleep(UInt32(min(pollMillis, 5000) * 1000))
            }
        }
    }
}
