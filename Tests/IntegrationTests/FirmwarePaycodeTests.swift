import AmarsClient
import AmarsCodec
import Chain
import DeviceCore
import Ledger
import PaymentCodes
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Payment-code receiving on the board, end to end with real processes: the payment-code firmware
/// (`FIRMWARE_APP=paycode`) for qemu-mps2-an386, a devnet of four `amarsd node` gateways, and two payers using the
/// `amars paycode` CLI through other gateways than the device's.
///
/// Alice and Carol each send one notification to the device's payment code, then pay it three times in all at
/// one-time addresses. The device derives its code itself (it must be the one `amars paycode show` prints for its
/// key), proves and unmasks both notifications, tests each finished epoch's committed filter, proves the three
/// one-time accounts, and pays the provisioned recipient from the richest, proving that payment final. Its own
/// address is never paid and never pays: nothing on chain links the payments to it.
///
/// Then it is power-cycled: the same flash file, the same image. Three more payments are made before it boots;
/// it resumes its saved cursors (no notification read again, no payer added again) and finds exactly the three
/// new payments at the next indices, none of the old ones.
final class FirmwarePaycodeTests: FirmwareDevnetTestCase {
    override var directoryPrefix: String { "amars-fwpaycode" }
    static let chainID: UInt32 = 4_079

    func testBoardIsPaidByPaymentCodeSpendsAndKeepsItsCountersAcrossAPowerCycle() throws {
        try Harness.requireBoardToolchain(for: "firmware payment-code test")
        let (device, recipient) = try makeChain(id: Self.chainID, name: "firmware-paycode")
        let shown = try Harness.amars(["paycode", "show", "--key", path("keys/device.key")])
        XCTAssertEqual(shown.status, 0, shown.error)
        let code = String(shown.output.split(separator: "\n").first ?? "")
        XCTAssertTrue(code.hasPrefix("amscpc1"), shown.output)
        let payAmount: UInt64 = 700_000
        let make = [
            "-C", Self.boards, "BOARD=qemu-mps2-an386",
            "FIRMWARE_APP=paycode", "GENESIS=\(path("genesis.json"))", "HOST_BUILD=\(Harness.binDirectory.path)",
            "DEVICE_KEY=\(path("keys/device.key"))", "PAY_TO=\(recipient)", "PAY_AMOUNT=\(payAmount)",
            "PAYCODE_EXPECT=3", "STORAGE_DIR=\(path("flash"))",
        ]
        let build = try Harness.run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }

        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        try startDevnet(coapPort: coapPort, requestLog: true)
        XCTAssertTrue(
            Harness.wait(60) { self.nodes.allSatisfy { ($0.head()?.height ?? 0) >= 10 } },
            "the devnet did not start: \(nodes.map { $0.head()?.height ?? 0 })")
        let node2 = ["--node", "http://127.0.0.1:\(nodes[1].port)"]
        let node3 = ["--node", "http://127.0.0.1:\(nodes[2].port)"]
        let node4 = "http://127.0.0.1:\(nodes[3].port)"
        let alice = path("keys/app-user-incentive.key")
        let carol = path("keys/strategic-partners.key")
        for (payer, node) in [(alice, node2), (carol, node3)] {
            let notified = try Harness.amars(["paycode", "notify", "--key", payer, "--to", code, "--wait"] + node)
            XCTAssertEqual(notified.status, 0, notified.output + notified.error)
        }
        var oneTime: [String] = try pay([(alice, "1.5", node2), (alice, "2", node2), (carol, "0.25", node3)], code)
        let recipientBefore = try balance(node4, recipient)

