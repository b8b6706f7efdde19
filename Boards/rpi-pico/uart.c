// RP2040 clocks, PL011 UART0 (console, GP0 TX / GP1 RX) and UART1 (gateway link, GP4 TX / GP5 RX), 115200 8N1.
#include "board.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define CLR(address) REG((address) + 0x3000u)  // atomic bit-clear alias of every APB register

#define RESETS_BASE 0x4000C000u
#define RESETS_RESET REG(RESETS_BASE + 0x0)
#define RESETS_DONE REG(RESETS_BASE + 0x8)
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_UART0 (1u << 22)
#define RESET_UART1 (1u << 23)

#define CLOCKS_BASE 0x40008000u
#define CLK_REF_CTRL REG(CLOCKS_BASE + 0x30)
#define CLK_REF_SELECTED REG(CLOCKS_BASE + 0x38)
#define CLK_SYS_CTRL REG(CLOCKS_BASE + 0x3C)
#define CLK_SYS_SELECTED REG(CLOCKS_BASE + 0x44)
#define CLK_PERI_CTRL REG(CLOCKS_BASE + 0x48)

#define XOSC_BASE 0x40024000u
#define XOSC_CTRL REG(XOSC_BASE + 0x0)
#define XOSC_STATUS REG(XOSC_BASE + 0x4)
#define XOSC_STARTUP REG(XOSC_BASE + 0xC)

#define IO_BANK0_BASE 0x40014000u
#define GPIO_CTRL(n) REG(IO_BANK0_BASE + 8u * (n) + 4u)
#define FUNC_UART 2u

#define UART0_BASE 0x40034000u
#define UART1_BASE 0x40038000u
#define UART_DR(base) REG((base) + 0x00)
#define UART_FR(base) REG((base) + 0x18)
#define UART_IBRD(base) REG((base) + 0x24)
#define UART_FBRD(base) REG((base) + 0x28)
#define UART_LCR_H(base) REG((base) + 0x2C)
#define UART_CR(base) REG((base) + 0x30)
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)

#define XOSC_HZ 12000000u
#define BAUD 115200u

const char *board_name(void) { return "rpi-pico (RP2040, Cortex-M0+)"; }

// The boot ROM leaves clk_sys on the ring oscillator (~6 MHz, not stable enough for a UART) and clk_peri off:
// start the 12 MHz crystal, run clk_ref and clk_sys from it, and clk_peri from clk_sys.
void clocks_init(void) {
    XOSC_CTRL = 0xAA0u;                          // FREQ_RANGE 1-15 MHz
    XOSC_STARTUP = (XOSC_HZ / 1000u + 128u) / 256u;  // ~1 ms
    XOSC_CTRL = 0xAA0u | (0xFABu << 12);         // ENABLE
    while (!(XOSC_STATUS & (1u << 31))) {
    }
    CLK_REF_CTRL = 2u;                           // SRC = xosc_clksrc
    while (!(CLK_REF_SELECTED & (1u << 2))) {
    }
    CLK_SYS_CTRL = 0u;                           // SRC = clk_ref
    while (!(CLK_SYS_SELECTED & 1u)) {
    }
    CLK_PERI_CTRL = (1u << 11);                  // ENABLE, AUXSRC = clk_sys
}

static void uart_setup(uint32_t base, uint32_t reset_bit, unsigned tx_pin, unsigned rx_pin) {
    CLR(RESETS_BASE) = reset_bit | RESET_IO_BANK0 | RESET_PADS_BANK0;
    while ((RESETS_DONE & (reset_bit | RESET_IO_BANK0 | RESET_PADS_BANK0)) != (reset_bit | RESET_IO_BANK0 | RESET_PADS_BANK0)) {
    }
    // Divisor = clk_peri / (16 * baud) in 16.6 fixed point.
    uint32_t divisor64 = (8u * XOSC_HZ / BAUD + 1u) / 2u;  // 64 * 12e6 / (16 * 115200), rounded
    UART_IBRD(base) = divisor64 >> 6;
    UART_FBRD(base) = divisor64 & 0x3Fu;
    UART_LCR_H(base) = (3u << 5) | (1u << 4);     // 8 bits, FIFOs on (also latches the divisor)
    UART_CR(base) = (1u << 0) | (1u << 8) | (1u << 9);  // UARTEN, TXE, RXE
    GPIO_CTRL(tx_pin) = FUNC_UART;
    GPIO_CTRL(rx_pin) = FUNC_UART;
}

void uart_init(void) { uart_setup(UART0_BASE, RESET_UART0, 0, 1); }

void board_putc(uint8_t byte) {
    while (UART_FR(UART0_BASE) & FR_TXFF) {
    }
    UART_DR(UART0_BASE) = byte;
}

void board_write(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) board_putc(bytes[i]);
}

void board_puts(const char *text) {
    while (*text) board_putc((uint8_t)*text++);
}

uint8_t board_getc(void) {
    while (UART_FR(UART0_BASE) & FR_RXFE) {
    }
    return (uint8_t)UART_DR(UART0_BASE);
}

int putchar(int c) {
    board_putc((uint8_t)c);
    return c;
}

static void link_init(void) {
    static int ready;
    if (ready) return;
    uart_setup(UART1_BASE, RESET_UART1, 4, 5);
    ready = 1;
}

void board_link_write(const uint8_t *bytes, size_t count) {
    link_init();
    for (size_t i = 0; i < count; i++) {
        while (UART_FR(UART1_BASE) & FR_TXFF) {
        }
        UART_DR(UART1_BASE) = bytes[i];
    }
}

int board_link_read(void) {
    link_init();
    if (UART_FR(UART1_BASE) & FR_RXFE) return -1;
    return (int)(UART_DR(UART1_BASE) & 0xFF);
}

// SysTick (present on the RP2040's M0+) on the 12 MHz core clock, polled like the other boards.
#define CORE_HZ XOSC_HZ
#include "../common/systick-millis.inc"
