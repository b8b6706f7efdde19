import AmarsCodec
import Ledger
import LightClient

/// Steps a device took on the way to an outcome, for its log (the firmware's console, `amars device -v`, the
/// simulator's counters). Drivers drain them with ``DeviceSession/takeReports()``; nothing depends on them.
/// Plain numbers and hashes only: a board pays in flash for every copy of a payload that holds an array.
public enum DeviceReport: Equatable, Sendable {
    /// The checkpoint that closed epoch `epoch` was verified; trust moved to `trusted`.
    case checkpointVerified(epoch: UInt64, height: UInt64, signatures: Int, trusted: UInt64)
    /// A skip: the checkpoint closing epoch `to - 1` carried a third of the trusted weight of epoch `from`;
    /// `signatures` were checked and trust moved to epoch `to`.
    case skipped(from: UInt64, to: UInt64, height: UInt64, signatures: Int)
    /// Trust expired, and the operator's re-anchor statement (relayed by the gateway) moved it to the committee
    /// of `epoch`, named at `height`.
    case reanchored(epoch: UInt64, height: UInt64)
    /// A header a proof or the head refers to was verified by its certificate: `weight` of `totalWeight` signed.
    case headerVerified(height: UInt64, weight: UInt64, totalWeight: UInt64)
    /// The transaction was submitted and the gateway pooled it.
    case submitted(id: Bytes32, bytes: Int)
    /// The payment the device signed: its nonce and fee cap, from the base fee after block `height`.
    case signed(id: Bytes32, nonce: UInt64, maxFeePerUnit: UInt64, baseFee: UInt64, height: UInt64)
    /// The gateway listed a transfer to the device (not yet proven).
    case listed(height: UInt64, position: UInt64, polls: Int)
    /// A listed transfer was proven final but its receipt says it failed: passed over.
    case failedTransferSkipped(id: Bytes32)
    /// The HTLC to claim was proven open for the device at `height`, holding `amount` up to `expiryHeight`, and
    /// locked to the secret's hash: the claim is signed next.
    case claimable(lockID: Bytes32, amount: UInt64, expiryHeight: UInt64, height: UInt64)
    #if !DEVICE_NO_RENEWAL
        /// The device signed a short-lived certificate `id` for its fresh key, valid up to `notAfter` (Unix seconds),
        /// dated by the verified head at `height`: its publication is signed next.
        case certificateIssued(id: Bytes32, notAfter: UInt64, height: UInt64)
    #endif
}
