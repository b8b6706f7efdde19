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

    /// The trusting period a genesis derived and checked against its unbonding period (a device's provisioning
    /// carries it): nil for zero, which would trust nothing.
    public init?(trustingPeriod: UInt64, maxClockDrift: UInt64 = 10_000) {
        guard trustingPeriod > 0 else { return nil }
        self.trustingPeriod = trustingPeriod
        self.maxClockDrift = maxClockDrift
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
    /// cannot help; re-anchor.
    case outsideTrustingPeriod(age: UInt64, trustingPeriod: UInt64)
    /// The trusted state has no timestamp (saved before version 2): complete it from its checkpoint first.
    case noTimestamp
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
    case advanced(TrustedState, signatureChecks: Int)
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
        trusted state: TrustedState, checkpoint offer: SkippingCheckpoint, now: UInt64, options: SkippingOptions
    ) throws(SkippingError) -> SkipOutcome {
        guard let trustedTimestamp = state.timestamp else { throw .noTimestamp }
        let age = now >= trustedTimestamp ? now - trustedTimestamp : 0
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
        guard header.timestamp > trustedTimestamp, o3 || header.timestamp <= latest else {
            throw .badTimestamp(trusted: trustedTimestamp, got: header.timestamp, now: now)
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
                chainID: state.chainID, genesis: state.genesis, height: certificate.height, round: certificate.round,
                step: .commit,
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
            chainID: state.chainID, genesis: state.genesis, epochLength: state.epochLength, epoch: nextEpoch,
            committee: next, checkpointHash: hash, height: header.height, stateRoot: header.stateRoot,
            sequence: state.sequence &+ (nextEpoch - state.epoch), timestamp: header.timestamp)
        return .advanced(advanced, signatureChecks: checks)
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

/// What a skipping sync did: the final trust and the work spent.
public struct SkippingSyncReport: Equatable, Sendable {
    public var trusted: TrustedState
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
    case refused(SkippingError, trusted: TrustedState)
}

/// Plans a sync from a trusted state to the committee of a target epoch: jump as far as possible, bisect when a
/// checkpoint falls short of one third of the trusted weight (CometBFT's bisection).
///
/// Sans-I/O: it names the epoch whose closing checkpoint it wants (``nextPivot()``) and takes that checkpoint
/// (``take(_:now:options:)``); the device session and ``SkippingSync`` fetch. The pivot stack is bounded by 65
/// entries (each push halves the remaining distance), not by anything the network sends. An adjacent checkpoint
/// is checked with ``CheckpointVerifier/verifyNext(trusted:checkpoint:)``.
public struct SkippingPlanner: Sendable {
    public private(set) var report: SkippingSyncReport
    /// Epochs whose closing checkpoint to try; the last is tried first.
    private var pivots: [UInt64] = []

    public init(from start: TrustedState, toEpoch target: UInt64) {
        report = SkippingSyncReport(
            trusted: start, signatureChecks: 0, skips: 0, sequentialSteps: 0, bisections: 0, fetches: 0)
        if target > start.epoch { pivots.append(target - 1) }
    }

    public var trusted: TrustedState { report.trusted }

    /// The epoch whose closing checkpoint is wanted next; nil once the target's committee is trusted.
    public mutating func nextPivot() -> UInt64? {
        while let pivot = pivots.last, pivot < report.trusted.epoch { pivots.removeLast() }
        return pivots.last
    }

    /// Takes the checkpoint closing ``nextPivot()``'s epoch, with the committee that signed it: trust moves (a
    /// skip, or a sequential step for the adjacent epoch) or the planner bisects. A refusal leaves the trust as
    /// it was.
    public mutating func take(_ offer: SkippingCheckpoint, now: UInt64, options: SkippingOptions)
        throws(SkippingError)
    {
        guard let pivot = nextPivot() else { return }
        let from = report.trusted.epoch
        guard offer.checkpoint.header.epoch == pivot else {
            throw .notAhead(trustedEpoch: from, got: offer.checkpoint.header.epoch)
        }
        report.fetches += 1
        if pivot == from {
            let next: TrustedState
            do {
                next = try CheckpointVerifier.verifyNext(trusted: report.trusted, checkpoint: offer.checkpoint)
            } catch {
                throw .rejected(error)
            }
            report.signatureChecks += offer.checkpoint.certificate.signatures.count
            report.sequentialSteps += 1
            report.trusted = next
            pivots.removeLast()
            return
        }
        switch try CheckpointVerifier.verifySkipping(
            trusted: report.trusted, checkpoint: offer, now: now, options: options)
        {
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
}

/// ``SkippingPlanner`` driven by a fetch function (the benchmark's and the tests' in-memory chains).
public enum SkippingSync {
    public static func sync(
        from start: TrustedState, toEpoch target: UInt64, now: UInt64, options: SkippingOptions,
        fetch: (UInt64) -> SkippingCheckpoint?
    ) throws(SkippingSyncError) -> SkippingSyncReport {
        var planner = SkippingPlanner(from: start, toEpoch: target)
        while let pivot = planner.nextPivot() {
            guard let offer = fetch(pivot) else { throw .unavailable(epoch: pivot) }
            do { try planner.take(offer, now: now, options: options) } catch {
                throw .refused(error, trusted: planner.trusted)
            }
        }
        return planner.report
    }
}
