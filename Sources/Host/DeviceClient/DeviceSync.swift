// The host's driver of the portable device session (DeviceCore): `amars device …`, the simulator and the tests
// run exactly the flow the firmware runs, over UDP CoAP, MQTT or an in-process loopback.
import AmarsCodec
import AmarsCrypto
import DeviceCore
import DeviceProtocol
import Foundation
import Ledger
import LightClient

/// Why a host device operation stopped: the link (retry, or try another gateway) or the device's own refusal
/// of what the gateway said (alarm).
public enum DeviceSyncError: Error, Equatable, Sendable, CustomStringConvertible {
    case transport(DeviceClientError)
    case device(DeviceError)

    public var description: String {
        switch self {
        case .transport(let e): "\(e)"
        case .device(let e): "\(e)"
        }
    }

    /// `amars device`'s exit status: 4 when the trust expired (re-anchor the device), 5 when the gateway serves
    /// another chain (point the device at its own), 3 when the proven HTLC is not the device's to claim with that
    /// secret, 2 when the device's own transaction is final but failed, 1 otherwise.
    public var exitStatus: Int32 {
        switch self {
        case .device(.trustExpired), .device(.reanchorRefused): 4
        case .device(.otherChain): 5
        case .device(.htlc): 3
        case .device(.failedOnChain): 2
        default: 1
        }
    }

    /// The gateway refused the data's checks, as opposed to being unreachable or busy.
    public var isVerificationFailure: Bool {
        guard case .device(let e) = self else { return false }
        switch e {
        case .rejected, .inconsistent, .outsideTrust, .noCheckpointTo, .undecodable, .failedOnChain: return true
        default: return false
        }
    }
}

/// A device's trusted state and the operations that move it, each one run of ``DeviceSession`` over a link.
public struct DeviceSync: Sendable {
    public private(set) var session: DeviceSession

    /// The trusted state (always set: a `DeviceSync` exists only anchored or resumed).
    public var trusted: TrustedState { session.trusted! }

    /// Resumes from a state the device stored earlier (it came from an anchor or a verified checkpoint).
    public init(anchor: DeviceTrustAnchor, trusted: TrustedState, wallet: DeviceWallet? = nil) {
        session = DeviceSession(anchor: anchor, trusted: trusted, wallet: wallet)
    }

    /// Fetches the genesis header and anchors trust in it: it must hash to the provisioned hash and name the
    /// provisioned committee.
    public static func anchor<L: DeviceLink>(_ anchor: DeviceTrustAnchor, source: L) throws(DeviceSyncError)
        -> DeviceSync where L.Failure == DeviceClientError
    {
        var session = DeviceSession(anchor: anchor)
        var link = source
        do { _ = try session.run(.anchor, over: &link) } catch { throw Self.error(error) }
        return DeviceSync(anchor: anchor, trusted: session.trusted!)
    }

    /// Anchors trust in a genesis header the device already has (``Genesis/header`` of the provisioned file):
    /// for transports that serve no headers, such as MQTT. The same checks as over the wire.
    public static func anchor(_ anchor: DeviceTrustAnchor, genesisHeader: BlockHeader) throws(DeviceSyncError)
        -> DeviceSync
    {
        var session = DeviceSession(anchor: anchor)
        do { try session.anchor(genesisHeader: genesisHeader) } catch { throw .device(error) }
        return DeviceSync(anchor: anchor, trusted: session.trusted!)
    }

    public mutating func setWallet(_ wallet: DeviceWallet) { session.setWallet(wallet) }

    /// Replaces the trusted state with the one an operator's re-anchor statement vouches for (see
    /// ``DeviceSession/reanchor(_:wallClock:)``), measured against the host's clock.
    public mutating func reanchor(_ statement: ReanchorPayload) throws(DeviceSyncError) {
        do { try session.reanchor(statement, wallClock: wallClockNow()) } catch { throw .device(error) }
    }

