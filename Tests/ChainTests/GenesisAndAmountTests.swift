import AmarsCodec
import Foundation
import Ledger
import XCTest

@testable import Chain

final class GenesisAndAmountTests: XCTestCase {
    func testWhitePaperAllocationAddsUpToTheFixedSupply() {
        XCTAssertEqual(Genesis.Category.allCases.reduce(0) { $0 + $1.amount }, Amount.totalSupply)
        XCTAssertEqual(Amount.totalSupply, 500_000_000_000 * 1_000_000)
        let ico: UInt64 = [Genesis.Category.icoStage1, .icoStage2, .icoStage3, .icoStage4].reduce(0) { $0 + $1.amount }
        XCTAssertEqual(ico, 375_000_000_000 * 1_000_000)
    }

    func testJSONRoundTripAndValidation() throws {
        let t = TestChain(burnStage4: 4_000_000 * 1_000_000)
        defer { t.cleanup() }
        try t.genesis.validate()
        let decoded = try Genesis(jsonData: t.genesis.jsonData())
        XCTAssertEqual(decoded, t.genesis)
        XCTAssertEqual(decoded.hash, t.genesis.hash)
        XCTAssertEqual(decoded.totalAllocated + decoded.totalBurned, Amount.totalSupply)

        var g = t.genesis
        g.allocations[0].amount -= 1
        XCTAssertThrowsError(try g.validate()) {
            guard case Genesis.ValidationError.categoryMismatch(.reserveFund, _, _) = $0 else {
                return XCTFail("\($0)")
            }
        }
        g = t.genesis
        g.burned[.reserveFund] = 1
        XCTAssertThrowsError(try g.validate()) {
            XCTAssertEqual($0 as? Genesis.ValidationError, .burnOutsideSale(.reserveFund))
        }
        g = t.genesis
        g.validators = []
        XCTAssertThrowsError(try g.validate()) { XCTAssertEqual($0 as? Genesis.ValidationError, .noValidators) }
        g = t.genesis
        g.epochLength = 0
        XCTAssertThrowsError(try g.validate()) { XCTAssertEqual($0 as? Genesis.ValidationError, .badEpochLength) }
    }

    /// The trusting period devices get is two thirds of the unbonding period, measured in blocks at least the
    /// block interval apart; the genesis refuses parameters that would make it shorter than two epochs.
    func testTrustingPeriodIsDerivedFromUnbondingAndChecked() throws {
        let t = TestChain()
        defer { t.cleanup() }
        var g = t.genesis
        g.epochLength = 3600
        g.blockIntervalMillis = 1000
        g.staking.unbondingEpochs = 505  // production: 21 whole days of hourly epochs after the unstake's
        try g.validate()
        XCTAssertEqual(g.unbondingMillis, 21 * 86_400_000)
        XCTAssertEqual(g.trustingPeriodMillis, 14 * 86_400_000)
        // The block interval is part of what a device trusts: it changes the chain's identity.
        var faster = g
        faster.blockIntervalMillis = 500
        XCTAssertNotEqual(faster.hash, g.hash)
        XCTAssertEqual(faster.trustingPeriodMillis, 7 * 86_400_000)
        let decoded = try Genesis(jsonData: faster.jsonData())
        XCTAssertEqual(decoded.blockIntervalMillis, 500)
        XCTAssertEqual(decoded.hash, faster.hash)
        // A file without the field means the default interval.
        var object = try JSONSerialization.jsonObject(with: g.jsonData()) as! [String: Any]
        object["blockInterval"] = nil
        let old = try Genesis(jsonData: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(old.blockIntervalMillis, Genesis.defaultBlockIntervalMillis)

        for (mutate, expected): ((inout Genesis) -> Void, Genesis.ValidationError) in [
            ({ $0.blockIntervalMillis = 9 }, .badBlockInterval),
            ({ $0.blockIntervalMillis = 600_001 }, .badBlockInterval),
            ({ $0.staking.unbondingEpochs = 2 }, .badUnbonding),
            ({ $0.staking.unbondingEpochs = .max }, .badUnbonding),  // overflows 64-bit milliseconds
        ] {
            var bad = g
            mutate(&bad)
            XCTAssertThrowsError(try bad.validate()) { XCTAssertEqual($0 as? Genesis.ValidationError, expected) }
        }
    }

    func testMalformedGenesisFilesAreRefusedWithAReason() throws {
        let t = TestChain()
        defer { t.cleanup() }
        let good = try JSONSerialization.jsonObject(with: t.genesis.jsonData()) as! [String: Any]
        func refuse(_ mutate: (inout [String: Any]) -> Void, _ label: String) {
            var obj = good
            mutate(&obj)
            let data = try! JSONSerialization.data(withJSONObject: obj)
            XCTAssertThrowsError(try Genesis(jsonData: data), label)
        }
        refuse({ $0["chainID"] = "seven" }, "wrong type")
        refuse({ $0["validators"] = nil }, "missing field")
        refuse({ $0["validators"] = [["key": "zz", "weight": 1]] }, "bad hex")
        refuse(
            {
                var a = $0["allocations"] as! [[String: Any]]
                a[0]["address"] = "amsc1qqqq"
                $0["allocations"] = a
            }, "bad address")
        refuse(
            {
                var a = $0["allocations"] as! [[String: Any]]
                a[0]["amount"] = "-5"
                $0["allocations"] = a
            }, "negative amount")
        refuse(
            {
                var a = $0["allocations"] as! [[String: Any]]
                a[0]["category"] = "founders-bonus"
                $0["allocations"] = a
            }, "unknown category")
        XCTAssertThrowsError(try Genesis(jsonData: Data("not json".utf8)))
        XCTAssertThrowsError(try Genesis(jsonData: Data()))
    }

    func testAmountParsingIsExactAndStrict() throws {
        XCTAssertEqual(try Amount.parse("1"), 1_000_000)
        XCTAssertEqual(try Amount.parse("0.000001"), 1)
        XCTAssertEqual(try Amount.parse("12.5"), 12_500_000)
        XCTAssertEqual(try Amount.parse(".5"), 500_000)
        XCTAssertEqual(try Amount.parse("500000000000"), Amount.totalSupply)
        XCTAssertThrowsError(try Amount.parse("500000000000.000001")) {
            XCTAssertEqual($0 as? Amount.ParseError, .overflow)
        }
        XCTAssertThrowsError(try Amount.parse("99999999999999999999999")) {
            XCTAssertEqual($0 as? Amount.ParseError, .overflow)
        }
        XCTAssertThrowsError(try Amount.parse("1.0000001")) {
            XCTAssertEqual($0 as? Amount.ParseError, .tooManyDecimals)
        }
        for bad in ["-1", "1e6", "1,000", " 1", "1.", "abc", "0x10", "+1", "1.2.3"] {
            XCTAssertThrowsError(try Amount.parse(bad), bad)
        }
        XCTAssertThrowsError(try Amount.parse("")) { XCTAssertEqual($0 as? Amount.ParseError, .empty) }
        XCTAssertThrowsError(try Amount.parse("0")) { XCTAssertEqual($0 as? Amount.ParseError, .zero) }
        var rng = TestChain.SplitMix(seed: 3)
        for _ in 0..<1000 {
            let units = rng.next() % (Amount.totalSupply + 1)
            XCTAssertEqual(try Amount.parse(Amount.format(units), allowZero: true), units)
        }
        XCTAssertEqual(Amount.grouped(91_000_000_000 * 1_000_000), "91,000,000,000")
        XCTAssertEqual(Amount.format(1_500_000), "1.5")
    }
}
