#ifndef AMARS_CSECP256K1_SHIM_H
#define AMARS_CSECP256K1_SHIM_H
#include <secp256k1.h>
#include <secp256k1_preallocated.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_recovery.h>

/* The library's static context, read through a function: Swift sees the extern pointer as shared mutable state. */
static inline const secp256k1_context *amars_secp256k1_static_context(void) {
    return secp256k1_context_static;
}
#endif
