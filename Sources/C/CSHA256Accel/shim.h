#ifndef AMARS_CSHA256ACCEL_SHIM_H
#define AMARS_CSHA256ACCEL_SHIM_H
/* SHA-256's compression function from OpenSSL's libcrypto, for host builds only: OpenSSL picks the CPU's SHA
   extensions (SHA-NI, ARMv8 SHA2) when it has them. Devices keep AmarsCrypto's portable Swift compression.
   SHA256_Transform is deprecated as an API in OpenSSL 3 (it exposes the context) but is still provided, and it is
   exactly the operation needed: one 64-byte block into a caller-held chaining value. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

static inline void amars_sha256_compress(uint32_t state[8], const void *block) {
    SHA256_CTX c;
    memcpy(c.h, state, 32);
    SHA256_Transform(&c, (const unsigned char *)block);
    memcpy(state, c.h, 32);
}
#endif