        let first = try boot(make, coapPort)
        let log = first.output
        print(log)
        XCTAssertEqual(first.status, 0, "payment-code firmware failed:\n\(log.suffix(6000))")
        XCTAssertTrue(log.contains("paycode: payment code \(code)"), "the device derived another code:\n\(log)")
        XCTAssertTrue(log.contains("paycode: no saved cursors"), log)
        XCTAssertEqual(log.matches(of: #/proven and unmasked: payer added/#).count, 2, log)
        let found = payments(in: log)
        XCTAssertEqual(
            found.map { "\($0.payer)/\($0.index)/\($0.units)" }.sorted(), ["0/0/1500000", "0/1/2000000", "1/0/250000"],
            log)
        XCTAssertEqual(Set(found.map(\.account)), Set(try oneTime.map { try hexAddress($0) }), log)
        XCTAssertTrue(log.contains("paycode: found 3 payment(s) from 2 payer(s), each proven"), log)
        XCTAssertNotNil(
            log.range(
                of: #"paycode: epoch \d+: filter of \d+ bytes checked against its committed hash, 0 match"#,
                options: .regularExpression), "no epoch without a match was tested:\n\(log)")
        XCTAssertTrue(
            log.contains("pay: from one-time account \(try hexAddress(oneTime[1]))"), "not the richest:\n\(log)")
        XCTAssertNotNil(
            log.range(
                of: #"pay: paid \#(payAmount) units from a one-time account, nonce 0, final at height \d+"#,
                options: .regularExpression), log)
        XCTAssertTrue(log.contains("paycode: PASS"), log)
        XCTAssertTrue(
            Harness.wait(10) { ((try? self.balance(node4, recipient)) ?? 0) == recipientBefore + payAmount },
            "node 4 does not show the device's payment")
        XCTAssertEqual(try balance(node4, device), 0, "the device's own address was paid or paid")
        let spent = try balance(node4, oneTime[1])
        XCTAssertLessThan(spent, 2_000_000 - payAmount, "no fee was charged")

        // Power cycle, after three more payments at the next indices.
        oneTime = try pay([(alice, "0.5", node2), (carol, "0.75", node3), (alice, "1", node2)], code)
        let second = try boot(make, coapPort)
        let again = second.output
        print(again)
        XCTAssertEqual(second.status, 0, "second boot failed:\n\(again.suffix(6000))")
        XCTAssertNotNil(
            again.range(
                of: #"paycode: resumed 2 payers, next notification 2, next epoch \d+, next index 2, next index 1"#,
                options: .regularExpression), again)
        XCTAssertFalse(again.contains("payer added"), "a notification was read again:\n\(again)")
        let more = payments(in: again)
        XCTAssertEqual(
            more.map { "\($0.payer)/\($0.index)/\($0.units)" }.sorted(), ["0/2/500000", "0/3/1000000", "1/1/750000"],
            again)
        XCTAssertEqual(Set(more.map(\.account)), Set(try oneTime.map { try hexAddress($0) }), again)
        XCTAssertTrue(again.contains("paycode: PASS"), again)
        XCTAssertTrue(
            Harness.wait(10) { ((try? self.balance(node4, recipient)) ?? 0) == recipientBefore + 2 * payAmount },
            "node 4 does not show the second payment")
        XCTAssertEqual(try balance(node4, device), 0)
        assertAgreement()

        // The gateway learnt only the one-time accounts that were paid: in every epoch the board tested a window
        // of each payer's next addresses against the filter itself, and asked for none of the unpaid ones.
        let asked = Set(
            try String(contentsOf: nodes[0].log, encoding: .utf8).split(separator: "\n").compactMap { line in
                line.firstMatch(of: #/CoAP request v1/proof/account\?a=([0-9a-f]{40})/#).map { String($0.1) }
            })
        let receiver = try PaymentCode(text: code)
        for (payer, paid) in [(alice, 4), (carol, 2)] {
            let keys = try PaymentCodeKeys(seed: try KeyFile.load(payer).secret.bytes)
            for index in UInt32(0)..<UInt32(paid) + PaymentCodeReceiver.window {
                let oneTime = Hex.encode(
                    try OneTimeKey.address(payer: keys, receiver: receiver, index: index).raw.bytes)
                XCTAssertEqual(asked.contains(oneTime), index < UInt32(paid), "index \(index) of \(payer): \(asked)")
            }
        }
    }

    /// Each payment sent and final; returns the one-time addresses paid, in order.
    func pay(_ payments: [(String, String, [String])], _ code: String) throws -> [String] {
        var addresses: [String] = []
        for (payer, amount, node) in payments {
            let paid = try Harness.amars(
                ["paycode", "pay", "--key", payer, "--to", code, "--amount", amount, "--wait"] + node)
            XCTAssertEqual(paid.status, 0, paid.output + paid.error)
            guard let match = paid.output.firstMatch(of: #/one-time address (amsc1[0-9a-z]+) \(index (\d+)\)/#) else {
                throw Harness.StartFailure(description: "no one-time address: \(paid.output)")
            }
            addresses.append(String(match.1))
        }
        return addresses
    }

    struct Found {
        let units: UInt64
        let account: String
        let payer: Int
        let index: Int
    }

    /// The payments the device reported.
    func payments(in log: String) -> [Found] {
        log.matches(
            of:
                #/paycode: paid (\d+) units at one-time account ([0-9a-f]{40}) \(payer (\d+), index (\d+), epoch \d+\), balance proven/#
        )
        .map { Found(units: UInt64($0.1)!, account: String($0.2), payer: Int($0.3)!, index: Int($0.4)!) }
    }

    /// An amsc1 address as the 40 hex digits the board prints.
    func hexAddress(_ bech32: String) throws -> String { Hex.encode(try Address(bech32: bech32).raw.bytes) }
}
