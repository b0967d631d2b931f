/* ops_reduce.c - the reduction op family: sum mean max min logsumexp over an
 * axis set, and the index reductions argmax/argmin.
 *
 * Values follow NumPy (an empty sum is 0, an empty mean NaN, max/min of an
 * empty axis an error, NaN propagates, argmax ties go to the first
 * occurrence); gradients follow PyTorch (max/min ties share the gradient
 * evenly, as amax/amin). The float reductions view their input through
 * gd_reduce (the mask of reduced axes and the "kept" result shape with those
 * axes as 1) and walk it with gd_for_runs, so one loop serves every axis set.
 * Reductions do not broadcast: gradients come back in the input's shape.
 * No I/O, no JSON. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/kernel.h"

/* ---------------------------------------------------------------------------
 * Geometry and inference */

/* invalid_attribute at .axis for an axis outside the input's rank. */
static int axis_range_error(const gd_node *n, int64_t axis, const gd_shape *in, gd_error *err) {
    char buf[GD_SHAPE_STR_MAX], valid[64];
    if (in->rank == 0) snprintf(valid, sizeof valid, "a scalar has no axes");
    else snprintf(valid, sizeof valid, "valid axes are %d..%d", -in->rank, in->rank - 1);
    return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                          "Node '%s' (%s): axis %lld is out of range for input '%s' of shape %s (%s).", n->name,
                          n->op->name, (long long)axis, n->in_names[0], gd_shape_str(in, buf, sizeof buf), valid);
}

/* The reduction geometry of node n on an input of shape `in` (the `axis` and
 * `keepdims` attributes). On a bad or repeated axis: invalid_attribute at
 * .axis, saying which axis and why. */
static int reduce_geom(const gd_node *n, const gd_shape *in, gd_reduce *r, gd_error *err) {
    const gd_ints *ax = &n->attrs->axis;
    int k = !ax->given ? -1 : ax->is_list ? ax->n : 1;
    int keep = n->attrs->keepdims.given && n->attrs->keepdims.v != 0;
    if (k > GD_MAX_RANK)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                              "Node '%s' (%s): `axis` lists %d axes; a tensor has at most %d.", n->name,
                              n->op->name, k, GD_MAX_RANK);
    if (gd_reduce_init(r, in, ax->v, k, keep) == 0) return 0;
    unsigned seen = 0;
    for (int i = 0; i < k; i++) {
        int a = gd_norm_axis(ax->v[i], in->rank);
        if (a < 0) return axis_range_error(n, ax->v[i], in, err);
        if ((seen >> a) & 1)
            return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                                  "Node '%s' (%s): axis %lld repeats axis %d in `axis`; list each axis once.",
                                  n->name, n->op->name, (long long)ax->v[i], a);
        seen |= 1u << a;
    }
    return gd_node_errorf(err, n, GD_E_INTERNAL, ".axis", "Node '%s' (%s): inconsistent axis list.", n->name,
                          n->op->name);
}

/* max/min have no identity: reducing over no elements is an error, as NumPy's
 * "zero-size array to reduction operation maximum which has no identity". */
static int empty_error(const gd_node *n, const gd_shape *in, gd_error *err) {
    char buf[GD_SHAPE_STR_MAX];
    return gd_node_errorf(err, n, GD_E_INVALID_VALUE, "",
                          "Node '%s' (%s): input '%s' of shape %s has no elements along the reduced axes, and the "
                          "%s of no elements is undefined.",
                          n->name, n->op->name, n->in_names[0], gd_shape_str(in, buf, sizeof buf), n->op->name);
}

/* Float64 result of the reduced shape; an unknown input shape gives an
 * unknown result shape. `nonempty` (max, min): reducing over no elements is
 * known to fail. */
static int infer_reduce_common(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out,
                               gd_error *err, int nonempty) {
    out->dtype = GD_F64;
    if (in[0].shape.rank < 0) {
        out->shape.rank = -1;
        return 0;
    }
    gd_reduce r;
    int rc = reduce_geom(n, &in[0].shape, &r, err);
    if (rc) return rc;
    if (nonempty && r.count == 0) return empty_error(n, &in[0].shape, err);
    out->shape = r.out;
    return gd_check_size(n, &out->shape, lim, err);
}

static int infer_reduce(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    return infer_reduce_common(n, in, lim, out, err, 0);
}

