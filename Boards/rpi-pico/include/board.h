// The board interface (../../common/board.h) on the Raspberry Pi Pico (RP2040, Cortex-M0+): console on PL011 UART0 (GP0/GP1), link on PL011 UART1 at
// 0x40038000 on GP4 (TX) / GP5 (RX) 115200 8N1, exit parks the core.
#ifndef AMARS_BOARD_H
#define AMARS_BOARD_H
#include "../../common/board.h"
#endif
