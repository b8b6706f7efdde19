import AmarsClient
import Foundation
import XCTest

/// Staking with the real binaries: register a candidate, stake for it, list, committee, checkpoints; and every
/// rule broken answered with a non-zero exit, the rule's name, and no change on the chain.
final class StakingCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-stk" }

    func testRegisterStakeListCommitteeCheckpointsAndRefusals() throws {
        // Epochs of 10 blocks at 100 ms: an election every second.
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys"), "--epoch-length", "10"])
        let daemon = try Harness.startDaemon(data: dir, blockInterval: 100)
        defer { daemon.stop() }
        let node = ["--node", daemon.url]
        let client = try HTTPClient(baseURL: daemon.url)
        let owner = path("keys/strategic-partners.key")
        let funder = path("keys/app-user-incentive.key")
        let validator = path("keys/validator.key")
        let operatorKey = path("keys/operator.key")
        try ok(["key", "new", "--out", operatorKey])

        // The devnet genesis has one candidate: the validator, self-staked from the reserve fund (bucket 1).
        XCTAssertTrue(try ok(["candidate", "list"] + node).contains("validator-1"))
        let registered = try ok(
            [
                "candidate", "register", "--key", owner, "--name", "my-node", "--operator-key-file", operatorKey,
                "--self-stake", "10000", "--duration", "300", "--reward-share", "12.5", "--wait",
            ] + node)
        XCTAssertTrue(registered.contains("final in block"), registered)
        XCTAssertTrue(registered.contains("self-stake bucket 2"), registered)
        let ownerAddress = try ok(["address", "--key", owner]).trimmingCharacters(in: .whitespacesAndNewlines)

        try ok(["key", "new", "--out", path("keys/alice.key")])
        let alice = try ok(["address", "--key", path("keys/alice.key")]).trimmingCharacters(in: .whitespacesAndNewlines)
        try ok(["transfer", "--key", funder, "--to", alice, "--amount", "1000", "--wait"] + node)
        let staked = try ok(
            [
                "stake", "--key", path("keys/alice.key"), "--candidate", "my-node", "--amount", "100", "--duration",
                "200",
                "--wait",
            ] + node)
        XCTAssertTrue(staked.contains("bucket 3: 100 AMSC"), staked)

        let buckets = try ok(["buckets", alice] + node)
        XCTAssertTrue(buckets.contains(ownerAddress), buckets)
        XCTAssertTrue(buckets.contains("locked until epoch"), buckets)
        XCTAssertTrue(try ok(["buckets", ownerAddress] + node).contains("10000"))

        // The mid-epoch election puts the candidate into the next epoch's pool.
        var list = ""
        let deadline = Date().addingTimeInterval(15)
        repeat {
            list = try ok(["candidate", "list"] + node)
            if list.split(separator: "\n").contains(where: { $0.hasPrefix("my-node") && $0.contains("in pool") }) {
                break
            }
            Thread.sleep(forTimeInterval: 0.3)
        } while Date() < deadline
        XCTAssertTrue(list.contains("my-node"), list)
        XCTAssertTrue(list.contains("12.5%"), list)
        XCTAssertTrue(
            list.split(separator: "\n").contains { $0.hasPrefix("my-node") && $0.contains("in pool") }, list)
        XCTAssertTrue(list.contains("minimum self-stake 10000 AMSC"), list)

        let committee = try ok(["committee"] + node)
        XCTAssertTrue(committee.contains("drawn by VRF from the delegate pool"), committee)
        let epoch0 = try ok(["committee", "--epoch", "0"] + node)
        XCTAssertTrue(epoch0.contains("committee of epoch 0: 1 member(s)"), epoch0)
        XCTAssertTrue(epoch0.contains("genesis validators"), epoch0)
        let untilHeight20 = Date().addingTimeInterval(15)
        while (try Harness.json(client, "/v1/head")["height"] as? Int ?? 0) < 20, Date() < untilHeight20 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let checkpoints = try ok(["checkpoints"] + node)
        XCTAssertTrue(checkpoints.contains("epoch 0  height 10"), checkpoints)
        XCTAssertTrue(checkpoints.contains("epoch 1  height 20"), checkpoints)
        XCTAssertTrue(try ok(["checkpoints", "--from", "100000"] + node).contains("no checkpoint from epoch 100000"))

        // Refusals: non-zero exit, the rule, and nothing changed.
        let aliceKey = path("keys/alice.key")
        let refusals: [([String], String)] = [
            (
                [
                    "candidate", "register", "--key", funder, "--name", "cheap", "--operator-key-file", validator,
                    "--self-stake", "9999.999999", "--duration", "1", "--reward-share", "5",
                ],
                "selfStakeTooLow"
            ),
            (
                [
                    "candidate", "register", "--key", funder, "--name", "my-node", "--operator-key-file", validator,
                    "--self-stake", "10000", "--duration", "1", "--reward-share", "5",
                ],
                "nameTaken"
            ),
            (
                [
                    "candidate", "register", "--key", funder, "--name", "Bad_Name", "--operator-key-file", validator,
                    "--self-stake", "10000", "--duration", "1", "--reward-share", "5",
                ],
                "--name must be"
            ),
            (
                [
                    "candidate", "register", "--key", funder, "--name", "x", "--operator-key", "00",
                    "--self-stake", "10000", "--duration", "1", "--reward-share", "5",
                ],
                "--operator-key must be"
            ),
            (
                [
                    "candidate", "register", "--key", funder, "--name", "x", "--operator-key-file", validator,
                    "--self-stake", "10000", "--duration", "1", "--reward-share", "101",
                ],
                "cannot exceed 100"
            ),
            (
                ["stake", "--key", aliceKey, "--candidate", alice, "--amount", "1", "--duration", "1"],
                "notACandidate"
            ),
            (
                ["stake", "--key", aliceKey, "--candidate", "nobody", "--amount", "1", "--duration", "1"],
                "no candidate is named"
            ),
            (
                ["stake", "--key", aliceKey, "--candidate", "my-node", "--amount", "1", "--duration", "99999"],
                "durationTooLong"
            ),
            (["unstake", "--key", aliceKey, "--bucket", "1"], "notBucketOwner"),
            (["restake", "--key", aliceKey, "--bucket", "1", "--duration", "40"], "notBucketOwner"),
            (["withdraw", "--key", aliceKey, "--bucket", "99"], "unknownBucket"),
            (["withdraw", "--key", aliceKey, "--bucket", "3"], "notUnstaked"),
            (["unstake", "--key", aliceKey, "--bucket", "3"], "stillLocked"),
            (["unstake", "--key", owner, "--bucket", "2"], "stillLocked"),
            (["restake", "--key", aliceKey, "--bucket", "3", "--duration", "1"], "durationShortened"),
            (["unstake", "--key", aliceKey, "--bucket", "abc"], "whole number"),
            (["candidate", "update", "--key", aliceKey, "--reward-share", "5"], "notACandidate"),
            (["candidate", "update", "--key", owner], "nothing to update"),
            (["buckets", "amsc1bad"], "not an amsc address"),
            (["committee", "--epoch", "100000"], "notFound"),
            // Sent anyway: the block builder drops it, and --wait says so with the rule.
            (["unstake", "--key", aliceKey, "--bucket", "1", "--skip-check", "--wait"], "not included"),
        ]
        for (args, expected) in refusals {
            let beforeAlice = try Harness.json(client, "/v1/accounts/\(alice)")
            let beforeCandidates = try Harness.json(client, "/v1/candidates")["candidates"] as? [[String: Any]]
            let r = try Harness.amars(args + node)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.error.contains(expected), "\(args.joined(separator: " ")): \(r.error)")
            let afterAlice = try Harness.json(client, "/v1/accounts/\(alice)")
            XCTAssertEqual(
                beforeAlice["balance"] as? String, afterAlice["balance"] as? String, args.joined(separator: " "))
            XCTAssertEqual(beforeAlice["nonce"] as? Int, afterAlice["nonce"] as? Int)
            XCTAssertEqual(afterAlice["pending"] as? Int, 0)
            let afterCandidates = try Harness.json(client, "/v1/candidates")["candidates"] as? [[String: Any]]
            XCTAssertEqual(
                beforeCandidates?.map { $0["encoded"] as? String }, afterCandidates?.map { $0["encoded"] as? String })
        }
        let dropped = try Harness.amars(
            ["unstake", "--key", aliceKey, "--bucket", "1", "--skip-check", "--wait"] + node)
        XCTAssertTrue(dropped.error.contains("notBucketOwner"), dropped.error)
        XCTAssertTrue(dropped.error.contains("amars buckets"), dropped.error)

        // Update works for the owner and shows in the list.
        let updated = try ok(["candidate", "update", "--key", owner, "--reward-share", "20", "--wait"] + node)
        XCTAssertTrue(updated.contains("voters' share 20%"), updated)
        let help = try Harness.amars(["candidate", "register", "--help"])
        XCTAssertTrue(help.output.contains("--operator-key-file"), help.output)
        XCTAssertFalse(help.output.contains("skip-check"), "the test-only flag stays hidden")
    }
}
