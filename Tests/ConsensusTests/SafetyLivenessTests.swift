import Foundation
import XCTest

@testable import Consensus

/// Safety and liveness over many seeded scenarios (see `SimulationHarness.swift`).
///
/// Reproduce one run exactly: `AMARS_SIM_SEED=<seed> AMARS_SIM_N=<members> swift test --filter testSingleSeed`.
/// Soak: `AMARS_SOAK_SEEDS=<count> [AMARS_SOAK_START=<first seed>] swift test --filter testSoak`.
final class SafetyLivenessTests: XCTestCase {
    /// Runs one seed; on failure reports the scenario and the exact command that replays it.
    @discardableResult
    static func runSeed(_ seed: UInt64, n: Int, verbose: Bool = false) -> (SimResult, Scenario) {
        let scenario = Scenario.random(seed: seed, n: n)
        var sim = Simulation(scenario: scenario)
        let result = sim.run()
        if verbose {
            print(
                "\(scenario)\n  -> t=\(result.virtualTime) decisions=\(result.decisions) max round \(result.maxRound) "
                    + "delivered=\(result.messagesDelivered) evidence=\(result.evidence) dropped=\(result.dropped)")
        }
        return (result, scenario)
    }

    func check(seeds: some Sequence<UInt64>, n: Int, file: StaticString = #filePath, line: UInt = #line) {
        var failed = 0
        var decisions = 0
        var evidence = 0
        var count = 0
        for seed in seeds {
            let (result, scenario) = Self.runSeed(seed, n: n)
            count += 1
            decisions += result.decisions
            evidence += result.evidence
            if !result.failures.isEmpty {
                failed += 1
                XCTFail(
                    "\(scenario)\n  \(result.failures.joined(separator: "\n  "))\n  replay: AMARS_SIM_SEED=\(seed) "
                        + "AMARS_SIM_N=\(n) swift test --filter testSingleSeed",
                    file: file, line: line)
                if failed >= 5 { break }
            }
        }
        print("n=\(n): \(count) seeds, \(decisions) decisions, \(evidence) evidence reports, \(failed) failed")
    }

    func testFourMembers() {
        check(seeds: 1...200, n: 4)
    }

    func testSevenMembers() {
        check(seeds: 1...60, n: 7)
    }

    func testTwentyFourMembers() {
        check(seeds: 1...3, n: 24)
    }

    /// The checker has teeth: with half the weight byzantine (beyond the f < n/3 the protocol promises) the
    /// coalition's split-brain strategy does fork the chain, and the harness reports it.
    func testHarnessDetectsAForkBeyondOneThirdFaulty() {
        var forks = 0
        for seed in UInt64(1)...20 {
            var scenario = Scenario.random(seed: seed, n: 4)
            scenario.weights = [1, 1, 1, 1]
            scenario.roles = [.byzantine, .byzantine, .honest, .honest]
            scenario.byzantineSplit = [true, true, true, false]
            scenario.dropRate = 0
            scenario.partition = nil
            scenario.gst = 0
            var sim = Simulation(scenario: scenario)
            if sim.run().failures.contains(where: { $0.contains("SAFETY") }) { forks += 1 }
        }
        XCTAssertGreaterThan(forks, 0, "two byzantine members of four must be able to fork some run")
    }

    /// Replays one seed verbosely: AMARS_SIM_SEED (and AMARS_SIM_N, default 4) pick the run a failure printed;
    /// without them it replays a 7-member run with two equivocating members.
    func testSingleSeed() throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["AMARS_SIM_SEED"].flatMap { UInt64($0) } ?? 9
        let n = env["AMARS_SIM_N"].flatMap { Int($0) } ?? (env["AMARS_SIM_SEED"] == nil ? 7 : 4)
        let (result, scenario) = Self.runSeed(seed, n: n, verbose: true)
        XCTAssert(result.failures.isEmpty, "\(scenario)\n  \(result.failures.joined(separator: "\n  "))")
    }

    /// The long run behind `make soak`: AMARS_SOAK_SEEDS seeds (default 4) from AMARS_SOAK_START, cycling through
    /// committees of 4, 7, 10 and 24 members.
    func testSoak() {
        let env = ProcessInfo.processInfo.environment
        let count = env["AMARS_SOAK_SEEDS"].flatMap { UInt64($0) } ?? 4
        let first = env["AMARS_SOAK_START"].flatMap { UInt64($0) } ?? 1_000_000
        let sizes = [4, 7, 10, 4, 7, 24]
        for (k, seed) in (first..<(first + count)).enumerated() {
            let n = sizes[k % sizes.count]
            check(seeds: [seed], n: n)
        }
    }
}
