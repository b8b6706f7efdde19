// nRF52840 DK: HFXO start, legacy UART0 at 0x40002000 (console, P0.06 TX / P0.08 RX: the J-Link OB's virtual COM
// port) and UARTE1 at 0x40028000 (gateway link, P1.02 TX / P1.01 RX), both 115200 8N1, polled.
#include "board.h"

#define REG(address) (*(volatile uint32_t *)(address))

#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART REG(CLOCK_BASE + 0x000)
#define CLOCK_EVENTS_HFCLKSTARTED REG(CLOCK_BASE + 0x100)

#define UART0_BASE 0x40002000u
#define UART_TASKS_STARTRX REG(UART0_BASE + 0x000)
#define UART_TASKS_STARTTX REG(UART0_BASE + 0x008)
#define UART_EVENTS_RXDRDY REG(UART0_BASE + 0x108)
#define UART_EVENTS_TXDRDY REG(UART0_BASE + 0x11C)
#define UART_ENABLE REG(UART0_BASE + 0x500)
#define UART_PSEL_TXD REG(UART0_BASE + 0x50C)
#define UART_PSEL_RXD REG(UART0_BASE + 0x514)
#define UART_RXD REG(UART0_BASE + 0x518)
#define UART_TXD REG(UART0_BASE + 0x51C)
#define UART_BAUDRATE REG(UART0_BASE + 0x524)
#define BAUD_115200 0x01D7E000u

#define UARTE1_BASE 0x40028000u
#define UARTE_TASKS_STARTRX REG(UARTE1_BASE + 0x000)
#define UARTE_TASKS_STARTTX REG(UARTE1_BASE + 0x008)
#define UARTE_EVENTS_ENDRX REG(UARTE1_BASE + 0x110)
#define UARTE_EVENTS_ENDTX REG(UARTE1_BASE + 0x120)
#define UARTE_ENABLE REG(UARTE1_BASE + 0x500)
#define UARTE_PSEL_TXD REG(UARTE1_BASE + 0x50C)
#define UARTE_PSEL_RXD REG(UARTE1_BASE + 0x514)
#define UARTE_BAUDRATE REG(UARTE1_BASE + 0x524)
#define UARTE_RXD_PTR REG(UARTE1_BASE + 0x534)
#define UARTE_RXD_MAXCNT REG(UARTE1_BASE + 0x538)
#define UARTE_TXD_PTR REG(UARTE1_BASE + 0x544)
#define UARTE_TXD_MAXCNT REG(UARTE1_BASE + 0x548)

#define PIN(port, n) ((uint32_t)(port) << 5 | (n))  // PSEL: bit 31 clear = connected

const char *board_name(void) { return "nrf52840-dk (nRF52840, Cortex-M4F)"; }

// The core runs from HFINT (64 MHz RC, +-1.5 %); the crystal makes the UART baud exact.
void clocks_init(void) {
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    while (!CLOCK_EVENTS_HFCLKSTARTED) {
    }
}

void uart_init(void) {
    UART_PSEL_TXD = PIN(0, 6);
    UART_PSEL_RXD = PIN(0, 8);
    UART_BAUDRATE = BAUD_115200;
    UART_ENABLE = 4;
    UART_TASKS_STARTTX = 1;
    UART_TASKS_STARTRX = 1;
}

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

uint8_t board_getc(void) {
    while (!UART_EVENTS_RXDRDY) {
    }
    UART_EVENTS_RXDRDY = 0;
    return (uint8_t)UART_RXD;
}

int putchar(int c) {
    board_putc((uint8_t)c);
    return c;
}

// UARTE1 moves bytes by EasyDMA only (RAM buffers). Reception: one byte at a time into link_rx; each read
// that finds ENDRX takes the byte and restarts. Bytes arriving while no reception is armed wait in the
// UARTE's small RX FIFO; a gateway sending long bursts needs a ring buffer with ENDRX_STARTRX (not done).
static uint8_t link_rx;
static uint8_t link_tx[64];

static void link_init(void) {
    static int ready;
    if (ready) return;
    UARTE_PSEL_TXD = PIN(1, 2);
    UARTE_PSEL_RXD = PIN(1, 1);
    UARTE_BAUDRATE = BAUD_115200;
    UARTE_ENABLE = 8;
    UARTE_RXD_PTR = (uint32_t)&link_rx;
    UARTE_RXD_MAXCNT = 1;
    UARTE_EVENTS_ENDRX = 0;
    UARTE_TASKS_STARTRX = 1;
    ready = 1;
}

void board_link_write(const uint8_t *bytes, size_t count) {
    link_init();
    while (count > 0) {
        size_t chunk = count < sizeof link_tx ? count : sizeof link_tx;  // EasyDMA reads RAM only: copy first
        for (size_t i = 0; i < chunk; i++) link_tx[i] = bytes[i];
        UARTE_TXD_PTR = (uint32_t)link_tx;
        UARTE_TXD_MAXCNT = chunk;
        UARTE_EVENTS_ENDTX = 0;
        UARTE_TASKS_STARTTX = 1;
        while (!UARTE_EVENTS_ENDTX) {
        }
        bytes += chunk;
        count -= chunk;
    }
}

int board_link_read(void) {
    link_init();
    if (!UARTE_EVENTS_ENDRX) return -1;
    UARTE_EVENTS_ENDRX = 0;
    int byte = link_rx;
    UARTE_TASKS_STARTRX = 1;
    return byte;
}

// SysTick on the 64 MHz core clock, polled like the other boards.
#define CORE_HZ 64000000u
#include "../common/systick-millis.inc"
