import AmarsClient
import AmarsCodec
import AmarsCrypto
import Foundation
import XCTest

/// A lock that releases against a secret, end to end with real processes: the claiming firmware
/// (`FIRMWARE_APP=claim`) for qemu-mps2-an386 under QEMU's instruction counter, a devnet of four `amarsd node`
/// gateways, and `amars htlc lock` through another gateway than the board's.
///
/// Alice locks 3 AMSC for the device under SHA-256 of a secret; the board, built with the lock's id and the secret,
/// proves the contract open for itself, claims it, proves the claim final and prints RELEASED. The chain then shows
/// the contract claimed with that secret and the device paid. Power-cycled, the same image finds the contract
/// claimed and refuses from the proven state (exit status 88, `htlcNotOpen`) without signing anything.
final class FirmwareClaimTests: FirmwareDevnetTestCase {
    override var directoryPrefix: String { "amars-fwclaim" }

    func testBoardClaimsTheHTLCLockedToItsSecretThenRefusesASecondClaim() throws {
        try Harness.requireBoardToolchain(for: "firmware HTLC claim test")
        let (device, coapPort) = try startChainAndDevnet(id: 4_081, name: "firmware-claim")
        let node2 = ["--node", "http://127.0.0.1:\(nodes[1].port)"]
        let node4 = "http://127.0.0.1:\(nodes[3].port)"
        let alice = path("keys/app-user-incentive.key")
        // The device pays its claim's fee from its own account.
        let funded = try Harness.amars(
            ["transfer", "--key", alice, "--to", device, "--amount", "0.5", "--wait"] + node2)
        XCTAssertEqual(funded.status, 0, funded.output + funded.error)
        let locked = try Harness.amars(
            [
                "htlc", "lock", "--key", alice, "--to", device, "--amount", "3", "--secret-out", path("secret.hex"),
                "--blocks", "5000", "--wait",
            ] + node2)
        XCTAssertEqual(locked.status, 0, locked.output + locked.error)
        let lockID = try XCTUnwrap(locked.output.firstMatch(of: #/lock id ([0-9a-f]{64})/#).map { String($0.1) })
        let secret = try String(contentsOfFile: path("secret.hex"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let make = [
            "-C", Self.boards, "BOARD=qemu-mps2-an386", "FIRMWARE_APP=claim", "GENESIS=\(path("genesis.json"))",
            "HOST_BUILD=\(Harness.binDirectory.path)", "DEVICE_KEY=\(path("keys/device.key"))", "HTLC_ID=\(lockID)",
            "HTLC_SECRET=\(path("secret.hex"))", "STORAGE_DIR=\(path("flash"))",
        ]
        let build = try Harness.run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }
        let before = try balance(node4, device)
        let first = try boot(make, coapPort, extra: ["SYNC_COUNT=1"])
        let log = first.output
        print(log)
        XCTAssertEqual(first.status, 0, "claiming firmware failed:\n\(log.suffix(6000))")
        XCTAssertNotNil(
            log.range(
                of: #"claim: HTLC \#(lockID) proven open for this device at block \d+: 3000000 units up to block \d+"#,
                options: .regularExpression), log)
        XCTAssertNotNil(
            log.range(of: #"claim: claimed 3000000 units, nonce 0, final at height \d+"#, options: .regularExpression),
            log)
        XCTAssertTrue(log.contains("claim: RELEASED"), log)
        XCTAssertTrue(log.contains("claim: PASS"), log)

        // The chain agrees: the contract claimed with the board's secret, the device paid less its fee.
        let htlc = try Harness.json(try HTTPClient(baseURL: node4, timeoutSeconds: 10), "/v1/htlcs/\(lockID)")
        XCTAssertEqual(htlc["status"] as? String, "claimed", "\(htlc)")
        XCTAssertEqual(htlc["preimage"] as? String, secret, "\(htlc)")
        let fee = try XCTUnwrap(
            log.firstMatch(of: #/final at height \d+ after \d+ polls, fee (\d+)/#).map { UInt64($0.1)! })
        XCTAssertTrue(
            Harness.wait(10) { ((try? self.balance(node4, device)) ?? 0) == before + 3_000_000 - fee },
            "node 4 shows \((try? balance(node4, device)) ?? 0), not \(before) + 3 AMSC - fee \(fee)")

        // The device's work for the claim, counted by QEMU with every exchange and wait on the link left out:
        // at least the headers' certificates (each 3 of 4 Schnorr verifies, over a million instructions each).
        let counted = try String(
            contentsOfFile: Self.boards + "/build/qemu-mps2-an386/claim/count.txt", encoding: .utf8)
        let intervals = counted.matches(of: #/interval \d+: (\d+)/#).map { UInt64($0.1)! }
        XCTAssertGreaterThanOrEqual(intervals.count, 6, "head, contract, account, claim, proof: \(counted)")
        let work = intervals.reduce(0, +)
        XCTAssertGreaterThan(work, 3_000_000, counted)
        print("claim: \(work) instructions of device work over \(intervals.count) intervals (QEMU count)")

        // Power cycle: the same image finds the contract claimed and refuses before signing.
        let nonceBefore = try nonce(node4, device)
        let second = try boot(make, coapPort)
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.output.contains("firmware exit status 88"), second.output.suffix(4000).description)
        XCTAssertTrue(second.output.contains("claim: the chain's rule: htlcNotOpen"), second.output)
        XCTAssertFalse(second.output.contains("pay: submitted"), second.output)
        XCTAssertEqual(try nonce(node4, device), nonceBefore, "the refused claim sent a transaction")
        assertAgreement()
    }
}
