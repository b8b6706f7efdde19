import AmarsCodec
import AmarsCrypto
import Ledger

/// What a block's transactions execute against besides the state: the fee price and who collects it, and
/// the epoch (for stake locks and unbonding).
public struct BlockContext: Sendable {
    public var baseFee: UInt64
    public var proposer: Address
    public var epoch: UInt64
    /// The block's height (escrow expiry).
    public var height: UInt64
    /// The block's header timestamp in milliseconds (certificate validity).
    public var timestamp: UInt64

    public init(baseFee: UInt64, proposer: Address, epoch: UInt64, height: UInt64, timestamp: UInt64 = 0) {
        self.baseFee = baseFee
        self.proposer = proposer
        self.epoch = epoch
        self.height = height
        self.timestamp = timestamp
    }
}

/// The state transition for one transaction: a pure function of the transaction, the state and the block
/// context. Every check runs before the first write, so a refused transaction changes nothing.
///
/// Every kind executes: transfers, the staking kinds, escrows, evidence, payment-code notifications, stealth
/// transfers, certificates, HTLCs and payment channels.
public struct TransactionExecutor: Sendable {
    public var chainID: UInt32
    /// The genesis block hash every transaction must name (``TransactionBody/genesis``).
    public var genesisBlock: Bytes32
    public var fees: FeeSchedule
    public var staking: StakingRules
    /// Blocks per epoch: evidence names a height, and the committee that must have signed is its epoch's.
    public var epochLength: UInt64

    public init(
        chainID: UInt32, genesisBlock: Bytes32, fees: FeeSchedule, staking: Genesis.StakingParameters = .init(),
        epochLength: UInt64 = 1
    ) {
        self.chainID = chainID
        self.genesisBlock = genesisBlock
        self.fees = fees
        self.staking = StakingRules(parameters: staking)
        self.epochLength = max(epochLength, 1)
    }

    /// Checks that do not depend on state: chain, kind, fee cap against the base fee.
    public func checkStateless(_ tx: VerifiedTransaction, baseFee: UInt64) throws(TransactionError) {
        let body = tx.transaction.body
        guard body.genesis == genesisBlock else { throw .wrongChain(expected: genesisBlock, got: body.genesis) }
        switch body.payload {
        case .transfer, .candidateRegister, .candidateUpdate, .stake, .restake, .unstake, .withdraw,
            .doubleSignEvidence, .escrowOpen, .escrowClose, .paymentCodeNotify, .stealthTransfer, .certificatePublish,
            .certificateRevoke, .htlcLock, .htlcClaim, .htlcRefund, .channelOpen, .channelClose, .channelRefund:
            break
        default: throw .unsupportedKind(body.payload.tag)
        }
        guard body.maxFeePerUnit >= baseFee else {
            throw .feeBelowBaseFee(baseFee: baseFee, maxFeePerUnit: body.maxFeePerUnit)
        }
    }

    /// The most a transaction can cost its sender: amount plus units at the fee cap.
    public func maxCost(_ tx: VerifiedTransaction) throws(TransactionError) -> UInt64 {
        let units = fees.units(encodedSize: tx.encodedSize)
        let (fee, o1) = units.multipliedReportingOverflow(by: tx.transaction.body.maxFeePerUnit)
        let (total, o2) = fee.addingReportingOverflow(tx.transaction.body.payload.debitedAmount)
        guard !o1, !o2 else { throw .amountOverflow }
        return total
    }

