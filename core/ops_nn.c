/* ops_nn.c - the neural-network op family: softmax, log_softmax,
 * softmax_cross_entropy, sigmoid_cross_entropy and one_hot.
 *
 * The numerically delicate ones subtract the maximum before exponentiating
 * and have fused backward rules (as ggml's _back ops and llm.c's
 * crossentropy_softmax_backward), so no intermediate softmax is kept between
 * the sweeps: the backward recomputes what it needs from the forward output
 * or the logits. Softmax over any axis views x as [outer, n, inner] around
 * it and scans rows of `inner` contiguously. No broadcasting (but
 * sigmoid_cross_entropy's labels, through gd_for_runs), no I/O. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/kernel.h"

/* ---------------------------------------------------------------------------
 * softmax, log_softmax */

/* x viewed as [outer, n, inner] around the softmax axis. */
typedef struct axis_view {
    int64_t outer, n, inner;
} axis_view;

/* The softmax axis of node n on an input of shape `in` (attribute `axis`, a
 * single integer, default -1). A scalar takes axis 0 or -1 as a length-1 axis
 * (as PyTorch). Returns 0 with *axis set (-1 when the rank is unknown), or
 * invalid_attribute at .axis. */
static int softmax_axis(const gd_node *n, const gd_shape *in, int *axis, gd_error *err) {
    const gd_ints *ax = &n->attrs->axis;
    int64_t v = ax->given ? ax->v[0] : -1;
    char buf[GD_SHAPE_STR_MAX];
    *axis = -1;
    if (ax->given && ax->is_list)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                              "Node '%s' (%s): `axis` must be a single integer, not a list.", n->name, n->op->name);
    if (in->rank < 0) return 0;
    int rank = in->rank > 0 ? in->rank : 1; /* a scalar as one slice of length 1 */
    if ((*axis = gd_norm_axis(v, rank)) < 0)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                              "Node '%s' (%s): axis %lld is out of range for input '%s' of shape %s "
                              "(valid axes are %d..%d).",
                              n->name, n->op->name, (long long)v, n->in_names[0], gd_shape_str(in, buf, sizeof buf),
                              -rank, rank - 1);
    return 0;
}

static axis_view view_around(const gd_shape *s, int axis) {
    axis_view v = {1, 1, 1};
    for (int i = 0; i < s->rank; i++) {
        if (i < axis) v.outer *= s->dim[i];
        else if (i == axis) v.n = s->dim[i];
        else v.inner *= s->dim[i];
    }
    return v;
}

static int infer_softmax(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    int axis, rc = softmax_axis(n, &in[0].shape, &axis, err);
    if (rc) return rc;
    out->dtype = GD_F64;
    out->shape = in[0].shape;
    return gd_check_size(n, &out->shape, lim, err);
}

/* Maximum m of a row of n values and s = sum(exp(x - m)), returned; e (when
 * not NULL) receives exp(x - m). Then softmax = e / s and log_softmax =
 * (x - m) - log(s). NaN is skipped by the maximum and poisons the sum. */
static double row_expsum(const double *x, int64_t n, double *e, double *m) {
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < n; j++)
        if (x[j] > mx) mx = x[j];
    if (e)
        for (int64_t j = 0; j < n; j++) s += (e[j] = exp(x[j] - mx));
    else
        for (int64_t j = 0; j < n; j++) s += exp(x[j] - mx);
    *m = mx;
    return s;
}

/* The first position of a row's maximum (its term exp(x - m) is exactly 1),
 * or -1 when the maximum is not finite (a row of -inf or NaN only, or +inf). */
static int64_t row_argmax(const double *x, int64_t n, int64_t stride, double m) {
    if (!isfinite(m)) return -1;
    for (int64_t j = 0; j < n; j++)
        if (x[j * stride] == m) return j;
    return -1;
}

/* log(s) for s = sum(exp(x - m)) whose term at jm is exactly 1: log1p of the
 * other terms' sum t, so that a slice dominated by its maximum (s = 1 + 1e-9)
 * keeps every digit of its small log_softmax and cross-entropy values, which
 * log(1 + t) rounds away (A8: no needless cancellation). Without such a term
 * (jm < 0) log(s), NaN or infinite as before. */
static double log_expsum(const double *e, int64_t n, int64_t stride, int64_t jm, double s) {
    if (jm < 0) return log(s);
    double t = 0;
    for (int64_t j = 0; j < n; j++)
        if (j != jm) t += e[j * stride];
    return log1p(t);
}

