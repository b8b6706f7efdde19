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
        // An image that leaves these operations out never meets their stages.
        #if DEVICE_NO_HTLC
            case .htlcProof: ""
        #else
            case .htlcProof: "HTLC proof"
        #endif
        #if DEVICE_NO_CHANNELS
            case .channelProof: ""
        #else
            case .channelProof: "channel proof"
        #endif
        case .certificateProof: "certificate proof"
        case .filterProof: "filter proof"
        case .notificationProof: "notification proof"
        }
    }
}

extension DeviceError {
    /// One line for every case but ``rejected(_:stage:)`` (named by its stage and the rule) and
    /// ``gateway(_:code:diagnostic:)`` (named by the resource and the code).
    public var summary: StaticString {
        switch self {
        case .rejected: "refused by the light client"
        case .gateway: "the gateway answered an error code"
        case .inconsistent(let what): what.summary
        case .notAnchored: "no trusted state: anchor at genesis first"
        case .notBuiltIn: "not built into this image"
        case .filter(.notCommitted): "filter bytes do not hash to the committed value"
        case .filter: "the filter does not decode"
        case .undecodable: "an answer does not decode as the payload its resource promises"
        case .outsideTrust: "the block is older than the trusted epoch"
        case .noCheckpointTo: "the block is past the trusted epoch and no checkpoint leads to it"
        case .trustExpired: "trust expired: the trusted committee is older than the trusting period; re-anchor"
        case .reanchorRefused(let why): why.summary
        case .otherChain: "the gateway serves another chain: its genesis block is not the device's"
        case .transactionRefused: "the transaction was refused"
        case .notFinal: "not final in time"
        case .nothingReceived: "no transfer arrived in time"
        case .noWallet: "the device has no key to pay with"
        case .insufficientFunds: "the proven balance is below the amount"
        case .wallet: "the wallet refused to sign"
        #if DEVICE_NO_HTLC
            case .htlc: ""  // never met in an image without claims
        #else
            case .htlc: "the proven HTLC cannot be claimed with this secret by this device"
        #endif
        case .failedOnChain: "final, but the proven receipt says it failed"
        case .busy: "another device operation is running"
        }
    }
}

extension DeviceError.Inconsistency {
    public var summary: StaticString {
        switch self {
        #if !DEVICE_NO_ESCROW
            case .stateRootMismatch(.escrowProof, _): "escrow proof names another state root than its block"
        #endif
        case .stateRootMismatch(.accountProof, _): "account proof names another state root than its block"
        case .stateRootMismatch: "a proof names another state root than its block"
        case .headerHeight: "the gateway served a header of another height"
        #if !(DEVICE_NO_ESCROW && DEVICE_NO_HTLC && DEVICE_NO_CHANNELS)
            case .staleObjectProof: "escrow, HTLC or channel proof from a block older than the verified head"
        #endif
        #if !DEVICE_NO_CERTIFICATES
            case .staleCertificateProof: "certificate proof from a block older than the verified head"
            case .certificateChain: "certificate records that are not one chain from the id asked to a root"
        #endif
        case .transactionProof: "the proof's block, receipt or position is not the transaction's"
        #if !DEVICE_NO_INBOX
            case .inboxEntry: "the inbox lists a transfer before the cursor, not paying this device, or not a transfer"
        #endif
        case .submittedID: "the gateway answered another transaction id"
        #if !DEVICE_NO_SKIP
            case .skipOffer: "the gateway's skip checkpoint is of another epoch, time or committee than asked"
        #endif
        case .trustedHeader: "the gateway served another header than the trusted checkpoint"
        case .notificationEntry: "notification of another index, or against its count"
        case .filterEpoch: "filter of another epoch than asked"
        #if !DEVICE_NO_COMMANDS || !DEVICE_NO_CHANNELS
            case .messageSequence: "messages listed out of order, or not newer than the last one seen"
        #endif
        // An image that leaves operations out (a board's DEVICE_NO_* switches) cannot meet their refusals.
        #if DEVICE_NO_ESCROW || DEVICE_NO_CERTIFICATES || DEVICE_NO_INBOX || DEVICE_NO_SKIP || (DEVICE_NO_COMMANDS && DEVICE_NO_CHANNELS)
            default: "answers that contradict each other"
        #endif
        }
    }
}

extension DeviceError.ReanchorRefusal {
    public var summary: StaticString {
        #if DEVICE_NO_REANCHOR
            // An image without re-anchoring never builds a refusal of one.
            return "re-anchor refused"
        #else
            switch self {
            case .noOperatorKey: "re-anchor refused: the device has no operator key"
            case .badSignature: "re-anchor refused: not signed by the provisioned operator key"
            case .behindTrust: "re-anchor refused: its checkpoint is older than the trusted one"
            case .stale: "re-anchor refused: its checkpoint is older than the trusting period"
            case .future: "re-anchor refused: its checkpoint is dated ahead of the device's clock"
            case .checkpoint: "re-anchor refused: not a checkpoint of this chain"
            }
        #endif
    }
}
