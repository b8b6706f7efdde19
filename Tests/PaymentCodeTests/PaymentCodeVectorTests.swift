import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger
import XCTest

@testable import PaymentCodes

/// BIP32 and BIP47 against their published vectors (Vectors/SOURCES.md), then every malformed code refused
/// with its own reason. P2PKH addresses in the vectors hash with RIPEMD-160, which this project does not
/// implement: `openssl dgst -ripemd160` computes it, a tool nobody here wrote.
final class PaymentCodeVectorTests: XCTestCase {
    static func resource(_ name: String) throws -> String {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Vectors"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func bip47() throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try resource("bip47").split(separator: "\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    // MARK: BIP32

    func testBIP32PublishedVectors() throws {
        var seed: [UInt8] = []
        var checked = 0
        var nodes: [String: ExtendedPrivateKey] = [:]
        var path = ""
        for line in try Self.resource("bip32").split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            switch parts[0] {
            case "seed":
                seed = try Hex.decode(parts[1])
                nodes = ["m": try ExtendedPrivateKey(seed: seed)]
            case "chain":
                path = parts[1]
                if nodes[path] == nil {
                    let parent = String(path[..<path.lastIndex(of: "/")!])
                    let last = path[path.index(after: path.lastIndex(of: "/")!)...]
                    let index =
                        last.hasSuffix("H") ? UInt32(last.dropLast())! | ExtendedPrivateKey.hardened : UInt32(last)!
                    nodes[path] = try XCTUnwrap(nodes[parent]).child(index)
                    // A non-hardened child derived from the parent's public node alone is the same key.
                    if index < ExtendedPrivateKey.hardened {
                        let fromPublic = try XCTUnwrap(nodes[parent]).publicNode.child(index)
                        XCTAssertEqual(fromPublic, nodes[path]!.publicNode, path)
                    } else {
                        XCTAssertThrowsError(try XCTUnwrap(nodes[parent]).publicNode.child(index))
                    }
                }
            case "prv", "pub":
                let raw = try XCTUnwrap(Base58Check.decode(parts[1]), parts[1])
                XCTAssertEqual(raw.count, 78)
                let node = try XCTUnwrap(nodes[path])
                XCTAssertEqual(Array(raw[13..<45]), node.chainCode.bytes, "\(path) chain code")
                if parts[0] == "prv" {
                    XCTAssertEqual(Array(raw[45..<78]), [0] + node.key.secret.bytes, "\(path) key")
                } else {
                    XCTAssertEqual(Array(raw[45..<78]), node.key.publicKey.compressed, "\(path) public key")
                }
                // The parent fingerprint: the first 4 bytes of HASH160 of the parent's public key.
                if let slash = path.lastIndex(of: "/") {
                    let parent = try XCTUnwrap(nodes[String(path[..<slash])])
                    XCTAssertEqual(
                        Array(raw[5..<9]), Array(try hash160(parent.key.publicKey.compressed).prefix(4)), path)
                }
                checked += 1
            default:
                continue
            }
        }
        XCTAssertEqual(checked, 34, "17 chains, each private and public")
    }

    // MARK: BIP47

    func testBIP39SeedsOfTheBIP47Mnemonics() throws {
        let v = try Self.bip47()
        for who in ["alice", "bob"] {
            let mnemonic = Array(try XCTUnwrap(v["\(who).mnemonic"]).utf8)
            XCTAssertEqual(
                pbkdf2SHA512(password: mnemonic, salt: Array("mnemonic".utf8), iterations: 2048),
                try hex(v["\(who).seed"]))
        }
    }

