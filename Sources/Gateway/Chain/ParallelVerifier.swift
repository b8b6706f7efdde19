import AmarsCodec
import Dispatch
import Foundation
import Ledger

/// Decodes and checks the signatures of many transactions on every core at once. A signature check is most of
/// a transaction's cost to a node, and batches arrive whole (a gossip frame, `POST /v1/txs`, an MQTT turn, a
/// proposed block), so splitting a batch over the cores is where a gateway's second core pays.
///
/// Only the checks run in parallel: admission stays in order on the caller's thread, since a sender's later nonce
/// needs its earlier one in the mempool first.
public enum ParallelVerifier {
    /// Below this many transactions per core a batch is checked on the calling thread: handing work to another
    /// thread costs a few microseconds, a check about forty.
    static let minimumPerCore = 4

    /// The cores the checks spread over.
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// `batch` decoded and verified, in order; a transaction `isKnown` says is held is `alreadyKnown`, without a
    /// signature check. `isKnown` is called from several threads at once.
    public static func verify(
        _ batch: [[UInt8]], unlessKnown isKnown: @Sendable (Bytes32) -> Bool, checker: TransactionChecker
    ) -> [Result<VerifiedTransaction, TransactionError>] {
        map(batch.count) { i throws(TransactionError) in try checker.check(decoding: batch[i], unlessKnown: isKnown) }
    }

    /// `transactions` verified, in order.
    public static func verify(
        _ transactions: [SignedTransaction], checker: TransactionChecker
    ) -> [Result<VerifiedTransaction, TransactionError>] {
        map(transactions.count) { i throws(TransactionError) in try checker.check(transactions[i]) }
    }

    /// Transactions a worker takes at a time. The cores are shared (with the thread that produces blocks, and
    /// on a small machine with the other gateways), so a batch cut into one slice per core waits for whichever
    /// core was taken away longest; small chunks taken in turn keep every core checking until the batch is done.
    static let chunk = 32

    /// `check(i)` for every i below `count`, in contiguous chunks that the cores take in turn.
    private static func map(
        _ count: Int, _ check: @Sendable (Int) throws(TransactionError) -> VerifiedTransaction
    ) -> [Result<VerifiedTransaction, TransactionError>] {
        guard min(cores, count / minimumPerCore) > 1 else {
            return (0..<count).map { i in Result { () throws(TransactionError) in try check(i) } }
        }
        let size = min(chunk, (count + cores - 1) / cores)
        let chunks = (count + size - 1) / size
        return [Result<VerifiedTransaction, TransactionError>](unsafeUninitializedCapacity: count) { buffer, done in
            // Each chunk writes only its own indices of the buffer.
            nonisolated(unsafe) let out = buffer.baseAddress!
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (c * size)..<min(count, (c + 1) * size) {
                    (out + i).initialize(to: Result { () throws(TransactionError) in try check(i) })
                }
            }
            done = count
        }
    }
}
