import AmarsCodec
import AmarsCrypto
import CSodium
import Foundation
import Ledger
import XCTest

@testable import Chain

/// The keystore's primitives against their published vectors, then the keystore's own refusals.
final class KeystoreTests: XCTestCase {
    // MARK: published vectors

    /// draft-irtf-cfrg-xchacha-03, Appendix A.3.1 (AEAD_XChaCha20_Poly1305), as read from the draft's text in
    /// github.com/bikeshedders/xchacha-rfc (draft-irtf-cfrg-xchacha-rfc-03.txt, commit 9c1dfb87); the same values
    /// appear as a hex dump in Appendix A.1.
    func testXChaCha20Poly1305MatchesTheDraftVector() throws {
        XCTAssertGreaterThanOrEqual(sodium_init(), 0)
        let plaintext = Array(
            "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
                .utf8)
        let aad = try Hex.decode("50515253c0c1c2c3c4c5c6c7")
        let key = try Hex.decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = try Hex.decode("404142434445464748494a4b4c4d4e4f5051525354555657")
        let expected = try Hex.decode(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
                + "c0875924c1c7987947deafd8780acf49")
        var sealed = [UInt8](repeating: 0, count: plaintext.count + 16)
        var count: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            &sealed, &count, plaintext, UInt64(plaintext.count), aad, UInt64(aad.count), nil, nonce, key)
        XCTAssertEqual(Int(count), expected.count)
        XCTAssertEqual(sealed, expected)
    }

    /// github.com/P-H-C/phc-winner-argon2, src/test.c, "Test Argon2id version number" (commit f57e61e1), lines 233,
    /// 241, 245 and 257: the reference encodings verify with the right password and not with another.
    func testArgon2idMatchesTheReferenceVectors() {
        XCTAssertGreaterThanOrEqual(sodium_init(), 0)
        let vectors: [(password: String, encoded: String)] = [
            ("password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"),
            ("password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"),
            ("password", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"),
            (
                "differentpassword",
                "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$C4TWUs9rDEvq7w3+J4umqA32aWKB1+DSiRuBfYxFj94"
            ),
        ]
        for v in vectors {
            XCTAssertEqual(crypto_pwhash_str_verify(v.encoded, v.password, UInt64(v.password.utf8.count)), 0, v.encoded)
            XCTAssertEqual(crypto_pwhash_str_verify(v.encoded, "passw0rd", 8), -1, v.encoded)
        }
    }

    // MARK: the keystore

    /// Cheap parameters: these tests are about the format and its refusals, not the KDF's cost.
    private func sealed(_ key: PrivateKey, _ passphrase: String = "correct horse") throws -> [UInt8] {
        try Keystore.seal(key, passphrase: passphrase, opsLimit: 1, memLimit: 64 << 10)
    }

    private func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    private func rewrite(_ bytes: [UInt8], _ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
        var object = try json(bytes)
        change(&object)
        return [UInt8](try JSONSerialization.data(withJSONObject: object))
    }

    private func refusal(_ bytes: [UInt8], _ passphrase: String = "correct horse") -> Keystore.Failure? {
        do {
            _ = try Keystore.open(bytes, passphrase: passphrase)
            return nil
        } catch { return error }
    }

    func testSealedKeyOpensWithItsPassphraseAndNamesItsAddress() throws {
        let key = KeyFile.generate()
        let file = try sealed(key)
        let opened = try Keystore.open(file, passphrase: "correct horse")
        XCTAssertEqual(opened.secret, key.secret)
        XCTAssertEqual(try json(file)["address"] as? String, Address(publicKey: key.xOnlyPublicKey).bech32)
        XCTAssertFalse(String(decoding: file, as: UTF8.self).contains(Hex.encode(key.secret.bytes)))
        // Fresh salt and nonce each time: the same key and passphrase never give the same file.
        XCTAssertNotEqual(try sealed(key), file)
    }

    func testEachDamageIsRefusedWithItsOwnReason() throws {
        let key = KeyFile.generate()
        let file = try sealed(key)
        XCTAssertEqual(refusal(file, "wrong horse"), .wrongPassphrase)
        XCTAssertEqual(refusal(file, ""), .wrongPassphrase)
        // Truncated anywhere: never parses as a whole keystore.
        for cut in [1, file.count / 3, file.count / 2, file.count - 3] {
            guard case .truncated = refusal(Array(file.prefix(cut))) else {
                return XCTFail("a keystore cut at \(cut) bytes was not refused as truncated")
            }
        }
        // One hex digit of the sealed key changed.
        let tampered = try rewrite(file) { o in
            var text = Array((o["ciphertext"] as! String).utf8)
            text[10] = text[10] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            o["ciphertext"] = String(decoding: text, as: UTF8.self)
        }
        XCTAssertEqual(refusal(tampered), .tampered)
        // Another address written in (to pass the keystore off as someone else's): bound as associated data.
        let other = Address(publicKey: KeyFile.generate().xOnlyPublicKey).bech32
        XCTAssertEqual(refusal(try rewrite(file) { $0["address"] = other }), .tampered)
        XCTAssertEqual(refusal(try rewrite(file) { $0["amarsKeystore"] = 2 }), .unsupportedVersion(2))
        guard case .unsupportedParameters = refusal(try rewrite(file) { $0["memLimit"] = 1 << 40 }) else {
            return XCTFail("a keystore asking for 1 TiB of memory was not refused")
        }
        guard case .unsupportedParameters = refusal(try rewrite(file) { $0["kdf"] = "scrypt" }) else {
            return XCTFail("an unknown KDF was not refused")
        }
        guard case .truncated = refusal(try rewrite(file) { $0["nonce"] = "00" }) else {
            return XCTFail("a short nonce was not refused")
        }
        XCTAssertThrowsError(try Keystore.seal(key, passphrase: "")) {
            XCTAssertEqual($0 as? Keystore.Failure, .emptyPassphrase)
        }
    }

    func testKeyFileReadsBothFormsAndAsksForAPassphraseOnlyForAKeystore() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keystore-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = KeyFile.generate()
        let plain = dir.appendingPathComponent("plain.key").path
        let sealedPath = dir.appendingPathComponent("sealed.key").path
        try KeyFile.write(key, to: plain)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: sealedPath, contents: Data(try sealed(key)))
        var asked = 0
        XCTAssertEqual(
            try KeyFile.load(plain) {
                asked += 1; return nil
            }.secret, key.secret)
        XCTAssertEqual(asked, 0)
        XCTAssertEqual(
            try KeyFile.load(sealedPath) {
                asked += 1; return "correct horse"
            }.secret, key.secret)
        XCTAssertEqual(asked, 1)
        XCTAssertThrowsError(try KeyFile.load(sealedPath)) {
            XCTAssertEqual($0 as? KeyFile.KeyFileError, .passphraseNeeded(sealedPath))
        }
        XCTAssertThrowsError(try KeyFile.load(sealedPath) { "nope" }) {
            XCTAssertEqual($0 as? KeyFile.KeyFileError, .keystore(sealedPath, .wrongPassphrase))
        }
        // Another JSON file given as a key is refused as not a key file, before any passphrase is asked.
        let genesisLike = dir.appendingPathComponent("genesis.json").path
        FileManager.default.createFile(atPath: genesisLike, contents: Data(#"{"chainID":1}"#.utf8))
        XCTAssertThrowsError(try KeyFile.load(genesisLike) { asked += 1; return "x" }) {
            XCTAssertEqual($0 as? KeyFile.KeyFileError, .malformed(genesisLike))
        }
        XCTAssertEqual(asked, 1)
                let attributes = try FileManager.default.attributesOfItem(atPath: plain)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        // The environment's passphrase: a file's first line wins over the variable.
        let passFile = dir.appendingPathComponent("pass.txt").path
        FileManager.default.createFile(atPath: passFile, contents: Data("from file\nsecond line\n".utf8))
        XCTAssertEqual(
            KeyFile.environmentPassphrase(["AMARS_PASSPHRASE_FILE": passFile, "AMARS_PASSPHRASE": "var"]), "from file")
        XCTAssertEqual(KeyFile.environmentPassphrase(["AMARS_PASSPHRASE": "var"]), "var")
        XCTAssertNil(KeyFile.environmentPassphrase([:]))
    }
}