    func testBIP47CodesKeysAndNotificationAddresses() throws {
        let v = try Self.bip47()
        for who in ["alice", "bob"] {
            let keys = try PaymentCodeKeys(seed: try hex(v["\(who).seed"]), coinType: 0)
            let published = try XCTUnwrap(Base58Check.decode(try XCTUnwrap(v["\(who).code"])))
            XCTAssertEqual(published.first, 0x47)
            XCTAssertEqual(keys.code.binary, Array(published.dropFirst()), who)
            XCTAssertEqual(try PaymentCode(binary: Array(published.dropFirst())), keys.code)
            XCTAssertEqual(try PaymentCode(text: keys.code.text), keys.code, "the bech32m form round-trips")
            XCTAssertEqual(
                try hash160(try keys.code.key(at: 0).compressed),
                try p2pkhPayload(try XCTUnwrap(v["\(who).notification_address"])), "\(who)'s notification address")
        }
        let alice = try PaymentCodeKeys(seed: try hex(v["alice.seed"]), coinType: 0)
        XCTAssertEqual(try alice.key(at: 0).secret.bytes, try hex(v["alice.a0"]))
        XCTAssertEqual(try alice.key(at: 0).publicKey.compressed, try hex(v["alice.A0"]))
        let bob = try PaymentCodeKeys(seed: try hex(v["bob.seed"]), coinType: 0)
        for i in 0..<10 {
            XCTAssertEqual(try bob.key(at: UInt32(i)).secret.bytes, try hex(v["bob.b.\(i)"]), "b\(i)")
            XCTAssertEqual(try bob.code.key(at: UInt32(i)).compressed, try hex(v["bob.B.\(i)"]), "B\(i)")
        }
    }

    func testBIP47SharedSecretsAndBobsOneTimeAddressesFromBothSides() throws {
        let v = try Self.bip47()
        let alice = try PaymentCodeKeys(seed: try hex(v["alice.seed"]), coinType: 0)
        let bob = try PaymentCodeKeys(seed: try hex(v["bob.seed"]), coinType: 0)
        for i in 0..<10 {
            let index = UInt32(i)
            let expected = try hex(v["shared_x.\(i)"])
            XCTAssertEqual(try alice.key(at: 0).sharedX(try bob.code.key(at: index)).bytes, expected, "a0·B\(i)")
            XCTAssertEqual(try bob.key(at: index).sharedX(try alice.code.key(at: 0)).bytes, expected, "b\(i)·A0")
            let paid = try OneTimeKey.publicKey(payer: alice, receiver: bob.code, index: index)
            XCTAssertEqual(
                try hash160(paid.compressed), try p2pkhPayload(try XCTUnwrap(v["pair.\(i)"])), "address \(i)")
            // Bob's spending key is the secret of exactly that key.
            XCTAssertEqual(try OneTimeKey.secretKey(receiver: bob, payer: alice.code, index: index).publicKey, paid)
        }
    }

    func testBIP47NotificationMaskAndUnmask() throws {
        let v = try Self.bip47()
        let alice = try PaymentCodeKeys(seed: try hex(v["alice.seed"]), coinType: 0)
        let bob = try PaymentCodeKeys(seed: try hex(v["bob.seed"]), coinType: 0)
        let wif = try XCTUnwrap(Base58Check.decode(try XCTUnwrap(v["notify.designated_wif"])))
        XCTAssertEqual(wif.count, 34, "0x80, the key, 0x01 (compressed)")
        let designated = try PrivateKey(bytes: try XCTUnwrap(Bytes32(wif[1..<33])))
        XCTAssertEqual(designated.publicKey.compressed, try hex(v["notify.designated_pubkey"]))
        let outpoint = try hex(v["notify.outpoint"])
        let x = designated.sharedX(try bob.code.key(at: 0))
        XCTAssertEqual(x.bytes, try hex(v["notify.x"]))
        XCTAssertEqual(
            HMAC.sha512(key: outpoint, message: x.bytes), try hex(v["notify.mask"]), "HMAC key is the outpoint")
        XCTAssertEqual(alice.code.binary, try hex(v["notify.plain"]))
        let blinded = try PaymentCodeNotification.mask(
            alice.code, designated: designated, receiver: bob.code, binding: outpoint)
        XCTAssertEqual(blinded, try hex(v["notify.blinded"]))
        let unmasked = try PaymentCodeNotification.unmask(
            blinded, designated: designated.xOnlyPublicKey, notificationKey: try bob.key(at: 0), binding: outpoint)
        XCTAssertEqual(unmasked, alice.code)
        // Anyone else reads garbage (here: Alice's own notification key), and a wrong binding too.
        XCTAssertThrowsError(
            try PaymentCodeNotification.unmask(
                blinded, designated: designated.xOnlyPublicKey, notificationKey: try alice.key(at: 0), binding: outpoint
            ))
        XCTAssertThrowsError(
            try PaymentCodeNotification.unmask(
                blinded, designated: designated.xOnlyPublicKey, notificationKey: try bob.key(at: 0),
                binding: outpoint.dropLast() + [1]))
    }

