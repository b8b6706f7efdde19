// What the Embedded Swift runtime and libsecp256k1 need from the platform beyond picolibc.
#include "board.h"

// libsecp256k1 is built with USE_EXTERNAL_DEFAULT_CALLBACKS: an illegal argument or an internal error is a bug
// in the caller or the library, never a reaction to input, so report it and stop.
void secp256k1_default_illegal_callback_fn(const char *message, void *data) {
    (void)data;
    board_puts("\r\n*** libsecp256k1 illegal argument: ");
    board_puts(message);
    board_puts("\r\n");
    board_exit(BOARD_EXIT_SECP256K1_ABORT);
}

void secp256k1_default_error_callback_fn(const char *message, void *data) {
    (void)data;
    board_puts("\r\n*** libsecp256k1 internal error: ");
    board_puts(message);
    board_puts("\r\n");
    board_exit(BOARD_EXIT_SECP256K1_ABORT);
}
