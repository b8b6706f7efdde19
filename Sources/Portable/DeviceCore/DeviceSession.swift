import AmarsCodec
import AmarsCrypto
import DeviceIdentity
import DeviceProtocol
import Ledger
import LightClient

/// What the session wants next from its driver.
public enum DeviceAction: Equatable, Sendable {
    /// Send this request and hand the answer to ``DeviceSession/receive(_:now:)``.
    case send(DeviceRequest)
    /// Wait this long (the gateway has nothing yet), then call ``DeviceSession/wake(now:)``.
    case sleep(millis: UInt32)
    case done(DeviceOutcome)
    case failed(DeviceError)
}

/// The device's side of the protocol, written once: the firmware drives it over its UART, `amars device` and
/// the simulator over UDP and MQTT, tests in-process against the gateway's handlers.
///
/// Sans-I/O: it emits requests and consumes answers, takes the time as a parameter and holds no socket, so
/// the same decisions are made on every transport. Every check is LightClient's; this type only sequences
/// them, and refuses an answer that contradicts the question or an earlier answer. Trust moves only through
/// ``CheckpointVerifier``: a sync that fails at checkpoint N keeps the N − 1 verified before it.
public struct DeviceSession: Sendable {
    public struct Configuration: Equatable, Sendable {
        /// Checkpoints asked per request: 1 on a board (one fits its receive buffer), up to 64 on a host.
        public var checkpointPage: Int
        /// How long to wait before asking again for something the gateway does not have yet.
        public var pollMillis: UInt32
        /// Whether a full sync skips (`v1/skip`: the newest checkpoint first, bisecting when it carries less
        /// than a third of the trusted weight) when the anchor has a trusting period and the link a wall clock.
        public var skipping: Bool

        public init(checkpointPage: Int = CheckpointsPayload.maxCount, pollMillis: UInt32 = 250, skipping: Bool = true)
        {
            self.checkpointPage = max(1, min(checkpointPage, CheckpointsPayload.maxCount))
            self.pollMillis = pollMillis
            self.skipping = skipping
        }
    }

    public let anchor: DeviceTrustAnchor
    public var configuration: Configuration
    /// Nil until anchored (or resumed from a saved state).
    public private(set) var trusted: TrustedState?
    /// The device's own account, when it has a key: what ``DeviceOperation/pay(_:)`` signs with.
    public private(set) var wallet: DeviceWallet?

    // The running operation. A board has 16 KiB of stack and pays in flash for every copy of a value that holds
    // arrays, so answers still to be checked are kept as the bytes that came in and decoded where they are
    // checked, steps are enums of plain values, and the results handed back are plain values too.

    /// The running operation's current step.
    private var job: Job = .idle
    /// The composite operation the step belongs to.
    private var parent: Parent = .none
    /// The resource whose answer is awaited.
    private var awaiting: DeviceResource?
    /// The height asked of `v1/headers`, which the answer must carry (nil: no height asked).
    private var askedHeight: UInt64?
    /// Bytes that start with the ``HeaderPayload`` still to be verified (a head or header answer, or a
    /// transaction proof, which starts with its block's header); empty when none is.
    private var headerBody: [UInt8] = []
    /// The height of that header while it waits for the checkpoints that reach its epoch.
    private var pendingHeight: UInt64?
    /// The proof answer (account, escrow, transaction) checked once its header is verified.
    private var proofBody: [UInt8] = []
    /// That header, verified (its roots are read again from ``headerBody`` when the proof is checked).
    private var verifiedHeader: TrustedHeader?
    /// The hash of the last header whose certificate was checked, and what the check found, kept across
    /// operations: a proof at the head just verified (an escrow's, an HTLC's, the account a claim pays from) names
    /// the same block, and its signatures are not checked again. A header's hash commits to every field, so the
    /// same hash is the same verified header. Zero: none.
    private var recentHash = Bytes32.zero
    private var recentBasis = TrustedHeader.Basis.trustedCheckpoint
    /// Where the inbox said a transfer landed; its proof must agree.
    private var listed: Listed?
    /// The addresses a recipient-filter operation tests.
    private var watching: [Address] = []
    /// The payment being made (or an HTLC claim's fee terms), and its signed transaction once there is one.
    private var order: PaymentOrder?
    #if !DEVICE_NO_HTLC
        /// The HTLC claim being made, and the amount the contract was proven to hold.
        private var claiming: HTLCClaim?
        private var claimAmount: UInt64 = 0
    #endif
    #if !DEVICE_NO_RENEWAL
        /// The renewal being made, then the certificate it signed.
        private var renewal: CertificateRenewalOrder?
        private var issued: DeviceCertificate?
    #endif
    private var outgoing: OutgoingTransaction?
    private var progress = SyncProgress(fromEpoch: 0, toEpoch: 0)
    private var deadline: UInt64 = 0
    private var polls = 0
    private var now: UInt64 = 0
    /// Milliseconds since the Unix epoch when the running operation started, if the driver can tell.
    private var wallClock: UInt64?
    #if !DEVICE_NO_SKIP
        /// A skipping sync's plan, once the newest checkpoint told it how far to go.
        private var planner: SkippingPlanner?
    #endif
    /// The operation waiting for its trust to be dated or re-anchored (``checkTrust()``).
    private var pending: DeviceOperation?
    /// The refusal of a sync's first checkpoint, held while ``Job/checkingChain`` asks whose chain it was.
    private var refusal: DeviceError?
    /// A gateway's refusal of the payment being made, held until the chain has said whether its nonce was used.
    private var refusedCode: ShortText?
    /// The paying wallet's address, whose account a refusal has proven again (set as each payment starts).
    private var payer: Address?
    /// Whether a sync that learnt nothing asks for the gateway's genesis header (``syncStalled(refusal:)``): the
    /// link can fetch headers (``DeviceLink/servesHeaders``).
    var confirmsChain = true
    private var reports: [DeviceReport] = []
    /// What the last step left for its driver: the request to send, the outcome reached.
    private var request = DeviceRequest(.head)
    private var result: DeviceOutcome?

    /// What a step asks for; the request or outcome itself stays in the session.
    /// What a step asks for next; the request or outcome itself stays in the session. The checking steps are
    /// taken one after another by ``action(_:)``, not from inside each other, so the stack holds one at a time:
    /// a board's 16 KiB have to fit a signature check or a signing below the deepest of them.
    private enum Step {
        case send
        case sleep(millis: UInt32)
        /// Check the header in ``headerBody``.
        case checkHeader
        /// Check the proof that waited for ``verifiedHeader``.
        case checkProof
        /// An outcome is in ``result``: finish, or take the composite operation's next step.
        case complete
        /// ``result`` is the operation's outcome.
        case finished
        /// The payment's next step after ``result``.
        case pay
        /// Sign the payment from the balance proven in ``result``.
        case sign
    }

    public init(
        anchor: DeviceTrustAnchor, trusted: TrustedState? = nil, wallet: DeviceWallet? = nil,
        configuration: Configuration = Configuration()
    ) {
        self.anchor = anchor
        self.trusted = trusted.map { Self.completed($0, anchor: anchor) }
        self.wallet = wallet
        self.configuration = configuration
    }

    /// A state saved before it carried the genesis block hash gets the anchor's: the only chain this device
    /// was provisioned for.
    private static func completed(_ state: TrustedState, anchor: DeviceTrustAnchor) -> TrustedState {
        var state = state
        if state.genesis == .zero { state.genesis = anchor.genesisHeaderHash }
        return state
    }

    private enum Job: Sendable {
        case idle
        case anchoring
        case syncing(maxEpochs: UInt64)
        /// Completing a trusted state saved without its timestamp from the trusted header, before ``pending``.
        case dating
        /// Trust expired: asking the gateway for the operator's re-anchor statement, before ``pending``.
        case reanchoring(expired: DeviceError)
        case skipping
        /// A sync that moved nothing: asking for the gateway's genesis header, to tell "nothing newer" or a
        /// refusal (``refusal``) from a gateway of another chain.
        case checkingChain
        case head
        case account(Address)
        case object(ObjectKind, Bytes32, headHeight: UInt64)
        case certificate(Bytes32, headHeight: UInt64)
        case inclusion(Bytes32)
        case submit
        case inbox
        case notification(Address, UInt64)
        case recipientFilter(UInt64)
        /// Listing a door's mailbox (commands, channel messages) after a sequence.
        case mailbox(DeviceResource, after: UInt64)
    }

