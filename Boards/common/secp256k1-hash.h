/* libsecp256k1's internal SHA-256, HMAC-SHA256 and RFC 6979 generator for the boards, with the block compression
 * done by AmarsCrypto's (the Swift one every other hash on the board runs through, checked against the NIST
 * vectors) instead of hash_impl.h's, whose 64 rounds are written out one by one: 7 KiB of flash, the largest
 * function of every image.
 *
 * The Boards Makefile force-includes this file (-include) when it compiles the library's secp256k1.c from Debian's
 * source. Defining hash_impl.h's include guard makes the library's own #include "hash_impl.h" a no-op, so these
 * definitions take its place; the library's source is untouched. The functions keep hash.h's declarations and
 * hash_impl.h's behaviour (byte order, padding, the RFC 6979 retry rule of the library's nonce function), which the
 * board self-test checks through the library: secp256k1_selftest() hashes the library's own SHA-256 test vector,
 * and every BIP340 verification hashes its challenge here. */
#ifndef SECP256K1_HASH_IMPL_H
#define SECP256K1_HASH_IMPL_H

#include <stdint.h>
#include <string.h>

#include "hash.h"

/* AmarsCrypto (SHA256.swift): compresses the 64 bytes at `block` into the eight-word chaining value `state`. */
extern void amars_swift_sha256_compress(uint32_t *state, const unsigned char *block);

static void secp256k1_sha256_initialize(secp256k1_sha256 *hash) {
    static const uint32_t initial[8] = {0x6a09e667ul, 0xbb67ae85ul, 0x3c6ef372ul, 0xa54ff53aul,
                                        0x510e527ful, 0x9b05688cul, 0x1f83d9abul, 0x5be0cd19ul};
    memcpy(hash->s, initial, sizeof(initial));
    hash->bytes = 0;
}

static void secp256k1_sha256_write(secp256k1_sha256 *hash, const unsigned char *data, size_t len) {
    size_t used = hash->bytes & 63;
    hash->bytes += len;
    while (len > 0) {
        size_t take = 64 - used < len ? 64 - used : len;
        memcpy(hash->buf + used, data, take);
        data += take;
        len -= take;
        used += take;
        if (used == 64) {
            amars_swift_sha256_compress(hash->s, hash->buf);
            used = 0;
        }
    }
}

static void secp256k1_sha256_finalize(secp256k1_sha256 *hash, unsigned char *out32) {
    static const unsigned char pad[64] = {0x80};
    unsigned char length[8];
    uint64_t bits = hash->bytes << 3;
    int i;
    for (i = 0; i < 8; i++) length[i] = (unsigned char)(bits >> (56 - 8 * i));
    secp256k1_sha256_write(hash, pad, 1 + ((119 - (hash->bytes & 63)) & 63));
    secp256k1_sha256_write(hash, length, 8);
    for (i = 0; i < 8; i++) {
        out32[4 * i] = (unsigned char)(hash->s[i] >> 24);
        out32[4 * i + 1] = (unsigned char)(hash->s[i] >> 16);
        out32[4 * i + 2] = (unsigned char)(hash->s[i] >> 8);
        out32[4 * i + 3] = (unsigned char)hash->s[i];
        hash->s[i] = 0;
    }
}

/* BIP340's tagged hash prefix: SHA256(tag) twice. */
static void secp256k1_sha256_initialize_tagged(secp256k1_sha256 *hash, const unsigned char *tag, size_t taglen) {
    unsigned char digest[32];
    secp256k1_sha256_initialize(hash);
    secp256k1_sha256_write(hash, tag, taglen);
    secp256k1_sha256_finalize(hash, digest);
    secp256k1_sha256_initialize(hash);
    secp256k1_sha256_write(hash, digest, 32);
    secp256k1_sha256_write(hash, digest, 32);
}

