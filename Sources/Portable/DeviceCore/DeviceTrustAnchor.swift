import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient

/// What a device must be given out of band to trust anything (SPEC "Light client"): the hash of the genesis
/// header and the committee of epoch 0 that the header names, plus the epoch length.
///
/// Why the committee is provisioned: the gateway serves the genesis header (`v1/headers?h=0`, whose certificate
/// is empty) and checkpoints name the committee of the *next* epoch, so no device payload carries the committee
/// of epoch 0. It is part of the genesis document, so a device provisioned from the genesis file has it anyway;
/// ``TrustedState/anchored(header:committee:epochLength:trustedHash:)`` checks that the fetched genesis header
/// hashes to ``genesisHeaderHash`` and names exactly this committee, so neither can be swapped on the wire.
public struct DeviceTrustAnchor: Equatable, Sendable {
    public var chainID: UInt32
    public var epochLength: UInt64
    /// Hash of the block header at height 0 (not the genesis document's hash, which that header links to).
    public var genesisHeaderHash: Bytes32
    public var committee: Committee
    /// How long a verified committee stays trusted (ms from its checkpoint's timestamp): the genesis derives it
    /// from the unbonding period (`Genesis.trustingPeriodMillis`). Past it the session refuses to follow the
    /// chain. 0: not checked (a device that cannot tell the time; tests).
    public var trustingPeriodMillis: UInt64
    /// The operator's x-only key whose re-anchor statements the device accepts once its trust has expired
    /// (``DeviceSession/reanchor(_:wallClock:)``); nil: it can only be re-provisioned.
    public var reanchorKey: Bytes32?

    public init(
        chainID: UInt32, epochLength: UInt64, genesisHeaderHash: Bytes32, committee: Committee,
        trustingPeriodMillis: UInt64 = 0, reanchorKey: Bytes32? = nil
    ) {
        self.chainID = chainID
        self.epochLength = epochLength
        self.genesisHeaderHash = genesisHeaderHash
        self.committee = committee
        self.trustingPeriodMillis = trustingPeriodMillis
        self.reanchorKey = reanchorKey
    }

    /// The anchor of the chain whose height-0 header is `genesisHeader` (a provisioning tool derives it from the
    /// genesis file: `Genesis.header`).
    public init(
        genesisHeader: BlockHeader, committee: Committee, epochLength: UInt64, trustingPeriodMillis: UInt64 = 0,
        reanchorKey: Bytes32? = nil
    ) {
        self.init(
            chainID: genesisHeader.chainID, epochLength: epochLength, genesisHeaderHash: genesisHeader.hash,
            committee: committee, trustingPeriodMillis: trustingPeriodMillis, reanchorKey: reanchorKey)
    }

    /// The options skipping verification runs with; nil without a trusting period.
    public var skippingOptions: SkippingOptions? { SkippingOptions(trustingPeriod: trustingPeriodMillis) }
}
