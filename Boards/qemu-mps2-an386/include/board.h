// The board interface (../../common/board.h) on QEMU mps2-an386 (Cortex-M4): console on CMSDK UART0, link on CMSDK UART1 at 0x40005000 (QEMU's second
// `-serial`), exit through semihosting.
#ifndef AMARS_BOARD_H
#define AMARS_BOARD_H
#include "../../common/board.h"
#endif
