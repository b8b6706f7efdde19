// Reset and exception handling for the RP2040 (core 0; core 1 stays asleep in the boot ROM).
//
// boot2.c has set XIP up, VTOR and sp. Reset: copy .data, zero .bss, paint the stack, bring the crystal up
// (clk_ref = clk_sys = clk_peri = XOSC 12 MHz), run constructors, call main.
// Faults: Cortex-M0+ has no fault status registers, so a Swift trap is told from other faults by the instruction
// at the faulting pc (UDF, 0xDExx), and only pc/lr are reported.
#include "board.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];
extern uint8_t __heap_start[], __heap_end[];
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

extern int main(int argc, char **argv);
void clocks_init(void);
void uart_init(void);
void *sbrk(ptrdiff_t increment);
void _init_tls(void *tls);
void _set_tls(void *tls);

// picolibc's thread-local block (errno), see board.ld.
static uint32_t tls_block[16] __attribute__((aligned(8)));

#define STACK_PAINT 0xA5A5A5A5u

static void put_hex32(uint32_t value) {
    static const char digits[] = "0123456789abcdef";
    board_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) board_putc((uint8_t)digits[(value >> shift) & 0xF]);
}

_Noreturn void Reset_Handler(void) {
    uint32_t *src = __data_load, *dst = __data_start;
    while (dst < __data_end) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++) *dst = 0;
    _init_tls(tls_block);
    _set_tls(tls_block);

    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit; (uint32_t)p < sp - 64; p++) *p = STACK_PAINT;

    clocks_init();
    uart_init();
    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++) (*f)();

    int status = main(0, 0);
    board_exit(status >= 0 && status < 256 ? status : BOARD_EXIT_RETURNED);
}

size_t board_stack_size(void) { return (size_t)((uint8_t *)__stack_top - (uint8_t *)__stack_limit); }

void board_stack_reset_peak(void) {
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit; (uint32_t)p < sp - 64; p++) *p = STACK_PAINT;
}

size_t board_stack_peak(void) {
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT) p++;
    return (size_t)((uint8_t *)__stack_top - (uint8_t *)p);
}

size_t board_heap_used(void) { return (size_t)((uint8_t *)sbrk(0) - __heap_start); }
size_t board_heap_size(void) { return (size_t)(__heap_end - __heap_start); }

static int readable(uint32_t address) {
    return (address >= 0x10000000u && address < 0x10200000u) || (address >= 0x20000000u && address < 0x20042000u);
}

// Called with the exception frame the core pushed (r0-r3, r12, lr, pc, xpsr).
void fault_report(const uint32_t *frame, uint32_t exception) {
    uint32_t pc = frame[6] & ~1u;
    int swift_trap = exception == 3 && readable(pc) && (*(const uint16_t *)pc & 0xFF00u) == 0xDE00u;
    board_puts(swift_trap ? "\r\n*** Swift trap (fatal error)" : "\r\n*** fault: exception ");
    if (!swift_trap) put_hex32(exception);
    board_puts("\r\n    pc ");
    put_hex32(frame[6]);
    board_puts(" lr ");
    put_hex32(frame[5]);
    board_puts("\r\n");
    if (swift_trap) board_exit(BOARD_EXIT_SWIFT_TRAP);
    board_exit(exception == 3 ? BOARD_EXIT_HARDFAULT : BOARD_EXIT_UNEXPECTED_IRQ);
}

// armv6m: no IT blocks, no tst with an immediate.
__attribute__((naked)) void Fault_Handler(void) {
    __asm__ volatile(
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
        "mrs r1, ipsr\n\t"
        "ldr r2, =fault_report\n\t"
        "bx r2\n\t"
        ".ltorg\n\t");
}

#define IRQ_COUNT 26  // RP2040: IRQ 0 (TIMER_IRQ_0) .. 25 (RTC_IRQ)

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) const vector_t vector_table[16 + IRQ_COUNT] = {
    [0] = (vector_t)__stack_top,
    [1] = (vector_t)Reset_Handler,
    [2 ... 15] = Fault_Handler,
    [16 ... 16 + IRQ_COUNT - 1] = Fault_Handler,
};
