@testable import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import GatewayNode
import Ledger
import Logging
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The explorer's routes over real HTTP: search, an account's activity, transactions with their inclusion proof,
/// payment requests and their QR code, and the server-sent event stream, with every bad query refused.
final class ExplorerAPITests: XCTestCase {
    var chain: TestChain!

    override func setUpWithError() throws { chain = try TestChain() }

    override func tearDown() {
        chain?.close()
        chain = nil
    }

    private func get(_ path: String) throws -> (status: Int, json: [String: Any]) {
        let r = try chain.http.get(path)
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
    }

    private func code(_ path: String) throws -> String? {
        ((try get(path)).json["error"] as? [String: Any])?["code"] as? String
    }

    /// alice pays bob twice in block 1.
    private func twoPayments() throws -> (SignedTransaction, SignedTransaction, FinalizedBlock) {
        let bob = TestChain.address(chain.bob)
        let tx1 = chain.transfer(from: chain.alice, to: bob, amount: 1_500_000, nonce: 0)
        let tx2 = chain.transfer(from: chain.alice, to: bob, amount: 2_000_000, nonce: 1)
        _ = try chain.node.submit(tx1)
        _ = try chain.node.submit(tx2)
        return (tx1, tx2, try chain.produceBlock())
    }

    func testActivityShowsEachSideOfATransferNewestFirst() throws {
        let (tx1, tx2, _) = try twoPayments()
        let alice = TestChain.address(chain.alice).bech32
        let bob = TestChain.address(chain.bob).bech32
        let sent = try get("/v1/accounts/\(alice)/transactions")
        let rows = try XCTUnwrap(sent.json["transactions"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["id"] as? String }, [tx2, tx1].map { Hex.encode($0.id.bytes) })
        XCTAssertEqual(rows.map { $0["direction"] as? String }, ["out", "out"])
        XCTAssertEqual(rows.first?["counterparty"] as? String, bob)
        XCTAssertEqual(rows.first?["amount"] as? String, "2000000")
        let received = try XCTUnwrap(
            try get("/v1/accounts/\(bob)/transactions?limit=1").json["transactions"] as? [[String: Any]])
        XCTAssertEqual(received.count, 1)
        XCTAssertEqual(received.first?["direction"] as? String, "in")
        XCTAssertEqual(received.first?["counterparty"] as? String, alice)
        XCTAssertEqual(try code("/v1/accounts/\(bob)/transactions?limit=0"), "invalidQuery")
        XCTAssertEqual(try code("/v1/accounts/\(bob)/transactions?limit=-3"), "invalidQuery")
        XCTAssertEqual(try code("/v1/accounts/amsc1nope/transactions"), "invalidAddress")
    }

    func testSearchLeadsEachKindOfQueryToItsPageAndRefusesTheRest() throws {
        let (tx1, _, block) = try twoPayments()
        let hash = Hex.encode(block.block.hash.bytes)
        let bob = TestChain.address(chain.bob).bech32
        func path(_ q: String) throws -> String? { try get("/v1/search?q=\(q)").json["path"] as? String }
        XCTAssertEqual(try path("1"), "/block/1")
        XCTAssertEqual(try path("+1+"), "/block/1")  // form-encoded spaces around it
        XCTAssertEqual(try path(hash), "/block/1")
        XCTAssertEqual(try path(hash.uppercased()), "/block/1")
        XCTAssertEqual(try path(Hex.encode(tx1.id.bytes)), "/tx/\(Hex.encode(tx1.id.bytes))")
        XCTAssertEqual(try path(bob), "/account/\(bob)")
        XCTAssertEqual(try path("epoch%203"), "/epoch/3")
        XCTAssertEqual(try get("/v1/search?q=99").status, 404)
        XCTAssertEqual(try get("/v1/search?q=\(String(repeating: "ab", count: 32))").status, 404)
        XCTAssertEqual(try code("/v1/search?q="), "invalidQuery")
        XCTAssertEqual(try code("/v1/search?q=%3Cscript%3E"), "invalidQuery")
        XCTAssertEqual(try code("/v1/search?q=\(String(repeating: "9", count: 200))"), "invalidQuery")
        XCTAssertEqual(try code("/v1/search?q=amsc1qqqq"), "invalidAddress")
        // The block is also served by its hash.
        XCTAssertEqual(try get("/v1/blocks/\(hash)").json["height"] as? Int, 1)
        XCTAssertEqual(try get("/v1/blocks/\(String(repeating: "0", count: 64))").status, 404)
        XCTAssertEqual(try code("/v1/blocks/\(String(repeating: "z", count: 64))"), "invalidHeight")
    }

