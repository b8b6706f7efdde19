// board_exit on real hardware: print the status, then hand it to a debugger if one is attached (semihosting
// SYS_EXIT_EXTENDED, e.g. `openocd ... -c "arm semihosting enable"`), otherwise park the core. A `bkpt` with no
// debugger would escalate to a HardFault, so it is only issued when DHCSR.C_DEBUGEN says a debugger is there.
#include "board.h"

#define DHCSR (*(volatile uint32_t *)0xE000EDF0u)
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

_Noreturn void board_exit(int code) {
    board_puts("\r\n[exit ");
    if (code >= 10) board_putc((uint8_t)('0' + (code / 10) % 10));
    board_putc((uint8_t)('0' + code % 10));
    board_puts("]\r\n");
    if (DHCSR & 1u) {
        uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
        register uint32_t r0 __asm__("r0") = SYS_EXIT_EXTENDED;
        register void *r1 __asm__("r1") = block;
        __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    }
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) __asm__ volatile("wfi");
}

// picolibc's abort() ends in _exit.
_Noreturn void _exit(int code) { board_exit(code); }
