import AmarsCodec
import Ledger

/// The state transition for one transaction: a pure function of the transaction, the state and the block
/// context. Only transfers execute so far; every other kind is refused before it reaches a block.
public struct TransactionExecutor: Sendable {
    public var chainID: UInt32
    public var fees: FeeSchedule

    public init(chainID: UInt32, fees: FeeSchedule) {
        self.chainID = chainID
        self.fees = fees
    }

    /// Checks that do not depend on state: chain, kind, fee cap against the base fee.
    public func checkStateless(_ tx: VerifiedTransaction, baseFee: UInt64) throws(TransactionError) {
        let body = tx.transaction.body
        guard body.chainID == chainID else { throw .wrongChain(expected: chainID, got: body.chainID) }
        guard case .transfer = body.payload else { throw .unsupportedKind(body.payload.tag) }
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

    /// Applies `tx` to `state`, paying the fee to `proposer`. On error `state` is unchanged.
    public func apply(
        _ tx: VerifiedTransaction, to state: inout StateOverlay, baseFee: UInt64, proposer: Address
    ) throws(TransactionError) -> Receipt {
        try checkStateless(tx, baseFee: baseFee)
        let body = tx.transaction.body
        guard case .transfer(let transfer) = body.payload else { throw .unsupportedKind(body.payload.tag) }
        var sender = state[tx.senderAddress]
        guard body.nonce >= sender.nonce else { throw .nonceReplayed(expected: sender.nonce, got: body.nonce) }
        guard body.nonce == sender.nonce else { throw .nonceGap(expected: sender.nonce, got: body.nonce) }
        let units = fees.units(encodedSize: tx.encodedSize)
        // checkStateless guarantees the cap covers the base fee.
        let price = fees.effectivePrice(
            baseFee: baseFee, maxFeePerUnit: body.maxFeePerUnit, tipPerUnit: body.tipPerUnit)!
        let (fee, o1) = units.multipliedReportingOverflow(by: price)
        let (debit, o2) = fee.addingReportingOverflow(transfer.amount)
        guard !o1, !o2 else { throw .amountOverflow }
        guard sender.balance >= debit else { throw .insufficientBalance(needed: debit, available: sender.balance) }
        // Impossible while supply is conserved, but checked before any write so an error changes nothing.
        guard
            transfer.to == tx.senderAddress
                || !state[transfer.to].balance.addingReportingOverflow(transfer.amount).overflow
        else { throw .amountOverflow }
        sender.balance -= debit
        sender.nonce += 1
        state[tx.senderAddress] = sender
        // Credits read the overlay after the debit, so a transfer to oneself or to the proposer stays exact.
        var recipient = state[transfer.to]
        recipient.balance += transfer.amount
        state[transfer.to] = recipient
        var feeReceiver = state[proposer]
        feeReceiver.balance += fee
        state[proposer] = feeReceiver
        return Receipt(transactionID: tx.id, status: .success, unitsUsed: units, feePaid: fee)
    }
}
