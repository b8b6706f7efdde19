import AmarsCodec
import AmarsCrypto
import Ledger

/// Moves trust from one epoch to the next, one checkpoint at a time (SPEC "Light client", sync).
///
/// Modelled on the CometBFT light client: a pure function of the trusted state and the untrusted checkpoint.
/// It performs no I/O and keeps no state, so the trusted state a caller holds is unchanged by any refusal (it
/// is passed by value and only the returned value carries the advance), and fetching checkpoints (the
/// "provider") is someone else's concern. No clock is consulted: sequential verification is safe at any time.
///
/// Skipping verification plugs in beside ``verifyNext(trusted:checkpoint:)`` as
/// `verifySkipping(trusted:checkpoint:now:options:)`: accept a checkpoint several epochs ahead when its
/// certificate carries at least one third of the trusted weight (the `UInt64` that
/// `CommitCertificate.verify` returns is that weight) and the trusted checkpoint is younger than a trusting
/// period shorter than unbonding; otherwise bisect through ``verifyNext(trusted:checkpoint:)``. It needs the
/// elected pool in the checkpoint (SPEC: committees re-drawn by VRF overlap too little), so it waits for that
/// change to the checkpoint format.
public enum CheckpointVerifier {
    /// Verifies `checkpoint`, the last block of epoch `trusted.epoch`, and returns the state that trusts the
    /// committee it names for the next epoch.
    ///
    /// Rules, cheapest first so that junk costs no signature checks: same chain; header of the trusted epoch;
    /// at the epoch's last height; naming a next committee; the named hash is the committee supplied; that
    /// committee is for the next epoch; the certificate is for this header; and more than two thirds of the
    /// trusted committee's weight signed it.
    public static func verifyNext(trusted: TrustedState, checkpoint: Checkpoint) throws(LightClientError)
        -> TrustedState
    {
        let header = checkpoint.header
        guard header.chainID == trusted.chainID else {
            throw .wrongChain(expected: trusted.chainID, got: header.chainID)
        }
        guard header.epoch == trusted.epoch else { throw .wrongEpoch(expected: trusted.epoch, got: header.epoch) }
        guard let range = trusted.signedHeights else { throw .epochArithmetic }
        guard header.height == range.last else { throw .wrongHeight(expected: range.last, got: header.height) }
        guard let named = header.nextCommitteeHash else { throw .notACheckpoint }
        let next = checkpoint.nextCommittee
        // Decoding already checks this, but a checkpoint can also be assembled in memory; the rule is cheap.
        guard named == next.hash else { throw .committeeMismatch }
        let nextEpoch = trusted.epoch + 1  // cannot overflow: signedHeights computed epoch + 1
        guard next.epoch == nextEpoch else { throw .wrongCommitteeEpoch(expected: nextEpoch, got: next.epoch) }
        let hash = header.hash
        let certificate = checkpoint.certificate
        guard certificate.height == header.height, certificate.round >= header.round, certificate.blockHash == hash
        else { throw .certificateMismatch }
        do {
            try certificate.verify(
                committee: trusted.committee, chainID: trusted.chainID, genesis: trusted.genesis, blockHash: hash)
        } catch {
            throw .certificate(error)
        }
        return TrustedState(
            chainID: trusted.chainID, genesis: trusted.genesis, epochLength: trusted.epochLength, epoch: nextEpoch,
            committee: next,
            checkpointHash: hash, height: header.height, stateRoot: header.stateRoot,
            sequence: trusted.sequence &+ 1, timestamp: header.timestamp, poolHash: header.nextPoolHash)
    }

    /// ``verifyNext(trusted:checkpoint:)`` as a `Result`, for callers that queue outcomes rather than branch.
    public static func verifyNextResult(trusted: TrustedState, checkpoint: Checkpoint)
        -> Result<TrustedState, LightClientError>
    {
        do { return .success(try verifyNext(trusted: trusted, checkpoint: checkpoint)) } catch {
            return .failure(error)
        }
    }
}
