// board_exit through semihosting: QEMU's exit status is the firmware's (../common/semihosting-exit.inc).
#include "../common/semihosting-exit.inc"
#include "../common/semihosting-clock.inc"
