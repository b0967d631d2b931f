/* tls.h - HTTPS for gradd: the PEM files of --tls-cert/--tls-key (and
 * --tls-client-ca for mutual TLS) read and checked at startup with GnuTLS,
 * so a wrong file is a clear message and exit 2 rather than a daemon that
 * does not start; and the client-certificate check of a /v1/ request.
 * libmicrohttpd does the TLS itself (MHD_USE_TLS). */
#ifndef GD_SERVER_TLS_H
#define GD_SERVER_TLS_H

#include <stddef.h>

#include "server/config.h"

struct MHD_Connection;

typedef struct gd_tls {
    char *cert_pem; /* NUL-terminated file contents, as libmicrohttpd takes them */
    char *key_pem;
    char *ca_pem;   /* NULL without --tls-client-ca */
} gd_tls;

/* Read and check cfg's TLS files: the key must match the certificate, the CA
 * file must hold at least one certificate. Returns 0 with *out NULL when
 * cfg asks for no TLS, 0 with *out set, or -1 with a message naming the flag
 * and the file in msg. */
int gd_tls_load(const gd_config *cfg, gd_tls **out, char *msg, size_t size);

void gd_tls_free(gd_tls *t);

/* Mutual TLS: 1 when t asks for no client certificates, or when connection
 * c presented a certificate that verifies against t's CA file; else 0. */
int gd_tls_client_ok(const gd_tls *t, struct MHD_Connection *c);

#endif