static int infer_reduce_nonempty(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out,
                                 gd_error *err) {
    return infer_reduce_common(n, in, lim, out, err, 1);
}

/* ---------------------------------------------------------------------------
 * Run callbacks. The input is walked with gd_for_runs over its own shape,
 * with one operand of the kept shape: `o` indexes the input (and its
 * gradient), off[0] and inner[0] the kept-shape arrays (result, cotangent,
 * scratch), inner[0] == 0 when the run lies along a reduced axis. */

typedef struct red_ctx red_ctx;
typedef void (*red_fn)(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner);

struct red_ctx {
    red_fn fn;         /* the kernel red_walk runs on each chunk */
    const double *x;   /* input */
    double *y;         /* kept-shape result (forward) */
    const double *r;   /* kept-shape result, read-only (backward) */
    double *w;         /* kept-shape scratch: sums, tie counts, scales */
    double *w2;        /* a second one (logsumexp: the terms below 1) */
    const double *g;   /* kept-shape cotangent */
    double *dx;        /* input-shape gradient */
    double scale;
    gd_kctx *k;
    int64_t since;     /* elements since the last cancel poll */
    int stopped;       /* error code once cancelled; later chunks are skipped */
};

/* gd_for_runs callback: cut each run into chunks of at most GD_POLL_ELEMS
 * elements (a full reduction is one single run), run the kernel on each, and
 * poll the cancel flag whenever GD_POLL_ELEMS elements have been processed. */
static void chunked_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    red_ctx *c = vc;
    for (int64_t i = 0; i < len && !c->stopped; i += GD_POLL_ELEMS) {
        int64_t n = len - i < GD_POLL_ELEMS ? len - i : GD_POLL_ELEMS, sub = off[0] + i * inner[0];
        c->fn(c, o + i, &sub, n, inner);
        if ((c->since += n) >= GD_POLL_ELEMS) {
            c->since = 0;
            c->stopped = gd_cancel_check(c->k->cancel, c->k->err);
        }
    }
}

/* y = max(y, x) (or min) with NaN sticky: a NaN replaces anything, and
 * nothing compares past a NaN, so it stays. Along a reduced axis the loop is
 * branch-free so that it vectorises, and a NaN seen is applied at the end. */
#define EXTREME_RUN(NAME, BEYOND)                                                                   \
    static void NAME(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) { \
        const double *x = c->x + o;                                                                 \
        double *y = c->y + off[0];                                                                  \
        if (inner[0] == 0) {                                                                        \
            double m = *y;                                                                          \
            int nan = 0;                                                                            \
            for (int64_t i = 0; i < len; i++) {                                                     \
                m = x[i] BEYOND m ? x[i] : m;                                                       \
                nan |= isnan(x[i]);                                                                 \
            }                                                                                       \
            *y = nan ? NAN : m;                                                                     \
        } else {                                                                                    \
            for (int64_t i = 0; i < len; i++)                                                       \
                if (x[i] BEYOND y[i * inner[0]] || isnan(x[i])) y[i * inner[0]] = x[i];             \
        }                                                                                           \
    }

EXTREME_RUN(max_run, >)
EXTREME_RUN(min_run, <)

/* The shifted sums of logsumexp (y holds the shift m): w counts the terms
 * exp(x - m) that are exactly 1 (x == m), w2 adds up the others, so that
 * log(w + w2) can be taken as log1p((w - 1) + w2) without rounding the small
 * terms away against the 1. */
static void expsum_run(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    const double *x = c->x + o, *y = c->y + off[0];
    double *w = c->w + off[0], *w2 = c->w2 + off[0];
    if (inner[0] == 0) {
        double n1 = 0, s = 0, m = *y;
        for (int64_t i = 0; i < len; i++) {
            double e = exp(x[i] - m);
            if (e == 1.0) n1 += 1;
            else s += e;
        }
        *w += n1;
        *w2 += s;
    } else {
        for (int64_t i = 0; i < len; i++) {
            double e = exp(x[i] - y[i * inner[0]]);
            if (e == 1.0) w[i * inner[0]] += 1;
            else w2[i * inner[0]] += e;
        }
    }
}

