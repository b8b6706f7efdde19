import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger
import Synchronization

/// The single-node ledger workload shared by `amars-bench ledger` and `amars-bench consensus` (its baseline):
/// a genesis spread over many senders, pre-signed transfers, and one `ChainNode` that is the whole committee
/// verifying, admitting, executing and committing them to SQLite.
struct LedgerWorkload {
    struct Figures {
        var committed: Int
        var blocks: Int
        var seconds: Double
        var submitSeconds: Double
        var blockSeconds: Double
        var rate: Double { Double(committed) / seconds }
    }

    let genesis: Genesis
    let validator: PrivateKey
    /// Signed transfers, encoded as a client would send them (signing is not timed).
    let encoded: [[UInt8]]

    /// `senders` keys share every genesis category; transfer i comes from sender i mod senders (at most 64 in
    /// a sender's mempool run, so keep transactions / senders below that).
    init(transactions: Int, senders: Int) throws {
        let keys = (0..<senders).map { i in try! PrivateKey(bytes: Bytes32(w0: 7, w1: 0, w2: 0, w3: UInt64(i + 1))) }
        let addresses = keys.map { Address(publicKey: $0.xOnlyPublicKey) }
        validator = try! PrivateKey(bytes: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9))
        var allocations: [Genesis.Allocation] = []
        for c in Genesis.Category.allCases {
            let share = c.amount / UInt64(senders)
            for (i, a) in addresses.enumerated() {
                let amount = i == 0 ? c.amount - share * UInt64(senders - 1) : share
                allocations.append(.init(category: c, address: a, amount: amount))
            }
        }
        genesis = Genesis(
            chainID: 1, chainName: "bench", timestamp: 0, epochLength: 3600, initialBaseFee: 1,
            validators: [.init(key: validator.xOnlyPublicKey.bytes, weight: 1)], allocations: allocations, burned: [:])
        try genesis.validate()
        let genesisBlock = genesis.header.hash
        var out: [[UInt8]] = []
        out.reserveCapacity(transactions)
        var nonces = [UInt64](repeating: 0, count: senders)
        for i in 0..<transactions {
            let s = i % senders
            let body = TransactionBody(
                genesis: genesisBlock, sender: keys[s].xOnlyPublicKey.bytes, nonce: nonces[s], maxFeePerUnit: 100,
                tipPerUnit: 1,
                payload: .transfer(Ledger.Transfer(to: addresses[(s * 7 + i) % senders], amount: 1 + UInt64(i))))
            nonces[s] += 1
            out.append(SignedTransaction(body: body, signer: keys[s]).encoded)
        }
        encoded = out
    }

    /// Submits in batches of `blockSize`, producing blocks until each batch is committed; checks that every
    /// transfer was committed and the supply is whole.
    ///
    /// `everyCore` uses the machine as a gateway does: each batch is decoded and signature-checked on every core
    /// (``ChainNode/verify(batch:)``) while the batch before it is admitted, executes and commits, and only
    /// admission runs in order. Without it, one thread submits and produces in turn.
    func run(blockSize: Int, everyCore: Bool) throws -> Figures {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let node = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path),
            validatorKey: validator)
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var figures = Figures(committed: 0, blocks: 0, seconds: 0, submitSeconds: 0, blockSeconds: 0)
        let batches = stride(from: 0, to: encoded.count, by: blockSize).map {
            Array(encoded[$0..<min($0 + blockSize, encoded.count)])
        }
        func produce() throws {
            while node.pendingCount > 0 {
                figures.committed += try node.produceBlock(timestamp: UInt64(figures.blocks)).block.transactions.count
                figures.blocks += 1
            }
        }
        let began = now()
        if everyCore {
            let ahead = Mutex<[Result<VerifiedTransaction, TransactionError>]>([])
            let group = DispatchGroup()
            func checkAhead(_ batch: [[UInt8]]) {
                DispatchQueue.global().async(group: group) { ahead.withLock { $0 = node.verify(batch: batch) } }
            }
            checkAhead(batches[0])
            for k in batches.indices {
                let t0 = now()
                group.wait()
                // The next batch is checked while this one is admitted and its block executes and commits.
                let checked = ahead.withLock { $0 }
                if k + 1 < batches.count { checkAhead(batches[k + 1]) }
                for result in checked { _ = try node.submit(result.get()) }
                let t1 = now()
                try produce()
                figures.submitSeconds += t1 - t0
                figures.blockSeconds += now() - t1
            }
        } else {
            for batch in batches {
                let t0 = now()
                for bytes in batch { _ = try node.submit(encoded: bytes) }
                let t1 = now()
                try produce()
                figures.submitSeconds += t1 - t0
                figures.blockSeconds += now() - t1
            }
        }
        figures.seconds = now() - began
        guard figures.committed == encoded.count else {
            throw ValidationError("ledger: only \(figures.committed) of \(encoded.count) committed")
        }
        let supply = node.supply
        guard supply.inAccounts + supply.staked == Amount.totalSupply else { throw ValidationError("supply changed") }
        return figures
    }
}
