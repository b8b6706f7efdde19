import Foundation
import XCTest

/// Keys at rest through the real binaries: `amars key new` writes a keystore nobody can read without the
/// passphrase, every command opens it from `AMARS_PASSPHRASE_FILE` or `AMARS_PASSPHRASE`, `key import` seals a
/// devnet hex key, and a wrong passphrase, a truncated file and a tampered file each get their own message.
final class KeystoreCLITests: CLITestCase {
    override var directoryPrefix: String { "amars-keystore" }

    func amars(_ args: [String], passphrase: String?, file: String? = nil) throws -> Harness.Result {
        // Harness.amars fills in AMARS_PASSPHRASE when unset: set it here so each case chooses.
        setenv("AMARS_PASSPHRASE", passphrase ?? "", 1)
        if let file { setenv("AMARS_PASSPHRASE_FILE", file, 1) } else { unsetenv("AMARS_PASSPHRASE_FILE") }
        defer {
            unsetenv("AMARS_PASSPHRASE")
            unsetenv("AMARS_PASSPHRASE_FILE")
        }
        return try Harness.amars(args)
    }

    func testKeystoresAreSealedOpenedAndRefusedWithTheirOwnReasons() throws {
        let passFile = path("pass.txt")
        FileManager.default.createFile(atPath: passFile, contents: Data("a long passphrase\n".utf8))
        let key = path("alice.key")
        let made = try amars(["key", "new", "--out", key, "--passphrase-file", passFile], passphrase: nil)
        XCTAssertEqual(made.status, 0, made.error)
        let address = try XCTUnwrap(made.output.firstMatch(of: #/address\s+(amsc1\w+)/#).map { String($0.1) })
        let sealed = try String(contentsOfFile: key, encoding: .utf8)
        XCTAssertTrue(sealed.contains("\"kdf\":\"argon2id\""), sealed)
        let attributes = try FileManager.default.attributesOfItem(atPath: key)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)

        // Opened from the passphrase file, or from the variable.
        let viaFile = try amars(["address", "--key", key], passphrase: nil, file: passFile)
        XCTAssertEqual(viaFile.output.trimmingCharacters(in: .whitespacesAndNewlines), address, viaFile.error)
        let viaVariable = try amars(["key", "show", "--key", key], passphrase: "a long passphrase")
        XCTAssertTrue(viaVariable.output.contains(address), viaVariable.error)

        // Each refusal says what is wrong, exits 1, and leaves the file as it was.
        let wrong = try amars(["address", "--key", key], passphrase: "a short passphrase")
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.error.contains("wrong passphrase"), wrong.error)
        let none = try amars(["address", "--key", key], passphrase: nil, file: path("missing.txt"))
        XCTAssertTrue(none.error.contains("is an encrypted keystore"), none.error)
        let truncated = path("truncated.key")
        FileManager.default.createFile(atPath: truncated, contents: Data(sealed.utf8.prefix(sealed.utf8.count / 2)))
        let cut = try amars(["address", "--key", truncated], passphrase: "a long passphrase")
        XCTAssertTrue(cut.error.contains("truncated or damaged"), cut.error)
        let tampered = path("tampered.key")
        let ciphertext = try XCTUnwrap(sealed.firstMatch(of: #/"ciphertext":"([0-9a-f]+)"/#).map { String($0.1) })
        let flipped = (ciphertext.first == "0" ? "1" : "0") + ciphertext.dropFirst()
        FileManager.default.createFile(
            atPath: tampered, contents: Data(sealed.replacingOccurrences(of: ciphertext, with: flipped).utf8))
        let changed = try amars(["address", "--key", tampered], passphrase: "a long passphrase")
        XCTAssertTrue(changed.error.contains("tampered with"), changed.error)
        XCTAssertEqual(try String(contentsOfFile: key, encoding: .utf8), sealed)

        // A devnet hex key imported into a keystore opens to the same address; the hex file is left alone.
        try ok(["genesis", "new", "--out", path("genesis.json"), "--keys", path("keys")])
        let hex = path("keys/app-user-incentive.key")
        let hexAddress = try ok(["address", "--key", hex]).trimmingCharacters(in: .whitespacesAndNewlines)
        let imported = try amars(
            ["key", "import", "--hex", hex, "--out", path("incentive.key"), "--passphrase-file", passFile],
            passphrase: nil)
        XCTAssertEqual(imported.status, 0, imported.error)
        let reopened = try amars(["address", "--key", path("incentive.key")], passphrase: nil, file: passFile)
        XCTAssertEqual(reopened.output.trimmingCharacters(in: .whitespacesAndNewlines), hexAddress)
        XCTAssertTrue(FileManager.default.fileExists(atPath: hex))
        let refusedOverwrite = try amars(
            ["key", "import", "--hex", hex, "--out", path("incentive.key"), "--passphrase-file", passFile],
            passphrase: nil)
        XCTAssertTrue(refusedOverwrite.error.contains("already exists"), refusedOverwrite.error)

        // A gateway's validator key sealed too: amarsd without its passphrase exits 78 (configuration) naming the
        // fix; with AMARS_PASSPHRASE_FILE it starts and signs blocks.
        let validator = path("keys/validator.key")
        let sealedValidator = path("validator.keystore")
        XCTAssertEqual(
            try amars(
                ["key", "import", "--hex", validator, "--out", sealedValidator, "--passphrase-file", passFile],
                passphrase: nil
            ).status, 0)
        let locked = try Harness.run(
            Harness.binDirectory.appendingPathComponent("amarsd").path,
            ["run", "--data", dir.path, "--validator-key", sealedValidator, "--http-port", "0", "--no-coap"],
            timeout: 30)
        XCTAssertEqual(locked.status, 78, locked.output)
        XCTAssertTrue(locked.output.contains("AMARS_PASSPHRASE_FILE"), locked.output)
        setenv("AMARS_PASSPHRASE_FILE", passFile, 1)
        let daemon = try Harness.startDaemon(
            data: dir, blockInterval: 100, arguments: ["--validator-key", sealedValidator])
        unsetenv("AMARS_PASSPHRASE_FILE")
        defer { daemon.stop() }
        let sent = try amars(
            [
                "transfer", "--key", path("incentive.key"), "--to", address, "--amount", "1", "--wait", "--node",
                daemon.url,
            ],
            passphrase: nil, file: passFile)
        XCTAssertEqual(sent.status, 0, sent.error)
        XCTAssertTrue(sent.output.contains("final in block"), sent.output)
    }
}
