// ARM semihosting: only SYS_EXIT_EXTENDED, so QEMU (-semihosting-config enable=on,target=native) exits with
// the firmware's status. On hardware without a debugger attached `bkpt` would fault; real boards implement
// board_exit differently (reset, or park and blink).
#include "board.h"

#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline uint32_t semihost_call(uint32_t op, void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

_Noreturn void board_exit(int code) {
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) __asm__ volatile("wfi");
}

// picolibc's abort() ends in _exit.
_Noreturn void _exit(int code) { board_exit(code); }

#include "../common/semihosting-clock.inc"