/* dx = g * scale, g broadcast from the kept shape (sum, mean). */
static void bcast_run(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    double *dx = c->dx + o;
    const double *g = c->g + off[0];
    if (inner[0] == 0) {
        double v = *g * c->scale;
        for (int64_t i = 0; i < len; i++) dx[i] = v;
    } else {
        for (int64_t i = 0; i < len; i++) dx[i] = g[i * inner[0]] * c->scale;
    }
}

/* x was selected by max/min with result r: equal to it, or both NaN (the NaN
 * that made the result receives its gradient, as torch.max does). */
static inline int selected(double x, double r) { return (x == r) | (isnan(x) & isnan(r)); }

/* w += [x selected]: the number of ties of each result. */
static void ties_run(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    const double *x = c->x + o, *r = c->r + off[0];
    double *w = c->w + off[0];
    if (inner[0] == 0) {
        double n = 0, rv = *r;
        for (int64_t i = 0; i < len; i++) n += selected(x[i], rv);
        *w += n;
    } else {
        for (int64_t i = 0; i < len; i++) w[i * inner[0]] += selected(x[i], r[i * inner[0]]);
    }
}

/* dx = w * [x selected], w holding g / ties: multiplied, as PyTorch's amax
 * rule, so a non-selected element gets g * 0 (NaN where g is NaN/Inf). */
static void select_run(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    const double *x = c->x + o, *r = c->r + off[0], *w = c->w + off[0];
    double *dx = c->dx + o;
    if (inner[0] == 0) {
        double rv = *r, wv = *w;
        for (int64_t i = 0; i < len; i++) dx[i] = wv * (double)selected(x[i], rv);
    } else {
        for (int64_t i = 0; i < len; i++) dx[i] = w[i * inner[0]] * (double)selected(x[i], r[i * inner[0]]);
    }
}

/* dx = g * exp(x - r), the softmax of the slice times its cotangent; where
 * the result is -inf (every element -inf: no finite change moves it) the
 * factor is 0, still multiplied by g (NaN for a NaN/Inf g, as PyTorch). */
static void lse_grad_run(red_ctx *c, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    const double *x = c->x + o, *r = c->r + off[0], *g = c->g + off[0];
    double *dx = c->dx + o;
    for (int64_t i = 0; i < len; i++) {
        double ri = r[i * inner[0]];
        dx[i] = g[i * inner[0]] * (ri == -INFINITY ? 0.0 : exp(x[i] - ri));
    }
}

/* Walk the input with `fn`, the kept shape as the one operand. Returns 0 or
 * the cancel error. */
static int red_walk(const gd_reduce *r, red_fn fn, red_ctx *ctx) {
    const gd_shape *ops[1] = {&r->kept};
    ctx->fn = fn;
    gd_for_runs(&r->in, 1, ops, chunked_run, ctx);
    return ctx->stopped;
}

/* ---------------------------------------------------------------------------
 * Forward kernels */

static int sum_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    gd_reduce r;
    int rc = reduce_geom(c->node, &in[0]->shape, &r, c->err);
    if (rc) return rc;
    return out->n ? gd_sum_to(gd_f64(out), &r.kept, gd_f64(in[0]), &r.in, c->cancel, c->err) : 0;
}

/* ---- passes over the kept shape, which may be most of the input (a
 * reduction over a small axis): pieces of GD_POLL_ELEMS, a poll between. */

typedef void (*kept_fn)(red_ctx *k, int64_t s, int64_t e);

static int kept_pass(red_ctx *k, int64_t n, kept_fn fn) {
    int rc = 0;
    for (int64_t s = 0; s < n && !rc; s += GD_POLL_ELEMS) {
        int64_t e = n - s < GD_POLL_ELEMS ? n : s + GD_POLL_ELEMS;
        fn(k, s, e);
        if (e < n) rc = gd_cancel_check(k->k->cancel, k->k->err);
    }
    return rc;
}

static void kept_divide(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) k->y[i] /= k->scale;
}
static void kept_fill(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) k->y[i] = k->scale;
}
static void kept_zero_w(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) k->w[i] = 0.0;
}
static void kept_zero_w2(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) k->w2[i] = 0.0;
}
static void lse_finite_max(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++)
        if (!isfinite(k->y[i])) k->y[i] = 0.0;
}
static void lse_finish(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) k->y[i] += k->w[i] > 0 ? log1p((k->w[i] - 1) + k->w2[i]) : log(k->w2[i]);
}
static void ties_scale(red_ctx *k, int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) k->w[i] = k->w[i] > 0 ? k->g[i] / k->w[i] : 0.0;
}

