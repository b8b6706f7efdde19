import AmarsCodec
import AmarsCrypto
import AmarsClient
import ArgumentParser
import Foundation
import Ledger

/// `amars-bench channel`: payments through a one-way channel between two parties on this host, each one the
/// sender signing the next update, the recipient checking it (signature, channel, deposit, better than the one it
/// holds) and storing it in a file the way `amars channel accept` does, against signed transfers verified,
/// executed and committed on chain per second (the ledger bench's single node) in the same run.
struct ChannelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel", abstract: "Off-chain channel payments per second against on-chain transfers.")

    @Option(help: "Off-chain payments to make.")
    var payments: Int = 20_000

    @Option(help: "On-chain transfers for the baseline.")
    var transactions: Int = 20_000

    func validate() throws {
        guard (1...10_000_000).contains(payments), (100...200_000).contains(transactions) else {
            throw ValidationError("--payments must be 1 to 10000000 and --transactions 100 to 200000")
        }
    }

    func run() throws {
        let sender = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 7, w3: 1))
        let recipient = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 7, w3: 2))
        let id = Bytes32(w0: 0xC4, w1: 1, w2: 2, w3: 3)
        let channel = PaymentChannel(
            sender: Address(publicKey: sender.xOnlyPublicKey), senderKey: sender.xOnlyPublicKey.bytes,
            recipient: Address(publicKey: recipient.xOnlyPublicKey), deposit: UInt64(payments) * 10,
            expiryHeight: 1_000)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("amars-bench-channel-\(getpid())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = ChannelFolder(path: folder.path)

        // Signed and checked only, in memory: the cryptographic cost of a payment.
        var last: ChannelUpdate?
        var t0 = DispatchTime.now()
        for _ in 0..<payments {
            let update = try channel.pay(10, after: last, channelID: id, height: 1, sender: sender)
            try channel.accept(update, channelID: id, holding: last, height: 1)
            last = update
        }
        let inMemory = Double(payments) / seconds(since: t0)
        // The same, each accepted update then stored in the recipient's channel folder (`amars channel accept`'s).
        last = nil
        t0 = DispatchTime.now()
        for _ in 0..<payments {
            let update = try channel.pay(10, after: last, channelID: id, height: 1, sender: sender)
            try channel.accept(update, channelID: id, holding: last, height: 1)
            try store.store(update)
            last = update
        }
        let offChain = Double(payments) / seconds(since: t0)
        guard last?.paid == UInt64(payments) * 10 else { throw ValidationError("the channel did not add up") }

        print("preparing \(transactions) signed transfers for the on-chain baseline ...")
        let workload = try LedgerWorkload(transactions: transactions, senders: max(transactions / 50, 1))
        let onChain = try workload.run(blockSize: 5_000, everyCore: false).rate
        print("on chain (verified, executed, committed, one node): \(Int(onChain)) transfers/s")
        print("off chain (signed and checked, in memory): \(Int(inMemory)) payments/s")
        print("off chain (signed, checked, stored by the recipient): \(Int(offChain)) payments/s")
        print("channel/ledger ratio: \(String(format: "%.2f", offChain / onChain))")
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}
