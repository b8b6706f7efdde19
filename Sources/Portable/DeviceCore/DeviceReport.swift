import AmarsCodec
import Ledger
import LightClient

/// Steps a device took on the way to an outcome, for its log (the firmware's console, `amars device -v`, the
/// simulator's counters). Drivers drain them with ``DeviceSession/takeReports()``; nothing depends on them.
public enum DeviceReport: Equatable, Sendable {
    /// The checkpoint that closed epoch `epoch` was verified; trust moved to `trusted`.
    case checkpointVerified(epoch: UInt64, height: UInt64, signatures: Int, trusted: UInt64)
    /// A header a proof or the head refers to was verified.
    case headerVerified(TrustedHeader)
    /// The transaction was submitted and the gateway pooled it.
    case submitted(id: Bytes32, bytes: Int)
    /// The payment the device signed.
    case signed(SignedTransaction, maxFeePerUnit: UInt64, baseFee: UInt64, height: UInt64)
    /// The gateway listed a transfer to the device (not yet proven).
    case listed(height: UInt64, position: UInt64, polls: Int)
    /// A listed transfer was proven final but its receipt says it failed: passed over.
    case failedTransferSkipped(id: Bytes32)
}
