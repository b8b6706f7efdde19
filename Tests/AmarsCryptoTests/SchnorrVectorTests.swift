import AmarsCodec
import Foundation
import XCTest

@testable import AmarsCrypto

/// BIP340 against the official test vectors (bitcoin/bips bip-0340/test-vectors.csv, 2023 revision with
/// variable-length messages), plus the contracts of key parsing and x-only tweaks.
final class SchnorrVectorTests: XCTestCase {
    /// The resource holding the final BIP340 vectors; see Vectors/SOURCES.md for why it is not
    /// `bip340_test_vectors.csv`.
    static let vectorResource = "bip340_test_vectors"

    struct Row {
        let index: Int
        let secretKey: [UInt8]
        let publicKey: [UInt8]
        let auxRandom: [UInt8]
        let message: [UInt8]
        let signature: [UInt8]
        let valid: Bool
        let comment: String
    }

    static func loadRows() throws -> [Row] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: Self.vectorResource, withExtension: "csv", subdirectory: "Vectors"))
        let text = try String(contentsOf: url, encoding: .utf8)
        var rows: [Row] = []
        // The upstream file has CRLF endings; "\r\n" is one Character, which `isNewline` matches.
        for trimmed in text.split(whereSeparator: \.isNewline).dropFirst() {
            let f = trimmed.split(separator: ",", maxSplits: 7, omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(f.count, 8, "malformed row: \(trimmed)")
            guard f.count == 8, let index = Int(f[0]) else { continue }
            rows.append(
                Row(
                    index: index, secretKey: hex(f[1]), publicKey: hex(f[2]), auxRandom: hex(f[3]),
                    message: hex(f[4]), signature: hex(f[5]), valid: f[6] == "TRUE", comment: f[7]))
        }
        return rows
    }

    func testEveryOfficialVector() throws {
        let rows = try Self.loadRows()
        XCTAssertEqual(rows.count, 19, "expected vectors 0...18")
        var signed = 0
        var rejectedKeys = 0
        for row in rows {
            let label = "vector \(row.index) (\(row.comment))"
            let signature = try XCTUnwrap(Bytes64(row.signature), label)
            let publicBytes = try XCTUnwrap(Bytes32(row.publicKey), label)

            if !row.secretKey.isEmpty {
                let key = try PrivateKey(bytes: XCTUnwrap(Bytes32(row.secretKey), label))
                XCTAssertEqual(key.xOnlyPublicKey.bytes, publicBytes, label)
                let aux = try XCTUnwrap(Bytes32(row.auxRandom), label)
                XCTAssertEqual(key.signSchnorr(message: row.message, auxRandom: aux), signature, label)
                if let message32 = Bytes32(row.message) {
                    XCTAssertEqual(key.signSchnorr(message32, auxRandom: aux), signature, label)
                }
                signed += 1
            }

            // Only vectors whose key is not a valid x coordinate may fail at parsing; all others must parse and
            // then give exactly the listed verification result.
            let keyIsInvalid = row.comment.hasPrefix("public key")
            do throws(CryptoError) {
                let key = try XOnlyPublicKey(bytes: publicBytes)
                XCTAssertFalse(keyIsInvalid, "\(label): key parsed but the vector says it is invalid")
                XCTAssertEqual(key.verifySchnorr(signature, message: row.message), row.valid, label)
                if let message32 = Bytes32(row.message) {
                    XCTAssertEqual(key.verifySchnorr(signature, message: message32), row.valid, label)
                }
            } catch {
                XCTAssertEqual(error, .invalidPublicKey, label)
                XCTAssertTrue(keyIsInvalid, "\(label): valid key refused")
                XCTAssertFalse(row.valid, label)
                rejectedKeys += 1
            }
        }
        XCTAssertEqual(signed, 8)  // vectors 0-3 and 15-18 carry a secret key
        XCTAssertEqual(rejectedKeys, 2)  // vectors 5 and 14
    }

    func testSecretKeyRange() throws {
        let n = hex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
        for bad in [[UInt8](repeating: 0, count: 32), n, increment(n), [UInt8](repeating: 0xFF, count: 32)] {
            XCTAssertThrowsError(try PrivateKey(bytes: Bytes32(bad)!)) {
                XCTAssertEqual($0 as? CryptoError, .invalidPrivateKey)
            }
        }
        XCTAssertNoThrow(try PrivateKey(bytes: Bytes32(decrement(n))!))
        XCTAssertNoThrow(try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 1)))
    }

    func testRoundTripAndTampering() throws {
        let secret = hex("B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFEF")
        let key = try PrivateKey(bytes: Bytes32(secret)!)
        let message = Bytes32(w0: 1, w1: 2, w2: 3, w3: 4)
        let signature = key.signSchnorr(message, auxRandom: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9))
        let publicKey = key.xOnlyPublicKey
        XCTAssertTrue(publicKey.verifySchnorr(signature, message: message))
        XCTAssertTrue(publicKey.verifySchnorr(signature, message: message.bytes))
        XCTAssertFalse(publicKey.verifySchnorr(signature, message: Bytes32(w0: 1, w1: 2, w2: 3, w3: 5)))
        XCTAssertFalse(publicKey.verifySchnorr(signature, message: message.bytes + [0]))
        var flipped = signature
        flipped.second.w3 ^= 1
        XCTAssertFalse(publicKey.verifySchnorr(flipped, message: message))
        let other = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 3)).xOnlyPublicKey
        XCTAssertFalse(other.verifySchnorr(signature, message: message))
        // Same key through the compressed form.
        XCTAssertEqual(key.publicKey.xOnly, publicKey)
        XCTAssertEqual(key.publicKey.x, publicKey.bytes)
    }

    func testSecretNeverPrinted() throws {
        let key = try PrivateKey(bytes: Bytes32(w0: 0xDEAD_BEEF, w1: 0, w2: 0, w3: 0x1234_5678))
        for text in [String(describing: key), String(reflecting: key), "\(key)"] {
            XCTAssertFalse(text.lowercased().contains("deadbeef"), text)
            XCTAssertFalse(text.contains("3735928559"), text)  // 0xDEADBEEF in decimal
            XCTAssertFalse(text.contains("secret"), text)
        }
        var dumped = ""
        dump(key, to: &dumped)
        XCTAssertFalse(dumped.contains("3735928559"), dumped)
    }

    /// keypair_xonly_tweak_add semantics: the tweaked x-only key is lift_x(P) + t·G, whatever P's parity.
    func testXOnlyTweak() throws {
        let tweak = Bytes32(hex("E8F791FF9225A2AF0102AFFF4A9A723D9612A682A25EBE79802B263CDFCD83BB"))!
        for seed: UInt64 in [3, 5, 7, 11, 0xABCDEF] {
            let key = try PrivateKey(bytes: Bytes32(w0: seed, w1: seed, w2: seed, w3: seed))
            let evenLift = try PublicKey(compressed: [0x02] + key.xOnlyPublicKey.bytes.bytes)
            let tweaked = try key.xOnlyTweakAdded(tweak)
            XCTAssertEqual(tweaked.publicKey, try evenLift.tweakAdded(tweak), "seed \(seed)")
            if key.publicKey.parityPrefix == 0x02 {
                XCTAssertEqual(tweaked.secret, try key.tweakAdded(tweak).secret)
            }
            let message = Bytes32(w0: seed, w1: 0, w2: 0, w3: 0)
            let signature = tweaked.signSchnorr(message, auxRandom: .zero)
            XCTAssertTrue(tweaked.xOnlyPublicKey.verifySchnorr(signature, message: message))
        }
        let key = try PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 3))
        let n = hex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
        XCTAssertThrowsError(try key.xOnlyTweakAdded(Bytes32(n)!)) { XCTAssertEqual($0 as? CryptoError, .invalidTweak) }
        // 3·G has even y, so the tweak n − 3 brings the secret to zero.
        XCTAssertEqual(key.publicKey.parityPrefix, 0x02)
        let minusThree = Bytes32(hex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD036413E"))!
        XCTAssertThrowsError(try key.xOnlyTweakAdded(minusThree)) { XCTAssertEqual($0 as? CryptoError, .invalidTweak) }
    }
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
    out.reserveCapacity(chars.count / 2)
    var i = 0
    while i < chars.count {
        guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { preconditionFailure("bad hex") }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

fileprivate func increment(_ value: [UInt8]) -> [UInt8] {
    var out = value
    for i in out.indices.reversed() {
        out[i] &+= 1
        if out[i] != 0 { break }
    }
    return out
}

fileprivate func decrement(_ value: [UInt8]) -> [UInt8] {
    var out = value
    for i in out.indices.reversed() {
        out[i] &-= 1
        if out[i] != 0xFF { break }
    }
    return out
}
