// armv6m has no exclusive load/store (LDREX/STREX), so the compiler turns every atomic operation of Swift's
// reference counting into a call to the __atomic_*_4 helpers below. Each masks interrupts around a plain
// load/store, which is atomic with respect to everything running on THIS core.
//
// RP2040 has two cores. Core 1 stays asleep in the boot ROM in this firmware. Masking interrupts does not
// exclude the other core: before Swift code (or anything sharing Swift objects) runs on core 1, these helpers
// must also take one of the SIO hardware spinlocks (SIO_BASE 0xd0000000 + 0x100 + 4*n: a read claims, nonzero
// = acquired; a write releases), e.g. spinlock 31 reserved for them.
#include <stdbool.h>
#include <stdint.h>

static inline uint32_t lock(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void unlock(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

// Defined under other names and renamed with asm labels: clang refuses definitions of its builtins.
uint32_t amars_atomic_load_4(const volatile void *ptr, int order) __asm__("__atomic_load_4");
uint32_t amars_atomic_load_4(const volatile void *ptr, int order) {
    (void)order;
    uint32_t s = lock();
    uint32_t value = *(const volatile uint32_t *)ptr;
    unlock(s);
    return value;
}

void amars_atomic_store_4(volatile void *ptr, uint32_t value, int order) __asm__("__atomic_store_4");
void amars_atomic_store_4(volatile void *ptr, uint32_t value, int order) {
    (void)order;
    uint32_t s = lock();
    *(volatile uint32_t *)ptr = value;
    unlock(s);
}

uint32_t amars_atomic_exchange_4(volatile void *ptr, uint32_t value, int order) __asm__("__atomic_exchange_4");
uint32_t amars_atomic_exchange_4(volatile void *ptr, uint32_t value, int order) {
    (void)order;
    uint32_t s = lock();
    uint32_t old = *(volatile uint32_t *)ptr;
    *(volatile uint32_t *)ptr = value;
    unlock(s);
    return old;
}

bool amars_atomic_compare_exchange_4(volatile void *ptr, void *expected, uint32_t desired, int success, int failure)
    __asm__("__atomic_compare_exchange_4");
bool amars_atomic_compare_exchange_4(volatile void *ptr, void *expected, uint32_t desired, int success, int failure) {
    (void)success;
    (void)failure;
    uint32_t s = lock();
    uint32_t current = *(volatile uint32_t *)ptr;
    bool equal = current == *(uint32_t *)expected;
    if (equal)
        *(volatile uint32_t *)ptr = desired;
    else
        *(uint32_t *)expected = current;
    unlock(s);
    return equal;
}

#define FETCH_OP(name, op)                                                                                  \
    uint32_t amars_atomic_fetch_##name##_4(volatile void *ptr, uint32_t value, int order)                  \
        __asm__("__atomic_fetch_" #name "_4");                                                              \
    uint32_t amars_atomic_fetch_##name##_4(volatile void *ptr, uint32_t value, int order) {                \
        (void)order;                                                                                        \
        uint32_t s = lock();                                                                                \
        uint32_t old = *(volatile uint32_t *)ptr;                                                           \
        *(volatile uint32_t *)ptr = op;                                                                     \
        unlock(s);                                                                                          \
        return old;                                                                                         \
    }                                                                                                       \
    uint32_t amars_atomic_##name##_fetch_4(volatile void *ptr, uint32_t value, int order)                  \
        __asm__("__atomic_" #name "_fetch_4");                                                              \
    uint32_t amars_atomic_##name##_fetch_4(volatile void *ptr, uint32_t value, int order) {                \
        (void)order;                                                                                        \
        uint32_t s = lock();                                                                                \
        uint32_t old = *(volatile uint32_t *)ptr;                                                           \
        uint32_t new = op;                                                                                  \
        *(volatile uint32_t *)ptr = new;                                                                    \
        unlock(s);                                                                                          \
        return new;                                                                                         \
    }

FETCH_OP(add, old + value)
FETCH_OP(sub, old - value)
FETCH_OP(and, old & value)
FETCH_OP(or, old | value)
FETCH_OP(xor, old ^ value)
FETCH_OP(nand, ~(old & value))
