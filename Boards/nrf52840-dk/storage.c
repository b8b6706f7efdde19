// The trusted state's storage on the nRF52840: the last 16 KiB of its 1 MB flash, 0x000FC000-0x000FFFFF (four
// 4 KiB pages; board.ld reserves them), written through the NVMC (../common/nrf-nvmc-storage.inc).
#define NVMC_PAGE_SIZE 4096u
#include "../common/nrf-nvmc-storage.inc"
