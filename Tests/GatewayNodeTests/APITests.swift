@testable import AmarsClient
import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Chain
import Consensus
import Foundation
import GatewayNode
import Ledger
import Logging
import Network
import XCTest

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A one-validator chain served over real HTTP on loopback. Blocks are produced by calling
/// `node.produceBlock` directly, so every test is deterministic (no timer).
final class TestChain {
    let dir: URL
    let validator: PrivateKey
    let alice: PrivateKey
    let bob: PrivateKey
    let carol: PrivateKey
    let genesis: Genesis
    let node: ChainNode
    let server: HTTPServer
    let port: Int
    let baseURL: String
    let client: NodeClient
    let http: HTTPClient
    private var clock: UInt64

    static let chainID: UInt32 = 7
    /// Carol holds only this much, for the insufficient-balance cases.
    static let carolBalance: UInt64 = 5 * Amount.unitsPerAMSC

    static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: n)) }

    init(mempoolLimits: Mempool.Limits = .init()) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        validator = Self.key(1)
        alice = Self.key(2)
        bob = Self.key(3)
        carol = Self.key(4)
        var allocations: [Genesis.Allocation] = []
        for category in Genesis.Category.allCases {
            switch category {
            case .reserveFund:
                allocations.append(
                    .init(category: category, address: Self.address(alice), amount: category.amount - Self.carolBalance)
                )
                allocations.append(.init(category: category, address: Self.address(carol), amount: Self.carolBalance))
            case .strategicPartners:
                allocations.append(.init(category: category, address: Self.address(bob), amount: category.amount))
            default:
                allocations.append(.init(category: category, address: Self.address(alice), amount: category.amount))
            }
        }
        genesis = Genesis(
            chainID: Self.chainID, chainName: "api-test", timestamp: 1_700_000_000_000, epochLength: 100,
            initialBaseFee: 10, validators: [Committee.Member(key: validator.xOnlyPublicKey.bytes, weight: 1)],
            allocations: allocations, burned: [:])
        try genesis.validate()
        clock = genesis.timestamp
        let store = try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path)
        var logger = Logger(label: "api-test")
        logger.logLevel = .critical
        node = try ChainNode(
            genesis: genesis, store: store, validatorKey: validator, mempoolLimits: mempoolLimits, logger: logger)
        server = HTTPServer(router: APIRouter(node: node, logger: logger), host: "127.0.0.1", port: 0, logger: logger)
        port = try server.start()
        baseURL = "http://127.0.0.1:\(port)"
        http = try HTTPClient(baseURL: baseURL, timeoutSeconds: 10)
        client = NodeClient(http: http)
    }

    func close() {
        server.shutdown()
        try? FileManager.default.removeItem(at: dir)
    }

    static func address(_ key: PrivateKey) -> Address { Address(publicKey: key.xOnlyPublicKey) }

    func transfer(
        from key: PrivateKey, to: Address, amount: UInt64, nonce: UInt64, maxFee: UInt64 = 100, tip: UInt64 = 1,
        genesis otherGenesis: Bytes32? = nil
    ) -> SignedTransaction {
        let body = TransactionBody(
            genesis: otherGenesis ?? genesis.header.hash, sender: key.xOnlyPublicKey.bytes, nonce: nonce,
            maxFeePerUnit: maxFee, tipPerUnit: tip,
            payload: .transfer(Transfer(to: to, amount: amount)))
        return SignedTransaction(body: body, signer: key)
    }

    @discardableResult
    func produceBlock() throws -> FinalizedBlock {
        clock += 1000
        return try node.produceBlock(timestamp: clock)
    }

    struct Snapshot: Equatable {
        var height: UInt64
        var hash: Bytes32
        var pending: Int
        var accounts: Int
        var balances: [AccountState]
    }

    /// Everything a refused request must leave as it was.
    func snapshot() -> Snapshot {
        let head = node.head
        return Snapshot(
            height: head.height, hash: head.hash, pending: node.pendingCount, accounts: node.accountCount,
            balances: [alice, bob, carol, validator].map { node.account(Self.address($0)).state })
    }
}

final class APITests: XCTestCase {
    var chain: TestChain!

