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
#include "proto/wire.h"

#define GD_CT_JSON "application/json"
#define GD_CT_BINARY "application/vnd.gradd.v1+binary"
#define GD_CT_SVG "image/svg+xml"      /* POST /v1/explain (A4) */
#define GD_CT_DOT "text/vnd.graphviz"  /* POST /v1/explain with Accept asking for it, or without Graphviz */

typedef struct gd_reply {
    int status;
    gd_buf body;                /* owned; JSON text unless content_type says otherwise */
    gd_binsec bin;              /* owned; the binary section when `binary` (its pieces point into `blocks`) */
    void **blocks;              /* owned (malloc'd list): tensor buffers the pieces of bin point into */
    int n_blocks;
    void (*drop_block)(void *); /* gives a block back once the reply is done with it */
    const char *static_body;    /* instead of body: static text (not freed), static_len bytes */
    size_t static_len;
    int binary;                 /* frame as GD_CT_BINARY with Gradd-Json-Length = body.len */
    const char *content_type;   /* static; NULL: GD_CT_JSON */
    int retry_after;            /* seconds; 0: no Retry-After */
    const char *allow;          /* static; Allow header (405, OPTIONS) */
    int www_authenticate;       /* 401: WWW-Authenticate: Bearer */
    const char *csp;            /* static; an HTML page's Content-Security-Policy (with nosniff, no referrer) */
    gd_err code;                /* an error answer's code (for the log), else GD_OK */
    unsigned diag_n[GD_DIAG__COUNT]; /* diagnostics in the body, by code (log, metrics) */
} gd_reply;

void gd_reply_init(gd_reply *r);
/* Free the buffers, drop the blocks and re-initialise (safe on an
 * initialised reply). */
void gd_reply_reset(gd_reply *r);
/* Drop every block of r (after their last read) and free the list. */
void gd_reply_drop_blocks(gd_reply *r);

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
 * res->n_diags, req->graph). A gradient request with no wrt at all (no
 * variable, none named) is 422 too, whatever unconnected says (A1). Returns
 * 0 (err untouched) otherwise, and for an eval. */
int gd_no_gradients(const gd_request *req, const gd_run_result *res, gd_error *err);

/* Count the diagnostics an answer carries, by code (gd_reply_error does
 * it for an error answer; a 200's encoder calls it). */
void gd_reply_count_diags(gd_reply *r, const gd_diag *diags, int n_diags);
/* The distinct diagnostic codes the answer carries, comma-separated in the
 * order of GD_DIAG_CODES, into buf (size > 0); "" when none. */
void gd_reply_diag_codes(const gd_reply *r, char *buf, size_t size);

/* A body from static text (not copied), with the given status. */
void gd_reply_static(gd_reply *r, int status, const char *text, size_t len);

#endif