/* RFC 2104 with a 64-byte block; a longer key is hashed first. */
static void secp256k1_hmac_sha256_initialize(secp256k1_hmac_sha256 *hash, const unsigned char *key, size_t keylen) {
    unsigned char block[64];
    size_t i;
    memset(block, 0, sizeof(block));
    if (keylen <= sizeof(block)) {
        memcpy(block, key, keylen);
    } else {
        secp256k1_sha256_initialize(&hash->outer);
        secp256k1_sha256_write(&hash->outer, key, keylen);
        secp256k1_sha256_finalize(&hash->outer, block);
    }
    for (i = 0; i < sizeof(block); i++) block[i] ^= 0x5c;
    secp256k1_sha256_initialize(&hash->outer);
    secp256k1_sha256_write(&hash->outer, block, sizeof(block));
    for (i = 0; i < sizeof(block); i++) block[i] ^= 0x5c ^ 0x36;
    secp256k1_sha256_initialize(&hash->inner);
    secp256k1_sha256_write(&hash->inner, block, sizeof(block));
    memset(block, 0, sizeof(block));
}

static void secp256k1_hmac_sha256_write(secp256k1_hmac_sha256 *hash, const unsigned char *data, size_t size) {
    secp256k1_sha256_write(&hash->inner, data, size);
}

static void secp256k1_hmac_sha256_finalize(secp256k1_hmac_sha256 *hash, unsigned char *out32) {
    unsigned char inner[32];
    secp256k1_sha256_finalize(&hash->inner, inner);
    secp256k1_sha256_write(&hash->outer, inner, 32);
    memset(inner, 0, sizeof(inner));
    secp256k1_sha256_finalize(&hash->outer, out32);
}

/* One HMAC_K(V || [sep] || key) step of RFC 6979 section 3.2, steps d to g. */
static void amars_rfc6979_update(secp256k1_rfc6979_hmac_sha256 *rng, const unsigned char *sep,
                                 const unsigned char *key, size_t keylen) {
    secp256k1_hmac_sha256 hmac;
    secp256k1_hmac_sha256_initialize(&hmac, rng->k, 32);
    secp256k1_hmac_sha256_write(&hmac, rng->v, 32);
    if (sep != NULL) {
        secp256k1_hmac_sha256_write(&hmac, sep, 1);
        secp256k1_hmac_sha256_write(&hmac, key, keylen);
    }
    secp256k1_hmac_sha256_finalize(&hmac, sep != NULL ? rng->k : rng->v);
}

static void secp256k1_rfc6979_hmac_sha256_initialize(secp256k1_rfc6979_hmac_sha256 *rng, const unsigned char *key,
                                                     size_t keylen) {
    static const unsigned char zero = 0x00, one = 0x01;
    memset(rng->v, 0x01, 32);
    memset(rng->k, 0x00, 32);
    amars_rfc6979_update(rng, &zero, key, keylen); /* K = HMAC_K(V || 0x00 || key) */
    amars_rfc6979_update(rng, NULL, NULL, 0);      /* V = HMAC_K(V) */
    amars_rfc6979_update(rng, &one, key, keylen);  /* K = HMAC_K(V || 0x01 || key) */
    amars_rfc6979_update(rng, NULL, NULL, 0);      /* V = HMAC_K(V) */
    rng->retry = 0;
}

static void secp256k1_rfc6979_hmac_sha256_generate(secp256k1_rfc6979_hmac_sha256 *rng, unsigned char *out,
                                                   size_t outlen) {
    static const unsigned char zero = 0x00;
    if (rng->retry) {
        /* Step h.3: K = HMAC_K(V || 0x00), V = HMAC_K(V). */
        amars_rfc6979_update(rng, &zero, NULL, 0);
        amars_rfc6979_update(rng, NULL, NULL, 0);
    }
    while (outlen > 0) {
        size_t now = outlen < 32 ? outlen : 32;
        amars_rfc6979_update(rng, NULL, NULL, 0);
        memcpy(out, rng->v, now);
        out += now;
        outlen -= now;
    }
    rng->retry = 1;
}

static void secp256k1_rfc6979_hmac_sha256_finalize(secp256k1_rfc6979_hmac_sha256 *rng) {
    memset(rng->k, 0, 32);
    memset(rng->v, 0, 32);
    rng->retry = 0;
}

#endif /* SECP256K1_HASH_IMPL_H */
