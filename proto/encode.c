/* encode.c - responses and error bodies as JSON text (see encode.h).
 *
 * A tiny growable buffer, a JSON string escaper that guarantees valid UTF-8,
 * Python-repr number formatting, the four tensor forms, the diagnostics'
 * evidence per code, and the three bodies. Tensors are streamed element by
 * element; no JSON tree is built. It allocates only the output buffers. */
#include "encode.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"

/* ---- the buffer ------------------------------------------------------------- */

void gd_buf_init(gd_buf *b) { memset(b, 0, sizeof *b); }

void gd_buf_free(gd_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void gd_buf_reset(gd_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

/* Room for n more bytes plus the terminating NUL; -1 (and `failed`) when
 * memory runs out or the size would overflow. */
static int reserve(gd_buf *b, size_t n) {
    if (b->failed) return -1;
    if (b->cap > b->len && n < b->cap - b->len) return 0;
    if (n > SIZE_MAX / 2 - b->len - 1) { b->failed = 1; return -1; }
    size_t need = b->len + n + 1, cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) { b->failed = 1; return -1; }
    b->data = d, b->cap = cap;
    return 0;
}

int gd_buf_append(gd_buf *b, const void *p, size_t n) {
    if (reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gd_buf_puts(gd_buf *b, const char *s) { return gd_buf_append(b, s, strlen(s)); }

static int putch(gd_buf *b, char ch) { return gd_buf_append(b, &ch, 1); }

int gd_buf_printf(gd_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof small) return gd_buf_append(b, small, (size_t)n);
    if (reserve(b, (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int gd_buf_json_string(gd_buf *b, const char *str) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    putch(b, '"');
    while (*s) {
        const unsigned char *run = s;
        while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') s++;
        if (s > run) gd_buf_append(b, run, (size_t)(s - run));
        if (!*s) break;
        unsigned char ch = *s;
        if (ch == '"') gd_buf_puts(b, "\\\""), s++;
        else if (ch == '\\') gd_buf_puts(b, "\\\\"), s++;
        else if (ch == '\n') gd_buf_puts(b, "\\n"), s++;
        else if (ch == '\r') gd_buf_puts(b, "\\r"), s++;
        else if (ch == '\t') gd_buf_puts(b, "\\t"), s++;
        else if (ch < 0x20) gd_buf_printf(b, "\\u%04x", ch), s++;
        else {
            int n = utf8_len(s);
            if (n) gd_buf_append(b, s, (size_t)n), s += n;
            else gd_buf_puts(b, "\\ufffd"), s++;
        }
    }
    return putch(b, '"');
}

/* ---- numbers ------------------------------------------------------------------ */

/* Python's repr layout from a "%.*e" rendering ("-d.ddde+XX"): digits with
 * trailing zeros dropped, then fixed notation for exponents in [-4, 16),
 * exponent notation with at least two exponent digits otherwise. */
static int repr_from_e(char *out, const char *e) {
    char dig[40];
    int nd = 0, o = 0;
    const char *s = e;
    if (*s == '-') out[o++] = '-', s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') dig[nd++] = *s;
    int exp = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? dig[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) out[o++] = dig[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0', out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = dig[i];
        }
    } else {
        out[o++] = dig[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = dig[i];
        }
        o += sprintf(out + o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    out[o] = '\0';
    return o;
}

static int fmt_special(char *buf, double v) {
    const char *s = isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    strcpy(buf, s);
    return (int)strlen(s);
}

int gd_fmt_double(char buf[32], double v) {
    if (!isfinite(v)) return fmt_special(buf, v);
    if (v == 0) return sprintf(buf, signbit(v) ? "-0.0" : "0.0");
    /* Integers below 10^15 have at most 15 digits: their shortest form is the
     * integer itself, and the exponent is < 16, so fixed notation. */
    if (fabs(v) < 1e15 && v == trunc(v)) return sprintf(buf, "%lld.0", (long long)v);
    char tmp[40];
    /* For a normal double, any decimal of <= 15 significant digits that
     * round-trips is the one 15-digit rounding finds (15-digit decimals are
     * spaced wider than a double's ulp), so trying 15, 16, 17 digits in turn
     * yields the shortest. Subnormals have fewer bits (5e-324 has one), so
     * there every length from 1 up is tried. */
    for (int p = fabs(v) < DBL_MIN ? 1 : 15; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (p == 17 || strtod(tmp, NULL) == v) break;
    }
    return repr_from_e(buf, tmp);
}

int gd_fmt_float(char buf[32], float f) {
    if (!isfinite(f)) return fmt_special(buf, f);
    if (f == 0) return sprintf(buf, signbit(f) ? "-0.0" : "0.0");
    if (fabsf(f) < 1e6f && f == truncf(f)) return sprintf(buf, "%lld.0", (long long)f);
    char tmp[40];
    /* As for doubles: 6-digit decimals are spaced wider than a normal
     * float's ulp; subnormal floats try every length. */
    for (int p = fabsf(f) < FLT_MIN ? 1 : 6; p <= 9; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, (double)f);
        if (p == 9 || strtof(tmp, NULL) == f) break;
    }
    return repr_from_e(buf, tmp);
}

/* ---- tensors ------------------------------------------------------------------ */

typedef struct enc {
    gd_buf *out, *bin;
    gd_tensor_format fmt;
} enc;

/* Element k as JSON: int64 as an integer, float64 (or float32 when narrowed)
 * as its shortest repr, non-finite as a quoted string. */
static void put_elem(gd_buf *b, const gd_tensor *t, int f32, int64_t k) {
    char s[40];
    int n;
    if (reserve(b, 40)) return;
    if (t->dtype == GD_I64) {
        n = sprintf(s, "%" PRId64, gd_i64(t)[k]);
    } else {
        double v = gd_f64(t)[k];
        n = f32 ? gd_fmt_float(s + 1, gd_to_f32(v)) : gd_fmt_double(s + 1, v);
        if (isfinite(v) && (!f32 || isfinite(gd_to_f32(v)))) {
            memmove(s, s + 1, (size_t)n + 1);
        } else {
            s[0] = '"', s[n + 1] = '"', s[n + 2] = '\0';
            n += 2;
        }
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

static void put_elems(gd_buf *b, const gd_tensor *t, int f32, int64_t from, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        if (i) putch(b, ',');
        put_elem(b, t, f32, from + i);
    }
}

/* Nested lists, one level per dimension (depth <= GD_MAX_RANK). */
static void put_level(gd_buf *b, const gd_tensor *t, int f32, int depth, int64_t *k) {
    putch(b, '[');
    int64_t n = t->shape.dim[depth];
    if (depth == t->shape.rank - 1) {
        put_elems(b, t, f32, *k, n);
        *k += n;
    } else {
        for (int64_t i = 0; i < n && !b->failed; i++) {
            if (i) putch(b, ',');
            put_level(b, t, f32, depth + 1, k);
        }
    }
    putch(b, ']');
}

static void put_shape(gd_buf *b, const gd_shape *s) {
    putch(b, '[');
    for (int i = 0; i < s->rank; i++) gd_buf_printf(b, i ? ",%" PRId64 : "%" PRId64, s->dim[i]);
    putch(b, ']');
}

/* Raw little-endian bytes of element i into dst; returns their count. */
static int raw_elem(const gd_tensor *t, int f32, int64_t i, unsigned char *dst) {
    uint64_t u;
    if (f32) {
        float f = gd_to_f32(gd_f64(t)[i]);
        uint32_t w;
        memcpy(&w, &f, 4);
        for (int k = 0; k < 4; k++) dst[k] = (unsigned char)(w >> (8 * k));
        return 4;
    }
    memcpy(&u, (const char *)t->data + 8 * i, 8);
    for (int k = 0; k < 8; k++) dst[k] = (unsigned char)(u >> (8 * k));
    return 8;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of the tensor's raw bytes, streamed through a small chunk so a big
 * tensor needs no second copy. */
static void put_b64(gd_buf *b, const gd_tensor *t, int f32) {
    unsigned char chunk[768 + 8];
    size_t have = 0;
    putch(b, '"');
    for (int64_t i = 0; i <= t->n && !b->failed; i++) {
        if (i < t->n) have += (size_t)raw_elem(t, f32, i, chunk + have);
        int last = i == t->n;
        if (have >= 768 || last) {
            size_t full = last ? have : have / 3 * 3;
            if (reserve(b, (full + 2) / 3 * 4)) return;
            char *o = b->data + b->len;
            size_t j = 0;
            for (; j + 3 <= full; j += 3) {
                uint32_t v = (uint32_t)chunk[j] << 16 | (uint32_t)chunk[j + 1] << 8 | chunk[j + 2];
                *o++ = b64_alphabet[v >> 18], *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = b64_alphabet[(v >> 6) & 63], *o++ = b64_alphabet[v & 63];
            }
            if (j < full) { /* last, 1 or 2 bytes left */
                uint32_t v = (uint32_t)chunk[j] << 16 | (j + 1 < full ? (uint32_t)chunk[j + 1] << 8 : 0);
                *o++ = b64_alphabet[v >> 18], *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = j + 1 < full ? b64_alphabet[(v >> 6) & 63] : '=';
                *o++ = '=';
                j = full;
            }
            b->len = (size_t)(o - b->data);
            b->data[b->len] = '\0';
            memmove(chunk, chunk + j, have - j);
            have -= j;
        }
    }
    putch(b, '"');
}

/* The raw bytes into the binary section at the next 64-byte boundary. */
static void put_binary(enc *e, const gd_tensor *t, int f32, uint64_t *off, uint64_t *nbytes) {
    static const unsigned char zeros[64];
    gd_buf *bin = e->bin;
    size_t pad = (64 - bin->len % 64) % 64;
    gd_buf_append(bin, zeros, pad);
    *off = bin->len;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!f32) { /* float64/int64 on a little-endian host: the wire bytes are the memory bytes */
        gd_buf_append(bin, t->data, (size_t)t->n * 8);
        *nbytes = bin->len - *off;
        return;
    }
#endif
    if (reserve(bin, (size_t)t->n * (f32 ? 4 : 8))) return; /* one growth, not log2(n) */
    unsigned char chunk[1024];
    size_t have = 0;
    for (int64_t i = 0; i < t->n; i++) {
        have += (size_t)raw_elem(t, f32, i, chunk + have);
        if (have > sizeof chunk - 8) gd_buf_append(bin, chunk, have), have = 0;
    }
    gd_buf_append(bin, chunk, have);
    *nbytes = bin->len - *off;
}

/* A tensor (or null) in the request's format. Values and gradients of a
 * float32 transport node are narrowed to float32 on the way out. */
static void put_tensor(enc *e, const gd_tensor *t, int transport_f32) {
    gd_buf *b = e->out;
    if (!t) { gd_buf_puts(b, "null"); return; }
    int f32 = transport_f32 && t->dtype == GD_F64;
    const char *dtype = t->dtype == GD_I64 ? "int64" : f32 ? "float32" : "float64";
    switch (e->fmt) {
    case GD_TF_NESTED:
        if (t->shape.rank == 0) put_elem(b, t, f32, 0);
        else {
            int64_t k = 0;
            put_level(b, t, f32, 0, &k);
        }
        return;
    case GD_TF_FLAT:
        gd_buf_puts(b, "{\"shape\":");
        put_shape(b, &t->shape);
        if (strcmp(dtype, "float64")) gd_buf_printf(b, ",\"dtype\":\"%s\"", dtype);
        gd_buf_puts(b, ",\"data\":[");
        put_elems(b, t, f32, 0, t->n);
        gd_buf_puts(b, "]}");
        return;
    case GD_TF_B64:
        gd_buf_puts(b, "{\"shape\":");
        put_shape(b, &t->shape);
        gd_buf_printf(b, ",\"dtype\":\"%s\",\"b64\":", dtype);
        put_b64(b, t, f32);
        putch(b, '}');
        return;
    case GD_TF_BINARY: {
        uint64_t off, nbytes;
        put_binary(e, t, f32, &off, &nbytes);
        gd_buf_puts(b, "{\"shape\":");
        put_shape(b, &t->shape);
        gd_buf_printf(b, ",\"dtype\":\"%s\",\"offset\":%" PRIu64 ",\"nbytes\":%" PRIu64 "}", dtype, off, nbytes);
        return;
    }
    }
}

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
    putch(b, '{');
    put_node_op(b, g, o->node);
    gd_buf_puts(b, ",\"index\":[");
    for (int i = 0; i < o->shape.rank; i++) gd_buf_printf(b, i ? ",%" PRId64 : "%" PRId64, o->index[i]);
    gd_buf_puts(b, "]}");
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
    switch (d->code) {
    case GD_DIAG_DISCONNECTED:
        gd_buf_puts(b, ",\"consumers\":[");
        for (int i = 0; i < d->n_consumers; i++) {
            gd_buf_puts(b, i ? ",{" : "{");
            put_node_op(b, g, d->consumers[i]);
            putch(b, '}');
        }
        putch(b, ']');
        break;
    case GD_DIAG_STOP_GRADIENT:
    case GD_DIAG_NON_DIFFERENTIABLE:
    case GD_DIAG_UNTAKEN_BRANCH:
    case GD_DIAG_MIXED:
        gd_buf_puts(b, ",\"blocked_at\":[");
        for (int i = 0; i < d->n_blocked; i++) {
            const gd_block *k = &d->blocked[i];
            gd_buf_puts(b, i ? ",{" : "{");
            put_node_op(b, g, k->node);
            gd_buf_printf(b, ",\"reason\":\"%s\",\"input\":%d", gd_block_reason_name(k->reason), k->input);
            if (k->predicate >= 0) gd_buf_puts(b, ",\"predicate\":"), put_name(b, g, k->predicate);
            putch(b, '}');
        }
        putch(b, ']');
        if (d->wrt >= 0 || d->n_path > 0) {
            gd_buf_puts(b, ",\"path\":[");
            for (int i = 0; i < d->n_path; i++) {
                if (i) putch(b, ',');
                put_name(b, g, d->path[i]);
            }
            putch(b, ']');
        }
        break;
    case GD_DIAG_INTEGER_DTYPE:
        gd_buf_printf(b, ",\"dtype\":\"%s\",\"made_by\":", gd_dtype_name(d->dtype));
        put_name(b, g, d->made_by);
        break;
    case GD_DIAG_ZERO_GRADIENT:
        gd_buf_puts(b, ",\"zeroed_at\":[");
        for (int i = 0; i < d->n_zeroed; i++) {
            gd_buf_puts(b, i ? ",{" : "{");
            put_node_op(b, g, d->zeroed[i].node);
            gd_buf_puts(b, ",\"cause\":");
            gd_buf_json_string(b, gd_zero_cause_name(d->zeroed[i].cause));
            putch(b, '}');
        }
        putch(b, ']');
        break;
    case GD_DIAG_NON_FINITE_GRADIENT:
    case GD_DIAG_NON_FINITE_VALUE:
        gd_buf_puts(b, ",\"origin\":");
        put_origin(b, g, &d->origin);
        break;
    }
    gd_buf_puts(b, ",\"hint\":");
    gd_buf_json_string(b, d->hint);
    putch(b, '}');
}

static void put_diags(gd_buf *b, const gd_diag *d, int n, const gd_graph *g) {
    putch(b, '[');
    for (int i = 0; i < n; i++) {
        if (i) putch(b, ',');
        put_diag(b, &d[i], g);
    }
    putch(b, ']');
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
    gd_buf_printf(b,
                  "{\"nodes\":%" PRId64 ",\"forward_us\":%" PRId64 ",\"backward_us\":%" PRId64
                  ",\"queue_us\":%" PRId64 ",\"total_us\":%" PRId64 ",\"peak_bytes\":%" PRId64 "}",
                  st.nodes, st.forward_us, st.backward_us, st.queue_us, st.total_us, st.peak_bytes);
}

/* {name: tensor, ...} over node indices idx with their results. */
static void put_map(enc *e, const gd_graph *g, const int *idx, const char *const *names, gd_tensor *const *vals,
                    int n) {
    putch(e->out, '{');
    for (int k = 0; k < n && !e->out->failed; k++) {
        if (k) putch(e->out, ',');
        gd_buf_json_string(e->out, names ? names[k] : g->nodes[idx[k]].name);
        putch(e->out, ':');
        put_tensor(e, vals ? vals[k] : NULL, g->nodes[idx[k]].transport_f32);
    }
    putch(e->out, '}');
}

static int begin(enc *e, gd_buf *out, gd_buf *bin, const gd_request *req) {
    e->out = out, e->bin = bin, e->fmt = req->tensor_format;
    if (e->fmt == GD_TF_BINARY && !bin) return -1;
    return out->failed || (bin && bin->failed) ? -1 : 0;
}

/* Room for every tensor of vals in the binary section at once (each padded
 * to 64 bytes), so that a large response grows its buffer once instead of
 * copying it at every doubling. Only an optimisation: failure is ignored here
 * and reported by the appends. */
static void reserve_binary(enc *e, gd_tensor *const *vals, int n, size_t *total) {
    if (e->fmt != GD_TF_BINARY || !vals) return;
    for (int k = 0; k < n; k++)
        if (vals[k] && (size_t)vals[k]->n < SIZE_MAX / 16) *total += (size_t)vals[k]->n * 8 + 64;
}

static int finish(const enc *e) { return e->out->failed || (e->bin && e->bin->failed) ? -1 : 0; }

int gd_encode_grad_response(gd_buf *out, gd_buf *bin, const gd_request *req, const gd_run_result *res,
                            const gd_stats *stats) {
    enc e;
    if (begin(&e, out, bin, req)) return -1;
    const gd_graph *g = req->graph;
    const gd_run_spec *s = &req->spec;
    size_t total = 0;
    reserve_binary(&e, res->targets, s->n_targets, &total);
    reserve_binary(&e, res->grads, s->n_wrt, &total);
    if (req->fetch_given) reserve_binary(&e, res->fetched, s->n_fetch, &total);
    if (total && total < SIZE_MAX / 2) reserve(bin, total);
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
    putch(out, '}');
    return finish(&e);
}

int gd_encode_eval_response(gd_buf *out, gd_buf *bin, const gd_request *req, const gd_run_result *res,
                            const gd_stats *stats) {
    enc e;
    if (begin(&e, out, bin, req)) return -1;
    const gd_graph *g = req->graph;
    const gd_run_spec *s = &req->spec;
    gd_buf_puts(out, "{\"values\":");
    put_map(&e, g, s->fetch, req->fetch_names, res->fetched, s->n_fetch);
    gd_buf_puts(out, ",\"diagnostics\":");
    put_diags(out, res->diags, res->n_diags, g);
    gd_buf_puts(out, ",\"stats\":");
    put_stats(out, req, res, stats);
    putch(out, '}');
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

int gd_no_gradients(const gd_request *req, const gd_run_result *res, gd_error *err) {
    const gd_run_spec *s = &req->spec;
    if (!s->grad || s->unconnected_zero || s->n_wrt == 0) return 0;
    for (int k = 0; k < s->n_wrt; k++)
        if (res->grads && res->grads[k]) return 0;
    char msg[GD_ERR_MSG_MAX];
    const char *head = "No gradients provided for any variable: ";
    size_t o = (size_t)snprintf(msg, sizeof msg, "%s", head);
    for (int k = 0; k < s->n_wrt; k++) {
        const char *name = req->wrt_names ? req->wrt_names[k] : req->graph->nodes[s->wrt[k]].name;
        size_t need = strlen(name) + (k ? 2 : 0);
        if (o + need + 5 >= sizeof msg) { /* room for ", ..." */
            snprintf(msg + o, sizeof msg - o, "%s...", k ? ", " : "");
            break;
        }
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", k ? ", " : "", name);
    }
    gd_errorf(err, GD_E_NO_GRADIENTS, NULL, "%s", msg);
    return 1;
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
        if (i) putch(b, ',');
        gd_buf_json_string(b, names[i]);
    }
    gd_buf_printf(b, "],\"min\":%d,\"max\":", op->min_in);
    if (op->max_in < 0) gd_buf_puts(b, "null");
    else gd_buf_printf(b, "%d", op->max_in);
    gd_buf_puts(b, ",\"no_gradient\":[");
    int first = 1;
    for (int i = 0; i < n; i++) {
        int blocked = (op->flags & GD_OPF_LEAF) ? 0 : !op->differentiable || (op->nograd_inputs >> i & 1u);
        if (!blocked) continue;
        if (!first) putch(b, ',');
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
        if (i) putch(out, ',');
        gd_buf_puts(out, "{\"name\":");
        gd_buf_json_string(out, op->name);
        gd_buf_puts(out, ",\"inputs\":");
        put_inputs(out, op);
        gd_buf_puts(out, ",\"attributes\":{");
        for (int k = 0; k < op->n_attrs; k++) {
            const gd_attr_spec *a = &op->attrs[k];
            if (k) putch(out, ',');
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
        putch(out, '}');
    }
    gd_buf_puts(out, "]}");
    return out->failed ? -1 : 0;
}
