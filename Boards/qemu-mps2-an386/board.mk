# QEMU mps2-an386: Cortex-M4 (with FPU, enabled by startup.c), 4 MB flash at 0, 4 MB RAM at 0x20000000.
BOARD_SWIFT_TRIPLE := armv7em-none-none-eabi
BOARD_CLANG_TARGET := armv7em-none-eabi
# Soft-float calling convention everywhere (Swift's armv7em target uses it); the FPU itself is on.
BOARD_CFLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
BOARD_GCC_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
PICOLIBC_VARIANT := thumb/v7e-m/nofp
# "Flashing" a QEMU board is running it: semihosting carries the firmware's exit status to QEMU's.
RUN_CMD := qemu-system-arm -M mps2-an386 -nographic -monitor none -serial stdio \
  -semihosting-config enable=on,target=native -kernel