    func testIncludedTransactionCarriesAProofThatReachesItsHeader() throws {
        let (_, tx2, block) = try twoPayments()
        let answer = try get("/v1/tx/\(Hex.encode(tx2.id.bytes))").json
        let proofFields = try XCTUnwrap(answer["proof"] as? [String: Any])
        let blockFields = try XCTUnwrap(answer["block"] as? [String: Any])
        let siblings = try XCTUnwrap(proofFields["siblings"] as? [String]).map { Bytes32(try Hex.decode($0))! }
        let proof = MerkleProof(
            index: UInt64(try XCTUnwrap(proofFields["index"] as? Int)),
            count: UInt64(try XCTUnwrap(proofFields["count"] as? Int)), siblings: siblings)
        // Recompute as the page does: leaf, path, root in the header, header hash.
        var h = MerkleTree.leafHash(tx2.id.bytes)
        var i = proof.index
        var m = proof.count
        var k = 0
        while m > 1 {
            if i & 1 == 1 {
                h = MerkleTree.nodeHash(siblings[k], h)
                k += 1
            } else if i + 1 < m {
                h = MerkleTree.nodeHash(h, siblings[k])
                k += 1
            }
            i >>= 1
            m = (m + 1) / 2
        }
        XCTAssertEqual(Hex.encode(h.bytes), blockFields["transactionsRoot"] as? String)
        let header = try BlockHeader(decoding: try Hex.decode(try XCTUnwrap(blockFields["header"] as? String)))
        XCTAssertEqual(header.transactionsRoot, h)
        XCTAssertEqual(Hex.encode(header.hash.bytes), Hex.encode(block.block.hash.bytes))
        XCTAssertEqual((answer["transaction"] as? [String: Any])?["amount"] as? String, "2000000")
    }

    func testPaymentRequestsAndTheirQRCode() throws {
        let bob = TestChain.address(chain.bob).bech32
        let request = try get("/v1/request?to=\(bob)&amount=2.5&memo=table+4")
        XCTAssertEqual(request.json["uri"] as? String, "amarscity:\(bob)?amount=2.5&memo=table%204")
        XCTAssertEqual(request.json["amount"] as? String, "2500000")
        let svg = try chain.http.get("/v1/request.svg?to=\(bob)&amount=2.5")
        XCTAssertEqual(svg.status, 200)
        XCTAssertTrue(svg.text.hasPrefix("<svg"), svg.text)
        let fromURI = try get("/v1/request?uri=amarscity%3A\(bob)%3Famount%3D1")
        XCTAssertEqual(fromURI.json["amountAMSC"] as? String, "1")
        for bad in [
            "/v1/request?to=amsc1xyz", "/v1/request?to=\(bob)&amount=1.0000001", "/v1/request?to=\(bob)&amount=-1",
            "/v1/request?to=\(bob)&memo=\(String(repeating: "m", count: 65))", "/v1/request?uri=bitcoin%3Ax",
            "/v1/request?uri=amarscity%3A\(bob)%3Freq-x%3D1", "/v1/request.svg?to=nobody",
        ] {
            XCTAssertEqual(try code(bad), "invalidRequest", bad)
        }
    }

    /// Reads a server-sent event stream over a plain socket, as a browser's EventSource would.
    final class EventReader {
        let fd: Int32
        var buffer = ""

        init(port: Int, path: String, headers: String = "") throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\(headers)\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
        }

        deinit { close(fd) }

