import AmarsCodec
import AmarsCrypto
import Ledger

// Skipping verification (SPEC "Light client": skipping and the pool idea), after the CometBFT light client.
//
// Why it is safe: within the trusting period the trusted committee is assumed to have less than one third of
// faulty weight, and those members are still bonded, so double-signing is slashable. A certificate carrying at
// least one third of the trusted weight therefore holds at least one honest signature, and an honest member
// signs a commit vote only for the canonical block. The signing committee is untrusted here: it only maps the
// certificate's member indices to keys; each key then earns the weight the *trusted* committee gives it, or
// nothing.
//
// How far it reaches today: certificates are signed by the committee of the checkpoint's own epoch, re-drawn by
// VRF from the pool every epoch, so a far checkpoint overlaps the trusted committee only as much as two draws
// overlap (about committee/pool of the members still in the pool, and of those only the ones that signed).
// ``SkippingOverlap`` makes that measurable before any signature is checked. The step beyond (SPEC: the elected
// pool also signs each checkpoint, which names the next pool) needs no change here: trust the pool as the
// `Committee` and pass the pool's signatures; the pool changes slowly, so jumps grow from weeks to months.

/// A trusted state together with the timestamp (ms) of the header that named its committee: the trusting
/// period is measured from that instant.
///
/// Kept beside ``TrustedState`` rather than inside it so that sequential sync (clock-free) and the stored slot
/// format are unchanged; a device that skips persists the timestamp with the state (a format version bump).
public struct SkippingTrust: Equatable, Sendable {
    public var state: TrustedState
    /// Milliseconds, header time of the checkpoint (or anchor) that named `state.committee`.
    public var timestamp: UInt64

    public init(state: TrustedState, timestamp: UInt64) {
        self.state = state
        self.timestamp = timestamp
    }
}

/// A checkpoint offered for skipping, with the committee that signed it (the committee of the checkpoint's
/// epoch, which the device does not know). That committee is a hint, not trusted: it only names the key behind
/// each member index of the certificate, since a commit vote's signed message includes the voter's key.
public struct SkippingCheckpoint: Equatable, Sendable {
    public var checkpoint: Checkpoint
    public var signingCommittee: Committee

    public init(checkpoint: Checkpoint, signingCommittee: Committee) {
        self.checkpoint = checkpoint
        self.signingCommittee = signingCommittee
    }
}

/// Limits of skipping. The trusting period must be shorter than the unbonding period, so that every member
/// whose signature is counted can still be slashed for lying.
public struct SkippingOptions: Equatable, Sendable {
    /// Milliseconds after the trusted checkpoint's timestamp during which skipping from it is allowed.
    public let trustingPeriod: UInt64
    /// Milliseconds a checkpoint's timestamp may lie ahead of `now` (clock skew between device and chain).
    public let maxClockDrift: UInt64

    public enum OptionsError: Error, Equatable, Sendable {
        case trustingPeriodNotShorterThanUnbonding
        case zeroTrustingPeriod
    }

    /// Refuses a trusting period of zero or not shorter than `unbondingPeriod` (ms): such options would count
    /// signatures of members who may already have withdrawn their stake.
    public init(trustingPeriod: UInt64, unbondingPeriod: UInt64, maxClockDrift: UInt64 = 10_000)
        throws(OptionsError)
    {
        guard trustingPeriod > 0 else { throw .zeroTrustingPeriod }
        guard trustingPeriod < unbondingPeriod else { throw .trustingPeriodNotShorterThanUnbonding }
        self.trustingPeriod = trustingPeriod
        self.maxClockDrift = maxClockDrift
    }
}

/// How much of the trusted committee's weight a certificate claims, counted by key and before any signature is
/// checked. `signedTrusted` is an upper bound of what verification can confirm.
public struct SkippingOverlap: Equatable, Sendable {
    /// Trusted weight of the distinct trusted keys among the certificate's signers.
    public var signedTrusted: UInt64
    /// Total weight of the trusted committee.
    public var trustedTotal: UInt64
    /// Signers whose key the trusted committee holds.
    public var trustedSigners: Int
    /// All signatures in the certificate.
    public var signers: Int

