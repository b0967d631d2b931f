/* encode.c - responses and error bodies as JSON text (see encode.h).
 *
 * The diagnostics' evidence per code, the bodies and GET /v1/ops; tensors
 * are streamed by wire.c, strings escaped by jsonstr.c, into core's gd_buf.
 * No JSON tree is built. It allocates only the output buffers. */
#include "proto/encode.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/jsonstr.h"
#include "core/flow.h"
#include "proto/wire.h"

/* The encoder's state: where the JSON and the binary section go, and the
 * tensor form the request asked for. */
typedef struct enc {
    gd_buf *out;
    gd_binsec *bin;
    gd_tensor_format fmt;
    gd_wire_poll poll; /* the request's cancel record, polled while tensors are written */
    gd_error err;      /* what a poll that fired said */
} enc;

/* ---- diagnostics ---------------------------------------------------------------- */

static void put_name(gd_buf *b, const gd_graph *g, int v) {
    if (v < 0 || v >= g->n) gd_buf_puts(b, "null");
    else gd_buf_json_string(b, g->nodes[v].name);
}

/* "node": name, "op": op, as the evidence objects begin. */
static void put_node_op(gd_buf *b, const gd_graph *g, int v) {
    gd_buf_puts(b, "\"node\":");
    put_name(b, g, v);
    gd_buf_puts(b, ",\"op\":");
    if (v < 0 || v >= g->n) gd_buf_puts(b, "null");
    else gd_buf_json_string(b, g->nodes[v].op->name);
}

static void put_origin(gd_buf *b, const gd_graph *g, const gd_origin *o) {
    if (o->node < 0) { gd_buf_puts(b, "null"); return; }
    gd_buf_putc(b, '{');
    put_node_op(b, g, o->node);
    gd_buf_puts(b, ",\"index\":[");
    for (int i = 0; i < o->shape.rank; i++) gd_buf_printf(b, i ? ",%" PRId64 : "%" PRId64, o->index[i]);
    gd_buf_puts(b, "]}");
}

/* ",\"key\":[{\"node\", \"op\"}, ...]" for the nodes v[0..n). */
static void put_node_list(gd_buf *b, const char *key, const int *v, int n, const gd_graph *g) {
    gd_buf_printf(b, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        gd_buf_puts(b, i ? ",{" : "{");
        put_node_op(b, g, v[i]);
        gd_buf_putc(b, '}');
    }
    gd_buf_putc(b, ']');
}

/* consumers, and same_value_as when an input held a value of the wrt's (A2). */
static void put_disconnected(gd_buf *b, const gd_diag *d, const gd_graph *g) {
    put_node_list(b, "consumers", d->consumers, d->n_consumers, g);
    if (d->same_input < 0) return;
    gd_buf_puts(b, ",\"same_value_as\":{\"input\":");
    put_name(b, g, d->same_input);
    gd_buf_puts(b, ",\"node\":");
    put_name(b, g, d->same_node);
    gd_buf_putc(b, '}');
}

/* "blocked_at", then "path" when the diagnostic is about a wrt or has one. */
static void put_blocked(gd_buf *b, const gd_diag *d, const gd_graph *g) {
    gd_buf_puts(b, ",\"blocked_at\":[");
    for (int i = 0; i < d->n_blocked; i++) {
        const gd_block *k = &d->blocked[i];
        gd_buf_puts(b, i ? ",{" : "{");
        put_node_op(b, g, k->node);
        gd_buf_printf(b, ",\"reason\":\"%s\",\"input\":%d", gd_block_reason_name(k->reason), k->input);
        if (k->predicate >= 0) gd_buf_puts(b, ",\"predicate\":"), put_name(b, g, k->predicate);
        gd_buf_putc(b, '}');
    }
    gd_buf_putc(b, ']');
    if (d->wrt >= 0 || d->n_path > 0) {
        gd_buf_puts(b, ",\"path\":[");
        for (int i = 0; i < d->n_path; i++) {
            if (i) gd_buf_putc(b, ',');
            put_name(b, g, d->path[i]);
        }
        gd_buf_putc(b, ']');
    }
}

static void put_zeroed(gd_buf *b, const gd_diag *d, const gd_graph *g) {
    gd_buf_puts(b, ",\"zeroed_at\":[");
    for (int i = 0; i < d->n_zeroed; i++) {
        gd_buf_puts(b, i ? ",{" : "{");
        put_node_op(b, g, d->zeroed[i].node);
        gd_buf_puts(b, ",\"cause\":");
        gd_buf_json_string(b, gd_zero_cause_name(d->zeroed[i].cause));
        gd_buf_putc(b, '}');
    }
    gd_buf_putc(b, ']');
}

