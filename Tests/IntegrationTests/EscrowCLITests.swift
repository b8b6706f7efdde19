import AmarsClient
import AmarsCodec
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// A rental with the real binaries: the renter opens an escrow for a lock with `amars escrow open`, the lock's
/// view (`amars device escrow`, over CoAP, trusting only the genesis file) says it opens, the owner submits the
/// lock's signed close with damages, the balances and the supply agree, and the lock's view then says it stays
/// locked. Mistakes are refused before anything is sent.
final class EscrowCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-escrow" }

    func address(_ key: String) throws -> String {
        try ok(["address", "--key", key]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func balance(_ client: HTTPClient, _ address: String) throws -> UInt64 {
        let o = try Harness.json(client, "/v1/accounts/\(address)")
        return UInt64("\(o["balance"] ?? "")") ?? 0
    }

    func testRentAndReturnThroughTheCLIAndTheLocksOwnCheck() throws {
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys")])
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100, coapPort: coapPort)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let device = ["--coap", "coap://127.0.0.1:\(coapPort)", "--genesis", path("genesis.json")]
        let client = try HTTPClient(baseURL: daemon.url)
        let renterKey = path("keys/app-user-incentive.key")
        let ownerKey = path("keys/strategic-partners.key")
        let lockKey = path("keys/lock.key")
        try ok(["key", "new", "--out", lockKey])
        let renter = try address(renterKey)
        let owner = try address(ownerKey)
        let lock = try address(lockKey)

        // Refused before sending: renter as owner, nothing held.
        try refused(
            ["escrow", "open", "--key", renterKey, "--device", lock, "--owner", renter, "--deposit", "1", "--fee", "1"]
                + node, "cannot be the escrow's device or owner")
        try refused(
            ["escrow", "open", "--key", renterKey, "--device", lock, "--owner", owner, "--deposit", "0", "--fee", "0"]
                + node, "must hold a deposit or a fee")

        let renterBefore = try balance(client, renter)
        let ownerBefore = try balance(client, owner)
        let opened = try ok(
            [
                "escrow", "open", "--key", renterKey, "--device", lock, "--owner", owner, "--deposit", "5", "--fee",
                "0.5", "--wait",
            ] + node)
        XCTAssertTrue(opened.contains("final in block"), opened)
        guard let match = opened.firstMatch(of: #/escrow id\s+([0-9a-f]{64})/#) else {
            return XCTFail("no escrow id: \(opened)")
        }
        let id = String(match.1)
        let shown = try ok(["escrow", "show", id] + node)
        XCTAssertTrue(shown.contains("status      open"), shown)
        XCTAssertTrue(shown.contains("proof       checked"), shown)
        let supply = try Harness.json(client, "/v1/supply")
        XCTAssertEqual("\(supply["escrowed"] ?? "")", "5500000")
        XCTAssertEqual(supply["conserved"] as? Bool, true)

        // The lock's own check, over CoAP from the genesis file: open and naming it.
        let opens = try ok(["device", "escrow", id, "--device", lock] + device)
        XCTAssertTrue(opens.contains("lock        OPENS"), opens)
        let other = try Harness.amars(["device", "escrow", id, "--device", renter] + device)
        XCTAssertEqual(other.status, 3, "an escrow for another device must not open this one: \(other.output)")

        // The return: the owner submits the lock's signed close with 1 AMSC of damages.
        try refused(
            ["escrow", "close", "--key", ownerKey, "--escrow", id, "--device-key", renterKey] + node,
            "is not the key of the escrow's device")
        try refused(
            ["escrow", "close", "--key", ownerKey, "--escrow", id, "--device-key", lockKey, "--damages", "6"] + node,
            "cannot exceed the deposit")
        try refused(
            ["escrow", "close", "--key", ownerKey, "--escrow", id, "--kept"] + node, "until then only the device")
        try refused(
            ["escrow", "close", "--key", renterKey, "--escrow", id, "--kept"] + node, "only the owner")
        let closed = try ok(
            ["escrow", "close", "--key", ownerKey, "--escrow", id, "--device-key", lockKey, "--damages", "1", "--wait"]
                + node)
        XCTAssertTrue(closed.contains("escrow      closed"), closed)
        try refused(
            ["escrow", "close", "--key", ownerKey, "--escrow", id, "--device-key", lockKey] + node, "already closed")

        func fee(_ text: String) -> UInt64 {
            guard let m = text.firstMatch(of: #/fee (\d+) units/#) else { return 0 }
            return UInt64(m.1) ?? 0
        }
        XCTAssertEqual(try balance(client, renter), renterBefore - 5_500_000 - fee(opened) + 4_000_000)
        XCTAssertEqual(try balance(client, owner), ownerBefore + 1_500_000 - fee(closed))
        let after = try Harness.json(client, "/v1/supply")
        XCTAssertEqual("\(after["escrowed"] ?? "")", "0")
        XCTAssertEqual(after["conserved"] as? Bool, true)
        let locked = try Harness.amars(["device", "escrow", id, "--device", lock] + device)
        XCTAssertEqual(locked.status, 3, locked.output)
        XCTAssertTrue(locked.output.contains("escrow      closed"), locked.output)
        XCTAssertTrue(locked.output.contains("lock        stays locked"), locked.output)
        let missing = try client.get("/v1/escrows/" + String(repeating: "0", count: 64))
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(try client.get("/v1/escrows/xyz").status, 400)
    }
}
