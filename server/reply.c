/* reply.c - building gd_reply values, and the 422 rule that decides when a
 * successful run is answered no_gradients (see reply.h). */
#include "server/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/encode.h"

void gd_reply_init(gd_reply *r) {
    memset(r, 0, sizeof *r);
    gd_buf_init(&r->body);
    gd_binsec_init(&r->bin);
}

void gd_reply_drop_blocks(gd_reply *r) {
    for (int k = 0; k < r->n_blocks; k++) r->drop_block(r->blocks[k]);
    free(r->blocks);
    r->blocks = NULL;
    r->n_blocks = 0;
}

void gd_reply_reset(gd_reply *r) {
    gd_buf_free(&r->body);
    gd_binsec_free(&r->bin);
    gd_reply_drop_blocks(r);
    gd_reply_init(r);
}

void gd_reply_error(gd_reply *r, const gd_error *err, const gd_diag *diags, int n_diags, const gd_graph *g) {
    gd_reply_reset(r);
    gd_err code = err->code == GD_OK ? GD_E_INTERNAL : err->code;
    r->status = gd_err_status(code);
    r->code = code;
    if (code == GD_E_OVERLOADED) r->retry_after = 1;
    gd_encode_error(&r->body, err, diags, n_diags, g);
    if (g) gd_reply_count_diags(r, diags, n_diags); /* the encoder writes them only with a graph */
}

void gd_reply_count_diags(gd_reply *r, const gd_diag *diags, int n_diags) {
    for (int i = 0; i < n_diags; i++)
        if ((int)diags[i].code >= 0 && (int)diags[i].code < GD_DIAG__COUNT) r->diag_n[diags[i].code]++;
}

void gd_reply_diag_codes(const gd_reply *r, char *buf, size_t size) {
    size_t o = 0;
    buf[0] = '\0';
    for (int c = 0; c < GD_DIAG__COUNT; c++) {
        if (!r->diag_n[c]) continue;
        int k = snprintf(buf + o, size - o, "%s%s", o ? "," : "", gd_diag_code_name((gd_diag_code)c));
        if (k < 0 || (size_t)k >= size - o) break; /* truncated: the buffer holds what fitted */
        o += (size_t)k;
    }
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

/* "No gradients provided for any variable: b, c" into msg, the wrt names in
 * order; a list too long for the message ends in ", ...". */
static void no_gradients_message(const gd_request *req, char msg[GD_ERR_MSG_MAX]) {
    const gd_run_spec *s = &req->spec;
    const size_t size = GD_ERR_MSG_MAX;
    const char *head = "No gradients provided for any variable: ";
    size_t o = (size_t)snprintf(msg, size, "%s", head);
    for (int k = 0; k < s->n_wrt; k++) {
        const char *name = req->wrt_names ? req->wrt_names[k] : req->graph->nodes[s->wrt[k]].name;
        size_t need = strlen(name) + (k ? 2 : 0);
        if (o + need + 5 >= size) { /* room for ", ..." */
            snprintf(msg + o, size - o, "%s...", k ? ", " : "");
            break;
        }
        o += (size_t)snprintf(msg + o, size - o, "%s%s", k ? ", " : "", name);
    }
}

int gd_no_gradients(const gd_request *req, const gd_run_result *res, gd_error *err) {
    const gd_run_spec *s = &req->spec;
    if (!s->grad) return 0;
    if (s->n_wrt == 0) { /* A1: no variable at all is an error, whatever unconnected says */
        gd_errorf(err, GD_E_NO_GRADIENTS, NULL,
                  "No gradients provided: the graph has no variable and the request names no wrt.");
        return 1;
    }
    if (s->unconnected_zero) return 0;
    for (int k = 0; k < s->n_wrt; k++)
        if (res->grads && res->grads[k]) return 0;
    char msg[GD_ERR_MSG_MAX];
    no_gradients_message(req, msg);
    gd_errorf(err, GD_E_NO_GRADIENTS, NULL, "%s", msg);
    return 1;
}
