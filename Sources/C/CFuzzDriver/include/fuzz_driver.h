#ifndef AMARS_FUZZ_DRIVER_H
#define AMARS_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>
/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer). Called from the executable's own entry point
/// because SwiftPM names that entry point itself.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
#endif
