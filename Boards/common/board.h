// The board interface the firmware (Swift, through the `Board` module) sees. Every board implements these
// functions; its own include/board.h says how (console UART, link UART, what exit does) and includes this file.
#ifndef AMARS_COMMON_BOARD_H
#define AMARS_COMMON_BOARD_H

#include <stddef.h>
#include <stdint.h>

/// Exit statuses: QEMU passes them through as its own status; hardware boards print "[exit N]".
enum {
    BOARD_EXIT_OK = 0,
    BOARD_EXIT_SELFTEST_FAILED = 1,
    BOARD_EXIT_SWIFT_TRAP = 2,      // fatalError, precondition, overflow: Swift's trap instruction
    BOARD_EXIT_HARDFAULT = 3,       // any other fault
    BOARD_EXIT_UNEXPECTED_IRQ = 4,
    BOARD_EXIT_SECP256K1_ABORT = 5, // libsecp256k1's illegal-argument or internal-error callback
    BOARD_EXIT_RETURNED = 6,        // main returned a value out of range
};

/// Short name of the board, for the banner.
const char *board_name(void);

/// Blocking write of one byte / a buffer to the console UART.
void board_putc(uint8_t byte);
void board_write(const uint8_t *bytes, size_t count);
/// Writes a NUL-terminated string.
void board_puts(const char *text);
/// Blocking read of one byte from the console UART.
uint8_t board_getc(void);

/// The link to the gateway (sync firmware): a second UART, so the console stays readable. Writes block; reads
/// never do.
void board_link_write(const uint8_t *bytes, size_t count);
/// One received byte (0...255), or -1 when none is waiting.
int board_link_read(void);
/// Milliseconds since the first call, from SysTick polled (no interrupt): call it at least every half second
/// for it to stay exact; longer gaps only make it run slow, never fast.
uint32_t board_millis(void);

/// Milliseconds since the Unix epoch from the board's real-time clock, or 0 when it has none (the device then
/// cannot check the trusting period and syncs checkpoint by checkpoint). QEMU boards ask the host through
/// semihosting (../common/semihosting-clock.inc); the hardware boards have no RTC driver yet.
uint64_t board_wall_clock_ms(void);

/// Ends the program with `code` as the host-visible status. Never returns.
_Noreturn void board_exit(int code);

/// Peak stack use in bytes since reset (the stack is painted at reset and scanned here).
size_t board_stack_peak(void);
/// Repaints the free part of the stack, so the next board_stack_peak() measures from here on.
void board_stack_reset_peak(void);
/// Size of the stack region, and bytes the heap has taken from its region so far (its high-water mark).
size_t board_stack_size(void);
size_t board_heap_used(void);
size_t board_heap_size(void);

/// Measurement markers (common/marks.inc): calls around a piece of work whose executed instructions an
/// emulator plugin counts from the entry of board_mark_begin to the entry of board_mark_end (`make -C Boards
/// count`). They do nothing else; `tag` names the interval for a debugger.
void board_mark_begin(uint32_t tag);
void board_mark_end(uint32_t tag);

/// Persistent storage for the trusted state (the sync firmware's two StateSlots slots of 8 KiB each): flash
/// sectors reserved by the board's linker script on hardware, a host file through semihosting on QEMU. Offsets
/// run from 0 to board_storage_size(); each 8 KiB half lies in erase sectors of its own.
size_t board_storage_size(void);
/// Copies `count` bytes from `offset` into `out`. 0 on success, -1 when out of range or the device fails.
int board_storage_read(size_t offset, uint8_t *out, size_t count);
/// Erases the sectors that [offset, offset + count) touches (NOR flash: all of each, to 0xFF), then programs
/// `bytes` there. 0 on success, -1 when out of range or the device fails.
int board_storage_write(size_t offset, const uint8_t *bytes, size_t count);

#endif