/* The same from the logits x (the terms recomputed): for callers that keep no
 * exp(x - m) row. */
static double log_expsum_x(const double *x, int64_t n, double m, double s) {
    int64_t jm = row_argmax(x, n, 1, m);
    if (jm < 0) return log(s);
    double t = 0;
    for (int64_t j = 0; j < n; j++)
        if (j != jm) t += exp(x[j] - m);
    return log1p(t);
}

/* softmax (log_softmax when is_log) of one block x [n, inner] along n into
 * y [n, inner]. With inner > 1, tmp is scratch of 4 rows of `inner` doubles
 * holding each column's maximum, sum, sum without its maximum's term and the
 * position of that term. NaN anywhere in a slice makes that slice NaN; +inf,
 * or a slice of only -inf, gives NaN as well (as NumPy/PyTorch). */
static void softmax_block(double *y, const double *x, int64_t n, int64_t inner, int is_log, double *tmp) {
    if (inner == 1) {
        double m, s = row_expsum(x, n, y, &m); /* y holds exp(x - m) until overwritten */
        if (is_log) {
            double ls = log_expsum(y, n, 1, row_argmax(x, n, 1, m), s);
            for (int64_t j = 0; j < n; j++) y[j] = (x[j] - m) - ls;
        } else {
            double r = 1.0 / s;
            for (int64_t j = 0; j < n; j++) y[j] *= r;
        }
        return;
    }
    double *mx = tmp, *sm = tmp + inner, *rest = tmp + 2 * inner, *arg = tmp + 3 * inner; /* [inner] each */
    for (int64_t i = 0; i < inner; i++) mx[i] = -INFINITY, sm[i] = 0, rest[i] = 0, arg[i] = -1;
    for (int64_t j = 0; j < n; j++) {
        const double *xr = x + j * inner;
        for (int64_t i = 0; i < inner; i++)
            if (xr[i] > mx[i]) mx[i] = xr[i];
    }
    for (int64_t j = 0; j < n; j++) {
        const double *xr = x + j * inner;
        double *yr = y + j * inner;
        for (int64_t i = 0; i < inner; i++) {
            sm[i] += (yr[i] = exp(xr[i] - mx[i]));
            if (arg[i] < 0 && xr[i] == mx[i] && isfinite(mx[i])) arg[i] = (double)j; /* its term is 1 */
            else rest[i] += yr[i];
        }
    }
    for (int64_t i = 0; i < inner; i++)
        sm[i] = !is_log ? 1.0 / sm[i] : arg[i] >= 0 ? log1p(rest[i]) : log(sm[i]); /* see log_expsum */
    for (int64_t j = 0; j < n; j++) {
        const double *xr = x + j * inner;
        double *yr = y + j * inner;
        if (is_log)
            for (int64_t i = 0; i < inner; i++) yr[i] = (xr[i] - mx[i]) - sm[i];
        else
            for (int64_t i = 0; i < inner; i++) yr[i] *= sm[i];
    }
}

/* The first position of a slice's largest output (stride apart), or -1 when
 * it is not finite: the element whose probability may be close to 1. */
static int64_t slice_argmax(const double *y, int64_t n, int64_t stride) {
    int64_t jm = -1;
    double best = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        if (y[j * stride] > best) best = y[j * stride], jm = j;
    return isfinite(best) ? jm : -1;
}

/* Backward of one slice of n elements `stride` apart, fused:
 *   softmax     dx = y * (dy - sum(dy * y)),
 *   log_softmax dx = dy - exp(y) * sum(dy).
 * At the slice's largest probability p (jm) these subtract nearly equal
 * numbers when p is close to 1, losing digits in proportion to 1 / (1 - p)
 * (1e-8 of relative error for p = 1 - 7e-9), so there the same values are
 * computed from the other elements' share, which carries every digit:
 *   softmax     dx = y * (dy * sum'(y) - sum'(dy * y)),
 *   log_softmax dx = dy * -expm1(y) - exp(y) * sum'(dy),
 * sum' over the other elements (A8: no needless cancellation). A non-finite
 * sum keeps the plain formula, so infinities combine as in PyTorch. */
