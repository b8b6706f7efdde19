import AmarsCodec
import AmarsCrypto
import Ledger

/// A transfer as the device it pays reads it out of a signed transaction: the fields a payee acts on and the id
/// its proofs are about.
///
/// Only the transfer kind is decoded, so the decoders of every other payload stay out of a device image (several
/// KiB of flash), and the id is hashed from the body bytes as received instead of re-encoded. A body encoded any
/// other way than canonically hashes to an id no transactions root holds, so its inclusion proof fails: nothing
/// here has to be trusted beyond what ``ProofVerifier`` then checks. The signature is read past, not verified:
/// a transaction in a final block was verified by the committee that certified it.
public struct IncomingTransfer: Equatable, Sendable {
    public var id: Bytes32
    /// The genesis block hash the transaction names (``TransactionBody/genesis``).
    public var genesis: Bytes32
    /// The payer's x-only public key.
    public var sender: Bytes32
    public var nonce: UInt64
    public var to: Address
    public var amount: UInt64

    /// Reads one signed transaction at `reader`'s position and leaves the reader after it. Throws
    /// ``CodecError/unknownTag(_:)`` for any kind but a transfer.
    public init(reading reader: inout ByteReader) throws(CodecError) {
        let start = reader.position
        let version = try reader.readU8()
        guard version == TransactionBody.currentVersion else { throw .invalidValue(.version) }
        genesis = try reader.readBytes32()
        sender = try reader.readBytes32()
        nonce = try reader.readVarint()
        let maxFeePerUnit = try reader.readVarint()
        let tipPerUnit = try reader.readVarint()
        guard tipPerUnit <= maxFeePerUnit else { throw .invalidValue(.amount) }
        let tag = try reader.readU8()
        guard tag == TransactionPayload.transferTag else { throw .unknownTag(tag) }
        let transfer: Transfer = try reader.read()
        let end = reader.position
        _ = try reader.readBytes64()
        guard reader.position - start <= Caps.transactionBytes else {
            throw .lengthOverCap(length: UInt64(reader.position - start), cap: Caps.transactionBytes)
        }
        to = transfer.to
        amount = transfer.amount
        id = reader.bytes.withUnsafeBytes { Domain.transaction.hash(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
    }
}
