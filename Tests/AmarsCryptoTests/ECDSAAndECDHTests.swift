import AmarsCodec
import XCTest

@testable import AmarsCrypto

/// ECDSA (certificates), ECDH and additive tweaks (payment codes) through libsecp256k1.
final class ECDSAAndECDHTests: XCTestCase {
    static let order = hex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")

    // MARK: ECDSA

    /// RFC 6979 secp256k1/SHA-256 vectors circulated in the Bitcoin community (see Vectors/SOURCES.md), given
    /// there as compact r‖s in low-S form; the digest is SHA-256 of the ASCII message.
    func testRFC6979Vectors() throws {
        let vectors: [(key: String, digest: String, r: String, s: String)] = [
            (  // key 1, "Satoshi Nakamoto"
                "0000000000000000000000000000000000000000000000000000000000000001",
                "a0dc65ffca799873cbea0ac274015b9526505daaaed385155425f7337704883e",
                "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8",
                "2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"
            ),
            (  // key n − 1, "Satoshi Nakamoto"
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",
                "a0dc65ffca799873cbea0ac274015b9526505daaaed385155425f7337704883e",
                "fd567d121db66e382991534ada77a6bd3106f0a1098c231e47993447cd6af2d0",
                "6b39cd0eb1bc8603e159ef5c20a5c8ad685a45b06ce9bebed3f153d10d93bed5"
            ),
            (  // "Alan Turing"
                "f8b8af8ce3c7cca5e300d33939540c10d45ce001b8f252bfbc57ba0342904181",
                "4ba38d48a60f1b29e9eb726eaff08b2e83d8d81e031666fee50e85900d7dc1ef",
                "7063ae83e7f62bbb171798131b4a0564b956930092b33b07b395615d9ec7e15c",
                "58dfcc1e00a35e1572f366ffe34ba0fc47db1e7189759b9fb233c5b05ab388ea"
            ),
        ]
        for v in vectors {
            let key = try PrivateKey(bytes: Bytes32(hex(v.key))!)
            let digest = Bytes32(hex(v.digest))!
            let der = key.signECDSA(digest: digest)
            XCTAssertEqual(der, encodeDER(r: hex(v.r), s: hex(v.s)), v.key)
            XCTAssertTrue(key.publicKey.verifyECDSA(derSignature: der, digest: digest))
            // The board's signer, without the generator table, gives the published signature too.
            XCTAssertEqual(
                TablelessECDSA.sign(secret: key.secret, publicKey: key.publicKey, digest: digest),
                encodeDER(r: hex(v.r), s: hex(v.s)), v.key)
        }
        // Key 1's public key is the generator.
        let one = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 1))
        let generator = hex("0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
        XCTAssertEqual(one.publicKey.compressed, generator)
    }

    /// The board's signer (no generator table) gives the library's signature bit for bit: the RFC 6979 vectors
    /// above, then random keys and digests, and keys at the ends of the range.
    func testTablelessSignerMatchesTheLibrary() throws {
        var rng = SystemRandomNumberGenerator()
        var keys = [
            Bytes32(w0: 0, w1: 0, w2: 0, w3: 1),
            Bytes32(
                w0: 0xFFFF_FFFF_FFFF_FFFF, w1: 0xFFFF_FFFF_FFFF_FFFE, w2: 0xBAAE_DCE6_AF48_A03B,
                w3: 0xBFD2_5E8C_D036_4140),
        ]
        for _ in 0..<40 { keys.append(Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next())) }
        var checked = 0
        for secret in keys {
            guard let key = try? PrivateKey(bytes: secret) else { continue }
            for digest in [
                Bytes32(hex("a0dc65ffca799873cbea0ac274015b9526505daaaed385155425f7337704883e"))!,
                Bytes32(w0: ~0, w1: ~0, w2: ~0, w3: ~0),
                Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next()),
            ] {
                let tableless = try XCTUnwrap(
                    TablelessECDSA.sign(secret: secret, publicKey: key.publicKey, digest: digest))
                XCTAssertEqual(tableless, key.signECDSA(digest: digest), "key \(Hex.encode(secret.bytes))")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 120)
        // A public key that is not the secret's: the signature does not verify, and none is handed out.
        let one = Bytes32(w0: 0, w1: 0, w2: 0, w3: 1)
        let other = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 2))
        XCTAssertNil(TablelessECDSA.sign(secret: one, publicKey: other.publicKey, digest: one))
        XCTAssertNil(TablelessECDSA.sign(secret: .zero, publicKey: other.publicKey, digest: one))
        // The inverse is one: x · x⁻¹ = 1 mod n.
        for _ in 0..<8 {
            let x = TablelessSchnorr.reducedModOrder(
                Bytes32(w0: rng.next(), w1: rng.next(), w2: rng.next(), w3: rng.next()))
            XCTAssertEqual(TablelessSchnorr.product(x, TablelessECDSA.inverse(x)), one)
        }
    }

    func testRoundTripWrongDigestWrongKey() throws {
        for seed: UInt64 in [1, 2, 0xFFFF_FFFF, 0x0123_4567_89AB_CDEF] {
            let key = try PrivateKey(bytes: Bytes32(w0: seed, w1: ~seed, w2: seed, w3: 42))
            let digest = Bytes32(w0: seed &* 31, w1: 7, w2: 8, w3: 9)
            let der = key.signECDSA(digest: digest)
            XCTAssertLessThanOrEqual(der.count, 72)
            XCTAssertEqual(der, key.signECDSA(digest: digest), "RFC 6979 is deterministic")
            XCTAssertTrue(key.publicKey.verifyECDSA(derSignature: der, digest: digest))
            XCTAssertFalse(key.publicKey.verifyECDSA(derSignature: der, digest: Bytes32(w0: 0, w1: 7, w2: 8, w3: 9)))
            let other = try PrivateKey(bytes: Bytes32(w0: seed, w1: seed, w2: seed, w3: 43))
            XCTAssertFalse(other.publicKey.verifyECDSA(derSignature: der, digest: digest))
            let (r, s) = decodeDER(der)
            XCTAssertLessThan(compare(s, halfOrder), 1, "libsecp256k1 signs low-S")
            _ = r
        }
    }

    func testHighSRejected() throws {
        let key = try PrivateKey(bytes: Bytes32(w0: 5, w1: 6, w2: 7, w3: 8))
        let digest = Bytes32(w0: 1, w1: 1, w2: 1, w3: 1)
        let (r, s) = decodeDER(key.signECDSA(digest: digest))
        let highS = subtract(Self.order, s)  // (r, n − s) is mathematically valid but malleable
        XCTAssertEqual(compare(highS, halfOrder), 1)
        XCTAssertFalse(key.publicKey.verifyECDSA(derSignature: encodeDER(r: r, s: highS), digest: digest))
        XCTAssertTrue(key.publicKey.verifyECDSA(derSignature: encodeDER(r: r, s: s), digest: digest))
    }

    func testMalformedDERRejected() throws {
        let key = try PrivateKey(bytes: Bytes32(w0: 5, w1: 6, w2: 7, w3: 8))
        let digest = Bytes32(w0: 2, w1: 2, w2: 2, w3: 2)
        let der = key.signECDSA(digest: digest)
        let (r, s) = decodeDER(der)
        let pub = key.publicKey
        XCTAssertTrue(pub.verifyECDSA(derSignature: der, digest: digest))

        var wrongTag = der
        wrongTag[0] = 0x31
        var wrongLength = der
        wrongLength[1] &+= 1
        var wrongIntegerTag = der
        wrongIntegerTag[2] = 0x03
        // r with a superfluous leading zero (non-minimal integer), lengths adjusted so the rest is well formed.
        let rPadded: [UInt8] = [0x00] + (r.first! & 0x80 == 0 ? r : [0x00] + r)
        let paddedR =
            [0x30, UInt8(2 + rPadded.count + 2 + s.count), 0x02, UInt8(rPadded.count)] + rPadded
            + [0x02, UInt8(s.count)] + s
        // Length in long form (0x81 xx) where the short form is required.
        let longForm = [0x30, 0x81, der[1]] + der[2...]
        // r = n (out of range): libsecp256k1 parses it as zero, the wrapper must still refuse.
        let rIsOrder = encodeDER(r: Self.order, s: s)
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated", Array(der.dropLast())),
            ("trailing byte", der + [0x00]),
            ("wrong sequence tag", wrongTag),
            ("wrong sequence length", wrongLength),
            ("wrong integer tag", wrongIntegerTag),
            ("non-minimal r", paddedR),
            ("long-form length", longForm),
            ("r = n", rIsOrder),
            ("compact 64 bytes", r.suffix(32) + s.suffix(32)),
            ("73 bytes", der + [UInt8](repeating: 0, count: 73 - der.count)),
        ]
        for (name, bytes) in cases {
            XCTAssertFalse(pub.verifyECDSA(derSignature: bytes, digest: digest), name)
        }
    }

    // MARK: ECDH

    func testECDHCommutes() throws {
        let keys = try [1, 2, 3, 0xFEED_FACE, 0x7FFF_FFFF_FFFF].map { (seed: UInt64) in
            try PrivateKey(bytes: Bytes32(w0: seed >> 3, w1: seed, w2: ~seed, w3: seed &* 3))
        }
        for a in keys {
            for b in keys {
                XCTAssertEqual(a.ecdh(b.publicKey), b.ecdh(a.publicKey))
            }
        }
        XCTAssertNotEqual(keys[0].ecdh(keys[1].publicKey), keys[0].ecdh(keys[2].publicKey))
    }

    /// Published value from the secp256k1-php extension's tests, which call libsecp256k1's default ECDH hash.
    func testECDHPublishedValue() throws {
        let a = try PrivateKey(bytes: Bytes32([UInt8](repeating: 0x41, count: 32))!)
        let b = try PrivateKey(bytes: Bytes32([UInt8](repeating: 0x40, count: 32))!)
        let expected = Bytes32(hex("238c14f420887f8e9bfa78bc9bdded1975f0bb6384e33b4ebbf7a8c776844aec"))!
        XCTAssertEqual(b.ecdh(a.publicKey), expected)
        XCTAssertEqual(a.ecdh(b.publicKey), expected)
    }

    // MARK: Tweaks and public keys

    func testAdditiveTweakMatchesPublicTweak() throws {
        let tweaks = [
            Bytes32(w0: 0, w1: 0, w2: 0, w3: 1),
            Bytes32(hex("E8F791FF9225A2AF0102AFFF4A9A723D9612A682A25EBE79802B263CDFCD83BB"))!,
            Bytes32(decrementBytes(Self.order))!,
        ]
        for seed: UInt64 in [9, 0xC0FFEE, 0xFFFF_FFFF_0000_0001] {
            let key = try PrivateKey(bytes: Bytes32(w0: seed, w1: 1, w2: seed, w3: 2))
            for tweak in tweaks {
                let tweakedKey = try key.tweakAdded(tweak)
                XCTAssertEqual(tweakedKey.publicKey, try key.publicKey.tweakAdded(tweak))
                // Also (b + t)·G == B + T with T = t·G through point addition.
                let tPoint = try PrivateKey(bytes: tweak).publicKey
                XCTAssertEqual(tweakedKey.publicKey, try key.publicKey.adding(tPoint))
            }
            // Tweak 0 is the identity.
            XCTAssertEqual(try key.tweakAdded(.zero).secret, key.secret)
        }
    }

    func testTweaksOutOfRangeOrToZeroRejected() throws {
        let one = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 1))
        let three = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 3))
        let n = Bytes32(Self.order)!
        let nMinus3 = Bytes32(subtract(Self.order, hex(String(repeating: "0", count: 63) + "3")))!
        let allOnes = Bytes32([UInt8](repeating: 0xFF, count: 32))!
        for (name, attempt) in [
            ("secret + n", { _ = try three.tweakAdded(n) }),
            ("secret + 2^256 − 1", { _ = try three.tweakAdded(allOnes) }),
            ("3 + (n − 3) = 0", { _ = try three.tweakAdded(nMinus3) }),
            ("P + n·G", { _ = try three.publicKey.tweakAdded(n) }),
            ("3G + (n − 3)G = ∞", { _ = try three.publicKey.tweakAdded(nMinus3) }),
            ("G + (n − 1)G = ∞", { _ = try one.publicKey.tweakAdded(Bytes32(decrementBytes(Self.order))!) }),
        ] as [(String, () throws -> Void)] {
            XCTAssertThrowsError(try attempt(), name) { XCTAssertEqual($0 as? CryptoError, .invalidTweak, name) }
        }
    }

    func testPublicKeyParsing() throws {
        let key = try PrivateKey(bytes: Bytes32(w0: 77, w1: 0, w2: 0, w3: 1))
        let encoded = key.publicKey.compressed
        XCTAssertEqual(encoded.count, 33)
        XCTAssertEqual(try PublicKey(compressed: encoded), key.publicKey)
        var negated = encoded
        negated[0] ^= 1  // same x, other y: −P
        let minus = try PublicKey(compressed: negated)
        XCTAssertNotEqual(minus, key.publicKey)
        XCTAssertEqual(minus.xOnly, key.xOnlyPublicKey)
        XCTAssertThrowsError(try key.publicKey.adding(minus)) { XCTAssertEqual($0 as? CryptoError, .invalidPublicKey) }

        let notOnCurve = hex("EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34")  // BIP340 vector 5
        let bad: [(String, [UInt8])] = [
            ("empty", []),
            ("x only", Array(encoded.dropFirst())),
            ("prefix 04", [0x04] + encoded.dropFirst()),
            ("prefix 00", [0x00] + encoded.dropFirst()),
            ("x not on curve", [0x02] + notOnCurve),
            ("x >= p", [0x02] + [UInt8](repeating: 0xFF, count: 32)),
            ("trailing byte", encoded + [0]),
        ]
        for (name, bytes) in bad {
            XCTAssertThrowsError(try PublicKey(compressed: bytes), name) {
                XCTAssertEqual($0 as? CryptoError, .invalidPublicKey, name)
            }
        }
        XCTAssertThrowsError(try XOnlyPublicKey(bytes: Bytes32(notOnCurve)!)) {
            XCTAssertEqual($0 as? CryptoError, .invalidPublicKey)
        }
    }

    // MARK: helpers

    var halfOrder: [UInt8] { hex("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0") }
}

