import AmarsCodec
import AmarsCrypto
@testable import DeviceGateway
import Foundation
import Ledger
import XCTest

/// The broker's deny list as files: it round-trips, writes the `topic deny #` the ACL needs for each account and
/// nothing else, keeps no line of a damaged file that is not an address (so the file cannot add ACL rules), and
/// signals only a process named mosquitto.
final class BrokerDenyListTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-denylist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func account(_ n: UInt8) -> Address {
        Address(publicKey: try! PrivateKey(bytes: Bytes32([UInt8](repeating: n, count: 32))!).xOnlyPublicKey)
    }

    func testWritesTheListAndTheACLAndOnlyWhenTheyChange() throws {
        let list = BrokerDenyList(directory: dir)
        XCTAssertEqual(list.accounts(), [])
        XCTAssertEqual(
            try list.write([account(1), account(2)]), .init(changed: true, signalled: false),
            "no broker runs: nothing was signalled")
        XCTAssertEqual(list.accounts(), [account(1), account(2)])
        let acl = try String(contentsOfFile: list.aclPath, encoding: .utf8)
        for a in [account(1), account(2)] { XCTAssertTrue(acl.contains("user \(a.bech32)\ntopic deny #\n"), acl) }
        XCTAssertEqual(acl.components(separatedBy: "topic deny").count - 1, 2, acl)
        XCTAssertTrue(acl.hasPrefix(BrokerProcess.deviceAccessControl()), acl)
        // The same list again writes nothing.
        let written = try FileManager.default.attributesOfItem(atPath: list.aclPath)[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 0.02)
        XCTAssertEqual(try list.write([account(1), account(2)]), .init(changed: false, signalled: false))
        XCTAssertEqual(
            try FileManager.default.attributesOfItem(atPath: list.aclPath)[.modificationDate] as? Date, written)
        // A gateway that stopped between its two writes left the list new and the ACL old (or none): the next look
        // finds the ACL behind the list and writes it.
        try FileManager.default.removeItem(atPath: list.aclPath)
        XCTAssertEqual(try list.write([account(1), account(2)]), .init(changed: true, signalled: false))
        XCTAssertEqual(try String(contentsOfFile: list.aclPath, encoding: .utf8), acl)
        try BrokerProcess.deviceAccessControl(denying: [account(1)]).write(
            toFile: list.aclPath, atomically: true, encoding: .utf8)
        XCTAssertEqual(try list.write([account(1), account(2)]), .init(changed: true, signalled: false))
        XCTAssertEqual(try String(contentsOfFile: list.aclPath, encoding: .utf8), acl)
        try list.write([])
        XCTAssertEqual(try String(contentsOfFile: list.aclPath, encoding: .utf8), BrokerProcess.deviceAccessControl())
    }

    func testADamagedListCannotAddRules() throws {
        let list = BrokerDenyList(directory: dir)
        let hostile =
            "\(account(3).bech32)\nuser \(account(4).bech32)\ntopic readwrite #\n\u{0}garbage\n\(account(5).bech32)"
        try hostile.write(toFile: list.path, atomically: true, encoding: .utf8)
        XCTAssertEqual(list.accounts(), [account(3), account(5)])
        let acl = BrokerProcess.deviceAccessControl(denying: list.accounts())
        XCTAssertFalse(acl.contains("readwrite"), acl)
        XCTAssertFalse(acl.contains(account(4).bech32), acl)
    }

    /// A stale pid file naming another program: the list is written, and that program is not signalled (SIGHUP
    /// would have killed it).
    func testAStalePidFileSignalsNobodyElse() throws {
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        let list = BrokerDenyList(directory: dir)
        try "\(sleeper.processIdentifier)\n".write(toFile: list.pidPath, atomically: true, encoding: .utf8)
        XCTAssertEqual(try list.write([account(6)]), .init(changed: true, signalled: false))
        XCTAssertEqual(list.accounts(), [account(6)])
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertTrue(sleeper.isRunning)
        XCTAssertFalse(BrokerDenyList.catchesHangup(pid: sleeper.processIdentifier))
    }
}
