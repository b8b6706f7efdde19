import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger

/// `amars escrow …`: rental escrows (white paper §10.1). A renter locks a deposit and a fee naming a device (a
/// lock) and its owner; the device signs the return (with any damages) and anyone submits that close; the chain
/// pays the owner and refunds the renter. Past the return deadline (expiry plus a grace period) with no return
/// attested, the owner closes it and keeps the deposit: the item is deemed kept.
struct EscrowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escrow",
        abstract: "Rental escrows: lock a deposit and a fee for a device; the device's signature closes it.",
        discussion: """
              amars escrow open --key data/keys/alice.key --device amsc1... --owner amsc1... --deposit 5 --fee 0.5 --wait
              amars escrow show <escrow id>
              amars escrow close --key data/keys/bob.key --escrow <escrow id> --device-key lock.key --damages 1 --wait
              amars escrow close --key data/keys/carol.key --escrow <escrow id> --kept --wait   # owner, after the deadline
            A lock checks the escrow itself before it opens: 'amars device escrow <id>' shows what it sees.
            """,
        subcommands: [Open.self, Close.self, Show.self])

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open an escrow as the renter: deposit and fee leave your balance until it is closed.")

        @Option(help: "Secret key file of the renter.")
        var key: String

        @Option(help: "The device's address (the lock that will sign the return).")
        var device: String

        @Option(help: "The owner's address (paid the fee and any damages).")
        var owner: String

        @Option(help: "Deposit in AMSC, refunded minus damages.")
        var deposit: String

        @Option(help: "Rental fee in AMSC, paid to the owner.")
        var fee: String

        @Option(
            help: "The most damages in AMSC the device may keep from the deposit at the return (default: all of it).")
        var maxDamages: String?

        @Option(
            help: """
                Blocks from the current head until the rental ends; a return the lock attests still counts \
                \(EscrowState.returnGraceBlocks) blocks after it, then the owner may keep the deposit.
                """)
        var blocks: UInt64 = 1_000

        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (1...10_000_000).contains(blocks) else { throw ValidationError("--blocks must be 1 to 10000000") }
        }

        func run() throws {
            let depositUnits = try parseAmountOrZero(deposit, flag: "--deposit")
            let most = try maxDamages.map { try parseAmountOrZero($0, flag: "--max-damages") }
            guard (most ?? 0) <= depositUnits else {
                throw CLIError("--max-damages cannot exceed the deposit; nothing was sent")
            }
            let payload = EscrowOpen(
                device: try parseAddress(device), owner: try parseAddress(owner), deposit: depositUnits,
                rentalFee: try parseAmountOrZero(fee, flag: "--fee"), maxDamages: most,
                expiryHeight: try heightAfter(try headHeight(node), blocks))
            let signer = try loadKey(key)
            let renter = Address(publicKey: signer.xOnlyPublicKey)
            guard payload.device != renter, payload.owner != renter else {
                throw CLIError("the renter cannot be the escrow's device or owner; nothing was sent")
            }
            guard payload.deposit > 0 || payload.rentalFee > 0 else {
                throw CLIError("an escrow must hold a deposit or a fee; nothing was sent")
            }
            guard !payload.deposit.addingReportingOverflow(payload.rentalFee).overflow else {
                throw CLIError("deposit plus fee overflows; nothing was sent")
            }
            let sent = try send.send(.escrowOpen(payload), signer: signer, node: node)
            print("sent escrow for \(payload.device.bech32): deposit \(Amount.format(payload.deposit)) AMSC, ")
            print(
                "            fee \(Amount.format(payload.rentalFee)) AMSC, damages at most "
                    + "\(Amount.format(payload.maxDamages)) AMSC, expires after block \(payload.expiryHeight)")
            print("escrow id   \(sent.id) (the transaction's id)")
            try finish(sent, send: send, node: node)
        }
    }

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Submit an escrow's close: signed by the device, or by the owner after the return deadline (--kept).")

        @Option(help: "Secret key file of whoever submits and pays the fee (owner, renter or the device).")
        var key: String

        @Option(help: "The escrow id (the id of the transaction that opened it).")
        var escrow: String

        @Option(help: "Secret key file of the device: it signs (chain, escrow, damages).")
        var deviceKey: String?

        @Option(help: "Damages in AMSC the owner keeps from the deposit (device close only).")
        var damages: String = "0"

        @Flag(
            help: """
                Close as the owner after the return deadline (the expiry height plus \(EscrowState.returnGraceBlocks) \
                blocks) with no return attested by the device: the item is deemed kept, deposit and fee go to the owner.
                """)
        var kept = false

        @OptionGroup var send: SendOptions
        @OptionGroup var node: NodeOptions

        func validate() throws {
            guard (deviceKey == nil) == kept else {
                throw ValidationError("give --device-key (the device closes) or --kept (the owner, after the deadline)")
            }
        }

        func run() throws {
            let id = try parseEscrowID(escrow)
            let info = try node.typed { try $0.escrow(id) }
            guard info.verifyProof() else { throw CLIError("the node's escrow proof does not verify") }
            guard info.state.status == .open else { throw CLIError("escrow \(escrow) is already \(info.state.status)") }
            let close: EscrowClose
            let signer = try loadKey(key)
            if let deviceKey {
                let device = try loadKey(deviceKey)
                guard Address(publicKey: device.xOnlyPublicKey) == info.state.device else {
                    throw CLIError("--device-key is not the key of the escrow's device \(info.state.device.bech32)")
                }
                let units = try parseAmountOrZero(damages, flag: "--damages")
                guard units <= info.state.deposit else {
                    throw CLIError("--damages cannot exceed the deposit (\(Amount.format(info.state.deposit)) AMSC)")
                }
                guard units <= info.state.maxDamages else {
                    throw CLIError(
                        "--damages cannot exceed the \(Amount.format(info.state.maxDamages)) AMSC the renter accepted")
                }
                guard info.height < info.state.returnDeadline else {
                    throw CLIError(
                        "the return deadline passed at block \(info.state.returnDeadline): the owner closes it (--kept)"
                    )
                }
                close = EscrowClose(
                    genesis: try NodeOptions.genesisBlockHash(in: try node.get("/v1/head")), escrowID: id,
                    damages: units, device: device)
            } else {
                let sender = Address(publicKey: signer.xOnlyPublicKey)
                guard sender == info.state.owner else {
                    throw CLIError("after the deadline only the owner \(info.state.owner.bech32) may close it")
                }
                guard info.height >= info.state.returnDeadline else {
                    throw CLIError(
                        "the return deadline is block \(info.state.returnDeadline) (expiry \(info.state.expiryHeight) "
                            + "+ \(EscrowState.returnGraceBlocks), head \(info.height)); "
                            + "until then only the device's signature closes it")
                }
                close = EscrowClose(escrowID: id, damages: 0, deviceKey: .zero, deviceSignature: .zero)
            }
            let sent = try send.send(.escrowClose(close), signer: signer, node: node)
            print("sent close of escrow \(escrow)")
            print("transaction \(sent.id) (nonce \(sent.nonce))")
            try finish(sent, send: send, node: node) {
                let after = try node.typed { try $0.escrow(id) }
                print(
                    "escrow      \(after.state.status): owner paid \(Amount.format(after.state.rentalFee + after.state.damages)) AMSC, "
                )
                print("            renter refunded \(Amount.format(after.state.deposit - after.state.damages)) AMSC")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an escrow and check the node's state proof of it against the head's state root.")

        @Argument(help: "The escrow id (the id of the transaction that opened it).")
        var id: String

        @OptionGroup var node: NodeOptions

        func run() throws {
            let escrowID = try parseEscrowID(id)
            let info = try node.typed { try $0.escrow(escrowID) }
            let e = info.state
            print("escrow      \(id)")
            print("status      \(e.status)")
            print("renter      \(e.renter.bech32)")
            print("device      \(e.device.bech32)")
            print("owner       \(e.owner.bech32)")
            print("deposit     \(Amount.format(e.deposit)) AMSC, fee \(Amount.format(e.rentalFee)) AMSC")
            if e.status == .closed { print("damages     \(Amount.format(e.damages)) AMSC") }
            print("expires     after block \(e.expiryHeight)")
            let proven = info.verifyProof()
            print(
                "proof       \(proven ? "checked" : "DOES NOT VERIFY") against the state root of block \(info.height)")
            if !proven { throw ExitCode(2) }
        }
    }
}

