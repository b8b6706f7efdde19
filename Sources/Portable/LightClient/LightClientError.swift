import Ledger

/// Why the light client refused a checkpoint, a header, a proof or a trust anchor.
///
/// Each case names one rule, so firmware can count refusals per cause and a gateway operator can tell a
/// misconfigured device (wrong chain) from a lagging one (wrong epoch) from an attack (bad signature). No case
/// carries untrusted bytes beyond small numbers, so an error can be logged without copying attacker data.
public enum LightClientError: Error, Equatable, Sendable {
    /// The object belongs to another chain.
    case wrongChain(expected: UInt32, got: UInt32)
    /// The header is not of the epoch whose committee is trusted (an old checkpoint, or a skipped epoch).
    case wrongEpoch(expected: UInt64, got: UInt64)
    /// A checkpoint header is not at the last height of its epoch.
    case wrongHeight(expected: UInt64, got: UInt64)
    /// A header claims the trusted epoch but its height lies outside that epoch's range.
    case heightOutsideEpoch(height: UInt64, first: UInt64, last: UInt64)
    /// The header names no next committee, so it cannot move trust forward.
    case notACheckpoint
    /// The committee supplied is not the one whose hash the header commits to.
    case committeeMismatch
    /// The named committee is for an epoch other than the next one.
    case wrongCommitteeEpoch(expected: UInt64, got: UInt64)
    /// The certificate is for another height, round or block than the header beside it.
    case certificateMismatch
    /// The certificate's signatures do not show more than two thirds of the trusted committee's weight.
    case certificate(CommitCertificate.VerifyError)
    /// A trust anchor (genesis or provisioned checkpoint) does not hash to the value the device was given.
    case untrustedAnchor
    /// Epoch length zero, or an epoch or height so large the next one would overflow.
    case epochArithmetic
    /// A state proof does not connect the claimed value (or absence) to the verified state root.
    case stateProofMismatch
    /// An inclusion proof does not connect the transaction id to the verified transactions root.
    case inclusionProofMismatch
    /// A receipt proof does not connect the receipt to the verified receipts root.
    case receiptProofMismatch
}

extension LightClientError {
    /// The rule that refused, as a log names it: written once for the firmware's console (no String formatting on
    /// a board) and the host's messages.
    public var summary: StaticString {
        switch self {
        case .wrongChain: "wrong chain"
        case .wrongEpoch: "wrong epoch"
        case .wrongHeight: "wrong height"
        case .heightOutsideEpoch: "height outside the epoch"
        case .notACheckpoint: "not a checkpoint"
        case .committeeMismatch: "committee mismatch"
        case .wrongCommitteeEpoch: "wrong committee epoch"
        case .certificateMismatch: "certificate mismatch"
        case .certificate(.wrongBlock): "certificate for another block"
        case .certificate(.unknownMember): "certificate names an unknown member"
        case .certificate(.badSignature): "bad signature"
        case .certificate(.noQuorum): "no quorum"
        case .certificate(.duplicateMember): "duplicate signer"
        case .untrustedAnchor: "genesis header does not hash to the provisioned anchor"
        case .epochArithmetic: "epoch arithmetic"
        case .stateProofMismatch, .inclusionProofMismatch, .receiptProofMismatch: "proof mismatch"
        }
    }
}
