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
        try remembering { checkedBefore throws(TransactionError) in
            try VerifiedTransaction(
                decoding: bytes, unlessKnown: isKnown, parseKey: keys.key, checkedBefore: checkedBefore)
        }
    }

    public func check(_ tx: SignedTransaction) throws(TransactionError) -> VerifiedTransaction {
        try remembering { checkedBefore throws(TransactionError) in
            try VerifiedTransaction(tx, parseKey: keys.key, checkedBefore: checkedBefore)
        }
    }

    /// `verify` given what was checked before; a signature it then checked and found good is remembered (one it
    /// found remembered is not written again).
    private func remembering(
        _ verify: ((Bytes32, Bytes64) -> Bool) throws(TransactionError) -> VerifiedTransaction
    ) throws(TransactionError) -> VerifiedTransaction {
        var remembered = false
        let verified = try verify { id, signature in
            remembered = signatures.contains(id, signature)
            return remembered
        }
        if !remembered { signatures.insert(verified.id, verified.transaction.signature) }
        return verified
    }
}
