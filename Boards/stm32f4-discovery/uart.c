// STM32F4DISCOVERY: USART2 at 0x40004400 (console, PA2 TX / PA3 RX, AF7) and USART3 at 0x40004800 (gateway link,
// PB10 TX / PB11 RX, AF7), 115200 8N1, polled. The core stays on the 16 MHz HSI (reset default), so APB1 = 16 MHz.
// The board's ST-LINK/V2 has no virtual COM port: wire a 3.3 V USB-serial adapter to PA2/PA3 (and GND).
#include "board.h"

#define REG(address) (*(volatile uint32_t *)(address))

#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR REG(RCC_BASE + 0x30)
#define RCC_APB1ENR REG(RCC_BASE + 0x40)
#define AHB1_GPIOA (1u << 0)
#define AHB1_GPIOB (1u << 1)
#define APB1_USART2 (1u << 17)
#define APB1_USART3 (1u << 18)

#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(base) REG((base) + 0x00)
#define GPIO_AFR(base, pin) REG((base) + 0x20 + 4u * ((pin) / 8u))

#define USART2_BASE 0x40004400u
#define USART3_BASE 0x40004800u
#define USART_SR(base) REG((base) + 0x00)
#define USART_DR(base) REG((base) + 0x04)
#define USART_BRR(base) REG((base) + 0x08)
#define USART_CR1(base) REG((base) + 0x0C)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_UE (1u << 13)

#define APB1_HZ 16000000u
#define BAUD 115200u

const char *board_name(void) { return "stm32f4-discovery (STM32F407, Cortex-M4F)"; }

// HSI 16 MHz as left by reset: nothing to start (a PLL to 168 MHz would be the next step for speed).
void clocks_init(void) {}

static void pin_af7(uint32_t port, unsigned pin) {
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << (2 * pin))) | (2u << (2 * pin));  // alternate function
    GPIO_AFR(port, pin) = (GPIO_AFR(port, pin) & ~(0xFu << (4 * (pin % 8)))) | (7u << (4 * (pin % 8)));
}

static void usart_setup(uint32_t base) {
    USART_BRR(base) = (APB1_HZ + BAUD / 2) / BAUD;  // 16x oversampling: mantissa.fraction = f / baud
    USART_CR1(base) = CR1_UE | CR1_TE | CR1_RE;
}

void uart_init(void) {
    RCC_AHB1ENR |= AHB1_GPIOA;
    RCC_APB1ENR |= APB1_USART2;
    (void)RCC_APB1ENR;  // the clock takes effect two cycles after the write
    pin_af7(GPIOA_BASE, 2);
    pin_af7(GPIOA_BASE, 3);
    usart_setup(USART2_BASE);
}

void board_putc(uint8_t byte) {
    while (!(USART_SR(USART2_BASE) & SR_TXE)) {
    }
    USART_DR(USART2_BASE) = byte;
}

void board_write(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) board_putc(bytes[i]);
}

void board_puts(const char *text) {
    while (*text) board_putc((uint8_t)*text++);
}

uint8_t board_getc(void) {
    while (!(USART_SR(USART2_BASE) & SR_RXNE)) {
    }
    return (uint8_t)USART_DR(USART2_BASE);
}

int putchar(int c) {
    board_putc((uint8_t)c);
    return c;
}

static void link_init(void) {
    static int ready;
    if (ready) return;
    RCC_AHB1ENR |= AHB1_GPIOB;
    RCC_APB1ENR |= APB1_USART3;
    (void)RCC_APB1ENR;
    pin_af7(GPIOB_BASE, 10);
    pin_af7(GPIOB_BASE, 11);
    usart_setup(USART3_BASE);
    ready = 1;
}

void board_link_write(const uint8_t *bytes, size_t count) {
    link_init();
    for (size_t i = 0; i < count; i++) {
        while (!(USART_SR(USART3_BASE) & SR_TXE)) {
        }
        USART_DR(USART3_BASE) = bytes[i];
    }
}

int board_link_read(void) {
    link_init();
    if (!(USART_SR(USART3_BASE) & SR_RXNE)) return -1;
    return (int)(USART_DR(USART3_BASE) & 0xFF);
}

// SysTick on the 16 MHz core clock, polled like the other boards.
#define CORE_HZ 16000000u
#include "../common/systick-millis.inc"
