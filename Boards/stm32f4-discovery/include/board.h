// The board interface (../../common/board.h) on the STM32F4DISCOVERY (STM32F407, Cortex-M4F): console on USART2 (PA2/PA3), link on USART3 at
// 0x40004800 on PB10 (TX) / PB11 (RX) 115200 8N1, exit parks the core.
#ifndef AMARS_BOARD_H
#define AMARS_BOARD_H
#include "../../common/board.h"
#endif
