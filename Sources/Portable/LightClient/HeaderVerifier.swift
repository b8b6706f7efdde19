import AmarsCodec
import AmarsCrypto
import Ledger

/// A header whose commit certificate was checked against the trusted committee: the only source of roots
/// that ``ProofVerifier`` should be given. It exists only as the result of ``HeaderVerifier/verify``.
public struct VerifiedHeader: Equatable, Sendable {
    public let header: BlockHeader
    public let hash: Bytes32
    /// Weight that signed its certificate (more than two thirds of the committee's total).
    public let signedWeight: UInt64

    public var height: UInt64 { header.height }
    public var stateRoot: Bytes32 { header.stateRoot }
    public var transactionsRoot: Bytes32 { header.transactionsRoot }
}

/// Checks one header of the trusted epoch (SPEC "Light client": verify headers inside an epoch).
///
/// A block is final when more than two thirds of its epoch's committee signed its hash, so a header of the
/// trusted epoch needs nothing but its certificate: no parent header, no chain of links. A header of a later
/// epoch is refused with ``LightClientError/wrongEpoch(expected:got:)``: advance with ``CheckpointVerifier``
/// first. Pure function; no clock.
public enum HeaderVerifier {
    public static func verify(trusted: TrustedState, header: BlockHeader, certificate: CommitCertificate)
        throws(LightClientError) -> VerifiedHeader
    {
        guard header.chainID == trusted.chainID else {
            throw .wrongChain(expected: trusted.chainID, got: header.chainID)
        }
        guard header.epoch == trusted.epoch else { throw .wrongEpoch(expected: trusted.epoch, got: header.epoch) }
        guard let range = trusted.signedHeights else { throw .epochArithmetic }
        guard header.height >= range.first, header.height <= range.last else {
            throw .heightOutsideEpoch(height: header.height, first: range.first, last: range.last)
        }
        let hash = header.hash
        guard certificate.height == header.height, certificate.round >= header.round, certificate.blockHash == hash
        else { throw .certificateMismatch }
        let weight: UInt64
        do {
            weight = try certificate.verify(
                committee: trusted.committee, chainID: trusted.chainID, genesis: trusted.genesis, blockHash: hash)
        } catch {
            throw .certificate(error)
        }
        return VerifiedHeader(header: header, hash: hash, signedWeight: weight)
    }
}
