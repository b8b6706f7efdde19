import AmarsTestSupport
import XCTest

@testable import DeviceProtocol

final class BlockOptionTests: XCTestCase {
    func testValueEncodingBoundaries() throws {
        let cases: [(UInt32, Bool, UInt8, [UInt8])] = [
            (0, false, 0, []),  // 0/0/16 is the empty value
            (0, false, 6, [0x06]),
            (0, true, 2, [0x0A]),
            (15, true, 6, [0xFE]),  // largest NUM in one byte
            (16, false, 0, [0x01, 0x00]),  // smallest in two
            (4095, true, 6, [0xFF, 0xFE]),
            (4096, false, 1, [0x01, 0x00, 0x01]),
            (BlockOption.maxNumber, true, 6, [0xFF, 0xFF, 0xFE]),
        ]
        for (number, more, szx, value) in cases {
            let block = BlockOption(number: number, more: more, szx: szx)
            let option = block.option(.block2)
            XCTAssertEqual(option.value, value, "\(number)/\(more)/\(szx)")
            XCTAssertEqual(try BlockOption(option: option), block)
        }
        XCTAssertEqual(BlockOption(number: 3, more: true, szx: 3).option(.block1).value, [0x3B])
        // Non-minimal values decode to the same block.
        XCTAssertEqual(
            try BlockOption(option: CoAPOption(number: .block2, value: [0, 0, 0x16])),
            BlockOption(number: 1, more: false, szx: 6))
    }

    func testBadValues() {
        XCTAssertThrowsError(try BlockOption(option: CoAPOption(number: .block1, value: [0x07]))) {
            XCTAssertEqual($0 as? CoAPError, .reservedBlockSize)
            XCTAssertEqual(($0 as? CoAPError)?.responseCode, .badRequest)
        }
        XCTAssertThrowsError(try BlockOption(option: CoAPOption(number: .block2, value: [0xFF, 0xFF, 0xFF]))) {
            XCTAssertEqual($0 as? CoAPError, .reservedBlockSize)
        }
        XCTAssertThrowsError(try BlockOption(option: CoAPOption(number: .block1, value: [0, 0, 0, 0x16]))) {
            XCTAssertEqual($0 as? CoAPError, .optionValueLength(number: 27))
        }
    }

    func testSizes() {
        XCTAssertEqual(BlockOption(number: 0, more: false, szx: 0).size, 16)
        XCTAssertEqual(BlockOption(number: 0, more: false, szx: 6).size, 1024)
        XCTAssertEqual(BlockOption(number: BlockOption.maxNumber, more: false, szx: 6).offset, 0xF_FFFF * 1024)
        XCTAssertEqual(BlockOption.szx(forSize: 16), 0)
        XCTAssertEqual(BlockOption.szx(forSize: 1024), 6)
        XCTAssertNil(BlockOption.szx(forSize: 2048))
        XCTAssertNil(BlockOption.szx(forSize: 100))
        XCTAssertEqual(BlockOption.negotiatedSZX(requested: 6, preferred: 4), 4)
        XCTAssertEqual(BlockOption.negotiatedSZX(requested: 2, preferred: 4), 2)
        XCTAssertEqual(BlockOption.negotiatedSZX(requested: nil, preferred: 4), 4)
    }

    func testBlock2Slicing() throws {
        var rng = SplitMix64(seed: 7)
        let payload = rng.bytes(2500)
        XCTAssertEqual(BlockOption.blockCount(totalSize: 2500, szx: 6), 3)
        var rebuilt: [UInt8] = []
        for number in 0..<3 {
            let (option, block) = try BlockOption.block2(UInt32(number), of: payload, szx: 6)
            XCTAssertEqual(option.number, UInt32(number))
            XCTAssertEqual(option.more, number < 2)
            XCTAssertEqual(block.count, number < 2 ? 1024 : 452)
            rebuilt += block
        }
        XCTAssertEqual(rebuilt, payload)
        XCTAssertThrowsError(try BlockOption.block2(3, of: payload, szx: 6)) {
            XCTAssertEqual($0 as? CoAPError, .blockOutOfRange)
            XCTAssertEqual(($0 as? CoAPError)?.responseCode, .badOption)
        }
        // Exact multiple: the last block is full and has M = 0; there is no empty block after it.
        let even = [UInt8](repeating: 1, count: 2048)
        XCTAssertEqual(try BlockOption.block2(1, of: even, szx: 6).option.more, false)
        XCTAssertThrowsError(try BlockOption.block2(2, of: even, szx: 6))
        // An empty body is one empty block.
        let empty = try BlockOption.block2(0, of: [], szx: 2)
        XCTAssertEqual(empty.bytes, [])
        XCTAssertFalse(empty.option.more)
        XCTAssertThrowsError(try BlockOption.block2(0, of: payload, szx: 7))
    }

