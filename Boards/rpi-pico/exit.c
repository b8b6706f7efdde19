// board_exit on real hardware: no semihosting host to take the status (a `bkpt` without a debugger would
// fault), so print it and park core 0. The self-test log ends with "[exit N]"; 0 means every check passed.
#include "board.h"

_Noreturn void board_exit(int code) {
    board_puts("\r\n[exit ");
    if (code >= 10) board_putc((uint8_t)('0' + (code / 10) % 10));
    board_putc((uint8_t)('0' + code % 10));
    board_puts("]\r\n");
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) __asm__ volatile("wfi");
}

// picolibc's abort() ends in _exit.
_Noreturn void _exit(int code) { board_exit(code); }
