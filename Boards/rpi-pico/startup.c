// Reset and exception handling for the RP2040 (core 0; core 1 stays asleep in the boot ROM): the shared
// Cortex-M0/M0+ code in ../common.
//
// boot2.c has set XIP up, VTOR and sp before Reset_Handler runs; uart.c's clocks_init brings the crystal up
// (clk_ref = clk_sys = clk_peri = XOSC 12 MHz).
#define IRQ_COUNT 26  // RP2040: IRQ 0 (TIMER_IRQ_0) .. 25 (RTC_IRQ)
#define BOARD_HAS_CLOCKS_INIT 1
// A fault report reads the halfword at pc only in flash (XIP) or SRAM.
#define BOARD_READABLE(address) \
    (((address) >= 0x10000000u && (address) < 0x10200000u) || ((address) >= 0x20000000u && (address) < 0x20042000u))
#include "../common/cortex-m0-startup.inc"
