import AmarsCodec
import AmarsCrypto
import AmarsTestSupport
import Foundation
import Ledger
import XCTest

@testable import Chain

/// Deterministic keys and a genesis that funds them, for tests that need a running chain.
struct TestChain {
    static let chainID: UInt32 = 4242

    typealias SplitMix = SplitMix64

    static func key(_ n: UInt64) -> PrivateKey {
        try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: n, w3: 0x1234_5678 &+ n))
    }

    static func address(_ key: PrivateKey) -> Address { Address(publicKey: key.xOnlyPublicKey) }

    let validator: PrivateKey
    /// One funded key per genesis category, in `Genesis.Category.allCases` order.
    let funded: [PrivateKey]
    let genesis: Genesis
    let directory: URL

    init(epochLength: UInt64 = 10, burnStage4: UInt64 = 0) {
        validator = TestChain.key(1)
        funded = (0..<UInt64(Genesis.Category.allCases.count)).map { TestChain.key(100 + $0) }
        var allocations: [Genesis.Allocation] = []
        var burned: [Genesis.Category: UInt64] = [:]
        for (i, c) in Genesis.Category.allCases.enumerated() {
            let burn = c == .icoStage4 ? burnStage4 : 0
            if burn > 0 { burned[c] = burn }
            if c.amount > burn {
                allocations.append(.init(category: c, address: TestChain.address(funded[i]), amount: c.amount - burn))
            }
        }
        genesis = Genesis(
            chainID: TestChain.chainID, chainName: "test", timestamp: 1_700_000_000_000, epochLength: epochLength,
            initialBaseFee: 1, validators: [.init(key: validator.xOnlyPublicKey.bytes, weight: 1)],
            allocations: allocations, burned: burned)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("amars-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func openNode(_ file: String = "chain.sqlite", validator: Bool = true, limits: Mempool.Limits = .init()) throws
        -> ChainNode
    {
        try ChainNode(
            genesis: genesis, store: try BlockStore(path: path(file)), validatorKey: validator ? self.validator : nil,
            mempoolLimits: limits)
    }

    func transfer(
        from key: PrivateKey, to: Address, amount: UInt64, nonce: UInt64, maxFee: UInt64 = 10, tip: UInt64 = 1,
        genesis otherGenesis: Bytes32? = nil
    ) -> SignedTransaction {
        let body = TransactionBody(
            genesis: otherGenesis ?? genesis.header.hash, sender: key.xOnlyPublicKey.bytes, nonce: nonce,
            maxFeePerUnit: maxFee, tipPerUnit: tip,
            payload: .transfer(Transfer(to: to, amount: amount)))
        return SignedTransaction(body: body, signer: key)
    }

    func cleanup() { try? FileManager.default.removeItem(at: directory) }
}
