import AmarsCodec
import AmarsCrypto
import Ledger

/// Why the wallet refused to build or account for a transaction. Each is a caller mistake, caught before
/// anything is signed, because a gateway would refuse the transaction anyway.
public enum WalletError: Error, Equatable, Sendable {
    /// Transfers of zero are refused by the chain's decoder.
    case zeroAmount
    /// The tip is part of the fee cap, so it cannot exceed it.
    case tipAboveFeeCap
    /// The memo is longer than `Caps.memoBytes`.
    case memoTooLong
    /// The transaction reported accepted is not this wallet's next one (another sender, or another nonce).
    case notNextTransaction(expectedNonce: UInt64, got: UInt64)
}

/// A device's own account: its key and the nonce of the next transaction it will sign.
///
/// The nonce moves only through ``markAccepted(_:)``, so a transaction that was signed but never reached
/// the chain (radio lost, gateway refused) does not leave a gap that would block every later one; signing the
/// same nonce again simply replaces it. The firmware persists ``nextNonce`` next to the trusted state.
public struct DeviceWallet: Sendable {
    public let key: PrivateKey
    public let address: Address
    /// Nonce the next transaction will carry.
    public private(set) var nextNonce: UInt64

    public init(key: PrivateKey, nextNonce: UInt64) {
        self.key = key
        self.address = Address(publicKey: key.xOnlyPublicKey)
        self.nextNonce = nextNonce
    }

    /// A signed transfer of `amount` base units to `recipient` with the next nonce. Does not advance the nonce.
    ///
    /// `auxRandom` is BIP340's auxiliary randomness: pass fresh bytes from the device's RNG when it has one
    /// (it hardens signing against fault and side-channel attacks); the signature is secure with zero too.
    /// `genesis`: the chain's genesis block hash (``DeviceTrustAnchor/genesisHeaderHash``).
    public func transfer(
        genesis: Bytes32, to recipient: Address, amount: UInt64, maxFeePerUnit: UInt64, tipPerUnit: UInt64,
        memo: [UInt8] = [], auxRandom: Bytes32 = .zero
    ) throws(WalletError) -> SignedTransaction {
        guard amount > 0 else { throw .zeroAmount }
        guard tipPerUnit <= maxFeePerUnit else { throw .tipAboveFeeCap }
        guard memo.count <= Caps.memoBytes else { throw .memoTooLong }
        return try signed(
            .transfer(Transfer(to: recipient, amount: amount, memo: memo)), genesis: genesis,
            maxFeePerUnit: maxFeePerUnit, tipPerUnit: tipPerUnit, auxRandom: auxRandom)
    }

    /// Any payload signed with the next nonce (a lock's escrow close, for one). Does not advance the nonce.
    public func signed(
        _ payload: TransactionPayload, genesis: Bytes32, maxFeePerUnit: UInt64, tipPerUnit: UInt64,
        auxRandom: Bytes32 = .zero
    ) throws(WalletError) -> SignedTransaction {
        guard tipPerUnit <= maxFeePerUnit else { throw .tipAboveFeeCap }
        let body = TransactionBody(
            genesis: genesis, sender: key.xOnlyPublicKey.bytes, nonce: nextNonce, maxFeePerUnit: maxFeePerUnit,
            tipPerUnit: tipPerUnit, payload: payload)
        return SignedTransaction(body: body, signer: key, auxRandom: auxRandom)
    }

    /// Advances the nonce after the gateway accepted `transaction` (or it was seen in a verified block).
    /// Refuses anything but this wallet's transaction with the current nonce, so a duplicate acknowledgement
    /// cannot skip a nonce.
    public mutating func markAccepted(_ transaction: SignedTransaction) throws(WalletError) {
        guard transaction.body.sender == key.xOnlyPublicKey.bytes else {
            throw .notNextTransaction(expectedNonce: nextNonce, got: transaction.body.nonce)
        }
        try markAccepted(nonce: transaction.body.nonce)
    }

    /// ``markAccepted(_:)`` for a transaction this wallet signed, known by its nonce.
    public mutating func markAccepted(nonce: UInt64) throws(WalletError) {
        guard nonce == nextNonce else { throw .notNextTransaction(expectedNonce: nextNonce, got: nonce) }
        nextNonce += 1
    }

    /// Adopts the nonce of a verified account state (``ProofVerifier/verifyAccount(_:of:proof:stateRoot:)``):
    /// after a reboot that lost the stored nonce, or when pending transactions were dropped.
    public mutating func resync(verifiedAccount: AccountState) {
        nextNonce = verifiedAccount.nonce
    }
}