static void softmax_slice_backward(double *dx, const double *dy, const double *y, int64_t n, int64_t stride,
                                   int is_log) {
    int64_t jm = slice_argmax(y, n, stride);
    double s = 0, rest = 0, rest_y = 0;
    for (int64_t j = 0; j < n; j++) {
        double d = dy[j * stride], t = is_log ? d : d * y[j * stride];
        s += t;
        if (j != jm) rest += t, rest_y += y[j * stride];
    }
    for (int64_t j = 0; j < n; j++) {
        double d = dy[j * stride], yj = y[j * stride];
        if (j == jm && isfinite(s))
            dx[j * stride] = is_log ? d * -expm1(yj) - exp(yj) * rest : yj * (d * rest_y - rest);
        else
            dx[j * stride] = is_log ? d - exp(yj) * s : yj * (d - s);
    }
}

/* Backward of one block [n, inner]: the slice rule above, for inner > 1 on
 * all `inner` columns at once, row by row (a column walk would touch a cache
 * line per element); tmp is scratch of 5 rows of `inner` doubles. */
static void softmax_block_backward(double *dx, const double *dy, const double *y, int64_t n, int64_t inner,
                                   int is_log, double *tmp) {
    if (inner == 1) {
        softmax_slice_backward(dx, dy, y, n, 1, is_log);
        return;
    }
    double *best = tmp, *arg = tmp + inner, *s = tmp + 2 * inner, *rest = tmp + 3 * inner, *rest_y = tmp + 4 * inner;
    for (int64_t i = 0; i < inner; i++) best[i] = -INFINITY, arg[i] = -1, s[i] = rest[i] = rest_y[i] = 0;
    for (int64_t j = 0; j < n; j++) /* each column's largest output, as slice_argmax */
        for (int64_t i = 0; i < inner; i++)
            if (y[j * inner + i] > best[i]) best[i] = y[j * inner + i], arg[i] = (double)j;
    for (int64_t i = 0; i < inner; i++)
        if (!isfinite(best[i])) arg[i] = -1;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < inner; i++) {
            double d = dy[j * inner + i], yj = y[j * inner + i], t = is_log ? d : d * yj;
            s[i] += t;
            if ((double)j != arg[i]) rest[i] += t, rest_y[i] += yj;
        }
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < inner; i++) {
            double d = dy[j * inner + i], yj = y[j * inner + i];
            if ((double)j == arg[i] && isfinite(s[i]))
                dx[j * inner + i] = is_log ? d * -expm1(yj) - exp(yj) * rest[i] : yj * (d * rest_y[i] - rest[i]);
            else
                dx[j * inner + i] = is_log ? d - exp(yj) * s[i] : yj * (d - s[i]);
        }
}

/* Forward of softmax/log_softmax over every block; scratch of 4 * inner
 * doubles from the arena, released before returning. */
static int softmax_any_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out, int is_log) {
    const gd_tensor *x = in[0];
    int axis, rc = softmax_axis(c->node, &x->shape, &axis, c->err);
    if (rc) return rc;
    if (!out->n) return 0;
    axis_view v = view_around(&x->shape, axis);
    double *tmp = NULL; /* [4, inner] */
    if (v.inner > 1 && !(tmp = gd_arena_buf(c->arena, (size_t)v.inner * 32, 0))) return gd_kernel_oom(c);
    int64_t block = v.n * v.inner, since = 0;
    for (int64_t o = 0; o < v.outer && !rc; o++) {
        softmax_block(gd_f64(out) + o * block, gd_f64(x) + o * block, v.n, v.inner, is_log, tmp);
        rc = gd_kernel_tick(c, &since, block);
    }
    gd_arena_release(c->arena, tmp);
    return rc;
}

static int softmax_any_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out,
                                const gd_tensor *dout, const int *want, gd_tensor **din, int is_log) {
    if (!want[0]) return 0;
    int axis, rc = softmax_axis(c->node, &in[0]->shape, &axis, c->err);
    if (rc) return rc;
    gd_tensor *dx = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0);
    if (!dx) return gd_kernel_oom(c);
    din[0] = dx;
    if (!dx->n) return 0;
    axis_view v = view_around(&in[0]->shape, axis);
    double *tmp = NULL; /* [5, inner] */
    if (v.inner > 1 && !(tmp = gd_arena_buf(c->arena, (size_t)v.inner * 40, 0))) return gd_kernel_oom(c);
    int64_t block = v.n * v.inner, since = 0;
    for (int64_t o = 0; o < v.outer && !rc; o++) {
        softmax_block_backward(gd_f64(dx) + o * block, gd_f64(dout) + o * block, gd_f64(out) + o * block, v.n,
                               v.inner, is_log, tmp);
        rc = gd_kernel_tick(c, &since, block);
    }
    gd_arena_release(c->arena, tmp);
    return rc;
}

