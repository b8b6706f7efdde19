import AmarsCodec
import AmarsCrypto
import Chain
import DeviceGateway
import DeviceProtocol
import Foundation
import Ledger
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A one-validator chain on a temporary SQLite file with a CoAP server on a free loopback port. Blocks come
/// from `produceBlock()` calls, so every test decides exactly when the head moves.
public final class CoAPFixture {
    public static let chainID: UInt32 = 77

    public let dir: URL
    public let validator: PrivateKey
    public let alice: PrivateKey
    public let bob: PrivateKey
    public let genesis: Genesis
    public let node: ChainNode
    public let server: CoAPServer
    /// The command door behind the server's `v1/commands`.
    public let commandDoor: CommandDoor
    /// The channel door behind the server's `v1/channel/message` and `v1/channel/messages`.
    public let channelDoor: ChannelDoor
    public let port: UInt16
    private var clock: UInt64

    public static func key(_ n: UInt64) -> PrivateKey { try! PrivateKey(bytes: Bytes32(w0: 0, w1: 7, w2: 0, w3: n)) }
    public static func address(_ key: PrivateKey) -> Address { Address(publicKey: key.xOnlyPublicKey) }

    /// `start: false` leaves the server stopped (for handler-only tests).
    public init(
        epochLength: UInt64 = 100, limits: CoAPServer.Limits = .init(), mempoolLimits: Mempool.Limits = .init(),
        dtlsKeys: [String: [UInt8]]? = nil, start: Bool = true
    ) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("amars-coap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        validator = Self.key(1)
        alice = Self.key(2)
        bob = Self.key(3)
        var allocations: [Genesis.Allocation] = []
        for category in Genesis.Category.allCases {
            let owner = category == .strategicPartners ? bob : alice
            allocations.append(.init(category: category, address: Self.address(owner), amount: category.amount))
        }
        genesis = Genesis(
            chainID: Self.chainID, chainName: "coap-test", timestamp: 1_700_000_000_000, epochLength: epochLength,
            initialBaseFee: 10, validators: [Committee.Member(key: validator.xOnlyPublicKey.bytes, weight: 1)],
            allocations: allocations, burned: [:])
        clock = genesis.timestamp
        var logger = Logger(label: "coap-test")
        logger.logLevel = .critical
        node = try ChainNode(
            genesis: genesis, store: try BlockStore(path: dir.appendingPathComponent("chain.sqlite").path),
            validatorKey: validator, mempoolLimits: mempoolLimits, logger: logger)
        // Port 0 is not portable across libcoap versions: take a port the kernel just handed out, and retry if
        // another process grabbed it in between.
        commandDoor = CommandDoor(node: node)
        channelDoor = ChannelDoor(node: node)
        (server, port) = try Self.startServer(
            node: node, logger: logger, limits: limits, dtlsKeys: dtlsKeys, commands: commandDoor,
            channels: channelDoor, start: start)
    }

    private static func startServer(
        node: ChainNode, logger: Logger, limits: CoAPServer.Limits, dtlsKeys: [String: [UInt8]]?,
        commands: CommandDoor, channels: ChannelDoor, start: Bool
    ) throws -> (CoAPServer, UInt16) {
        var attempts = 0
        while true {
            let candidate = try freeUDPPort()
            let dtls = try dtlsKeys.map { CoAPServer.DTLSPSK(port: try freeUDPPort(), keys: $0) }
            let server = CoAPServer(
                node: node, host: "127.0.0.1", port: candidate, logger: logger, limits: limits, dtls: dtls,
                commands: commands, channels: channels)
            if !start { return (server, candidate) }
            do {
                try server.start()
                return (server, candidate)
            } catch {
                attempts += 1
                if attempts > 5 { throw error }
            }
        }
    }

    public func close() {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    public func transfer(
        from key: PrivateKey, nonce: UInt64, amount: UInt64 = 1_000, maxFee: UInt64 = 100, to: Address? = nil
    ) -> SignedTransaction {
        let body = TransactionBody(
            genesis: node.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonce, maxFeePerUnit: maxFee,
            tipPerUnit: 1, payload: .transfer(Transfer(to: to ?? Self.address(bob), amount: amount)))
        return SignedTransaction(body: body, signer: key)
    }

    /// Alice signs `payload` with her next nonce, and a block includes it.
    public func aliceIncludes(_ payload: TransactionPayload) throws {
        let nonce = node.account(Self.address(alice)).state.nonce
        _ = try node.submit(
            SignedTransaction(
                body: TransactionBody(
                    genesis: node.genesisBlockHash, sender: alice.xOnlyPublicKey.bytes, nonce: nonce,
                    maxFeePerUnit: 100, tipPerUnit: 1, payload: payload), signer: alice))
        try produceBlock()
    }

    @discardableResult
    public func produceBlock() throws -> FinalizedBlock {
        clock += 1000
        return try node.produceBlock(timestamp: clock)
    }

    public var headPayload: HeaderPayload {
        let stored = try! node.block(at: node.head.height)!
        return HeaderPayload(stored.finalized)
    }

    public static func freeUDPPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}