    /// Applies `tx` to `state`, paying the fee into the block's fee pool. On error `state` is unchanged.
    public func apply(
        _ tx: VerifiedTransaction, to state: inout StateOverlay, context: BlockContext
    ) throws(TransactionError) -> Receipt {
        try checkStateless(tx, baseFee: context.baseFee)
        let body = tx.transaction.body
        var sender = state[tx.senderAddress]
        guard body.nonce >= sender.nonce else { throw .nonceReplayed(expected: sender.nonce, got: body.nonce) }
        guard body.nonce == sender.nonce else { throw .nonceGap(expected: sender.nonce, got: body.nonce) }
        let units = fees.units(encodedSize: tx.encodedSize)
        // checkStateless guarantees the cap covers the base fee.
        let price = fees.effectivePrice(
            baseFee: context.baseFee, maxFeePerUnit: body.maxFeePerUnit, tipPerUnit: body.tipPerUnit)!
        let (fee, o1) = units.multipliedReportingOverflow(by: price)
        let (debit, o2) = fee.addingReportingOverflow(body.payload.debitedAmount)
        guard !o1, !o2 else { throw .amountOverflow }
        guard sender.balance >= debit else { throw .insufficientBalance(needed: debit, available: sender.balance) }

        // Plan the payload's effect (all checks), then write.
        var credits: [(to: Address, amount: UInt64)] = []
        var writes: [(ObjectKey, [UInt8]?)] = []
        switch body.payload {
        case .transfer(let transfer):
            credits = [(transfer.to, transfer.amount)]
        case .stealthTransfer(let transfer):
            // R is gathered from the block into the epoch's committed announcements (EpochPayees), not written here.
            credits = [(transfer.to, transfer.amount)]
        case .paymentCodeNotify(let notify):
            // No tokens move: the masked code is appended to the receiver's notification records.
            let countKey = ObjectKey(.paymentNotification, PaymentNotificationRecord.countIdentifier(notify.to))
            var reader = ByteReader(state.object(countKey) ?? [0])
            // Only this code writes the count; a value that does not decode is a corrupt store, not an input.
            guard let count = try? reader.readVarint() else { preconditionFailure("corrupt notification count") }
            let record = PaymentNotificationRecord(
                sender: body.sender, nonce: body.nonce, maskedCode: notify.maskedCode)
            writes = [
                (
                    ObjectKey(
                        .paymentNotification, PaymentNotificationRecord.recordIdentifier(notify.to, index: count)),
                    record.encoded
                ),
                (countKey, PaymentNotificationRecord.encodeCount(count + 1)),
            ]
        case .htlcLock(let lock):
            do {
                writes = [try HTLCRules.planLock(lock, id: tx.id, sender: tx.senderAddress, height: context.height)]
            } catch { throw .htlc(error) }
        case .htlcClaim(let claim):
            do {
                let effect = try HTLCRules.planClaim(
                    claim, sender: tx.senderAddress, height: context.height, state: state)
                writes = [effect.write]
                credits = [effect.credit]
            } catch { throw .htlc(error) }
        case .htlcRefund(let refund):
            do {
                let effect = try HTLCRules.planRefund(
                    refund, sender: tx.senderAddress, height: context.height, state: state)
                writes = [effect.write]
                credits = [effect.credit]
            } catch { throw .htlc(error) }
        case .channelOpen(let open):
            do {
                writes = [
                    try ChannelRules.planOpen(
                        open, id: tx.id, sender: tx.senderAddress, senderKey: body.sender, height: context.height)
                ]
            } catch { throw .channel(error) }
        case .channelClose(let close):
            do {
                let effect = try ChannelRules.planClose(
                    close, sender: tx.senderAddress, height: context.height, state: state)
                writes = [effect.write]
                credits = effect.credits
            } catch { throw .channel(error) }
        case .channelRefund(let refund):
            do {
                let effect = try ChannelRules.planRefund(
                    refund, sender: tx.senderAddress, height: context.height, state: state)
                writes = [effect.write]
                credits = [effect.credit]
            } catch { throw .channel(error) }
        case .certificatePublish(let publish):
            do {
                writes = try CertificateRules.planPublish(
                    publish, sender: tx.senderAddress, height: context.height, time: context.timestamp / 1000,
                    state: state)
            } catch { throw .certificate(error) }
        case .certificateRevoke(let revoke):
            do {
                writes = try CertificateRules.planRevoke(
                    revoke, sender: tx.senderAddress, height: context.height, state: state)
            } catch { throw .certificate(error) }
        case .escrowOpen(let open):
            do {
                writes = [try EscrowRules.planOpen(open, id: tx.id, renter: tx.senderAddress, height: context.height)]
            } catch {
                throw .escrow(error)
            }
        case .escrowClose(let close):
            do {
                let effect = try EscrowRules.planClose(
                    close, sender: tx.senderAddress, genesis: genesisBlock, height: context.height, state: state)
                writes = [effect.write]
                credits = effect.credits
            } catch {
                throw .escrow(error)
            }
        case .doubleSignEvidence(let evidence):
            let height = evidence.first.height
            let epoch = height == 0 ? 0 : (height - 1) / epochLength
            var committee = StakingRules.decode(Committee.self, state.object(StakingRules.committeeKey(epoch: epoch)))
            // Checkpoint attestations are signed by the epoch's pool, not only its committee.
            if evidence.first.step == .checkpoint {
                committee = PoolRoster.roster(epoch: epoch, object: { state.object($0) }, committee: committee)
            }
            do {
                let effect = try staking.planEvidence(
                    evidence, reporter: tx.senderAddress, chainID: chainID, genesis: genesisBlock, committee: committee,
                    state: state)
                writes = effect.writes
                if effect.withdrawn > 0 { credits = [(tx.senderAddress, effect.withdrawn)] }
            } catch {
                throw .staking(error)
            }
        default:
            do {
                let effect = try staking.plan(
                    body.payload, sender: tx.senderAddress, state: state, epoch: context.epoch)
                writes = effect.writes
                if effect.withdrawn > 0 { credits = [(tx.senderAddress, effect.withdrawn)] }
            } catch {
                throw .staking(error)
            }
        }
        // Impossible while supply is conserved, but checked before any write so an error changes nothing.
        for credit in credits where credit.to != tx.senderAddress {
            guard !state[credit.to].balance.addingReportingOverflow(credit.amount).overflow else {
                throw .amountOverflow
            }
        }
        sender.balance -= debit
        sender.nonce += 1
        state[tx.senderAddress] = sender
        for (key, value) in writes { state.setObject(key, value) }
        // Credits read the overlay after the debit, so a transfer to oneself or to the proposer stays exact.
        for credit in credits where credit.amount > 0 {
            var receiver = state[credit.to]
            receiver.balance += credit.amount
            state[credit.to] = receiver
        }
        // Fees wait in the pool until the block's end, when proposer and committee share them (RewardRules).
        var pool = state[RewardRules.feePool]
        pool.balance += fee
        state[RewardRules.feePool] = pool
        return Receipt(transactionID: tx.id, status: .success, unitsUsed: units, feePaid: fee)
    }
}
