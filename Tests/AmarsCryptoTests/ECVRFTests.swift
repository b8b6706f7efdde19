import AmarsCodec
import Foundation
import XCTest

@testable import AmarsCrypto

/// ECVRF-SECP256K1-SHA256-TAI (draft-06) against vechain/go-ecvrf's published vectors (see Vectors/SOURCES.md),
/// plus refusal of every kind of malformed or mismatched proof.
final class ECVRFTests: XCTestCase {
    struct Vector: Decodable {
        let sk: String
        let pk: String
        let alpha: String
        let pi: String
        let beta: String
    }

    struct Case {
        let label: String
        let key: PrivateKey
        let publicKey: PublicKey
        let alpha: [UInt8]
        let pi: [UInt8]
        let beta: Bytes32
    }

    /// The group order n, big-endian.
    static let order = try! Hex.decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")

    func loadCases() throws -> [Case] {
        let url = try XCTUnwrap(
            Bundle.module.url(
                forResource: "ecvrf_secp256k1_sha256_tai_draft06", withExtension: "json", subdirectory: "Vectors"))
        let vectors = try JSONDecoder().decode([Vector].self, from: Data(contentsOf: url))
        return try vectors.enumerated().map { index, v in
            // Secret keys are minimal hex ("01"), so they are left-padded to 32 bytes.
            let skBytes = try Hex.decode(String(repeating: "0", count: 64 - v.sk.count) + v.sk)
            let key = try PrivateKey(bytes: XCTUnwrap(Bytes32(skBytes)))
            return Case(
                label: "vector \(index) (sk \(v.sk))", key: key,
                publicKey: try PublicKey(compressed: Hex.decode(v.pk)), alpha: try Hex.decode(v.alpha),
                pi: try Hex.decode(v.pi), beta: try XCTUnwrap(Bytes32(Hex.decode(v.beta))))
        }
    }

    func testProveMatchesEveryVector() throws {
        let cases = try loadCases()
        XCTAssertEqual(cases.count, 46)
        for c in cases {
            XCTAssertEqual(c.key.publicKey, c.publicKey, c.label)
            let pi = ECVRF.prove(secretKey: c.key, alpha: c.alpha)
            XCTAssertEqual(Hex.encode(pi), Hex.encode(c.pi), c.label)
            XCTAssertEqual(ECVRF.proofToHash(pi), c.beta, c.label)
        }
    }

