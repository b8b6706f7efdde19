import Foundation

/// What must never happen in a fleet: each is counted by name in the report and fails the run.
enum FleetFailure: Error, CustomStringConvertible {
    case openedForeign
    case openedClosed
    case deadlineNeverPassed
    case notKept
    case wrongRenter
    case escrowNeverFinal
    case notSettledAsSigned
    case refundWrong(expected: UInt64, got: UInt64)
    case underpaid(expected: UInt64, got: UInt64)
    case saleNeverProven
    case bulbIgnoredResident
    case bulbObeyedRevoked
    case bulbObeyedReplay
    case bulbObeyedStranger
    case doorTook(String)
    case commandNeverArrived

    var description: String {
        switch self {
        case .openedForeign: "a lock opened for another lock's escrow"
        case .openedClosed: "a lock opened for an escrow already returned"
        case .deadlineNeverPassed: "a kept rental's return deadline did not pass in 10 minutes"
        case .notKept: "the chain did not close a kept rental with the whole deposit to the owner"
        case .wrongRenter: "the proven escrow names another renter"
        case .escrowNeverFinal: "the renter's escrow was not proven in 30 s"
        case .notSettledAsSigned: "the chain did not close the escrow with the damages the lock signed"
        case .refundWrong(let expected, let got):
            "the renter's balance moved by \(got) base units, not the fee, damages and transaction fee (\(expected))"
        case .underpaid(let expected, let got): "the terminal was paid \(got) base units for an order of \(expected)"
        case .saleNeverProven: "the customer's payment was not proven to the terminal in 30 s"
        case .bulbIgnoredResident: "a bulb did not do what its resident commanded"
        case .bulbObeyedRevoked: "a bulb obeyed a controller revoked on chain"
        case .bulbObeyedReplay: "a bulb obeyed a replayed command"
        case .bulbObeyedStranger: "a bulb obeyed a key its controller certificate does not certify"
        case .doorTook(let whose): "the gateway's command door took \(whose) command"
        case .commandNeverArrived: "a command posted at the command door did not reach its bulb in 10 s"
        }
    }
}
