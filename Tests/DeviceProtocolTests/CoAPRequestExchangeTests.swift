import AmarsTestSupport
import XCTest

@testable import DeviceProtocol

/// A whole request against a server the test scripts: block-wise both ways (RFC 7959), 4.29 (RFC 8516),
/// separate responses, lost and duplicated datagrams, strays. Every scenario checks what the server saw
/// (block numbers, sizes, options) as well as what the client ended with.
final class CoAPRequestExchangeTests: XCTestCase {
    typealias Exchange = CoAPRequestExchange<[UInt8]>

    static func get(_ path: StaticString = "v1/head", query: [[UInt8]] = []) -> CoAPMessage {
        var m = CoAPMessage(type: .confirmable, code: .get, messageID: 0)
        m.setUriPath(path)
        m.uriQuery = query
        return m
    }

    static func post() -> CoAPMessage {
        var m = CoAPMessage(type: .confirmable, code: .post, messageID: 0)
        m.setUriPath("v1/tx")
        return m
    }

    static func body(_ count: Int, seed: UInt64 = 3) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return rng.bytes(count)
    }

    func exchange(
        _ request: CoAPMessage = get(), payload: [UInt8] = [], maxBody: Int = 64 * 1024, szx: UInt8 = 6,
        lastMessageID: UInt16 = 0x1233, configure: (inout Exchange.Configuration) -> Void = { _ in }
    ) -> Exchange {
        var configuration = Exchange.Configuration(maxBodyBytes: maxBody, preferredSZX: szx)
        configure(&configuration)
        return Exchange(
            request: request, payload: payload, contentFormat: payload.isEmpty ? nil : ContentFormat.chainPayload,
            body: [], configuration: configuration, lastMessageID: lastMessageID)
    }

    func block(_ m: CoAPMessage, _ number: CoAPOptionNumber) -> BlockOption? {
        m.option(number).map { try! BlockOption(option: $0) }
    }

    // MARK: one message

    /// Message ID after the caller's, token and first-timeout jitter from the draw: the same bytes as a
    /// hand-written `CON GET /v1/head`.
    func testOneMessageRequestBytesAndAnswer() throws {
        var e = exchange()
        let first = e.start(now: 100, random: 0x0102_0304)
        XCTAssertEqual(first.request, CoAPTransactionTests.request)
        XCTAssertEqual(first.status.deadline, 2103, "ACK_TIMEOUT 2 s + 1 s × 0x01020304 / 2^32")
        XCTAssertEqual(e.lastMessageID, 0x1234)
        let done = e.received(hex("64 45 12 34 01 02 03 04 C1 2A FF 6F 6B"), now: 150, random: 0)
        let response = try XCTUnwrap(done.status.outcome)
        XCTAssertEqual(response.code, .content)
        XCTAssertEqual(response.contentFormat, 42)
        XCTAssertEqual(e.body, Array("ok".utf8))
        XCTAssertEqual([e.requests, e.blocks, e.retransmissions, e.strays], [1, 0, 0, 0])
    }

    /// A client with buffers under 1024 bytes asks for its block size up front (RFC 7959 §2.4).
    func testSmallBlocksAreNegotiatedInTheFirstRequest() {
        var small = exchange(szx: 5)
        XCTAssertEqual(
            small.start(now: 0, random: 0x0102_0304).request,
            hex("44 01 12 34 01 02 03 04 B2 76 31 04 68 65 61 64 C1 05"))
        var large = exchange(szx: 6)
        XCTAssertEqual(large.start(now: 0, random: 0x0102_0304).request, CoAPTransactionTests.request)
    }

    func testMessageIDsWrapAndEachMessageGetsItsOwnToken() {
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { _ in Self.body(2100) })
        var e = exchange(lastMessageID: 0xFFFE)
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, Self.body(2100))
        XCTAssertEqual(server.requests.map(\.messageID), [0xFFFF, 0x0000, 0x0001])
        XCTAssertEqual(Set(server.requests.map(\.token)).count, 3)
        XCTAssertTrue(server.requests.allSatisfy { $0.token.count == 4 && $0.type == .confirmable })
        XCTAssertEqual(e.lastMessageID, 1)
    }

    func testRequestOverTheMessageSizeFailsBeforeSending() {
        var e = exchange(Self.get(query: [[UInt8](repeating: 0x61, count: 1200)]))
        let step = e.start(now: 0, random: 7)
        XCTAssertNil(step.request)
        XCTAssertEqual(step.status.error, .messageTooLarge)
        XCTAssertEqual(e.requests, 0)
    }

    func testOneMessageAnswerOverTheCap() {
        let server = ScriptedCoAPServer { r, _ in [piggybacked(r, .content, payload: Self.body(11))] }
        var e = exchange(maxBody: 10)
        XCTAssertEqual(server.run(&e).status.error, .bodyTooLarge)
    }

    // MARK: Block2

    func testBlockwiseDownloadIntoTheBody() throws {
        let representation = Self.body(2500)
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { _ in representation })
        var e = exchange()
        let response = try XCTUnwrap(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, representation)
        XCTAssertEqual(response.code, .content)
        XCTAssertEqual(response.contentFormat, 42)
        XCTAssertEqual(
            server.requests.map { block($0, .block2) },
            [nil, .init(number: 1, more: false, szx: 6), .init(number: 2, more: false, szx: 6)])
        XCTAssertEqual([e.requests, e.blocks, e.retransmissions, e.strays], [3, 3, 0, 0])
        XCTAssertTrue(server.requests.allSatisfy { $0.uriPathMatches("v1/head") && $0.payload.isEmpty })
    }

    /// The server picks 256-byte blocks; the client follows its size and numbers.
    func testServerPicksSmallerBlocks() throws {
        let representation = Self.body(2500)
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 4) { _ in representation })
        var e = exchange()
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, representation)
        XCTAssertEqual(server.requests.count, 10)
        XCTAssertEqual(server.requests.dropFirst().map { block($0, .block2)?.number }, Array(1...9))
        XCTAssertTrue(server.requests.dropFirst().allSatisfy { block($0, .block2)?.szx == 4 })
    }

    /// A firmware-sized client (512-byte blocks, a fixed 4096-byte buffer) against a server that prefers 1024.
    func testSmallClientIntoAFixedBuffer() throws {
        let representation = Self.body(4096)
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { _ in representation })
        var e = CoAPRequestExchange(
            request: Self.get(), payload: [], body: FixedBody(capacity: 4096),
            configuration: .init(maxBodyBytes: 4096, preferredSZX: 5), lastMessageID: 0)
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body.bytes, representation)
        XCTAssertEqual(server.requests.map { block($0, .block2)?.number }, Array(0...7))
        XCTAssertTrue(server.requests.allSatisfy { block($0, .block2)?.szx == 5 })
    }

    /// The representation changed after block 0: the client starts over and ends with the new one only.
    func testETagChangeRestartsFromBlockZero() throws {
        let old = Self.body(2500, seed: 1)
        let new = Self.body(2300, seed: 2)
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { $0 == 0 ? old : new })
        var e = exchange()
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, new)
        XCTAssertEqual(server.requests.map { block($0, .block2)?.number }, [nil, 1, 0, 1, 2])
        XCTAssertEqual(e.blocks, 4)
    }

    /// Three restarts are allowed; a fourth change is a violation.
    func testETagThatKeepsChangingIsAViolation() {
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { Self.body(2000 + $0, seed: UInt64($0)) })
        var e = exchange()
        XCTAssertEqual(server.run(&e).status.error, .protocolViolation(.representationKeepsChanging))
        XCTAssertEqual(server.requests.map { block($0, .block2)?.number }, [nil, 1, 0, 1, 0, 1, 0, 1])
    }

    func testSize2OverTheCapFailsAtTheFirstBlock() {
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { _ in Self.body(2500) })
        var e = exchange(maxBody: 2499)
        XCTAssertEqual(server.run(&e).status.error, .bodyTooLarge)
        XCTAssertEqual(server.requests.count, 1)
    }

    /// Without Size2 the cap holds block by block, before anything is stored past it.
    func testBodyOverTheCapWithoutSize2() {
        let resource = blockwiseResource(szx: 6) { _ in Self.body(2500) }
        let server = ScriptedCoAPServer { r, i in
            resource(r, i).map {
                var m = $0
                m.removeOptions(.size2)
                return m
            }
        }
        var e = CoAPRequestExchange(
            request: Self.get(), payload: [], body: FixedBody(capacity: 2000),
            configuration: .init(maxBodyBytes: 2000), lastMessageID: 0)
        XCTAssertEqual(server.run(&e).status.error, .bodyTooLarge)
        XCTAssertEqual(server.requests.count, 2)
        XCTAssertEqual(e.body.count, 1024)
    }

    /// Answers to block 1 that break RFC 7959 in different ways.
    func testBrokenBlockAnswers() {
        let representation = Self.body(2500)
        let good = blockwiseResource(szx: 6) { _ in representation }
        func run(_ second: @escaping (CoAPMessage) -> CoAPMessage) -> CoAPExchangeError? {
            let server = ScriptedCoAPServer { r, i in i == 0 ? good(r, i) : [second(r)] }
            var e = exchange()
            return server.run(&e).status.error
        }
        let eTag = good(Self.get(), 0)[0].option(.eTag)!
        func blockAnswer(_ r: CoAPMessage, _ b: BlockOption, _ count: Int) -> CoAPMessage {
            piggybacked(r, .content, [eTag, b.option(.block2)], payload: Array(representation[0..<count]))
        }
        XCTAssertEqual(
            run { blockAnswer($0, .init(number: 2, more: false, szx: 6), 452) }, .protocolViolation(.block2OutOfOrder))
        XCTAssertEqual(
            run { blockAnswer($0, .init(number: 1, more: true, szx: 6), 1000) },
            .protocolViolation(.block2SizeMismatch))
        XCTAssertEqual(
            run { blockAnswer($0, .init(number: 1, more: false, szx: 6), 1025) },
            .protocolViolation(.block2SizeMismatch))
        XCTAssertEqual(run { piggybacked($0, .content, payload: [1]) }, .protocolViolation(.block2Missing))
        XCTAssertEqual(
            run { piggybacked($0, .content, [CoAPOption(number: .block2, value: [0x17])]) },
            .protocolViolation(.block2Malformed))
        XCTAssertEqual(run { piggybacked($0, .serviceUnavailable) }, .interrupted(.serviceUnavailable))
        XCTAssertEqual(
            run { piggybacked($0, .notFound, [BlockOption(number: 1, more: false, szx: 6).option(.block2)]) },
            .interrupted(.notFound))
    }

    /// An error to the first request is the answer, Block2 option or not.
    func testErrorToTheFirstRequestIsTheAnswer() throws {
        let server = ScriptedCoAPServer { r, _ in
            [
                piggybacked(
                    r, .notFound, [BlockOption(number: 0, more: true, szx: 6).option(.block2)],
                    payload: Array("gone".utf8))
            ]
        }
        var e = exchange()
        let response = try XCTUnwrap(server.run(&e).status.outcome)
        XCTAssertEqual(response.code, .notFound)
        XCTAssertEqual(e.body, Array("gone".utf8))
        XCTAssertEqual(server.requests.count, 1)
    }

    // MARK: Block1

    func testBlockwiseUpload() throws {
        let transaction = Self.body(1500)
        let server = ScriptedCoAPServer { r, i in
            let b = try! BlockOption(option: r.option(.block1)!)
            if b.more { return [piggybacked(r, .continue, [b.option(.block1)])] }
            return [piggybacked(r, .created, [b.option(.block1)], payload: [0x1D])]
        }
        var e = exchange(Self.post(), payload: transaction)
        let response = try XCTUnwrap(server.run(&e).status.outcome)
        XCTAssertEqual(response.code, .created)
        XCTAssertEqual(e.body, [0x1D])
        XCTAssertEqual(
            server.requests.map { block($0, .block1) },
            [.init(number: 0, more: true, szx: 6), .init(number: 1, more: false, szx: 6)])
        XCTAssertEqual(server.requests[0].options.map(\.number), [.uriPath, .uriPath, .contentFormat, .block1, .size1])
        XCTAssertEqual(server.requests[0].uintOption(.size1), 1500)
        XCTAssertEqual(server.requests[0].contentFormat, 42)
        XCTAssertNil(server.requests[1].option(.size1), "Size1 only with block 0")
        XCTAssertEqual(server.requests[0].payload + server.requests[1].payload, transaction)
        XCTAssertEqual([e.requests, e.blocks], [2, 2])
    }

    /// RFC 7959 §2.5 (Figure 5's flow): after block 0 of 1024 bytes the server asks for 256-byte blocks; the
    /// client goes on at NUM 4 of the smaller size, from the same byte.
    func testServerShrinksBlock1Size() throws {
        let transaction = Self.body(1500)
        let server = ScriptedCoAPServer { r, _ in
            let b = try! BlockOption(option: r.option(.block1)!)
            let echo = BlockOption(number: b.number * UInt32(b.size / 256), more: b.more, szx: 4)
            return [piggybacked(r, b.more ? .continue : .changed, [echo.option(.block1)])]
        }
        var e = exchange(Self.post(), payload: transaction)
        XCTAssertEqual(try XCTUnwrap(server.run(&e).status.outcome).code, .changed)
        XCTAssertEqual(
            server.requests.map { block($0, .block1) },
            [
                .init(number: 0, more: true, szx: 6), .init(number: 4, more: true, szx: 4),
                .init(number: 5, more: false, szx: 4),
            ])
        XCTAssertEqual(server.requests.map(\.payload.count), [1024, 256, 220])
        XCTAssertEqual(server.requests.map(\.payload).reduce([], +), transaction)
    }

    /// A refusal before the last block is the answer; nothing more is sent.
    func testEarlyRefusalOfAnUpload() throws {
        let server = ScriptedCoAPServer { r, _ in [piggybacked(r, .requestEntityTooLarge, payload: Array("cap".utf8))] }
        var e = exchange(Self.post(), payload: Self.body(3000))
        let response = try XCTUnwrap(server.run(&e).status.outcome)
        XCTAssertEqual(response.code, .requestEntityTooLarge)
        XCTAssertEqual(e.body, Array("cap".utf8))
        XCTAssertEqual(server.requests.count, 1)
    }

    func testBrokenBlock1Answers() {
        func run(szx: UInt8 = 6, _ answer: @escaping (CoAPMessage) -> CoAPMessage) -> CoAPExchangeError? {
            let server = ScriptedCoAPServer { r, _ in [answer(r)] }
            var e = exchange(Self.post(), payload: Self.body(1500), szx: szx)
            return server.run(&e).status.error
        }
        XCTAssertEqual(run { piggybacked($0, .continue) }, .protocolViolation(.block1EchoMissing))
        XCTAssertEqual(run { piggybacked($0, .changed) }, .protocolViolation(.block1Unfinished))
        XCTAssertEqual(
            run(szx: 4) { piggybacked($0, .continue, [BlockOption(number: 0, more: true, szx: 5).option(.block1)]) },
            .protocolViolation(.block1SizeGrew))
    }

    /// Block1 up, then Block2 down: the follow-ups carry neither the payload nor its Content-Format.
    func testUploadWhoseAnswerComesBlockwise() throws {
        let answer = Self.body(1500)
        let download = blockwiseResource(szx: 6) { _ in answer }
        let server = ScriptedCoAPServer { r, _ in
            if let b = r.option(.block1).map({ try! BlockOption(option: $0) }), b.more {
                return [piggybacked(r, .continue, [b.option(.block1)])]
            }
            return download(r, 0)
        }
        var e = exchange(Self.post(), payload: Self.body(1100))
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, answer)
        XCTAssertEqual(server.requests.count, 3)
        let followUp = server.requests[2]
        XCTAssertEqual(followUp.code, .post)
        XCTAssertEqual(followUp.options.map(\.number), [.uriPath, .uriPath, .block2])
        XCTAssertEqual(block(followUp, .block2), .init(number: 1, more: false, szx: 6))
        XCTAssertTrue(followUp.payload.isEmpty)
    }

    // MARK: 4.29

    /// Max-Age seconds of silence (strays still Reset), then the same request with a fresh Message ID; without
    /// Max-Age one second; a huge Max-Age is capped; past the limit the 4.29 is the answer.
    func testTooManyRequestsIsWaitedOut() throws {
        var e = exchange(configure: { $0.maxRateLimitWaits = 3 })
        _ = e.start(now: 1000, random: 0x0102_0304)
        let paused = e.received(hex("64 9D 12 34 01 02 03 04 D1 01 02"), now: 1010, random: 0)  // Max-Age 2
        XCTAssertNil(paused.request)
        XCTAssertEqual(paused.status.deadline, 3010)
        let stray = e.received(hex("44 45 77 77 09 09 09 09"), now: 2000, random: 0)
        XCTAssertEqual(stray.reply, hex("70 00 77 77"))
        XCTAssertEqual(e.strays, 1)
        XCTAssertNil(e.timeout(now: 3009, random: 0).request)
        let again = e.timeout(now: 3010, random: 0x0506_0708)
        XCTAssertEqual(again.request, hex("44 01 12 35 05 06 07 08 B2 76 31 04 68 65 61 64"))
        XCTAssertEqual(e.received(hex("64 9D 12 35 05 06 07 08"), now: 3020, random: 0).status.deadline, 4020)
        _ = e.timeout(now: 4020, random: 0x0A0B_0C0D)
        let capped = e.received(hex("64 9D 12 36 0A 0B 0C 0D D4 01 FF FF FF FF"), now: 4030, random: 0)
        XCTAssertEqual(capped.status.deadline, 64_030)
        _ = e.timeout(now: 64_030, random: 0x0101_0101)
        let final = e.received(hex("64 9D 12 37 01 01 01 01 D1 01 01"), now: 64_040, random: 0)
        XCTAssertEqual(try XCTUnwrap(final.status.outcome).code, .tooManyRequests)
        XCTAssertEqual(e.requests, 4)
    }

    /// A 4.29 in the middle of an upload repeats the same block.
    func testTooManyRequestsDuringAnUploadRepeatsTheBlock() throws {
        let server = ScriptedCoAPServer { r, i in
            if i == 1 { return [piggybacked(r, .tooManyRequests, [CoAPOption(number: .maxAge, uint: 1)])] }
            let b = try! BlockOption(option: r.option(.block1)!)
            return [piggybacked(r, b.more ? .continue : .created, [b.option(.block1)])]
        }
        var e = exchange(Self.post(), payload: Self.body(2500))
        let (status, now) = server.run(&e, start: 0)
        XCTAssertEqual(try XCTUnwrap(status.outcome).code, .created)
        XCTAssertEqual(server.requests.map { block($0, .block1)?.number }, [0, 1, 1, 2])
        XCTAssertEqual(Set(server.requests.map(\.messageID)).count, 4)
        XCTAssertGreaterThanOrEqual(now, 1000)
        XCTAssertEqual(e.blocks, 3)
    }

    // MARK: separate responses, losses, strays

    /// The separate CON answer to block 0 is acknowledged and block 1 asked for in the same step.
    func testSeparateResponseIsAcknowledgedAndTheNextBlockAskedAtOnce() throws {
        let representation = Self.body(2000)
        var e = exchange()
        _ = e.start(now: 0, random: 0x0102_0304)
        XCTAssertNil(e.received(hex("60 00 12 34"), now: 5, random: 0).request)
        var separate = CoAPMessage(
            type: .confirmable, code: .content, messageID: 0x4242, token: [1, 2, 3, 4],
            payload: Array(representation[0..<1024]))
        separate.addOption(BlockOption(number: 0, more: true, szx: 6).option(.block2))
        let step = e.received(separate.encode(), now: 50, random: 0x0506_0708)
        XCTAssertEqual(step.reply, hex("60 00 42 42"))
        let next = try CoAPMessage.decode(XCTUnwrap(step.request))
        XCTAssertEqual(next.messageID, 0x1235)
        XCTAssertEqual(next.token, [5, 6, 7, 8])
        XCTAssertEqual(block(next, .block2), .init(number: 1, more: false, szx: 6))
    }

    /// The first request and the answer to block 1 are lost, and every answer arrives twice: retransmissions
    /// recover both, the duplicates are strays (ACKs: dropped without a reply).
    func testLostAndDuplicatedDatagrams() throws {
        let representation = Self.body(2500)
        let server = ScriptedCoAPServer(answer: blockwiseResource(szx: 6) { _ in representation })
        server.lostRequests = [0]
        server.lostAnswers = [1]
        server.duplicateAnswers = true
        var e = exchange()
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, representation)
        XCTAssertEqual(server.requests.map { block($0, .block2)?.number }, [nil, 1, 1, 2])
        XCTAssertEqual([e.requests, e.retransmissions, e.strays, e.blocks], [3, 2, 2, 3])
        XCTAssertTrue(server.clientReplies.isEmpty)
    }

    /// Messages for other tokens around the real answer: the CON one is Reset, the NON one dropped.
    func testStraysFromOtherTokens() throws {
        let server = ScriptedCoAPServer { r, _ in
            [
                CoAPMessage(type: .confirmable, code: .content, messageID: 0x0BAD, token: [9, 9]),
                CoAPMessage(type: .nonConfirmable, code: .content, messageID: 0x0BAE, token: [9, 9]),
                piggybacked(r, .content, payload: [7]),
            ]
        }
        var e = exchange()
        XCTAssertNotNil(server.run(&e).status.outcome)
        XCTAssertEqual(e.body, [7])
        XCTAssertEqual(server.clientReplies, [CoAPMessage(type: .reset, code: .empty, messageID: 0x0BAD)])
        XCTAssertEqual(e.strays, 2)
    }

    func testGatewayThatNeverAnswersTimesOutOnTheRFCSchedule() {
        let server = ScriptedCoAPServer { _, _ in [] }
        var e = exchange(configure: {
            $0.ackRandomFactorPercent = 100
            $0.maxRetransmit = 3
        })
        let (status, now) = server.run(&e, start: 0)
        XCTAssertEqual(status.error, .timeout)
        XCTAssertEqual(now, 2000 + 4000 + 8000 + 16000)
        XCTAssertEqual(server.requests.count, 4)
        XCTAssertEqual(Set(server.requests.map(\.messageID)), [0x1234], "retransmissions keep the Message ID")
        XCTAssertEqual(e.retransmissions, 3)
    }

    func testResetAndSeparateResponseTimeoutEndTheExchange() {
        let reset = ScriptedCoAPServer { r, _ in [CoAPMessage(type: .reset, code: .empty, messageID: r.messageID)] }
        var e = exchange()
        XCTAssertEqual(reset.run(&e).status.error, .reset)
        let silent = ScriptedCoAPServer { r, _ in
            [CoAPMessage(type: .acknowledgement, code: .empty, messageID: r.messageID)]
        }
        var f = exchange(configure: { $0.separateResponseMillis = 700 })
        let (status, now) = silent.run(&f, start: 0)
        XCTAssertEqual(status.error, .noSeparateResponse)
        XCTAssertEqual(now, 710)
    }
}