    func testVerifyMatchesEveryVector() throws {
        for c in try loadCases() {
            XCTAssertEqual(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: c.pi), c.beta, c.label)
        }
    }

    /// One flipped bit anywhere in Gamma, c or s must break the proof. Flips in Gamma mostly give strings that
    /// are not points; the rest give another point, and both are refused.
    func testFlippedBitsAreRefused() throws {
        for c in try loadCases() {
            for byte in 0..<ECVRF.proofLength {
                for bit in [0, 3, 7] {
                    var pi = c.pi
                    pi[byte] ^= UInt8(1 << bit)
                    XCTAssertNil(
                        ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: pi), "\(c.label) byte \(byte)")
                }
            }
        }
    }

    func testWrongAlphaAndWrongKeyAreRefused() throws {
        let cases = try loadCases()
        for (i, c) in cases.enumerated() {
            XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha + [0], pi: c.pi), c.label)
            XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: [], pi: c.pi), c.label)
            let other = cases[(i + 1) % cases.count].publicKey
            if other != c.publicKey {
                XCTAssertNil(ECVRF.verify(publicKey: other, alpha: c.alpha, pi: c.pi), c.label)
            }
        }
    }

    func testMalformedLengthsAreRefused() throws {
        let c = try XCTUnwrap(loadCases().first)
        for length in [0, 1, 33, 49, 80] {
            XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: Array(c.pi.prefix(length))))
            XCTAssertNil(ECVRF.proofToHash(Array(c.pi.prefix(length))))
        }
        XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: c.pi + [0]))
        XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: c.pi + c.pi))
        XCTAssertNil(ECVRF.proofToHash(c.pi + [0]))
    }

    func testGammaNotOnCurveIsRefused() throws {
        let c = try XCTUnwrap(loadCases().first)
        // x = 5 has no y on secp256k1 (5^3 + 7 = 132 is a non-residue mod p); x = p is out of range; prefixes
        // 0x00, 0x04 and 0x06 are not compressed encodings.
        let five = [UInt8](repeating: 0, count: 31) + [5]
        let p = try Hex.decode("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f")
        var bad: [[UInt8]] = [[2] + five, [3] + five, [2] + p, [3] + p]
        for prefix: UInt8 in [0, 4, 6, 7] { bad.append([prefix] + Array(c.pi[1..<33])) }
        for gamma in bad {
            let pi = gamma + Array(c.pi[33...])
            XCTAssertEqual(pi.count, 81)
            XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: pi), Hex.encode(gamma))
            XCTAssertNil(ECVRF.proofToHash(pi), Hex.encode(gamma))
        }
    }

    /// s = n, s = n + 1, s = 2^256 - 1 (all >= n) are refused by decoding; s = 0 and c = 0 take the zero-term
    /// paths of verify and are refused because they do not check; a zero Gamma x is not a point.
    func testOutOfRangeScalarsAreRefused() throws {
        let c = try XCTUnwrap(loadCases().first)
        let nPlusOne = Array(Self.order.dropLast()) + [Self.order[31] + 1]
        let ones = [UInt8](repeating: 0xff, count: 32)
        for s in [Self.order, nPlusOne, ones] {
            let pi = Array(c.pi[0..<49]) + s
            XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: pi))
            XCTAssertNil(ECVRF.proofToHash(pi))
        }
        let zeroS = Array(c.pi[0..<49]) + [UInt8](repeating: 0, count: 32)
        XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: zeroS))
        let zeroC = Array(c.pi[0..<33]) + [UInt8](repeating: 0, count: 16) + Array(c.pi[49...])
        XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: zeroC))
        let zeroGamma = [UInt8](repeating: 0, count: 81)
        XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: zeroGamma))
    }

    /// s = c·x makes U = s·B - c·Y the point at infinity, which libsecp256k1 cannot hold: verify must answer
    /// nil, not trap. Gamma is any valid point (here Y itself), so the proof decodes and reaches that step.
    func testPointAtInfinityIsRefused() throws {
        for c in try loadCases().prefix(4) {
            let challenge = Bytes32(w0: 0, w1: 0, w2: 0x0123_4567_89ab_cdef, w3: 0xfedc_ba98_7654_3210)
            let s = ECVRF.scalarMultiplyAdd(k: .zero, c: challenge, x: c.key.secret)
            var pi = c.publicKey.compressed + [UInt8](repeating: 0, count: 48)
            pi.withUnsafeMutableBytes { out in
                out.storeBytes(of: challenge.w2.bigEndian, toByteOffset: 33, as: UInt64.self)
                out.storeBytes(of: challenge.w3.bigEndian, toByteOffset: 41, as: UInt64.self)
                s.store(into: out, offset: 49)
            }
            XCTAssertNil(ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: pi), c.label)
            XCTAssertNotNil(ECVRF.proofToHash(pi), c.label)
        }
    }

    /// Prove/verify round trips for alphas the vectors lack (empty, long), and determinism.
    func testRoundTripAndDeterminism() throws {
        let key = try PrivateKey(bytes: Bytes32(w0: 0x0123_4567_89ab_cdef, w1: 1, w2: 2, w3: 3))
        for alpha in [[], [0], Array("amarscity epoch 7".utf8), [UInt8](repeating: 0xa5, count: 300)] {
            let pi = ECVRF.prove(secretKey: key, alpha: alpha)
            XCTAssertEqual(pi.count, 81)
            XCTAssertEqual(pi, ECVRF.prove(secretKey: key, alpha: alpha))
            let beta = try XCTUnwrap(ECVRF.verify(publicKey: key.publicKey, alpha: alpha, pi: pi))
            XCTAssertEqual(beta, ECVRF.proofToHash(pi))
        }
    }

    /// Rates for the README, printed rather than asserted: the machine is shared.
    func testPrintRates() throws {
        let c = try XCTUnwrap(loadCases().first)
        let rounds = 1000
        var start = Date()
        var sink = 0
        for i in 0..<rounds { sink &+= Int(ECVRF.prove(secretKey: c.key, alpha: c.alpha + [UInt8(i & 0xff)])[5]) }
        let proveSeconds = Date().timeIntervalSince(start)
        start = Date()
        for _ in 0..<rounds where ECVRF.verify(publicKey: c.publicKey, alpha: c.alpha, pi: c.pi) != nil { sink &+= 1 }
        let verifySeconds = Date().timeIntervalSince(start)
        print(
            "ECVRF prove \(Int(Double(rounds) / proveSeconds))/s, verify \(Int(Double(rounds) / verifySeconds))/s "
                + "(sink \(sink))")
    }
}
