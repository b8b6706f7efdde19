import AmarsTestSupport
import XCTest

@testable import DeviceProtocol

final class FrameCheckTests: XCTestCase {
    /// The catalogue check value of CRC-16/CCITT-FALSE (see SOURCES.md).
    func testCheckValue() {
        XCTAssertEqual(FrameCheck.crc16(bytes("123456789")), 0x29B1)
        XCTAssertEqual(FrameCheck.crc16([UInt8]()), 0xFFFF)
        XCTAssertEqual(FrameCheck.crc16(bytes("123456789")[...]), 0x29B1)
    }
}

final class SLIPTests: XCTestCase {
    func testEncodingEscapesEndAndEsc() {
        let frame = SLIP.encodeFrame([0x01, 0xC0, 0xDB, 0x02])
        let check = FrameCheck.crc16([0x01, 0xC0, 0xDB, 0x02])
        var expected: [UInt8] = [0xC0, 0x01, 0xDB, 0xDC, 0xDB, 0xDD, 0x02]
        for byte in [UInt8(check >> 8), UInt8(check & 0xFF)] {
            if byte == 0xC0 {
                expected += [0xDB, 0xDC]
            } else if byte == 0xDB {
                expected += [0xDB, 0xDD]
            } else {
                expected.append(byte)
            }
        }
        expected.append(0xC0)
        XCTAssertEqual(frame, expected)
        // Only the first and last bytes are END.
        XCTAssertEqual(frame.filter { $0 == 0xC0 }.count, 2)
    }

    func testCheckBytesAreEscapedToo() {
        // Find payloads whose CRC has an END or ESC byte, and make sure they survive.
        var found = 0
        var value: UInt16 = 0
        while found < 4 {
            let payload = [UInt8(value >> 8), UInt8(value & 0xFF)]
            let check = FrameCheck.crc16(payload)
            let checkBytes = [UInt8(check >> 8), UInt8(check & 0xFF)]
            if checkBytes.contains(0xC0) || checkBytes.contains(0xDB) {
                found += 1
                let frame = SLIP.encodeFrame(payload)
                XCTAssertEqual(frame.filter { $0 == 0xC0 }.count, 2)
                var decoder = SLIPDecoder()
                XCTAssertEqual(decoder.feed(frame), [payload])
            }
            value += 1
        }
    }

    func testEveryByteValueRoundTrips() {
        let payload = (0...255).map { UInt8($0) }
        var decoder = SLIPDecoder()
        XCTAssertEqual(decoder.feed(SLIP.encodeFrame(payload)), [payload])
        // And each byte value alone, and doubled END/ESC runs.
        for value in 0...255 {
            let single = [UInt8(value)]
            XCTAssertEqual(decoder.feed(SLIP.encodeFrame(single)), [single])
        }
        let runs: [UInt8] = [0xC0, 0xC0, 0xDB, 0xDB, 0xDC, 0xDD, 0xC0, 0xDB]
        XCTAssertEqual(decoder.feed(SLIP.encodeFrame(runs)), [runs])
        XCTAssertEqual(decoder.drops, SLIPDecoder.Drops())
        XCTAssertEqual(decoder.framesDecoded, 258)
    }

    func testChunkedFeedingAtEverySplitPoint() {
        let payloads: [[UInt8]] = [[0x40, 0x01, 0x00, 0x01], [0xC0, 0xDB, 0x00], (0..<50).map { UInt8($0 * 5) }]
        var stream: [UInt8] = []
        for payload in payloads { stream += SLIP.encodeFrame(payload) }
        for split in 0...stream.count {
            var decoder = SLIPDecoder()
            var frames = decoder.feed(Array(stream[..<split]))
            frames += decoder.feed(Array(stream[split...]))
            XCTAssertEqual(frames, payloads, "split at \(split)")
            XCTAssertEqual(decoder.drops.total, 0)
        }
        // Two split points.
        for first in stride(from: 0, through: stream.count, by: 3) {
            for second in first...stream.count {
                var decoder = SLIPDecoder()
                var frames = decoder.feed(Array(stream[..<first]))
                frames += decoder.feed(Array(stream[first..<second]))
                frames += decoder.feed(Array(stream[second...]))
                XCTAssertEqual(frames, payloads)
            }
        }
        // One byte at a time.
        var decoder = SLIPDecoder()
        var frames: [[UInt8]] = []
        for byte in stream {
            if let frame = decoder.push(byte) { frames.append(frame) }
        }
        XCTAssertEqual(frames, payloads)
    }

    func testGarbageBetweenFrames() {
        let a: [UInt8] = [1, 2, 3, 4]
        let b: [UInt8] = [5, 6, 7, 8, 9]
        var stream: [UInt8] = [0x55, 0xAA, 0x13]  // line noise before the first END
        stream += SLIP.encodeFrame(a)
        stream += [0x99, 0x98, 0x97, 0x96, 0x95]  // noise between frames: fails the check
        stream += SLIP.encodeFrame(b)
        stream += [0x01]  // a lone byte: too short
        stream += SLIP.encodeFrame(a)
        stream += [0xC0, 0xC0, 0xC0]  // idle ENDs are not errors
        var decoder = SLIPDecoder()
        XCTAssertEqual(decoder.feed(stream), [a, b, a])
        XCTAssertEqual(decoder.drops.badCheck, 2)
        XCTAssertEqual(decoder.drops.tooShort, 1)
        XCTAssertEqual(decoder.drops.total, 3)
    }

