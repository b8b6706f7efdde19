// Reset and exception handling for the nRF51822 (Cortex-M0) of QEMU's micro:bit: the shared Cortex-M0/M0+ code
// in ../common. No clock set-up: QEMU's nRF51 runs the core and the peripherals without it.
#define IRQ_COUNT 32  // nRF51: IRQ 0 (POWER_CLOCK) .. 31 (SWI5)
// A fault report reads the halfword at pc only in flash (256 KB at 0) or RAM (16 KB at 0x20000000).
#define BOARD_READABLE(address) ((address) < 0x00040000u || ((address) >= 0x20000000u && (address) < 0x20004000u))
#include "../common/cortex-m0-startup.inc"