    public init(signedTrusted: UInt64, trustedTotal: UInt64, trustedSigners: Int, signers: Int) {
        self.signedTrusted = signedTrusted
        self.trustedTotal = trustedTotal
        self.trustedSigners = trustedSigners
        self.signers = signers
    }

    /// At least one third of the trusted weight (128-bit arithmetic, so no weights overflow the comparison).
    public var reachesOneThird: Bool {
        let lhs = signedTrusted.multipliedFullWidth(by: 3)
        return lhs.high > 0 || lhs.low >= trustedTotal
    }
}

/// Why a checkpoint offered for skipping was refused. `needsBisection` is not among them: it is an outcome.
public enum SkippingError: Error, Equatable, Sendable {
    /// The trusted checkpoint is as old as the trusting period or older: its signers may be unbonded. Skipping
    /// cannot help; re-anchor, or sync sequentially.
    case outsideTrustingPeriod(age: UInt64, trustingPeriod: UInt64)
    /// The checkpoint is not after the trusted one in time, or lies in the future beyond the allowed drift.
    case badTimestamp(trusted: UInt64, got: UInt64, now: UInt64)
    /// The checkpoint does not close an epoch after the trusted one (use ``CheckpointVerifier/verifyNext``).
    case notAhead(trustedEpoch: UInt64, got: UInt64)
    /// The signing committee hint is for another epoch than the checkpoint's header.
    case signingCommitteeEpoch(expected: UInt64, got: UInt64)
    /// A structural or signature rule failed, as in sequential verification. A bad signature by a trusted key is
    /// refused outright, not ignored: it is evidence of forgery.
    case rejected(LightClientError)
}

/// Result of one skipping attempt.
public enum SkipOutcome: Equatable, Sendable {
    /// Trust moved to the committee the checkpoint names; `signatureChecks` Schnorr verifications were spent.
    case advanced(SkippingTrust, signatureChecks: Int)
    /// The certificate cannot show one third of the trusted weight (`overlap` tells by how much it falls short);
    /// no signature was checked. Bisect: try a checkpoint nearer to the trusted one.
    case needsBisection(SkippingOverlap)
}

extension CheckpointVerifier {
    /// The trusted weight a certificate claims through `signingCommittee`, counted by key without checking any
    /// signature: free, so a planner measures overlap before spending verification work. Each trusted member
    /// counts at most once, even if a hostile hint lists its key at several indices.
    public static func overlap(
        trusted: Committee, signingCommittee: Committee, certificate: CommitCertificate
    ) -> SkippingOverlap {
        var counted = MemberSet()
        var weight: UInt64 = 0
        var trustedSigners = 0
        for s in certificate.signatures {
            let i = Int(s.memberIndex)
            guard i < signingCommittee.members.count,
                let t = trusted.index(of: signingCommittee.members[i].key), counted.insert(t)
            else { continue }
            weight += trusted.members[t].weight  // cannot overflow: bounded by the trusted total
            trustedSigners += 1
        }
        return SkippingOverlap(
            signedTrusted: weight, trustedTotal: trusted.totalWeight, trustedSigners: trustedSigners,
            signers: certificate.signatures.count)
    }