/* Sum divided by the count: NaN (0/0) for an empty reduction, as NumPy. */
static int mean_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    gd_reduce r;
    int rc = reduce_geom(c->node, &in[0]->shape, &r, c->err);
    if (rc) return rc;
    if (!out->n) return 0;
    double *y = gd_f64(out);
    if ((rc = gd_sum_to(y, &r.kept, gd_f64(in[0]), &r.in, c->cancel, c->err))) return rc;
    red_ctx k = {.y = y, .scale = (double)r.count, .k = c};
    return kept_pass(&k, out->n, kept_divide);
}

static int extreme_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out, int is_max) {
    gd_reduce r;
    int rc = reduce_geom(c->node, &in[0]->shape, &r, c->err);
    if (rc) return rc;
    if (r.count == 0) return empty_error(c->node, &r.in, c->err);
    double *y = gd_f64(out);
    red_ctx ctx = {.x = gd_f64(in[0]), .y = y, .k = c, .scale = is_max ? -INFINITY : INFINITY};
    if ((rc = kept_pass(&ctx, out->n, kept_fill))) return rc;
    return red_walk(&r, is_max ? max_run : min_run, &ctx);
}

static int max_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return extreme_forward(c, in, out, 1);
}

static int min_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return extreme_forward(c, in, out, 0);
}

/* logsumexp = m + log(sum(exp(x - m))) with m the slice's maximum; m is taken
 * as 0 when it is not finite, so that all -inf (or empty) gives -inf rather
 * than NaN, +inf gives +inf and NaN stays NaN. The sum is 1 (the maximum's
 * term) plus the others t, and log1p(t) keeps the digits that log(1 + t)
 * rounds away: logsumexp([0, -40]) is 4.2e-18, not 0 (A8: no needless
 * cancellation). Uses two kept-size scratch buffers, released before
 * returning. */
static int logsumexp_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    gd_reduce r;
    int rc = reduce_geom(c->node, &in[0]->shape, &r, c->err);
    if (rc) return rc;
    if (!out->n) return 0;
    double *y = gd_f64(out);                                   /* kept shape */
    double *w = gd_arena_buf(c->arena, (size_t)out->n * 16, 0); /* [2, kept shape] */
    if (!w) return gd_kernel_oom(c);
    red_ctx ctx = {.x = gd_f64(in[0]), .y = y, .w = w, .w2 = w + out->n, .k = c, .scale = -INFINITY};
    rc = kept_pass(&ctx, out->n, kept_zero_w);
    if (!rc) rc = kept_pass(&ctx, out->n, kept_zero_w2);
    if (!rc) rc = kept_pass(&ctx, out->n, kept_fill);
    if (!rc) rc = red_walk(&r, max_run, &ctx);
    if (!rc) rc = kept_pass(&ctx, out->n, lse_finite_max);
    if (!rc) rc = red_walk(&r, expsum_run, &ctx);
    if (!rc) rc = kept_pass(&ctx, out->n, lse_finish);
    gd_arena_release(c->arena, w);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Backward rules: din[0] in the input's shape, dout broadcast back along the
 * reduced axes (its layout equals the kept shape's with or without keepdims). */

static int bcast_backward(gd_kctx *c, const gd_tensor *x, const gd_tensor *dout, const int *want, gd_tensor **din,
                          int is_mean) {
    if (!want[0]) return 0;
    gd_reduce r;
    int rc = reduce_geom(c->node, &x->shape, &r, c->err);
    if (rc) return rc;
    gd_tensor *dx = gd_tensor_new(c->arena, &x->shape, GD_F64, 0);
    if (!dx) return gd_kernel_oom(c);
    red_ctx ctx = {.g = gd_f64(dout), .dx = gd_f64(dx), .k = c,
                   .scale = is_mean ? 1.0 / (double)r.count : 1.0};
    din[0] = dx;
    return red_walk(&r, bcast_run, &ctx);
}

static int sum_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                        const int *want, gd_tensor **din) {
    (void)out;
    return bcast_backward(c, in[0], dout, want, din, 0);
}

