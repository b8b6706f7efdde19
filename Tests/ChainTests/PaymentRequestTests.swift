import AmarsCodec
import AmarsCrypto
import Ledger
import XCTest

@testable import Chain

final class PaymentRequestTests: XCTestCase {
    let address = Address(publicKey: try! PrivateKey(bytes: Bytes32(w0: 0, w1: 0, w2: 0, w3: 9)).xOnlyPublicKey)

    func testURIRoundTripsWithAmountAndMemo() throws {
        let request = PaymentRequest(address: address, amount: 2_500_000, memo: "café & co/17")
        XCTAssertEqual(request.uri, "amarscity:\(address.bech32)?amount=2.5&memo=caf%C3%A9%20%26%20co%2F17")
        XCTAssertEqual(try PaymentRequest(uri: request.uri), request)
        XCTAssertEqual(try PaymentRequest(uri: "AMARSCITY:\(address.bech32)"), PaymentRequest(address: address))
        // An unknown parameter is ignored (BIP21), '+' stays '+' in a URI.
        XCTAssertEqual(
            try PaymentRequest(uri: "amarscity:\(address.bech32)?label=shop&memo=a+b"),
            PaymentRequest(address: address, memo: "a+b"))
    }

    func testEachBadRequestIsRefusedWithItsReason() {
        let a = address.bech32
        var broken = Array(a.utf8)
        broken[broken.count - 1] = broken.last == UInt8(ascii: "q") ? UInt8(ascii: "p") : UInt8(ascii: "q")
        let cases: [(String, PaymentRequest.ParseError)] = [
            ("bitcoin:\(a)", .notAPaymentRequest),
            ("amarscity:\(String(decoding: broken, as: UTF8.self))", .badAddress),
            ("amarscity:\(a)?amount=1.0000001", .badAmount(.tooManyDecimals)),
            ("amarscity:\(a)?amount=-1", .badAmount(.invalidCharacter)),
            ("amarscity:\(a)?amount=0", .badAmount(.zero)),
            ("amarscity:\(a)?memo=%G1", .badEncoding("memo")),
            ("amarscity:\(a)?memo=%FF", .badEncoding("memo")),
            ("amarscity:\(a)?memo=\(String(repeating: "x", count: 65))", .memoTooLong(65)),
            ("amarscity:\(a)?amount=1&amount=2", .duplicate("amount")),
            ("amarscity:\(a)?req-expires=99", .requiredUnknown("req-expires")),
        ]
        for (uri, expected) in cases {
            XCTAssertThrowsError(try PaymentRequest(uri: uri), uri) {
                XCTAssertEqual($0 as? PaymentRequest.ParseError, expected, uri)
            }
        }
    }
}