/// An amount that may be zero (an escrow's deposit, fee or damages), else as ``parseAmount(_:flag:)``.
func parseAmountOrZero(_ text: String, flag: String) throws -> UInt64 {
    text.trimmingCharacters(in: .whitespaces).allSatisfy { $0 == "0" || $0 == "." } && text.contains("0")
        ? 0 : try parseAmount(text, flag: flag)
}

func parseEscrowID(_ text: String) throws -> Bytes32 {
    guard text.utf8.count == 64, let raw = try? Hex.decode(text), let id = Bytes32(raw) else {
        throw CLIError("an escrow id is the 64-hex-digit id of the transaction that opened it")
    }
    return id
}

private func headHeight(_ node: NodeOptions) throws -> UInt64 {
    guard let h = jsonUInt64(try node.get("/v1/head")["height"]) else {
        throw CLIError("the node's head has no height")
    }
    return h
}

/// With --wait: final, or dropped with the reason the chain would give now.
private func finish(_ sent: SendOptions.Sent, send: SendOptions, node: NodeOptions, done: () throws -> Void = {}) throws
{
    guard send.wait else {
        print("add --wait to wait for it; check with: amars tx \(sent.id)")
        return
    }
    switch try send.waitForInclusion(sent, node: node) {
    case .included(let height, let fee):
        print("final in block \(height) (fee \(fee) units)")
        try done()
    case .dropped:
        throw CLIError("not included: transaction \(sent.id) was dropped when the block was built (an escrow rule)")
    }
}