/* dx = dout / count. */
static int mean_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                         const int *want, gd_tensor **din) {
    (void)out;
    return bcast_backward(c, in[0], dout, want, din, 1);
}

/* dx = dout / ties on every element equal to its slice's result (PyTorch's
 * amax/amin rule; a NaN result selects the NaN elements), dout * 0
 * elsewhere. Uses a kept-size scratch buffer. */
static int extreme_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                            const int *want, gd_tensor **din) {
    if (!want[0]) return 0;
    gd_reduce r;
    int rc = reduce_geom(c->node, &in[0]->shape, &r, c->err);
    if (rc) return rc;
    gd_tensor *dx = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0);
    if (!dx) return gd_kernel_oom(c);
    din[0] = dx;
    if (!out->n) return 0;
    double *w = gd_arena_buf(c->arena, (size_t)out->n * 8, 0); /* kept shape */
    if (!w) return gd_kernel_oom(c);
    red_ctx ctx = {.x = gd_f64(in[0]), .r = gd_f64(out), .w = w, .dx = gd_f64(dx), .g = gd_f64(dout), .k = c};
    rc = kept_pass(&ctx, out->n, kept_zero_w);
    if (!rc) rc = red_walk(&r, ties_run, &ctx);
    if (!rc) rc = kept_pass(&ctx, out->n, ties_scale);
    if (!rc) rc = red_walk(&r, select_run, &ctx);
    gd_arena_release(c->arena, w);
    return rc;
}

/* Fused: dx = dout * exp(x - logsumexp(x)). */
static int logsumexp_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                              const int *want, gd_tensor **din) {
    if (!want[0]) return 0;
    gd_reduce r;
    int rc = reduce_geom(c->node, &in[0]->shape, &r, c->err);
    if (rc) return rc;
    gd_tensor *dx = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0);
    if (!dx) return gd_kernel_oom(c);
    red_ctx ctx = {.x = gd_f64(in[0]), .r = gd_f64(out), .g = gd_f64(dout), .dx = gd_f64(dx), .k = c};
    din[0] = dx;
    return red_walk(&r, lse_grad_run, &ctx);
}

/* ---------------------------------------------------------------------------
 * argmax / argmin: one integer axis or the flattened tensor; int64 indices. */

/* The reduced axis of an argmax/argmin node, -1 for "flattened". Rejects a
 * list and an axis out of range (invalid_attribute at .axis). */
static int arg_axis(const gd_node *n, const gd_shape *in, int *axis, gd_error *err) {
    const gd_ints *ax = &n->attrs->axis;
    *axis = -1;
    if (!ax->given) return 0;
    if (ax->is_list)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                              "Node '%s' (%s): `axis` must be a single integer, not a list; leave it out to search "
                              "the flattened tensor.",
                              n->name, n->op->name);
    if (in->rank < 0) return 0;
    if ((*axis = gd_norm_axis(ax->v[0], in->rank)) < 0) return axis_range_error(n, ax->v[0], in, err);
    return 0;
}

/* Length of the searched axis (the element count when flattened), -1 unknown. */
static int64_t arg_len(const gd_shape *in, int axis) {
    int64_t len = -1;
    if (in->rank < 0) return -1;
    if (axis >= 0) return in->dim[axis];
    return gd_shape_numel(in, &len) ? -1 : len;
}

static int arg_empty_error(const gd_node *n, const gd_shape *in, gd_error *err) {
    char buf[GD_SHAPE_STR_MAX];
    return gd_node_errorf(err, n, GD_E_INVALID_VALUE, "",
                          "Node '%s' (%s): input '%s' of shape %s is empty along the searched axis, so it has no %s.",
                          n->name, n->op->name, n->in_names[0], gd_shape_str(in, buf, sizeof buf), n->op->name);
}

static int infer_arg(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    int axis, rc;
    out->dtype = GD_I64;
    if ((rc = arg_axis(n, &in[0].shape, &axis, err))) return rc;
    if (axis < 0 && n->attrs->axis.given) { /* an axis on an unknown shape */
        out->shape.rank = -1;
        return 0;
    }
    if (arg_len(&in[0].shape, axis) == 0) return arg_empty_error(n, &in[0].shape, err);
    if (axis < 0) {
        out->shape = gd_shape_scalar();
        return 0;
    }
    out->shape.rank = 0;
    for (int i = 0; i < in[0].shape.rank; i++)
        if (i != axis) out->shape.dim[out->shape.rank++] = in[0].shape.dim[i];
    return gd_check_size(n, &out->shape, lim, err);
}

