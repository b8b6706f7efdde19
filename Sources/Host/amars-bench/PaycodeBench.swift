import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Foundation
import Ledger
import PaymentCodes

/// `amars-bench paycode`: what payment-code receiving costs a wallet or a device on the host.
///
/// - One-time keys derived per second (the receiver's side, BIP47: ECDH, SHA-256, one child key and a scalar
///   tweak), against raw libsecp256k1 ECDH in the same run: the ratio says what the derivation adds to the one
///   point multiplication it cannot avoid.
/// - Filter bytes per epoch at 100, 1,000 and 10,000 recipients, and the time to test 20 watched addresses
///   against each (what a device streams and checks per epoch).
struct PaycodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paycode", abstract: "Payment codes: one-time key derivation and recipient filters.")

    @Option(help: "Seconds to measure each rate.")
    var seconds: Double = 2

    @Flag(
        help: """
            Also count the instructions the Cortex-M4 firmware executes in QEMU to unmask a notification, derive a \
            one-time key and test a filter of 1,000 recipients (make -C Boards count; needs make -C Boards deps).
            """)
    var qemu = false

    func run() throws {
        let receiver = try PaymentCodeKeys(seed: [UInt8](repeating: 7, count: 32))
        let payer = try PaymentCodeKeys(seed: [UInt8](repeating: 9, count: 32)).code
        var index: UInt32 = 0
        let derived = callsPerSecond(seconds) {
            index &+= 1
            _ = try? OneTimeKey.secretKey(receiver: receiver, payer: payer, index: index % 1_000)
        }
        let own = try receiver.key(at: 0)
        let other = try payer.key(at: 0)
        var sink: UInt64 = 0
        let ecdh = callsPerSecond(seconds) { sink &+= own.sharedX(other).w0 }
        print(String(format: "one-time keys derived: %.0f/s", derived))
        print(String(format: "raw ECDH (x only):     %.0f/s   (sink %llu)", ecdh, sink & 1))
        let key = RecipientFilter.key(genesis: .zero, epoch: 1)
        var rng = SystemRandomNumberGenerator()
        let watched = (0..<20).map { _ in Address(raw: Bytes20(hi: rng.next(), mid: rng.next(), lo: 0)) }
        for count in [100, 1_000, 10_000] {
            let recipients = (0..<count).map { _ in
                Address(raw: Bytes20(hi: rng.next(), mid: rng.next(), lo: UInt32(truncatingIfNeeded: rng.next())))
            }
            let filter = RecipientFilter.build(recipients, key: key)
            let tests = callsPerSecond(seconds / 2) {
                var matcher = RecipientFilterMatcher(watching: watched, key: key)
                try? matcher.feed(filter)
                _ = try? matcher.finish()
            }
            print(
                String(
                    format: "filter of %6d recipients: %6d bytes (%.2f bytes each), 20 addresses tested in %.3f ms",
                    count, filter.count, Double(filter.count) / Double(count), 1_000 / tests))
        }
        if qemu {
            let table = try BoardCounts.run()
            let labels = [
                "one Schnorr verify", "unmask one payment-code notification", "derive one one-time key",
                "test 20 addresses against a filter",
            ]
            print("device (Cortex-M4 in QEMU, executed instructions; x one Schnorr verify):")
            for line in table where labels.contains(where: { line.contains($0) }) { print(line) }
            guard BoardCounts.count("derive one one-time key", in: table) != nil else {
                throw ValidationError("no payment-code counts in the output of make -C Boards count")
            }
        }
        print(String(format: "paycode/ecdh ratio: %.2f", derived / ecdh))
    }
}
