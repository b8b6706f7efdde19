// swift-tools-version:6.0
// Amarscity: one package for the gateway (host) and the portable cores a device runs.
//
// The source tree says where each module runs:
//   Sources/Portable  what a device runs (Embedded Swift, no Foundation): codec, crypto, ledger types, the device
//                     protocol, the light client and the device session
//   Sources/Gateway   what a gateway node runs: chain store, consensus, peer network, device doors, the daemon
//   Sources/Host      host tools: the CLI, the host device client, benchmarks, the fuzz driver
//   Sources/C         Debian's C libraries as Swift modules
//   Simulator/        fleets of virtual devices (the same device session, over real sockets)
//   Boards/           firmware images: the device session over a board's UART
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

func portable(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .target(name: name, dependencies: dependencies, path: "Sources/Portable/\(name)", swiftSettings: portableSettings)
}

func system(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Sources/C/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

var targets: [Target] = [
    system("CSecp256k1", pkgConfig: "libsecp256k1", apt: "libsecp256k1-dev"),
    portable("AmarsCodec", []),
    // On a host, SHA-256's compression comes from OpenSSL (the CPU's SHA extensions); Embedded builds and the
    // firmware keep the portable Swift rounds.
    portable("AmarsCrypto", ["CSecp256k1", "AmarsCodec"] + (embedded ? [] : ["CSHA256Accel"])),
    portable("Ledger", ["AmarsCodec", "AmarsCrypto"]),
    portable("DeviceProtocol", ["AmarsCodec", "AmarsCrypto", "Ledger"]),
    portable("LightClient", ["AmarsCodec", "AmarsCrypto", "Ledger"]),
    portable("PaymentCodes", ["AmarsCodec", "AmarsCrypto", "Ledger"]),
    portable("DeviceIdentity", ["AmarsCodec", "AmarsCrypto", "Ledger"]),
    portable(
        "DeviceCore",
        ["AmarsCodec", "AmarsCrypto", "Ledger", "DeviceProtocol", "LightClient", "PaymentCodes", "DeviceIdentity"]),
]

if !embedded { targets.append(system("CSHA256Accel", pkgConfig: "libcrypto", apt: "libssl-dev")) }

var products: [Product] = [
    .library(
        name: "AmarsPortable",
        targets: [
            "AmarsCodec", "AmarsCrypto", "Ledger", "DeviceProtocol", "LightClient", "PaymentCodes", "DeviceIdentity",
            "DeviceCore",
        ])
]

var dependencies: [Package.Dependency] = []

if !embedded {
    targets += [
        .target(name: "AmarsTestSupport", dependencies: ["AmarsCodec"], path: "Tests/AmarsTestSupport"),
        .testTarget(
            name: "AmarsCodecTests", dependencies: ["AmarsTestSupport", "AmarsCodec"], exclude: ["SOURCES.md"]),
        .testTarget(
            name: "AmarsCryptoTests", dependencies: ["AmarsTestSupport", "AmarsCrypto"], resources: [.copy("Vectors")]),
        .testTarget(name: "LedgerTests", dependencies: ["AmarsTestSupport", "Ledger"]),
        .testTarget(
            name: "DeviceProtocolTests", dependencies: ["AmarsTestSupport", "DeviceProtocol"], exclude: ["SOURCES.md"]),
        .testTarget(name: "LightClientTests", dependencies: ["AmarsTestSupport", "LightClient"]),
        .testTarget(
            name: "PaymentCodeTests", dependencies: ["AmarsTestSupport", "PaymentCodes"], resources: [.copy("Vectors")]
        ),
        .testTarget(name: "IdentityTests", dependencies: ["AmarsTestSupport", "DeviceIdentity"]),
        // Consensus is a sans-I/O state machine with no host dependencies, so it builds in the light set too.
        .target(name: "Consensus", dependencies: ["Ledger"], path: "Sources/Gateway/Consensus"),
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
            name: "Firmware",
            dependencies: [
                "Board", "AmarsCodec", "AmarsCrypto", "Ledger", "DeviceProtocol", "LightClient", "DeviceCore",
                "PaymentCodes", "DeviceIdentity",
            ],
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
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ]
    let nio: [Target.Dependency] = [
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ]
    let log: Target.Dependency = .product(name: "Logging", package: "swift-log")
    let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
    func gateway(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
        .target(name: name, dependencies: dependencies, path: "Sources/Gateway/\(name)")
    }
    func host(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
        .target(name: name, dependencies: dependencies, path: "Sources/Host/\(name)")
    }
    targets += [
        system("CSQLite", pkgConfig: "sqlite3", apt: "libsqlite3-dev"),
        system("CCoAP", pkgConfig: "libcoap-3-gnutls", apt: "libcoap3-dev"),
        system("CMosquitto", pkgConfig: "libmosquitto", apt: "libmosquitto-dev"),
        system("CTLS", pkgConfig: "libssl", apt: "libssl-dev"),
        system("CSodium", pkgConfig: "libsodium", apt: "libsodium-dev"),
        system("CQREncode", pkgConfig: "libqrencode", apt: "libqrencode-dev"),
        .systemLibrary(name: "CEpoll", path: "Sources/C/CEpoll"),
        // Gateway: the chain, its peers and the device doors.
        gateway("Chain", ["Ledger", "DeviceIdentity", "CSQLite", "CSodium", log]),
        gateway("QRCode", ["CQREncode"]),
        gateway("Network", ["Ledger", log] + nio),
        gateway(
            "DeviceGateway",
            [
                "Chain", "DeviceProtocol", "LightClient", "DeviceCore", "DeviceIdentity", "PaymentCodes", "CCoAP",
                "CMosquitto", log,
            ]),
        gateway(
            "GatewayNode",
            [
                "Chain", "DeviceGateway", "Consensus", "Network", "QRCode", "DeviceIdentity",
                .product(name: "Yams", package: "Yams"), log,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ] + nio),
        .executableTarget(
            name: "amarsd",
            dependencies: ["GatewayNode", "DeviceGateway", "DeviceProtocol", "BuildInfo", argumentParser, log],
            path: "Sources/Gateway/amarsd"),
        // `--version` of every binary: the release and the git commit (generated by the plugin at build time).
        .target(
            name: "BuildInfo", path: "Sources/Host/BuildInfo", plugins: [.plugin(name: "BuildInfoPlugin")]),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool(), path: "Plugins/BuildInfoPlugin"),
        // Host: what talks to a gateway from outside, as a wallet (AmarsClient, HTTP) or as a device (DeviceClient:
        // the portable device session over UDP CoAP and MQTT). Neither links the gateway.
        host("AmarsClient", ["Ledger", "DeviceIdentity"]),
        host(
            "DeviceClient",
            [
                "AmarsCodec", "AmarsCrypto", "Ledger", "DeviceProtocol", "LightClient", "DeviceCore", "DeviceIdentity",
                "CMosquitto", "CTLS", "CEpoll", log,
            ]),
        .executableTarget(
            name: "amars",
            dependencies: [
                "Chain", "AmarsClient", "DeviceClient", "LightClient", "PaymentCodes", "DeviceIdentity", "QRCode",
                "BuildInfo", argumentParser,
            ],
            path: "Sources/Host/amars"),
        .executableTarget(
            name: "amars-bench",
            dependencies: [
                "Chain", "Consensus", "CSecp256k1", "DeviceGateway", "DeviceClient", "DeviceProtocol", "LightClient",
                "PaymentCodes", "DeviceIdentity", "AmarsClient", "BuildInfo", argumentParser,
            ],
            path: "Sources/Host/amars-bench"),
        .executableTarget(
            name: "amars-sim",
            dependencies: [
                "Chain", "AmarsClient", "DeviceClient", "DeviceCore", "DeviceProtocol", "LightClient", "DeviceIdentity",
                "BuildInfo", argumentParser,
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Simulator/Sources/amars-sim"),
        .testTarget(
            name: "ChainTests", dependencies: ["AmarsTestSupport", "Chain", "LightClient", "DeviceIdentity", "CSodium"]),
        .testTarget(name: "NetworkTests", dependencies: ["AmarsTestSupport", "Network"]),
        // Fixtures the gateway's unit tests and the integration tests share: a chain with a CoAP server on loopback,
        // a UDP test socket, CoAP requests.
        .target(
            name: "GatewayTestSupport",
            dependencies: ["AmarsTestSupport", "Chain", "DeviceGateway", "DeviceProtocol", log],
            path: "Tests/GatewayTestSupport"),
        .testTarget(
            name: "DeviceGatewayTests",
            dependencies: [
                "AmarsTestSupport", "GatewayTestSupport", "DeviceGateway", "DeviceClient", "DeviceCore", "LightClient",
                "PaymentCodes", "DeviceIdentity",
            ]),
        .testTarget(name: "GatewayNodeTests", dependencies: ["AmarsTestSupport", "GatewayNode", "AmarsClient"]),
        // Tests that start real processes: several `amarsd` on loopback, the `amars` and `amars-sim` CLIs, mosquitto,
        // coap-client, the firmware in QEMU through `make -C Boards`. They run the binaries built beside the test
        // bundle, so build everything first (`swift build --build-tests`); `make integration-test` runs them alone.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "AmarsTestSupport", "GatewayTestSupport", "GatewayNode", "DeviceGateway", "AmarsClient", "DeviceClient",
                "DeviceCore", "LightClient", "PaymentCodes", log,
            ]),
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
    targets.append(.target(name: "CFuzzDriver", path: "Sources/C/CFuzzDriver"))
    targets.append(
        .executableTarget(
            name: "AmarsFuzz",
            dependencies: [
                "Ledger", "LightClient", "DeviceProtocol", "DeviceCore", "PaymentCodes", "DeviceIdentity",
                "CFuzzDriver",
            ],
            path: "Sources/Host/AmarsFuzz",
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
