// The trusted state's storage on the nRF51822: the last 16 KiB of its 256 KB flash, 0x0003C000-0x0003FFFF
// (sixteen 1 KiB pages; board.ld reserves them), written through the NVMC (../common/nrf-nvmc-storage.inc). QEMU
// models the NVMC (hw/nvram/nrf51_nvm.c), so the self-test runs this driver; its flash starts from the image
// each run (nothing persists between QEMU runs).
#define NVMC_PAGE_SIZE 1024u
#include "../common/nrf-nvmc-storage.inc"
