import AmarsCodec
import AmarsCrypto
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

        public init(checkpointPage: Int = CheckpointsPayload.maxCount, pollMillis: UInt32 = 250) {
            self.checkpointPage = max(1, min(checkpointPage, CheckpointsPayload.maxCount))
            self.pollMillis = pollMillis
        }
    }

    public let anchor: DeviceTrustAnchor
    public var configuration: Configuration
    /// Nil until anchored (or resumed from a saved state).
    public private(set) var trusted: TrustedState?
    /// The device's own account, when it has a key: what ``DeviceOperation/pay(_:)`` signs with.
    public private(set) var wallet: DeviceWallet?

    // The running operation. Its step and composite are enums of plain values, and the payloads a step waits
    // on sit in optionals of their own: enums whose cases carry arrays cost a board kilobytes of copy code each.

    /// The running operation's current step.
    private var job: Job = .idle
    /// The composite operation the step belongs to.
    private var parent: Parent = .none
    /// The resource whose answer is awaited.
    private var awaiting: DeviceResource?
    /// The height asked of `v1/headers`, which the answer must carry.
    private var askedHeight: UInt64 = 0
    /// A header past the trusted epoch, waiting for the checkpoints that reach it.
    private var pendingHeader: HeaderPayload?
    /// The proof a step verifies once the header it names is verified.
    private var accountProof: AccountProofPayload?
    private var escrowProof: EscrowProofPayload?
    private var transactionProof: TransactionProofPayload?
    /// Where the inbox said a transfer landed; its proof must agree.
    private var listed: Listed?
    /// The payment being made: the order, the balance it is paid from, the signed transaction.
    private var order: PaymentOrder?
    private var payingFrom: VerifiedAccount?
    private var outgoing: OutgoingTransaction?
    private var progress = SyncProgress(fromEpoch: 0, toEpoch: 0)
    private var deadline: UInt64 = 0
    private var polls = 0
    private var now: UInt64 = 0
    private var reports: [DeviceReport] = []

    public init(
        anchor: DeviceTrustAnchor, trusted: TrustedState? = nil, wallet: DeviceWallet? = nil,
        configuration: Configuration = Configuration()
    ) {
        self.anchor = anchor
        self.trusted = trusted
        self.wallet = wallet
        self.configuration = configuration
    }

    private enum Job: Sendable {
        case idle
        case anchoring
        case syncing(maxEpochs: UInt64)
        case head
        case account(Address)
        case escrow(Bytes32, headHeight: UInt64)
        case inclusion(Bytes32)
        case submit
        case inbox
    }

    private struct Listed: Sendable {
        var height: UInt64
        var position: UInt64
        var transfer: IncomingTransfer
    }

    private enum Parent: Sendable {
        case none
        case escrow(Bytes32)
        /// The inbox cursor: the first transfer still to look at.
        case receive(Address, from: UInt64, position: UInt64)
        case pay
    }

    public var isIdle: Bool {
        if case .idle = job { return true }
        return false
    }

    /// Steps taken since the last call, oldest first.
    public mutating func takeReports() -> [DeviceReport] {
        defer { reports.removeAll() }
        return reports
    }

    /// Replaces the trusted state (resumed from storage, or re-anchored by the caller).
    public mutating func resume(trusted: TrustedState) { self.trusted = trusted }

    /// Anchors trust in a genesis header: it must hash to the provisioned hash and name the provisioned
    /// committee. A device that has the header already (MQTT serves none) anchors without asking.
    public mutating func anchor(genesisHeader: BlockHeader) throws(DeviceError) {
        do {
            trusted = try TrustedState.anchored(
                header: genesisHeader, committee: anchor.committee, epochLength: anchor.epochLength,
                trustedHash: anchor.genesisHeaderHash)
        } catch {
            throw .rejected(error, stage: .anchor)
        }
    }

    /// Gives the session a key to pay with; its nonce is taken from the next proven balance.
    public mutating func setWallet(_ wallet: DeviceWallet) { self.wallet = wallet }

    /// Drops the running operation (its link failed); what was verified so far stays trusted.
    public mutating func abandon() {
        job = .idle
        parent = .none
        awaiting = nil
        pendingHeader = nil
        accountProof = nil
        escrowProof = nil
        transactionProof = nil
        listed = nil
        order = nil
        payingFrom = nil
        outgoing = nil
    }

    // MARK: events

    public mutating func start(_ operation: DeviceOperation, now: UInt64) -> DeviceAction {
        guard isIdle else { return .failed(.busy) }
        self.now = now
        abandon()
        progress = SyncProgress(fromEpoch: trusted?.epoch ?? 0, toEpoch: trusted?.epoch ?? 0)
        if case .anchor = operation {
            job = .anchoring
            return ask(.header(at: 0), height: 0)
        }
        guard trusted != nil else { return fail(.notAnchored) }
        switch operation {
        case .anchor: return fail(.notAnchored)
        case .sync(let maxEpochs):
            job = .syncing(maxEpochs: maxEpochs)
            return askCheckpoints()
        case .head:
            job = .head
            return ask(.head)
        case .account(let address):
            job = .account(address)
            return ask(.accountProof(address))
        case .escrow(let id):
            parent = .escrow(id)
            job = .head
            return ask(.head)
        case .inclusion(let id, let waitMillis):
            deadline = now &+ UInt64(waitMillis)
            polls = 0
            job = .inclusion(id)
            return ask(.transactionProof(id))
        case .submit(let transaction):
            outgoing = transaction
            job = .submit
            return ask(DeviceRequest(.transaction, payload: transaction.encoded))
        case .receive(let address, let from, let position, let waitMillis):
            deadline = now &+ UInt64(waitMillis)
            polls = 0
            parent = .receive(address, from: from, position: position)
            job = .inbox
            return ask(.inbox(address, from: from, position: position))
        case .pay(let order):
            guard let wallet else { return fail(.noWallet) }
            self.order = order
            parent = .pay
            job = .account(wallet.address)
            return ask(.accountProof(wallet.address))
        }
    }

    /// The whole answer to the request last sent.
    public mutating func receive(_ answer: DeviceAnswer, now: UInt64) -> DeviceAction {
        self.now = now
        guard let resource = awaiting else { return fail(.busy) }
        awaiting = nil
        do {
            switch resource {
            case .checkpoints: return try checkpointsAnswered(answer)
            case .headers: return try headerAnswered(answer)
            case .head: return try checkHeader(decode(answer, .head))
            case .accountProof: return try accountProofAnswered(answer)
            case .escrowProof: return try escrowProofAnswered(answer)
            case .txProof: return try transactionProofAnswered(answer)
            case .transaction: return try submitAnswered(answer)
            case .inbox: return try inboxAnswered(answer)
            case .certificate, .receipt: return fail(.busy)
            }
        } catch {
            return fail(error)
        }
    }

    /// The wait asked for by ``DeviceAction/sleep(millis:)`` is over: ask again.
    public mutating func wake(now: UInt64) -> DeviceAction {
        self.now = now
        switch (job, parent) {
        case (.inclusion(let id), _): return ask(.transactionProof(id))
        case (.inbox, .receive(let address, let from, let position)):
            return ask(.inbox(address, from: from, position: position))
        default: return fail(.busy)
        }
    }

    // MARK: answers

    private mutating func checkpointsAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        guard var trusted else { throw .notAnchored }
        // 4.04: the gateway has no checkpoint from that epoch yet, the same as an empty page.
        let page: [Checkpoint] =
            answer.code == .notFound ? [] : try decode(answer, .checkpoints, as: CheckpointsPayload.self).checkpoints
        var limit = UInt64.max
        if case .syncing(let maxEpochs) = job { limit = maxEpochs }
        for checkpoint in page where UInt64(progress.checkpoints) < limit {
            if let pending = pendingHeader, !isPast(pending.header.height) { break }
            let epoch = trusted.epoch
            do { trusted = try CheckpointVerifier.verifyNext(trusted: trusted, checkpoint: checkpoint) } catch {
                throw .rejected(error, stage: .checkpoint(epoch: epoch))
            }
            self.trusted = trusted
            progress.checkpoints += 1
            progress.signaturesChecked += checkpoint.certificate.signatures.count
            progress.toEpoch = trusted.epoch
            reports.append(
                .checkpointVerified(
                    epoch: epoch, height: checkpoint.header.height,
                    signatures: checkpoint.certificate.signatures.count, trusted: trusted.epoch))
        }
        if let pending = pendingHeader {
            if !isPast(pending.header.height) {
                pendingHeader = nil
                return try checkHeader(pending)
            }
            if page.isEmpty { throw .noCheckpointTo(height: pending.header.height) }
            return askCheckpoints()
        }
        if page.isEmpty || UInt64(progress.checkpoints) >= limit { return try complete(.synced(progress)) }
        return askCheckpoints()
    }

    private mutating func headerAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        let payload = try decode(answer, .headers, as: HeaderPayload.self)
        guard payload.header.height == askedHeight else {
            throw .inconsistent(.headerHeight(asked: askedHeight, got: payload.header.height))
        }
        guard case .anchoring = job else { return try checkHeader(payload) }
        try anchor(genesisHeader: payload.header)
        return try complete(.anchored)
    }

    private mutating func accountProofAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        let payload = try decode(answer, .accountProof, as: AccountProofPayload.self)
        accountProof = payload
        return ask(.header(at: payload.height), height: payload.height)
    }

    private mutating func escrowProofAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        guard case .escrow(_, let headHeight) = job else { throw .busy }
        let payload = try decode(answer, .escrowProof, as: EscrowProofPayload.self)
        // An escrow's status changes (a close, an expiry): a proof from before the verified head, however
        // genuine, could show open an escrow that is already closed.
        guard payload.height >= headHeight else {
            throw .inconsistent(.staleEscrowProof(proofHeight: payload.height, headHeight: headHeight))
        }
        escrowProof = payload
        return ask(.header(at: payload.height), height: payload.height)
    }

    private mutating func transactionProofAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        guard case .inclusion(let id) = job else { throw .busy }
        if answer.code == .notFound {
            polls += 1
            guard now < deadline else { throw .notFinal(id) }
            return .sleep(millis: configuration.pollMillis)
        }
        let payload = try decode(answer, .txProof, as: TransactionProofPayload.self)
        guard payload.receipt.transactionID == id, payload.position == payload.proof.index,
            payload.receiptProof.index == payload.proof.index
        else { throw .inconsistent(.transactionProof) }
        if let listed, payload.header.height != listed.height || payload.position != listed.position {
            throw .inconsistent(.transactionProof)
        }
        transactionProof = payload
        return try checkHeader(HeaderPayload(header: payload.header, certificate: payload.certificate))
    }

    private mutating func submitAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        guard let outgoing else { throw .busy }
        switch answer.code {
        case .created:
            let id = outgoing.id
            guard answer.body == id.bytes else { throw .inconsistent(.submittedID) }
            reports.append(.submitted(id: id, bytes: outgoing.encoded.count))
            return try complete(.submitted(id))
        case .badRequest:
            throw .transactionRefused(code: ShortText(answer.body))
        default:
            throw gatewayError(answer, .transaction)
        }
    }

    private mutating func inboxAnswered(_ answer: DeviceAnswer) throws(DeviceError) -> DeviceAction {
        guard case .receive(let address, let from, let position) = parent else { throw .busy }
        guard answer.code == .content else { throw gatewayError(answer, .inbox) }
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
        reports.append(.listed(height: entry.height, position: entry.position, polls: polls))
        polls = 0
        listed = entry
        job = .inclusion(entry.transfer.id)
        return ask(.transactionProof(entry.transfer.id))
    }

    /// The first entry of an inbox answer, read with the transfer decoder alone (a device needs no other
    /// transaction kind's code), or nil for an empty list.
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

    // MARK: headers

    /// A header the gateway referred to, checked against the trusted state: the trusted checkpoint itself, or a
    /// header of the trusted epoch with a valid certificate; past the trusted epoch, checkpoints first.
    private mutating func checkHeader(_ payload: HeaderPayload) throws(DeviceError) -> DeviceAction {
        guard let trusted else { throw .notAnchored }
        let header = payload.header
        let hash = header.hash
        if hash == trusted.checkpointHash {
            return try headerVerified(TrustedHeader(header, hash: hash, basis: .trustedCheckpoint))
        }
        if isPast(header.height) {
            pendingHeader = payload
            return askCheckpoints()
        }
        guard header.height > trusted.height else { throw .outsideTrust(height: header.height) }
        let verified: VerifiedHeader
        do { verified = try HeaderVerifier.verify(trusted: trusted, header: header, certificate: payload.certificate) } catch {
            throw .rejected(error, stage: .header(height: header.height))
        }
        let checked = TrustedHeader(
            header, hash: hash,
            basis: .certificate(
                signatures: payload.certificate.signatures.count, weight: verified.signedWeight,
                totalWeight: trusted.committee.totalWeight))
        reports.append(
            .headerVerified(height: header.height, weight: verified.signedWeight, totalWeight: trusted.committee.totalWeight))
        return try headerVerified(checked)
    }

    /// The step that was waiting for `header` goes on.
    private mutating func headerVerified(_ header: TrustedHeader) throws(DeviceError) -> DeviceAction {
        switch job {
        case .head:
            return try complete(.head(header))
        case .account(let address):
            guard let payload = accountProof else { throw .busy }
            guard header.stateRoot == payload.stateRoot else {
                throw .inconsistent(.stateRootMismatch(.accountProof, height: header.height))
            }
            // The state tree holds no empty accounts, so an empty claimed state must be proven absent.
            let claimed: AccountState? = payload.state.isEmpty ? nil : payload.state
            let state: AccountState
            do {
                state = try ProofVerifier.verifyAccount(
                    claimed, of: address, proof: payload.proof, stateRoot: header.stateRoot)
            } catch {
                throw .rejected(error, stage: .accountProof)
            }
            return try complete(.account(VerifiedAccount(address: address, state: state, header: header)))
        case .escrow(let id, _):
            guard let payload = escrowProof else { throw .busy }
            guard header.stateRoot == payload.stateRoot else {
                throw .inconsistent(.stateRootMismatch(.escrowProof, height: header.height))
            }
            let state: EscrowState?
            do {
                state = try ProofVerifier.verifyEscrow(
                    payload.state, id: id, proof: payload.proof, stateRoot: header.stateRoot)
            } catch {
                throw .rejected(error, stage: .escrowProof)
            }
            return try complete(.escrow(VerifiedEscrow(id: id, state: state, header: header)))
        case .inclusion(let id):
            guard let payload = transactionProof else { throw .busy }
            do { try ProofVerifier.verifyTransaction(id: id, proof: payload.proof, transactionsRoot: header.transactionsRoot) } catch {
                throw .rejected(error, stage: .transactionProof)
            }
            do { try ProofVerifier.verifyReceipt(payload.receipt, proof: payload.receiptProof, receiptsRoot: header.receiptsRoot) } catch {
                throw .rejected(error, stage: .receiptProof)
            }
            return try complete(
                .included(
                    VerifiedInclusion(
                        id: id, header: header, position: payload.proof.index, receipt: payload.receipt, polls: polls)))
        default:
            throw .busy
        }
    }

    // MARK: composite operations

    /// A step finished with `outcome`: the end of the operation, or the next step of a composite one.
    private mutating func complete(_ outcome: DeviceOutcome) throws(DeviceError) -> DeviceAction {
        switch parent {
        case .none:
            return finish(outcome)
        case .escrow(let id):
            guard case .head(let head) = outcome else { return finish(outcome) }
            job = .escrow(id, headHeight: head.height)
            return ask(.escrowProof(id))
        case .receive(let address, _, _):
            guard case .included(let inclusion) = outcome, let entry = listed else { return finish(outcome) }
            if inclusion.receipt.status == .success {
                return finish(.received(VerifiedIncoming(transfer: entry.transfer, inclusion: inclusion)))
            }
            reports.append(.failedTransferSkipped(id: inclusion.id))
            let next = entry.position.addingReportingOverflow(1)
            guard !next.overflow else { throw .inconsistent(.inboxEntry) }
            parent = .receive(address, from: entry.height, position: next.partialValue)
            listed = nil
            transactionProof = nil
            job = .inbox
            return ask(.inbox(address, from: entry.height, position: next.partialValue))
        case .pay:
            return try payStep(outcome)
        }
    }

    /// The payment's next step after `outcome`: sign once the balance is proven, prove once submitted.
    private mutating func payStep(_ outcome: DeviceOutcome) throws(DeviceError) -> DeviceAction {
        guard let order else { throw .busy }
        switch outcome {
        case .account(let account):
            return try sign(order, account)
        case .submitted:
            guard let outgoing else { throw .busy }
            do { try wallet?.markAccepted(nonce: outgoing.nonce) } catch { throw .wallet(error) }
            deadline = now &+ UInt64(order.finalityMillis)
            polls = 0
            accountProof = nil
            job = .inclusion(outgoing.id)
            return ask(.transactionProof(outgoing.id))
        case .included(let inclusion):
            guard inclusion.receipt.status == .success else { throw .failedOnChain(inclusion.receipt) }
            guard let outgoing, let account = payingFrom else { throw .busy }
            return finish(
                .paid(VerifiedPayment(id: outgoing.id, nonce: outgoing.nonce, account: account, inclusion: inclusion)))
        default:
            return finish(outcome)
        }
    }

    /// The transfer, signed with the nonce just proven; its fee cap allows the base fee to double.
    private mutating func sign(_ order: PaymentOrder, _ account: VerifiedAccount) throws(DeviceError) -> DeviceAction {
        guard var wallet else { throw .noWallet }
        guard account.state.balance >= order.amount else {
            throw .insufficientFunds(balance: account.state.balance, amount: order.amount)
        }
        wallet.resync(verifiedAccount: account.state)
        let baseFee = account.header.nextBaseFee
        let doubled = baseFee.multipliedReportingOverflow(by: 2)
        let cap = doubled.partialValue.addingReportingOverflow(order.tipPerUnit)
        let maxFee = order.maxFeePerUnit ?? (doubled.overflow || cap.overflow ? UInt64.max : cap.partialValue)
        let transaction: SignedTransaction
        do {
            transaction = try wallet.transfer(
                chainID: account.header.chainID, to: order.recipient, amount: order.amount,
                maxFeePerUnit: maxFee, tipPerUnit: order.tipPerUnit, auxRandom: order.auxRandom)
        } catch {
            throw .wallet(error)
        }
        self.wallet = wallet
        reports.append(
            .signed(
                id: transaction.id, nonce: transaction.body.nonce, maxFeePerUnit: maxFee, baseFee: baseFee,
                height: account.header.height))
        payingFrom = account
        let signed = OutgoingTransaction(transaction)
        outgoing = signed
        job = .submit
        return ask(DeviceRequest(.transaction, payload: signed.encoded))
    }

    // MARK: helpers

    private mutating func finish(_ outcome: DeviceOutcome) -> DeviceAction {
        abandon()
        return .done(outcome)
    }

    private mutating func fail(_ error: DeviceError) -> DeviceAction {
        abandon()
        return .failed(error)
    }

    private mutating func ask(_ request: DeviceRequest, height: UInt64 = 0) -> DeviceAction {
        awaiting = request.resource
        askedHeight = height
        return .send(request)
    }

    private mutating func askCheckpoints() -> DeviceAction {
        ask(.checkpoints(from: trusted?.epoch ?? 0, limit: configuration.checkpointPage))
    }

    /// Whether `height` lies past the epoch the trusted committee signs.
    private func isPast(_ height: UInt64) -> Bool {
        guard let last = trusted?.signedHeights?.last else { return false }
        return height > last
    }

    /// ``InboxPayload/maxEntries``, read here without linking that payload's decoder.
    static let maxInboxEntries = 4

    private func gatewayError(_ answer: DeviceAnswer, _ resource: DeviceResource) -> DeviceError {
        .gateway(resource, code: answer.code, diagnostic: ShortText(answer.body))
    }

    /// A 2.05 answer's body decoded as `T`, or the error the answer means.
    private func decode<T: CanonicalCodable>(_ answer: DeviceAnswer, _ resource: DeviceResource, as: T.Type = T.self)
        throws(DeviceError) -> T
    {
        guard answer.code == .content else { throw gatewayError(answer, resource) }
        do { return try T(decoding: answer.body) } catch { throw .undecodable(resource, error) }
    }
}
