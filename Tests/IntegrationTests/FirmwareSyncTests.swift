import AmarsClient
import AmarsCodec
import Chain
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The firmware's light-client loop end to end, with real processes: a devnet of four `amarsd node` gateways
/// (each a delegate with its own SQLite file, epochs of 5 blocks of 200 ms, node 1 serving CoAP), the sync
/// firmware built for qemu-mps2-an386 with that genesis as its trust anchor, QEMU running it with its second UART
/// on a TCP port, and `amarsd bridge` relaying the UART's SLIP-framed CoAP to node 1 (`make -C Boards sync`).
///
/// The firmware starts once the chain is several epochs long. It must anchor at genesis, verify every checkpoint
/// and the head, prove its own (empty) account, then wait to be paid: the test sends it a transfer through
/// node 3 when it says it is waiting, and the device proves that transfer (inclusion and receipt against a
/// verified header). Then it pays the provisioned recipient, waits for the receipt, follows the chain again and
/// proves its payment final. It exits 0 only if every step verified; node 4 must then show both transfers.
///
/// Nothing is skipped: without QEMU or the firmware toolchain (`make -C Boards deps`, which `make test` runs)
/// the test fails and says what is missing.
final class FirmwareSyncTests: FirmwareDevnetTestCase {
    override var directoryPrefix: String { "amars-fwsync" }
    static let chainID: UInt32 = 4_078

    func testFirmwareSyncsAFourGatewayDevnetIsPaidAndPays() throws {
        try Harness.requireBoardToolchain(for: "firmware sync test")
        let (device, recipient) = try makeChain(id: Self.chainID, name: "firmware-e2e")
        let funder = try KeyFile.load(path("keys/app-user-incentive.key"))
        let payAmount: UInt64 = 1_250_000
        let make = [
            "-C", Self.boards, "BOARD=qemu-mps2-an386",
            "GENESIS=\(path("genesis.json"))", "HOST_BUILD=\(Harness.binDirectory.path)",
            "DEVICE_KEY=\(path("keys/device.key"))", "PAY_TO=\(recipient)", "PAY_AMOUNT=\(payAmount)",
            "STORAGE_DIR=\(path("flash"))",
        ]
        // Build first (minutes on a cold scratch), then start the chain the firmware meets.
        let build = try run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }

        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        try startDevnet(coapPort: coapPort)
        let epochs: UInt64 = 5
        XCTAssertTrue(
            wait(60) { self.nodes.allSatisfy { ($0.head()?.height ?? 0) >= epochs * 5 } },
            "the devnet did not reach \(epochs) epochs: \(nodes.map { $0.head()?.height ?? 0 })")
        let node3 = "http://127.0.0.1:\(nodes[2].port)"
        let node4 = "http://127.0.0.1:\(nodes[3].port)"
        XCTAssertEqual(try balance(node4, device), 0)
        let recipientBefore = try balance(node4, recipient)

        // The firmware runs; when it waits to be paid, a transfer goes to node 3 (gossip brings it to the
        // proposers).
        let fundAmount: UInt64 = 10_000_000
        var funded: Harness.Result?
        let serialPort = Harness.freePort(type: Int32(SOCK_STREAM.rawValue))
        let sync = try Harness.run(
            "/usr/bin/env",
            ["make"] + make + [
                "sync", "SKIP_BUILD=1", "GATEWAY=coap://127.0.0.1:\(coapPort)", "SYNC_PORT=\(serialPort)",
            ],
            timeout: 600
        ) { line in
            guard funded == nil, line.contains("receive: waiting for a transfer to \(device)") else { return }
            funded = try? Harness.amars([
                "transfer", "--key", path("keys/app-user-incentive.key"), "--to", device, "--amount", "10",
                "--node", node3,
            ])
        }
        let log = sync.output
        print(log)  // the firmware's own account of each step, with its request count and memory peaks
        XCTAssertEqual(funded?.status, 0, "funding: \(funded?.output ?? "never sent") \(funded?.error ?? "")")
        XCTAssertEqual(sync.status, 0, "sync firmware failed:\n\(log.suffix(6000))")
        XCTAssertTrue(log.contains("firmware exit status 0"), log)
        XCTAssertTrue(log.contains("storage: no saved trusted state"), log)
        XCTAssertTrue(log.contains("sync: anchored at genesis"), log)
        XCTAssertTrue(log.contains("committee of 4"), log)
        // The board has a clock (the host's, through semihosting) and the genesis a trusting period: it skips
        // from genesis to the newest checkpoint in one step, the committee being the same four members.
        guard let skip = log.firstMatch(of: #/sync: skipped from epoch 0 to (\d+)/#), let last = UInt64(skip.1) else {
            return XCTFail("no skip from genesis:\n\(log)")
        }
        XCTAssertGreaterThanOrEqual(last, epochs, log)
        XCTAssertFalse(log.contains("sync: checkpoint of epoch 1 verified"), "it went epoch by epoch:\n\(log)")
        XCTAssertTrue(log.contains("sync: synced epochs 0 to \(last) (1 checkpoints, 1 by skipping"), log)
        XCTAssertTrue(log.contains("sync: PASS"), log)
        XCTAssertTrue(log.contains("sync: head at height"), log)

