import AmarsClient
import AmarsCodec
import DeviceClient
import Foundation
import Ledger

/// The fleet at run time: each device with its person as one task, round after round, funded between rounds; a
/// progress line (and the JSON report, when asked) every few seconds; the chain's word checked at the end. Tasks,
/// not threads: a device waiting on the gateway or between rounds holds nothing but its state, so one process
/// runs ten thousand.
final class Fleet: @unchecked Sendable {
    // @unchecked: each device is driven by its own task; shared state is in `stats` and the funders.
    let locks: [LockDevice]
    let terminals: [TerminalDevice]
    let bulbs: [BulbDevice]
    let stats = FleetStats()
    /// The gateway whose word is checked at the end (receipts, supply).
    private let node: NodeAPI
    private let fund: UInt64

    init(locks: [LockDevice], terminals: [TerminalDevice], bulbs: [BulbDevice], node: NodeAPI, fund: UInt64) {
        self.locks = locks
        self.terminals = terminals
        self.bulbs = bulbs
        self.node = node
        self.fund = fund
    }

    var deviceCount: Int { locks.count + terminals.count + bulbs.count }

    /// A link cut the simulator injects: `share` of the devices, spread over the fleet, lose their link `at`
    /// seconds into the run for `seconds`.
    struct LinkCut: Sendable {
        var at: Double
        var seconds: Double
        var share: Double
    }

    /// Runs every device for `rounds` rounds (0: no limit) until `duration` seconds passed (0: no limit), its
    /// rounds `interval` seconds apart, the devices starting evenly over `rampUp` seconds, with `cut` injected.
    /// `tick` runs every `progress` seconds and once at the end.
    func run(
        rounds: Int, duration: Double, interval: Double, rampUp: Double, progress: Double, cut: LinkCut? = nil,
        kills: [ProcessKill] = [], tick: @escaping @Sendable () -> Void
    ) async {
        let end = duration > 0 ? Date().addingTimeInterval(duration) : Date.distantFuture
        var jobs: [(String, @Sendable (Int) async throws -> Void)] = []
        let (fund, stats) = (fund, stats)
        for lock in locks {
            jobs.append(("lock \(lock.device.index)", { n in try await lock.round(n, fund: fund, stats: stats) }))
        }
        for terminal in terminals {
            jobs.append(
                ("terminal \(terminal.device.index)", { n in try await terminal.round(n, fund: fund, stats: stats) }))
        }
        for bulb in bulbs {
            jobs.append(("bulb \(bulb.device.index)", { n in try await bulb.round(n, stats: stats) }))
        }
        let ticker = Thread {
            while true {
                Thread.sleep(forTimeInterval: progress)
                tick()
            }
        }
        ticker.start()
        let cutting = cut.map { cut in Task { await self.inject(cut) } }
        let killing = kills.map { kill in Task { await self.inject(kill) } }
        defer {
            cutting?.cancel()
            killing.forEach { $0.cancel() }
        }
        await withTaskGroup(of: Void.self) { group in
            for (i, job) in jobs.enumerated() {
                let delay = jobs.count > 1 ? rampUp * Double(i) / Double(jobs.count) : 0
                group.addTask {
                    await Self.drive(
                        job.0, delay: delay, rounds: rounds, end: end, interval: interval, stats: stats, round: job.1)
                }
            }
        }
        tick()
    }

    /// Cuts the links of `cut.share` of the devices (every n-th, so each kind and gateway loses some) for its time,
    /// each change marked on the report's timeline.
    private func inject(_ cut: LinkCut) async {
        let all = locks.map(\.device) + terminals.map(\.device) + bulbs.map(\.device)
        let chosen = all.enumerated().filter {
            Int(Double($0.offset + 1) * cut.share) > Int(Double($0.offset) * cut.share)
        }.map(\.element)
        guard !chosen.isEmpty else { return }
        do { try await Task.sleep(nanoseconds: UInt64(cut.at * 1e9)) } catch { return }
        chosen.forEach { $0.cutLink() }
        stats.mark("links cut: \(chosen.count) devices for \(Int(cut.seconds)) s")
        emit("fault: the links of \(chosen.count) devices are cut for \(Int(cut.seconds)) s")
        try? await Task.sleep(nanoseconds: UInt64(cut.seconds * 1e9))
        chosen.forEach { $0.restoreLink() }
        stats.mark("links restored")
        emit("fault: the links of \(chosen.count) devices are back")
    }

