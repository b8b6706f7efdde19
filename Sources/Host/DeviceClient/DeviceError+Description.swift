import AmarsCodec
import DeviceCore
import DeviceProtocol
import LightClient

// The host's messages for the device session's refusals, built around the names DeviceCore gives each case
// (the firmware prints the same names), so a board's log and `amars device` say the same thing.

extension DeviceError: CustomStringConvertible {
    /// DeviceCore's one-line name of the case (the firmware's words), with what the host can add: the
    /// resource, the code, the numbers.
    public var description: String {
        switch self {
        case .gateway(let resource, let code, let diagnostic):
            "\(resource.path) answered \(CoAPCodeText.text(code.rawValue)) \(printable(diagnostic.bytes))"
        case .undecodable(let resource, let error): "\(resource.path): \(summary) (\(error))"
        case .rejected(let error, let stage):
            "light client refused the \(stage.name)\(stage.detail): \(error.summary) (\(error))"
        case .inconsistent(let what): "gateway answers disagree: \(what.summary) (\(what))"
        case .outsideTrust(let height), .noCheckpointTo(let height): "block \(height): \(summary)"
        case .transactionRefused(let code): "\(summary): \(printable(code.bytes))"
        case .notFinal(let id): "transaction \(Hex.encode(id.bytes)) \(summary)"
        case .insufficientFunds(let balance, let amount): "\(summary) (balance \(balance), amount \(amount) units)"
        case .wallet(let error): "\(summary): \(error)"
        case .failedOnChain(let receipt): "\(summary) (fee \(receipt.feePaid))"
        case .trustExpired(let age, let period):
            "\(summary) (age \(age / 1000) s, trusting period \(period / 1000) s)"
        case .reanchorRefused(let why): "\(summary) (\(why))"
        case .otherChain(let genesis): "\(summary) (the gateway's genesis block is \(Hex.encode(genesis.bytes)))"
        case .filter(let error): "\(summary) (\(error))"
        case .htlc(let error): "\(summary): \(error.code) (\(error))"
        case .notAnchored, .notBuiltIn, .nothingReceived, .noWallet, .busy: "\(summary)"
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
