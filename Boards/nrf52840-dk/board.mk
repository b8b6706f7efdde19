# nRF52840 DK (PCA10056): nRF52840, Cortex-M4F at 64 MHz, 1 MB flash at 0, 256 KB RAM at 0x20000000.
BOARD_SWIFT_TRIPLE := armv7em-none-none-eabi
BOARD_CLANG_TARGET := armv7em-none-eabi
# Soft-float calling convention everywhere (Swift's armv7em target uses it); the FPU itself is on.
BOARD_CFLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
BOARD_GCC_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
PICOLIBC_VARIANT := thumb/v7e-m/nofp
# `make flash`: Nordic's nrfjprog through the DK's J-Link OB, or OpenOCD (FLASHER=openocd) through any CMSIS-DAP/J-Link.
FLASHER ?= nrfjprog
ifeq ($(FLASHER),openocd)
FLASH_CMD = openocd -f interface/jlink.cfg -c "transport select swd" -f target/nrf52.cfg \
  -c "init; halt; nrf5 mass_erase; program $(ELF) verify reset exit"
else
FLASH_CMD = nrfjprog -f NRF52 --program $(OUT)/firmware.hex --chiperase --verify --reset
endif
BOARD_POST_BUILD = arm-none-eabi-objcopy -O ihex $(ELF) $(OUT)/firmware.hex
