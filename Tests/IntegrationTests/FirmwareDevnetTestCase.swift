import AmarsClient
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// What the firmware tests share: a devnet of four `amarsd node` gateways with node 1 serving CoAP (the board's
/// gateway, through `amarsd bridge`), and the chain's answers the tests check the board's claims against.
class FirmwareDevnetTestCase: DevnetTestCase {
    /// `Boards/` of this checkout, for `make -C`.
    static let boards = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Boards").path

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A four-validator genesis with epochs of 5 blocks, and the keys of a device and of the recipient it pays
    /// (the board build embeds the device key as hex: a provisioned device holds its key in flash); returns both
    /// addresses.
    func makeChain(id: UInt32, name: String) throws -> (device: String, recipient: String) {
        let created = try Harness.amars([
            "genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--validators", "4",
            "--epoch-length", "5", "--chain-id", String(id), "--chain-name", name,
        ])
        XCTAssertEqual(created.status, 0, created.error)
        for name in ["device", "recipient"] {
            let made = try Harness.amars(["key", "new", "--unencrypted", "--out", path("keys/\(name).key")])
            XCTAssertEqual(made.status, 0, made.error)
        }
        return (try address(of: path("keys/device.key")), try address(of: path("keys/recipient.key")))
    }

    /// Four `amarsd node` processes on loopback (see ``MultiNodeTests``), node 1 with CoAP on `coapPort`; with
    /// `requestLog`, node 1 logs at debug level, which records every CoAP request with its query.
    func startDevnet(coapPort: Int, requestLog: Bool = false) throws {
        nodes = try MultiNodeTests.TestNode.devnet(
            dir: dir, genesis: path("genesis.json"), keys: path("keys"),
            consensus: " { blockInterval: 200, proposeTimeout: 800, prepareTimeout: 400, commitTimeout: 400 }"
        ) { i in i == 0 ? "coap: { host: 127.0.0.1, port: \(coapPort) }\n" : "" }
        if requestLog { nodes[0].arguments = ["--log-level", "debug"] }
        for n in nodes { try n.start() }
    }

    /// ``makeChain(id:name:)`` and ``startDevnet(coapPort:requestLog:)``, then waits for every node to reach
    /// height 5; returns the device's address and node 1's CoAP port.
    func startChainAndDevnet(id: UInt32, name: String) throws -> (device: String, coapPort: Int) {
        let (device, _) = try makeChain(id: id, name: name)
        let coapPort = Harness.freePort(type: Int32(SOCK_DGRAM.rawValue))
        try startDevnet(coapPort: coapPort)
        XCTAssertTrue(
            Harness.wait(60) { self.nodes.allSatisfy { ($0.head()?.height ?? 0) >= 5 } },
            "the devnet did not start: \(nodes.map { $0.head()?.height ?? 0 })")
        return (device, coapPort)
    }

    /// An account's nonce from a node's HTTP API (`/v1/accounts/{address}`).
    func nonce(_ node: String, _ address: String) throws -> UInt64 {
        let object = try Harness.json(try HTTPClient(baseURL: node, timeoutSeconds: 10), "/v1/accounts/\(address)")
        return try XCTUnwrap(UInt64("\(object["nonce"] ?? "")"), "\(object)")
    }

    /// Every height up to the lowest head has one hash on all four nodes.
    func assertAgreement(file: StaticString = #filePath, line: UInt = #line) {
        let top = nodes.map { $0.head()?.height ?? 0 }.min() ?? 0
        for h in stride(from: 1, through: top, by: 1) {
            let hashes = Set(nodes.compactMap { $0.block(h)?.hash })
            XCTAssertEqual(hashes.count, 1, "height \(h): \(hashes)", file: file, line: line)
        }
    }

    func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool { Harness.wait(seconds, condition) }

    func address(of keyFile: String) throws -> String {
        let r = try Harness.amars(["address", "--key", keyFile])
        guard r.status == 0 else { throw Harness.StartFailure(description: "amars address: \(r.error)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Balance in base units from the node's HTTP API (`/v1/accounts/{address}`).
    func balance(_ node: String, _ address: String) throws -> UInt64 {
        let object = try Harness.json(try HTTPClient(baseURL: node, timeoutSeconds: 10), "/v1/accounts/\(address)")
        guard let value = object["balance"], let units = UInt64("\(value)") else {
            throw Harness.StartFailure(description: "no balance for \(address): \(object)")
        }
        return units
    }

    /// The firmware run on the board's flash file (same image, no rebuild); `extra` adds make
    /// variables (SYNC_COUNT=1).
    func boot(_ make: [String], _ coapPort: Int, extra: [String] = []) throws -> Harness.Command {
        try Harness.run(
            "/usr/bin/env",
            ["make"] + make + [
                "sync", "SKIP_BUILD=1", "GATEWAY=coap://127.0.0.1:\(coapPort)",
                "SYNC_PORT=\(Harness.freePort(type: Int32(SOCK_STREAM.rawValue)))",
            ] + extra,
            timeout: 600)
    }

    func run(_ executable: String, _ arguments: [String], timeout: TimeInterval) throws -> Harness.Command {
        try Harness.run(executable, arguments, timeout: timeout)
    }
}
