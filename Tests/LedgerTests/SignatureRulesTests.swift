import AmarsCodec
import AmarsCrypto
import XCTest

@testable import Ledger

final class SignatureRulesTests: XCTestCase {
    func testTransactionSignatureCoversEveryField() throws {
        var rng = SplitMix(seed: 9)
        let tx = Fixtures.signed(.transfer(Transfer(to: rng.address(), amount: 77)), nonce: 4)
        let verified = try VerifiedTransaction(tx)
        XCTAssertEqual(verified.senderAddress, Address(publicKey: Fixtures.key(1).xOnlyPublicKey))
        XCTAssertEqual(verified.id, tx.id)
        var mutations: [SignedTransaction] = []
        var m = tx
        m.body.nonce += 1
        mutations.append(m)
        m = tx
        m.body.genesis.w3 ^= 1
        mutations.append(m)
        m = tx
        m.body.maxFeePerUnit += 1
        mutations.append(m)
        m = tx
        m.body.sender = Fixtures.key(2).xOnlyPublicKey.bytes
        mutations.append(m)
        m = tx
        m.signature.second.w3 ^= 1
        mutations.append(m)
        for (i, bad) in mutations.enumerated() {
            XCTAssertThrowsError(try VerifiedTransaction(bad), "mutation \(i)") {
                XCTAssertEqual($0 as? TransactionError, .badSignature)
            }
        }
    }

    func testCommitCertificateNeedsMoreThanTwoThirdsOfWeight() throws {
        let keys = (0..<4).map { Fixtures.key(UInt64(10 + $0)) }
        // Weights 40, 30, 20, 10: total 100, quorum needs > 66.67.
        let weights: [UInt64] = [40, 30, 20, 10]
        let committee = try Committee(
            epoch: 1, members: zip(keys, weights).map { .init(key: $0.xOnlyPublicKey.bytes, weight: $1) })
        let hash = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        func cert(_ signers: [Int], height: UInt64 = 5, forHash: Bytes32? = nil) -> CommitCertificate {
            CommitCertificate(
                height: height, round: 1, blockHash: hash,
                signatures: signers.map { i in
                    let msg = Vote.signingHash(
                        chainID: 7, genesis: Fixtures.genesis, height: 5, round: 1, step: .commit,
                        blockHash: forHash ?? hash,
                        voter: keys[i].xOnlyPublicKey.bytes)
                    return .init(memberIndex: UInt16(i), signature: keys[i].signSchnorr(msg, auxRandom: .zero))
                })
        }
        XCTAssertEqual(
            try cert([0, 1]).verify(committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: hash), 70)
        XCTAssertEqual(
            try cert([0, 2, 3]).verify(committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: hash), 70
        )
        XCTAssertThrowsError(
            try cert([0, 1].dropLast().map { $0 }).verify(
                committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: hash)
        ) {
            XCTAssertEqual($0 as? CommitCertificate.VerifyError, .noQuorum(signed: 40, total: 100))
        }
        XCTAssertThrowsError(
            try cert([1, 2, 3]).verify(committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: hash)
        ) {
            XCTAssertEqual($0 as? CommitCertificate.VerifyError, .noQuorum(signed: 60, total: 100))
        }
        XCTAssertThrowsError(
            try cert([0, 1]).verify(committee: committee, chainID: 8, genesis: Fixtures.genesis, blockHash: hash)
        ) {
            XCTAssertEqual($0 as? CommitCertificate.VerifyError, .badSignature(index: 0))
        }
        // Nor on another network with the same chain id and the same keys.
        XCTAssertThrowsError(
            try cert([0, 1]).verify(committee: committee, chainID: 7, genesis: .zero, blockHash: hash)
        ) {
            XCTAssertEqual($0 as? CommitCertificate.VerifyError, .badSignature(index: 0))
        }
        XCTAssertThrowsError(
            try cert([0, 1]).verify(committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: .zero)
        ) {
            XCTAssertEqual($0 as? CommitCertificate.VerifyError, .wrongBlock)
        }
        // Signatures made for another block hash do not count for this one.
        XCTAssertThrowsError(
            try cert([0, 1], forHash: .zero).verify(
                committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: hash))
        var outsider = cert([0, 1])
        outsider.signatures.append(.init(memberIndex: 9, signature: .zero))
        XCTAssertThrowsError(
            try outsider.verify(committee: committee, chainID: 7, genesis: Fixtures.genesis, blockHash: hash)
        ) {
            XCTAssertEqual($0 as? CommitCertificate.VerifyError, .unknownMember(index: 9))
        }
        // The same member twice cannot be encoded.
        var w = ByteWriter()
        w.writeVarint(UInt64(5))
        w.writeVarint(UInt64(1))
        w.write(hash)
        let s = cert([0]).signatures[0]
        w.write(list: [s, s])
        XCTAssertThrowsError(try CommitCertificate(decoding: w.bytes)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.ordering))
        }
    }

    func testQuorumArithmeticDoesNotOverflow() throws {
        let big = UInt64.max / 2
        let c = try Committee(
            epoch: 0,
            members: [.init(key: Bytes32(w0: 1, w1: 0, w2: 0, w3: 0), weight: big), .init(key: .zero, weight: big)])
        XCTAssertTrue(c.isQuorum(c.totalWeight))
        XCTAssertFalse(c.isQuorum(big))
        XCTAssertThrowsError(
            try Committee(
                epoch: 0,
                members: [
                    .init(key: .zero, weight: UInt64.max), .init(key: Bytes32(w0: 1, w1: 0, w2: 0, w3: 0), weight: 1),
                ])
        ) { XCTAssertEqual($0 as? Committee.BuildError, .weightOverflow) }
    }

    func testAddressesAreBech32mWithAmscPrefix() throws {
        let a = Address(publicKey: Fixtures.key(1).xOnlyPublicKey)
        XCTAssertTrue(a.bech32.hasPrefix("amsc1"))
        XCTAssertEqual(try Address(bech32: a.bech32), a)
        XCTAssertEqual(try Address(bech32: a.bech32.uppercased()), a)
        var chars = Array(a.bech32)
        chars[10] = chars[10] == "q" ? "p" : "q"
        XCTAssertThrowsError(try Address(bech32: String(chars)))
        let other = Bech32m.encode(hrp: "bc", bytes: a.raw.bytes)
        XCTAssertThrowsError(try Address(bech32: other)) { XCTAssertEqual($0 as? Bech32Error, .wrongHumanReadablePart) }
        let short = Bech32m.encode(hrp: "amsc", bytes: Array(a.raw.bytes.prefix(19)))
        XCTAssertThrowsError(try Address(bech32: short))
    }
}
