// board_exit: print the status, hand it to a debugger if one is attached, else park (../common).
#include "../common/debugger-exit.inc"