/* The forward's [2, inner] and the backward's [inner], when inner > 1. */
static size_t softmax_scratch(const gd_node *n, const gd_meta *in, const gd_meta *out, int backward) {
    (void)out;
    int axis;
    gd_error err;
    if (softmax_axis(n, &in[0].shape, &axis, &err) || axis < 0) return 0;
    axis_view v = view_around(&in[0].shape, axis);
    return v.inner > 1 ? gd_arena_buf_cost((size_t)v.inner * (backward ? 8 : 16)) : 0;
}

static int softmax_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return softmax_any_forward(c, in, out, 0);
}

static int log_softmax_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return softmax_any_forward(c, in, out, 1);
}

static int softmax_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                            const int *want, gd_tensor **din) {
    return softmax_any_backward(c, in, out, dout, want, din, 0);
}

static int log_softmax_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out,
                                const gd_tensor *dout, const int *want, gd_tensor **din) {
    return softmax_any_backward(c, in, out, dout, want, din, 1);
}

/* ---------------------------------------------------------------------------
 * softmax_cross_entropy: logits [N, C], labels int64 [N] (class indices) or
 * probabilities [N, C]; loss = mean over N of -sum_c labels * log_softmax. */

/* Shapes and dtypes: logits of rank 2; labels int64 [N], or [N, C] (float64
 * probabilities; int64 ones are converted and pass no gradient). */
static int infer_sce(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    const gd_shape *z = &in[0].shape, *l = &in[1].shape;
    char a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
    out->dtype = GD_F64;
    out->shape = gd_shape_scalar();
    if (z->rank >= 0 && z->rank != 2)
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs[0]",
                              "Node '%s' (%s): logits '%s' must have shape [N, C], but have shape %s.", n->name,
                              n->op->name, n->in_names[0], gd_shape_str(z, a, sizeof a));
    if (l->rank >= 0 && l->rank != 1 && l->rank != 2)
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs[1]",
                              "Node '%s' (%s): labels '%s' must be int64 class indices of shape [N] or probabilities "
                              "of shape [N, C], but have shape %s.",
                              n->name, n->op->name, n->in_names[1], gd_shape_str(l, a, sizeof a));
    if (l->rank == 1 && in[1].dtype != GD_I64)
        return gd_node_errorf(err, n, GD_E_DTYPE_MISMATCH, ".inputs[1]",
                              "Node '%s' (%s): labels '%s' of shape %s are %s, but class indices must be int64: "
                              "declare the input that holds them with \"dtype\": \"int64\" (the simplest fix), or cast "
                              "them ({\"op\": \"cast\", \"dtype\": \"int64\"}), or pass probabilities of shape [N, C].",
                              n->name, n->op->name, n->in_names[1], gd_shape_str(l, a, sizeof a),
                              gd_dtype_name(in[1].dtype));
    if (z->rank == 2 && l->rank >= 1 && (l->dim[0] != z->dim[0] || (l->rank == 2 && l->dim[1] != z->dim[1])))
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs[1]",
                              "Node '%s' (%s): logits '%s' have shape %s but labels '%s' have shape %s; labels must "
                              "be [%lld] (class indices) or [%lld, %lld] (probabilities).",
                              n->name, n->op->name, n->in_names[0], gd_shape_str(z, a, sizeof a), n->in_names[1],
                              gd_shape_str(l, b, sizeof b), (long long)z->dim[0], (long long)z->dim[0],
                              (long long)z->dim[1]);
    return gd_check_size(n, &out->shape, lim, err);
}

/* Class indices: int64 (infer guarantees it; never reinterpret doubles as
 * indices) in [0, C), else index_out_of_range naming the position. */
static int check_labels(gd_kctx *c, const gd_tensor *labels, int64_t N, int64_t C) {
    if (labels->dtype != GD_I64)
        return gd_node_errorf(c->err, c->node, GD_E_DTYPE_MISMATCH, ".inputs[1]",
                              "Node '%s' (%s): class indices '%s' must be int64.", c->node->name, c->node->op->name,
                              c->node->in_names[1]);
    const int64_t *y = gd_i64(labels);
    for (int64_t i = 0; i < N; i++)
        if (y[i] < 0 || y[i] >= C)
            return gd_node_errorf(c->err, c->node, GD_E_INDEX_OUT_OF_RANGE, ".inputs[1]",
                                  "Node '%s' (%s): label %lld at position %lld of '%s' is outside [0, %lld), the "
                                  "classes of logits '%s'.",
                                  c->node->name, c->node->op->name, (long long)y[i], (long long)i,
                                  c->node->in_names[1], (long long)C, c->node->in_names[0]);
    return 0;
}

