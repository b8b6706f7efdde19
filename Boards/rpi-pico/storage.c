// The trusted state's storage on the Pico: the last 16 KiB of its 2 MB QSPI flash, flash offset 0x1FC000 (XIP
// address 0x101FC000-0x101FFFFF, four 4 KiB sectors; board.ld reserves them).
//
// Reads are plain XIP reads. Erasing and programming use the boot ROM's flash routines (RP2040 datasheet 2.8.3),
// found through the ROM's lookup function: the 16-bit pointer at 0x18 is rom_table_lookup(table, code), the
// 16-bit pointer at 0x14 the public function table, and a function's code is its two letters c1 | c2 << 8.
// While they run the flash is out of XIP mode, so nothing may be fetched from it: flash_op (section
// .time_critical, copied to RAM with .data by the reset handler, board.ld) makes the whole sequence
// connect_internal_flash, flash_exit_xip, erase or program, flash_flush_cache, flash_enter_cmd_xip with
// interrupts masked, calling only ROM code through pointers held in RAM, on data in RAM (a page buffer on the
// stack: the caller's bytes may themselves be in flash).
//
// flash_enter_cmd_xip restores XIP with serial 0x03 reads: the mode boot2.c sets up too, so reads after a write
// run as fast as before.
#include "board.h"

#define XIP_BASE 0x10000000u
#define SECTOR_SIZE 4096u
#define PAGE_SIZE 256u
#define STORAGE_SIZE (16u * 1024u)
// Block erase (64 KiB, command 0xD8) where a range covers whole blocks, else 4 KiB sector erases (0x20).
#define BLOCK_SIZE (1u << 16)
#define BLOCK_ERASE_CMD 0xD8u

// board.ld: the first byte of the reserved region (XIP address, sector aligned). Read through a volatile
// pointer: the flash changes behind the compiler's back.
extern uint8_t __storage_start[];
#define STORAGE ((const volatile uint8_t *)__storage_start)

typedef void *(*rom_table_lookup_fn)(const uint16_t *table, uint32_t code);

struct flash_rom {
    void (*connect_internal_flash)(void);
    void (*flash_exit_xip)(void);
    void (*flash_range_erase)(uint32_t offset, size_t count, uint32_t block_size, uint8_t block_cmd);
    void (*flash_range_program)(uint32_t offset, const uint8_t *data, size_t count);
    void (*flash_flush_cache)(void);
    void (*flash_enter_cmd_xip)(void);
};

// In .bss, so in RAM: flash_op reads it while XIP is off.
static struct flash_rom rom;

static void *rom_function(char c1, char c2) {
    rom_table_lookup_fn lookup = (rom_table_lookup_fn)(uintptr_t)*(const volatile uint16_t *)0x18u;
    const uint16_t *table = (const uint16_t *)(uintptr_t)*(const volatile uint16_t *)0x14u;
    return lookup(table, (uint32_t)(uint8_t)c1 | ((uint32_t)(uint8_t)c2 << 8));
}

static int rom_init(void) {
    if (rom.flash_enter_cmd_xip) return 0;
    rom.connect_internal_flash = (void (*)(void))rom_function('I', 'F');
    rom.flash_exit_xip = (void (*)(void))rom_function('E', 'X');
    rom.flash_range_erase = (void (*)(uint32_t, size_t, uint32_t, uint8_t))rom_function('R', 'E');
    rom.flash_range_program = (void (*)(uint32_t, const uint8_t *, size_t))rom_function('R', 'P');
    rom.flash_flush_cache = (void (*)(void))rom_function('F', 'C');
    void (*enter)(void) = (void (*)(void))rom_function('C', 'X');
    if (!rom.connect_internal_flash || !rom.flash_exit_xip || !rom.flash_range_erase || !rom.flash_range_program ||
        !rom.flash_flush_cache || !enter)
        return -1;
    rom.flash_enter_cmd_xip = enter;  // last: marks the table complete
    return 0;
}

/// Runs from RAM. With `page` it programs those PAGE_SIZE bytes at flash offset `offset`, else it erases `count`
/// bytes there (whole sectors). Calls nothing but the ROM, through `table` (RAM).
__attribute__((noinline, section(".time_critical.storage"))) static void flash_op(
    const struct flash_rom *table, uint32_t offset, const uint8_t *page, size_t count) {
    table->connect_internal_flash();
    table->flash_exit_xip();
    if (page) {
        table->flash_range_program(offset, page, PAGE_SIZE);
    } else {
        table->flash_range_erase(offset, count, BLOCK_SIZE, (uint8_t)BLOCK_ERASE_CMD);
    }
    table->flash_flush_cache();  // also releases the chip select the ROM forced
    table->flash_enter_cmd_xip();
}

/// flash_op with interrupts masked (a handler would be fetched from flash), called through a pointer (a long
/// branch from XIP flash to RAM).
static void flash_op_masked(uint32_t offset, const uint8_t *page, size_t count) {
    void (*volatile op)(const struct flash_rom *, uint32_t, const uint8_t *, size_t) = flash_op;
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    op(&rom, offset, page, count);
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

static int storage_in_range(size_t offset, size_t count) {
    return offset <= STORAGE_SIZE && count <= STORAGE_SIZE - offset;
}

size_t board_storage_size(void) { return STORAGE_SIZE; }

int board_storage_read(size_t offset, uint8_t *out, size_t count) {
    if (!storage_in_range(offset, count)) return -1;
    for (size_t i = 0; i < count; i++) out[i] = STORAGE[offset + i];
    return 0;
}

int board_storage_write(size_t offset, const uint8_t *bytes, size_t count) {
    if (!storage_in_range(offset, count)) return -1;
    if (count == 0) return 0;
    if (rom_init() != 0) return -1;
    uint32_t base = (uint32_t)((uintptr_t)__storage_start - XIP_BASE);  // flash offset of the region
    size_t end = offset + count;

    size_t erase_from = offset & ~(size_t)(SECTOR_SIZE - 1);
    size_t erase_to = (end + SECTOR_SIZE - 1) & ~(size_t)(SECTOR_SIZE - 1);
    flash_op_masked(base + (uint32_t)erase_from, 0, erase_to - erase_from);

    // Page by page through a RAM buffer; bytes outside the range stay 0xFF (erased), all-0xFF pages are skipped.
    for (size_t page = offset & ~(size_t)(PAGE_SIZE - 1); page < end; page += PAGE_SIZE) {
        uint8_t buffer[PAGE_SIZE] __attribute__((aligned(4)));
        int programmed = 0;
        for (size_t i = 0; i < PAGE_SIZE; i++) {
            size_t at = page + i;
            buffer[i] = (at >= offset && at < end) ? bytes[at - offset] : 0xFF;
            programmed |= buffer[i] != 0xFF;
        }
        if (programmed) flash_op_masked(base + (uint32_t)page, buffer, PAGE_SIZE);
    }

    for (size_t i = 0; i < count; i++) {
        if (STORAGE[offset + i] != bytes[i]) return -1;
    }
    return 0;
}
