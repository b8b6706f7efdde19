/// CRC-16/CCITT-FALSE, the check appended to every serial frame.
///
/// SLIP itself detects nothing; a UART with a noisy line or a dropped byte would hand CoAP a damaged message
/// that might still parse. Parameters: width 16, poly 0x1021, init 0xFFFF, no reflection, xorout 0, check
/// value 0x29B1 for "123456789" (the CRC RevEng catalogue entry). Computed bit by bit: no table, so it costs
/// no flash on a device and runs at UART speed anyway.
public enum FrameCheck {
    public static let initial: UInt16 = 0xFFFF
    public static let polynomial: UInt16 = 0x1021

    /// Folds one byte into a running CRC.
    @inlinable
    public static func update(_ crc: UInt16, _ byte: UInt8) -> UInt16 {
        var crc = crc ^ (UInt16(byte) << 8)
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ polynomial : crc << 1
        }
        return crc
    }

    /// The CRC of `bytes`.
    @inlinable
    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc = initial
        for byte in bytes { crc = update(crc, byte) }
        return crc
    }
}