        /// Reads until `needle` has arrived (or 5 s pass without data); returns everything read so far.
        func read(until needle: String) -> String {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !buffer.contains(needle) {
                let n = recv(fd, &chunk, chunk.count, 0)
                guard n > 0 else { break }
                buffer += String(decoding: chunk[..<n], as: UTF8.self)
            }
            return buffer
        }
    }

    func testEventStreamSendsHeadsAndTheWatchedAccountsReceipts() throws {
        let bob = TestChain.address(chain.bob).bech32
        let stream = try EventReader(port: chain.port, path: "/v1/events?account=\(bob)")
        let opening = stream.read(until: "event: head")
        XCTAssertTrue(opening.lowercased().contains("content-type: text/event-stream"), opening)
        XCTAssertTrue(opening.contains("\"height\":0"), opening)
        let (tx1, tx2, _) = try twoPayments()
        let after = stream.read(until: "\"height\":1,")
        for tx in [tx1, tx2] { XCTAssertTrue(after.contains(Hex.encode(tx.id.bytes)), after) }
        XCTAssertEqual(after.components(separatedBy: "event: receipt").count - 1, 2, after)
        XCTAssertTrue(after.contains("\"direction\":\"in\""), after)

        XCTAssertTrue(after.contains("id: 1\nevent: head"), after)

        // A page that comes back after block 1 (by itself: Last-Event-ID; or after a 503: ?after=) gets what it
        // missed; one that saw block 1 gets nothing again.
        for (path, headers) in [
            ("/v1/events?account=\(bob)", "Last-Event-ID: 0\r\n"), ("/v1/events?account=\(bob)&after=0", ""),
        ] {
            let resumed = try EventReader(port: chain.port, path: path, headers: headers).read(until: "event: head")
            XCTAssertEqual(resumed.components(separatedBy: "event: receipt").count - 1, 2, resumed)
        }
        let caughtUp = try EventReader(port: chain.port, path: "/v1/events?account=\(bob)&after=1")
        XCTAssertFalse(caughtUp.read(until: "event: receipt").contains("event:"), caughtUp.buffer)
        XCTAssertEqual(try get("/v1/events?after=x").status, 400)

        // A stream for nobody in particular gets heads only; a bad account is refused.
        let heads = try EventReader(port: chain.port, path: "/v1/events")
        XCTAssertFalse(heads.read(until: "event: head").contains("event: receipt"))
        let bad = try EventReader(port: chain.port, path: "/v1/events?account=amsc1bad")
        XCTAssertTrue(bad.read(until: "invalidAddress").contains("400 Bad Request"))
    }

    func testEventStreamsAreCapped() throws {
        let logger = Logger(label: "test")
        let server = HTTPServer(
            router: APIRouter(node: chain.node, logger: logger), host: "127.0.0.1", port: 0, logger: logger,
            limits: .init(maxEventStreams: 1))
        let port = try server.start()
        defer { server.shutdown() }
        let first = try EventReader(port: port, path: "/v1/events")
        XCTAssertTrue(first.read(until: "event: head").contains("200 OK"))
        let second = try EventReader(port: port, path: "/v1/events")
        XCTAssertTrue(second.read(until: "tooManyStreams").contains("503"), second.buffer)
        // One source cannot take every stream: with room for 4 streams, at most 2 from one address.
        let shared = HTTPServer(
            router: APIRouter(node: chain.node, logger: logger), host: "127.0.0.1", port: 0, logger: logger,
            limits: .init(maxEventStreams: 4, maxEventStreamsPerSource: 2))
        let sharedPort = try shared.start()
        defer { shared.shutdown() }
        let mine = try (0..<2).map { _ in try EventReader(port: sharedPort, path: "/v1/events") }
        for reader in mine { XCTAssertTrue(reader.read(until: "event: head").contains("200 OK")) }
        let third = try EventReader(port: sharedPort, path: "/v1/events")
        XCTAssertTrue(third.read(until: "tooManyStreams").contains("503"), third.buffer)
        // The slot is given back when the first client leaves.
        shutdown(first.fd, Int32(SHUT_RDWR))
        var reopened = false
        for _ in 0..<50 where !reopened {
            usleep(100_000)
            reopened =
                (try? EventReader(port: port, path: "/v1/events").read(until: "event: head"))?.contains("200 OK")
                == true
        }
        XCTAssertTrue(reopened, "the stream slot was not given back")
    }
}