    func testBadEscapes() {
        var decoder = SLIPDecoder()
        let good = SLIP.encodeFrame([1, 2, 3])
        // ESC followed by a plain byte: the frame is dropped up to the next END, then decoding resumes.
        XCTAssertEqual(decoder.feed([0xC0, 0x01, 0xDB, 0x41, 0x02, 0x03, 0xC0] + good), [[1, 2, 3]])
        XCTAssertEqual(decoder.drops.badEscape, 1)
        // ESC right before END.
        XCTAssertEqual(decoder.feed([0xC0, 0x01, 0x02, 0x03, 0xDB, 0xC0] + good), [[1, 2, 3]])
        XCTAssertEqual(decoder.drops.badEscape, 2)
        // ESC ESC.
        XCTAssertEqual(decoder.feed([0x01, 0xDB, 0xDB, 0xDD, 0xC0] + good), [[1, 2, 3]])
        XCTAssertEqual(decoder.drops.badEscape, 3)
        XCTAssertEqual(decoder.drops.total, 3)
    }

    func testBadCheckIsCounted() {
        var frame = SLIP.encodeFrame([0x10, 0x20, 0x30, 0x40])
        frame[2] ^= 0x01
        var decoder = SLIPDecoder()
        XCTAssertEqual(decoder.feed(frame), [])
        XCTAssertEqual(decoder.drops.badCheck, 1)
        // Every single-bit error in the payload or check is caught (CRC-16 detects all of them).
        let clean = SLIP.encodeFrame([0x10, 0x20, 0x30, 0x40])
        for index in 1..<(clean.count - 1) {
            for bit in 0..<8 {
                var damaged = clean
                damaged[index] ^= 1 << UInt8(bit)
                var fresh = SLIPDecoder()
                let frames = fresh.feed(damaged)
                XCTAssertEqual(frames, [], "byte \(index) bit \(bit)")
            }
        }
    }

    func testTooShortFrames() {
        var decoder = SLIPDecoder()
        XCTAssertEqual(decoder.feed([0xC0, 0x01, 0xC0, 0x01, 0x02, 0xC0]), [])
        XCTAssertEqual(decoder.drops.tooShort, 2)
    }

    func testOverLengthFrameRecovery() {
        var decoder = SLIPDecoder(maxPayloadSize: 16)
        let fits = [UInt8](repeating: 0x33, count: 16)
        let tooLong = [UInt8](repeating: 0x44, count: 17)
        XCTAssertEqual(decoder.feed(SLIP.encodeFrame(fits)), [fits])
        var peak = 0
        for byte in SLIP.encodeFrame(tooLong) + [UInt8](repeating: 0x55, count: 5_000) + [0xC0] {
            XCTAssertNil(decoder.push(byte))
            peak = max(peak, decoder.pendingCount)
        }
        XCTAssertLessThanOrEqual(peak, 16 + SLIP.checkSize)
        XCTAssertEqual(decoder.drops.overLength, 2)
        XCTAssertEqual(decoder.feed(SLIP.encodeFrame(fits)), [fits])
        XCTAssertEqual(decoder.framesDecoded, 2)
    }

    func testRandomStreamsNeverExceedTheCap() {
        var rng = SplitMix64(seed: 0x534C_4950)
        var decoder = SLIPDecoder(maxPayloadSize: 64)
        for _ in 0..<20_000 {
            let byte: UInt8 = rng.below(8) == 0 ? [0xC0, 0xDB, 0xDC, 0xDD][rng.below(4)] : rng.byte()
            if let frame = decoder.push(byte) { XCTAssertLessThanOrEqual(frame.count, 64) }
            XCTAssertLessThanOrEqual(decoder.pendingCount, 66)
        }
        XCTAssertGreaterThan(decoder.drops.total, 0)
    }

    /// The serial bridge path: a CoAP request framed, sent in odd chunks, unframed and decoded.
    func testCoAPOverSLIP() throws {
        var request = CoAPMessage(type: .confirmable, code: .post, messageID: 0xC0DB, token: [0xC0, 0xDB])
        request.setUriPath(DeviceResources.transaction)
        request.contentFormat = ContentFormat.chainPayload
        request.payload = [UInt8](repeating: 0xC0, count: 100) + [UInt8](repeating: 0xDB, count: 100)
        let stream = SLIP.encodeFrame(request.encode())
        var decoder = SLIPDecoder()
        var frames: [[UInt8]] = []
        var index = 0
        var size = 1
        while index < stream.count {
            let end = min(index + size, stream.count)
            frames += decoder.feed(Array(stream[index..<end]))
            index = end
            size = size % 7 + 1
        }
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(try CoAPMessage.decode(frames[0]), request)
    }
}
