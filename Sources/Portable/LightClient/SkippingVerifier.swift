import AmarsCodec
import AmarsCrypto
import Ledger

// Skipping verification (SPEC "Light client": skipping and the pool), after the CometBFT light client.
//
// Why it is safe: within the trusting period the trusted delegate pool is assumed to have less than one third of
// faulty weight (the committee is drawn from it, so the chain assumes no less), and its members are still
// bonded, so signing two checkpoints for one height is slashable (``VoteStep/checkpoint`` attestations are votes
// and go into double-sign evidence like any other). Attestations by at least one third of the trusted pool's
// weight therefore include an honest one, and an honest member attests only the checkpoint its own gateway
// finalized.
//
// Why the pool and not the committee: the committee is re-drawn by VRF every epoch, so after two weeks it shares
// too little weight with the trusted one (measured: 11.1% of 14-day wakes needed more than one step). The pool
// changes only as elections replace members, so a third of it still attests after weeks. The header of each
// checkpoint names the next pool by hash; the device keeps only that hash, and the gateway sends the roster it
// counts against with each offer.

/// A checkpoint offered for skipping, with what counts for it: the roster of the pool the device trusts (the
/// gateway knows it from the device's trusted epoch; the device checks it against its pool hash) and the
/// attestations of the checkpoint by members of that roster, indexed into it.
public struct SkippingCheckpoint: Equatable, Sendable {
    public var checkpoint: Checkpoint
    public var trustedPool: Committee
    /// Step ``VoteStep/checkpoint``, round 0, for the checkpoint's height and hash; member indices are positions
    /// in ``trustedPool``.
    public var attestations: CommitCertificate

    public init(checkpoint: Checkpoint, trustedPool: Committee, attestations: CommitCertificate) {
        self.checkpoint = checkpoint
        self.trustedPool = trustedPool
        self.attestations = attestations
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

/// How much of the trusted pool's weight attestations claim, counted by index before any signature is checked.
/// `signedTrusted` is an upper bound of what verification can confirm.
public struct SkippingOverlap: Equatable, Sendable {
    /// Trusted weight of the distinct roster members among the attesters.
    public var signedTrusted: UInt64
    /// Total weight of the trusted pool.
    public var trustedTotal: UInt64
    /// Attesters inside the roster.
    public var trustedSigners: Int
    /// All attestations offered.
    public var signers: Int

    public init(signedTrusted: UInt64, trustedTotal: UInt64, trustedSigners: Int, signers: Int) {
        self.signedTrusted = signedTrusted
        self.trustedTotal = trustedTotal
        self.trustedSigners = trustedSigners
        self.signers = signers
    }

    /// At least one third of the trusted weight (128-bit arithmetic, so no weights overflow the comparison).
    public var reachesOneThird: Bool { Committee.reachesOneThird(signedTrusted, of: trustedTotal) }
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
    /// The pool roster offered is not the one the trusted state names (its hash differs).
    case untrustedPool
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
    /// The trusted weight the attestations claim, by member index and before any signature is checked: free, so
    /// a planner measures overlap before spending verification work. Indices must rise strictly (the encoding's
    /// rule), so no member counts twice; indices past the roster count nothing.
    public static func overlap(trustedPool: Committee, attestations: CommitCertificate) -> SkippingOverlap {
        var weight: UInt64 = 0
        var signers = 0
        var previous = -1
        for s in attestations.signatures {
            let i = Int(s.memberIndex)
            guard i > previous, i < trustedPool.members.count else { continue }
            previous = i
            weight += trustedPool.members[i].weight  // cannot overflow: bounded by the roster's total
            signers += 1
        }
        return SkippingOverlap(
            signedTrusted: weight, trustedTotal: trustedPool.totalWeight, trustedSigners: signers,
            signers: attestations.signatures.count)
    }

    /// Accepts `offer`, the checkpoint closing an epoch after `trusted.state.epoch`, when members of the trusted
    /// pool holding at least one third of its weight attested it and the trusted checkpoint is younger than the
    /// trusting period; then trusts the committee and the pool the checkpoint names.
    ///
    /// Rules, cheapest first so that junk costs no signature checks: trusting period; same chain; an epoch ahead;
    /// at that epoch's last height; naming a next committee that hashes as named and is for the next epoch; a
    /// timestamp after the trusted one and not in the future; a trusted state that knows its pool (else
    /// ``SkipOutcome/needsBisection``: the adjacent, sequential step supplies it); the roster hashing to that
    /// pool; attestations of this header; their claimed weight (no crypto) reaching one third, else
    /// ``SkipOutcome/needsBisection``; finally the signatures, stopping once one third is confirmed.
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
        let pool = offer.trustedPool
        guard let poolHash = state.poolHash else {
            return .needsBisection(
                SkippingOverlap(signedTrusted: 0, trustedTotal: 0, trustedSigners: 0, signers: 0))
        }
        guard pool.hash == poolHash else { throw .untrustedPool }
        let hash = header.hash
        let attestations = offer.attestations
        guard attestations.height == header.height, attestations.round == 0, attestations.blockHash == hash else {
            throw .rejected(.certificateMismatch)
        }
        let claimed = overlap(trustedPool: pool, attestations: attestations)
        guard claimed.reachesOneThird else { return .needsBisection(claimed) }

        // Verify attestations until one third is confirmed. The claim reached it, so the loop either confirms it
        // or throws on a bad signature or a repeated index.
        var confirmed = SkippingOverlap(
            signedTrusted: 0, trustedTotal: pool.totalWeight, trustedSigners: 0,
            signers: attestations.signatures.count)
        var checks = 0
        var previous = -1
        for s in attestations.signatures {
            let i = Int(s.memberIndex)
            guard i > previous else { throw .rejected(.certificate(.duplicateMember(index: s.memberIndex))) }
            previous = i
            guard i < pool.members.count else { continue }
            let key = pool.members[i].key
            let message = Vote.signingHash(
                chainID: state.chainID, genesis: state.genesis, height: attestations.height, round: 0,
                step: .checkpoint, blockHash: hash, voter: key)
            checks += 1
            guard let publicKey = try? XOnlyPublicKey(bytes: key),
                publicKey.verifySchnorr(s.signature, message: message)
            else { throw .rejected(.certificate(.badSignature(index: s.memberIndex))) }
            confirmed.signedTrusted += pool.members[i].weight
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
            sequence: state.sequence &+ (nextEpoch - state.epoch), timestamp: header.timestamp,
            poolHash: header.nextPoolHash)
        return .advanced(advanced, signatureChecks: checks)
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

    /// Takes the checkpoint closing ``nextPivot()``'s epoch, with the pool's attestations: trust moves (a
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

/// ``SkippingPlanner`` driven by a fetch function (the benchmark's and the tests' in-memory chains), which gets
/// the pivot and the trust so far (whose pool the offer's attestations must come from), as `v1/skip` does.
public enum SkippingSync {
    public static func sync(
        from start: TrustedState, toEpoch target: UInt64, now: UInt64, options: SkippingOptions,
        fetch: (_ pivot: UInt64, _ trusted: TrustedState) -> SkippingCheckpoint?
    ) throws(SkippingSyncError) -> SkippingSyncReport {
        var planner = SkippingPlanner(from: start, toEpoch: target)
        while let pivot = planner.nextPivot() {
            guard let offer = fetch(pivot, planner.trusted) else { throw .unavailable(epoch: pivot) }
            do { try planner.take(offer, now: now, options: options) } catch {
                throw .refused(error, trusted: planner.trusted)
            }
        }
        return planner.report
    }
}
