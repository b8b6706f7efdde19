# QEMU micro:bit: nRF51822 (Cortex-M0, armv6m), 256 KB flash at 0, 16 KB RAM at 0x20000000. The same
# instruction set as the Pico's Cortex-M0+, so CI runs the armv6m code path (atomics helpers, libsecp256k1
# without a 32x32->64 multiply) on every change.
BOARD_SWIFT_TRIPLE := armv6m-none-none-eabi
BOARD_CLANG_TARGET := armv6m-none-eabi
BOARD_CFLAGS := -mcpu=cortex-m0 -mthumb -mfloat-abi=soft
BOARD_GCC_FLAGS := -mcpu=cortex-m0 -mthumb -mfloat-abi=soft
PICOLIBC_VARIANT := thumb/v6-m/nofp
# "Flashing" a QEMU board is running it: semihosting carries the firmware's exit status to QEMU's.
RUN_CMD := qemu-system-arm -M microbit -nographic -monitor none -serial stdio \
  -semihosting-config enable=on,target=native -kernel
