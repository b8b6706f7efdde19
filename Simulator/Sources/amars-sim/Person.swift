import AmarsClient
import AmarsCodec
import AmarsCrypto
import Chain
import Foundation
import Ledger

/// A simulated person (a renter, a customer, the fleet's owner): a wallet with its own key that talks to a
/// gateway's HTTP API the way `amars` does. People are not light clients; the devices they deal with are.
struct Person: Sendable {
    let role: String
    let key: PrivateKey
    let address: Address

    /// Keys from the fleet's seed, in their own range so they never collide with a device's.
    init(role: String, seed: UInt64, index: Int) {
        self.init(role: role, key: VirtualDevice.key(seed: seed, index: 1_000_000 + index))
    }

    /// A person whose key was given (the operator's root key, `--mqtt-ca-key`).
    init(role: String, key: PrivateKey) {
        self.role = role
        self.key = key
        address = Address(publicKey: key.xOnlyPublicKey)
    }

    /// Signs `payload` with the account's next nonce (pending ones counted) and submits it.
    func submit(_ payload: TransactionPayload, via client: NodeClient) throws -> Bytes32 {
        let head = try client.head()
        let nonce = try client.account(address).nextNonce
        let body = TransactionBody(
            genesis: head.genesisBlockHash, sender: key.xOnlyPublicKey.bytes, nonce: nonce,
            maxFeePerUnit: head.nextBaseFee * 2 + 1, tipPerUnit: 1, payload: payload)
        return try client.submit(SignedTransaction(body: body, signer: key))
    }
}