/* Hand back a float64 copy made by gd_tensor_to_f64 (not the operand itself). */
static void drop_copy(gd_kctx *c, const gd_tensor *conv, const gd_tensor *orig) {
    if (conv != orig) gd_tensor_release(c->arena, (gd_tensor *)conv);
}

/* Labels of rank 1 are class indices (check_labels insists on int64). */
static int sce_indices(const gd_tensor *labels) { return labels->shape.rank == 1; }

/* The labels as the kernels read them: *y for class indices (checked), or
 * *qt, a float64 view of the probabilities (a copy when they are int64, to be
 * handed back with drop_copy). */
static int sce_labels(gd_kctx *c, const gd_tensor *labels, int64_t N, int64_t C, const int64_t **y,
                      const gd_tensor **qt) {
    *y = NULL;
    *qt = NULL;
    if (sce_indices(labels)) {
        int rc = check_labels(c, labels, N, C);
        if (!rc) *y = gd_i64(labels);
        return rc;
    }
    return gd_kernel_to_f64(c, labels, qt);
}

/* loss = (1/N) sum_n -sum_c q_nc log_softmax(z_n)_c; with class indices
 * that is (1/N) sum_n (m_n - z_n,y_n) + ls_n. N = 0 gives NaN (the mean of
 * nothing, as NumPy). */
static int sce_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    const gd_tensor *zt, *qt;
    int rc = gd_kernel_to_f64(c, in[0], &zt);
    if (rc) return rc;
    const int64_t N = zt->shape.dim[0], C = zt->shape.dim[1];
    const double *z = gd_f64(zt); /* [N, C] */
    const int64_t *y;             /* [N] class indices, or */
    rc = sce_labels(c, in[1], N, C, &y, &qt);
    const double *q = qt ? gd_f64(qt) : NULL; /* [N, C] probabilities */
    double total = 0;
    int64_t since = 0;
    for (int64_t i = 0; i < N && !rc; i++) {
        const double *zr = z + i * C;
        double m, s = row_expsum(zr, C, NULL, &m), ls = log_expsum_x(zr, C, m, s);
        if (y) {
            total += (m - zr[y[i]]) + ls;
        } else {
            const double *qr = q + i * C;
            for (int64_t j = 0; j < C; j++) total -= qr[j] * ((zr[j] - m) - ls);
        }
        rc = gd_kernel_tick(c, &since, C);
    }
    gd_f64(out)[0] = total / (double)N;
    if (qt) drop_copy(c, qt, in[1]);
    drop_copy(c, zt, in[0]);
    return rc;
}

/* float64 copies of int64 logits, and of int64 probability labels (rank 2),
 * forward and backward alike. */
static size_t sce_scratch(const gd_node *n, const gd_meta *in, const gd_meta *out, int backward) {
    (void)n, (void)out, (void)backward;
    size_t c = 0;
    int64_t k;
    for (int i = 0; i < 2; i++)
        if (in[i].dtype == GD_I64 && (i == 0 || in[i].shape.rank != 1) && !gd_shape_numel(&in[i].shape, &k) && k > 0)
            c += gd_arena_buf_cost((size_t)k * 8);
    return c;
}

/* Fused backward. With g = dout / N and p = softmax(z_n):
 *   dlogits = g * (p * sum_c q_c - q), which is g * (p - onehot) for class
 *             indices and g * (p - q) for probabilities that sum to 1;
 *   dlabels = -g * log_softmax(z)  (float64 probabilities only; int64 labels
 *             never receive gradient).
 * At the row's maximum, where p may be 1 - 1e-9, p - 1 is taken as -t / s
 * (t = s - 1, the other terms' sum) instead of subtracting nearly equal
 * numbers (A8); a non-finite g or sum keeps the plain formula, whose
 * infinities combine as in PyTorch. */
