import Chain
import Foundation
import Yams

/// What a fleet run is: how many devices of each kind, how long and how fast they act, the rental terms and the
/// money. Read from a scenario file (YAML, `Simulator/scenarios/`), then overridden by command-line flags; every
/// value is checked with a message that names the key it came from.
struct Scenario: Sendable, Equatable {
    var name = "command line"
    var locks = 2
    /// Locks that go silent in their first rental (never sign the return): the owner closes it as kept after the
    /// return deadline.
    var silentLocks = 0
    var terminals = 2
    var bulbs = 2
    /// Rounds per device; 0: until `duration` passes, or until stopped.
    var rounds = 3
    /// Seconds after which no device starts another round; 0: no limit.
    var duration: Double = 0
    /// Seconds a device waits between its rounds.
    var interval: Double = 0
    /// Seconds over which the devices start, evenly.
    var rampUp: Double = 0
    /// The share of devices that submit over MQTT when a broker is given (every other one at 0.5).
    var mqttShare = 0.5
    /// The share of terminals whose customers pay by HTLC: the terminal shows the hash of its order's secret, the
    /// customer locks the amount to it, and the terminal claims it with the secret (DeviceCore's `claim`).
    var htlcShare: Double = 0
    var ride: Double = 0
    var rentalBlocks: UInt64 = 60
    var deposit = "1"
    var fee = "0.1"
    var amount = "0.25"
    /// Link faults the simulator injects. `loss`: the share of datagrams lost each way on every device's link (a
    /// lossy radio or serial line); CoAP's retransmissions must carry the fleet through.
    var loss: Double = 0
    /// `cut-share` of the devices lose their link entirely `cut-at` seconds into the run, for `cut-for` seconds.
    var cutAt: Double = 0
    var cutFor: Double = 0
    var cutShare: Double = 0
    /// Gateway `killGateway` (1-based in the gateways' list; 0: none) is killed `killGatewayAt` seconds in, the
    /// broker `killBrokerAt` seconds in (0: never): their supervisor must bring them back.
    var killGateway = 0
    var killGatewayAt: Double = 0
    var killBrokerAt: Double = 0
    var fund = "5"

    /// Devices in a fleet: what one process drives (each device a task, its socket one descriptor), and what the
    /// people's key ranges hold apart (renters from 10,000, customers from 20,000, see ``FleetRun``).
    static let maxDevices = 10_000

    /// The keys a file may hold, as they are spelled there.
    static let keys: Set<String> = [
        "name", "description", "locks", "silent-locks", "terminals", "bulbs", "rounds", "duration", "interval",
        "ramp-up",
        "mqtt-share", "htlc-share", "ride", "rental-blocks", "deposit", "fee", "amount", "fund", "loss", "cut-at",
        "cut-for",
        "cut-share", "kill-gateway", "kill-gateway-at", "kill-broker-at",
    ]

