// The armv6m __atomic_*_4 helpers (../common/armv6m-atomics.inc): interrupt masking around plain loads/stores.
//
// RP2040 has two cores. Core 1 stays asleep in the boot ROM in this firmware. Masking interrupts does not
// exclude the other core: before Swift code (or anything sharing Swift objects) runs on core 1, these helpers
// must also take one of the SIO hardware spinlocks (SIO_BASE 0xd0000000 + 0x100 + 4*n: a read claims, nonzero
// = acquired; a write releases), e.g. spinlock 31 reserved for them.
#include "../common/armv6m-atomics.inc"
