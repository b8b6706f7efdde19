# STM32F4DISCOVERY: STM32F407VG, Cortex-M4F (16 MHz HSI here), 1 MB flash at 0x08000000, 128 KB SRAM at 0x20000000.
BOARD_SWIFT_TRIPLE := armv7em-none-none-eabi
BOARD_CLANG_TARGET := armv7em-none-eabi
# Soft-float calling convention everywhere (Swift's armv7em target uses it); the FPU itself is on.
BOARD_CFLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
BOARD_GCC_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
PICOLIBC_VARIANT := thumb/v7e-m/nofp
# `make flash`: stlink-tools through the on-board ST-LINK/V2 (the .bin starts at the flash base), or OpenOCD.
FLASHER ?= st-flash
ifeq ($(FLASHER),openocd)
FLASH_CMD = openocd -f board/stm32f4discovery.cfg -c "program $(ELF) verify reset exit"
else
FLASH_CMD = st-flash --reset write $(BIN) 0x08000000
endif