/* Index search over x viewed as [outer, len, inner], the searched axis in the
 * middle: rows of `inner` are scanned contiguously, with the best values so
 * far in best[inner]. Strict comparison keeps the first of tied extremes; a
 * NaN wins at its first occurrence and then sticks (NumPy). One version per
 * element type so that int64 values beyond 2^53 compare exactly. */
#define ARG_KERNEL(NAME, T, ISNAN)                                                                            \
    static int NAME(gd_kctx *c, int64_t *out, const T *x, T *best, int64_t outer, int64_t len, int64_t inner, \
                    int is_max) {                                                                             \
        int64_t since = 0;                                                                                    \
        for (int64_t o = 0; o < outer; o++) {                                                                 \
            const T *p = x + o * len * inner;                                                                 \
            int64_t *idx = out + o * inner;                                                                   \
            for (int64_t i = 0; i < inner; i++) best[i] = p[i], idx[i] = 0;                                   \
            for (int64_t j = 1; j < len; j++) {                                                               \
                const T *row = p + j * inner;                                                                 \
                for (int64_t i = 0; i < inner; i++) {                                                         \
                    T v = row[i];                                                                             \
                    if (ISNAN(best[i])) continue;                                                             \
                    if (ISNAN(v) || (is_max ? v > best[i] : v < best[i])) best[i] = v, idx[i] = j;            \
                }                                                                                             \
                if ((since += inner) >= GD_POLL_ELEMS) {                                                          \
                    since = 0;                                                                                \
                    int rc = gd_cancel_check(c->cancel, c->err);                                              \
                    if (rc) return rc;                                                                        \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        return 0;                                                                                             \
    }

#define NEVER_NAN(v) 0
ARG_KERNEL(arg_f64, double, isnan)
ARG_KERNEL(arg_i64, int64_t, NEVER_NAN)

static int arg_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out, int is_max) {
    const gd_tensor *x = in[0];
    int axis, rc;
    if ((rc = arg_axis(c->node, &x->shape, &axis, c->err))) return rc;
    int64_t outer = 1, len = arg_len(&x->shape, axis), inner = 1;
    if (len <= 0) return arg_empty_error(c->node, &x->shape, c->err);
    if (axis >= 0) {
        for (int i = 0; i < axis; i++) outer *= x->shape.dim[i];
        for (int i = axis + 1; i < x->shape.rank; i++) inner *= x->shape.dim[i];
    }
    if (!out->n) return 0;
    void *best = gd_arena_buf(c->arena, (size_t)inner * 8, 0); /* [inner] */
    if (!best) return gd_kernel_oom(c);
    rc = x->dtype == GD_I64 ? arg_i64(c, gd_i64(out), gd_i64(x), best, outer, len, inner, is_max)
                            : arg_f64(c, gd_i64(out), gd_f64(x), best, outer, len, inner, is_max);
    gd_arena_release(c->arena, best);
    return rc;
}

static int argmax_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return arg_forward(c, in, out, 1);
}

static int argmin_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return arg_forward(c, in, out, 0);
}

/* ---------------------------------------------------------------------------
 * The table */

static const gd_attr_spec reduce_attrs[] = {
    GD_ATTR("axis", GD_ATTR_AXIS, axis, "null"),
    GD_ATTR("keepdims", GD_ATTR_BOOL, keepdims, "false"),
};

static const gd_attr_spec arg_attrs[] = {
    GD_ATTR("axis", GD_ATTR_AXIS, axis, "null"),
};

#define REDUCE_ROW(NAME, INFER, FWD, BWD, SCR, ZC, DOC)                                                        \
    {.name = NAME, .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = reduce_attrs,                        \
     .n_attrs = GD_NELEMS(reduce_attrs), .differentiable = 1, .zero_cause = ZC, .doc = DOC, .infer = INFER,       \
     .forward = FWD, .backward = BWD, .scratch = SCR}

