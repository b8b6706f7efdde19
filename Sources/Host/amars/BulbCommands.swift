import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import DeviceCore
import Foundation
import Ledger

/// `amars bulb`: a controller's side of the command door. Signs an on, off or dim command for one bulb with the
/// controller's key and posts it at a gateway, which queues it only if a certificate valid on chain certifies that
/// key; the bulb fetches it over CoAP and checks it all again (`amars device commands` shows what it sees).
struct BulbCommandCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bulb",
        abstract: "Command a smart bulb through a gateway's command door: on, off or dim, signed by a controller.",
        discussion: """
            The controller's key must be the one its certificate certifies (amars cert enroll gives a phone or a \
            hub one), and the bulb must have been paired with that certificate. The command names the bulb, the \
            chain and a counter: a bulb obeys only counters past the last it obeyed, so a replay does nothing. \
            The counter defaults to the time in milliseconds.

            Example:
              amars bulb --key phone.key --cert pki/phone/device.pem --to amsc1... --dim 40
            """)

    @Option(help: "The controller's key file.")
    var key: String
    @Option(help: "The controller's certificate: a file (PEM or DER) or its id (64 hex digits).")
    var cert: String
    @Option(help: "The bulb's address.")
    var to: String
    @Flag(help: "Switch the bulb on.")
    var on = false
    @Flag(help: "Switch the bulb off.")
    var off = false
    @Option(help: "Dim to this many percent (0 to 100; 0 is off).")
    var dim: UInt8?
    @Option(help: "The command's counter (default: the time in milliseconds).")
    var counter: UInt64?
    @OptionGroup var node: NodeOptions

    func validate() throws {
        guard [on, off, dim != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("say what the bulb should do: one of --on, --off or --dim N")
        }
        if let dim, dim > 100 { throw ValidationError("--dim must be 0 to 100") }
        if counter == 0 { throw ValidationError("--counter must be at least 1") }
    }

    func run() throws {
        let controller = try loadKey(key)
        let bulb = try parseAddress(to)
        let certificate = try certificateID(fileOrID: cert)
        let action: BulbCommand.Action = on ? .on : off ? .off : .dim(dim ?? 0)
        var random = SystemRandomNumberGenerator()
        // The node's errors, the head's too, become the one CLI line every node call gives.
        let (command, sequence) = try node.typed { client in
            let command = BulbCommand(
                bulb: bulb, counter: counter ?? UInt64(Date().timeIntervalSince1970 * 1000), action: action,
                certificateID: certificate, controller: controller, genesis: try client.head().genesisBlockHash,
                auxRandom: Bytes32(w0: random.next(), w1: random.next(), w2: random.next(), w3: random.next()))
            return (command, try client.postCommand(command.encoded))
        }
        print("queued      \(Self.text(action)) for \(bulb.bech32), counter \(command.counter)")
        print("sequence    \(sequence) at the command door of \(node.node) (the bulb fetches it over CoAP)")
    }

    static func text(_ action: BulbCommand.Action) -> String {
        switch action {
        case .on: "on"
        case .off: "off"
        case .dim(let level): "dim \(level)%"
        }
    }
}
