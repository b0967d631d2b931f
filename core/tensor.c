/* tensor.c - shape arithmetic, tensor allocation and the shared strided loop. */
#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *gd_dtype_name(gd_dtype t) { return t == GD_I64 ? "int64" : "float64"; }

gd_shape gd_shape_make(int rank, const int64_t *dims) {
    gd_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
    return s;
}

gd_shape gd_shape_scalar(void) { return (gd_shape){.rank = 0}; }

int gd_shape_eq(const gd_shape *a, const gd_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

int gd_shape_numel(const gd_shape *s, int64_t *n) {
    if (s->rank < 0 || s->rank > GD_MAX_RANK) return -1;
    int64_t k = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dim[i] < 0) return -1;
        if (s->dim[i] == 0) { k = 0; continue; }
        if (k > INT64_MAX / s->dim[i]) return -1;
        k *= s->dim[i];
    }
    /* Sizes in bytes must fit too: 8 bytes an element. */
    if (k > INT64_MAX / 8) return -1;
    *n = k;
    return 0;
}

char *gd_shape_str(const gd_shape *s, char *buf, int size) {
    if (s->rank < 0) { snprintf(buf, (size_t)size, "[?]"); return buf; }
    int o = snprintf(buf, (size_t)size, "[");
    for (int i = 0; i < s->rank && o < size; i++)
        o += snprintf(buf + o, (size_t)(size - o), i ? ", %lld" : "%lld", (long long)s->dim[i]);
    if (o < size) snprintf(buf + o, (size_t)(size - o), "]");
    return buf;
}

int gd_broadcast_shapes(const gd_shape *a, const gd_shape *b, gd_shape *out) {
    int r = a->rank > b->rank ? a->rank : b->rank;
    gd_shape o = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da == db || db == 1) o.dim[i] = da;
        else if (da == 1) o.dim[i] = db;
        else return -1;
    }
    *out = o;
    return 0;
}