    override func setUpWithError() throws {
        chain = try TestChain()
    }

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    private func json(_ response: HTTPResponse, file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            XCTFail("not a JSON object: \(response.text)", file: file, line: line)
            return [:]
        }
        return object
    }

    private func errorCode(_ response: HTTPResponse) -> String? {
        (json(response)["error"] as? [String: Any])?["code"] as? String
    }

    // MARK: reads

    func testHeadSupplyMetricsAndExplorer() throws {
        let head = try chain.client.head()
        XCTAssertEqual(head.chainID, TestChain.chainID)
        XCTAssertEqual(head.chainName, "api-test")
        XCTAssertEqual(head.genesisHash, chain.node.genesisHash)
        XCTAssertEqual(head.height, 0)
        XCTAssertEqual(head.hash, chain.node.head.hash)
        XCTAssertEqual(head.stateRoot, chain.node.head.stateRoot)
        XCTAssertEqual(head.baseFee, 10)
        XCTAssertEqual(head.nextBaseFee, chain.node.nextBaseFee)
        XCTAssertEqual(head.pending, 0)
        XCTAssertEqual(head.accounts, 3)

        let supply = try chain.client.supply()
        XCTAssertEqual(supply.total, Amount.totalSupply)
        XCTAssertEqual(supply.burned, 0)
        XCTAssertEqual(supply.inAccounts, Amount.totalSupply)
        XCTAssertTrue(supply.conserved)
        let supplyJSON = json(try chain.http.get("/v1/supply"))
        XCTAssertEqual(supplyJSON["totalAMSC"] as? String, "500000000000")

        let page = try chain.http.get("/")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.headers["content-type"], "text/html; charset=utf-8")
        XCTAssertTrue(page.text.contains("/v1/head"))
        XCTAssertFalse(page.text.contains("http://"), "the explorer must not load external assets")

        let metrics = try chain.client.metrics()
        XCTAssertEqual(PrometheusSample.value("amars_head_height", in: metrics), 0, metrics)
        XCTAssertEqual(PrometheusSample.value("amars_mempool_transactions", in: metrics), 0, metrics)
        XCTAssertEqual(PrometheusSample.value("amars_accounts", in: metrics), 3, metrics)
        XCTAssertGreaterThanOrEqual(
            PrometheusSample.value("amars_http_requests_total{code=\"200\"}", in: metrics) ?? 0, 1, metrics)

        let genesisBlock = try chain.client.block(0)
        XCTAssertEqual(genesisBlock.hash, chain.node.head.hash)
        XCTAssertTrue(genesisBlock.transactions.isEmpty)

        // An absent account is a proof of absence, and still verifies.
        let nobody = TestChain.address(TestChain.key(99))
        let info = try chain.client.account(nobody)
        XCTAssertEqual(info.balance, 0)
        XCTAssertEqual(info.nextNonce, 0)
        XCTAssertTrue(info.verifyProof())
    }

    // MARK: the happy path

    func testTransferJSONAndBinaryIncludedWithReceiptsAndProofs() throws {
        let alice = TestChain.address(chain.alice)
        let bob = TestChain.address(chain.bob)
        let validator = TestChain.address(chain.validator)
        let aliceBefore = try chain.client.account(alice)
        let bobBefore = try chain.client.account(bob)
        XCTAssertEqual(aliceBefore.nextNonce, 0)
        XCTAssertTrue(aliceBefore.verifyProof())

        let tx1 = chain.transfer(from: chain.alice, to: bob, amount: 1_500_000, nonce: 0)
        let tx2 = chain.transfer(from: chain.alice, to: bob, amount: 2_000_000, nonce: 1)
        let id1 = try chain.client.submit(tx1, encoding: .json)
        let id2 = try chain.client.submit(tx2, encoding: .binary)
        XCTAssertEqual(id1, tx1.id)
        XCTAssertEqual(id2, tx2.id)
        XCTAssertEqual(try chain.client.transactionStatus(id1).state, .pending)
        XCTAssertEqual(try chain.client.head().pending, 2)
        let pendingView = try chain.client.account(alice)
        XCTAssertEqual(pendingView.nonce, 0)
        XCTAssertEqual(pendingView.pending, 2)
        XCTAssertEqual(pendingView.nextNonce, 2)

        // The same transaction again is refused as a duplicate, not accepted twice.
        XCTAssertThrowsError(try chain.client.submit(tx1)) {
            XCTAssertEqual(($0 as? NodeClientError)?.code, "alreadyKnown")
        }

        let supplyBefore = try chain.client.supply()
        let produced = try chain.produceBlock()
        XCTAssertEqual(produced.block.transactions.count, 2)

        let head = try chain.client.head()
        XCTAssertEqual(head.height, 1)
        XCTAssertEqual(head.pending, 0)
        XCTAssertEqual(head.hash, produced.block.hash)

        var fees: UInt64 = 0
        for (position, id) in [id1, id2].enumerated() {
            let status = try chain.client.transactionStatus(id)
            guard case .included(let height, let pos, let receipt) = status.state else {
                return XCTFail("\(id) not included")
            }
            XCTAssertEqual(height, 1)
            XCTAssertEqual(pos, position)
            XCTAssertEqual(receipt.transactionID, id)
            XCTAssertEqual(receipt.status, .success)
            XCTAssertGreaterThan(receipt.feePaid, 0)
            fees += receipt.feePaid
        }

        let aliceAfter = try chain.client.account(alice)
        let bobAfter = try chain.client.account(bob)
        let validatorAfter = try chain.client.account(validator)
        XCTAssertEqual(aliceAfter.balance, aliceBefore.balance - 3_500_000 - fees)
        XCTAssertEqual(aliceAfter.nonce, 2)
        XCTAssertEqual(aliceAfter.nextNonce, 2)
        XCTAssertEqual(bobAfter.balance, bobBefore.balance + 3_500_000)
        XCTAssertEqual(validatorAfter.balance, fees)

        // Proofs verify against the head's state root, with the chain's own key derivation.
        for info in [aliceAfter, bobAfter, validatorAfter] {
            XCTAssertEqual(info.stateRoot, head.stateRoot)
            XCTAssertEqual(info.height, 1)
            XCTAssertEqual(info.stateKey, StateNamespace.accountKey(info.address))
            XCTAssertTrue(
                info.proof.verify(
                    root: head.stateRoot, key: StateNamespace.accountKey(info.address), valueHash: info.state.valueHash)
            )
        }
        // A proof does not verify a balance it does not commit to.
        XCTAssertFalse(
            aliceAfter.proof.verify(
                root: head.stateRoot, key: StateNamespace.accountKey(alice),
                valueHash: AccountState(balance: aliceAfter.balance + 1, nonce: 2).valueHash))

        let supplyAfter = try chain.client.supply()
        XCTAssertEqual(supplyAfter, supplyBefore)
        XCTAssertTrue(supplyAfter.conserved)

        // The block as served: decodes, hashes to its hash, carries a valid certificate and both receipts.
        let block = try chain.client.block(1)
        XCTAssertEqual(block.finalized, produced)
        XCTAssertEqual(block.transactions.map(\.id), [id1, id2])
        XCTAssertEqual(block.receipts.map(\.transactionID), [id1, id2])
        XCTAssertNoThrow(
            try block.finalized.certificate.verify(
                committee: chain.genesis.committee(epoch: 0), chainID: TestChain.chainID,
                genesis: chain.node.genesisBlockHash, blockHash: block.hash))
        let raw = json(try chain.http.get("/v1/blocks/1"))
        let txs = raw["transactions"] as? [[String: Any]] ?? []
        XCTAssertEqual(txs.first?["kind"] as? String, "transfer")
        XCTAssertEqual(txs.first?["sender"] as? String, alice.bech32)
        XCTAssertEqual(txs.first?["to"] as? String, bob.bech32)
        XCTAssertEqual(txs.first?["amount"] as? String, "1500000")
        XCTAssertEqual((raw["header"] as? [String: Any])?["stateRoot"] as? String, Hex.encode(head.stateRoot.bytes))

        let list = try chain.client.blocks(limit: 10)
        XCTAssertEqual(list.map(\.height), [1, 0])
        XCTAssertEqual(list.first?.transactions, 2)
    }

    // MARK: refusals

    func testEveryBadRequestAnswersItsCodeAndChangesNothing() throws {
        let alice = TestChain.address(chain.alice)
        let bob = TestChain.address(chain.bob)
        // One committed transaction, so nonce 0 is a replay.
        try chain.client.submit(chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 0))
        try chain.produceBlock()
        let before = chain.snapshot()
        XCTAssertEqual(before.height, 1)
        XCTAssertEqual(before.pending, 0)
        let baseFee = chain.node.nextBaseFee
        XCTAssertGreaterThan(baseFee, 0)

        let good = chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 1)
        var badSignature = good
        badSignature.signature = Bytes64(Array(good.signature.bytes.dropLast()) + [good.signature.bytes.last! ^ 1])!
        var wrongKey = good.encoded
        // The sender field (after the version byte and the 32-byte genesis) set to x >= p: not a key at all.
        for i in 33..<65 { wrongKey[i] = 0xFF }

        struct Case {
            var name: String
            var method = "POST"
            var path = "/v1/tx"
            var body: [UInt8] = []
            var contentType: String? = "application/octet-stream"
            var status: Int
            var code: String
        }
        func jsonBody(_ s: String) -> [UInt8] { Array(s.utf8) }
        let octet = "application/octet-stream"
        let cases: [Case] = [
            Case(
                name: "non-JSON", body: jsonBody("this is not json"), contentType: "application/json", status: 400,
                code: "invalidJSON"),
            Case(
                name: "JSON array", body: jsonBody("[1,2,3]"), contentType: "application/json", status: 400,
                code: "wrongType"),
            Case(
                name: "tx is a number", body: jsonBody("{\"tx\":5}"), contentType: "application/json", status: 400,
                code: "wrongType"),
            Case(
                name: "missing tx", body: jsonBody("{\"transaction\":\"00\"}"), contentType: "application/json",
                status: 400, code: "missingField"),
            Case(
                name: "bad hex", body: jsonBody("{\"tx\":\"zz\"}"), contentType: "application/json", status: 400,
                code: "invalidHex"),
            Case(
                name: "odd hex", body: jsonBody("{\"tx\":\"abc\"}"), contentType: "application/json", status: 400,
                code: "invalidHex"),
            Case(
                name: "empty JSON tx", body: jsonBody("{\"tx\":\"\"}"), contentType: "application/json; charset=utf-8",
                status: 400, code: "malformed"),
            Case(name: "empty body", body: [], contentType: octet, status: 400, code: "malformed"),
            Case(
                name: "truncated", body: Array(good.encoded.dropLast(7)), contentType: octet, status: 400,
                code: "malformed"),
            Case(name: "trailing bytes", body: good.encoded + [0], contentType: octet, status: 400, code: "malformed"),
            Case(
                name: "bad signature", body: badSignature.encoded, contentType: octet, status: 400, code: "badSignature"
            ),
            Case(name: "sender not a key", body: wrongKey, contentType: octet, status: 400, code: "invalidSenderKey"),
            Case(
                name: "wrong chain",
                body: chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 1, genesis: .zero).encoded,
                contentType: octet, status: 400, code: "wrongChain"),
            Case(
                name: "replayed nonce", body: chain.transfer(from: chain.alice, to: bob, amount: 2, nonce: 0).encoded,
                contentType: octet, status: 400, code: "nonceReplayed"),
            Case(
                name: "gapped nonce", body: chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 5).encoded,
                contentType: octet, status: 400, code: "nonceGap"),
            Case(
                name: "fee cap overflows",
                body: chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 1, maxFee: .max, tip: 0).encoded,
                contentType: octet, status: 400, code: "amountOverflow"),
            Case(
                name: "amount overflows",
                body: chain.transfer(from: chain.alice, to: bob, amount: .max, nonce: 1).encoded,
                contentType: octet, status: 400, code: "amountOverflow"),
            Case(
                name: "insufficient balance",
                body: chain.transfer(from: chain.carol, to: bob, amount: TestChain.carolBalance, nonce: 0).encoded,
                contentType: octet, status: 400, code: "insufficientBalance"),
            Case(
                name: "fee under base fee",
                body: chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 1, maxFee: baseFee - 1, tip: 0)
                    .encoded,
                contentType: octet, status: 400, code: "feeBelowBaseFee"),
            Case(
                name: "text/plain", body: good.encoded, contentType: "text/plain", status: 415,
                code: "unsupportedMediaType"),
            Case(
                name: "no content type", body: good.encoded, contentType: nil, status: 415, code: "unsupportedMediaType"
            ),
            Case(
                name: "body over 64 KiB", body: [UInt8](repeating: 0x41, count: 64 * 1024 + 1), contentType: octet,
                status: 413, code: "bodyTooLarge"),
            Case(
                name: "JSON over 64 KiB", body: jsonBody("{\"tx\":\"" + String(repeating: "00", count: 40_000) + "\"}"),
                contentType: "application/json", status: 413, code: "bodyTooLarge"),
            Case(name: "unknown route", method: "GET", path: "/v1/nothing", status: 404, code: "notFound"),
            Case(name: "unknown deep route", method: "GET", path: "/v1/blocks/1/extra", status: 404, code: "notFound"),
            Case(name: "POST head", method: "POST", path: "/v1/head", status: 405, code: "methodNotAllowed"),
            Case(name: "GET submit", method: "GET", path: "/v1/tx", status: 405, code: "methodNotAllowed"),
            Case(name: "DELETE block", method: "DELETE", path: "/v1/blocks/1", status: 405, code: "methodNotAllowed"),
            Case(
                name: "bad address", method: "GET", path: "/v1/accounts/amsc1notanaddress", status: 400,
                code: "invalidAddress"),
            Case(
                name: "address of another chain", method: "GET",
                path: "/v1/accounts/bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", status: 400, code: "invalidAddress"),
            Case(name: "bad height", method: "GET", path: "/v1/blocks/abc", status: 400, code: "invalidHeight"),
            Case(name: "negative height", method: "GET", path: "/v1/blocks/-1", status: 400, code: "invalidHeight"),
            Case(
                name: "huge height", method: "GET", path: "/v1/blocks/99999999999999999999999", status: 400,
                code: "invalidHeight"),
            Case(name: "missing block", method: "GET", path: "/v1/blocks/999", status: 404, code: "notFound"),
            Case(name: "bad limit", method: "GET", path: "/v1/blocks?limit=zero", status: 400, code: "invalidQuery"),
            Case(name: "bad tx id", method: "GET", path: "/v1/tx/1234", status: 400, code: "invalidTransactionID"),
            Case(
                name: "unknown tx id", method: "GET", path: "/v1/tx/" + String(repeating: "ab", count: 32), status: 404,
                code: "notFound"),
        ]
        for c in cases {
            let response = try chain.http.request(
                method: c.method, path: c.path, body: c.body, contentType: c.contentType)
            XCTAssertEqual(response.status, c.status, "\(c.name): \(response.text)")
            XCTAssertEqual(errorCode(response), c.code, "\(c.name): \(response.text)")
            let message = (json(response)["error"] as? [String: Any])?["message"] as? String ?? ""
            XCTAssertFalse(message.isEmpty, "\(c.name) has no message")
            XCTAssertEqual(chain.snapshot(), before, "\(c.name) changed the chain")
        }

        // Messages carry the numbers a sender needs.
        do {
            try chain.client.submit(chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 5))
            XCTFail("gapped nonce accepted")
        } catch {
            XCTAssertEqual(error.code, "nonceGap")
            XCTAssertTrue(error.description.contains("nonce 5"), error.description)
            XCTAssertTrue(error.description.contains("next nonce is 1"), error.description)
        }
        do {
            try chain.client.submit(
                chain.transfer(from: chain.carol, to: alice, amount: TestChain.carolBalance, nonce: 0))
            XCTFail("overspend accepted")
        } catch {
            XCTAssertEqual(error.code, "insufficientBalance")
            XCTAssertTrue(error.description.contains("\(TestChain.carolBalance)"), error.description)
        }

        // After all that, a good transaction still goes through.
        XCTAssertEqual(try chain.client.submit(good), good.id)
        try chain.produceBlock()
        XCTAssertTrue(try chain.client.transactionStatus(good.id).isIncluded)
    }

    func testMempoolFullAnswers503() throws {
        let full = try TestChain(mempoolLimits: .init(maxTransactions: 1, maxPerSender: 64))
        defer { full.close() }
        let bob = TestChain.address(full.bob)
        try full.client.submit(full.transfer(from: full.alice, to: bob, amount: 1, nonce: 0, maxFee: 100))
        let before = full.snapshot()
        let refused = try full.http.post(
            "/v1/tx", body: full.transfer(from: full.carol, to: bob, amount: 1, nonce: 0, maxFee: 100).encoded,
            contentType: "application/octet-stream")
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(errorCode(refused), "mempoolFull")
        XCTAssertEqual(full.snapshot(), before)
    }

    // MARK: robustness

    func testRandomGarbageNeverCrashesTheServer() throws {
        let before = chain.snapshot()
        var rng = SplitMix64(seed: 0xA3A2_5C17)
        let good = chain.transfer(from: chain.alice, to: TestChain.address(chain.bob), amount: 42, nonce: 0).encoded
        let types = ["application/json", "application/octet-stream", "text/plain", "application/json; charset=utf-8"]
        for i in 0..<300 {
            var body: [UInt8]
            switch i % 4 {
            case 0:
                body = (0..<Int(rng.next() % 700)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:
                // A valid transaction with a few bytes changed: must fail decoding or the signature check.
                body = good
                for _ in 0..<(1 + Int(rng.next() % 3)) {
                    body[Int(rng.next() % UInt64(body.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            case 2:
                let length = Int(rng.next() % 300)
                let hex = (0..<length).map { _ in String(UInt8(truncatingIfNeeded: rng.next()), radix: 16) }.joined()
                body = Array("{\"tx\":\"\(hex)\"}".utf8)
            default:
                let pieces = [
                    "{", "}", "[", "]", "\"tx\"", ":", ",", "\"", "0", "null", "true", "\\u0000", "1e999", "-",
                ]
                body = Array(
                    (0..<Int(rng.next() % 40)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined().utf8
                )
            }
            let type = types[Int(rng.next() % UInt64(types.count))]
            let response = try chain.http.post("/v1/tx", body: body, contentType: type)
            XCTAssertTrue((400..<500).contains(response.status), "case \(i): \(response.status) \(response.text)")
            XCTAssertNotNil(errorCode(response), "case \(i)")
        }
        // Deep nesting must not exhaust the parser's stack.
        for opener in ["[", "{\"tx\":"] {
            let deep = Array(String(repeating: opener, count: 60_000 / opener.count).utf8)
            let response = try chain.http.post("/v1/tx", body: deep, contentType: "application/json")
            XCTAssertEqual(response.status, 400, response.text)
        }
        XCTAssertEqual(try chain.http.get("/v1/head").status, 200)
        XCTAssertEqual(chain.snapshot(), before)
    }

    func testMalformedHTTPGets400AndClose() throws {
        let answer = try RawSocket.exchange(port: chain.port, request: Array("THIS IS NOT HTTP\r\n\r\n".utf8))
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400"), answer)
        // The server still serves others.
        XCTAssertEqual(try chain.http.get("/v1/head").status, 200)
    }

    func testOversizedBodiesGet413WhateverTheFraming() throws {
        let before = chain.snapshot()
        // Declared too large: refused from the headers alone, before any body byte is read.
        let declared =
            "POST /v1/tx HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
            + "Content-Length: 10000000\r\n\r\n"
        let first = try RawSocket.exchange(port: chain.port, request: Array(declared.utf8))
        XCTAssertTrue(first.hasPrefix("HTTP/1.1 413"), first)
        XCTAssertTrue(first.contains("bodyTooLarge"), first)
        // Chunked, no length announced: refused once the chunks pass the cap.
        let chunkedHead =
            "POST /v1/tx HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n"
        var chunked = Array(chunkedHead.utf8)
        for _ in 0..<5 {
            chunked += Array("4000\r\n".utf8) + [UInt8](repeating: 0x41, count: 0x4000) + Array("\r\n".utf8)
        }
        chunked += Array("0\r\n\r\n".utf8)
        let second = try RawSocket.exchange(port: chain.port, request: chunked)
        XCTAssertTrue(second.hasPrefix("HTTP/1.1 413"), second)
        XCTAssertEqual(chain.snapshot(), before)
        XCTAssertEqual(try chain.http.get("/v1/head").status, 200)
        XCTAssertEqual(
            PrometheusSample.value("amars_http_requests_total{code=\"413\"}", in: try chain.client.metrics()), 2)
    }

    func testClientDecodesChunkedAndSplitResponses() throws {
        let wire = Array(
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n"
                + "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n").utf8)
        // Every split point: the parser must not depend on how the bytes arrive.
        for split in 0...wire.count {
            var parser = ResponseParser()
            try parser.append(wire[0..<split])
            var response = try parser.response(eof: false)
            if response == nil {
                try parser.append(wire[split...])
                response = try parser.response(eof: false)
            }
            XCTAssertEqual(response?.status, 200, "split \(split)")
            XCTAssertEqual(response?.text, "hello, world", "split \(split)")
            XCTAssertEqual(response?.headers["x-a"], "b")
        }
        var short = ResponseParser()
        try short.append(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8)[...])
        XCTAssertNil(try short.response(eof: false))
        XCTAssertThrowsError(try short.response(eof: true))
        var untilClose = ResponseParser()
        try untilClose.append(Array("HTTP/1.0 200 OK\r\n\r\nbody".utf8)[...])
        XCTAssertNil(try untilClose.response(eof: false))
        XCTAssertEqual(try untilClose.response(eof: true)?.text, "body")
        var garbage = ResponseParser()
        try garbage.append(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8)[...])
        XCTAssertThrowsError(try garbage.response(eof: false))
    }

    func testKeepAliveServesSeveralRequestsOnOneConnection() throws {
        let request =
            "GET /v1/head HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/supply HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /v1/blocks/0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        let answer = try RawSocket.exchange(port: chain.port, request: Array(request.utf8))
        XCTAssertEqual(answer.components(separatedBy: "HTTP/1.1 200 OK").count - 1, 3, answer)
        XCTAssertTrue(answer.contains("\"chainName\":\"api-test\""))
        XCTAssertTrue(answer.contains("\"conserved\":true"))
    }

    // MARK: consensus status

    /// `amarsd run` has no driver: the route answers from the chain alone, as `mode: "dev"`.
    func testConsensusStatusInDevMode() throws {
        let validatorKey = Hex.encode(chain.validator.xOnlyPublicKey.bytes.bytes)
        var status = json(try chain.http.get("/v1/consensus"))
        XCTAssertEqual(status["mode"] as? String, "dev")
        XCTAssertEqual((status["epoch"] as? NSNumber)?.uint64Value, 0)
        XCTAssertTrue(status["core"] is NSNull, "no core in dev mode")
        XCTAssertTrue(status["peers"] is NSNull)
        let committee = try XCTUnwrap(status["committee"] as? [String: Any])
        let members = try XCTUnwrap(committee["members"] as? [[String: Any]])
        XCTAssertEqual(members.count, 1)
        XCTAssertEqual(members.first?["key"] as? String, validatorKey)
        XCTAssertEqual(members.first?["weight"] as? String, "1")
        XCTAssertEqual(members.first?["self"] as? Bool, true)
        XCTAssertTrue(members.first?["connected"] is NSNull)
        let node = try XCTUnwrap(status["node"] as? [String: Any])
        XCTAssertEqual(node["key"] as? String, validatorKey)
        XCTAssertEqual(node["member"] as? Bool, true)
        XCTAssertEqual(node["address"] as? String, TestChain.address(chain.validator).bech32)
        var finality = try XCTUnwrap(status["finality"] as? [String: Any])
        XCTAssertEqual((finality["height"] as? NSNumber)?.uint64Value, 0)
        XCTAssertEqual(finality["final"] as? Bool, true, "genesis is final by its hash")

        try chain.produceBlock()
        try chain.produceBlock()
        status = json(try chain.http.get("/v1/consensus/"))
        finality = try XCTUnwrap(status["finality"] as? [String: Any])
        XCTAssertEqual((finality["height"] as? NSNumber)?.uint64Value, 2)
        XCTAssertEqual(finality["hash"] as? String, Hex.encode(chain.node.head.hash.bytes))
        XCTAssertEqual(finality["signedWeight"] as? String, "1")
        XCTAssertEqual(finality["totalWeight"] as? String, "1")
        XCTAssertEqual((finality["signers"] as? NSNumber)?.intValue, 1)
        XCTAssertEqual(finality["final"] as? Bool, true)
        let decided = try XCTUnwrap(status["lastDecided"] as? [String: Any])
        XCTAssertEqual((decided["height"] as? NSNumber)?.uint64Value, 2)
        XCTAssertEqual((decided["round"] as? NSNumber)?.uint64Value, 0)

        let post = try chain.http.post("/v1/consensus", body: [], contentType: "application/json")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(errorCode(post), "methodNotAllowed")
        XCTAssertTrue(try chain.http.get("/").text.contains("/v1/consensus"), "the explorer shows consensus")
    }

    /// With a status provider (what `amarsd node` injects from its driver) the route reports the core's
    /// position, which members are connected and the counters, still over real HTTP.
    func testConsensusStatusFromAProvider() throws {
        let other = TestChain.key(5)
        let committee = try Committee(
            epoch: 0,
            members: [
                .init(key: chain.validator.xOnlyPublicKey.bytes, weight: 3),
                .init(key: other.xOnlyPublicKey.bytes, weight: 2),
            ])
        var metrics = NetworkMetrics()
        metrics.drops[.duplicateGossip] = 3
        metrics.reports = 2
        let stub = ConsensusStatus(
            committee: committee, height: 7, round: 2, step: .prepare, started: true, lastDecided: (6, 1),
            connectedPeers: [other.xOnlyPublicKey.bytes], network: metrics, consensusDrops: [("duplicate", 4)])
        var logger = Logger(label: "api-test")
        logger.logLevel = .critical
        let server = HTTPServer(
            router: APIRouter(node: chain.node, logger: logger, consensusStatus: { stub }), host: "127.0.0.1",
            port: 0, logger: logger)
        let port = try server.start()
        defer { server.shutdown() }
        let status = json(try HTTPClient(baseURL: "http://127.0.0.1:\(port)").get("/v1/consensus"))
        XCTAssertEqual(status["mode"] as? String, "committee")
        let core = try XCTUnwrap(status["core"] as? [String: Any])
        XCTAssertEqual((core["height"] as? NSNumber)?.uint64Value, 7)
        XCTAssertEqual((core["round"] as? NSNumber)?.uint64Value, 2)
        XCTAssertEqual(core["step"] as? String, "prepare")
        let decided = try XCTUnwrap(status["lastDecided"] as? [String: Any])
        XCTAssertEqual((decided["height"] as? NSNumber)?.uint64Value, 6)
        XCTAssertEqual((decided["round"] as? NSNumber)?.uint64Value, 1)
        let members = try XCTUnwrap((status["committee"] as? [String: Any])?["members"] as? [[String: Any]])
        XCTAssertEqual(members.map { $0["self"] as? Bool }, [true, false])
        XCTAssertEqual(members.map { $0["connected"] as? Bool }, [false, true])
        XCTAssertEqual((status["committee"] as? [String: Any])?["totalWeight"] as? String, "5")
        XCTAssertEqual((status["node"] as? [String: Any])?["memberIndex"] as? NSNumber, 0)
        XCTAssertEqual(((status["peers"] as? [String: Any])?["connected"] as? NSNumber)?.intValue, 1)
        let network = try XCTUnwrap(status["network"] as? [String: Any])
        XCTAssertEqual(((network["drops"] as? [String: Any])?["duplicate_gossip"] as? NSNumber)?.intValue, 3)
        XCTAssertEqual((network["reports"] as? NSNumber)?.intValue, 2)
        XCTAssertEqual(((status["consensusDrops"] as? [String: Any])?["duplicate"] as? NSNumber)?.intValue, 4)
    }

    func testRouterWorksWithoutSockets() throws {
        let router = APIRouter(node: chain.node, logger: Logger(label: "t"))
        let head = router.handle(method: "GET", uri: "/v1/head?x=1", body: [], contentType: nil)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.contentType, "application/json")
        XCTAssertEqual(router.handle(method: "GET", uri: "/v1/head/", body: [], contentType: nil).status, 200)
        XCTAssertEqual(router.handle(method: "GET", uri: "//v1/head", body: [], contentType: nil).status, 404)
        XCTAssertEqual(router.handle(method: "GET", uri: "*", body: [], contentType: nil).status, 400)
    }

    // MARK: client errors

    func testClientErrorsAreClear() throws {
        XCTAssertThrowsError(try HTTPClient(baseURL: "ftp://127.0.0.1:1")) { error in
            guard case ClientError.invalidURL = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try HTTPClient(baseURL: "https://127.0.0.1:1"))
        XCTAssertThrowsError(try HTTPClient(baseURL: "http://127.0.0.1:notaport"))
        let parsed = try HTTPClient(baseURL: "http://localhost:8645/")
        XCTAssertEqual(parsed.host, "localhost")
        XCTAssertEqual(parsed.port, 8645)

        // A port nobody listens on: the port of a server that was just shut down.
        let closed = try TestChain()
        let port = closed.port
        closed.close()
        let client = try NodeClient(baseURL: "http://127.0.0.1:\(port)", timeoutSeconds: 2)
        XCTAssertThrowsError(try client.head()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("cannot connect to http://127.0.0.1:\(port)"), text)
            XCTAssertTrue(text.contains("is amarsd running?"), text)
        }

        // API errors surface with status, code and message.
        XCTAssertThrowsError(try chain.client.block(12345)) { error in
            guard case NodeClientError.api(let status, let code, let message) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(status, 404)
            XCTAssertEqual(code, "notFound")
            XCTAssertTrue(message.contains("12345"), message)
        }
    }
}

