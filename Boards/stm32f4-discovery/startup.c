// Reset and exception handling for the STM32F407VG (Cortex-M4F) of the STM32F4DISCOVERY: the shared Cortex-M4 code in ../common.
#define IRQ_COUNT 82  // STM32F407: IRQ 0 (WWDG) .. 81 (FPU)
#define BOARD_HAS_CLOCKS_INIT 1  // uart.c starts the clocks the UART needs
#include "../common/cortex-m4-startup.inc"