        // Paid: the empty account proven, the transfer listed, then proven by the device itself.
        XCTAssertTrue(log.contains("pay: account balance 0, nonce 0 verified"), log)
        let received =
            #"receive: \#(fundAmount) units from key \#(Hex.encode(funder.xOnlyPublicKey.bytes.bytes)), "#
            + #"final at height \d+, position \d+: inclusion and receipt verified"#
        XCTAssertNotNil(log.range(of: received, options: .regularExpression), log)
        XCTAssertNotNil(
            log.range(
                of: #"receive: inclusion of [0-9a-f]{64} at position \d+ verified against the transactions root of "#
                    + #"block \d+, its receipt \(success\) against the receipts root"#, options: .regularExpression),
            log)
        XCTAssertTrue(log.contains("pay: account balance \(fundAmount), nonce 0 verified"), log)

        // Pays: each step printed, the final line, and node 4 agrees.
        XCTAssertTrue(log.contains("pay: submitted"), log)
        XCTAssertTrue(log.contains("pay: receipt after"), log)
        XCTAssertNotNil(
            log.range(of: #"pay: inclusion of [0-9a-f]{64} at position \d+ verified"#, options: .regularExpression), log
        )
        let paid =
            #"pay: paid \#(payAmount) units to \#(recipient), nonce 0, "#
            + #"final at height \d+, inclusion verified"#
        XCTAssertNotNil(log.range(of: paid, options: .regularExpression), log)
        XCTAssertTrue(log.contains("pay: PASS"), log)
        XCTAssertTrue(
            wait(10) { ((try? self.balance(node4, recipient)) ?? 0) == recipientBefore + payAmount },
            "node 4 does not show the device's payment")
        let left = try balance(node4, device)
        XCTAssertLessThan(left, fundAmount - payAmount, "the fee was not charged")
        XCTAssertGreaterThan(left, fundAmount - payAmount - 100_000, "more than a transfer's fee went")
        guard let saved = log.matches(of: #/storage: saved trusted epoch (\d+)/#).last,
            let savedEpoch = UInt64(saved.1)
        else { return XCTFail("the trusted state was never saved:\n\(log)") }

        // Power cycle: the same board (same flash file) boots again a few epochs later. It resumes from the
        // saved state, skips to the newest checkpoint in one step, and pays again at once (it can afford it:
        // nonce 1).
        XCTAssertTrue(
            wait(30) { self.nodes.allSatisfy { ($0.head()?.height ?? 0) >= (savedEpoch + 3) * 5 } },
            "the devnet did not move on: \(nodes.map { $0.head()?.height ?? 0 })")
        let rerun = try run(
            "/usr/bin/env",
            ["make"] + make + [
                "sync", "SKIP_BUILD=1", "GATEWAY=coap://127.0.0.1:\(coapPort)",
                "SYNC_PORT=\(Harness.freePort(type: Int32(SOCK_STREAM.rawValue)))",
            ],
            timeout: 600)
        let again = rerun.output
        print(again)
        XCTAssertEqual(rerun.status, 0, "second boot failed:\n\(again.suffix(6000))")
        XCTAssertTrue(again.contains("storage: resumed trusted epoch \(savedEpoch)"), again)
        XCTAssertFalse(again.contains("sync: anchored at genesis"), again)
        // The wake's sync is one skip; the re-sync after paying may step to the adjacent epoch in sequence.
        let wake = again.components(separatedBy: "sync: PASS").first ?? again
        XCTAssertFalse(wake.contains("sync: checkpoint of epoch"), again)
        XCTAssertTrue(again.contains("sync: skipped from epoch \(savedEpoch) to "), again)
        XCTAssertNotNil(
            again.range(
                of: #"synced epochs \#(savedEpoch) to \d+ \(1 checkpoints, 1 by skipping"#, options: .regularExpression),
            again)
        XCTAssertFalse(again.contains("receive: waiting"), "it could pay without waiting:\n\(again)")
        XCTAssertNotNil(
            again.range(of: #"pay: paid \#(payAmount) units to \#(recipient), nonce 1, "#, options: .regularExpression),
            again)
        XCTAssertTrue(
            wait(10) { ((try? self.balance(node4, recipient)) ?? 0) == recipientBefore + 2 * payAmount },
            "node 4 does not show the second payment")
        assertAgreement()
    }
}
