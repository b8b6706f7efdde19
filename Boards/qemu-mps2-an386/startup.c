// Reset and exception handling for the Cortex-M4 of QEMU mps2-an386: the shared Cortex-M4 code in ../common.
#define IRQ_COUNT 32
#include "../common/cortex-m4-startup.inc"
