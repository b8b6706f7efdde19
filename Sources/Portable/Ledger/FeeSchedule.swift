import AmarsCrypto
/// Resource pricing: what each transaction costs in units, and how the price per unit follows congestion.
///
/// Units are a pure function of kind and size (there is no VM), so a sender knows the cost before sending.
/// The base fee moves EIP-1559 style: up to 1/8 per block toward keeping blocks half full.
public struct FeeSchedule: Equatable, Sendable {
    public var unitsPerTransaction: UInt64
    public var unitsPerByte: UInt64
    public var maxUnitsPerBlock: UInt64
    public var minBaseFee: UInt64
    public var maxBaseFee: UInt64

    public init(
        unitsPerTransaction: UInt64 = 1_000, unitsPerByte: UInt64 = 10, maxUnitsPerBlock: UInt64 = 30_000_000,
        minBaseFee: UInt64 = 1, maxBaseFee: UInt64 = 1_000_000_000
    ) {
        self.unitsPerTransaction = unitsPerTransaction
        self.unitsPerByte = unitsPerByte
        self.maxUnitsPerBlock = maxUnitsPerBlock
        self.minBaseFee = minBaseFee
        self.maxBaseFee = maxBaseFee
    }

    public static let standard = FeeSchedule()

    public var targetUnitsPerBlock: UInt64 { maxUnitsPerBlock / 2 }

    /// Units a transaction of `encodedSize` bytes uses. Sizes are capped far below overflow.
    public func units(encodedSize: Int) -> UInt64 {
        unitsPerTransaction + unitsPerByte * UInt64(encodedSize)
    }

    /// Price per unit actually paid: the base fee plus as much of the tip as the cap leaves room for.
    /// Nil when the cap is below the base fee (the transaction must wait or be replaced).
    public func effectivePrice(baseFee: UInt64, maxFeePerUnit: UInt64, tipPerUnit: UInt64) -> UInt64? {
        guard maxFeePerUnit >= baseFee else { return nil }
        return baseFee + min(tipPerUnit, maxFeePerUnit - baseFee)
    }

    /// The base fee of the block after `header`. The genesis header's own base fee is the first block's: it
    /// carries no usage to adjust for.
    public func nextBaseFee(after header: BlockHeader) -> UInt64 {
        header.height == 0 ? header.baseFee : nextBaseFee(baseFee: header.baseFee, unitsUsed: header.unitsUsed)
    }

    /// The base fee of the block after one with `baseFee` that used `unitsUsed`.
    public func nextBaseFee(baseFee: UInt64, unitsUsed: UInt64) -> UInt64 {
        let target = targetUnitsPerBlock
        guard target > 0 else { return baseFee }
        let next: UInt64
        if unitsUsed > target {
            let delta = Self.scaledDelta(baseFee, unitsUsed - target, target)
            next = baseFee.addingReportingOverflow(max(delta, 1)).overflow ? maxBaseFee : baseFee + max(delta, 1)
        } else if unitsUsed < target {
            let delta = Self.scaledDelta(baseFee, target - unitsUsed, target)
            next = baseFee > delta ? baseFee - delta : 0
        } else {
            next = baseFee
        }
        return min(max(next, minBaseFee), maxBaseFee)
    }

    /// `base * diff / target / 8` in 128-bit so large fees never overflow.
    private static func scaledDelta(_ base: UInt64, _ diff: UInt64, _ target: UInt64) -> UInt64 {
        let product = base.multipliedFullWidth(by: diff)
        guard product.high < target else { return UInt64.max }
        let (q, _) = target.dividingFullWidth(product)
        return q / 8
    }
}
