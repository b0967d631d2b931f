/* reply.c - building gd_reply values (see reply.h). */
#include "reply.h"

#include <stdarg.h>
#include <string.h>

#include "proto/encode.h"

void gd_reply_init(gd_reply *r) {
    memset(r, 0, sizeof *r);
    gd_buf_init(&r->body);
    gd_buf_init(&r->bin);
}

void gd_reply_reset(gd_reply *r) {
    gd_buf_free(&r->body);
    gd_buf_free(&r->bin);
    gd_reply_init(r);
}

void gd_reply_error(gd_reply *r, const gd_error *err, const gd_diag *diags, int n_diags, const gd_graph *g) {
    gd_reply_reset(r);
    gd_err code = err->code == GD_OK ? GD_E_INTERNAL : err->code;
    r->status = gd_err_status(code);
    if (code == GD_E_OVERLOADED) r->retry_after = 1;
    gd_encode_error(&r->body, err, diags, n_diags, g);
}

void gd_reply_errorf(gd_reply *r, gd_err code, const char *at, const char *fmt, ...) {
    gd_error err;
    va_list ap;
    va_start(ap, fmt);
    gd_verrorf(&err, code, at, fmt, ap);
    va_end(ap);
    gd_reply_error(r, &err, NULL, 0, NULL);
}

void gd_reply_static(gd_reply *r, int status, const char *text, size_t len) {
    gd_reply_reset(r);
    r->status = status;
    r->static_body = text;
    r->static_len = len;
}