static int sce_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                        const int *want, gd_tensor **din) {
    (void)out;
    int want_q = want[1] && !sce_indices(in[1]) && in[1]->dtype == GD_F64;
    if (!want[0] && !want_q) return 0;
    const gd_tensor *zt;
    int rc = gd_kernel_to_f64(c, in[0], &zt);
    if (rc) return rc;
    const int64_t N = zt->shape.dim[0], C = zt->shape.dim[1];
    const double g = gd_f64(dout)[0] / (double)N;
    const double *z = gd_f64(zt); /* [N, C] */
    const int64_t *y;            /* [N] class indices, or */
    const gd_tensor *qt;
    rc = sce_labels(c, in[1], N, C, &y, &qt);
    const double *q = qt ? gd_f64(qt) : NULL; /* [N, C] probabilities */
    gd_tensor *dz = NULL, *dq = NULL;
    int64_t since = 0;
    if (!rc && want[0] && !(dz = gd_tensor_new(c->arena, &zt->shape, GD_F64, 0))) rc = gd_kernel_oom(c);
    if (!rc && want_q && !(dq = gd_tensor_new(c->arena, &zt->shape, GD_F64, 0))) rc = gd_kernel_oom(c);
    for (int64_t i = 0; i < N && !rc; i++) {
        const double *zr = z + i * C;
        double *d = dz ? gd_f64(dz) + i * C : NULL; /* exp(z - m), then scaled to g * p */
        double m, s = row_expsum(zr, C, d, &m);
        int64_t jm = row_argmax(zr, C, 1, m);
        if (d) {
            double gs = g / s, t = 0; /* t: s - 1, the terms other than jm's 1 */
            for (int64_t j = 0; j < C && jm >= 0; j++)
                if (j != jm) t += d[j];
            int stable = jm >= 0 && isfinite(g) && isfinite(t);
            if (y) {
                for (int64_t j = 0; j < C; j++) d[j] *= gs;
                if (stable && y[i] == jm) d[jm] = -gs * t; /* g * (p - 1) = -g * t / s */
                else d[y[i]] -= g;
            } else {
                const double *qr = q + i * C;
                double qs = 0, qrest = 0;
                for (int64_t j = 0; j < C; j++) qs += qr[j], qrest += j != jm ? qr[j] : 0;
                for (int64_t j = 0; j < C; j++) d[j] = d[j] * gs * qs - g * qr[j];
                if (stable && isfinite(qs)) d[jm] = g * qrest - gs * t * qs; /* g * (p qs - q), p = 1 - t / s */
            }
        }
        if (dq) {
            double *dl = gd_f64(dq) + i * C, ls = log_expsum_x(zr, C, m, s);
            for (int64_t j = 0; j < C; j++) dl[j] = -g * ((zr[j] - m) - ls);
        }
        rc = gd_kernel_tick(c, &since, C);
    }
    if (qt) drop_copy(c, qt, in[1]);
    drop_copy(c, zt, in[0]);
    din[0] = dz;
    din[1] = dq;
    return rc;
}

/* ---------------------------------------------------------------------------
 * sigmoid_cross_entropy (A6): logits z [...], labels y broadcasting to z's
 * shape (not range-checked, as in PyTorch); loss = mean over z's n elements
 * of max(z, 0) - z * y + log1p(exp(-|z|)), PyTorch's
 * binary_cross_entropy_with_logits. */

/* Shapes: y must broadcast to z's shape itself (not to a larger one). */
static int infer_bce(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    gd_meta b;
    int rc = gd_infer_elementwise(n, in, 2, lim, &b, err);
    if (rc) return rc;
    char a[GD_SHAPE_STR_MAX], c[GD_SHAPE_STR_MAX];
    if (in[0].shape.rank >= 0 && b.shape.rank >= 0 && !gd_shape_eq(&b.shape, &in[0].shape))
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs[1]",
                              "Node '%s' (%s): labels '%s' of shape %s do not broadcast to the shape %s of logits "
                              "'%s'.",
                              n->name, n->op->name, n->in_names[1], gd_shape_str(&in[1].shape, a, sizeof a),
                              gd_shape_str(&in[0].shape, c, sizeof c), n->in_names[0]);
    out->dtype = GD_F64;
    out->shape = gd_shape_scalar();
    return 0;
}

/* A stable sigmoid: exp of a non-positive number only. */
static double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

typedef struct bce_ctx {
    const double *z, *y; /* [z's shape], y read through the broadcast offsets */
    double total;        /* forward: the sum */
    double *dz, *dy;     /* backward: [z's shape] each, or NULL */
    double g;            /* backward: dout / n */
} bce_ctx;

static void bce_forward_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    bce_ctx *c = vc;
    const double *z = c->z + off[0], *y = c->y + off[1];
    double s = 0;
    for (int64_t k = 0; k < len; k++) {
        double x = z[k * inner[0]], t = y[k * inner[1]];
        s += (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
    }
    (void)o;
    c->total += s;
}

