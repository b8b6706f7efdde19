#ifndef AMARS_CTLS_SHIM_H
#define AMARS_CTLS_SHIM_H
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Why a client context could not be made (the step that failed), for one line naming what to fix. */
enum amars_tls_failure {
    AMARS_TLS_OK = 0,
    AMARS_TLS_CONTEXT = 1,
    AMARS_TLS_VERSION = 2,
    AMARS_TLS_GROUPS = 3,
    AMARS_TLS_CA = 4,
    AMARS_TLS_CHAIN = 5,
    AMARS_TLS_KEY = 6,
    AMARS_TLS_KEY_MISMATCH = 7,
    AMARS_TLS_HOST = 8,
};

/* A TLS 1.2 client context for the gateway's broker, whose certificates are on secp256k1: OpenSSL 3.0 offers
 * that curve neither by default nor in TLS 1.3, so the version is pinned and the groups list names it. The
 * server must chain to `ca` and carry `host` (an IP address when `host_is_ip`) in its names; the client shows
 * the chain in `chain` (its certificate first) and proves `key`. These are OpenSSL's macros and calls, kept in
 * C because Swift does not import function-like macros. */
static inline SSL_CTX *amars_tls_client(const char *ca, const char *chain, const char *key, const char *host,
                                        int host_is_ip, int *failure) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) { *failure = AMARS_TLS_CONTEXT; return NULL; }
    int step = AMARS_TLS_OK;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1) step = AMARS_TLS_VERSION;
    else if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:secp256k1") != 1) step = AMARS_TLS_GROUPS;
    else if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) step = AMARS_TLS_CA;
    /* The key first: loaded after the certificate, a key that does not match it fails to load at all. */
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) step = AMARS_TLS_KEY;
    else if (SSL_CTX_use_certificate_chain_file(ctx, chain) != 1) step = AMARS_TLS_CHAIN;
    else if (SSL_CTX_check_private_key(ctx) != 1) step = AMARS_TLS_KEY_MISMATCH;
    else {
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
        int named = host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, 0);
        if (named != 1) step = AMARS_TLS_HOST;
    }
    if (step != AMARS_TLS_OK) {
        SSL_CTX_free(ctx);
        *failure = step;
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    *failure = AMARS_TLS_OK;
    return ctx;
}

#endif
