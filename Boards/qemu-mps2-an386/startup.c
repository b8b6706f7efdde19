// Reset and exception handling for the Cortex-M4 of QEMU mps2-an386.
//
// Reset: copy .data from flash, zero .bss, set picolibc's TLS up (errno), paint the stack (to measure its peak later), turn the FPU on (the
// Swift armv7em target emits VFP instructions with the soft-float calling convention, so the coprocessor must
// be enabled even though every call passes floats in integer registers), run constructors, call main.
// Faults: report PC, LR and the fault status registers over the UART and exit with a status that tells a Swift
// trap (undefined instruction) from any other fault.
#include "board.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];
extern uint8_t __heap_start[], __heap_end[];
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

extern int main(int argc, char **argv);
void uart_init(void);
void *sbrk(ptrdiff_t increment);
void _init_tls(void *tls);
void _set_tls(void *tls);

// picolibc's thread-local block (errno), see board.ld.
static uint32_t tls_block[16] __attribute__((aligned(8)));

#define STACK_PAINT 0xA5A5A5A5u

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define CFSR_UNDEFINSTR (1u << 16)

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

    // Paint the stack below the current frame; the 64 bytes under sp are left to this function.
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit; (uint32_t)p < sp - 64; p++) *p = STACK_PAINT;

    SCB_CPACR |= (0xFu << 20);  // CP10 and CP11 full access
    __asm__ volatile("dsb\n\tisb" ::: "memory");

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

// picolibc's malloc grows the heap only through sbrk, so the break is the heap's high-water mark.
size_t board_heap_used(void) { return (size_t)((uint8_t *)sbrk(0) - __heap_start); }
size_t board_heap_size(void) { return (size_t)(__heap_end - __heap_start); }

// Called with the exception frame the core pushed (r0-r3, r12, lr, pc, xpsr).
void fault_report(const uint32_t *frame, uint32_t exception) {
    uint32_t cfsr = SCB_CFSR;
    int swift_trap = exception == 3 && (cfsr & CFSR_UNDEFINSTR);
    board_puts(swift_trap ? "\r\n*** Swift trap (fatal error)" : "\r\n*** fault: exception ");
    if (!swift_trap) put_hex32(exception);
    board_puts("\r\n    pc ");
    put_hex32(frame[6]);
    board_puts(" lr ");
    put_hex32(frame[5]);
    board_puts(" cfsr ");
    put_hex32(cfsr);
    board_puts(" hfsr ");
    put_hex32(SCB_HFSR);
    board_puts(" mmfar ");
    put_hex32(SCB_MMFAR);
    board_puts(" bfar ");
    put_hex32(SCB_BFAR);
    board_puts("\r\n");
    if (swift_trap) board_exit(BOARD_EXIT_SWIFT_TRAP);
    board_exit(exception >= 3 && exception <= 6 ? BOARD_EXIT_HARDFAULT : BOARD_EXIT_UNEXPECTED_IRQ);
}

// HardFault, MemManage, BusFault, UsageFault and every unexpected interrupt: find the frame on the stack that
// was in use (EXC_RETURN bit 2), then report with the active exception number from IPSR.
__attribute__((naked)) void Fault_Handler(void) {
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mrs r1, ipsr\n\t"
        "b fault_report\n\t");
}

#define IRQ_COUNT 32

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) const vector_t vector_table[16 + IRQ_COUNT] = {
    [0] = (vector_t)__stack_top,
    [1] = (vector_t)Reset_Handler,
    [2 ... 15] = Fault_Handler,  // NMI, HardFault, MemManage, BusFault, UsageFault, SVC, PendSV, SysTick...
    [16 ... 16 + IRQ_COUNT - 1] = Fault_Handler,
};
