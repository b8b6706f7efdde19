import AmarsCodec
import DeviceCore
import DeviceProtocol
import LightClient

// The host's messages for the device session's refusals, built around the names DeviceCore gives each case
// (the firmware prints the same names), so a board's log and `amars device` say the same thing.

extension DeviceError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notAnchored: "no trusted state: anchor at genesis first"
        case .gateway(let resource, let code, let diagnostic):
            "\(resource.path) answered \(CoAPCodeText.text(code.rawValue)) \(printable(diagnostic.bytes))"
        case .undecodable(let resource, let error): "\(resource.path): undecodable answer: \(error)"
        case .rejected(let error, let stage):
            "light client refused the \(stage.name)\(stage.detail): \(error.summary) (\(error))"
        case .inconsistent(let what): "gateway answers disagree: \(what.summary) (\(what))"
        case .outsideTrust(let height): "block \(height) is older than the trusted epoch and cannot be verified"
        case .noCheckpointTo(let height): "block \(height) is past the trusted epoch and no checkpoint leads to it"
        case .transactionRefused(let code): "transaction refused: \(printable(code.bytes))"
        case .notFinal(let id): "transaction \(Hex.encode(id.bytes)) not final in time"
        case .nothingReceived: "no transfer arrived in time"
        case .noWallet: "the device has no key to pay with"
        case .insufficientFunds(let balance, let amount): "balance \(balance) units is below the amount \(amount)"
        case .wallet(let error): "the wallet refused: \(error)"
        case .failedOnChain(let receipt): "final, but the proven receipt says it failed (fee \(receipt.feePaid))"
        case .busy: "another device operation is running"
        }
    }
}

extension DeviceError.Stage {
    fileprivate var detail: String {
        switch self {
        case .checkpoint(let epoch): " of epoch \(epoch)"
        case .header(let height): " of block \(height)"
        default: ""
        }
    }
}

private func printable(_ bytes: [UInt8]) -> String {
    String(decoding: bytes.prefix(64).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
}
