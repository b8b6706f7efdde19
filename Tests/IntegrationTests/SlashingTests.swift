import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger
import XCTest

/// A double-signing member is slashed without anyone's help: four `amarsd node` processes on loopback, the fourth
/// started with AMARSD_TEST_EQUIVOCATE=1 so it signs a second prepare vote for another block after each of its
/// own. The other gateways see the conflicting votes, submit evidence transactions from their operator accounts,
/// and the chain ejects the offender and pays half its self-stake to the first reporter; the three honest members
/// go on finalizing and agree.
final class SlashingTests: DevnetTestCase {
    override var directoryPrefix: String { "amars-slash" }

    static let chainID: UInt32 = 4_079

    func heights() -> [UInt64] { nodes.prefix(3).map { $0.head()?.height ?? 0 } }

    func candidate(_ owner: String) -> [String: Any]? { try? Harness.json(nodes[0].client, "/v1/candidates/\(owner)") }

    func balance(_ address: String) -> UInt64 {
        UInt64("\((try? Harness.json(nodes[0].client, "/v1/accounts/\(address)"))?["balance"] ?? "")") ?? 0
    }

    func testADoubleSignerIsReportedByTheGatewaysAndSlashed() throws {
        let genesisPath = dir.appendingPathComponent("genesis.json").path
        let keys = dir.appendingPathComponent("keys").path
        let made = try Harness.amars([
            "genesis", "new", "--out", genesisPath, "--keys", keys, "--validators", "4", "--epoch-length", "10",
            "--chain-id", String(Self.chainID), "--chain-name", "slashing",
        ])
        XCTAssertEqual(made.status, 0, made.error)
        let validatorKeys = try (1...4).map { try KeyFile.load("\(keys)/validator-\($0).key") }
        let owners = validatorKeys.map { Address(publicKey: $0.xOnlyPublicKey).bech32 }
        nodes = try MultiNodeTests.TestNode.devnet(
            dir: dir, genesis: genesisPath, keys: keys,
            consensus: " { blockInterval: 200, proposeTimeout: 800, prepareTimeout: 400, commitTimeout: 400 }")
        nodes[3].environment = ["AMARSD_TEST_EQUIVOCATE": "1"]
        for n in nodes { try n.start() }
        let before = owners.prefix(3).map { balance($0) }
        XCTAssertEqual(candidate(owners[3])?["ejected"] as? Bool, false)

        // The honest gateways report it; the next block ejects the offender.
        XCTAssertTrue(
            Harness.wait(40) { self.candidate(owners[3])?["ejected"] as? Bool == true },
            "validator-4 was not ejected: \(candidate(owners[3]) ?? [:])\n"
                + ((try? String(contentsOf: nodes[0].log, encoding: .utf8)) ?? ""))
        let log = (0..<3).map { (try? String(contentsOf: nodes[$0].log, encoding: .utf8)) ?? "" }.joined()
        XCTAssertTrue(log.contains("double sign reported"), log)
        // Half the offender's self-stake went to a reporter: one of the three honest operators is richer by it.
        let after = owners.prefix(3).map { balance($0) }
        let reward = 1_000_000_000 * Amount.unitsPerAMSC / 2
        XCTAssertTrue(
            zip(before, after).contains { $1 > $0 + reward - 1_000 * Amount.unitsPerAMSC },
            "no reporter was paid: \(before) → \(after)")
        XCTAssertFalse(candidate(owners[0])?["ejected"] as? Bool ?? true, "an honest member was ejected")

        // The three honest members go on finalizing and agree.
        let at = heights().max() ?? 0
        XCTAssertTrue(Harness.wait(30) { self.heights().allSatisfy { $0 >= at + 12 } }, "stalled: \(heights())")
        let top = heights().min() ?? 0
        for h in 1...top {
            let hashes = nodes.prefix(3).map { $0.block(h)?.hash ?? "missing" }
            XCTAssertEqual(Set(hashes).count, 1, "height \(h): \(hashes)")
        }
    }

    /// `amars evidence submit` for anyone holding two conflicting votes: checked before sending, then final.
    func testEvidenceFromTheCLIEjectsTheMemberAndBadEvidenceIsRefusedBeforeSending() throws {
        let keys = dir.appendingPathComponent("keys").path
        let made = try Harness.amars([
            "genesis", "new", "--out", dir.appendingPathComponent("genesis.json").path, "--keys", keys,
        ])
        XCTAssertEqual(made.status, 0, made.error)
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        defer { daemon.stop() }
        let validator = try KeyFile.load("\(keys)/validator.key")
        let genesis = try Genesis.load(path: dir.appendingPathComponent("genesis.json").path)
        func vote(_ block: UInt8, height: UInt64 = 1) -> String {
            let hash = Bytes32(w0: UInt64(block), w1: 0, w2: 0, w3: 0)
            let message = Vote.signingHash(
                chainID: genesis.chainID, genesis: genesis.header.hash, height: height, round: 0, step: .prepare,
                blockHash: hash, voter: validator.xOnlyPublicKey.bytes)
            return Hex.encode(
                Vote(
                    chainID: genesis.chainID, height: height, round: 0, step: .prepare, blockHash: hash,
                    voter: validator.xOnlyPublicKey.bytes, signature: validator.signSchnorr(message, auxRandom: .zero)
                ).encoded)
        }
        let reporter = ["--key", "\(keys)/app-user-incentive.key", "--node", daemon.url]
        for (first, second, needle) in [
            (vote(1), vote(1), "not a double sign"),
            (vote(1), vote(2, height: 2), "not a double sign"),
            (vote(1), "zz", "--second is not a hex-encoded vote"),
        ] {
            let r = try Harness.amars(["evidence", "submit", "--first", first, "--second", second] + reporter)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.error.contains(needle), "\(needle) not in \(r.error)")
        }
        let sent = try Harness.amars(
            ["evidence", "submit", "--first", vote(1), "--second", vote(2), "--wait"] + reporter)
        XCTAssertEqual(sent.status, 0, sent.error)
        XCTAssertTrue(sent.output.contains("final in block"), sent.output)
        let owner = Address(publicKey: validator.xOnlyPublicKey).bech32
        let client = try HTTPClient(baseURL: daemon.url)
        XCTAssertEqual(try Harness.json(client, "/v1/candidates/\(owner)")["ejected"] as? Bool, true)
    }
}
