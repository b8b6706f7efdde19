import CSecp256k1
import Foundation
import Ledger

/// libsecp256k1's BIP340 verify alone, keys parsed beforehand, over the signatures of `encoded`: the per-core
/// rate every benchmark compares itself with, measured in its own run.
func rawSchnorrVerifyRate(encoded: [[UInt8]]) -> Double {
    let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
    defer { secp256k1_context_destroy(ctx) }
    var items: [(key: secp256k1_xonly_pubkey, message: [UInt8], signature: [UInt8])] = []
    for bytes in encoded {
        let tx = try! SignedTransaction(decoding: bytes)
        var key = secp256k1_xonly_pubkey()
        _ = secp256k1_xonly_pubkey_parse(ctx, &key, tx.body.sender.bytes)
        items.append((key, tx.id.bytes, tx.signature.bytes))
    }
    var ok = 0
    let t0 = DispatchTime.now()
    for var item in items {
        ok += Int(secp256k1_schnorrsig_verify(ctx, item.signature, item.message, 32, &item.key))
    }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
    precondition(ok == items.count, "baseline signatures must verify")
    return Double(items.count) / elapsed
}

/// Calls per second of `body` over about `seconds` (called in batches of 8 between clock reads).
func callsPerSecond(_ seconds: Double, _ body: () -> Void) -> Double {
    var calls = 0
    let start = DispatchTime.now().uptimeNanoseconds
    var elapsed: UInt64 = 0
    while elapsed < UInt64(seconds * 1e9) {
        for _ in 0..<8 { body() }
        calls += 8
        elapsed = DispatchTime.now().uptimeNanoseconds - start
    }
    return Double(calls) / (Double(elapsed) / 1e9)
}
