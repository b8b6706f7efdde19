// Reset and exception handling for the nRF52840 (Cortex-M4F) of the nRF52840 DK: the shared Cortex-M4 code in ../common.
#define IRQ_COUNT 48  // nRF52840: IRQ 0 (POWER_CLOCK) .. 47 (SPIM3)
#define BOARD_HAS_CLOCKS_INIT 1  // uart.c starts the clocks the UART needs
#include "../common/cortex-m4-startup.inc"