    private struct Listed: Sendable {
        var height: UInt64
        var position: UInt64
        var transfer: IncomingTransfer
    }

    /// The state objects kept by the id of the transaction that made them, proven alike.
    private enum ObjectKind: Sendable {
        case escrow
        case htlc
        case channel

        var resource: DeviceResource {
            switch self {
            case .escrow: .escrowProof
            case .htlc: .htlcProof
            case .channel: .channelProof
            }
        }

        var stage: DeviceError.Stage {
            switch self {
            case .escrow: .escrowProof
            case .htlc: .htlcProof
            case .channel: .channelProof
            }
        }
    }

    private enum Parent: Sendable {
        case none
        /// The verified head first, then the object proven at it or later.
        case object(ObjectKind, Bytes32)
        case certificate(Bytes32)
        /// The HTLC proven claimable, then the claim made as a payment is (``pay``).
        case claim
        #if !DEVICE_NO_RENEWAL
            /// The head, whose time dates the certificate signed then; its publication made as a payment is.
            case renew
        #endif
        /// The inbox cursor: the first transfer still to look at.
        case receive(Address, from: UInt64, position: UInt64)
        case pay
    }

    public var isIdle: Bool {
        if case .idle = job { return true }
        return false
    }

    /// Reports kept for a driver that does not drain them: the newest, so memory stays bounded.
    static let maxReports = 16

    private mutating func report(_ step: DeviceReport) {
        if reports.count >= Self.maxReports { reports.removeFirst() }
        reports.append(step)
    }

    /// Steps taken since the last call, oldest first (at most ``maxReports``).
    public mutating func takeReports() -> [DeviceReport] {
        defer { reports.removeAll() }
        return reports
    }

    /// Replaces the trusted state (resumed from storage, or re-anchored by the caller).
    public mutating func resume(trusted: TrustedState) {
        self.trusted = Self.completed(trusted, anchor: anchor)
        recentHash = .zero
    }

    /// Anchors trust in a genesis header: it must hash to the provisioned hash and name the provisioned
    /// committee. A device that has the header already (MQTT serves none) anchors without asking.
    public mutating func anchor(genesisHeader: BlockHeader) throws(DeviceError) {
        do {
            recentHash = .zero
            trusted = try TrustedState.anchored(
                header: genesisHeader, committee: anchor.committee, epochLength: anchor.epochLength,
                trustedHash: anchor.genesisHeaderHash)
        } catch {
            throw .rejected(error, stage: .anchor)
        }
    }

    #if !DEVICE_NO_REANCHOR
        /// Trust from the operator's word, for a device whose trust expired (or that must jump a history it cannot
        /// follow): a checkpoint header and the committee it names, signed by the provisioned operator key. It must be
        /// a checkpoint of this chain, not behind the trusted epoch, and itself younger than the trusting period.
        public mutating func reanchor(_ statement: ReanchorPayload, wallClock: UInt64?) throws(DeviceError) {
            guard let key = anchor.reanchorKey else { throw .reanchorRefused(.noOperatorKey) }
            guard let operatorKey = try? XOnlyPublicKey(bytes: key),
                operatorKey.verifySchnorr(
                    statement.signature,
                    message: ReanchorPayload.signingHash(header: statement.header, genesis: anchor.genesisHeaderHash))
            else { throw .reanchorRefused(.badSignature) }
            let header = statement.header
            guard header.chainID == anchor.chainID else {
                throw .reanchorRefused(.checkpoint(.wrongChain(expected: anchor.chainID, got: header.chainID)))
            }
            var next: TrustedState
            do {
                next = try TrustedState.anchored(
                    header: header, committee: statement.committee, epochLength: anchor.epochLength,
                    trustedHash: header.hash, genesis: anchor.genesisHeaderHash)
            } catch {
                throw .reanchorRefused(.checkpoint(error))
            }
            if let trusted {
                guard next.epoch >= trusted.epoch else {
                    throw .reanchorRefused(.behindTrust(trusted: trusted.epoch, offered: next.epoch))
                }
                next.sequence = trusted.sequence &+ (next.epoch - trusted.epoch)
            }
            if anchor.trustingPeriodMillis > 0, let wallClock, wallClock > header.timestamp,
                wallClock - header.timestamp >= anchor.trustingPeriodMillis
            {
                throw .reanchorRefused(.stale(ageMillis: wallClock - header.timestamp))
            }
            // A checkpoint from the future would keep the trust fresh past its real age.
            let drift = anchor.skippingOptions?.maxClockDrift ?? 10_000
            if let wallClock, header.timestamp > wallClock, header.timestamp - wallClock > drift {
                throw .reanchorRefused(.future(aheadMillis: header.timestamp - wallClock))
            }
            trusted = next
            recentHash = .zero
        }
    #endif

    /// Gives the session a key to pay with; its nonce is taken from the next proven balance.
    public mutating func setWallet(_ wallet: DeviceWallet) { self.wallet = wallet }

    /// Drops the running operation (its link failed); what was verified so far stays trusted.
    public mutating func abandon() {
        job = .idle
        parent = .none
        awaiting = nil
        askedHeight = nil
        headerBody = []
        pendingHeight = nil
        proofBody = []
        listed = nil
        watching = []
        order = nil
        #if !DEVICE_NO_HTLC
            claiming = nil
        #endif
        #if !DEVICE_NO_RENEWAL
            renewal = nil
            issued = nil
        #endif
        outgoing = nil
        refusedCode = nil
        result = nil
        verifiedHeader = nil
        #if !DEVICE_NO_SKIP
            planner = nil
        #endif
        pending = nil
    }

    // MARK: events

    /// Starts `operation`; `wallClock` (ms since the Unix epoch) is what the device's clock says, if it has one.
    public mutating func start(_ operation: DeviceOperation, now: UInt64, wallClock: UInt64? = nil) -> DeviceAction {
        guard isIdle else { return .failed(.busy) }
        switch begin(operation, now: now, wallClock: wallClock) {
        case .success(let step): return action(step)
        case .failure(let error): return fail(error)
        }
    }

    private mutating func begin(_ operation: DeviceOperation, now: UInt64, wallClock: UInt64?) -> Result<
        Step, DeviceError
    > {
        self.now = now
        self.wallClock = wallClock
        abandon()
        progress = SyncProgress(fromEpoch: trusted?.epoch ?? 0, toEpoch: trusted?.epoch ?? 0)
        polls = 0
        if case .anchor = operation {
            job = .anchoring
            return .success(ask(.header(at: 0), height: 0))
        }
        if case .none = trusted { return .failure(.notAnchored) }
        pending = operation
        do { return .success(try checkTrust()) } catch { return .failure(error) }
    }

    /// Before anything relies on the trusted committee: a state saved without its timestamp is dated from its
    /// checkpoint's header, and a state older than the trusting period is refused, or replaced by the operator's
    /// re-anchor statement when the device has the operator's key. Then ``pending`` runs.
    @inline(never)
    private mutating func checkTrust() throws(DeviceError) -> Step {
        guard let trusted else { throw .notAnchored }
        guard trusted.timestamp != nil else {
            job = .dating
            return ask(.header(at: trusted.height), height: trusted.height)
        }
        do { try checkTrustingPeriod() } catch {
            // Expired: with an operator key provisioned, the gateway may hold the operator's statement.
            #if DEVICE_NO_REANCHOR
                throw error
            #else
                guard anchor.reanchorKey != nil else { throw error }
                job = .reanchoring(expired: error)
                return ask(DeviceRequest(.reanchor))
            #endif
        }
        guard let operation = pending else { throw .busy }
        pending = nil
        return try proceed(operation)
    }

