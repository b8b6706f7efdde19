// swift-tools-version:6.0
// Amarscity: one package for the gateway (host) and the portable cores a device runs.
//
// `EMBEDDED=1` turns this manifest into the portable subset only, compiled in Embedded Swift mode, so that
// `make test` proves nothing a microcontroller cannot run has crept into the portable modules.
import PackageDescription

let embedded = Context.environment["EMBEDDED"] != nil
/// `AMARS_PORTABLE_ONLY=1` builds and tests the portable modules without resolving or compiling the host stack.
let hostParts = !embedded && Context.environment["AMARS_PORTABLE_ONLY"] == nil

/// Modules a device runs: no Foundation, no I/O, typed errors, bounded memory.
let portableSettings: [SwiftSetting] =
    embedded
    ? [.enableExperimentalFeature("Embedded"), .unsafeFlags(["-wmo"])]
    : []

var targets: [Target] = [
    .systemLibrary(name: "CSecp256k1", pkgConfig: "libsecp256k1", providers: [.apt(["libsecp256k1-dev"])]),
    .target(name: "AmarsCodec", swiftSettings: portableSettings),
    .target(name: "AmarsCrypto", dependencies: ["CSecp256k1", "AmarsCodec"], swiftSettings: portableSettings),
    .target(name: "Ledger", dependencies: ["AmarsCodec", "AmarsCrypto"], swiftSettings: portableSettings),
    .target(name: "DeviceProtocol", dependencies: ["AmarsCodec"], swiftSettings: portableSettings),
    .target(
        name: "LightClient", dependencies: ["AmarsCodec", "AmarsCrypto", "Ledger"], swiftSettings: portableSettings),
]

var products: [Product] = [
    .library(name: "AmarsPortable", targets: ["AmarsCodec", "AmarsCrypto", "Ledger", "DeviceProtocol", "LightClient"])
]

var dependencies: [Package.Dependency] = []

if !embedded {
    targets += [
        .target(name: "AmarsTestSupport", dependencies: ["AmarsCodec"], path: "Tests/AmarsTestSupport"),
        .testTarget(name: "AmarsCodecTests", dependencies: ["AmarsTestSupport", "AmarsCodec"], exclude: ["SOURCES.md"]),
        .testTarget(
            name: "AmarsCryptoTests", dependencies: ["AmarsTestSupport", "AmarsCrypto"], resources: [.copy("Vectors")]),
        .testTarget(name: "LedgerTests", dependencies: ["AmarsTestSupport", "Ledger"]),
        .testTarget(name: "DeviceProtocolTests", dependencies: ["AmarsTestSupport", "DeviceProtocol"], exclude: ["SOURCES.md"]),
        .testTarget(name: "LightClientTests", dependencies: ["AmarsTestSupport", "LightClient"]),
        // Consensus is a sans-I/O state machine with no host dependencies, so it builds in the light set too.
        .target(name: "Consensus", dependencies: ["Ledger"]),
        .testTarget(name: "ConsensusTests", dependencies: ["AmarsTestSupport", "Consensus"]),
    ]
}

/// Firmware images (see Boards/Makefile): the board's C support (startup, UART, exit) as a C target chosen by
/// `BOARD`, and the shared firmware application on top of the portable modules.
if embedded {
    let board = Context.environment["BOARD"] ?? "qemu-mps2-an386"
    targets += [
        .target(name: "Board", path: "Boards/\(board)", exclude: ["README.md", "board.ld", "board.mk"]),
        .executableTarget(
            name: "Firmware", dependencies: ["Board", "AmarsCodec", "AmarsCrypto", "Ledger", "DeviceProtocol", "LightClient"],
            path: "Boards/Firmware", exclude: ["fixtures"], swiftSettings: portableSettings),
    ]
    products.append(.executable(name: "Firmware", targets: ["Firmware"]))
}

if hostParts {
    dependencies = [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ]
    let nio: [Target.Dependency] = [
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ]
    let log: Target.Dependency = .product(name: "Logging", package: "swift-log")
    let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
    targets += [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCoAP", pkgConfig: "libcoap-3-gnutls", providers: [.apt(["libcoap3-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .target(name: "Chain", dependencies: ["Ledger", "CSQLite", log]),
        .target(name: "AmarsClient", dependencies: ["Ledger"]),
        .target(name: "Network", dependencies: ["Ledger", log] + nio),
        .target(
            name: "DeviceGateway", dependencies: ["Chain", "DeviceProtocol", "LightClient", "CCoAP", "CMosquitto", log]),
        .target(
            name: "GatewayNode",
            dependencies: ["Chain", "DeviceGateway", "Consensus", "Network", .product(name: "Yams", package: "Yams"), log]
                + nio),
        .executableTarget(name: "amarsd", dependencies: ["GatewayNode", "DeviceGateway", "DeviceProtocol", argumentParser, log]),
        .executableTarget(
            name: "amars", dependencies: ["Chain", "AmarsClient", "DeviceGateway", "LightClient", argumentParser]),
        .executableTarget(
            name: "amars-bench",
            dependencies: [
                "Chain", "Consensus", "CSecp256k1", "DeviceGateway", "DeviceProtocol", "LightClient", argumentParser,
            ]),
        .executableTarget(
            name: "amars-sim", dependencies: ["Chain", "AmarsClient", "DeviceGateway", "LightClient", argumentParser]),
        .testTarget(name: "ChainTests", dependencies: ["AmarsTestSupport", "Chain", "LightClient"]),
        .testTarget(name: "NetworkTests", dependencies: ["AmarsTestSupport", "Network"]),
        .testTarget(
            name: "DeviceGatewayTests", dependencies: ["AmarsTestSupport", "DeviceGateway", "LightClient", "AmarsClient"]),
        .testTarget(name: "GatewayNodeTests", dependencies: ["AmarsTestSupport", "GatewayNode", "AmarsClient"]),
    ]
    products += [
        .executable(name: "amarsd", targets: ["amarsd"]),
        .executable(name: "amars", targets: ["amars"]),
        .executable(name: "amars-bench", targets: ["amars-bench"]),
        .executable(name: "amars-sim", targets: ["amars-sim"]),
    ]
}

/// `AMARS_FUZZ=1` adds the libFuzzer entry point over the chain's decoders (see scripts/fuzz.sh). It exists only
/// in that build because libFuzzer supplies `main`.
if Context.environment["AMARS_FUZZ"] != nil {
    targets.append(.target(name: "CFuzzDriver"))
    targets.append(
        .executableTarget(
            name: "AmarsFuzz", dependencies: ["Ledger", "DeviceProtocol", "CFuzzDriver"],
            swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]))
    products.append(.executable(name: "AmarsFuzz", targets: ["AmarsFuzz"]))
}

let package = Package(
    name: "Amarscity",
    platforms: [.macOS(.v14)],
    products: products,
    dependencies: dependencies,
    targets: targets
)