/// Sends raw bytes and reads until the server closes: for requests an HTTP client would refuse to send.
enum RawSocket {
    struct Failure: Error { var what: String }

    static func exchange(port: Int, request: [UInt8]) throws -> String {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(what: "socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw Failure(what: "connect") }
        let sent = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard sent == request.count else { throw Failure(what: "write") }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }  // EOF: the server closed the connection (a timeout would fail the caller's checks)
            out.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension APITests {
    /// `POST /v1/txs`: each transaction admitted or refused on its own, results in order, the batch journaled
    /// together; a body that is no batch is refused whole and changes nothing.
    func testBatchSubmitAnswersEachTransactionInOrder() throws {
        let bob = TestChain.address(chain.bob)
        let first = chain.transfer(from: chain.alice, to: bob, amount: 1, nonce: 0)
        let second = chain.transfer(from: chain.alice, to: bob, amount: 2, nonce: 1)
        let gap = chain.transfer(from: chain.alice, to: bob, amount: 3, nonce: 9)
        let r = try chain.http.post(
            "/v1/txs", body: TransactionBatch.encode([first.encoded, second.encoded, first.encoded, gap.encoded]),
            contentType: "application/octet-stream")
        XCTAssertEqual(r.status, 200, r.text)
        let results = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])?["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 4)
        XCTAssertEqual(results[0]["id"] as? String, Hex.encode(first.id.bytes))
        XCTAssertEqual(results[1]["id"] as? String, Hex.encode(second.id.bytes))
        XCTAssertEqual((results[2]["error"] as? [String: Any])?["code"] as? String, "alreadyKnown")
        XCTAssertEqual((results[3]["error"] as? [String: Any])?["code"] as? String, "nonceGap")
        XCTAssertEqual(chain.node.pendingCount, 2)

        let third = chain.transfer(from: chain.alice, to: bob, amount: 4, nonce: 2)
        let json = try JSONSerialization.data(withJSONObject: ["txs": [Hex.encode(third.encoded)]])
        let viaJSON = try chain.http.post("/v1/txs", body: Array(json), contentType: "application/json")
        XCTAssertEqual(viaJSON.status, 200, viaJSON.text)
        XCTAssertEqual(chain.node.pendingCount, 3)

        let before = chain.snapshot()
        for (body, type, status) in [
            ([UInt8]([0]), "application/octet-stream", 400), ([5, 1], "application/octet-stream", 400),
            (TransactionBatch.encode([first.encoded]) + [0], "application/octet-stream", 400),
            (Array(#"{"txs":[]}"#.utf8), "application/json", 400),
            (Array(#"{"txs":["zz"]}"#.utf8), "application/json", 400),
            (first.encoded, "text/plain", 415),
        ] {
            XCTAssertEqual(try chain.http.post("/v1/txs", body: body, contentType: type).status, status)
        }
        XCTAssertEqual(chain.snapshot(), before)
        XCTAssertEqual(try chain.produceBlock().block.transactions.count, 3)
    }
}