    /// The operation's first request, once its trust is checked.
    private mutating func proceed(_ operation: DeviceOperation) throws(DeviceError) -> Step {
        switch operation {
        case .anchor: throw .busy
        case .sync(let maxEpochs):
            progress = SyncProgress(fromEpoch: trusted?.epoch ?? 0, toEpoch: trusted?.epoch ?? 0)
            return beginSync(maxEpochs: maxEpochs)
        case .head:
            job = .head
            return ask(.head)
        case .account(let address):
            return askAccount(address)
        #if DEVICE_NO_ESCROW
            case .escrow: throw .notBuiltIn
        #else
            case .escrow(let id): return beginObject(.escrow, id)
        #endif
        #if DEVICE_NO_HTLC
            case .htlc, .claim: throw .notBuiltIn
        #else
            case .htlc(let id): return beginObject(.htlc, id)
            case .claim(let claim):
                guard wallet != nil else { throw .noWallet }
                order = claim.terms
                claiming = claim.claim
                parent = .claim
                job = .head
                return ask(.head)
        #endif
        #if DEVICE_NO_CHANNELS
            case .channel: throw .notBuiltIn
        #else
            case .channel(let id): return beginObject(.channel, id)
        #endif
        #if DEVICE_NO_CERTIFICATES
            case .certificate: throw .notBuiltIn
        #else
            case .certificate(let id):
                parent = .certificate(id)
                job = .head
                return ask(.head)
        #endif
        #if !DEVICE_NO_RENEWAL
            case .renew(let renewal):
                guard wallet != nil else { throw .noWallet }
                order = renewal.terms
                self.renewal = renewal
                parent = .renew
                job = .head
                return ask(.head)
        #endif
        case .inclusion(let id, let waitMillis):
            deadline = now &+ UInt64(waitMillis)
            job = .inclusion(id)
            return ask(.transactionProof(id))
        case .submit(let transaction):
            outgoing = transaction
            job = .submit
            return ask(DeviceRequest(.transaction, payload: transaction.encoded))
        #if DEVICE_NO_INBOX
            case .receive: throw .notBuiltIn
        #else
            case .receive(let address, let from, let position, let waitMillis):
                deadline = now &+ UInt64(waitMillis)
                parent = .receive(address, from: from, position: position)
                job = .inbox
                return ask(.inbox(address, from: from, position: position))
        #endif
        #if DEVICE_NO_PAYMENT_CODES
            case .notification, .recipientFilter: throw .notBuiltIn
        #else
            case .notification(let address, let index):
                job = .notification(address, index)
                return ask(.notification(address, index: index))
            case .recipientFilter(let epoch, let watching):
                self.watching = watching
                job = .recipientFilter(epoch)
                return ask(.recipientFilter(epoch: epoch))
        #endif
        #if DEVICE_NO_COMMANDS
            case .commands: throw .notBuiltIn
        #else
            case .commands(let address, let after):
                job = .mailbox(.commands, after: after)
                return ask(.commands(address, after: after))
        #endif
        #if DEVICE_NO_CHANNELS
            case .channelMessages: throw .notBuiltIn
        #else
            case .channelMessages(let id, let after):
                // Only the recipient reads: the read is signed with the device's key.
                guard let wallet else { throw .noWallet }
                let hash = ChannelUpdate.readHash(genesis: anchor.genesisHeaderHash, channelID: id, after: after)
                job = .mailbox(.channelMessages, after: after)
                return ask(
                    .channelMessages(
                        id, after: after, key: wallet.key.xOnlyPublicKey.bytes,
                        signature: wallet.key.signSchnorr(hash, auxRandom: .zero)))
        #endif
        case .pay(let order):
            guard let wallet else { throw .noWallet }
            self.order = order
            parent = .pay
            payer = wallet.address
            return askAccount(wallet.address)
        }
    }

    /// An object is proven in two steps: the head verified first, then the object at that height or later, so a
    /// gateway cannot answer with a state from before a change it knows of.
    private mutating func beginObject(_ kind: ObjectKind, _ id: Bytes32) -> Step {
        parent = .object(kind, id)
        job = .head
        return ask(.head)
    }

    /// The whole answer to the request last sent.
    public mutating func receive(_ answer: DeviceAnswer, now: UInt64) -> DeviceAction {
        self.now = now
        guard let resource = awaiting else { return fail(.busy) }
        awaiting = nil
        do {
            switch resource {
            case .checkpoints: return action(try checkpointsAnswered(answer))
            #if DEVICE_NO_SKIP
                case .skip: return fail(.busy)
            #else
                case .skip: return action(try skipAnswered(answer))
            #endif
            #if DEVICE_NO_REANCHOR
                case .reanchor: return fail(.busy)
            #else
                case .reanchor: return action(try reanchorAnswered(answer))
            #endif
            case .headers, .head: return action(try headerAnswered(answer, resource))
            case .accountProof, .escrowProof, .htlcProof, .channelProof:
                return action(try stateProofAnswered(answer, resource))
            case .txProof: return action(try transactionProofAnswered(answer))
            case .transaction: return action(try submitAnswered(answer))
            #if DEVICE_NO_INBOX
                case .inbox: return fail(.busy)
            #else
                case .inbox: return action(try inboxAnswered(answer))
            #endif
            #if DEVICE_NO_PAYMENT_CODES
                case .notifications, .recipientFilter: return fail(.busy)
            #else
                case .notifications: return action(try stateProofAnswered(answer, resource))
                case .recipientFilter: return action(try filterAnswered(answer))
            #endif
            #if DEVICE_NO_CERTIFICATES
                case .certificate: return fail(.busy)
            #else
                case .certificate: return action(try stateProofAnswered(answer, resource))
            #endif
            #if DEVICE_NO_COMMANDS && DEVICE_NO_CHANNELS
                case .commands, .channelMessages: return fail(.busy)
            #else
                case .commands, .channelMessages: return action(try mailboxAnswered(answer, resource))
            #endif
            case .channelMessage: return fail(.busy)
            case .receipt: return fail(.busy)
            }
        } catch {
            return fail(error)
        }
    }

    /// The wait asked for by ``DeviceAction/sleep(millis:)`` is over: ask again.
    public mutating func wake(now: UInt64) -> DeviceAction {
        self.now = now
        switch (job, parent) {
        case (.inclusion(let id), _): return action(ask(.transactionProof(id)))
        case (.inbox, .receive(let address, let from, let position)):
            return action(ask(.inbox(address, from: from, position: position)))
        default: return fail(.busy)
        }
    }

    // MARK: sync

    /// A sync (its trust checked by ``checkTrust()``) skips when it can (a trusting period, a wall clock, the
    /// whole way asked for), else it goes checkpoint by checkpoint.
    private mutating func beginSync(maxEpochs: UInt64) -> Step {
        #if !DEVICE_NO_SKIP
            if configuration.skipping, maxEpochs == .max, anchor.trustingPeriodMillis > 0, wallClock != nil {
                job = .skipping
                return ask(.skip(from: trusted?.epoch ?? 0, to: nil))
            }
        #endif
        job = .syncing(maxEpochs: maxEpochs)
        return askCheckpoints()
    }

    /// Refuses a trusted state as old as the trusting period: members who signed it may have unbonded, so any
    /// history they sign now proves nothing (a long-range fork). Unchecked without a period or a clock.
    private mutating func checkTrustingPeriod() throws(DeviceError) {
        guard anchor.trustingPeriodMillis > 0, let wallClock, let timestamp = trusted?.timestamp else { return }
        let age = wallClock > timestamp ? wallClock - timestamp : 0
        guard age < anchor.trustingPeriodMillis else {
            throw .trustExpired(ageMillis: age, trustingPeriodMillis: anchor.trustingPeriodMillis)
        }
    }

