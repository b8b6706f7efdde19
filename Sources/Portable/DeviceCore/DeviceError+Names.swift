import LightClient

// One short name per refusal, written once: the firmware prints them as they are (no String formatting on a
// board) and the host clients build their messages around them.

extension DeviceError.Stage {
    /// What was being checked, as a log names it.
    public var name: StaticString {
        switch self {
        case .anchor: "genesis header"
        case .checkpoint: "checkpoint"
        case .header: "header"
        case .accountProof: "account proof"
        case .transactionProof: "inclusion proof"
        case .receiptProof: "receipt proof"
        case .escrowProof: "escrow proof"
        }
    }
}

extension DeviceError.Inconsistency {
    public var summary: StaticString {
        switch self {
        case .stateRootMismatch(.escrowProof, _): "escrow proof names another state root than its block"
        case .stateRootMismatch: "account proof names another state root than its block"
        case .headerHeight: "the gateway served a header of another height"
        case .staleEscrowProof: "escrow proof from a block older than the verified head"
        case .transactionProof: "the proof's block, receipt or position is not the transaction's"
        case .inboxEntry: "the inbox lists a transfer before the cursor, not paying this device, or not a transfer"
        case .submittedID: "the gateway answered another transaction id"
        }
    }
}

extension LightClientError {
    /// The rule that refused, as a log names it.
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
