/* tls.c - see tls.h. */
#include "server/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

/* PEM files are small; a larger "PEM" is a wrong path. */
#define PEM_MAX (1 << 20)

/* The whole file at path, NUL-terminated (malloc'd), or NULL with msg set. */
static char *read_pem(const char *path, const char *flag, char *msg, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, size, "cannot read '%s' given by --%s: %s", path, flag, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int err = !buf || ferror(f);
    fclose(f);
    if (err || n > PEM_MAX || n == 0) {
        snprintf(msg, size, "cannot use '%s' given by --%s: %s", path, flag,
                 err ? "read error" : n ? "larger than 1 MiB, not a PEM file" : "the file is empty");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Does GnuTLS accept the pair (and the CA file)? The message names the file. */
static int check_with_gnutls(const gd_config *cfg, const gd_tls *t, char *msg, size_t size) {
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        snprintf(msg, size, "GnuTLS could not allocate credentials");
        return -1;
    }
    gnutls_datum_t cert = {(unsigned char *)t->cert_pem, (unsigned)strlen(t->cert_pem)};
    gnutls_datum_t key = {(unsigned char *)t->key_pem, (unsigned)strlen(t->key_pem)};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        snprintf(msg, size, "cannot use --tls-cert '%s' with --tls-key '%s': %s (both must be PEM, the key "
                 "unencrypted and matching the certificate)", cfg->tls_cert, cfg->tls_key, gnutls_strerror(rc));
    } else if (t->ca_pem) {
        gnutls_datum_t ca = {(unsigned char *)t->ca_pem, (unsigned)strlen(t->ca_pem)};
        int n = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (n <= 0) {
            snprintf(msg, size, "cannot use --tls-client-ca '%s': %s", cfg->tls_client_ca,
                     n < 0 ? gnutls_strerror(n) : "no PEM certificate in it");
            rc = -1;
        }
    }
    gnutls_certificate_free_credentials(cred);
    return rc < 0 ? -1 : 0;
}

int gd_tls_load(const gd_config *cfg, gd_tls **out, char *msg, size_t size) {
    *out = NULL;
    if (!cfg->tls_cert[0]) return 0;
    gd_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(msg, size, "out of memory");
        return -1;
    }
    if (!(t->cert_pem = read_pem(cfg->tls_cert, "tls-cert", msg, size)) ||
        !(t->key_pem = read_pem(cfg->tls_key, "tls-key", msg, size)) ||
        (cfg->tls_client_ca[0] && !(t->ca_pem = read_pem(cfg->tls_client_ca, "tls-client-ca", msg, size))) ||
        check_with_gnutls(cfg, t, msg, size)) {
        gd_tls_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void gd_tls_free(gd_tls *t) {
    if (!t) return;
    free(t->cert_pem);
    if (t->key_pem) { /* the private key does not outlive its use */
        memset(t->key_pem, 0, strlen(t->key_pem));
        free(t->key_pem);
    }
    free(t->ca_pem);
    free(t);
}

/* libmicrohttpd hands the trust list to GnuTLS and asks for a certificate
 * (GNUTLS_CERT_REQUEST, not REQUIRE): a client without one still completes
 * the handshake, so the request itself is checked here. */
int gd_tls_client_ok(const gd_tls *t, struct MHD_Connection *c) {
    if (!t || !t->ca_pem) return 1;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return 0;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned n = 0, status = 0;
    if (!gnutls_certificate_get_peers(s, &n) || n == 0) return 0;
    return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}
