import AmarsCodec
import AmarsTestSupport
import XCTest

@testable import AmarsCrypto

/// The board's signer (no generator table) must be BIP340 exactly: the official vectors, and the library's own
/// signer on random keys, messages and aux values, including the edge cases of the modular steps.
final class TablelessSchnorrTests: XCTestCase {
    func testOfficialSigningVectors() throws {
        let rows = try SchnorrVectorTests.loadRows().filter { !$0.secretKey.isEmpty }
        XCTAssertEqual(rows.count, 8)
        for row in rows {
            let label = "vector \(row.index) (\(row.comment))"
            let secret = try XCTUnwrap(Bytes32(row.secretKey), label)
            let point = try XCTUnwrap(TablelessSchnorr.multiplyGenerator(secret), label)
            XCTAssertEqual(point.x.bytes, row.publicKey, label)
            let aux = try XCTUnwrap(Bytes32(row.auxRandom), label)
            let signature = row.message.withUnsafeBytes {
                TablelessSchnorr.sign(secret: secret, message: $0, auxRandom: aux)
            }
            XCTAssertEqual(signature?.bytes, row.signature, label)
        }
    }

    func testAgreesWithTheLibrarySignerOnRandomInputs() throws {
        var rng = SplitMix64(seed: 0x7AB1_E55)
        for round in 0..<300 {
            let secret = rng.bytes32()
            guard let key = try? PrivateKey(bytes: secret) else {
                XCTAssertNil(TablelessSchnorr.multiplyGenerator(secret))
                continue
            }
            let point = try XCTUnwrap(TablelessSchnorr.multiplyGenerator(secret))
            XCTAssertEqual(point.x, key.publicKey.x, "round \(round)")
            XCTAssertEqual(point.oddY, key.publicKey.parityPrefix == 3, "round \(round)")
            let message = rng.bytes(rng.below(80))
            let aux = rng.bytes32()
            let ours = message.withUnsafeBytes { TablelessSchnorr.sign(secret: secret, message: $0, auxRandom: aux) }
            XCTAssertEqual(ours, key.signSchnorr(message: message, auxRandom: aux), "round \(round)")
            let tweak = rng.bytes32()
            let tweaked = TablelessSchnorr.xOnlyTweaked(secret, oddY: point.oddY, tweak: tweak)
            XCTAssertEqual(tweaked, try? key.xOnlyTweakAdded(tweak).secret, "round \(round)")
        }
    }

    func testInvalidKeysAreRefused() {
        let order = TablelessSchnorr.order
        for secret in [Bytes32.zero, order, Bytes32(w0: .max, w1: .max, w2: .max, w3: .max)] {
            XCTAssertNil(TablelessSchnorr.multiplyGenerator(secret))
            XCTAssertNil(
                [UInt8]().withUnsafeBytes { TablelessSchnorr.sign(secret: secret, message: $0, auxRandom: .zero) })
        }
        // n - 1 is the largest valid key: its point is -G, the generator's x with odd y.
        var nMinusOne = order
        nMinusOne.w3 -= 1
        let point = TablelessSchnorr.multiplyGenerator(nMinusOne)
        XCTAssertEqual(point?.x, TablelessSchnorr.multiplyGenerator(Bytes32(w0: 0, w1: 0, w2: 0, w3: 1))?.x)
        XCTAssertEqual(point?.oddY, true)
        XCTAssertNil(TablelessSchnorr.xOnlyTweaked(nMinusOne, oddY: true, tweak: order))
    }

    func testModularReductionAtTheEdges() {
        let order = TablelessSchnorr.order
        let one = Bytes32(w0: 0, w1: 0, w2: 0, w3: 1)
        var nMinusOne = order
        nMinusOne.w3 -= 1
        let all = Bytes32(w0: .max, w1: .max, w2: .max, w3: .max)
        XCTAssertEqual(TablelessSchnorr.reducedModOrder(order), .zero)
        XCTAssertEqual(TablelessSchnorr.reducedModOrder(nMinusOne), nMinusOne)
        XCTAssertEqual(TablelessSchnorr.reducedModOrder(.zero), .zero)
        // 2^256 - 1 - n = 0x14551231950B75FC4402DA1732FC9BEBE (2^256 - n - 1).
        XCTAssertEqual(
            TablelessSchnorr.reducedModOrder(all),
            Bytes32(w0: 0, w1: 1, w2: 0x4551_2319_50B7_5FC4, w3: 0x402D_A173_2FC9_BEBE))
        XCTAssertEqual(TablelessSchnorr.sum(nMinusOne, one), .zero)
        XCTAssertEqual(TablelessSchnorr.negated(one), nMinusOne)
        XCTAssertEqual(TablelessSchnorr.product(nMinusOne, nMinusOne), one)  // (-1)(-1) = 1
        XCTAssertEqual(TablelessSchnorr.product(.zero, nMinusOne), .zero)
    }
}
