// CMSDK APB UART0 of the MPS2 FPGA images, at 0x40004000.
#include "board.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)

const char *board_name(void) { return "qemu-mps2-an386 (Cortex-M4)"; }

void uart_init(void) {
    UART_BAUDDIV = 16;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN;
}

void board_putc(uint8_t byte) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = byte;
}

void board_write(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) board_putc(bytes[i]);
}

void board_puts(const char *text) {
    while (*text) board_putc((uint8_t)*text++);
}

uint8_t board_getc(void) {
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    return (uint8_t)UART_DATA;
}

// Embedded Swift's print() writes through putchar; send it to the UART rather than picolibc's stdio.
int putchar(int c) {
    board_putc((uint8_t)c);
    return c;
}

// UART1 (0x40005000): the SLIP link to the gateway in the sync firmware. Enabled on first use.
#define UART1_BASE 0x40005000u
#define LINK_DATA (*(volatile uint32_t *)(UART1_BASE + 0x00))
#define LINK_STATE (*(volatile uint32_t *)(UART1_BASE + 0x04))
#define LINK_CTRL (*(volatile uint32_t *)(UART1_BASE + 0x08))
#define LINK_BAUDDIV (*(volatile uint32_t *)(UART1_BASE + 0x10))

static void link_init(void) {
    static int ready;
    if (ready) return;
    LINK_BAUDDIV = 16;
    LINK_CTRL = CTRL_TX_EN | CTRL_RX_EN;
    ready = 1;
}

void board_link_write(const uint8_t *bytes, size_t count) {
    link_init();
    for (size_t i = 0; i < count; i++) {
        while (LINK_STATE & STATE_TX_FULL) {
        }
        LINK_DATA = bytes[i];
    }
}

int board_link_read(void) {
    link_init();
    if (!(LINK_STATE & STATE_RX_FULL)) return -1;
    return (int)(LINK_DATA & 0xFF);
}

// SysTick as a free-running 24-bit down counter on the 25 MHz core clock, accumulated on every call.
#define CORE_HZ 25000000u
#include "../common/systick-millis.inc"