    /// Accepts `offer`, the checkpoint closing an epoch after `trusted.state.epoch`, when its certificate
    /// carries at least one third of the trusted committee's weight and the trusted checkpoint is younger than
    /// the trusting period; then trusts the committee the checkpoint names.
    ///
    /// Rules, cheapest first so that junk costs no signature checks: trusting period; same chain; an epoch ahead;
    /// at that epoch's last height; naming a next committee that hashes as named and is for the next epoch; a
    /// timestamp after the trusted one and not in the future; a certificate for this header; the hint for the
    /// header's epoch; the claimed trusted weight (no crypto) reaching one third, else ``SkipOutcome/needsBisection``;
    /// finally the signatures of trusted keys, stopping once one third is confirmed. Signatures by keys the
    /// device does not trust are never checked: they count nothing either way.
    ///
    /// Pure: `trusted` is a value, and only the returned outcome carries an advance.
    public static func verifySkipping(
        trusted: SkippingTrust, checkpoint offer: SkippingCheckpoint, now: UInt64, options: SkippingOptions
    ) throws(SkippingError) -> SkipOutcome {
        let state = trusted.state
        let age = now >= trusted.timestamp ? now - trusted.timestamp : 0
        guard age < options.trustingPeriod else {
            throw .outsideTrustingPeriod(age: age, trustingPeriod: options.trustingPeriod)
        }
        let checkpoint = offer.checkpoint
        let header = checkpoint.header
        guard header.chainID == state.chainID else {
            throw .rejected(.wrongChain(expected: state.chainID, got: header.chainID))
        }
        guard header.epoch > state.epoch else { throw .notAhead(trustedEpoch: state.epoch, got: header.epoch) }
        let (nextEpoch, o1) = header.epoch.addingReportingOverflow(1)
        let (last, o2) = nextEpoch.multipliedReportingOverflow(by: state.epochLength)
        guard !o1, !o2, state.epochLength > 0 else { throw .rejected(.epochArithmetic) }
        guard header.height == last else { throw .rejected(.wrongHeight(expected: last, got: header.height)) }
        guard let named = header.nextCommitteeHash else { throw .rejected(.notACheckpoint) }
        let next = checkpoint.nextCommittee
        guard named == next.hash else { throw .rejected(.committeeMismatch) }
        guard next.epoch == nextEpoch else {
            throw .rejected(.wrongCommitteeEpoch(expected: nextEpoch, got: next.epoch))
        }
        let (latest, o3) = now.addingReportingOverflow(options.maxClockDrift)
        guard header.timestamp > trusted.timestamp, o3 || header.timestamp <= latest else {
            throw .badTimestamp(trusted: trusted.timestamp, got: header.timestamp, now: now)
        }
        let hash = header.hash
        let certificate = checkpoint.certificate
        guard certificate.height == header.height, certificate.round >= header.round, certificate.blockHash == hash
        else { throw .rejected(.certificateMismatch) }
        let signing = offer.signingCommittee
        guard signing.epoch == header.epoch else {
            throw .signingCommitteeEpoch(expected: header.epoch, got: signing.epoch)
        }
        let claimed = overlap(trusted: state.committee, signingCommittee: signing, certificate: certificate)
        guard claimed.reachesOneThird else { return .needsBisection(claimed) }

        // Verify trusted signers until one third is confirmed. The claim reached it, so the loop either
        // confirms it or throws on a bad signature.
        var confirmed = SkippingOverlap(
            signedTrusted: 0, trustedTotal: state.committee.totalWeight, trustedSigners: 0,
            signers: certificate.signatures.count)
        var counted = MemberSet()
        var checks = 0
        var previous = -1
        for s in certificate.signatures {
            let i = Int(s.memberIndex)
            guard i > previous else { throw .rejected(.certificate(.duplicateMember(index: s.memberIndex))) }
            previous = i
            guard i < signing.members.count else { continue }
            let key = signing.members[i].key
            guard let t = state.committee.index(of: key), counted.insert(t) else { continue }
            let message = Vote.signingHash(
                chainID: state.chainID, height: certificate.height, round: certificate.round, step: .commit,
                blockHash: hash, voter: key)
            checks += 1
            guard let publicKey = try? XOnlyPublicKey(bytes: key),
                publicKey.verifySchnorr(s.signature, message: message)
            else { throw .rejected(.certificate(.badSignature(index: s.memberIndex))) }
            confirmed.signedTrusted += state.committee.members[t].weight
            confirmed.trustedSigners += 1
            if confirmed.reachesOneThird { break }
        }
        guard confirmed.reachesOneThird else {
            // Unreachable (the loop counts what the claim counted), kept so no path trusts unconfirmed weight.
            throw .rejected(
                .certificate(.noQuorum(signed: confirmed.signedTrusted, total: confirmed.trustedTotal)))
        }
        // The sequence counts epochs advanced, so a state reached by skipping equals the one sequential sync
        // reaches (an anti-rollback counter needs only monotonicity).
        let advanced = TrustedState(
            chainID: state.chainID, epochLength: state.epochLength, epoch: nextEpoch, committee: next,
            checkpointHash: hash, height: header.height, stateRoot: header.stateRoot,
            sequence: state.sequence &+ (nextEpoch - state.epoch))
        return .advanced(SkippingTrust(state: advanced, timestamp: header.timestamp), signatureChecks: checks)
    }
}

