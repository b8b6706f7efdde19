import AmarsCodec
import AmarsCrypto
import Chain
import DeviceProtocol
import Foundation
import Ledger
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The QEMU board whose trust has expired, against a stand-in gateway (``ForgedGateway``): provisioned with its
/// operator's key (`REANCHOR_KEY`), it refuses to follow the chain while the gateway has no re-anchor statement or
/// one signed by another key (exit status 84), and with its operator's statement it trusts the checkpoint the
/// statement names and verifies a head against it.
///
/// The genesis is dated years ago with 150 s of unbonding (100 s of trust), so any board that anchors at it is
/// already expired.
final class FirmwareReanchorTests: XCTestCase {
    static let trustExpired: Int32 = 84
    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0xF0_4F, w2: 0, w3: n)) }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-fwreanchor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    func testAnExpiredBoardFollowsOnlyItsOperatorsStatement() throws {
        try Harness.requireBoardToolchain(for: "firmware re-anchor test")
        let validators = (1...4).map { Self.key($0) }
        let members = validators.map { Committee.Member(key: $0.xOnlyPublicKey.bytes, weight: 1) }
        let owner = Address(publicKey: Self.key(100).xOnlyPublicKey)
        let written = Genesis(
            chainID: 4243, chainName: "firmware-reanchor", timestamp: 1_700_000_000_000, epochLength: 5,
            initialBaseFee: 10, validators: members,
            allocations: Genesis.Category.allCases.map { .init(category: $0, address: owner, amount: $0.amount) },
            burned: [:], staking: .init(unbondingEpochs: 31))
        let genesisFile = dir.appendingPathComponent("genesis.json")
        try written.jsonData().write(to: genesisFile)
        let genesis = try Genesis.load(path: genesisFile.path)
        XCTAssertEqual(genesis.trustingPeriodMillis, 100_000)
        let operatorKey = Self.key(60)
        let make = [
            "-C", Self.root.appendingPathComponent("Boards").path, "BOARD=qemu-mps2-an386",
            "GENESIS=\(genesisFile.path)", "HOST_BUILD=\(Harness.binDirectory.path)",
            "REANCHOR_KEY=\(Hex.encode(operatorKey.xOnlyPublicKey.bytes.bytes))",
            "STORAGE_DIR=\(dir.appendingPathComponent("flash").path)",
        ]
        let build = try Harness.run("/usr/bin/env", ["make"] + make + ["sync-firmware"], timeout: 1800)
        guard build.status == 0 else {
            return XCTFail("make -C Boards sync-firmware failed (\(build.status)):\n\(build.output.suffix(4000))")
        }

        let server = try ForgedGateway(trustedPool: genesis.committee(epoch: 0))
        defer { server.stop() }
        let genesisHeader = genesis.header
        server.set(
            headers: .content(
                HeaderPayload(
                    header: genesisHeader,
                    certificate: CommitCertificate(height: 0, round: 0, blockHash: genesisHeader.hash, signatures: [])
                )
                .encoded),
            checkpoints: .notFound)
        func boot(_ name: String) throws -> (status: Int32, log: String) {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("flash"))
            let run = try Harness.run(
                "/usr/bin/env",
                ["make"] + make + [
                    "sync", "SKIP_BUILD=1", "GATEWAY=coap://127.0.0.1:\(server.port)",
                    "SYNC_PORT=\(Harness.freePort(type: Int32(SOCK_STREAM.rawValue)))",
                ], timeout: 300)
            guard let range = run.output.range(of: #"firmware exit status \d+"#, options: .regularExpression),
                let status = Int32(run.output[range].split(separator: " ").last ?? "")
            else {
                XCTFail("\(name): no firmware exit status:\n\(run.output.suffix(4000))")
                return (-1, run.output)
            }
            return (status, run.output)
        }

        // A checkpoint of epoch 100, made now, naming the same four validators as the committee of epoch 101.
        let next = try Committee(epoch: 101, members: members)
        let header = BlockHeader(
            chainID: genesis.chainID, height: 101 * 5, previousHash: Domain.header.hash([4, 2, 4, 3]),
            timestamp: UInt64(Date().timeIntervalSince1970 * 1000), epoch: 100, round: 0,
            proposer: validators[0].xOnlyPublicKey.bytes, baseFee: 10, unitsUsed: 0, transactionsRoot: .zero,
            stateRoot: Domain.stateValue.hash([7]), receiptsRoot: .zero, nextCommitteeHash: next.hash)
        func statement(_ signer: PrivateKey) -> [UInt8] {
            ReanchorPayload(
                header: header, committee: next,
                signature: signer.signSchnorr(
                    ReanchorPayload.signingHash(header: header, genesis: genesisHeader.hash), auxRandom: .zero)
            ).encoded
        }

        // 1. No statement at the gateway: the expiry stands.
        let none = try boot("no statement")
        XCTAssertEqual(none.status, Self.trustExpired, none.log)
        XCTAssertTrue(none.log.contains("trust expired"), none.log)
        XCTAssertFalse(none.log.contains("sync: PASS"), none.log)

        // 2. A statement signed by another key: refused, same status.
        server.set("v1/reanchor", .blockwise(statement(Self.key(61))))
        let forged = try boot("forged statement")
        XCTAssertEqual(forged.status, Self.trustExpired, forged.log)
        XCTAssertTrue(forged.log.contains("re-anchor refused: not signed by the provisioned operator key"), forged.log)
        XCTAssertFalse(forged.log.contains("sync: PASS"), forged.log)

        // 3. The operator's: trust moves to epoch 101, and a head at that checkpoint verifies against it.
        server.set("v1/reanchor", .blockwise(statement(operatorKey)))
        server.set(
            "v1/head",
            .content(
                HeaderPayload(
                    header: header,
                    certificate: CommitCertificate(
                        height: header.height, round: 0, blockHash: header.hash, signatures: [])
                ).encoded))
        let good = try boot("operator's statement")
        XCTAssertEqual(good.status, 0, good.log)
        XCTAssertTrue(good.log.contains("re-anchored on the operator's statement at epoch 101"), good.log)
        XCTAssertTrue(good.log.contains("sync: head at height \(header.height) is the trusted checkpoint"), good.log)
        XCTAssertTrue(good.log.contains("storage: saved trusted epoch 101"), good.log)
    }
}
