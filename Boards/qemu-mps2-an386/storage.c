// The trusted state's storage on this QEMU board: a host file through semihosting (see the .inc).
#include "../common/semihosting-storage.inc"