    // MARK: bad input

    func testMalformedCodesAreRefusedEachWithItsReason() throws {
        let code = try PaymentCodeKeys(seed: [UInt8](repeating: 1, count: 32)).code
        let good = code.binary
        func fault(_ bytes: [UInt8]) -> PaymentCodeError? {
            do {
                _ = try PaymentCode(binary: bytes)
                return nil
            } catch { return error }
        }
        XCTAssertNil(fault(good))
        XCTAssertEqual(fault(Array(good.dropLast())), .malformed(.wrongLength(79)))
        var bad = good
        bad[0] = 2
        XCTAssertEqual(fault(bad), .malformed(.unknownVersion(2)))
        bad = good
        bad[2] = 4
        XCTAssertEqual(fault(bad), .malformed(.invalidSign(4)))
        bad = good
        bad[79] = 1
        XCTAssertEqual(fault(bad), .malformed(.reservedBytesSet))
        // An x with no point on the curve: the first such value after the code's own.
        bad = good
        var offCurve = false
        for candidate in 0...255 where !offCurve {
            bad[34] = UInt8(candidate)
            offCurve = fault(bad) == .malformed(.notOnCurve)
        }
        XCTAssertTrue(offCurve)
        // Text: a changed character breaks the bech32m checksum; an address is the wrong prefix.
        var text = Array(code.text)
        text[30] = text[30] == "q" ? "p" : "q"
        do {
            _ = try PaymentCode(text: String(text))
            XCTFail("a broken checksum must be refused")
        } catch {
            guard case .badText = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try PaymentCode(text: Address(raw: .zero).bech32))
        // Garbage notifications unmask to a fault, never a code.
        let keys = try PaymentCodeKeys(seed: [UInt8](repeating: 2, count: 32))
        var unreadable = 0
        for seed in 0..<32 {
            let garbage = (0..<80).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
            do {
                _ = try PaymentCodeNotification.unmask(
                    garbage, designated: keys.code.publicKey.xOnly, notificationKey: try keys.key(at: 0), binding: [1])
            } catch .notificationUnreadable {
                unreadable += 1
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(unreadable, 32)
        do {
            _ = try PaymentCodeNotification.unmask(
                [1, 2], designated: keys.code.publicKey.xOnly, notificationKey: try keys.key(at: 0), binding: [])
            XCTFail("two bytes cannot be a code")
        } catch {
            XCTAssertEqual(error, .notificationUnreadable(.wrongLength(2)))
        }
    }
}

/// PBKDF2-HMAC-SHA512 (RFC 8018), for BIP39 seeds in the test only; built on the project's HMAC.
func pbkdf2SHA512(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
    var u = HMAC.sha512(key: password, message: salt + [0, 0, 0, 1])
    var out = u
    for _ in 1..<iterations {
        u = HMAC.sha512(key: password, message: u)
        for i in 0..<64 { out[i] ^= u[i] }
    }
    return out
}

/// The vectors' encodings, for this file and the stealth-address tests.
extension XCTestCase {
    func hex(_ text: String?) throws -> [UInt8] { try Hex.decode(try XCTUnwrap(text)) }

    /// RIPEMD-160(SHA-256(bytes)), by OpenSSL.
    func hash160(_ bytes: [UInt8]) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["dgst", "-ripemd160", "-binary"]
        let input = Pipe()
        let output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(Data(SHA256.hash(bytes).bytes))
        try input.fileHandleForWriting.close()
        let digest = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return Array(digest)
    }

    /// The P2PKH address of a compressed key, as the vectors write it (version byte 0, base58check).
    func p2pkhPayload(_ address: String) throws -> [UInt8] {
        let payload = try XCTUnwrap(Base58Check.decode(address), address)
        XCTAssertEqual(payload.first, 0)
        return Array(payload.dropFirst())
    }
}
