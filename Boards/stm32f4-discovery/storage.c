// The trusted state's storage on the STM32F407VG: the first 8 KiB of each of the last two 128 KiB flash sectors,
// sector 10 (0x080C0000, logical offsets 0 ..< 8 KiB) and sector 11 (0x080E0000, 8 KiB ..< 16 KiB), so each of
// the sync firmware's two slots erases alone. board.ld ends FLASH before sector 10.
//
// Through the flash interface at 0x40023C00 (RM0090 section 3): unlock with the two keys, sector erase (SER), then
// program 32-bit words (PG, PSIZE x32: valid at 2.7-3.6 V, and the Discovery runs the chip at 3 V); a word the
// range covers only in part is merged with 0xFF, which the freshly erased sector holds there. The bus stalls on
// flash fetches while the interface is busy (a 128 KiB sector erases in 1-2 s), so the code runs from flash.
#include "board.h"

#define FLASH_ACR (*(volatile uint32_t *)0x40023C00u)
#define FLASH_KEYR (*(volatile uint32_t *)0x40023C04u)
#define FLASH_SR (*(volatile uint32_t *)0x40023C0Cu)
#define FLASH_CR (*(volatile uint32_t *)0x40023C10u)

#define FLASH_KEY1 0x45670123u
#define FLASH_KEY2 0xCDEF89ABu

#define SR_BSY (1u << 16)
// OPERR, WRPERR, PGAERR, PGPERR, PGSERR (and EOP, cleared with them).
#define SR_ERRORS ((1u << 1) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7))
#define SR_EOP (1u << 0)

#define CR_PG (1u << 0)
#define CR_SER (1u << 1)
#define CR_SNB(sector) ((uint32_t)(sector) << 3)
#define CR_PSIZE_X32 (2u << 8)
#define CR_STRT (1u << 16)
#define CR_LOCK (1u << 31)

#define ACR_DCEN (1u << 10)
#define ACR_DCRST (1u << 12)

#define SLOT_SIZE (8u * 1024u)
#define STORAGE_SIZE (2u * SLOT_SIZE)
#define FIRST_SECTOR 10u

static const uint32_t slot_base[2] = {0x080C0000u, 0x080E0000u};

static int storage_in_range(size_t offset, size_t count) {
    return offset <= STORAGE_SIZE && count <= STORAGE_SIZE - offset;
}

static const volatile uint8_t *storage_byte(size_t offset) {
    return (const volatile uint8_t *)(slot_base[offset / SLOT_SIZE] + offset % SLOT_SIZE);
}

/// Waits for the operation to end; 0 when it ended without an error flag.
static int flash_wait(void) {
    while (FLASH_SR & SR_BSY) {
    }
    return (FLASH_SR & SR_ERRORS) ? -1 : 0;
}

static void flash_unlock(void) {
    if (FLASH_CR & CR_LOCK) {
        FLASH_KEYR = FLASH_KEY1;
        FLASH_KEYR = FLASH_KEY2;
    }
}

/// Back to read-only and locked; the data cache (if the ART accelerator's is on) may hold erased lines: reset it.
static void flash_lock(void) {
    FLASH_CR = CR_LOCK;
    uint32_t acr = FLASH_ACR;
    if (acr & ACR_DCEN) {
        FLASH_ACR = acr & ~ACR_DCEN;
        FLASH_ACR = (acr & ~ACR_DCEN) | ACR_DCRST;
        FLASH_ACR = acr & ~ACR_DCRST;
    }
}

static int flash_erase_sector(uint32_t sector) {
    FLASH_CR = CR_SER | CR_SNB(sector) | CR_PSIZE_X32;
    FLASH_CR = CR_SER | CR_SNB(sector) | CR_PSIZE_X32 | CR_STRT;
    int status = flash_wait();
    FLASH_CR = 0;
    return status;
}

static int flash_program_word(uint32_t address, uint32_t value) {
    FLASH_CR = CR_PG | CR_PSIZE_X32;
    *(volatile uint32_t *)address = value;
    __asm__ volatile("dsb" ::: "memory");
    int status = flash_wait();
    FLASH_CR = 0;
    return status;
}

size_t board_storage_size(void) { return STORAGE_SIZE; }

int board_storage_read(size_t offset, uint8_t *out, size_t count) {
    if (!storage_in_range(offset, count)) return -1;
    for (size_t i = 0; i < count; i++) out[i] = *storage_byte(offset + i);
    return 0;
}

int board_storage_write(size_t offset, const uint8_t *bytes, size_t count) {
    if (!storage_in_range(offset, count)) return -1;
    if (count == 0) return 0;
    size_t end = offset + count;
    int status = 0;

    flash_unlock();
    if (FLASH_CR & CR_LOCK) return -1;  // a wrong key sequence locks the interface until reset
    while (FLASH_SR & SR_BSY) {
    }
    FLASH_SR = SR_ERRORS | SR_EOP;  // flags left by an earlier operation
    for (size_t slot = offset / SLOT_SIZE; slot <= (end - 1) / SLOT_SIZE && status == 0; slot++) {
        status = flash_erase_sector(FIRST_SECTOR + (uint32_t)slot);
    }
    // Words never straddle the two slots: SLOT_SIZE is a multiple of 4.
    for (size_t word = offset & ~(size_t)3; word < end && status == 0; word += 4) {
        uint32_t value = 0xFFFFFFFFu;
        for (size_t i = 0; i < 4; i++) {
            size_t at = word + i;
            if (at >= offset && at < end) {
                value &= ~((uint32_t)0xFF << (8 * i)) | ((uint32_t)bytes[at - offset] << (8 * i));
            }
        }
        if (value != 0xFFFFFFFFu) {  // an erased word already reads all ones
            status = flash_program_word(slot_base[word / SLOT_SIZE] + word % SLOT_SIZE, value);
        }
    }
    FLASH_SR = SR_ERRORS | SR_EOP;
    flash_lock();
    if (status != 0) return -1;

    for (size_t i = 0; i < count; i++) {
        if (*storage_byte(offset + i) != bytes[i]) return -1;
    }
    return 0;
}
