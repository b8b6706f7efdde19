import ArgumentParser
import BuildInfo

/// `amars-sim`: fleets of virtual devices against real gateways (`run`, the default), and the reports of fleets
/// run in several processes joined into one (`merge`).
@main
struct AmarsSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amars-sim",
        abstract: "Drive fleets of bike-share locks, shop terminals and smart-home bulbs against real gateways.",
        version: BuildInfo.description, subcommands: [FleetRun.self, MergeReports.self],
        defaultSubcommand: FleetRun.self)
}