/* The evidence keys that d's code carries, each with its leading comma. */
static void put_evidence(gd_buf *b, const gd_diag *d, const gd_graph *g) {
    switch (d->code) {
    case GD_DIAG_DISCONNECTED: put_disconnected(b, d, g); break;
    case GD_DIAG_NO_VARIABLES: put_node_list(b, "candidates", d->candidates, d->n_candidates, g); break;
    case GD_DIAG_STOP_GRADIENT:
    case GD_DIAG_NON_DIFFERENTIABLE:
    case GD_DIAG_UNTAKEN_BRANCH:
    case GD_DIAG_MIXED: put_blocked(b, d, g); break;
    case GD_DIAG_INTEGER_DTYPE:
        gd_buf_printf(b, ",\"dtype\":\"%s\",\"made_by\":", gd_dtype_name(d->dtype));
        put_name(b, g, d->made_by);
        break;
    case GD_DIAG_ZERO_GRADIENT: put_zeroed(b, d, g); break;
    case GD_DIAG_NON_FINITE_GRADIENT:
    case GD_DIAG_NON_FINITE_VALUE:
        gd_buf_puts(b, ",\"origin\":");
        put_origin(b, g, &d->origin);
        if (d->has_zeroed) put_zeroed(b, d, g); /* the origin multiplied an all-zero cotangent */
        break;
    }
}

/* One diagnostic: code, severity, wrt or node, message, the evidence its code
 * carries, hint (the contract's key order). */
static void put_diag(gd_buf *b, const gd_diag *d, const gd_graph *g) {
    gd_buf_puts(b, "{\"code\":");
    gd_buf_json_string(b, gd_diag_code_name(d->code));
    gd_buf_printf(b, ",\"severity\":\"%s\"", d->is_error ? "error" : "warning");
    if (d->wrt >= 0) gd_buf_puts(b, ",\"wrt\":"), put_name(b, g, d->wrt);
    else if (d->node >= 0) gd_buf_puts(b, ",\"node\":"), put_name(b, g, d->node);
    gd_buf_puts(b, ",\"message\":");
    gd_buf_json_string(b, d->message);
    put_evidence(b, d, g);
    gd_buf_puts(b, ",\"hint\":");
    gd_buf_json_string(b, d->hint);
    gd_buf_putc(b, '}');
}

static void put_diags(gd_buf *b, const gd_diag *d, int n, const gd_graph *g) {
    gd_buf_putc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i) gd_buf_putc(b, ',');
        put_diag(b, &d[i], g);
    }
    gd_buf_putc(b, ']');
}

/* ---- bodies ---------------------------------------------------------------------- */

void gd_stats_from_run(gd_stats *st, const gd_request *req, const gd_run_result *res) {
    memset(st, 0, sizeof *st);
    st->nodes = req && req->graph ? req->graph->n : 0;
    if (res) {
        st->forward_us = res->forward_us;
        st->backward_us = res->backward_us;
        st->peak_bytes = (int64_t)res->peak_bytes;
    }
}

static void put_stats(gd_buf *b, const gd_request *req, const gd_run_result *res, const gd_stats *given) {
    gd_stats st;
    if (given) st = *given;
    else gd_stats_from_run(&st, req, res);
    gd_buf_puts(b, "{\"nodes\":"), gd_buf_put_int(b, st.nodes);
    gd_buf_puts(b, ",\"forward_us\":"), gd_buf_put_int(b, st.forward_us);
    gd_buf_puts(b, ",\"backward_us\":"), gd_buf_put_int(b, st.backward_us);
    gd_buf_puts(b, ",\"queue_us\":"), gd_buf_put_int(b, st.queue_us);
    gd_buf_puts(b, ",\"total_us\":"), gd_buf_put_int(b, st.total_us);
    gd_buf_puts(b, ",\"peak_bytes\":"), gd_buf_put_int(b, st.peak_bytes);
    gd_buf_putc(b, '}');
}

/* {name: tensor, ...} over node indices idx with their results. */
static void put_map(enc *e, const gd_graph *g, const int *idx, const char *const *names, gd_tensor *const *vals,
                    int n) {
    gd_buf_putc(e->out, '{');
    for (int k = 0; k < n && !e->out->failed && !e->poll.stopped; k++) {
        if (k) gd_buf_putc(e->out, ',');
        gd_buf_json_string(e->out, names ? names[k] : g->nodes[idx[k]].name);
        gd_buf_putc(e->out, ':');
        gd_wire_put(e->out, e->bin, e->fmt, vals ? vals[k] : NULL, g->st[idx[k]].transport_f32, &e->poll);
    }
    gd_buf_putc(e->out, '}');
}

