import Board

/// Console output over the board's UART: static strings, hex and decimal only, so nothing here needs String
/// formatting or allocates.
enum Console {
    static func write(_ text: StaticString) {
        text.withUTF8Buffer { buffer in
            if let base = buffer.baseAddress { board_write(base, buffer.count) }
        }
    }

    static func line(_ text: StaticString) {
        write(text)
        newline()
    }

    /// "memory: stack peak P of S B<qualifier>, heap high-water H of HS B": what a run used of the board's
    /// reserved stack and heap.
    static func memory(stackPeak: Int, _ qualifier: StaticString = "") {
        write("memory: stack peak ")
        decimal(stackPeak)
        write(" of ")
        decimal(board_stack_size())
        write(" B")
        write(qualifier)
        write(", heap high-water ")
        decimal(board_heap_used())
        write(" of ")
        decimal(board_heap_size())
        line(" B")
    }

    static func newline() {
        board_putc(13)
        board_putc(10)
    }

    static func hex(_ bytes: [UInt8]) {
        for byte in bytes {
            board_putc(digit(byte >> 4))
            board_putc(digit(byte & 0xF))
        }
    }

    static func decimal(_ value: Int) {
        if value < 0 {
            board_putc(UInt8(ascii: "-"))
            decimal(0 - value)
            return
        }
        if value >= 10 { decimal(value / 10) }
        board_putc(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// Heights, epochs and weights: 64-bit, which Int (32-bit on these targets) cannot always hold.
    static func decimal(_ value: UInt64) {
        if value >= 10 { decimal(value / 10) }
        board_putc(UInt8(ascii: "0") + UInt8(value % 10))
    }

    private static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
}
