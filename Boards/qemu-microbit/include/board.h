// The board interface (../../common/board.h) on QEMU's micro:bit (nRF51822, Cortex-M0): console on UART0 at
// 0x40002000, no gateway link (the nRF51 has one UART: link writes are dropped, reads find nothing), exit
// through semihosting.
#ifndef AMARS_BOARD_H
#define AMARS_BOARD_H
#include "../../common/board.h"
#endif