static int begin(enc *e, gd_buf *out, gd_binsec *bin, const gd_request *req) {
    e->out = out, e->bin = bin, e->fmt = req->tensor_format;
    e->poll = (gd_wire_poll){.cancel = req->spec.cancel, .err = &e->err};
    if (e->fmt == GD_TF_BINARY && !bin) return -1;
    return out->failed || (bin && bin->bytes.failed) ? -1 : 0;
}

/* Room for every tensor of vals in the binary section at once (each padded
 * to 64 bytes), so that a large response grows its buffer once instead of
 * copying it at every doubling. Only an optimisation: failure is ignored here
 * and reported by the appends. */
static void reserve_binary(enc *e, gd_tensor *const *vals, int n, size_t *total) {
    if (e->fmt != GD_TF_BINARY || !vals) return;
    for (int k = 0; k < n; k++)
        if (vals[k] && (size_t)vals[k]->n < SIZE_MAX / 16 &&
            (!e->bin->borrow_min || (size_t)vals[k]->n * 8 < e->bin->borrow_min)) /* a piece is not copied */
            *total += (size_t)vals[k]->n * 8 + 64;
}

/* Room for the text of every tensor of vals (nodes idx) at once, added to
 * *total (see gd_wire_put_bound), for the JSON formats: a large answer is
 * then written into one buffer instead of being copied at every doubling.
 * Only a hint (gd_buf_reserve_soft). */
static void json_room(const enc *e, const gd_graph *g, const int *idx, gd_tensor *const *vals, int n,
                      size_t *total) {
    if (e->fmt == GD_TF_BINARY || !vals) return;
    for (int k = 0; k < n; k++) *total += gd_wire_put_bound(e->fmt, vals[k], g->st[idx[k]].transport_f32);
}

/* Reserve what json_room summed, when it is worth it (a small answer grows
 * as cheaply) and memory allows. */
static void reserve_json(enc *e, size_t total) {
    if (total >= 4096 && total < SIZE_MAX / 4) gd_buf_reserve_soft(e->out, total + 1024);
}

static int finish(const enc *e) {
    if (e->poll.stopped) return GD_E_DEADLINE_EXCEEDED;
    return e->out->failed || (e->bin && e->bin->bytes.failed) ? -1 : 0;
}

int gd_encode_grad_response(gd_buf *out, gd_binsec *bin, const gd_request *req, const gd_run_result *res,
                            const gd_stats *stats) {
    enc e;
    if (begin(&e, out, bin, req)) return -1;
    const gd_graph *g = req->graph;
    const gd_run_spec *s = &req->spec;
    size_t total = 0;
    reserve_binary(&e, res->targets, s->n_targets, &total);
    reserve_binary(&e, res->grads, s->n_wrt, &total);
    if (req->fetch_given) reserve_binary(&e, res->fetched, s->n_fetch, &total);
    if (total && total < SIZE_MAX / 2) gd_buf_reserve(&bin->bytes, total);
    size_t text = 0;
    json_room(&e, g, s->targets, res->targets, s->n_targets, &text);
    json_room(&e, g, s->wrt, res->grads, s->n_wrt, &text);
    if (req->fetch_given) json_room(&e, g, s->fetch, res->fetched, s->n_fetch, &text);
    reserve_json(&e, text);
    gd_buf_puts(out, "{\"target\":");
    put_map(&e, g, s->targets, req->target_names, res->targets, s->n_targets);
    gd_buf_puts(out, ",\"gradients\":");
    put_map(&e, g, s->wrt, req->wrt_names, res->grads, s->n_wrt);
    if (req->fetch_given) {
        gd_buf_puts(out, ",\"values\":");
        put_map(&e, g, s->fetch, req->fetch_names, res->fetched, s->n_fetch);
    }
    gd_buf_puts(out, ",\"diagnostics\":");
    put_diags(out, res->diags, res->n_diags, g);
    gd_buf_puts(out, ",\"stats\":");
    put_stats(out, req, res, stats);
    gd_buf_putc(out, '}');
    return finish(&e);
}

int gd_encode_eval_response(gd_buf *out, gd_binsec *bin, const gd_request *req, const gd_run_result *res,
                            const gd_stats *stats) {
    enc e;
    if (begin(&e, out, bin, req)) return -1;
    const gd_graph *g = req->graph;
    const gd_run_spec *s = &req->spec;
    size_t text = 0;
    json_room(&e, g, s->fetch, res->fetched, s->n_fetch, &text);
    reserve_json(&e, text);
    gd_buf_puts(out, "{\"values\":");
    put_map(&e, g, s->fetch, req->fetch_names, res->fetched, s->n_fetch);
    gd_buf_puts(out, ",\"diagnostics\":");
    put_diags(out, res->diags, res->n_diags, g);
    gd_buf_puts(out, ",\"stats\":");
    put_stats(out, req, res, stats);
    gd_buf_putc(out, '}');
    return finish(&e);
}