    /// The trusted checkpoint's header, for a state saved without its timestamp: it must hash to the trusted
    /// checkpoint hash, and then its timestamp is the chain's word.
    @inline(never)
    private mutating func datingAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
        guard answer.code == .content else { throw Self.gatewayError(answer, .headers) }
        let payload = try Self.header(in: answer.body, .headers, askedHeight: askedHeight)
        guard var dated = trusted, payload.header.hash == dated.checkpointHash else {
            throw .inconsistent(.trustedHeader)
        }
        dated.timestamp = payload.header.timestamp
        trusted = dated
        askedHeight = nil
        return try checkTrust()
    }

    #if !DEVICE_NO_REANCHOR
        /// The operator's statement, relayed by the gateway (which cannot forge it): trust moves to it, then the sync
        /// starts again from there. None: the expiry stands.
        @inline(never)
        private mutating func reanchorAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
            guard case .reanchoring(let expired) = job else { throw .busy }
            if answer.code == .notFound { throw expired }
            let statement = try Self.decode(answer, .reanchor, as: ReanchorPayload.self)
            try reanchor(statement, wallClock: wallClock)
            guard let trusted else { throw .notAnchored }
            report(.reanchored(epoch: trusted.epoch, height: trusted.height))
            return try checkTrust()
        }
    #endif

    #if !DEVICE_NO_SKIP
        /// A `v1/skip` answer: the newest checkpoint first (which sets how far to go), then the pivots the planner
        /// bisects to; trust moves with each accepted one.
        @inline(never)
        private mutating func skipAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
            guard let before = trusted else { throw .notAnchored }
            // 4.04 to the first question: no epoch has closed yet.
            if answer.code == .notFound, planner == nil { return try syncStalled(refusal: nil) }
            let payload = try Self.decode(answer, .skip, as: SkipPayload.self)
            let offer = SkippingCheckpoint(
                checkpoint: payload.checkpoint, trustedPool: payload.trustedPool, attestations: payload.attestations)
            if planner == nil {
                let target = offer.checkpoint.header.epoch &+ 1
                guard target > before.epoch else { return try syncStalled(refusal: nil) }
                planner = SkippingPlanner(from: before, toEpoch: target)
            }
            guard var plan = planner, let options = anchor.skippingOptions, let wallClock else { throw .busy }
            let done = plan.report
            do { try plan.take(offer, now: wallClock, options: options) } catch {
                return try syncStalled(refusal: Self.skipRefusal(error, epoch: before.epoch))
            }
            let taken = plan.report
            planner = plan
            if taken.trusted.epoch != before.epoch {
                trusted = taken.trusted
                let signatures = taken.signatureChecks - done.signatureChecks
                progress.checkpoints += 1
                progress.signaturesChecked += signatures
                progress.toEpoch = taken.trusted.epoch
                if taken.skips > done.skips {
                    progress.skips += 1
                    report(
                        .skipped(
                            from: before.epoch, to: taken.trusted.epoch, height: offer.checkpoint.header.height,
                            signatures: signatures))
                } else {
                    report(
                        .checkpointVerified(
                            epoch: before.epoch, height: offer.checkpoint.header.height, signatures: signatures,
                            trusted: taken.trusted.epoch))
                }
            }
            guard let pivot = planner?.nextPivot() else { return completed(.synced(progress)) }
            return ask(.skip(from: taken.trusted.epoch, to: pivot))
        }

        private static func skipRefusal(_ error: SkippingError, epoch: UInt64) -> DeviceError {
            switch error {
            case .outsideTrustingPeriod(let age, let period):
                .trustExpired(ageMillis: age, trustingPeriodMillis: period)
            case .rejected(let reason): .rejected(reason, stage: .checkpoint(epoch: epoch))
            case .badTimestamp, .notAhead, .untrustedPool, .noTimestamp: .inconsistent(.skipOffer)
            }
        }
    #endif

    // MARK: answers

    /// Moves trust across `page[index]`, the checkpoint that closes the trusted epoch.
    @inline(never)
    private mutating func take(_ page: [Checkpoint], _ index: Int) throws(DeviceError) {
        guard let before = trusted else { throw .notAnchored }
        let next: TrustedState
        do { next = try CheckpointVerifier.verifyNext(trusted: before, checkpoint: page[index]) } catch {
            throw .rejected(error, stage: .checkpoint(epoch: before.epoch))
        }
        trusted = next
        let signatures = page[index].certificate.signatures.count
        progress.checkpoints += 1
        progress.signaturesChecked += signatures
        progress.toEpoch = next.epoch
        report(
            .checkpointVerified(
                epoch: before.epoch, height: page[index].header.height, signatures: signatures, trusted: next.epoch))
    }

    @inline(never)
    private mutating func checkpointsAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
        if case .none = trusted { throw .notAnchored }
        // 4.04: the gateway has no checkpoint from that epoch yet, the same as an empty page.
        let page: [Checkpoint] =
            answer.code == .notFound
            ? [] : try Self.decode(answer, .checkpoints, as: CheckpointsPayload.self).checkpoints
        var limit = UInt64.max
        if case .syncing(let maxEpochs) = job { limit = maxEpochs }
        for index in page.indices where UInt64(progress.checkpoints) < limit {
            if let height = pendingHeight, !Self.isPast(height, lastSignedHeight) { break }
            do { try take(page, index) } catch { return try syncStalled(refusal: error) }
        }
        if let height = pendingHeight {
            if !Self.isPast(height, lastSignedHeight) {
                pendingHeight = nil
                return .checkHeader
            }
            if page.isEmpty { throw .noCheckpointTo(height: height) }
            return askCheckpoints()
        }
        if page.isEmpty || UInt64(progress.checkpoints) >= limit { return try syncStalled(refusal: nil) }
        return askCheckpoints()
    }

    /// The end of a sync, or its refusal. A sync that moved the trust ends here. One that moved nothing first
    /// asks for the gateway's genesis header: a gateway of another chain (a devnet's, a test's) has no newer
    /// checkpoint of ours, or only ones our committee never signed, and the device must say that, not "up to
    /// date" or "forged". One header, only when nothing was learnt.
    private mutating func syncStalled(refusal: DeviceError?) throws(DeviceError) -> Step {
        guard progress.checkpoints == 0, confirmsChain else {
            if let refusal { throw refusal }
            return completed(.synced(progress))
        }
        self.refusal = refusal
        job = .checkingChain
        return ask(.header(at: 0), height: 0)
    }

    /// The gateway's genesis header, for ``syncStalled(refusal:)``.
    @inline(never)
    private mutating func chainChecked(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
        let held = refusal
        refusal = nil
        guard answer.code == .content else { throw held ?? Self.gatewayError(answer, .headers) }
        let genesis = try Self.header(in: answer.body, .headers, askedHeight: 0).header.hash
        askedHeight = nil
        guard genesis == anchor.genesisHeaderHash else { throw .otherChain(genesisHeaderHash: genesis) }
        if let held { throw held }
        return completed(.synced(progress))
    }

    /// `v1/head` or `v1/headers`: the genesis header to anchor at, or a header to verify.
    @inline(never)
    private mutating func headerAnswered(_ answer: DeviceAnswer, _ resource: DeviceResource) throws(DeviceError)
        -> Step
    {
        if case .dating = job { return try datingAnswered(answer) }
        if case .checkingChain = job { return try chainChecked(answer) }
        guard answer.code == .content else { throw Self.gatewayError(answer, resource) }
        headerBody = answer.body
        guard case .anchoring = job else { return .checkHeader }
        try anchorAtPendingHeader()
        return completed(.anchored)
    }

    @inline(never)
    private mutating func anchorAtPendingHeader() throws(DeviceError) {
        try anchor(genesisHeader: try Self.header(in: headerBody, .headers, askedHeight: askedHeight).header)
    }

    /// An account or escrow proof: checked once the header of the block it names is verified, which is asked
    /// for next.
    @inline(never)
    private mutating func stateProofAnswered(_ answer: DeviceAnswer, _ resource: DeviceResource) throws(DeviceError)
        -> Step
    {
        guard answer.code == .content else { throw Self.gatewayError(answer, resource) }
        var reader = ByteReader(answer.body)
        let height: UInt64
        do { height = try reader.readVarint() } catch { throw .undecodable(resource, error) }
        if case .object(_, _, let headHeight) = job, height < headHeight {
            // An escrow's, HTLC's or channel's status changes (a close, a claim, an expiry): a proof from before
            // the verified head, however genuine, could show open an object that is already closed.
            throw .inconsistent(.staleObjectProof(resource, proofHeight: height, headHeight: headHeight))
        }
        if case .certificate(_, let headHeight) = job, height < headHeight {
            // Likewise a certificate revoked since: an older proof would still show it valid.
            throw .inconsistent(.staleCertificateProof(proofHeight: height, headHeight: headHeight))
        }
        proofBody = answer.body
        return ask(.header(at: height), height: height)
    }

    @inline(never)
    private mutating func transactionProofAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
        guard case .inclusion(let id) = job else { throw .busy }
        if answer.code == .notFound {
            if let code = refusedCode { throw .transactionRefused(code: code) }
            polls += 1
            guard now < deadline else { throw .notFinal(id) }
            return .sleep(millis: configuration.pollMillis)
        }
        guard answer.code == .content else { throw Self.gatewayError(answer, .txProof) }
        try Self.checkConsistency(answer.body, of: id, listed: listed)
        proofBody = answer.body
        headerBody = answer.body
        return .checkHeader
    }

    /// A transaction proof that contradicts itself or the inbox entry it is for is refused before any
    /// signature is checked.
    @inline(never)
    private static func checkConsistency(_ body: [UInt8], of id: Bytes32, listed: Listed?) throws(DeviceError) {
        let payload: TransactionProofPayload
        do { payload = try TransactionProofPayload(decoding: body) } catch { throw .undecodable(.txProof, error) }
        guard payload.receipt.transactionID == id, payload.position == payload.proof.index,
            payload.receiptProof.index == payload.proof.index
        else { throw .inconsistent(.transactionProof) }
        if let listed, payload.header.height != listed.height || payload.position != listed.position {
            throw .inconsistent(.transactionProof)
        }
    }

    @inline(never)
    private mutating func submitAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
        guard let outgoing else { throw .busy }
        switch answer.code {
        case .created:
            let id = outgoing.id
            guard answer.body == id.bytes else { throw .inconsistent(.submittedID) }
            report(.submitted(id: id, bytes: outgoing.encoded.count))
            return completed(.submitted(id))
        case .badRequest:
            let code = ShortText(answer.body)
            // In a payment the refusal is only the gateway's word (a forged one made devices retry, and pay
            // twice, for transfers the chain had included): the chain is asked whether the nonce was used.
            guard case .pay = parent, let payer else { throw .transactionRefused(code: code) }
            refusedCode = code
            return askAccount(payer)
        default:
            throw Self.gatewayError(answer, .transaction)
        }
    }

    #if !DEVICE_NO_INBOX
        @inline(never)
        private mutating func inboxAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
            guard case .receive(let address, let from, let position) = parent else { throw .busy }
            guard answer.code == .content else { throw Self.gatewayError(answer, .inbox) }
            guard let entry = try Self.firstInboxEntry(answer.body) else {
                polls += 1
                guard now < deadline else { throw .nothingReceived }
                return .sleep(millis: configuration.pollMillis)
            }
            // A payment already counted, or listed before the cursor, is not a new one.
            guard entry.height > from || (entry.height == from && entry.position >= position),
                entry.transfer.to == address
            else { throw .inconsistent(.inboxEntry) }
            polls += 1
            report(.listed(height: entry.height, position: entry.position, polls: polls))
            polls = 0
            listed = entry
            job = .inclusion(entry.transfer.id)
            return ask(.transactionProof(entry.transfer.id))
        }
    #endif

    #if !DEVICE_NO_COMMANDS || !DEVICE_NO_CHANNELS
        /// A door's list (commands, channel messages), each newer than the last one the device saw and newer than
        /// the one before it.
        @inline(never)
        private mutating func mailboxAnswered(_ answer: DeviceAnswer, _ resource: DeviceResource) throws(DeviceError)
            -> Step
        {
            guard case .mailbox(resource, let after) = job else { throw .busy }
            guard answer.code == .content else { throw Self.gatewayError(answer, resource) }
            let payload: MailboxPayload
            do { payload = try MailboxPayload(decoding: answer.body) } catch { throw .undecodable(resource, error) }
            var last = after
            for entry in payload.entries {
                guard entry.sequence > last else { throw .inconsistent(.messageSequence) }
                // A command door takes commands of at most this size; a larger one is no command of it.
                if resource == .commands, entry.message.count > MailboxPayload.maxCommandBytes {
                    throw .undecodable(
                        resource,
                        .lengthOverCap(length: UInt64(entry.message.count), cap: MailboxPayload.maxCommandBytes))
                }
                last = entry.sequence
            }
            return completed(resource == .commands ? .commands(payload) : .channelMessages(payload))
        }
    #endif

    #if !DEVICE_NO_PAYMENT_CODES
        /// A filter answer names its epoch and the block whose state proves its hash; that block's header is asked
        /// for next, and the filter is tested once it is verified.
        @inline(never)
        private mutating func filterAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> Step {
            guard case .recipientFilter(let epoch) = job else { throw .busy }
            guard answer.code == .content else { throw Self.gatewayError(answer, .recipientFilter) }
            var reader = ByteReader(answer.body)
            let answered: UInt64
            let height: UInt64
            do {
                answered = try reader.readVarint()
                height = try reader.readVarint()
            } catch { throw .undecodable(.recipientFilter, error) }
            guard answered == epoch else { throw .inconsistent(.filterEpoch) }
            proofBody = answer.body
            return ask(.header(at: height), height: height)
        }
    #endif

    #if !DEVICE_NO_INBOX
        /// The first entry of an inbox answer, read with the transfer decoder alone (a device needs no other
        /// transaction kind's code), or nil for an empty list.
        @inline(never)
        private static func firstInboxEntry(_ body: [UInt8]) throws(DeviceError) -> Listed? {
            var reader = ByteReader(body)
            do throws(CodecError) {
                let count = try reader.readVarint()
                guard count <= UInt64(Self.maxInboxEntries) else {
                    throw CodecError.lengthOverCap(length: count, cap: Self.maxInboxEntries)
                }
                guard count > 0 else {
                    try reader.finish()
                    return nil
                }
                let height = try reader.readVarint()
                let position = try reader.readVarint()
                return Listed(height: height, position: position, transfer: try IncomingTransfer(reading: &reader))
            } catch .unknownTag {
                throw .inconsistent(.inboxEntry)
            } catch {
                throw .undecodable(.inbox, error)
            }
        }
    #endif

    // MARK: headers

    /// The header at the front of ``headerBody``, decoded: a head or header answer must be exactly one, a
    /// transaction proof starts with one.
    @inline(never)
    private static func header(in body: [UInt8], _ resource: DeviceResource, askedHeight: UInt64?)
        throws(DeviceError) -> HeaderPayload
    {
        var reader = ByteReader(body)
        let payload: HeaderPayload
        do {
            payload = try reader.read()
            if resource != .txProof { try reader.finish() }
        } catch {
            throw .undecodable(resource, error)
        }
        if let askedHeight, payload.header.height != askedHeight {
            throw .inconsistent(.headerHeight(asked: askedHeight, got: payload.header.height))
        }
        return payload
    }

    /// The transactions and receipts roots of the header in ``headerBody`` (a transaction proof's).
    @inline(never)
    private static func roots(in body: [UInt8]) throws(DeviceError) -> (Bytes32, Bytes32) {
        let payload = try header(in: body, .txProof, askedHeight: nil)
        return (payload.header.transactionsRoot, payload.header.receiptsRoot)
    }

    /// The header in ``headerBody`` checked against the trusted state: the trusted checkpoint itself, or a
    /// header of the trusted epoch with a valid certificate; past the trusted epoch, checkpoints first.
    @inline(never)
    private mutating func checkHeader() throws(DeviceError) -> Step {
        let height = try pendingHeaderHeight()
        if Self.isPast(height, lastSignedHeight) {
            pendingHeight = height
            return askCheckpoints()
        }
        verifiedHeader = try verifyPendingHeader()
        return .checkProof
    }

    /// Which of the pending header's decoders applies: a head or header answer is exactly one header, a
    /// transaction proof starts with one.
    private var pendingHeaderResource: DeviceResource {
        mutating get {
            if case .inclusion = job { return .txProof }
            if case .head = job { return .head }
            return .headers
        }
    }

    @inline(never)
    private mutating func pendingHeaderHeight() throws(DeviceError) -> UInt64 {
        try Self.header(in: headerBody, pendingHeaderResource, askedHeight: askedHeight).header.height
    }

    /// The pending header, trusted: the trusted checkpoint, or a header of the trusted epoch whose certificate
    /// carries more than two thirds of the trusted committee's weight. Decoded here again, so the frames above
    /// this one do not hold it while its signatures are checked.
    @inline(never)
    private mutating func verifyPendingHeader() throws(DeviceError) -> TrustedHeader {
        guard let trusted else { throw .notAnchored }
        let payload = try Self.header(in: headerBody, pendingHeaderResource, askedHeight: askedHeight)
        let hash = payload.header.hash
        if hash == trusted.checkpointHash {
            return TrustedHeader(payload.header, hash: hash, basis: .trustedCheckpoint)
        }
        let height = payload.header.height
        guard height > trusted.height else { throw .outsideTrust(height: height) }
        if hash != recentHash {
            let weight: UInt64
            do {
                weight = try HeaderVerifier.verify(
                    trusted: trusted, header: payload.header, certificate: payload.certificate
                )
                .signedWeight
            } catch {
                throw .rejected(error, stage: .header(height: height))
            }
            let total = trusted.committee.totalWeight
            report(.headerVerified(height: height, weight: weight, totalWeight: total))
            recentHash = hash
            recentBasis = .certificate(
                signatures: payload.certificate.signatures.count, weight: weight, totalWeight: total)
        }
        return TrustedHeader(payload.header, hash: hash, basis: recentBasis)
    }

    /// The step that was waiting for the header goes on: the proof it vouches for is checked against its roots.
    @inline(never)
    private mutating func checkProof() throws(DeviceError) -> Step {
        guard let header = verifiedHeader else { throw .busy }
        var transactionsRoot = Bytes32.zero
        var receiptsRoot = Bytes32.zero
        if case .inclusion = job { (transactionsRoot, receiptsRoot) = try Self.roots(in: headerBody) }
        headerBody = []
        askedHeight = nil
        verifiedHeader = nil
        switch job {
        case .head:
            return completed(.head(header))
        case .account(let address):
            let state = try Self.verifyAccount(proofBody, of: address, stateRoot: header.stateRoot)
            return completed(.account(VerifiedAccount(address: address, state: state, header: header)))
        case .object(let kind, let id, _):
            return completed(try verifiedObject(kind, id, header))
        #if !DEVICE_NO_CERTIFICATES
            case .certificate(let id, _):
                // Handed over, not shared: the answer's bytes are freed once decoded (a board's heap holds a whole
                // chain of records with their proofs, then each certificate parsed).
                let body = proofBody
                proofBody = []
                return completed(.certificate(try Self.verifyCertificate(body, id: id, header: header)))
        #endif
        #if !DEVICE_NO_PAYMENT_CODES
            case .notification(let address, let index):
                let found = try Self.verifyNotification(
                    proofBody, of: address, index: index, stateRoot: header.stateRoot)
                return completed(
                    .notified(
                        found.map {
                            VerifiedNotification(index: index, count: $0.count, record: $0.record, header: header)
                        }
                    ))
            case .recipientFilter(let epoch):
                guard let genesis = trusted?.genesis else { throw .notAnchored }
                let (matched, bytes) = try Self.verifyFilter(
                    proofBody, epoch: epoch, stateRoot: header.stateRoot, genesis: genesis, watching: watching)
                return completed(
                    .filtered(VerifiedFilterMatch(epoch: epoch, matched: matched, filterBytes: bytes, header: header)))
        #endif
        case .inclusion(let id):
            let (position, receipt) = try Self.verifyInclusion(
                proofBody, of: id, transactionsRoot: transactionsRoot, receiptsRoot: receiptsRoot)
            return completed(
                .included(VerifiedInclusion(id: id, header: header, position: position, receipt: receipt, polls: polls))
            )
        default:
            throw .busy
        }
    }

    @inline(never)
    private static func verifyAccount(_ body: [UInt8], of address: Address, stateRoot: Bytes32) throws(DeviceError)
        -> AccountState
    {
        let payload: AccountProofPayload
        do { payload = try AccountProofPayload(decoding: body) } catch { throw .undecodable(.accountProof, error) }
        guard payload.stateRoot == stateRoot else {
            throw .inconsistent(.stateRootMismatch(.accountProof, height: payload.height))
        }
        // The state tree holds no empty accounts, so an empty claimed state must be proven absent.
        let claimed: AccountState? = payload.state.isEmpty ? nil : payload.state
        do {
            return try ProofVerifier.verifyAccount(claimed, of: address, proof: payload.proof, stateRoot: stateRoot)
        } catch {
            throw .rejected(error, stage: .accountProof)
        }
    }

    /// The object in ``proofBody`` proven under `header`'s state root, as the outcome its kind gives.
    @inline(never)
    private func verifiedObject(_ kind: ObjectKind, _ id: Bytes32, _ header: TrustedHeader) throws(DeviceError)
        -> DeviceOutcome
    {
        switch kind {
        #if !DEVICE_NO_ESCROW
            case .escrow:
                let state = try Self.verifyObject(
                    proofBody, as: EscrowState.self, key: StateNamespace.escrowKey(id), kind, header.stateRoot)
                return .escrow(VerifiedEscrow(id: id, state: state, header: header))
        #endif
        #if !DEVICE_NO_HTLC
            case .htlc:
                let state = try Self.verifyObject(
                    proofBody, as: HTLCState.self, key: StateNamespace.htlcKey(id), kind, header.stateRoot)
                return .htlc(VerifiedHTLC(id: id, state: state, header: header))
        #endif
        #if !DEVICE_NO_CHANNELS
            case .channel:
                let state = try Self.verifyObject(
                    proofBody, as: PaymentChannel.self, key: StateNamespace.channelKey(id), kind, header.stateRoot)
                return .channel(VerifiedChannel(id: id, state: state, header: header))
        #endif
        #if DEVICE_NO_ESCROW || DEVICE_NO_HTLC || DEVICE_NO_CHANNELS
            default: throw .notBuiltIn
        #endif
        }
    }

    @inline(never)
    private static func verifyObject<State: CanonicalCodable & Equatable & Sendable>(
        _ body: [UInt8], as: State.Type, key: Bytes32, _ kind: ObjectKind, _ stateRoot: Bytes32
    ) throws(DeviceError) -> State? {
        let resource = kind.resource
        let payload: ObjectProofPayload<State>
        do { payload = try ObjectProofPayload<State>(decoding: body) } catch { throw .undecodable(resource, error) }
        guard payload.stateRoot == stateRoot else {
            throw .inconsistent(.stateRootMismatch(resource, height: payload.height))
        }
        do {
            try ProofVerifier.verifyValue(
                key: key, valueHash: payload.state.map { Domain.stateValue.hash($0.encoded) }, proof: payload.proof,
                stateRoot: stateRoot)
        } catch {
            throw .rejected(error, stage: kind.stage)
        }
        return payload.state
    }

    #if !DEVICE_NO_PAYMENT_CODES
        /// The address's notification count proven under `stateRoot`, then record `index`: present and proven below
        /// the count, proven absent at or past it (nil).
        @inline(never)
        private static func verifyNotification(_ body: [UInt8], of address: Address, index: UInt64, stateRoot: Bytes32)
            throws(DeviceError) -> (count: UInt64, record: PaymentNotificationRecord)?
        {
            let payload: NotificationProofPayload
            do { payload = try NotificationProofPayload(decoding: body) } catch {
                throw .undecodable(.notifications, error)
            }
            guard payload.stateRoot == stateRoot else {
                throw .inconsistent(.stateRootMismatch(.notifications, height: payload.height))
            }
            guard payload.index == index, (payload.record != nil) == (index < payload.count) else {
                throw .inconsistent(.notificationEntry)
            }
            do {
                let countValue = PaymentNotificationRecord.encodeCount(payload.count)
                try ProofVerifier.verifyValue(
                    key: StateNamespace.paymentNotification.key(PaymentNotificationRecord.countIdentifier(address)),
                    valueHash: payload.count == 0 ? nil : Domain.stateValue.hash(countValue), proof: payload.countProof,
                    stateRoot: stateRoot)
                try ProofVerifier.verifyValue(
                    key: StateNamespace.paymentNotification.key(
                        PaymentNotificationRecord.recordIdentifier(address, index: index)),
                    valueHash: payload.record.map { Domain.stateValue.hash($0.encoded) }, proof: payload.recordProof,
                    stateRoot: stateRoot)
            } catch {
                throw .rejected(error, stage: .notificationProof)
            }
            return payload.record.map { (payload.count, $0) }
        }

        /// The filter's committed hash proven under `stateRoot`, then the filter's bytes tested against `watching`
        /// and hashed as they pass: a filter with a payment left out does not hash to the committed value.
        @inline(never)
        private static func verifyFilter(
            _ body: [UInt8], epoch: UInt64, stateRoot: Bytes32, genesis: Bytes32, watching: [Address]
        ) throws(DeviceError) -> ([Bool], Int) {
            let payload: RecipientFilterPayload
            do { payload = try RecipientFilterPayload(decoding: body) } catch {
                throw .undecodable(.recipientFilter, error)
            }
            guard payload.stateRoot == stateRoot else {
                throw .inconsistent(.stateRootMismatch(.recipientFilter, height: payload.height))
            }
            do {
                try ProofVerifier.verifyValue(
                    key: RecipientFilter.stateKey(epoch: epoch),
                    valueHash: Domain.stateValue.hash(payload.committed.bytes),
                    proof: payload.proof, stateRoot: stateRoot)
            } catch {
                throw .rejected(error, stage: .filterProof)
            }
            var matcher = RecipientFilterMatcher(
                watching: watching, key: RecipientFilter.key(genesis: genesis, epoch: epoch))
            do {
                try matcher.feed(payload.filter)
                return (try matcher.finish(committed: payload.committed), payload.filter.count)
            } catch {
                throw .filter(error)
            }
        }
    #endif

    /// The id's Merkle path to the block's transactions root and its receipt's path to the receipts root, at
    /// the same position: then the position and the receipt are the chain's word, not the gateway's.
    @inline(never)
    private static func verifyInclusion(
        _ body: [UInt8], of id: Bytes32, transactionsRoot: Bytes32, receiptsRoot: Bytes32
    ) throws(DeviceError) -> (UInt64, Receipt) {
        let payload: TransactionProofPayload
        do { payload = try TransactionProofPayload(decoding: body) } catch { throw .undecodable(.txProof, error) }
        do {
            try ProofVerifier.verifyTransaction(id: id, proof: payload.proof, transactionsRoot: transactionsRoot)
        } catch {
            throw .rejected(error, stage: .transactionProof)
        }
        do {
            try ProofVerifier.verifyReceipt(payload.receipt, proof: payload.receiptProof, receiptsRoot: receiptsRoot)
        } catch {
            throw .rejected(error, stage: .receiptProof)
        }
        return (payload.proof.index, payload.receipt)
    }

    #if !DEVICE_NO_CERTIFICATES
        /// Each record of the chain proven against `header`'s state root (or the id's absence), then judged at the
        /// header's time: the records say whether the certificate and every ancestor are valid, revoked or
        /// expired, and their certificates' signatures and links are checked.
        @inline(never)
        private static func verifyCertificate(_ body: consuming [UInt8], id: Bytes32, header: TrustedHeader)
            throws(DeviceError) -> VerifiedCertificate
        {
            guard let chain = try provenChain(body, id: id, header: header) else {
                return VerifiedCertificate(id: id, standing: nil, account: nil, header: header)
            }
            let account = (try? DeviceCertificate(der: chain[0].record.der))?.fields.subjectKeyID
            return VerifiedCertificate(
                id: id, standing: CertificateStanding.of(chain, time: header.timestamp / 1000), account: account,
                header: header, root: chain[chain.count - 1].id)
        }

        /// The records proven from `id` up to a root, or nil when the state proves no certificate has the id. The
        /// answer and its decoded proofs are freed on return: only the records are kept for the certificates' checks.
        @inline(never)
        private static func provenChain(_ body: consuming [UInt8], id: Bytes32, header: TrustedHeader)
            throws(DeviceError) -> [(id: Bytes32, record: CertificateRecord)]?
        {
            let payload: CertificateProofPayload
            do { payload = try CertificateProofPayload(decoding: body) } catch {
                throw .undecodable(.certificate, error)
            }
            body = []
            guard payload.stateRoot == header.stateRoot else {
                throw .inconsistent(.stateRootMismatch(.certificate, height: payload.height))
            }
            guard let first = payload.links.first else {
                // The payload's decoder guarantees an absence proof when there are no links.
                do {
                    try ProofVerifier.verifyValue(
                        key: CertificateRecord.stateKey(id), valueHash: nil, proof: payload.absence!,
                        stateRoot: header.stateRoot)
                } catch { throw .rejected(error, stage: .certificateProof) }
                return nil
            }
            guard first.id == id else { throw .inconsistent(.certificateChain) }
            var chain: [(id: Bytes32, record: CertificateRecord)] = []
            for link in payload.links {
                do {
                    try ProofVerifier.verifyValue(
                        key: CertificateRecord.stateKey(link.id), valueHash: Domain.stateValue.hash(link.record),
                        proof: link.proof, stateRoot: header.stateRoot)
                } catch { throw .rejected(error, stage: .certificateProof) }
                // Proven bytes that do not decode, or a link that is not the previous record's issuer: the gateway
                // sent another chain than the one the state holds.
                guard let record = try? CertificateRecord(decoding: link.record),
                    chain.isEmpty || chain[chain.count - 1].record.issuer == link.id
                else { throw .inconsistent(.certificateChain) }
                chain.append((link.id, record))
            }
            // The last link must be a root, or the gateway cut the chain short.
            guard chain[chain.count - 1].record.isRoot else { throw .inconsistent(.certificateChain) }
            return chain
        }
    #endif

    // MARK: composite operations

    /// A step finished with `outcome`: kept in ``result`` (so no frame below hands it up), then the end of the
    /// operation or the next step of a composite one.
    private mutating func completed(_ outcome: DeviceOutcome) -> Step {
        result = outcome
        return .complete
    }

    @inline(never)
    private mutating func complete() throws(DeviceError) -> Step {
        switch parent {
        case .none:
            return .finished
        #if DEVICE_NO_ESCROW && DEVICE_NO_HTLC && DEVICE_NO_CHANNELS
            case .object: throw .notBuiltIn
        #else
            case .object(let kind, let id):
                guard case .head(let head)? = result else { return .finished }
                job = .object(kind, id, headHeight: head.height)
                return ask(DeviceRequest(kind.resource, query: [DeviceRequest.argument("id", hex: id)]))
        #endif
        case .claim:
            #if DEVICE_NO_HTLC
                throw .notBuiltIn
            #else
                return try claimStep()
            #endif
        case .certificate(let id):
            guard case .head(let head)? = result else { return .finished }
            job = .certificate(id, headHeight: head.height)
            return ask(.certificateProof(id))
        #if !DEVICE_NO_RENEWAL
            case .renew: return try renewStep()
        #endif
        #if !DEVICE_NO_INBOX
            case .receive(let address, _, _):
                guard case .included(let inclusion)? = result, let entry = listed else { return .finished }
                if inclusion.receipt.status == .success {
                    result = .received(VerifiedIncoming(transfer: entry.transfer, inclusion: inclusion))
                    return .finished
                }
                report(.failedTransferSkipped(id: inclusion.id))
                let next = entry.position.addingReportingOverflow(1)
                guard !next.overflow else { throw .inconsistent(.inboxEntry) }
                parent = .receive(address, from: entry.height, position: next.partialValue)
                listed = nil
                job = .inbox
                return ask(.inbox(address, from: entry.height, position: next.partialValue))
        #endif
        case .pay:
            return .pay
        #if DEVICE_NO_INBOX
            case .receive: throw .notBuiltIn
        #endif
        }
    }

    #if !DEVICE_NO_HTLC
        /// The claim's steps before it is made like a payment: the head, then the HTLC proven at it or later and
        /// judged by the chain's own rule at the next height, then the device's account.
        @inline(never)
        private mutating func claimStep() throws(DeviceError) -> Step {
            guard let claim = claiming, let wallet else { throw .busy }
            switch result {
            case .head(let head):
                job = .object(.htlc, claim.lockID, headHeight: head.height)
                return ask(.htlcProof(claim.lockID))
            case .htlc(let proven):
                guard let htlc = proven.state else { throw .htlc(.unknownHTLC) }
                // Judged a few blocks ahead: the claim is signed, submitted and included after this proof, and a
                // claim that lands past the expiry fails on chain with its fee spent.
                do {
                    try htlc.checkClaim(
                        by: wallet.address, preimage: claim.preimage,
                        height: proven.header.height + HTLCClaimOrder.marginBlocks)
                } catch { throw .htlc(error) }
                claimAmount = htlc.amount
                report(
                    .claimable(
                        lockID: claim.lockID, amount: htlc.amount, expiryHeight: htlc.expiryHeight,
                        height: proven.header.height))
                parent = .pay
                payer = wallet.address
                return askAccount(wallet.address)
            default:
                throw .busy
            }
        }
    #endif

    #if !DEVICE_NO_RENEWAL
        /// The renewal's step after the head: the certificate signed with the device's key, dated by the head's
        /// time (the device's only trusted clock), then the device's account proven for its publication.
        @inline(never)
        private mutating func renewStep() throws(DeviceError) -> Step {
            guard let renewal, let wallet, case .head(let head)? = result else { throw .busy }
            let device = wallet.address
            let fields = ShortLivedCertificate.fields(
                deviceName: device.bech32ASCII, device: device, publicKey: renewal.publicKey,
                lifetime: renewal.lifetimeSeconds, now: head.timestamp / 1000,
                serial: ShortLivedCertificate.serial(for: renewal.publicKey))
            let certificate = DeviceCertificate(signing: fields, with: wallet.key)
            issued = certificate
            report(.certificateIssued(id: certificate.id, notAfter: fields.notAfter, height: head.height))
            parent = .pay
            payer = device
            return askAccount(device)
        }
    #endif

    /// The transaction of the device's own that a claim or a renewal signs instead of a transfer.
    private func ownPayload() -> TransactionPayload? {
        #if !DEVICE_NO_HTLC
            if let claiming { return .htlcClaim(claiming) }
        #endif
        #if !DEVICE_NO_RENEWAL
            if let issued { return .certificatePublish(CertificatePublish(der: issued.der)) }
        #endif
        return nil
    }

    /// The payment's next step: sign once the balance is proven, prove once submitted.
    @inline(never)
    private mutating func payStep() throws(DeviceError) -> Step {
        guard let order, let outcome = result else { throw .busy }
        switch outcome {
        case .account(let account):
            guard let code = refusedCode else { return .sign }
            // The account proven again after a refusal. Its nonce unused at a verified head: the payment is not on
            // chain, and the next one signs this nonce again, so at most one of them is ever included. Used: by
            // this payment (the refusal was false) or by another transaction; its inclusion proof tells, asked as
            // for a submitted payment (a "not found" then confirms the refusal).
            guard outgoing != nil, account.state.nonce > outgoing!.nonce else { throw .transactionRefused(code: code) }
            result = .submitted(outgoing!.id)
            return .pay
        case .submitted:
            guard let outgoing else { throw .busy }
            do { try wallet?.markAccepted(nonce: outgoing.nonce) } catch { throw .wallet(error) }
            deadline = now &+ UInt64(order.finalityMillis)
            polls = 0
            job = .inclusion(outgoing.id)
            return ask(.transactionProof(outgoing.id))
        case .included(let inclusion):
            guard inclusion.receipt.status == .success else { throw .failedOnChain(inclusion.receipt) }
            guard let outgoing else { throw .busy }
            let payment = VerifiedPayment(id: outgoing.id, nonce: outgoing.nonce, inclusion: inclusion)
            result = .paid(payment)
            #if !DEVICE_NO_HTLC
                if let claiming {
                    result = .claimed(VerifiedClaim(lockID: claiming.lockID, amount: claimAmount, payment: payment))
                }
            #endif
            #if !DEVICE_NO_RENEWAL
                if let issued {
                    result = .renewed(
                        VerifiedRenewal(
                            der: issued.der, id: issued.id, notBefore: issued.fields.notBefore,
                            notAfter: issued.fields.notAfter, payment: payment))
                }
            #endif
            return .finished
        default:
            return .finished
        }
    }

    /// One request builder for every account proof (a board has no flash for three).
    @inline(never)
    private mutating func askAccount(_ address: Address) -> Step {
        job = .account(address)
        return ask(.accountProof(address))
    }

    /// The transfer, signed with the nonce just proven; its fee cap allows the base fee to double.
    @inline(never)
    private mutating func sign() throws(DeviceError) -> Step {
        guard let order, case .account(let account)? = result else { throw .busy }
        if case .none = wallet { throw .noWallet }
        guard account.state.balance >= order.amount else {
            throw .insufficientFunds(balance: account.state.balance, amount: order.amount)
        }
        // In place: a wallet holds its key pair, a few hundred bytes a board should not copy.
        wallet!.resync(verifiedAccount: account.state)
        let baseFee = account.header.nextBaseFee
        let doubled = baseFee.multipliedReportingOverflow(by: 2)
        let cap = doubled.partialValue.addingReportingOverflow(order.tipPerUnit)
        let maxFee = order.maxFeePerUnit ?? (doubled.overflow || cap.overflow ? UInt64.max : cap.partialValue)
        let signed: OutgoingTransaction
        do {
            if let payload = ownPayload() {
                signed = OutgoingTransaction(
                    try wallet!.signed(
                        payload, genesis: anchor.genesisHeaderHash, maxFeePerUnit: maxFee,
                        tipPerUnit: order.tipPerUnit, auxRandom: order.auxRandom))
            } else {
                signed = OutgoingTransaction(
                    try wallet!.transfer(
                        genesis: anchor.genesisHeaderHash, to: order.recipient, amount: order.amount,
                        maxFeePerUnit: maxFee, tipPerUnit: order.tipPerUnit, auxRandom: order.auxRandom))
            }
        } catch {
            throw .wallet(error)
        }
        report(
            .signed(
                id: signed.id, nonce: signed.nonce, maxFeePerUnit: maxFee, baseFee: baseFee,
                height: account.header.height))
        outgoing = signed
        job = .submit
        return ask(DeviceRequest(.transaction, payload: signed.encoded))
    }

    // MARK: helpers

    /// What the driver is told: the request, outcome or error the step left in the session.
    private mutating func action(_ first: Step) -> DeviceAction {
        var step = first
        while true {
            do {
                switch step {
                case .send: return .send(request)
                case .sleep(let millis): return .sleep(millis: millis)
                case .checkHeader: step = try checkHeader()
                case .checkProof: step = try checkProof()
                case .complete: step = try complete()
                case .pay: step = try payStep()
                case .sign: step = try sign()
                case .finished:
                    guard let outcome = result else { return fail(.busy) }
                    abandon()
                    return .done(outcome)
                }
            } catch {
                return fail(error)
            }
        }
    }

    private mutating func fail(_ error: DeviceError) -> DeviceAction {
        abandon()
        return .failed(error)
    }

    @inline(never)
    private mutating func ask(_ request: DeviceRequest, height: UInt64? = nil) -> Step {
        awaiting = request.resource
        askedHeight = height
        self.request = request
        return .send
    }

    @inline(never)
    private mutating func askCheckpoints() -> Step {
        awaiting = .checkpoints
        request = .checkpoints(from: trusted?.epoch ?? 0, limit: configuration.checkpointPage)
        return .send
    }

    /// Whether `height` lies past the epoch the trusted committee signs.
    private static func isPast(_ height: UInt64, _ last: UInt64?) -> Bool {
        guard let last else { return false }
        return height > last
    }

    /// The last height the trusted committee signs (nil when there is none). A mutating getter, like
    /// ``pendingHeaderResource``: reading a non-mutating member of a session held in place (a board's global)
    /// copies the whole session onto the stack first.
    private var lastSignedHeight: UInt64? {
        mutating get { trusted?.signedHeights?.last }
    }

    /// ``InboxPayload/maxEntries``, read here without linking that payload's decoder.
    static let maxInboxEntries = 4

    private static func gatewayError(_ answer: DeviceAnswer, _ resource: DeviceResource) -> DeviceError {
        .gateway(resource, code: answer.code, diagnostic: ShortText(answer.body))
    }

    /// A 2.05 answer's body decoded as `T`, or the error the answer means.
    private static func decode<T: CanonicalCodable>(
        _ answer: DeviceAnswer, _ resource: DeviceResource, as: T.Type = T.self
    )
        throws(DeviceError) -> T
    {
        guard answer.code == .content else { throw gatewayError(answer, resource) }
        do { return try T(decoding: answer.body) } catch { throw .undecodable(resource, error) }
    }
}