// MARK: - test helpers (no dependency on the Hex module)

fileprivate func hex(_ text: String) -> [UInt8] {
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    let chars = Array(text.utf8)
    precondition(chars.count % 2 == 0, "odd hex length")
    var out: [UInt8] = []
    var i = 0
    while i < chars.count {
        guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { preconditionFailure("bad hex") }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// Minimal DER INTEGER body: no superfluous leading zeros, one 0x00 when the top bit is set.
fileprivate func derInteger(_ value: [UInt8]) -> [UInt8] {
    var body = Array(value.drop { $0 == 0 })
    if body.isEmpty { body = [0] }
    if body[0] & 0x80 != 0 { body.insert(0, at: 0) }
    return [0x02, UInt8(body.count)] + body
}

fileprivate func encodeDER(r: [UInt8], s: [UInt8]) -> [UInt8] {
    let content = derInteger(r) + derInteger(s)
    return [0x30, UInt8(content.count)] + content
}

/// Splits a canonical DER signature into 32-byte r and s (test input only, so it traps on anything else).
fileprivate func decodeDER(_ der: [UInt8]) -> (r: [UInt8], s: [UInt8]) {
    precondition(der[0] == 0x30 && der[2] == 0x02)
    let rLength = Int(der[3])
    let r = Array(der[4..<(4 + rLength)])
    precondition(der[4 + rLength] == 0x02)
    let sLength = Int(der[5 + rLength])
    let s = Array(der[(6 + rLength)..<(6 + rLength + sLength)])
    func widen(_ v: [UInt8]) -> [UInt8] {
        let trimmed = Array(v.drop { $0 == 0 })
        return [UInt8](repeating: 0, count: 32 - trimmed.count) + trimmed
    }
    return (widen(r), widen(s))
}

/// a − b for 32-byte big-endian values with a >= b.
fileprivate func subtract(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    var borrow = 0
    for i in (0..<32).reversed() {
        var d = Int(a[i]) - Int(b[i]) - borrow
        borrow = d < 0 ? 1 : 0
        if d < 0 { d += 256 }
        out[i] = UInt8(d)
    }
    precondition(borrow == 0)
    return out
}

fileprivate func decrementBytes(_ value: [UInt8]) -> [UInt8] {
    subtract(value, [UInt8](repeating: 0, count: 31) + [1])
}

/// -1, 0 or 1 as a <, ==, > b for equal-length big-endian values.
fileprivate func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
    for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
    return 0
}