int gd_encode_error(gd_buf *out, const gd_error *err, const gd_diag *diags, int n_diags, const gd_graph *g) {
    gd_err code = err->code == GD_OK ? GD_E_INTERNAL : err->code;
    gd_buf_puts(out, "{\"error\":{\"code\":");
    gd_buf_json_string(out, gd_err_code(code));
    gd_buf_puts(out, ",\"message\":");
    gd_buf_json_string(out, err->message[0] ? err->message : gd_err_default(code));
    if (err->at[0]) gd_buf_puts(out, ",\"at\":"), gd_buf_json_string(out, err->at);
    if (err->suggestion[0]) gd_buf_puts(out, ",\"suggestion\":"), gd_buf_json_string(out, err->suggestion);
    if (n_diags > 0 && g) gd_buf_puts(out, ",\"diagnostics\":"), put_diags(out, diags, n_diags, g);
    gd_buf_puts(out, "}}");
    return out->failed ? -1 : 0;
}

/* ---- GET /v1/ops -------------------------------------------------------------- */

static const char *attr_type(gd_attr_kind k) {
    switch (k) {
    case GD_ATTR_INT: return "int";
    case GD_ATTR_AXIS: return "int|[int]";
    case GD_ATTR_INTS: return "[int]";
    case GD_ATTR_BOOL: return "bool";
    case GD_ATTR_NUMBER: return "number";
    case GD_ATTR_DTYPE: return "dtype";
    }
    return "unknown";
}

/* The input names of an inputs_doc ("a, b", "x...", "") as a JSON list; also
 * the list of those that pass no gradient. A variadic "x..." names one
 * input, x, that may repeat. */
static void put_inputs(gd_buf *b, const gd_op_def *op) {
    const char *doc = op->inputs_doc ? op->inputs_doc : "";
    char names[8][32];
    int n = 0;
    for (const char *s = doc; *s && n < 8;) {
        while (*s == ' ' || *s == ',') s++;
        size_t len = strcspn(s, ", .");
        if (len == 0) break;
        snprintf(names[n++], sizeof names[0], "%.*s", (int)(len < 31 ? len : 31), s);
        s += len;
        while (*s == '.') s++;
    }
    gd_buf_puts(b, "{\"names\":[");
    for (int i = 0; i < n; i++) {
        if (i) gd_buf_putc(b, ',');
        gd_buf_json_string(b, names[i]);
    }
    gd_buf_printf(b, "],\"min\":%d,\"max\":", op->min_in);
    if (op->max_in < 0) gd_buf_puts(b, "null");
    else gd_buf_printf(b, "%d", op->max_in);
    gd_buf_puts(b, ",\"no_gradient\":[");
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (gd_flow_input_block(op, i) == GD_BLOCK_NONE) continue;
        if (!first) gd_buf_putc(b, ',');
        gd_buf_json_string(b, names[i]);
        first = 0;
    }
    gd_buf_puts(b, "]}");
}

int gd_encode_ops(gd_buf *out) {
    int n;
    const gd_op_def *const *ops = gd_op_all(&n);
    gd_buf_puts(out, "{\"ops\":[");
    for (int i = 0; i < n; i++) {
        const gd_op_def *op = ops[i];
        if (i) gd_buf_putc(out, ',');
        gd_buf_puts(out, "{\"name\":");
        gd_buf_json_string(out, op->name);
        gd_buf_puts(out, ",\"inputs\":");
        put_inputs(out, op);
        gd_buf_puts(out, ",\"attributes\":{");
        for (int k = 0; k < op->n_attrs; k++) {
            const gd_attr_spec *a = &op->attrs[k];
            if (k) gd_buf_putc(out, ',');
            gd_buf_json_string(out, a->name);
            gd_buf_puts(out, ":{\"type\":");
            gd_buf_json_string(out, attr_type(a->kind));
            /* dflt is JSON text from the table ("false", "-1", "0.01"),
             * "null" for optional keys, NULL for required ones. */
            gd_buf_printf(out, ",\"default\":%s,\"required\":%s}", a->dflt ? a->dflt : "null",
                          a->dflt ? "false" : "true");
        }
        gd_buf_printf(out, "},\"differentiable\":%s,\"doc\":", op->differentiable ? "true" : "false");
        gd_buf_json_string(out, op->doc ? op->doc : "");
        gd_buf_putc(out, '}');
    }
    gd_buf_puts(out, "]}");
    return out->failed ? -1 : 0;
}