int gd_norm_axis(int64_t axis, int rank) {
    if (axis < -rank || axis >= rank) return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

gd_tensor *gd_tensor_header(gd_arena *a, const gd_shape *shape, gd_dtype dtype) {
    int64_t n = 1;
    if (shape->rank != 0 && gd_shape_numel(shape, &n)) return NULL; /* a scalar's is 1 */
    /* Written whole at once rather than zeroed first: one per value,
     * cotangent and contribution. The unused dims are copied as they are
     * (gd_shape_eq and the printers read rank dims only). */
    gd_tensor *t = gd_arena_alloc_raw(a, sizeof *t);
    if (!t) return NULL;
    *t = (gd_tensor){.dtype = dtype, .shape = *shape, .n = n};
    return t;
}

gd_tensor *gd_tensor_new(gd_arena *a, const gd_shape *shape, gd_dtype dtype, int zero) {
    gd_tensor *t = gd_tensor_header(a, shape, dtype);
    if (!t) return NULL;
    if (t->n == 1) { /* a scalar's (or [1]'s) element in the header: a 10k-node scalar graph makes 27k of them */
        t->data = &t->word;
        if (zero) t->word = 0;
        return t;
    }
    if (t->n > 0 && !(t->data = gd_arena_buf(a, (size_t)t->n * 8, zero))) return NULL;
    return t;
}

gd_tensor *gd_tensor_scalar(gd_arena *a, double v) {
    gd_shape s = gd_shape_scalar();
    gd_tensor *t = gd_tensor_new(a, &s, GD_F64, 0);
    if (t) gd_f64(t)[0] = v;
    return t;
}

gd_tensor *gd_tensor_copy(gd_arena *a, const gd_tensor *src) {
    gd_tensor *t = gd_tensor_new(a, &src->shape, src->dtype, 0);
    if (t && t->n) memcpy(t->data, src->data, (size_t)t->n * 8);
    return t;
}

gd_tensor *gd_tensor_to_f64(gd_arena *a, const gd_tensor *src) {
    gd_tensor *t;
    return gd_tensor_to_f64_polled(a, src, &t, NULL, NULL) ? NULL : t;
}

/* The end of the piece of a polled pass that starts at s (of n). */
static int64_t piece_end(int64_t s, int64_t n) { return n - s < GD_POLL_ELEMS ? n : s + GD_POLL_ELEMS; }

/* Between two pieces of a polled pass (none after the last). */
static int poll_after(int64_t e, int64_t n, const gd_cancel *cancel, gd_error *err) {
    return e < n ? gd_cancel_check(cancel, err) : 0;
}

int gd_fill_zero(void *dst, int64_t n, const gd_cancel *cancel, gd_error *err) {
    int rc = 0;
    for (int64_t s = 0, e; s < n && !rc; s = e) {
        e = piece_end(s, n);
        memset((int64_t *)dst + s, 0, (size_t)(e - s) * 8);
        rc = poll_after(e, n, cancel, err);
    }
    return rc;
}

int gd_copy_words(void *dst, const void *src, int64_t n, const gd_cancel *cancel, gd_error *err) {
    int rc = 0;
    for (int64_t s = 0, e; s < n && !rc; s = e) {
        e = piece_end(s, n);
        memcpy((int64_t *)dst + s, (const int64_t *)src + s, (size_t)(e - s) * 8);
        rc = poll_after(e, n, cancel, err);
    }
    return rc;
}

int gd_i64_to_f64(double *dst, const int64_t *src, int64_t n, const gd_cancel *cancel, gd_error *err) {
    int rc = 0;
    for (int64_t s = 0, e; s < n && !rc; s = e) {
        e = piece_end(s, n);
        for (int64_t i = s; i < e; i++) dst[i] = (double)src[i];
        rc = poll_after(e, n, cancel, err);
    }
    return rc;
}

int gd_tensor_copy_polled(gd_arena *a, const gd_tensor *src, gd_tensor **out, const gd_cancel *cancel,
                          gd_error *err) {
    gd_tensor *t = gd_tensor_new(a, &src->shape, src->dtype, 0);
    if (!t) return -1;
    int rc = gd_copy_words(t->data, src->data, t->n, cancel, err);
    if (rc) gd_tensor_release(a, t);
    *out = rc ? NULL : t;
    return rc;
}

int gd_tensor_to_f64_polled(gd_arena *a, const gd_tensor *src, gd_tensor **out, const gd_cancel *cancel,
                            gd_error *err) {
    if (src->dtype == GD_F64) { *out = (gd_tensor *)src; return 0; }
    gd_tensor *t = gd_tensor_new(a, &src->shape, GD_F64, 0);
    if (!t) return -1;
    int rc = gd_i64_to_f64(gd_f64(t), gd_i64(src), t->n, cancel, err);
    if (rc) gd_tensor_release(a, t);
    *out = rc ? NULL : t;
    return rc;
}

int gd_tensor_zeros_polled(gd_arena *a, const gd_shape *shape, gd_dtype dtype, gd_tensor **out,
                           const gd_cancel *cancel, gd_error *err) {
    gd_tensor *t = gd_tensor_new(a, shape, dtype, 0);
    if (!t) return -1;
    int rc = gd_fill_zero(t->data, t->n, cancel, err);
    if (rc) gd_tensor_release(a, t);
    *out = rc ? NULL : t;
    return rc;
}

void gd_tensor_release(gd_arena *a, gd_tensor *t) {
    if (!t) return;
    if (!t->borrowed && !gd_tensor_owns_word(t)) gd_arena_release(a, t->data);
    t->data = NULL;
}

void gd_bcast_strides(const gd_shape *s, const gd_shape *out, int64_t *strides) {
    int64_t st = 1;
    for (int i = out->rank - 1; i >= 0; i--) {
        int is = s->rank - out->rank + i;
        if (is < 0 || s->dim[is] == 1) strides[i] = 0;
        else strides[i] = st;
        if (is >= 0) st *= s->dim[is];
    }
}

/* Collapse the loop nest: drop axes of size 1 and merge neighbours that every
 * operand walks contiguously, so that a broadcast bias add is one long inner
 * run per row rather than one call per element. */
void gd_for_runs(const gd_shape *out, int nops, const gd_shape *const *ops, gd_run_fn fn, void *ctx) {
    if (out->rank == 0) { /* scalars (so every operand): the one element, as the collapse below ends up */
        int64_t off[4] = {0}, inner[4] = {0};
        fn(ctx, 0, off, 1, inner);
        return;
    }
    int64_t n;
    if (gd_shape_numel(out, &n) || n == 0) return;
    int64_t st[4][GD_MAX_RANK], ost[GD_MAX_RANK];
    for (int k = 0; k < nops; k++) gd_bcast_strides(ops[k], out, st[k]);
    gd_shape full = {.rank = out->rank};
    for (int i = 0; i < out->rank; i++) full.dim[i] = out->dim[i];
    gd_bcast_strides(&full, out, ost);
    /* Squeeze size-1 axes. */
    int64_t dim[GD_MAX_RANK], s[5][GD_MAX_RANK];
    int r = 0;
    for (int i = 0; i < out->rank; i++) {
        if (out->dim[i] == 1) continue;
        dim[r] = out->dim[i];
        s[0][r] = ost[i];
        for (int k = 0; k < nops; k++) s[k + 1][r] = st[k][i];
        r++;
    }
    /* Merge axis j into j+1 when every operand is contiguous across them. */
    int m = 0;
    for (int i = 0; i < r; i++) {
        if (m > 0) {
            int ok = 1;
            for (int k = 0; k <= nops && ok; k++) ok = s[k][m - 1] == s[k][i] * dim[i];
            if (ok) {
                dim[m - 1] *= dim[i];
                for (int k = 0; k <= nops; k++) s[k][m - 1] = s[k][i];
                continue;
            }
        }
        dim[m] = dim[i];
        for (int k = 0; k <= nops; k++) s[k][m] = s[k][i];
        m++;
    }
    int64_t inner[4], off[4], idx[GD_MAX_RANK] = {0};
    if (m == 0) {
        for (int k = 0; k < nops; k++) off[k] = 0, inner[k] = 0;
        fn(ctx, 0, off, 1, inner);
        return;
    }
    int64_t len = dim[m - 1];
    for (int k = 0; k < nops; k++) inner[k] = s[k + 1][m - 1], off[k] = 0;
    int64_t o = 0;
    for (;;) {
        fn(ctx, o, off, len, inner);
        int ax = m - 2;
        while (ax >= 0) {
            idx[ax]++;
            o += s[0][ax];
            for (int k = 0; k < nops; k++) off[k] += s[k + 1][ax];
            if (idx[ax] < dim[ax]) break;
            o -= s[0][ax] * dim[ax];
            for (int k = 0; k < nops; k++) off[k] -= s[k + 1][ax] * dim[ax];
            idx[ax] = 0;
            ax--;
        }
        if (ax < 0) return;
    }
}

/* gd_for_runs_polled's adapter: the caller's fn on pieces of each run. */
typedef struct polled_ctx {
    gd_run_fn fn;
    void *ctx;
    int nops;
    const gd_cancel *cancel;
    gd_error *err;
    int64_t since; /* elements since the last poll */
    int stopped;
} polled_ctx;

static void polled_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    polled_ctx *p = vc;
    int64_t sub[4];
    for (int64_t i = 0; i < len && !p->stopped; i += GD_POLL_ELEMS) {
        int64_t n = len - i < GD_POLL_ELEMS ? len - i : GD_POLL_ELEMS;
        for (int k = 0; k < p->nops; k++) sub[k] = off[k] + i * inner[k];
        p->fn(p->ctx, o + i, sub, n, inner);
        if ((p->since += n) >= GD_POLL_ELEMS) {
            p->since = 0;
            p->stopped = gd_cancel_check(p->cancel, p->err);
        }
    }
}