/* A buffer of the kept shape: logsumexp's forward, max/min's backward. */
static size_t kept_scratch(const gd_meta *out) {
    int64_t k;
    return !gd_shape_numel(&out->shape, &k) && k > 0 ? gd_arena_buf_cost((size_t)k * 8) : 0;
}
static size_t lse_scratch(const gd_node *n, const gd_meta *in, const gd_meta *out, int backward) {
    (void)n, (void)in;
    return backward ? 0 : kept_scratch(out);
}
static size_t extreme_scratch(const gd_node *n, const gd_meta *in, const gd_meta *out, int backward) {
    (void)n, (void)in;
    return backward ? kept_scratch(out) : 0;
}
/* argmax/argmin's [inner]: inner is at most the output's size (1 without an axis). */
static size_t arg_scratch(const gd_node *n, const gd_meta *in, const gd_meta *out, int backward) {
    (void)n, (void)in, (void)backward;
    int64_t k;
    if (gd_shape_numel(&out->shape, &k) || k < 1) k = 1;
    return gd_arena_buf_cost((size_t)k * 8);
}

#define ARG_HINT                                                                                         \
    "Replace '{node}' ({op}) with a soft selection such as softmax over the same axis, or use a straight-through " \
    "estimator: soft + stop_gradient(hard - soft)."
#define ARG_ROW(NAME, FWD, DOC)                                                                                \
    {.name = NAME, .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = arg_attrs, .n_attrs = GD_NELEMS(arg_attrs), \
     .differentiable = 0, .flags = GD_OPF_INT_OK | GD_OPF_MAKES_INT, .zero_cause = GD_ZERO_VALUE, .doc = DOC,   \
     .infer = infer_arg, .forward = FWD, .backward = NULL, .scratch = arg_scratch,                              \
     .hints = {.no_gradient = ARG_HINT}}

const gd_op_def gd_ops_reduce[] = {
    REDUCE_ROW("sum", infer_reduce, sum_forward, sum_backward, NULL, GD_ZERO_VALUE,
               "Sum over `axis` (an integer or a list; default: all axes; [] reduces nothing), keeping the reduced "
               "axes as size 1 when `keepdims`; the sum of no elements is 0."),
    REDUCE_ROW("mean", infer_reduce, mean_forward, mean_backward, NULL, GD_ZERO_VALUE,
               "Mean over `axis` (an integer or a list; default: all axes), keeping the reduced axes as size 1 when "
               "`keepdims`; the mean of no elements is NaN, as in NumPy; the gradient is dout / count."),
    REDUCE_ROW("max", infer_reduce_nonempty, max_forward, extreme_backward, extreme_scratch, GD_ZERO_MASK,
               "Maximum over `axis` (an integer or a list; default: all axes), with `keepdims`; NaN propagates and an "
               "empty axis is an invalid_value error (NumPy); tied maxima share the gradient evenly (PyTorch amax), "
               "a NaN result passes it to the NaN elements, split evenly, and the other elements get dout * 0."),
    REDUCE_ROW("min", infer_reduce_nonempty, min_forward, extreme_backward, extreme_scratch, GD_ZERO_MASK,
               "Minimum over `axis` (an integer or a list; default: all axes), with `keepdims`; NaN propagates and an "
               "empty axis is an invalid_value error (NumPy); tied minima share the gradient evenly (PyTorch amin), "
               "a NaN result passes it to the NaN elements, split evenly, and the other elements get dout * 0."),
    REDUCE_ROW("logsumexp", infer_reduce, logsumexp_forward, logsumexp_backward, lse_scratch, GD_ZERO_VALUE,
               "log(sum(exp(x))) over `axis` (an integer or a list; default: all axes), with `keepdims`, computed "
               "stably by subtracting the maximum; all -inf or empty gives -inf (with gradient dout * 0); the "
               "gradient is dout * softmax(x)."),
    ARG_ROW("argmax", argmax_forward,
            "Index (int64) of the largest element along the single integer `axis`, or of the flattened tensor when "
            "`axis` is left out (a scalar); ties give the first occurrence and the first NaN wins (NumPy); an empty "
            "axis is an invalid_value error; not differentiable."),
    ARG_ROW("argmin", argmin_forward,
            "Index (int64) of the smallest element along the single integer `axis`, or of the flattened tensor when "
            "`axis` is left out (a scalar); ties give the first occurrence and the first NaN wins (NumPy); an empty "
            "axis is an invalid_value error; not differentiable."),
    {0},
};
