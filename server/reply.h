/* reply.h - an HTTP answer as gradd builds it, before it becomes a
 * libmicrohttpd response: status, body (JSON, or text for /metrics), the
 * binary section of a binary-framed answer, and the few headers that vary
 * by answer. Workers build replies without touching MHD; http.c turns
 * them into responses on the MHD thread. The reply owns its buffers until
 * http.c takes them. The status rule that is the server's rather than the
 * encoder's, 422 when no wrt gets a gradient, is decided here too; proto
 * only encodes the body. Knows proto's request and error body and core's
 * diagnostics; nothing of MHD or the pool. */
#ifndef GD_SERVER_REPLY_H
#define GD_SERVER_REPLY_H

#include <stddef.h>

#include "core/buf.h"
#include "core/diagnose.h"
#include "core/engine.h"
#include "core/error.h"
#include "proto/request.h"

#define GD_CT_JSON "application/json"
#define GD_CT_BINARY "application/vnd.gradd.v1+binary"
#define GD_CT_SVG "image/svg+xml"      /* POST /v1/explain (A4) */
#define GD_CT_DOT "text/vnd.graphviz"  /* POST /v1/explain with Accept asking for it, or without Graphviz */

typedef struct gd_reply {
    int status;
    gd_buf body;                /* owned; JSON text unless content_type says otherwise */
    gd_buf bin;                 /* owned; the binary section when `binary` */
    const char *static_body;    /* instead of body: static text (not freed), static_len bytes */
    size_t static_len;
    int binary;                 /* frame as GD_CT_BINARY with Gradd-Json-Length = body.len */
    const char *content_type;   /* static; NULL: GD_CT_JSON */
    int retry_after;            /* seconds; 0: no Retry-After */
    const char *allow;          /* static; Allow header (405, OPTIONS) */
    int www_authenticate;       /* 401: WWW-Authenticate: Bearer */
} gd_reply;

void gd_reply_init(gd_reply *r);
/* Free the buffers and re-initialise (safe on an initialised reply). */
void gd_reply_reset(gd_reply *r);

/* The contract's error body for err with the status of its code, replacing
 * whatever r held; diagnostics as for gd_encode_error. Overloaded errors
 * get Retry-After: 1. */
void gd_reply_error(gd_reply *r, const gd_error *err, const gd_diag *diags, int n_diags, const gd_graph *g);
/* Same from a code and a printf message; `at` may be NULL. */
void gd_reply_errorf(gd_reply *r, gd_err code, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The 422 rule, which decides the status of a run that succeeded: does no
 * `wrt` have a gradient while unconnected is "none"? Then returns 1 and sets
 * err to no_gradients with the message
 * "No gradients provided for any variable: b, c" (names in wrt order; a long
 * list ends in ", ..."); answer it with gd_reply_error(r, err, res->diags,
 * res->n_diags, req->graph). Returns 0 (err untouched) otherwise, and also
 * when the request has no wrt at all or is an eval. */
int gd_no_gradients(const gd_request *req, const gd_run_result *res, gd_error *err);

/* A body from static text (not copied), with the given status. */
void gd_reply_static(gd_reply *r, int status, const char *text, size_t len);

#endif