    /// A whole Block2 exchange through real messages: the response fits the 1152-byte cap at SZX 6.
    func testBlock2ResponsesFitTheMessageCap() throws {
        let body = [UInt8](repeating: 0xC0, count: BlockOption.blockwiseThreshold * 3 + 1)
        let count = BlockOption.blockCount(totalSize: body.count, szx: 6)
        var received: [UInt8] = []
        for number in 0..<count {
            let (block, bytes) = try BlockOption.block2(UInt32(number), of: body, szx: 6)
            var response = CoAPMessage(
                type: .acknowledgement, code: .content, messageID: UInt16(number), token: [1, 2, 3, 4, 5, 6, 7, 8],
                payload: bytes)
            response.contentFormat = ContentFormat.chainPayload
            response.addOption(block.option(.block2))
            response.setUIntOption(.size2, UInt32(body.count))
            let wire = response.encode()
            XCTAssertLessThanOrEqual(wire.count, CoAPMessage.maxMessageSize)
            let decoded = try CoAPMessage.decode(wire)
            let option = try BlockOption(option: XCTUnwrap(decoded.option(.block2)))
            XCTAssertEqual(option.offset, received.count)
            received += decoded.payload
            XCTAssertEqual(option.more, number + 1 < count)
        }
        XCTAssertEqual(received, body)
    }
}

final class BlockAssemblerTests: XCTestCase {
    private func blocks(of body: [UInt8], szx: UInt8) -> [(BlockOption, [UInt8])] {
        var out: [(BlockOption, [UInt8])] = []
        for number in 0..<BlockOption.blockCount(totalSize: body.count, szx: szx) {
            let slice = try! BlockOption.block2(UInt32(number), of: body, szx: szx)
            out.append((slice.option, slice.bytes))
        }
        return out
    }

    func testInOrderUpload() throws {
        var rng = SplitMix64(seed: 11)
        let body = rng.bytes(1000)
        var assembler = BlockAssembler(maxSize: 4096)
        let parts = blocks(of: body, szx: 4)  // 256-byte blocks
        for (index, (block, bytes)) in parts.enumerated() {
            let progress = try assembler.add(block, payload: bytes)
            if index + 1 < parts.count {
                XCTAssertEqual(progress, .needMore(block))
                XCTAssertFalse(assembler.isComplete)
            } else {
                XCTAssertEqual(progress, .complete(block))
            }
        }
        XCTAssertEqual(assembler.takeBody(), body)
        XCTAssertFalse(assembler.isStarted)
        XCTAssertNil(assembler.takeBody())
    }

    func testOutOfOrderIsRequestEntityIncomplete() throws {
        let parts = blocks(of: [UInt8](repeating: 5, count: 100), szx: 0)
        var assembler = BlockAssembler(maxSize: 1000)
        _ = try assembler.add(parts[0].0, payload: parts[0].1)
        XCTAssertThrowsError(try assembler.add(parts[2].0, payload: parts[2].1)) {
            XCTAssertEqual($0 as? CoAPError, .blockOutOfOrder)
            XCTAssertEqual(($0 as? CoAPError)?.responseCode, .requestEntityIncomplete)
        }
        XCTAssertFalse(assembler.isStarted)
        // Without block 0 nothing continues.
        XCTAssertThrowsError(try assembler.add(parts[1].0, payload: parts[1].1))
        // After completion another block is out of order.
        var single = BlockAssembler(maxSize: 100)
        _ = try single.add(BlockOption(number: 0, more: false, szx: 0), payload: [1])
        XCTAssertThrowsError(try single.add(BlockOption(number: 1, more: false, szx: 0), payload: [2]))
    }

    func testWrongBlockSize() throws {
        var assembler = BlockAssembler(maxSize: 1000)
        // M = 1 but 15 bytes for a 16-byte block.
        XCTAssertThrowsError(
            try assembler.add(BlockOption(number: 0, more: true, szx: 0), payload: [UInt8](repeating: 0, count: 15))
        ) {
            XCTAssertEqual($0 as? CoAPError, .blockSizeMismatch)
            XCTAssertEqual(($0 as? CoAPError)?.responseCode, .requestEntityIncomplete)
        }
        // Final block longer than its size.
        XCTAssertThrowsError(
            try assembler.add(BlockOption(number: 0, more: false, szx: 0), payload: [UInt8](repeating: 0, count: 17)))
        // Final block shorter is fine.
        XCTAssertEqual(
            try assembler.add(BlockOption(number: 0, more: false, szx: 0), payload: [1, 2, 3]),
            .complete(BlockOption(number: 0, more: false, szx: 0)))
    }

