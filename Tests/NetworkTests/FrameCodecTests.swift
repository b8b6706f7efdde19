import AmarsTestSupport
import NIOCore
import NIOEmbedded
import XCTest

@testable import Network

/// Framing through NIOEmbedded: no sockets, every byte under the test's control.
final class FrameCodecTests: XCTestCase {
    private func makeChannel(authenticated: Bool = true) throws -> (EmbeddedChannel, FramePolicy) {
        let policy = FramePolicy(kinds: Fixture.kinds)
        policy.authenticated = authenticated
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(FrameDecoder(policy: policy)),
            MessageToByteHandler(FrameEncoder()),
        ])
        return (channel, policy)
    }

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBufferAllocator().buffer(bytes: bytes) }

    func testRoundTripsThroughEncoderAndDecoder() throws {
        let (channel, _) = try makeChannel()
        let frames = [
            Frame(kind: Fixture.gossipKind, payload: []),
            Frame(kind: Fixture.gossipKind, payload: Array(0..<200).map { UInt8($0) }),
            Frame(kind: Fixture.responseKind, payload: [UInt8](repeating: 0xAB, count: 100_000)),
        ]
        for frame in frames {
            try channel.writeOutbound(frame)
            let encoded = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
            XCTAssertEqual(Array(encoded.readableBytesView), frame.encoded)
            XCTAssertEqual(encoded.readableBytes, frame.wireSize)
            try channel.writeInbound(encoded)
            XCTAssertEqual(try channel.readInbound(as: Frame.self), frame)
        }
        XCTAssertNil(try channel.readInbound(as: Frame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testWireFormatIsLengthKindPayload() {
        XCTAssertEqual(Frame(kind: 0x10, payload: [1, 2, 3]).encoded, [0, 0, 0, 4, 0x10, 1, 2, 3])
    }

    func testFramesSplitAcrossReadsAndCoalescedInOneRead() throws {
        let (channel, _) = try makeChannel()
        let a = Frame(kind: Fixture.gossipKind, payload: [9, 8, 7])
        let b = Frame(kind: Fixture.requestKind, payload: Array(repeating: 1, count: 50))
        // Byte by byte: nothing until the last byte of each frame.
        for byte in a.encoded.dropLast() {
            try channel.writeInbound(buffer([byte]))
            XCTAssertNil(try channel.readInbound(as: Frame.self))
        }
        try channel.writeInbound(buffer([a.encoded.last!]))
        XCTAssertEqual(try channel.readInbound(as: Frame.self), a)
        // Two frames in one read.
        try channel.writeInbound(buffer(b.encoded + a.encoded))
        XCTAssertEqual(try channel.readInbound(as: Frame.self), b)
        XCTAssertEqual(try channel.readInbound(as: Frame.self), a)
    }

    func testTruncatedLengthYieldsNothingAndEOFIsHarmless() throws {
        let (channel, _) = try makeChannel()
        try channel.writeInbound(buffer([0, 0]))
        XCTAssertNil(try channel.readInbound(as: Frame.self))
        // A truncated body too.
        try channel.writeInbound(buffer([0, 5, Fixture.gossipKind, 1]))
        XCTAssertNil(try channel.readInbound(as: Frame.self))
        XCTAssertNoThrow(try channel.finish())
    }

    func testZeroLengthIsMalformed() throws {
        let (channel, _) = try makeChannel()
        XCTAssertThrowsError(try channel.writeInbound(buffer([0, 0, 0, 0]))) { error in
            XCTAssertEqual(error as? FrameDecodeError, .emptyFrame)
        }
    }

    func testOverGlobalCapIsRefusedFromTheLengthAlone() throws {
        let (channel, _) = try makeChannel()
        // Only the 4 length bytes: refused before any payload is buffered.
        XCTAssertThrowsError(try channel.writeInbound(buffer([0xFF, 0xFF, 0xFF, 0xFF]))) { error in
            XCTAssertEqual(error as? FrameDecodeError, .oversized(kind: nil, length: Int(UInt32.max)))
        }
        let (second, _) = try makeChannel()
        // Authenticated: node frames carry a session tag on top of the ceiling.
        let overGlobal = UInt32(Fixture.kinds.maxFrameSize + PeerSession.tagSize + 1)
        XCTAssertThrowsError(try second.writeInbound(buffer(overGlobal.bigEndianBytes))) { error in
            XCTAssertEqual(error as? FrameDecodeError, .oversized(kind: nil, length: Int(overGlobal)))
        }
    }

    func testOverPerKindCapIsRefusedFromTheKindByte() throws {
        let (channel, _) = try makeChannel()
        // requestKind allows 1024 payload bytes, plus the 16-byte session tag once authenticated; 1041 + kind = 1042.
        let length = UInt32(1_042)
        XCTAssertThrowsError(try channel.writeInbound(buffer(length.bigEndianBytes + [Fixture.requestKind]))) {
            XCTAssertEqual($0 as? FrameDecodeError, .oversized(kind: Fixture.requestKind, length: 1_042))
        }
        // Exactly at the cap is fine.
        let (ok, _) = try makeChannel()
        let frame = Frame(kind: Fixture.requestKind, payload: Array(repeating: 0, count: 1_024 + PeerSession.tagSize))
        try ok.writeInbound(buffer(frame.encoded))
        XCTAssertEqual(try ok.readInbound(as: Frame.self), frame)
    }

    func testUnknownKindIsRefused() throws {
        let (channel, _) = try makeChannel()
        XCTAssertThrowsError(try channel.writeInbound(buffer([0, 0, 0, 2, 0x7F]))) {
            XCTAssertEqual($0 as? FrameDecodeError, .unknownKind(0x7F))
        }
        let (reserved, _) = try makeChannel()
        XCTAssertThrowsError(try reserved.writeInbound(buffer([0, 0, 0, 1, 0x05]))) {
            XCTAssertEqual($0 as? FrameDecodeError, .unknownKind(0x05))
        }
    }

    func testPhaseGatesKinds() throws {
        // Before authentication only handshake kinds pass, and node kinds are refused at their kind byte.
        let (early, _) = try makeChannel(authenticated: false)
        XCTAssertThrowsError(try early.writeInbound(buffer([0, 0x01, 0, 0, Fixture.gossipKind]))) {
            XCTAssertEqual($0 as? FrameDecodeError, .unexpectedKind(Fixture.gossipKind))
        }
        let (handshaking, _) = try makeChannel(authenticated: false)
        let hello = Frame(kind: ControlKind.hello, payload: Array(repeating: 0, count: Hello.encodedSize))
        try handshaking.writeInbound(buffer(hello.encoded))
        XCTAssertEqual(try handshaking.readInbound(as: Frame.self), hello)
        // A Hello one byte too long is oversized, so pre-auth buffering is bounded by the handshake sizes.
        let (long, _) = try makeChannel(authenticated: false)
        let longHello = UInt32(Hello.encodedSize + 2).bigEndianBytes + [ControlKind.hello]
        XCTAssertThrowsError(try long.writeInbound(buffer(longHello))) {
            XCTAssertEqual(
                $0 as? FrameDecodeError, .oversized(kind: ControlKind.hello, length: Hello.encodedSize + 2))
        }
        // After authentication a handshake kind is a violation.
        let (late, _) = try makeChannel(authenticated: true)
        XCTAssertThrowsError(try late.writeInbound(buffer(hello.encoded))) {
            XCTAssertEqual($0 as? FrameDecodeError, .unexpectedKind(ControlKind.hello))
        }
    }

    func testRandomGarbageNeverCrashesTheDecoder() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let (channel, _) = try makeChannel(authenticated: rng.next() & 1 == 0)
            let bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            do {
                try channel.writeInbound(buffer(bytes))
                while let frame = try channel.readInbound(as: Frame.self) {
                    XCTAssertNotNil(Fixture.kinds.limit(of: frame.kind))
                }
            } catch is FrameDecodeError {
                // Expected for most garbage.
            }
            _ = try? channel.finish()
        }
    }
}