int gd_for_runs_polled(const gd_shape *out, int nops, const gd_shape *const *ops, gd_run_fn fn, void *ctx,
                       const gd_cancel *cancel, gd_error *err) {
    polled_ctx p = {.fn = fn, .ctx = ctx, .nops = nops, .cancel = cancel, .err = err};
    gd_for_runs(out, nops, ops, polled_run, &p);
    return p.stopped;
}

typedef struct {
    double *dst;
    const double *src;
    const gd_cancel *cancel;
    gd_error *err;
    int64_t since;
    int stopped;
} sum_ctx;

static void sum_tick(sum_ctx *c, int64_t n) {
    if ((c->since += n) < GD_POLL_ELEMS) return;
    c->since = 0;
    c->stopped = gd_cancel_check(c->cancel, c->err);
}

/* One run, in pieces between polls; along a reduced axis the pieces share
 * one accumulator, so the sum is the same as in one piece. */
static void sum_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    sum_ctx *c = vc;
    const double *s = c->src + o;
    double *d = c->dst + off[0];
    if (inner[0] == 0) {
        double acc = -0.0;
        for (int64_t i = 0; i < len && !c->stopped; i += GD_POLL_ELEMS) {
            int64_t end = len - i < GD_POLL_ELEMS ? len : i + GD_POLL_ELEMS;
            for (int64_t k = i; k < end; k++) acc += s[k];
            sum_tick(c, end - i);
        }
        *d += acc;
    } else {
        for (int64_t i = 0; i < len && !c->stopped; i += GD_POLL_ELEMS) {
            int64_t end = len - i < GD_POLL_ELEMS ? len : i + GD_POLL_ELEMS;
            for (int64_t k = i; k < end; k++) d[k * inner[0]] += s[k];
            sum_tick(c, end - i);
        }
    }
}