static int bce_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    bce_ctx b = {.z = gd_f64(in[0]), .y = gd_f64(in[1])};
    const gd_shape *ops[2] = {&in[0]->shape, &in[1]->shape};
    int rc = gd_for_runs_polled(&in[0]->shape, 2, ops, bce_forward_run, &b, c->cancel, c->err);
    gd_f64(out)[0] = b.total / (double)in[0]->n; /* n = 0: NaN, the mean of nothing */
    return rc;
}

static void bce_backward_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    bce_ctx *c = vc;
    const double *z = c->z + off[0], *y = c->y + off[1];
    for (int64_t k = 0; k < len; k++) {
        double x = z[k * inner[0]];
        if (c->dz) c->dz[o + k] = c->g * (sigmoid(x) - y[k * inner[1]]);
        if (c->dy) c->dy[o + k] = -c->g * x;
    }
}

/* dz = (sigmoid(z) - y) * dout / n; dy = -z * dout / n in z's shape (the
 * engine sums it down to y's). */
static int bce_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                        const int *want, gd_tensor **din) {
    (void)out;
    gd_tensor *dz = NULL, *dy = NULL;
    if (want[0] && !(dz = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0))) return gd_kernel_oom(c);
    if (want[1] && !(dy = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0))) return gd_kernel_oom(c);
    bce_ctx b = {.z = gd_f64(in[0]), .y = gd_f64(in[1]), .dz = dz ? gd_f64(dz) : NULL, .dy = dy ? gd_f64(dy) : NULL,
                 .g = gd_f64(dout)[0] / (double)in[0]->n};
    const gd_shape *ops[2] = {&in[0]->shape, &in[1]->shape};
    int rc = gd_for_runs_polled(&in[0]->shape, 2, ops, bce_backward_run, &b, c->cancel, c->err);
    din[0] = dz;
    din[1] = dy;
    return rc;
}

/* ---------------------------------------------------------------------------
 * one_hot{depth}: int64 indices [...] -> float64 [..., depth]. */

/* depth as validated by infer_one_hot. */
static int64_t one_hot_depth(const gd_node *n) { return n->attrs->depth.v[0]; }

static int infer_one_hot(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    const gd_ints *d = &n->attrs->depth;
    char a[GD_SHAPE_STR_MAX];
    out->dtype = GD_F64;
    if (!d->given)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".depth",
                              "Node '%s' (one_hot): `depth`, the number of classes, is required.", n->name);
    if (d->v[0] < 0)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".depth",
                              "Node '%s' (one_hot): `depth` must be an integer >= 0, got %lld.", n->name,
                              (long long)d->v[0]);
    if (in[0].dtype != GD_I64)
        return gd_node_errorf(err, n, GD_E_DTYPE_MISMATCH, ".inputs[0]",
                              "Node '%s' (one_hot): input '%s' is %s, but one_hot takes int64 class indices; cast it "
                              "first ({\"op\": \"cast\", \"dtype\": \"int64\"}).",
                              n->name, n->in_names[0], gd_dtype_name(in[0].dtype));
    if (in[0].shape.rank < 0) {
        out->shape.rank = -1;
        return 0;
    }
    if (in[0].shape.rank >= GD_MAX_RANK)
        return gd_node_errorf(err, n, GD_E_INVALID_VALUE, "",
                              "Node '%s' (one_hot): input '%s' of shape %s already has rank %d; the result would have "
                              "rank %d and the maximum is %d.",
                              n->name, n->in_names[0], gd_shape_str(&in[0].shape, a, sizeof a), in[0].shape.rank,
                              in[0].shape.rank + 1, GD_MAX_RANK);
    out->shape = in[0].shape;
    out->shape.dim[out->shape.rank++] = one_hot_depth(n);
    return gd_check_size(n, &out->shape, lim, err);
}

/* out[i, idx[i]] = 1, zeros elsewhere; an index outside [0, depth) is
 * index_out_of_range naming its flat position. */
