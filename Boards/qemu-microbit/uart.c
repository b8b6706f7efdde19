// nRF51822 UART0 (console) and TIMER0 (board_millis) as QEMU's micro:bit models them.
#include "board.h"

#define REG(address) (*(volatile uint32_t *)(address))

#define UART0_BASE 0x40002000u
#define UART_STARTRX REG(UART0_BASE + 0x000)
#define UART_STARTTX REG(UART0_BASE + 0x008)
#define UART_EVENTS_RXDRDY REG(UART0_BASE + 0x108)
#define UART_EVENTS_TXDRDY REG(UART0_BASE + 0x11C)
#define UART_ENABLE REG(UART0_BASE + 0x500)
#define UART_RXD REG(UART0_BASE + 0x518)
#define UART_TXD REG(UART0_BASE + 0x51C)
#define UART_BAUDRATE REG(UART0_BASE + 0x524)
#define ENABLE_UART 4u
#define BAUD_115200 0x01D7E000u

const char *board_name(void) { return "qemu-microbit (nRF51822, Cortex-M0)"; }

// On a real micro:bit PSELTXD/PSELRXD would route the UART to the USB interface chip (P0.24 TX, P0.25 RX);
// QEMU connects UART0 to -serial without them.
void uart_init(void) {
    UART_BAUDRATE = BAUD_115200;
    UART_ENABLE = ENABLE_UART;
    UART_EVENTS_TXDRDY = 0;
    UART_EVENTS_RXDRDY = 0;
    UART_STARTTX = 1;
    UART_STARTRX = 1;
}

// One byte at a time: TXDRDY is raised once the byte has left TXD.
void board_putc(uint8_t byte) {
    UART_EVENTS_TXDRDY = 0;
    UART_TXD = byte;
    while (!UART_EVENTS_TXDRDY) {
    }
}

void board_write(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) board_putc(bytes[i]);
}

void board_puts(const char *text) {
    while (*text) board_putc((uint8_t)*text++);
}

// Clear the event before reading RXD, so a byte already waiting behind this one raises it again.
uint8_t board_getc(void) {
    while (!UART_EVENTS_RXDRDY) {
    }
    UART_EVENTS_RXDRDY = 0;
    return (uint8_t)UART_RXD;
}

// Embedded Swift's print() writes through putchar; send it to the UART rather than picolibc's stdio.
int putchar(int c) {
    board_putc((uint8_t)c);
    return c;
}

// The nRF51 has a single UART, and it is the console: this board has no gateway link, so it runs the self-test
// image only (FIRMWARE_MODE=sync needs a board with a second UART, e.g. qemu-mps2-an386). Link writes are
// dropped and reads find nothing, which a sync attempt reports as an unanswered gateway.
void board_link_write(const uint8_t *bytes, size_t count) {
    (void)bytes;
    (void)count;
}

int board_link_read(void) { return -1; }

// The nRF51's Cortex-M0 has no SysTick (QEMU models one anyway, the chip does not): count milliseconds with
// TIMER0, the one 32-bit timer, at 1 MHz (16 MHz HFCLK / 2^4), captured into CC[0] on every call. It wraps after
// 71 minutes; accumulating the difference keeps the result exact as long as calls are closer than that.
#define TIMER0_BASE 0x40008000u
#define TIMER_START REG(TIMER0_BASE + 0x000)
#define TIMER_CAPTURE0 REG(TIMER0_BASE + 0x040)
#define TIMER_MODE REG(TIMER0_BASE + 0x504)
#define TIMER_BITMODE REG(TIMER0_BASE + 0x508)
#define TIMER_PRESCALER REG(TIMER0_BASE + 0x510)
#define TIMER_CC0 REG(TIMER0_BASE + 0x540)

uint32_t board_millis(void) {
    static int started;
    static uint32_t last;
    static uint64_t micros;
    if (!started) {
        TIMER_MODE = 0;       // timer (not counter)
        TIMER_BITMODE = 3;    // 32 bit
        TIMER_PRESCALER = 4;  // 16 MHz / 16 = 1 MHz
        TIMER_START = 1;
        TIMER_CAPTURE0 = 1;
        last = TIMER_CC0;
        started = 1;
    }
    TIMER_CAPTURE0 = 1;
    uint32_t now = TIMER_CC0;
    micros += now - last;
    last = now;
    return (uint32_t)(micros / 1000u);
}
