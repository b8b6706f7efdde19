// The armv6m __atomic_*_4 helpers (../common/armv6m-atomics.inc): the nRF51 has one core, so masking interrupts
// is all they need.
#include "../common/armv6m-atomics.inc"
