# Raspberry Pi Pico: RP2040 (dual Cortex-M0+, only core 0 runs), 2 MB flash at 0x10000000, 264 KB SRAM.
BOARD_SWIFT_TRIPLE := armv6m-none-none-eabi
BOARD_CLANG_TARGET := armv6m-none-eabi
BOARD_CFLAGS := -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
BOARD_GCC_FLAGS := -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
PICOLIBC_VARIANT := thumb/v6-m/nofp
# After the link: firmware.uf2 for the boot ROM's USB mass-storage mode (family id RP2040).
BOARD_POST_BUILD = python3 $(BOARDS_DIR)/tools/uf2conv.py --base 0x10000000 --family 0xe48bff56 $(BIN) $(OUT)/firmware.uf2
# `make flash`: picotool if present (board in BOOTSEL mode or running picotool-aware firmware), else copy the
# UF2 to the mounted RPI-RP2 drive (RPI_RP2=/media/$USER/RPI-RP2 by default).
RPI_RP2 ?= /media/$(USER)/RPI-RP2
FLASH_CMD = if command -v picotool >/dev/null; then picotool load -v -x $(OUT)/firmware.uf2; \
  elif [ -d $(RPI_RP2) ]; then cp $(OUT)/firmware.uf2 $(RPI_RP2)/ && sync; \
  else echo "no picotool and no $(RPI_RP2): hold BOOTSEL while plugging the Pico in, or set RPI_RP2=<mount point>"; exit 1; fi
