import AmarsCrypto
import Ledger

/// The device of the end-to-end tests (over CoAP in DeviceGatewayTests, over MQTT with a real broker in
/// IntegrationTests): its key, and a chain with short epochs that funded it.
public enum EndToEndDevice {
    /// Short epochs, so a handful of blocks makes several checkpoints.
    public static let epochLength: UInt64 = 4
    public static let key = CoAPFixture.key(9)
    public static var address: Address { CoAPFixture.address(key) }

    /// A chain whose device account is funded in block 1, advanced to `height`.
    public static func fundedChain(height: UInt64) throws -> CoAPFixture {
        let f = try CoAPFixture(epochLength: epochLength)
        let funding = TransactionBody(
            genesis: f.node.genesisBlockHash, sender: f.alice.xOnlyPublicKey.bytes, nonce: 0, maxFeePerUnit: 100,
            tipPerUnit: 1, payload: .transfer(Transfer(to: address, amount: 5_000_000)))
        _ = try f.node.submit(SignedTransaction(body: funding, signer: f.alice))
        for _ in 0..<height { try f.produceBlock() }
        return f
    }
}