int gd_sum_to(double *dst, const gd_shape *to, const double *src, const gd_shape *from, const gd_cancel *cancel,
              gd_error *err) {
    int64_t n = 0, m = 0;
    gd_shape_numel(to, &n);
    gd_shape_numel(from, &m);
    /* -0.0 is the exact additive identity (-0.0 + x is x, and a sum of
     * negative zeros stays -0.0, as NumPy's); an empty sum is +0.0. */
    if (m == 0) return gd_fill_zero(dst, n, cancel, err);
    for (int64_t s = 0, e; s < n; s = e) {
        e = piece_end(s, n);
        for (int64_t k = s; k < e; k++) dst[k] = -0.0;
        if (poll_after(e, n, cancel, err)) return GD_E_DEADLINE_EXCEEDED;
    }
    sum_ctx c = {.dst = dst, .src = src, .cancel = cancel, .err = err};
    const gd_shape *ops[1] = {to};
    gd_for_runs(from, 1, ops, sum_run, &c);
    return c.stopped;
}

int gd_reduce_init(gd_reduce *r, const gd_shape *in, const int64_t *axes, int n_axes, int keepdims) {
    memset(r, 0, sizeof *r);
    r->in = *in;
    if (n_axes < 0) {
        for (int i = 0; i < in->rank; i++) r->mask |= 1u << i;
    } else {
        for (int k = 0; k < n_axes; k++) {
            int ax = gd_norm_axis(axes[k], in->rank);
            if (ax < 0 || (r->mask & (1u << ax))) return -1;
            r->mask |= 1u << ax;
        }
    }
    r->kept.rank = in->rank;
    r->count = 1;
    for (int i = 0; i < in->rank; i++) {
        int red = (r->mask >> i) & 1;
        r->kept.dim[i] = red ? 1 : in->dim[i];
        if (red) r->count *= in->dim[i];
        if (!red || keepdims) r->out.dim[r->out.rank++] = red ? 1 : in->dim[i];
    }
    return 0;
}