    /// Runs one operation; `onReport` sees each step as it happens.
    public mutating func run<L: DeviceLink>(
        _ operation: DeviceOperation, source: L, onReport: (DeviceReport) -> Void = { _ in }
    ) throws(DeviceSyncError) -> DeviceOutcome where L.Failure == DeviceClientError {
        var link = source
        do { return try session.run(operation, over: &link, onReport: onReport) } catch { throw Self.error(error) }
    }

    /// Follows checkpoints from the trusted epoch until the gateway has none left (or `maxEpochs` were taken),
    /// `pageSize` per request; skips when the anchor has a trusting period (the host has a clock).
    @discardableResult
    public mutating func sync<L: DeviceLink>(
        source: L, pageSize: Int = CheckpointsPayload.maxCount, maxEpochs: UInt64 = .max,
        onReport: (DeviceReport) -> Void = { _ in }
    ) throws(DeviceSyncError) -> SyncProgress where L.Failure == DeviceClientError {
        session.configuration.checkpointPage = pageSize
        guard case .synced(let progress) = try run(.sync(maxEpochs: maxEpochs), source: source, onReport: onReport)
        else {
            throw .device(.busy)
        }
        return progress
    }

    /// The gateway's head, verified (following checkpoints first if it is in a later epoch).
    public mutating func verifiedHead<L: DeviceLink>(source: L) throws(DeviceSyncError) -> TrustedHeader
    where L.Failure == DeviceClientError {
        guard case .head(let head) = try run(.head, source: source) else { throw .device(.busy) }
        return head
    }

    /// An account's state, proven against the state root of the header the gateway's proof refers to.
    public mutating func verifiedAccount<L: DeviceLink>(_ address: Address, source: L) throws(DeviceSyncError)
        -> VerifiedAccount where L.Failure == DeviceClientError
    {
        guard case .account(let account) = try run(.account(address), source: source) else { throw .device(.busy) }
        return account
    }

    /// The escrow opened by transaction `id`, proven against a header no older than the verified head.
    public mutating func verifiedEscrow<L: DeviceLink>(_ id: Bytes32, source: L) throws(DeviceSyncError)
        -> VerifiedEscrow where L.Failure == DeviceClientError
    {
        guard case .escrow(let escrow) = try run(.escrow(id), source: source) else { throw .device(.busy) }
        return escrow
    }

    /// Certificate `id`'s standing (nil: proven absent), its records proven against a header no older than the
    /// verified head.
    public mutating func verifiedCertificate<L: DeviceLink>(_ id: Bytes32, source: L) throws(DeviceSyncError)
        -> VerifiedCertificate where L.Failure == DeviceClientError
    {
        guard case .certificate(let c) = try run(.certificate(id), source: source) else { throw .device(.busy) }
        return c
    }

    /// Proves that transaction `id` is in a final block, with its receipt; ``DeviceError/notFinal(_:)`` when the
    /// gateway has no proof yet.
    public mutating func verifiedInclusion<L: DeviceLink>(_ id: Bytes32, source: L) throws(DeviceSyncError)
        -> VerifiedInclusion where L.Failure == DeviceClientError
    {
        try waitForInclusion(id, source: source, timeoutMillis: 0)
    }

    /// Asks for the proof of `id` every `pollMillis` until it is final or `timeoutMillis` pass.
    public mutating func waitForInclusion<L: DeviceLink>(
        _ id: Bytes32, source: L, timeoutMillis: UInt64 = 30_000, pollMillis: UInt32 = 200
    ) throws(DeviceSyncError) -> VerifiedInclusion where L.Failure == DeviceClientError {
        session.configuration.pollMillis = pollMillis
        let wait = UInt32(min(timeoutMillis, UInt64(UInt32.max)))
        guard case .included(let inclusion) = try run(.inclusion(id, waitMillis: wait), source: source) else {
            throw .device(.busy)
        }
        return inclusion
    }

    private static func error(_ error: DeviceRunError<DeviceClientError>) -> DeviceSyncError {
        switch error {
        case .link(let e): .transport(e)
        case .device(let e): .device(e)
        }
    }
}
