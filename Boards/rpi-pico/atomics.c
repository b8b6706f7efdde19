// The armv6m __atomic_*_4 helpers (../common/armv6m-atomics.inc), safe across the RP2040's two cores: inside the
// interrupt-masked section each also holds SIO hardware spinlock 31, reserved for them. Reading a spinlock
// register claims it (nonzero means acquired, zero means the other core holds it); writing any value releases
// it. The barriers keep the protected load/store inside the lock on both sides. Core 1 sleeps in the boot ROM
// in this firmware, so the lock is never contended today; it is what lets code on core 1 share Swift objects.
#include <stdint.h>

#define RP2040_ATOMICS_SPINLOCK (*(volatile uint32_t *)(0xd0000000u + 0x100u + 4u * 31u))

#define ATOMICS_HW_ACQUIRE()                                  \
    do {                                                      \
        while (RP2040_ATOMICS_SPINLOCK == 0) {                \
        }                                                     \
        __asm__ volatile("dmb" ::: "memory");                 \
    } while (0)
#define ATOMICS_HW_RELEASE()                                  \
    do {                                                      \
        __asm__ volatile("dmb" ::: "memory");                 \
        RP2040_ATOMICS_SPINLOCK = 1;                          \
    } while (0)

#include "../common/armv6m-atomics.inc"
