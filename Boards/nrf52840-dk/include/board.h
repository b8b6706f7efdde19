// The board interface (../../common/board.h) on the nRF52840 DK (Cortex-M4F): console on UART0 (the J-Link virtual COM port), link on UARTE1 at
// 0x40028000 on P1.02 (TX) / P1.01 (RX) 115200 8N1, exit parks the core.
#ifndef AMARS_BOARD_H
#define AMARS_BOARD_H
#include "../../common/board.h"
#endif