    /// Reads a scenario file. Unknown keys, values of the wrong type and values out of range are refused with one
    /// line naming the file and the key.
    static func load(path: String) throws(ScenarioError) -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .init("\(path): cannot read the file")
        }
        do { return try Scenario(yaml: String(decoding: data, as: UTF8.self)) } catch {
            throw .init("\(path): \(error.message)")
        }
    }

    init() {}

    init(yaml: String) throws(ScenarioError) {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw ScenarioError("the file is empty") }
            root = node
        } catch let e as ScenarioError {
            throw e
        } catch {
            throw ScenarioError("not valid YAML: \(error)")
        }
        guard let mapping = root.mapping else { throw ScenarioError("the top level must be a mapping of keys") }
        var values: [String: Node] = [:]
        for (k, v) in mapping {
            guard let key = k.string else { throw ScenarioError("a key is not a string") }
            guard Self.keys.contains(key) else {
                throw ScenarioError("unknown key '\(key)' (known: \(Self.keys.sorted().joined(separator: ", ")))")
            }
            guard values[key] == nil else { throw ScenarioError("'\(key)' appears twice") }
            values[key] = v
        }
        func scalar(_ key: String) throws(ScenarioError) -> String? {
            guard let node = values[key] else { return nil }
            guard let s = node.scalar?.string else { throw ScenarioError("'\(key)' must be a single value") }
            return s
        }
        func int(_ key: String) throws(ScenarioError) -> Int? {
            guard let s = try scalar(key) else { return nil }
            guard let v = Int(s) else { throw ScenarioError("'\(key)' must be a whole number, not '\(s)'") }
            return v
        }
        func number(_ key: String) throws(ScenarioError) -> Double? {
            guard let s = try scalar(key) else { return nil }
            guard let v = Double(s), v.isFinite else { throw ScenarioError("'\(key)' must be a number, not '\(s)'") }
            return v
        }
        name = try scalar("name") ?? name
        locks = try int("locks") ?? locks
        silentLocks = try int("silent-locks") ?? silentLocks
        terminals = try int("terminals") ?? terminals
        bulbs = try int("bulbs") ?? bulbs
        rounds = try int("rounds") ?? rounds
        duration = try number("duration") ?? duration
        interval = try number("interval") ?? interval
        rampUp = try number("ramp-up") ?? rampUp
        mqttShare = try number("mqtt-share") ?? mqttShare
        htlcShare = try number("htlc-share") ?? htlcShare
        ride = try number("ride") ?? ride
        if let blocks = try int("rental-blocks") {
            guard blocks >= 0 else { throw ScenarioError("'rental-blocks' must be 2 to 100000") }
            rentalBlocks = UInt64(blocks)
        }
        deposit = try scalar("deposit") ?? deposit
        fee = try scalar("fee") ?? fee
        amount = try scalar("amount") ?? amount
        fund = try scalar("fund") ?? fund
        loss = try number("loss") ?? loss
        cutAt = try number("cut-at") ?? cutAt
        cutFor = try number("cut-for") ?? cutFor
        cutShare = try number("cut-share") ?? cutShare
        killGateway = try int("kill-gateway") ?? killGateway
        killGatewayAt = try number("kill-gateway-at") ?? killGatewayAt
        killBrokerAt = try number("kill-broker-at") ?? killBrokerAt
        _ = try scalar("description")
        try check(naming: { "'\($0)'" })
    }

    /// The money terms in base units.
    struct Units {
        var deposit: UInt64
        var fee: UInt64
        var amount: UInt64
        var fund: UInt64
    }

    /// Every rule, each broken one named by `naming(key)`: the file's key, or the flag that set it.
    @discardableResult
    func check(naming: (String) -> String) throws(ScenarioError) -> Units {
        func need(_ ok: Bool, _ key: String, _ rule: String) throws(ScenarioError) {
            if !ok { throw ScenarioError("\(naming(key)) must be \(rule)") }
        }
        try need((0...Self.maxDevices).contains(locks), "locks", "0 to \(Self.maxDevices)")
        try need((0...Self.maxDevices).contains(terminals), "terminals", "0 to \(Self.maxDevices)")
        try need((0...Self.maxDevices).contains(bulbs), "bulbs", "0 to \(Self.maxDevices)")
        guard locks + terminals + bulbs > 0 else {
            throw ScenarioError("\(naming("locks")), \(naming("terminals")) and \(naming("bulbs")) are all 0")
        }
        guard locks + terminals + bulbs <= Self.maxDevices else {
            throw ScenarioError("at most \(Self.maxDevices) devices in all (locks, terminals and bulbs)")
        }
        try need(silentLocks >= 0 && silentLocks <= locks, "silent-locks", "0 to the number of locks")
        try need(rounds >= 0, "rounds", "0 (no limit) or more")
        try need(duration >= 0 && duration <= 30 * 86_400, "duration", "0 (no limit) to 2592000 seconds")
        try need(interval >= 0 && interval <= 3_600, "interval", "0 to 3600 seconds")
        try need(rampUp >= 0 && rampUp <= 3_600, "ramp-up", "0 to 3600 seconds")
        try need(mqttShare >= 0 && mqttShare <= 1, "mqtt-share", "0 to 1")
        try need(htlcShare >= 0 && htlcShare <= 1, "htlc-share", "0 to 1")
        try need(ride >= 0 && ride <= 3_600, "ride", "0 to 3600 seconds")
        try need((2...100_000).contains(rentalBlocks), "rental-blocks", "2 to 100000")
        try need(loss >= 0 && loss <= 0.5, "loss", "0 to 0.5")
        try need(cutAt >= 0 && cutAt <= 30 * 86_400, "cut-at", "0 to 2592000 seconds")
        try need(cutFor >= 0 && cutFor <= 3_600, "cut-for", "0 to 3600 seconds")
        try need(cutShare >= 0 && cutShare <= 1, "cut-share", "0 to 1")
        // Its upper bound is the number of gateways, checked once the --coap list is known (FleetRun.kills).
        try need(killGateway >= 0, "kill-gateway", "0 (none) or a gateway's place in the --coap list")
        try need(killGatewayAt >= 0 && killGatewayAt <= 30 * 86_400, "kill-gateway-at", "0 to 2592000 seconds")
        try need(killBrokerAt >= 0 && killBrokerAt <= 30 * 86_400, "kill-broker-at", "0 (never) to 2592000 seconds")
        func units(_ text: String, _ key: String) throws(ScenarioError) -> UInt64 {
            do { return try Amount.parse(text) } catch { throw ScenarioError("\(naming(key)): \(error)") }
        }
        let u = Units(
            deposit: try units(deposit, "deposit"), fee: try units(fee, "fee"), amount: try units(amount, "amount"),
            fund: try units(fund, "fund"))
        try need(u.amount > 0 && u.amount < u.fund / 2, "amount", "more than 0 and less than half of the fund")
        try need(
            u.deposit > 0 && u.deposit + u.fee < u.fund / 2, "deposit",
            "more than 0, and with the fee less than half of the fund")
        return u
    }

    /// The same mix of kinds with `total` devices in all (each kind that had devices keeps at least one).
    func scaled(to total: Int) -> Scenario {
        var s = self
        let now = locks + terminals + bulbs
        guard now > 0, total > 0 else { return s }
        func share(_ n: Int) -> Int { n == 0 ? 0 : max(1, n * total / now) }
        s.locks = share(locks)
        s.silentLocks = min(silentLocks, s.locks)
        s.terminals = share(terminals)
        s.bulbs = share(bulbs)
        // What rounding left over goes to the largest kind.
        let left = total - (s.locks + s.terminals + s.bulbs)
        if left > 0 {
            if s.locks >= s.terminals && s.locks >= s.bulbs {
                s.locks += left
            } else if s.terminals >= s.bulbs {
                s.terminals += left
            } else {
                s.bulbs += left
            }
        }
        return s
    }

    /// Whether device `index` submits over MQTT: spread evenly, `mqttShare` of them.
    func overMQTT(_ index: Int) -> Bool { Self.spread(index, mqttShare) }

    /// Whether terminal `index` (0-based among terminals) is paid by HTLC: spread evenly, `htlcShare` of them.
    func paidByHTLC(_ index: Int) -> Bool { Self.spread(index, htlcShare) }

    /// Whether item `index` is among a `share` of items spread evenly.
    private static func spread(_ index: Int, _ share: Double) -> Bool {
        (Int((Double(index + 1) * share).rounded(.down)) > Int((Double(index) * share).rounded(.down)))
    }
}

struct ScenarioError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