    /// Kills a gateway or the broker at its time, marked on the timeline; a kill that could not be done is a failure
    /// (the scenario did not run as asked).
    private func inject(_ kill: ProcessKill) async {
        do { try await Task.sleep(nanoseconds: UInt64(kill.at * 1e9)) } catch { return }
        do {
            let pid = try kill.kill()
            stats.mark("\(kill.what) killed")
            emit("fault: \(kill.what) killed (pid \(pid), from \(kill.pidFile))")
        } catch {
            stats.fail("fault not injected: \(kill.what): \(error)")
            emit("fault: \(kill.what) NOT killed: \(error)")
        }
    }

    /// One device's life: its rounds until the limit or the end, each failure counted by reason.
    private static func drive(
        _ name: String, delay: Double, rounds: Int, end: Date, interval: Double, stats: FleetStats,
        round: @Sendable (Int) async throws -> Void
    ) async {
        if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
        stats.deviceOnline()
        var n = 0
        // A round cut short because the gateway could not be reached (restarting, say) is not a failure if the
        // device completes a round after it: devices ride through a gateway's restart.
        var interrupted = false
        while (rounds == 0 || n < rounds) && Date() < end {
            n += 1
            do {
                try await round(n)
                interrupted = false
            } catch  where isUnreachable(error) {
                interrupted = true
                stats.record("round interrupted (gateway unreachable)")
                stats.markOnce("gateway unreachable")
                emit("\(name) round \(n): interrupted, the gateway is unreachable: \(error)")
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            } catch {
                stats.fail(reason(error))
                emit("\(name) round \(n): FAILED: \(error)")
            }
            if interval > 0, Date() < end { try? await Task.sleep(nanoseconds: UInt64(interval * 1e9)) }
        }
        if interrupted { stats.fail("gateway unreachable until the device's last round") }
    }

    /// Whether `error` says the gateway could not be reached at all (a refused or reset connection, no answer, a
    /// gateway saying it is stopping), as opposed to an answer that was wrong.
    static func isUnreachable(_ error: Error) -> Bool {
        switch error {
        case NodeClientError.transport: return true
        // A gateway on its way down answers that it is stopping: a restart, like a refused connection after it.
        case NodeClientError.api(503, "shuttingDown", _): return true
        case DeviceSyncError.transport(let e):
            switch e {
            case .timeout, .socket, .reset, .mqtt: return true
            default: return false
            }
        default: return false
        }
    }

    /// A failure's name for the report: the message without ids, so failures of one kind add up.
    static func reason(_ error: Error) -> String {
        let text = "\(error)"
        return text.replacing(#/[0-9a-f]{64}|amsc1[0-9a-z]+|\d+/#, with: "…")
    }

    /// The chain's word on everything the terminals showed paid: each receipt a final payment of its amount.
    func checkReceipts() throws -> Int {
        let client = try NodeClient(baseURL: node.url)
        var checked = 0
        for receipt in stats.saleReceipts {
            guard case .included(let height, let position, _) = try client.transactionStatus(receipt.id).state,
                height == receipt.height
            else {
                stats.fail("a terminal receipt names no final payment")
                continue
            }
            let tx = try client.block(height).transactions[position]
            guard case .transfer(let t) = tx.body.payload, t.to == receipt.terminal, t.amount == receipt.amount else {
                stats.fail("a terminal receipt disagrees with its block")
                continue
            }
            checked += 1
        }
        return checked
    }
}