/// A set of committee member indices below ``Caps/committeeMembers`` (128) in two words: no allocation, so a
/// hostile certificate cannot make the device allocate.
struct MemberSet {
    private var low: UInt64 = 0
    private var high: UInt64 = 0

    /// Inserts `i`; false if it was already present or out of range.
    mutating func insert(_ i: Int) -> Bool {
        guard i >= 0, i < 128 else { return false }
        let bit: UInt64 = 1 << UInt64(i & 63)
        if i < 64 {
            if low & bit != 0 { return false }
            low |= bit
        } else {
            if high & bit != 0 { return false }
            high |= bit
        }
        return true
    }
}

/// What a ``SkippingSync`` run did: the final trust and the work spent.
public struct SkippingSyncReport: Equatable, Sendable {
    public var trusted: SkippingTrust
    /// Schnorr verifications performed (sequential steps count every signature of their certificate).
    public var signatureChecks: Int
    /// Checkpoints accepted by skipping.
    public var skips: Int
    /// Checkpoints accepted sequentially (adjacent epoch, more than two thirds).
    public var sequentialSteps: Int
    /// Skipping attempts that fell short of one third (cost no signature checks).
    public var bisections: Int
    /// Checkpoints fetched.
    public var fetches: Int
}

/// Why a ``SkippingSync`` run stopped before the target.
public enum SkippingSyncError: Error, Equatable, Sendable {
    /// The provider had no checkpoint closing this epoch.
    case unavailable(epoch: UInt64)
    /// A checkpoint was refused; `trusted` is the last state reached (every advance up to it was verified).
    case refused(SkippingError, trusted: SkippingTrust)
}

/// Plans a sync from a trusted state to the committee of a target epoch: jump as far as possible, bisect when a
/// checkpoint falls short of one third of the trusted weight (CometBFT's bisection).
///
/// Pure: no I/O of its own, no clock; the caller supplies `now` and a fetch function for "the checkpoint closing
/// epoch E" (generic and non-escaping, so Embedded Swift specialises it). The pivot stack is bounded by 65
/// entries (each push halves the remaining distance), not by anything the network sends. An adjacent checkpoint
/// is checked with ``CheckpointVerifier/verifyNext(trusted:checkpoint:)``, which needs no trusting period.
public enum SkippingSync {
    public static func sync(
        from start: SkippingTrust, toEpoch target: UInt64, now: UInt64, options: SkippingOptions,
        fetch: (UInt64) -> SkippingCheckpoint?
    ) throws(SkippingSyncError) -> SkippingSyncReport {
        var report = SkippingSyncReport(
            trusted: start, signatureChecks: 0, skips: 0, sequentialSteps: 0, bisections: 0, fetches: 0)
        guard target > start.state.epoch else { return report }
        // Pivots are epochs whose closing checkpoint to try next; the last is tried first.
        var pivots: [UInt64] = []
        pivots.reserveCapacity(65)
        pivots.append(target - 1)
        while let pivot = pivots.last {
            let trusted = report.trusted
            let from = trusted.state.epoch
            if pivot < from {
                pivots.removeLast()
                continue
            }
            guard let offer = fetch(pivot) else { throw .unavailable(epoch: pivot) }
            report.fetches += 1
            if pivot == from {
                let next: TrustedState
                do {
                    next = try CheckpointVerifier.verifyNext(trusted: trusted.state, checkpoint: offer.checkpoint)
                } catch {
                    throw .refused(.rejected(error), trusted: trusted)
                }
                report.signatureChecks += offer.checkpoint.certificate.signatures.count
                report.sequentialSteps += 1
                report.trusted = SkippingTrust(state: next, timestamp: offer.checkpoint.header.timestamp)
                pivots.removeLast()
                continue
            }
            let outcome: SkipOutcome
            do {
                outcome = try CheckpointVerifier.verifySkipping(
                    trusted: trusted, checkpoint: offer, now: now, options: options)
            } catch {
                throw .refused(error, trusted: trusted)
            }
            switch outcome {
            case .advanced(let next, let checks):
                report.signatureChecks += checks
                report.skips += 1
                report.trusted = next
                pivots.removeLast()
            case .needsBisection:
                report.bisections += 1
                pivots.append(from + (pivot - from) / 2)
            }
        }
        return report
    }
}