/* Both scans below work on the bits in fixed blocks whose length the
 * compiler knows, with integer operations only and no early exit inside a
 * block, so that they vectorise even at -O2's cheapest cost model (a
 * floating-point compare does not); only a block that fails is searched
 * element by element. With check_numerics on, the engine scans every value
 * and every gradient: a branch per element made that a tenth of the time of
 * a chain of small ops (issue 10). The blocks run inside the pieces of a
 * polled pass (GD_POLL_ELEMS, a multiple of SCAN_BLOCK): the cancel record
 * is checked between pieces, never inside a block. */
#define SCAN_BLOCK 256
_Static_assert(GD_POLL_ELEMS % SCAN_BLOCK == 0, "poll pieces are whole scan blocks");

/* Nonzero when some element of d[0, n) is Inf or NaN. */
static uint64_t any_nonfinite(const double *d, int64_t n) {
    uint64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= gd_nonfinite_bit(d[i]);
    return bad;
}

/* Index of the first Inf or NaN in d[s, e), or -1. */
static int64_t first_nonfinite(const double *d, int64_t s, int64_t e) {
    int64_t i = s;
    for (; i + SCAN_BLOCK <= e; i += SCAN_BLOCK)
        if (any_nonfinite(d + i, SCAN_BLOCK)) break;
    if (!any_nonfinite(d + i, e - i)) return -1;
    for (; i < e; i++)
        if (!isfinite(d[i])) return i;
    return -1;
}

int gd_all_finite_polled(const gd_tensor *t, int64_t *first, const gd_cancel *cancel, gd_error *err) {
    if (t->dtype != GD_F64) return 1;
    const double *d = gd_f64(t);
    for (int64_t s = 0, e; s < t->n; s = e) {
        e = piece_end(s, t->n);
        int64_t i = first_nonfinite(d, s, e);
        if (i >= 0) {
            if (first) *first = i;
            return 0;
        }
        if (poll_after(e, t->n, cancel, err)) return -1;
    }
    return 1;
}

/* Nonzero when some element of d[0, n) is not zero: the bits for int64; for
 * float64 the bits without the sign, so that -0.0 counts as zero. */
static uint64_t any_nonzero(const void *d, int64_t n, int shift) {
    uint64_t nz = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, (const char *)d + 8 * i, sizeof u);
        nz |= u << shift;
    }
    return nz;
}

/* Nonzero when some 8-byte element of d[s, e) is not zero. */
static int piece_nonzero(const char *d, int64_t s, int64_t e, int shift) {
    int64_t i = s;
    for (; i + SCAN_BLOCK <= e; i += SCAN_BLOCK)
        if (any_nonzero(d + 8 * i, SCAN_BLOCK, shift)) return 1;
    return any_nonzero(d + 8 * i, e - i, shift) != 0;
}

int gd_all_zero_polled(const gd_tensor *t, const gd_cancel *cancel, gd_error *err) {
    const char *d = t->data; /* [n] 8-byte elements */
    int shift = t->dtype == GD_I64 ? 0 : 1;
    for (int64_t s = 0, e; s < t->n; s = e) {
        e = piece_end(s, t->n);
        if (piece_nonzero(d, s, e, shift)) return 0;
        if (poll_after(e, t->n, cancel, err)) return -1;
    }
    return 1;
}

int gd_all_finite(const gd_tensor *t, int64_t *first) { return gd_all_finite_polled(t, first, NULL, NULL); }

int gd_all_zero(const gd_tensor *t) { return gd_all_zero_polled(t, NULL, NULL); }

void gd_unravel(const gd_shape *s, int64_t flat, int64_t *idx) {
    for (int i = s->rank - 1; i >= 0; i--) {
        int64_t d = s->dim[i] > 0 ? s->dim[i] : 1;
        idx[i] = flat % d;
        flat /= d;
    }
}