    func testOverCapIsRequestEntityTooLarge() throws {
        var assembler = BlockAssembler(maxSize: 40)
        let block = { (n: UInt32, more: Bool) in BlockOption(number: n, more: more, szx: 0) }
        _ = try assembler.add(block(0, true), payload: [UInt8](repeating: 1, count: 16))
        _ = try assembler.add(block(1, true), payload: [UInt8](repeating: 2, count: 16))
        XCTAssertThrowsError(try assembler.add(block(2, true), payload: [UInt8](repeating: 3, count: 16))) {
            XCTAssertEqual($0 as? CoAPError, .entityTooLarge)
            XCTAssertEqual(($0 as? CoAPError)?.responseCode, .requestEntityTooLarge)
        }
        XCTAssertLessThanOrEqual(assembler.body.count, 40)
        // Exactly at the cap is accepted.
        _ = try assembler.add(block(0, true), payload: [UInt8](repeating: 1, count: 16))
        _ = try assembler.add(block(1, true), payload: [UInt8](repeating: 2, count: 16))
        XCTAssertEqual(
            try assembler.add(block(2, false), payload: [UInt8](repeating: 3, count: 8)), .complete(block(2, false)))
        XCTAssertEqual(assembler.body.count, 40)
        // An announced Size1 over the cap is refused before any data is stored.
        var announced = BlockAssembler(maxSize: 40)
        XCTAssertThrowsError(try announced.add(block(0, true), payload: [UInt8](repeating: 1, count: 16), size1: 41)) {
            XCTAssertEqual($0 as? CoAPError, .entityTooLarge)
        }
        XCTAssertEqual(announced.body.count, 0)
    }

    func testRetransmittedLastBlockIsAnsweredAgain() throws {
        var assembler = BlockAssembler(maxSize: 100)
        let first = BlockOption(number: 0, more: true, szx: 0)
        let second = BlockOption(number: 1, more: true, szx: 0)
        let data0 = [UInt8](repeating: 1, count: 16)
        let data1 = [UInt8](repeating: 2, count: 16)
        _ = try assembler.add(first, payload: data0)
        XCTAssertEqual(try assembler.add(second, payload: data1), .needMore(second))
        XCTAssertEqual(try assembler.add(second, payload: data1), .needMore(second))
        XCTAssertEqual(assembler.body, data0 + data1)
        // Same number with different bytes is not a retransmission.
        XCTAssertThrowsError(try assembler.add(second, payload: [UInt8](repeating: 9, count: 16)))
    }

    func testBlockZeroRestarts() throws {
        var assembler = BlockAssembler(maxSize: 100)
        _ = try assembler.add(BlockOption(number: 0, more: true, szx: 0), payload: [UInt8](repeating: 1, count: 16))
        _ = try assembler.add(BlockOption(number: 0, more: false, szx: 0), payload: [7])
        XCTAssertEqual(assembler.body, [7])
        XCTAssertTrue(assembler.isComplete)
    }

    /// RFC 7959 §2.5 / Figure 5: the client starts with 128-byte blocks, the server wants 32; its 2.31 says so
    /// and the client continues at NUM 4 of the smaller size.
    func testServerAsksForSmallerBlocks() throws {
        var rng = SplitMix64(seed: 3)
        let body = rng.bytes(200)
        var assembler = BlockAssembler(maxSize: 1000, preferredSZX: 1)
        let first = BlockOption(number: 0, more: true, szx: 3)
        XCTAssertEqual(
            try assembler.add(first, payload: Array(body[0..<128])),
            .needMore(BlockOption(number: 0, more: true, szx: 1)))
        XCTAssertEqual(
            try assembler.add(BlockOption(number: 4, more: true, szx: 1), payload: Array(body[128..<160])),
            .needMore(BlockOption(number: 4, more: true, szx: 1)))
        XCTAssertEqual(
            try assembler.add(BlockOption(number: 5, more: true, szx: 1), payload: Array(body[160..<192])),
            .needMore(BlockOption(number: 5, more: true, szx: 1)))
        XCTAssertEqual(
            try assembler.add(BlockOption(number: 6, more: false, szx: 1), payload: Array(body[192...])),
            .complete(BlockOption(number: 6, more: false, szx: 1)))
        XCTAssertEqual(assembler.takeBody(), body)
    }
}