static int one_hot_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    const gd_tensor *t = in[0];
    const int64_t depth = one_hot_depth(c->node);
    if (t->dtype != GD_I64) /* infer rejects it; never reinterpret doubles as indices */
        return gd_node_errorf(c->err, c->node, GD_E_DTYPE_MISMATCH, ".inputs[0]",
                              "Node '%s' (one_hot): input '%s' must be int64.", c->node->name, c->node->in_names[0]);
    const int64_t *idx = gd_i64(t); /* [...] */
    double *y = gd_f64(out);        /* [..., depth] */
    /* the zeros first, in polled pieces: 16M of them fault in 128 MB */
    for (int64_t s = 0; s < out->n; s += GD_POLL_ELEMS) {
        int rc;
        if (s && (rc = gd_cancel_check(c->cancel, c->err))) return rc;
        memset(y + s, 0, (size_t)(out->n - s < GD_POLL_ELEMS ? out->n - s : GD_POLL_ELEMS) * sizeof *y);
    }
    for (int64_t i = 0; i < t->n; i++) {
        if (idx[i] < 0 || idx[i] >= depth)
            return gd_node_errorf(c->err, c->node, GD_E_INDEX_OUT_OF_RANGE, ".inputs[0]",
                                  "Node '%s' (one_hot): index %lld at flat position %lld of '%s' is outside [0, %lld).",
                                  c->node->name, (long long)idx[i], (long long)i, c->node->in_names[0],
                                  (long long)depth);
        y[i * depth + idx[i]] = 1.0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * The table */

static const gd_attr_spec softmax_attrs[] = {
    GD_ATTR("axis", GD_ATTR_AXIS, axis, "-1"),
};

static const gd_attr_spec one_hot_attrs[] = {
    GD_ATTR("depth", GD_ATTR_INT, depth, NULL),
};

const gd_op_def gd_ops_nn[] = {
    {.name = "softmax", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = softmax_attrs,
     .n_attrs = GD_NELEMS(softmax_attrs), .differentiable = 1, .zero_cause = GD_ZERO_VALUE,
     .doc = "exp(x) / sum(exp(x)) along the single integer `axis` (default -1), computed stably by subtracting the "
            "maximum; a slice holding NaN or +inf, or only -inf, gives NaN; fused backward y * (dout - sum(dout * y)).",
     .infer = infer_softmax, .forward = softmax_forward, .backward = softmax_backward, .scratch = softmax_scratch},
    {.name = "log_softmax", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = softmax_attrs,
     .n_attrs = GD_NELEMS(softmax_attrs), .differentiable = 1, .zero_cause = GD_ZERO_VALUE,
     .doc = "x - logsumexp(x) along the single integer `axis` (default -1), computed stably; fused backward "
            "dout - exp(y) * sum(dout).",
     .infer = infer_softmax, .forward = log_softmax_forward, .backward = log_softmax_backward,
     .scratch = softmax_scratch},
    {.name = "softmax_cross_entropy", .min_in = 2, .max_in = 2, .inputs_doc = "logits, labels", .attrs = NULL,
     .n_attrs = 0, .differentiable = 1, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "Mean over N of -sum_c labels * log_softmax(logits) for logits [N, C] and labels either int64 class "
            "indices [N] (each in [0, C), else index_out_of_range; no gradient) or probabilities [N, C] (which get "
            "the gradient -log_softmax(logits) * dout / N); N = 0 gives NaN, the mean of nothing as in NumPy; the "
            "logits' gradient is (softmax - labels) * dout / N for labels that sum to 1 per row (in general "
            "(softmax * sum(labels) - labels) * dout / N).",
     .infer = infer_sce, .forward = sce_forward, .backward = sce_backward, .scratch = sce_scratch},
    {.name = "sigmoid_cross_entropy", .min_in = 2, .max_in = 2, .inputs_doc = "logits, labels", .attrs = NULL,
     .n_attrs = 0, .differentiable = 1, .zero_cause = GD_ZERO_VALUE,
     .doc = "Binary cross-entropy on logits, as PyTorch's binary_cross_entropy_with_logits: the mean over the n "
            "elements of logits of max(z, 0) - z * y + log1p(exp(-|z|)), with labels y broadcasting to the logits' "
            "shape (not range-checked); n = 0 gives NaN; gradients (sigmoid(z) - y) * dout / n to the logits and "
            "-z * dout / n to float64 labels.",
     .infer = infer_bce, .forward = bce_forward, .backward = bce_backward},
    {.name = "one_hot", .min_in = 1, .max_in = 1, .inputs_doc = "indices", .attrs = one_hot_attrs,
     .n_attrs = GD_NELEMS(one_hot_attrs), .differentiable = 0, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "float64 one-hot encoding of int64 `indices` with `depth` classes (required, >= 0), of shape "
            "indices.shape + [depth]; an index outside [0, depth) is index_out_of_range; not differentiable.",
     .infer = infer_one_hot, .forward = one_hot_forward, .backward = NULL},
    {0},
};
