import AmarsCodec
import AmarsCrypto
import Ledger

/// How a gateway turns bytes into a ``VerifiedTransaction``: the portable check, with the sender keys it parsed
/// before and the signatures it checked before remembered. One per ``ChainNode``; safe from every core at once.
public final class TransactionChecker: Sendable {
    let keys: SenderKeyCache
    let signatures: SignatureCache

    public init(keys: SenderKeyCache = SenderKeyCache(), signatures: SignatureCache = SignatureCache()) {
        self.keys = keys
        self.signatures = signatures
    }

    /// Decoded and checked; a transaction `isKnown` says is held is `alreadyKnown` without a check.
    public func check(decoding bytes: [UInt8], unlessKnown isKnown: (Bytes32) -> Bool) throws(TransactionError)
        -> VerifiedTransaction
    {
        remember(
            try VerifiedTransaction(
                decoding: bytes, unlessKnown: isKnown, parseKey: keys.key, checkedBefore: signatures.contains))
    }

    public func check(_ tx: SignedTransaction) throws(TransactionError) -> VerifiedTransaction {
        remember(try VerifiedTransaction(tx, parseKey: keys.key, checkedBefore: signatures.contains))
    }

    private func remember(_ verified: VerifiedTransaction) -> VerifiedTransaction {
        signatures.insert(verified.id, verified.transaction.signature)
        return verified
    }
}
