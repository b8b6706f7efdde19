import AmarsCodec
import AmarsCrypto
import XCTest

@testable import Ledger

/// Canonical encoding: one encoding per value, and every other byte string refused with a typed error.
final class EncodingTests: XCTestCase {
    func testEveryTransactionKindRoundTripsAndIsCanonical() throws {
        var rng = SplitMix(seed: 1)
        for (i, payload) in Fixtures.payloads(&rng).enumerated() {
            let tx = Fixtures.signed(payload, nonce: UInt64(i))
            let bytes = tx.encoded
            let decoded = try SignedTransaction(decoding: bytes)
            XCTAssertEqual(decoded, tx)
            XCTAssertEqual(decoded.encoded, bytes)
            XCTAssertEqual(decoded.body.payload.tag, UInt8(i), "tags are fixed by kind order")
            XCTAssertNoThrow(try VerifiedTransaction(decoded), "signature of kind \(i)")
            // Every strict prefix is truncation; any extra byte is trailing.
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try SignedTransaction(decoding: Array(bytes[0..<cut])))
            }
            XCTAssertThrowsError(try SignedTransaction(decoding: bytes + [0])) {
                XCTAssertEqual($0 as? CodecError, .trailingBytes(count: 1))
            }
        }
    }

    func testVarintsAreMinimalAndBounded() throws {
        func decode(_ bytes: [UInt8]) throws -> UInt64 {
            var r = ByteReader(bytes)
            let v = try r.readVarint()
            try r.finish()
            return v
        }
        var rng = SplitMix(seed: 2)
        for _ in 0..<2000 {
            let v = rng.next() >> rng.below(64)
            var w = ByteWriter()
            w.writeVarint(v)
            XCTAssertEqual(try decode(w.bytes), v)
        }
        XCTAssertEqual(try decode([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), UInt64.max)
        XCTAssertThrowsError(try decode([0x80, 0x00])) { XCTAssertEqual($0 as? CodecError, .nonMinimalVarint) }
        XCTAssertThrowsError(try decode([0x81, 0x80, 0x00])) { XCTAssertEqual($0 as? CodecError, .nonMinimalVarint) }
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02])) {
            XCTAssertEqual($0 as? CodecError, .varintOverflow)
        }
        XCTAssertThrowsError(try decode(Array(repeating: 0x80, count: 11) + [0x01])) {
            XCTAssertEqual($0 as? CodecError, .varintOverflow)
        }
        XCTAssertThrowsError(try decode([0x80])) { XCTAssertEqual($0 as? CodecError, .truncated) }
    }

    func testLengthsOverCapsAreRefusedBeforeAllocation() throws {
        // A memo claiming 2^62 bytes.
        var w = ByteWriter()
        w.write(Address(raw: .zero))
        w.writeVarint(UInt64(5))
        w.writeVarint(UInt64(1) << 62)
        XCTAssertThrowsError(try Transfer(decoding: w.bytes)) {
            XCTAssertEqual($0 as? CodecError, .lengthOverCap(length: 1 << 62, cap: Caps.memoBytes))
        }
        // A block claiming more transactions than bytes left.
        var rng = SplitMix(seed: 3)
        var b = ByteWriter()
        b.write(Fixtures.header(&rng, height: 1, boundary: false))
        b.writeVarint(UInt64(Caps.transactionsPerBlock))
        XCTAssertThrowsError(try Block(decoding: b.bytes)) { XCTAssertEqual($0 as? CodecError, .truncated) }
        var c = ByteWriter()
        c.write(Fixtures.header(&rng, height: 1, boundary: false))
        c.writeVarint(UInt64(Caps.transactionsPerBlock + 1))
        XCTAssertThrowsError(try Block(decoding: c.bytes)) {
            XCTAssertEqual(
                $0 as? CodecError,
                .lengthOverCap(length: UInt64(Caps.transactionsPerBlock + 1), cap: Caps.transactionsPerBlock))
        }
    }

    func testDomainRulesAtDecoding() throws {
        var rng = SplitMix(seed: 4)
        // Zero transfer, unknown kind, bad flag, tip above cap, bad version.
        var zero = Fixtures.signed(.transfer(Transfer(to: rng.address(), amount: 1)), nonce: 0).encoded
        let amountOffset = 1 + 32 + 32 + 1 + 1 + 1 + 1 + 20  // version, genesis, sender, nonce 0, fee 40, tip 2, tag, to
        XCTAssertEqual(zero[amountOffset], 1)
        zero[amountOffset] = 0
        XCTAssertThrowsError(try SignedTransaction(decoding: zero)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.amount))
        }
        var unknown = Fixtures.signed(.transfer(Transfer(to: rng.address(), amount: 1)), nonce: 0).encoded
        unknown[amountOffset - 21] = 99
        XCTAssertThrowsError(try SignedTransaction(decoding: unknown)) {
            XCTAssertEqual($0 as? CodecError, .unknownTag(99))
        }
        var version = Fixtures.signed(.unstake(BucketAction(bucket: 1)), nonce: 0).encoded
        version[0] = TransactionBody.currentVersion + 1
        XCTAssertThrowsError(try SignedTransaction(decoding: version)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.version))
        }
        var stake = Stake(candidate: rng.address(), amount: 5, durationEpochs: 1, autoStake: true).encoded
        stake[stake.count - 1] = 2
        XCTAssertThrowsError(try Stake(decoding: stake)) { XCTAssertEqual($0 as? CodecError, .invalidFlag(2)) }
        var body = Fixtures.signed(.unstake(BucketAction(bucket: 1)), nonce: 0).body
        body.tipPerUnit = body.maxFeePerUnit + 1
        XCTAssertThrowsError(try TransactionBody(decoding: body.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.amount))
        }
        var badName = CandidateRegister(
            name: Array("Caps".utf8), operatorKey: .zero, rewardAddress: rng.address(), selfStake: 1, durationEpochs: 1,
            rewardShareBps: 1)
        XCTAssertThrowsError(try CandidateRegister(decoding: badName.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.text))
        }
        badName.name = Array("ok".utf8)
        badName.rewardShareBps = 10_001
        XCTAssertThrowsError(try CandidateRegister(decoding: badName.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.range))
        }
    }

    func testDoubleSignEvidenceIsCanonicalAndConflicting() throws {
        var rng = SplitMix(seed: 5)
        guard case .doubleSignEvidence(let e) = Fixtures.payloads(&rng)[14] else { return XCTFail() }
        XCTAssertTrue(e.first.verifySignature(genesis: Fixtures.genesis))
        XCTAssertFalse(e.first.verifySignature(genesis: .zero), "a vote counts only on the chain it names")
        XCTAssertEqual(try DoubleSignEvidence(decoding: e.encoded), e)
        let swapped = DoubleSignEvidence(first: e.second, second: e.first)
        XCTAssertThrowsError(try DoubleSignEvidence(decoding: swapped.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.ordering))
        }
        let same = DoubleSignEvidence(first: e.first, second: e.first)
        XCTAssertThrowsError(try DoubleSignEvidence(decoding: same.encoded))
    }

    func testHeadersBlocksCheckpointsRoundTrip() throws {
        var rng = SplitMix(seed: 6)
        for boundary in [false, true] {
            let h = Fixtures.header(&rng, height: 42, boundary: boundary)
            XCTAssertEqual(try BlockHeader(decoding: h.encoded), h)
            XCTAssertNotEqual(h.hash, Fixtures.header(&rng, height: 42, boundary: boundary).hash)
        }
        let txs = Fixtures.payloads(&rng).enumerated().map { Fixtures.signed($1, nonce: UInt64($0)) }
        let block = Block(header: Fixtures.header(&rng, height: 9, boundary: false), transactions: txs)
        XCTAssertEqual(try Block(decoding: block.encoded), block)

        let members = (0..<4).map { Committee.Member(key: Fixtures.key(UInt64($0)).xOnlyPublicKey.bytes, weight: 10) }
        let committee = try Committee(epoch: 3, members: members)
        XCTAssertEqual(try Committee(decoding: committee.encoded), committee)
        var header = Fixtures.header(&rng, height: 30, boundary: true)
        header.nextCommitteeHash = committee.hash
        let cert = CommitCertificate(height: 30, round: header.round, blockHash: header.hash, signatures: [])
        let checkpoint = Checkpoint(header: header, nextCommittee: committee, certificate: cert)
        XCTAssertEqual(try Checkpoint(decoding: checkpoint.encoded), checkpoint)
        var wrong = checkpoint
        wrong.header.nextCommitteeHash = rng.bytes32()
        XCTAssertThrowsError(try Checkpoint(decoding: wrong.encoded), "checkpoint naming another committee")
        // Duplicate members are refused.
        var dup = ByteWriter()
        dup.writeVarint(UInt64(3))
        dup.write(list: [members[0], members[0]])
        XCTAssertThrowsError(try Committee(decoding: dup.bytes)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.duplicate))
        }
    }

    /// Random mutations of valid encodings: a decoder either refuses with a typed error or accepts bytes that
    /// re-encode to exactly the input (there is no second encoding of any value). A fixed seed makes a failure
    /// reproducible; `make fuzz` runs the same property under libFuzzer for minutes.
    func testMutatedEncodingsAreRefusedOrCanonical() throws {
        var rng = SplitMix(seed: 0xA5A5)
        let txs = Fixtures.payloads(&rng).enumerated().map { Fixtures.signed($1, nonce: UInt64($0)).encoded }
        let block = Block(
            header: Fixtures.header(&rng, height: 9, boundary: true),
            transactions: Fixtures.payloads(&rng).enumerated().map { Fixtures.signed($1, nonce: UInt64($0)) }
        ).encoded
        var accepted = 0
        for i in 0..<20_000 {
            var bytes = i % 10 == 0 ? block : txs[Int(rng.below(UInt64(txs.count)))]
            for _ in 0...rng.below(3) {
                let pos = Int(rng.below(UInt64(bytes.count)))
                switch rng.below(4) {
                case 0: bytes[pos] ^= UInt8(truncatingIfNeeded: 1 << rng.below(8))
                case 1: bytes[pos] = UInt8(truncatingIfNeeded: rng.next())
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: pos)
                default: bytes.remove(at: pos)
                }
            }
            if i % 10 == 0 {
                if let b = try? Block(decoding: bytes) {
                    XCTAssertEqual(b.encoded, bytes)
                    accepted += 1
                }
            } else if let t = try? SignedTransaction(decoding: bytes) {
                XCTAssertEqual(t.encoded, bytes)
                accepted += 1
            }
        }
        XCTAssertGreaterThan(accepted, 100, "mutations of non-structural bytes should still decode")
    }
}
