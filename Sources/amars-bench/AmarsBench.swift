import AmarsCodec
import AmarsCrypto
import ArgumentParser
import CSecp256k1
import Chain
import Foundation
import Ledger

@main
struct AmarsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amars-bench",
        abstract: "Benchmarks, each printed next to a baseline measured in the same run.",
        subcommands: [LedgerBench.self, DeviceLinkBench.self, ConsensusBench.self, LightClientBench.self])
}

/// Signed transfers verified, executed and committed to SQLite per second on one core, against the raw
/// libsecp256k1 Schnorr verify rate: the ratio says how much of the chain's time is not signature checking.
struct LedgerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Ledger throughput against raw libsecp256k1 verification.")

    @Option(help: "Signed transfers to push through the chain.")
    var transactions: Int = 40_000

    @Option(help: "Distinct senders (the mempool keeps at most 64 per sender).")
    var senders: Int = 2_000

    @Option(help: "Transactions submitted between two blocks.")
    var blockSize: Int = 5_000

    func validate() throws {
        guard transactions > 0, senders > 0, blockSize > 0 else { throw ValidationError("all counts must be positive") }
        guard transactions / senders <= 60 else { throw ValidationError("more senders needed: at most 60 tx each") }
    }

    func run() throws {
        print("preparing \(transactions) signed transfers from \(senders) senders ...")
        let keys = (0..<senders).map { i in try! PrivateKey(bytes: Bytes32(w0: 7, w1: 0, w2: 0, w3: UInt64(i + 1))) }
        let addresses = keys.map { Address(publicKey: $0.xOnlyPublicKey) }
        let validator = try! PrivateKey(bytes: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9))
        var allocations: [Genesis.Allocation] = []
        for (ci, c) in Genesis.Category.allCases.enumerated() {
            // Spread every category over all senders so that each can pay.
            let share = c.amount / UInt64(senders)
            for (i, a) in addresses.enumerated() {
                let amount = i == 0 ? c.amount - share * UInt64(senders - 1) : share
                allocations.append(.init(category: c, address: a, amount: amount))
            }
            _ = ci
        }
        let genesis = Genesis(
            chainID: 1, chainName: "bench", timestamp: 0, epochLength: 3600, initialBaseFee: 1,
            validators: [.init(key: validator.xOnlyPublicKey.bytes, weight: 1)], allocations: allocations, burned: [:])
        try genesis.validate()
        var rng = SystemRandomNumberGenerator()
        var encoded: [[UInt8]] = []
        encoded.reserveCapacity(transactions)
        var nonces = [UInt64](repeating: 0, count: senders)
        for i in 0..<transactions {
            let s = i % senders
            let body = TransactionBody(
                chainID: 1, sender: keys[s].xOnlyPublicKey.bytes, nonce: nonces[s], maxFeePerUnit: 100, tipPerUnit: 1,
                payload: .transfer(
                    Ledger.Transfer(to: addresses[Int.random(in: 0..<senders, using: &rng)], amount: 1 + UInt64(i))))
            nonces[s] += 1
            encoded.append(SignedTransaction(body: body, signer: keys[s]).encoded)
        }

        // Baseline: libsecp256k1 alone, keys pre-parsed, the same signatures.
        let baselineRate = rawVerifyRate(encoded: Array(encoded.prefix(20_000)))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let node = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path),
            validatorKey: validator)
        var submitTime = 0.0
        var blockTime = 0.0
        var committed = 0
        var blocks = 0
        var start = 0
        let began = DispatchTime.now()
        while start < encoded.count {
            let end = min(start + blockSize, encoded.count)
            let t0 = DispatchTime.now()
            for i in start..<end { _ = try node.submit(encoded: encoded[i]) }
            let t1 = DispatchTime.now()
            while node.pendingCount > 0 {
                committed += try node.produceBlock(timestamp: UInt64(blocks)).block.transactions.count
                blocks += 1
            }
            let t2 = DispatchTime.now()
            submitTime += seconds(t0, t1)
            blockTime += seconds(t1, t2)
            start = end
        }
        let total = seconds(began, DispatchTime.now())
        guard committed == transactions else { throw ValidationError("only \(committed) of \(transactions) committed") }
        guard node.supply.inAccounts == Amount.totalSupply else { throw ValidationError("supply changed") }
        let ledgerRate = Double(committed) / total
        print("schnorr verify (raw libsecp256k1, one core): \(Int(baselineRate)) /s")
        print(
            "ledger: \(committed) transfers in \(blocks) blocks, \(String(format: "%.2f", total)) s "
                + "(decode+verify+admit \(String(format: "%.2f", submitTime)) s, "
                + "execute+state root+SQLite commit \(String(format: "%.2f", blockTime)) s)")
        print("ledger (verified, executed, committed): \(Int(ledgerRate)) tx/s")
        print("ledger/verify ratio: \(String(format: "%.3f", ledgerRate / baselineRate))")
    }

    private func seconds(_ a: DispatchTime, _ b: DispatchTime) -> Double {
        Double(b.uptimeNanoseconds - a.uptimeNanoseconds) / 1e9
    }

    /// Verify rate of libsecp256k1 called directly, keys parsed beforehand: the best the chain could do.
    private func rawVerifyRate(encoded: [[UInt8]]) -> Double {
        let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
        defer { secp256k1_context_destroy(ctx) }
        var items: [(key: secp256k1_xonly_pubkey, message: [UInt8], signature: [UInt8])] = []
        for bytes in encoded {
            let tx = try! SignedTransaction(decoding: bytes)
            var key = secp256k1_xonly_pubkey()
            _ = secp256k1_xonly_pubkey_parse(ctx, &key, tx.body.sender.bytes)
            items.append((key, tx.id.bytes, tx.signature.bytes))
        }
        var ok = 0
        let t0 = DispatchTime.now()
        for var item in items {
            ok += Int(secp256k1_schnorrsig_verify(ctx, item.signature, item.message, 32, &item.key))
        }
        let elapsed = seconds(t0, DispatchTime.now())
        precondition(ok == items.count, "baseline signatures must verify")
        return Double(items.count) / elapsed
    }
}
