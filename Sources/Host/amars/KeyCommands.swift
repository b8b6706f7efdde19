import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a key file for a command: a keystore's passphrase comes from `AMARS_PASSPHRASE_FILE`,
/// `AMARS_PASSPHRASE`, or a prompt on the terminal, in that order.
func loadKey(_ path: String) throws -> PrivateKey {
    do {
        return try KeyFile.load(path) {
            KeyFile.environmentPassphrase() ?? Passphrase.prompt("passphrase for \(path): ")
        }
    } catch {
        throw CLIError("\(error)")
    }
}

/// Asking a person for a passphrase.
enum Passphrase {
    /// Reads one line from the controlling terminal with echo off; nil when there is no terminal.
    static func prompt(_ text: String) -> String? {
        guard isatty(STDIN_FILENO) == 1 || FileManager.default.isReadableFile(atPath: "/dev/tty"),
            let tty = fopen("/dev/tty", "r+")
        else { return nil }
        defer { fclose(tty) }
        let fd = fileno(tty)
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        fputs(text, tty)
        fflush(tty)
        tcsetattr(fd, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(fd, TCSAFLUSH, &saved)
            fputs("\n", tty)
        }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        guard getline(&line, &capacity, tty) > 0, let line else { return nil }
        return String(cString: line).trimmingCharacters(in: CharacterSet(charactersIn: "\r\n"))
    }

    /// A new passphrase: from `--passphrase-file`, the environment, or typed twice on the terminal.
    static func new(file: String?) throws -> String {
        if let file {
            guard let text = KeyFile.passphrase(fromFile: file) else {
                throw CLIError("cannot read --passphrase-file \(file)")
            }
            return text
        }
        if let given = KeyFile.environmentPassphrase() { return given }
        guard let first = prompt("new passphrase: ") else {
            throw CLIError(
                "no passphrase: give --passphrase-file, set AMARS_PASSPHRASE_FILE or AMARS_PASSPHRASE, or run in a "
                    + "terminal (or --unencrypted for a throwaway devnet key)")
        }
        guard prompt("repeat passphrase: ") == first else {
            throw CLIError("the two passphrases differ; nothing written")
        }
        return first
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Manage secret keys (encrypted keystores).",
        discussion: """
            Keys are kept in keystores: the secret sealed with XChaCha20-Poly1305 under a key stretched from your \
            passphrase by Argon2id (libsodium). Every command that takes --key reads a keystore or a plain hex \
            file; for a keystore the passphrase comes from the file named by AMARS_PASSPHRASE_FILE, else from \
            AMARS_PASSPHRASE, else from a prompt on the terminal.
            """,
        subcommands: [New.self, Import.self, Show.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new key in an encrypted keystore (mode 0600) and print its address.",
            discussion: """
                Example:
                  amars key new --out ~/.amars/alice.key
                  AMARS_PASSPHRASE_FILE=pass.txt amars key new --out alice.key
                """)

        @Option(help: "Where to write the keystore; never overwrites an existing file.")
        var out: String

        @Option(help: "Read the new passphrase from the first line of this file instead of asking.")
        var passphraseFile: String?

        @Flag(help: "Write the secret as plain hex, unencrypted (throwaway devnet keys only).")
        var unencrypted = false

        func run() throws {
            let key = KeyFile.generate()
            let passphrase = unencrypted ? nil : try Passphrase.new(file: passphraseFile)
            do { try KeyFile.write(key, to: out, passphrase: passphrase) } catch { throw CLIError("\(error)") }
            printKey(key, file: out, encrypted: !unencrypted)
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal a plain hex key file (like a devnet key) into an encrypted keystore.",
            discussion: """
                The hex file is left as it is; delete it yourself once the keystore works.
                Example:
                  amars key import --hex data/keys/app-user-incentive.key --out ~/.amars/incentive.key
                """)

        @Option(help: "The plain key file: one line of 64 hex digits.")
        var hex: String

        @Option(help: "Where to write the keystore; never overwrites an existing file.")
        var out: String

        @Option(help: "Read the new passphrase from the first line of this file instead of asking.")
        var passphraseFile: String?

        func run() throws {
            let key: PrivateKey
            do { key = try KeyFile.load(hex) } catch { throw CLIError("\(error)") }
            let passphrase = try Passphrase.new(file: passphraseFile)
            do { try KeyFile.write(key, to: out, passphrase: passphrase) } catch { throw CLIError("\(error)") }
            printKey(key, file: out, encrypted: true)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a key file and print its address and public key (checks the passphrase).")

        @Option(help: "Keystore or hex key file.")
        var key: String

        func run() throws {
            let opened = try loadKey(key)
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: key))).map { [UInt8]($0) } ?? []
            printKey(opened, file: key, encrypted: bytes.first == UInt8(ascii: "{"))
        }
    }
}

private func printKey(_ key: PrivateKey, file: String, encrypted: Bool) {
    print("address     \(Address(publicKey: key.xOnlyPublicKey).bech32)")
    print("public key  \(Hex.encode(key.xOnlyPublicKey.bytes.bytes))")
    print("key file    \(file) (\(encrypted ? "encrypted keystore" : "plain hex, unencrypted"))")
}
