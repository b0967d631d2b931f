/* test_ops_reduce.c - the reduction family (sum mean max min logsumexp argmax
 * argmin, core/ops_reduce.c) and the nn family (softmax log_softmax
 * softmax_cross_entropy one_hot, core/ops_nn.c): finite-difference checks of
 * every backward rule over every axis form, hand-computed forward values
 * (NaN, ties, empty reductions, overflow-prone inputs) and the attribute,
 * shape, dtype and range errors a user can trigger. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "tests.h"

static gd_arena *A;

static void setup(void) { A = gd_arena_new(0); }
static void teardown(void) {
    gd_arena_free(A);
    A = NULL;
}

/* ---------------------------------------------------------------------------
 * Helpers */

/* Axis forms of the reduction tests: "" = not given, "k" = one integer,
 * "[...]" = a list. */
static void set_axis(gd_node *n, const char *form) {
    gd_ints *ax = &n->attrs->axis;
    memset(ax, 0, sizeof *ax);
    if (!*form) return;
    ax->given = 1;
    ax->is_list = form[0] == '[';
    const char *p = form + ax->is_list;
    while (*p && *p != ']') {
        char *end;
        ax->v[ax->n++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
}

static gd_node *node_axis(const char *op, int n_in, const char *axis, int keepdims) {
    gd_node *n = gc_node(A, op, n_in);
    set_axis(n, axis);
    n->attrs->keepdims.given = keepdims >= 0;
    n->attrs->keepdims.v = keepdims > 0;
    return n;
}

static gd_tensor *fwd(gd_node *n, gd_tensor **in) {
    gd_error err;
    gd_tensor *out = NULL;
    int rc = gc_forward(A, n, in, &out, &err);
    ck_assert_msg(rc == 0, "%s forward failed: %s", n->op->name, err.message);
    return out;
}

/* The error code of a forward (infer included) that is expected to fail. */
static gd_err fwd_err(gd_node *n, gd_tensor **in, gd_error *err) {
    gd_tensor *out = NULL;
    gd_error_clear(err);
    return (gd_err)gc_forward(A, n, in, &out, err);
}

/* Inference alone, on metas (rank < 0 for unknown shapes). */
static gd_err infer(gd_node *n, const gd_meta *in, int64_t max_elements, gd_meta *out, gd_error *err) {
    gd_limits lim = {.max_elements = max_elements};
    gd_error_clear(err);
    return (gd_err)n->op->infer(n, in, &lim, out, err);
}

/* The VJP for an explicit cotangent; inputs as the kernel receives them. */
static void vjp(gd_node *n, gd_tensor **in, gd_tensor *out, gd_tensor *dout, unsigned mask, gd_tensor **din) {
    gd_error err;
    int want[4] = {0};
    for (int i = 0; i < n->n_in; i++) want[i] = (mask >> i) & 1, din[i] = NULL;
    gd_kctx c = {.arena = A, .err = &err, .node = n};
    int rc = n->op->backward(&c, (const gd_tensor *const *)in, out, dout, want, din);
    ck_assert_msg(rc == 0, "%s backward failed: %s", n->op->name, err.message);
}

static gd_tensor *ones_like(const gd_tensor *t) {
    gd_tensor *o = gd_tensor_new(A, &t->shape, GD_F64, 0);
    for (int64_t i = 0; i < o->n; i++) gd_f64(o)[i] = 1.0;
    return o;
}

static void expect_shape(const gd_tensor *t, const char *spec) {
    gd_shape s = gc_shape(spec);
    char a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
    ck_assert_msg(gd_shape_eq(&t->shape, &s), "shape %s, expected %s", gd_shape_str(&t->shape, a, sizeof a),
                  gd_shape_str(&s, b, sizeof b));
}

/* Values equal to within 1e-12 relative; NaN matches NaN, infinities match exactly. */
static void expect_vals(const gd_tensor *t, const double *want, int64_t n) {
    ck_assert_int_eq(t->n, n);
    ck_assert_int_eq(t->dtype, GD_F64);
    for (int64_t i = 0; i < n; i++) {
        double g = gd_f64(t)[i], w = want[i];
        if (isnan(w)) ck_assert_msg(isnan(g), "element %lld: %.17g, expected NaN", (long long)i, g);
        else if (isinf(w)) ck_assert_msg(g == w, "element %lld: %.17g, expected %g", (long long)i, g, w);
        else ck_assert_msg(fabs(g - w) <= 1e-12 * fmax(1.0, fabs(w)), "element %lld: %.17g, expected %.17g",
                           (long long)i, g, w);
    }
}

/* Within rel of want (relative), element by element. */
static void expect_rel(const char *what, const gd_tensor *t, const double *want, int64_t n, double rel) {
    ck_assert_int_eq(t->n, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(gd_f64(t)[i] - want[i]) <= rel * fabs(want[i]), "%s element %lld: %.17g, expected %.17g",
                      what, (long long)i, gd_f64(t)[i], want[i]);
}

static void expect_idx(const gd_tensor *t, const int64_t *want, int64_t n) {
    ck_assert_int_eq(t->dtype, GD_I64);
    ck_assert_int_eq(t->n, n);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(gd_i64(t)[i], want[i]);
}

/* A tensor of distinct values 0.25 apart in random order, so that max/min
 * have no ties and finite differences never cross a kink. */
static gd_tensor *distinct(gc_rng *r, const char *shape) {
    gd_shape s = gc_shape(shape);
    gd_tensor *t = gd_tensor_new(A, &s, GD_F64, 0);
    double *x = gd_f64(t);
    for (int64_t i = 0; i < t->n; i++) x[i] = -3.0 + 0.25 * (double)i;
    for (int64_t i = t->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(gc_next(r) % (uint64_t)(i + 1));
        double v = x[i];
        x[i] = x[j], x[j] = v;
    }
    return t;
}

/* ---------------------------------------------------------------------------
 * Reductions: gradients over every axis form */

static const char *const red_ops[] = {"sum", "mean", "max", "min", "logsumexp"};
static const char *const axis_forms[] = {"", "0", "-1", "[0,2]", "[]", "[-1,1]", "[2,0,1]"};
#define N_RED_OPS 5
#define N_FORMS 7

/* _i enumerates op x axis form x keepdims on a [2, 3, 4] input. */
START_TEST(test_reduce_gradcheck) {
    const char *op = red_ops[_i / (N_FORMS * 2)];
    const char *form = axis_forms[(_i / 2) % N_FORMS];
    int keep = _i % 2;
    gc_rng r = {1000 + (uint64_t)_i};
    gd_node *n = node_axis(op, 1, form, keep);
    gd_tensor *x = distinct(&r, "2,3,4");
    double err = gc_check(A, &r, n, &x, 1);
    if (err > GC_TOL) fprintf(stderr, "%s axis=%s keepdims=%d: err %g\n", op, form, keep, err);
    ck_assert_double_le(err, GC_TOL);
}
END_TEST

/* A scalar input (no axis, or an empty axis list) and the keepdims shapes. */
START_TEST(test_reduce_scalar_and_shapes) {
    gc_rng r = {7};
    for (int k = 0; k < N_RED_OPS; k++) {
        gd_node *n = node_axis(red_ops[k], 1, "", -1);
        gd_tensor *x = gc_rand(A, &r, "", -1, 1);
        expect_shape(fwd(n, &x), "");
        ck_assert_double_le(gc_check(A, &r, n, &x, 1), GC_TOL);
        gd_tensor *y = distinct(&r, "2,3,4");
        gd_node *m = node_axis(red_ops[k], 1, "[0,2]", 1);
        expect_shape(fwd(m, &y), "1,3,1");
        m = node_axis(red_ops[k], 1, "[0,2]", 0);
        expect_shape(fwd(m, &y), "3");
        m = node_axis(red_ops[k], 1, "", 1);
        expect_shape(fwd(m, &y), "1,1,1");
        m = node_axis(red_ops[k], 1, "[]", 0);
        expect_shape(fwd(m, &y), "2,3,4");
    }
}
END_TEST

/* ---------------------------------------------------------------------------
 * Reductions: forward values */

START_TEST(test_reduce_values) {
    static const double xv[] = {1, 2, 3, 4, 5, 6};
    gd_tensor *x = gc_f64(A, "2,3", xv);
    gd_tensor *y;

    y = fwd(node_axis("sum", 1, "", -1), &x);
    expect_shape(y, "");
    expect_vals(y, (double[]){21}, 1);
    y = fwd(node_axis("sum", 1, "0", 0), &x);
    expect_shape(y, "3");
    expect_vals(y, (double[]){5, 7, 9}, 3);
    y = fwd(node_axis("mean", 1, "-1", 1), &x);
    expect_shape(y, "2,1");
    expect_vals(y, (double[]){2, 5}, 2);
    y = fwd(node_axis("mean", 1, "[0,1]", 0), &x);
    expect_vals(y, (double[]){3.5}, 1);
    y = fwd(node_axis("max", 1, "1", 0), &x);
    expect_vals(y, (double[]){3, 6}, 2);
    y = fwd(node_axis("min", 1, "0", 1), &x);
    expect_shape(y, "1,3");
    expect_vals(y, (double[]){1, 2, 3}, 3);
    y = fwd(node_axis("logsumexp", 1, "1", 0), &x);
    expect_vals(y, (double[]){log(exp(1) + exp(2) + exp(3)), log(exp(4) + exp(5) + exp(6))}, 2);

    /* logsumexp([0, log 3]) = log 4 */
    gd_tensor *z = gc_f64(A, "2", (double[]){0, log(3.0)});
    expect_vals(fwd(node_axis("logsumexp", 1, "", 0), &z), (double[]){log(4.0)}, 1);
}
END_TEST

/* sum/mean/max/min backward on hand-computed cases (a kept-shape cotangent
 * broadcast back over the reduced axis). */
START_TEST(test_reduce_backward_values) {
    static const double xv[] = {1, 2, 3, 4, 5, 6};
    gd_tensor *x = gc_f64(A, "2,3", xv), *din[1];
    gd_node *n = node_axis("mean", 1, "0", 0);
    gd_tensor *y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "3", (double[]){3, 6, 9}), 1, din);
    expect_shape(din[0], "2,3");
    expect_vals(din[0], (double[]){1.5, 3, 4.5, 1.5, 3, 4.5}, 6);

    n = node_axis("sum", 1, "-1", 1);
    y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "2,1", (double[]){2, -1}), 1, din);
    expect_vals(din[0], (double[]){2, 2, 2, -1, -1, -1}, 6);

    n = node_axis("max", 1, "-1", 0);
    y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "2", (double[]){2, -1}), 1, din);
    expect_vals(din[0], (double[]){0, 0, 2, 0, 0, -1}, 6);

    /* want[0] = 0: nothing is computed */
    vjp(n, &x, y, gc_f64(A, "2", (double[]){2, -1}), 0, din);
    ck_assert_ptr_null(din[0]);
}
END_TEST

/* Tied extremes share the gradient evenly (PyTorch amax/amin). */
START_TEST(test_reduce_ties) {
    gd_tensor *x = gc_f64(A, "3", (double[]){1, 3, 3}), *din[1];
    gd_node *n = node_axis("max", 1, "", -1);
    gd_tensor *y = fwd(n, &x);
    expect_vals(y, (double[]){3}, 1);
    vjp(n, &x, y, ones_like(y), 1, din);
    expect_vals(din[0], (double[]){0, 0.5, 0.5}, 3);

    x = gc_f64(A, "3", (double[]){2, 2, 5});
    n = node_axis("min", 1, "0", 0);
    y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "", (double[]){4}), 1, din);
    expect_vals(din[0], (double[]){2, 2, 0}, 3);

    /* Column-wise ties: [[1, 3], [1, 2], [0, 3]] max over axis 0 */
    x = gc_f64(A, "3,2", (double[]){1, 3, 1, 2, 0, 3});
    n = node_axis("max", 1, "0", 1);
    y = fwd(n, &x);
    expect_vals(y, (double[]){1, 3}, 2);
    vjp(n, &x, y, gc_f64(A, "1,2", (double[]){2, 6}), 1, din);
    expect_vals(din[0], (double[]){1, 3, 1, 0, 0, 3}, 6);
}
END_TEST

/* NaN propagates through max/min (NumPy) and the NaN receives the gradient. */
START_TEST(test_reduce_nan) {
    gd_tensor *x = gc_f64(A, "3", (double[]){1, NAN, 3}), *din[1];
    gd_node *n = node_axis("max", 1, "", -1);
    gd_tensor *y = fwd(n, &x);
    expect_vals(y, (double[]){NAN}, 1);
    vjp(n, &x, y, ones_like(y), 1, din);
    expect_vals(din[0], (double[]){0, 1, 0}, 3);
    expect_vals(fwd(node_axis("min", 1, "", -1), &x), (double[]){NAN}, 1);

    /* NaN in one row only, along and across the reduced axis */
    x = gc_f64(A, "2,2", (double[]){1, NAN, 3, 4});
    expect_vals(fwd(node_axis("max", 1, "1", 0), &x), (double[]){NAN, 4}, 2);
    expect_vals(fwd(node_axis("max", 1, "0", 0), &x), (double[]){3, NAN}, 2);
    expect_vals(fwd(node_axis("min", 1, "0", 0), &x), (double[]){1, NAN}, 2);
    expect_vals(fwd(node_axis("min", 1, "1", 0), &x), (double[]){NAN, 3}, 2);
    expect_vals(fwd(node_axis("sum", 1, "0", 0), &x), (double[]){4, NAN}, 2);
    expect_vals(fwd(node_axis("logsumexp", 1, "1", 0), &x), (double[]){NAN, 4 + log1p(exp(-1.0))}, 2);
}
END_TEST

/* Within 4e-16 relative (regrouping); NaN, ±Infinity and a zero's sign exactly. */
static void expect_close(const char *what, const gd_tensor *t, const double *want, int64_t n) {
    ck_assert_int_eq(t->n, n);
    for (int64_t i = 0; i < n; i++) {
        double g = gd_f64(t)[i], w = want[i];
        if (isnan(w) || isinf(w) || w == 0)
            ck_assert_msg(isnan(w) ? isnan(g) : g == w && signbit(g) == signbit(w), "%s element %lld: %.17g, expected %.17g",
                          what, (long long)i, g, w);
        else
            ck_assert_msg(fabs(g - w) <= 4e-16 * fabs(w), "%s element %lld: %.17g, expected %.17g", what,
                          (long long)i, g, w);
    }
}

/* Every reduction and nn rule at magnitudes near 1e±300, with cotangents as
 * extreme. Expected values: PyTorch 1.13.1 (python3-torch, float64) on
 *   x = [[1e300, -1e300, 1e-300], [5e-324, -1e-300, 1e-300]], axis 1:
 *   x.sum(1), x.mean(1), x.amax(1), x.amin(1), torch.logsumexp(x, 1),
 *   torch.softmax(x, 1), torch.log_softmax(x, 1) and
 *   torch.nn.functional.cross_entropy(x, labels), each .backward(g) with the
 *   cotangent g written beside it. */
START_TEST(test_extreme_magnitudes) {
    static const double xv[6] = {1e300, -1e300, 1e-300, 5e-324, -1e-300, 1e-300};
    static const struct {
        const char *op, *gshape;
        double g[6];
        double want[6];
    } cases[] = {
        {"sum", "2", {1e-300, 1e300}, {1e-300, 1e-300, 1e-300, 1e+300, 1e+300, 1e+300}},
        {"mean", "2",
         {1e-300, 5e-324},
         {3.3333333333333334e-301, 3.3333333333333334e-301, 3.3333333333333334e-301, 0.0, 0.0, 0.0}},
        {"max", "2", {1e300, 1e-300}, {1e+300, 0.0, 0.0, 0.0, 0.0, 1e-300}},
        {"min", "2", {1e300, 1e-300}, {0.0, 1e+300, 0.0, 0.0, 1e-300, 0.0}},
        {"logsumexp", "2",
         {1e300, 1e-300},
         {1e+300, 0.0, 0.0, 3.3333333333333334e-301, 3.3333333333333334e-301, 3.3333333333333334e-301}},
        {"softmax", "2,3",
         {1e300, 1e-300, -1e300, 1e-300, 1e300, 5e-324},
         {0.0, -0.0, -0.0, -1.1111111111111112e+299, 2.2222222222222223e+299, -1.1111111111111112e+299}},
        {"log_softmax", "2,3",
         {1e-300, 1e-300, 1e-300, 1e300, -1e300, 1e-300},
         {-2.0000000000000004e-300, 1e-300, 1e-300, 1e+300, -1e+300, 6.666666666666667e-301}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gd_node *n = node_axis(cases[k].op, 1, "1", -1);
        gd_tensor *x = gc_f64(A, "2,3", xv), *din[1];
        gd_tensor *y = fwd(n, &x);
        vjp(n, &x, y, gc_f64(A, cases[k].gshape, cases[k].g), 1, din);
        expect_close(cases[k].op, din[0], cases[k].want, 6);
    }
    /* softmax_cross_entropy: class indices [1, 2] with g = 1e-300, and
     * probabilities [[0.25, 0.5, 0.25], [1e-300, 1, 0]] with g = 1e300. */
    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    gd_tensor *in[2] = {gc_f64(A, "2,3", xv), gc_i64(A, "2", (int64_t[]){1, 2})}, *din[2];
    gd_tensor *y = fwd(n, in);
    vjp(n, in, y, gc_f64(A, "", (double[]){1e-300}), 1, din);
    expect_close("sce indices", din[0],
                 (double[]){5e-301, -5e-301, 0.0, 1.6666666666666667e-301, 1.6666666666666667e-301,
                            -3.3333333333333334e-301},
                 6);
    in[1] = gc_f64(A, "2,3", (double[]){0.25, 0.5, 0.25, 1e-300, 1.0, 0.0});
    y = fwd(n, in);
    vjp(n, in, y, gc_f64(A, "", (double[]){1e300}), 3, din);
    expect_close("sce logits", din[0],
                 (double[]){3.75e+299, -2.5e+299, -1.25e+299, 1.6666666666666668e+299, -3.3333333333333335e+299,
                            1.6666666666666668e+299},
                 6);
    expect_close("sce probabilities", din[1],
                 (double[]){-0.0, INFINITY, INFINITY, 5.4930614433405494e+299, 5.4930614433405494e+299,
                            5.4930614433405494e+299},
                 6);
}
END_TEST

/* A8: the masked derivatives of max/min and logsumexp multiply, as
 * PyTorch's do: a non-selected element gets g * 0, NaN for an infinite g
 * (PyTorch 1.13.1: torch.amax of [1, 3, 2] with g = inf -> [nan, inf, nan];
 * torch.logsumexp of [-inf, 0] with g = inf -> [nan, inf]). The one
 * deliberate difference: NaN wins max/min, its gradient split evenly among
 * the NaN elements (PyTorch gives NaN everywhere). */
START_TEST(test_masked_gradients_multiply) {
    gd_tensor *din[1];
    const char *ops[] = {"max", "min"};
    for (int k = 0; k < 2; k++) {
        gd_node *n = node_axis(ops[k], 1, "", -1);
        gd_tensor *x = gc_f64(A, "3", (double[]){1, k ? 0 : 3, 2});
        gd_tensor *y = fwd(n, &x);
        vjp(n, &x, y, gc_f64(A, "", (double[]){INFINITY}), 1, din);
        expect_vals(din[0], (double[]){NAN, INFINITY, NAN}, 3);
        x = gc_f64(A, "4", (double[]){1, NAN, 2, NAN});
        y = fwd(n, &x);
        vjp(n, &x, y, gc_f64(A, "", (double[]){1}), 1, din);
        expect_vals(din[0], (double[]){0, 0.5, 0, 0.5}, 4);
    }
    gd_node *n = node_axis("logsumexp", 1, "", -1);
    gd_tensor *x = gc_f64(A, "2", (double[]){-INFINITY, 0});
    gd_tensor *y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "", (double[]){INFINITY}), 1, din);
    expect_vals(din[0], (double[]){NAN, INFINITY}, 2);
    /* every element -inf: the factor is 0 (gradd's documented gradient),
     * multiplied by g: 0 for a finite g, NaN for a NaN one */
    x = gc_f64(A, "2", (double[]){-INFINITY, -INFINITY});
    y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "", (double[]){1}), 1, din);
    expect_vals(din[0], (double[]){0, 0}, 2);
    vjp(n, &x, y, gc_f64(A, "", (double[]){NAN}), 1, din);
    expect_vals(din[0], (double[]){NAN, NAN}, 2);
}
END_TEST

/* Empty reductions: sum 0, mean NaN, logsumexp -inf, max/min invalid_value. */
START_TEST(test_reduce_empty) {
    gd_shape s = gc_shape("0,3");
    gd_tensor *x = gd_tensor_new(A, &s, GD_F64, 0), *din[1];
    gd_error err;
    gd_tensor *y = fwd(node_axis("sum", 1, "0", 0), &x);
    expect_vals(y, (double[]){0, 0, 0}, 3);
    expect_vals(fwd(node_axis("sum", 1, "", 0), &x), (double[]){0}, 1);
    expect_vals(fwd(node_axis("mean", 1, "0", 0), &x), (double[]){NAN, NAN, NAN}, 3);
    gd_node *n = node_axis("logsumexp", 1, "0", 0);
    y = fwd(n, &x);
    expect_vals(y, (double[]){-INFINITY, -INFINITY, -INFINITY}, 3);
    vjp(n, &x, y, ones_like(y), 1, din);
    ck_assert_int_eq(din[0]->n, 0);

    ck_assert_int_eq(fwd_err(node_axis("max", 1, "0", 0), &x, &err), GD_E_INVALID_VALUE);
    ck_assert_ptr_nonnull(strstr(err.message, "[0, 3]"));
    ck_assert_int_eq(fwd_err(node_axis("min", 1, "", 0), &x, &err), GD_E_INVALID_VALUE);
    /* Reducing a non-empty axis of an empty tensor is fine (empty result). */
    n = node_axis("max", 1, "1", 0);
    y = fwd(n, &x);
    expect_shape(y, "0");
    vjp(n, &x, y, y, 1, din);
    expect_shape(din[0], "0,3");
    n = node_axis("mean", 1, "1", 0);
    y = fwd(n, &x);
    expect_shape(y, "0");
    vjp(n, &x, y, y, 1, din);
    expect_shape(din[0], "0,3");
}
END_TEST

/* The sign of a zero sum follows IEEE addition, as NumPy's: a sum of negative
 * zeros is -0.0, one +0.0 among them makes +0.0, and an empty sum is +0.0. */
START_TEST(test_sum_signed_zero) {
    gd_shape s = gc_shape("2,2"), e = gc_shape("0");
    gd_tensor *x = gd_tensor_new(A, &s, GD_F64, 0), *z = gd_tensor_new(A, &e, GD_F64, 0);
    double *xv = gd_f64(x);
    xv[0] = -0.0, xv[1] = -0.0, xv[2] = -0.0, xv[3] = 0.0;
    gd_tensor *y = fwd(node_axis("sum", 1, "1", 0), &x);
    ck_assert(gd_f64(y)[0] == 0 && signbit(gd_f64(y)[0]));
    ck_assert(gd_f64(y)[1] == 0 && !signbit(gd_f64(y)[1]));
    y = fwd(node_axis("mean", 1, "1", 0), &x);
    ck_assert(signbit(gd_f64(y)[0]) && !signbit(gd_f64(y)[1]));
    y = fwd(node_axis("sum", 1, "", 0), &z);
    ck_assert(gd_f64(y)[0] == 0 && !signbit(gd_f64(y)[0]));
}
END_TEST

/* logsumexp never overflows, and all -inf is -inf with zero gradient. */
START_TEST(test_logsumexp_stable) {
    gd_tensor *din[1];
    gd_node *n = node_axis("logsumexp", 1, "", -1);
    gd_tensor *x = gc_f64(A, "2", (double[]){1000, 1000});
    gd_tensor *y = fwd(n, &x);
    expect_vals(y, (double[]){1000 + log(2.0)}, 1);
    vjp(n, &x, y, ones_like(y), 1, din);
    expect_vals(din[0], (double[]){0.5, 0.5}, 2);

    x = gc_f64(A, "2", (double[]){-1000, -1000});
    expect_vals(fwd(n, &x), (double[]){-1000 + log(2.0)}, 1);

    x = gc_f64(A, "2", (double[]){-INFINITY, -INFINITY});
    y = fwd(n, &x);
    expect_vals(y, (double[]){-INFINITY}, 1);
    vjp(n, &x, y, ones_like(y), 1, din);
    expect_vals(din[0], (double[]){0, 0}, 2);

    x = gc_f64(A, "2", (double[]){-INFINITY, 0});
    y = fwd(n, &x);
    expect_vals(y, (double[]){0}, 1);
    vjp(n, &x, y, ones_like(y), 1, din);
    expect_vals(din[0], (double[]){0, 1}, 2);

    x = gc_f64(A, "2", (double[]){INFINITY, 1});
    expect_vals(fwd(n, &x), (double[]){INFINITY}, 1);

    /* a slice dominated by its maximum keeps the small terms (A8): log(1 + t)
     * rounds logsumexp([0, -40]) to 0; the truth is log1p(e^-40) =
     * 4.248354255291589e-18 (mpmath), also along a strided axis and tied */
    x = gc_f64(A, "2", (double[]){0, -40});
    expect_rel("logsumexp [0, -40]", fwd(n, &x), (double[]){4.248354255291589e-18}, 1, 1e-15);
    x = gc_f64(A, "2,2", (double[]){-40, 0, 0, -40});
    expect_rel("logsumexp axis 0", fwd(node_axis("logsumexp", 1, "0", -1), &x),
               (double[]){4.248354255291589e-18, 4.248354255291589e-18}, 2, 1e-15);
    x = gc_f64(A, "3", (double[]){-1e-300, -1e-300, -40});
    expect_rel("logsumexp tied", fwd(n, &x), (double[]){0.6931471805599453}, 1, 1e-15);
}
END_TEST

/* Bad axes: invalid_attribute at $.graph.nodes[i].axis. */
START_TEST(test_reduce_attr_errors) {
    gc_rng r = {3};
    gd_tensor *x = gc_rand(A, &r, "2,3,4", -1, 1);
    gd_error err;
    static const char *const bad[] = {"3", "-4", "[0,0]", "[0,-3]", "[1,5]"};
    for (int k = 0; k < N_RED_OPS; k++)
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            gd_node *n = node_axis(red_ops[k], 1, bad[b], 0);
            n->index = 4;
            ck_assert_int_eq(fwd_err(n, &x, &err), GD_E_INVALID_ATTRIBUTE);
            ck_assert_str_eq(err.at, "$.graph.nodes[4].axis");
        }
    gd_node *n = node_axis("sum", 1, "3", 0);
    fwd_err(n, &x, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "out of range"));
    n = node_axis("sum", 1, "[0,0]", 0);
    fwd_err(n, &x, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "repeats"));

    /* more axes than any tensor has */
    n = node_axis("mean", 1, "[0,1,2]", 0);
    n->attrs->axis.n = GD_MAX_RANK + 1;
    ck_assert_int_eq(fwd_err(n, &x, &err), GD_E_INVALID_ATTRIBUTE);

    /* An unknown input shape gives an unknown result, not an error. */
    gd_meta in = {GD_F64, {.rank = -1}}, out;
    ck_assert_int_eq(infer(node_axis("max", 1, "3", 0), &in, 0, &out, &err), GD_OK);
    ck_assert_int_lt(out.shape.rank, 0);
    ck_assert_int_eq(out.dtype, GD_F64);
}
END_TEST

/* ---------------------------------------------------------------------------
 * argmax / argmin */

START_TEST(test_argmax_values) {
    gd_tensor *x = gc_f64(A, "3", (double[]){1, 3, 3}), *y;
    y = fwd(node_axis("argmax", 1, "", -1), &x);
    expect_shape(y, "");
    expect_idx(y, (int64_t[]){1}, 1);
    x = gc_f64(A, "3", (double[]){2, 1, 1});
    expect_idx(fwd(node_axis("argmin", 1, "", -1), &x), (int64_t[]){1}, 1);

    /* NaN: the first NaN wins, for both */
    x = gc_f64(A, "4", (double[]){1, NAN, 5, NAN});
    expect_idx(fwd(node_axis("argmax", 1, "", -1), &x), (int64_t[]){1}, 1);
    expect_idx(fwd(node_axis("argmin", 1, "0", -1), &x), (int64_t[]){1}, 1);

    /* flattened, axis 0, axis -1 on [[1, 5], [7, 2]] */
    x = gc_f64(A, "2,2", (double[]){1, 5, 7, 2});
    expect_idx(fwd(node_axis("argmax", 1, "", -1), &x), (int64_t[]){2}, 1);
    expect_idx(fwd(node_axis("argmin", 1, "", -1), &x), (int64_t[]){0}, 1);
    y = fwd(node_axis("argmax", 1, "0", -1), &x);
    expect_shape(y, "2");
    expect_idx(y, (int64_t[]){1, 0}, 2);
    expect_idx(fwd(node_axis("argmax", 1, "-1", -1), &x), (int64_t[]){1, 0}, 2);
    expect_idx(fwd(node_axis("argmin", 1, "1", -1), &x), (int64_t[]){0, 1}, 2);

    /* A middle axis with NaNs and ties in some columns: x[2, 3, 2] over axis 1 */
    x = gc_f64(A, "2,3,2", (double[]){1, NAN, 4, 2, 4, NAN, /**/ 0, 0, -1, 0, 5, 0});
    y = fwd(node_axis("argmax", 1, "1", -1), &x);
    expect_shape(y, "2,2");
    expect_idx(y, (int64_t[]){1, 0, 2, 0}, 4);
    expect_idx(fwd(node_axis("argmin", 1, "1", -1), &x), (int64_t[]){0, 0, 1, 0}, 4);

    /* int64 input compares exactly beyond 2^53 */
    const int64_t big = (int64_t)1 << 62;
    x = gc_i64(A, "3", (int64_t[]){big, big + 1, big + 1});
    expect_idx(fwd(node_axis("argmax", 1, "", -1), &x), (int64_t[]){1}, 1);
    expect_idx(fwd(node_axis("argmin", 1, "0", -1), &x), (int64_t[]){0}, 1);

    /* A non-empty axis of an empty tensor gives an empty result */
    gd_shape s = gc_shape("0,3");
    x = gd_tensor_new(A, &s, GD_F64, 0);
    expect_shape(fwd(node_axis("argmax", 1, "1", -1), &x), "0");
}
END_TEST

START_TEST(test_argmax_errors) {
    gd_error err;
    gd_tensor *x = gc_f64(A, "2,2", (double[]){1, 5, 7, 2});
    gd_node *n = node_axis("argmax", 1, "[0]", -1);
    ck_assert_int_eq(fwd_err(n, &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].axis");
    ck_assert_int_eq(fwd_err(node_axis("argmin", 1, "2", -1), &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_int_eq(fwd_err(node_axis("argmin", 1, "-3", -1), &x, &err), GD_E_INVALID_ATTRIBUTE);

    gd_shape s = gc_shape("3,0");
    x = gd_tensor_new(A, &s, GD_F64, 0);
    ck_assert_int_eq(fwd_err(node_axis("argmax", 1, "1", -1), &x, &err), GD_E_INVALID_VALUE);
    ck_assert_int_eq(fwd_err(node_axis("argmin", 1, "", -1), &x, &err), GD_E_INVALID_VALUE);

    /* Unknown shapes: scalar without an axis, unknown with one. */
    gd_meta in = {GD_F64, {.rank = -1}}, out;
    ck_assert_int_eq(infer(node_axis("argmax", 1, "", -1), &in, 0, &out, &err), GD_OK);
    ck_assert_int_eq(out.shape.rank, 0);
    ck_assert_int_eq(out.dtype, GD_I64);
    ck_assert_int_eq(infer(node_axis("argmax", 1, "1", -1), &in, 0, &out, &err), GD_OK);
    ck_assert_int_lt(out.shape.rank, 0);
}
END_TEST

/* ---------------------------------------------------------------------------
 * softmax / log_softmax */

static const struct {
    const char *shape, *axis;
} sm_cases[] = {{"3,4", "-1"}, {"3,4", "0"}, {"2,3,4", "-1"}, {"2,3,4", "0"}, {"2,3,4", "1"}, {"", ""}, {"5", ""}};
#define N_SM_CASES 7

/* _i enumerates {softmax, log_softmax} x shape/axis cases. */
START_TEST(test_softmax_gradcheck) {
    const char *op = _i % 2 ? "log_softmax" : "softmax";
    gc_rng r = {2000 + (uint64_t)_i};
    gd_node *n = node_axis(op, 1, sm_cases[_i / 2].axis, -1);
    gd_tensor *x = gc_rand(A, &r, sm_cases[_i / 2].shape, -3, 3);
    double err = gc_check(A, &r, n, &x, 1);
    if (err > GC_TOL) fprintf(stderr, "%s shape=[%s] axis=%s: err %g\n", op, sm_cases[_i / 2].shape,
                              sm_cases[_i / 2].axis, err);
    ck_assert_double_le(err, GC_TOL);
}
END_TEST

START_TEST(test_softmax_values) {
    gd_tensor *x = gc_f64(A, "2", (double[]){1000, 1000});
    expect_vals(fwd(node_axis("softmax", 1, "", -1), &x), (double[]){0.5, 0.5}, 2);
    expect_vals(fwd(node_axis("log_softmax", 1, "", -1), &x), (double[]){-log(2.0), -log(2.0)}, 2);

    x = gc_f64(A, "2", (double[]){-1000, 0});
    expect_vals(fwd(node_axis("log_softmax", 1, "0", -1), &x), (double[]){-1000, 0}, 2);

    /* axis -1 and axis 0 of [[0, log 3], [log 3, 0]] */
    x = gc_f64(A, "2,2", (double[]){0, log(3.0), log(3.0), 0});
    expect_vals(fwd(node_axis("softmax", 1, "-1", -1), &x), (double[]){0.25, 0.75, 0.75, 0.25}, 4);
    expect_vals(fwd(node_axis("softmax", 1, "0", -1), &x), (double[]){0.25, 0.75, 0.75, 0.25}, 4);
    x = gc_f64(A, "2,2", (double[]){0, 0, log(3.0), 0});
    expect_vals(fwd(node_axis("softmax", 1, "0", -1), &x), (double[]){0.25, 0.5, 0.75, 0.5}, 4);
    expect_vals(fwd(node_axis("log_softmax", 1, "0", -1), &x),
                (double[]){log(0.25), log(0.5), log(0.75), log(0.5)}, 4);

    /* NaN poisons its own slice only */
    x = gc_f64(A, "2,2", (double[]){NAN, 0, 0, 0});
    expect_vals(fwd(node_axis("softmax", 1, "-1", -1), &x), (double[]){NAN, NAN, 0.5, 0.5}, 4);
    expect_vals(fwd(node_axis("softmax", 1, "0", -1), &x), (double[]){NAN, 0.5, NAN, 0.5}, 4);

    /* a scalar is a slice of one */
    x = gc_f64(A, "", (double[]){7});
    expect_vals(fwd(node_axis("softmax", 1, "0", -1), &x), (double[]){1}, 1);
    expect_vals(fwd(node_axis("log_softmax", 1, "", -1), &x), (double[]){0}, 1);

    /* backward on a hand-computed case: softmax [0.25, 0.75], dout [1, 0]
     * -> y * (dout - 0.25) = [0.1875, -0.1875]; log_softmax -> dout - y = [0.75, -0.75] */
    gd_tensor *din[1];
    x = gc_f64(A, "2", (double[]){0, log(3.0)});
    gd_node *n = node_axis("softmax", 1, "", -1);
    gd_tensor *y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "2", (double[]){1, 0}), 1, din);
    expect_vals(din[0], (double[]){0.1875, -0.1875}, 2);
    n = node_axis("log_softmax", 1, "", -1);
    y = fwd(n, &x);
    vjp(n, &x, y, gc_f64(A, "2", (double[]){1, 0}), 1, din);
    expect_vals(din[0], (double[]){0.75, -0.75}, 2);
    vjp(n, &x, y, gc_f64(A, "2", (double[]){1, 0}), 0, din);
    ck_assert_ptr_null(din[0]);

    /* empty input */
    gd_shape s = gc_shape("0,3");
    x = gd_tensor_new(A, &s, GD_F64, 0);
    n = node_axis("softmax", 1, "", -1);
    y = fwd(n, &x);
    expect_shape(y, "0,3");
    vjp(n, &x, y, y, 1, din);
    expect_shape(din[0], "0,3");
}
END_TEST

/* A slice dominated by its maximum (difftest seed 1201 case 24404): x =
 * [-1.3498588075760032, -20.085536923187668] has p = [1 - 7.3e-9, 7.3e-9].
 * log(s) for s = 1 + 7.3e-9 and dy - p * sum(dy) with dy of 1e15 lose 1e-8
 * of relative precision; log1p of the other terms and the others' share
 * keep every digit (A8). Expected values: mpmath at 400 bits from the exact
 * x (tolerance 1e-13, the old rules were off by 1e-8). Both layouts: the
 * slice contiguous (axis -1) and strided (axis 0 of [2, 2]). */
START_TEST(test_softmax_dominated) {
    static const double xv[2] = {-1.3498588075760032, -20.085536923187668}, dyv[2] = {-1.3237e15, 0.0299};
    static const double ls_y[2] = {-7.297907897424058e-09, -18.735678122909572};
    static const double ls_dx[2] = {-9660240.678470451, 9660240.678470451};
    static const double sm_y[2] = {0.9999999927020922, 7.297907870794328e-09};
    static const double sm_dx[2] = {-9660240.578070905, 9660240.578070905};
    for (int strided = 0; strided < 2; strided++) {
        /* strided: [[x0, 0], [x1, 0]] along axis 0, the first column checked */
        gd_tensor *x = strided ? gc_f64(A, "2,2", (double[]){xv[0], 0, xv[1], 0}) : gc_f64(A, "2", xv);
        gd_tensor *dy = strided ? gc_f64(A, "2,2", (double[]){dyv[0], 1, dyv[1], 1}) : gc_f64(A, "2", dyv), *din[1];
        for (int is_log = 0; is_log < 2; is_log++) {
            gd_node *n = node_axis(is_log ? "log_softmax" : "softmax", 1, strided ? "0" : "-1", -1);
            gd_tensor *y = fwd(n, &x);
            vjp(n, &x, y, dy, 1, din);
            double got_y[2], got_dx[2];
            for (int j = 0; j < 2; j++)
                got_y[j] = gd_f64(y)[j * (1 + strided)], got_dx[j] = gd_f64(din[0])[j * (1 + strided)];
            gd_tensor *ty = gc_f64(A, "2", got_y), *tdx = gc_f64(A, "2", got_dx);
            expect_rel(is_log ? "log_softmax y" : "softmax y", ty, is_log ? ls_y : sm_y, 2, 1e-13);
            expect_rel(is_log ? "log_softmax dx" : "softmax dx", tdx, is_log ? ls_dx : sm_dx, 2, 1e-13);
            if (strided) /* the other column [0, 0]: p = 1/2 each */
                expect_vals(gc_f64(A, "2", (double[]){gd_f64(din[0])[1], gd_f64(din[0])[3]}),
                            (double[]){0, 0}, 2);
        }
    }
    /* softmax_cross_entropy of the same row, label 0 (and probabilities
     * [1, 0]), dout 3: loss -y0, dlogits 3 * (p - onehot), dlabels -3 * y */
    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    gd_tensor *in[2] = {gc_f64(A, "1,2", xv), gc_i64(A, "1", (int64_t[]){0})}, *din[2];
    static const double dz[2] = {-2.1893723612382982e-08, 2.1893723612382982e-08};
    for (int probs = 0; probs < 2; probs++) {
        if (probs) in[1] = gc_f64(A, "1,2", (double[]){1, 0});
        gd_tensor *y = fwd(n, in);
        expect_rel("sce loss", y, (double[]){7.297907897424058e-09}, 1, 1e-13);
        vjp(n, in, y, gc_f64(A, "", (double[]){3}), probs ? 3 : 1, din);
        expect_rel("sce dlogits", din[0], dz, 2, 1e-13);
        if (probs) expect_rel("sce dlabels", din[1], (double[]){2.189372369227217e-08, 56.20703436872872}, 2, 1e-13);
    }
}
END_TEST

START_TEST(test_softmax_errors) {
    gd_error err;
    gd_tensor *x = gc_f64(A, "2,2", (double[]){1, 2, 3, 4});
    ck_assert_int_eq(fwd_err(node_axis("softmax", 1, "2", -1), &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].axis");
    ck_assert_int_eq(fwd_err(node_axis("log_softmax", 1, "-3", -1), &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_int_eq(fwd_err(node_axis("softmax", 1, "[0]", -1), &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_ptr_nonnull(strstr(err.message, "single integer"));
    x = gc_f64(A, "", (double[]){1});
    ck_assert_int_eq(fwd_err(node_axis("softmax", 1, "1", -1), &x, &err), GD_E_INVALID_ATTRIBUTE);

    gd_meta in = {GD_F64, {.rank = -1}}, out;
    ck_assert_int_eq(infer(node_axis("softmax", 1, "5", -1), &in, 0, &out, &err), GD_OK);
    ck_assert_int_lt(out.shape.rank, 0);
}
END_TEST

/* ---------------------------------------------------------------------------
 * softmax_cross_entropy */

START_TEST(test_sce_gradcheck) {
    gc_rng r = {31};
    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    /* int64 class indices: only the logits get a gradient */
    gd_tensor *in[2] = {gc_rand(A, &r, "4,5", -3, 3), gc_i64(A, "4", (int64_t[]){0, 4, 2, 2})};
    ck_assert_double_le(gc_check(A, &r, n, in, 1), GC_TOL);
    /* probabilities (normalised rows, then arbitrary nonnegative rows): both inputs */
    gd_tensor *q = gc_rand(A, &r, "4,5", 0.1, 1);
    for (int i = 0; i < 4; i++) {
        double s = 0;
        for (int j = 0; j < 5; j++) s += gd_f64(q)[i * 5 + j];
        for (int j = 0; j < 5; j++) gd_f64(q)[i * 5 + j] /= s;
    }
    in[1] = q;
    ck_assert_double_le(gc_check(A, &r, n, in, 3), GC_TOL);
    in[1] = gc_rand(A, &r, "4,5", 0, 2);
    ck_assert_double_le(gc_check(A, &r, n, in, 3), GC_TOL);
    /* a bigger batch, as in the MLP benchmark */
    in[0] = gc_rand(A, &r, "16,10", -5, 5);
    in[1] = gd_tensor_new(A, &(gd_shape){1, {16}}, GD_I64, 0);
    for (int i = 0; i < 16; i++) gd_i64(in[1])[i] = (int64_t)(gc_next(&r) % 10);
    ck_assert_double_le(gc_check(A, &r, n, in, 1), GC_TOL);
}
END_TEST

START_TEST(test_sce_values) {
    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    const double lse = log(exp(1) + exp(2) + exp(3));
    gd_tensor *in[2] = {gc_f64(A, "2,3", (double[]){1, 2, 3, 1, 2, 3}), gc_i64(A, "2", (int64_t[]){2, 0})};
    gd_tensor *y = fwd(n, in);
    expect_shape(y, "");
    expect_vals(y, (double[]){((lse - 3) + (lse - 1)) / 2}, 1);
    /* the same as one-hot probabilities, and with int64 logits */
    in[1] = gc_f64(A, "2,3", (double[]){0, 0, 1, 1, 0, 0});
    expect_vals(fwd(n, in), (double[]){((lse - 3) + (lse - 1)) / 2}, 1);
    in[0] = gc_i64(A, "2,3", (int64_t[]){1, 2, 3, 1, 2, 3});
    in[1] = gc_i64(A, "2", (int64_t[]){2, 0});
    expect_vals(fwd(n, in), (double[]){((lse - 3) + (lse - 1)) / 2}, 1);
    /* int64 one-hot rows act as probabilities */
    in[1] = gc_i64(A, "2,3", (int64_t[]){0, 0, 1, 1, 0, 0});
    expect_vals(fwd(n, in), (double[]){((lse - 3) + (lse - 1)) / 2}, 1);

    /* no overflow for large logits */
    in[0] = gc_f64(A, "1,2", (double[]){1000, 0});
    in[1] = gc_i64(A, "1", (int64_t[]){1});
    expect_vals(fwd(n, in), (double[]){1000}, 1);
    in[1] = gc_i64(A, "1", (int64_t[]){0});
    expect_vals(fwd(n, in), (double[]){0}, 1);

    /* N = 0: the mean of nothing is NaN */
    gd_shape s0 = gc_shape("0,3"), s1 = gc_shape("0");
    in[0] = gd_tensor_new(A, &s0, GD_F64, 0);
    in[1] = gd_tensor_new(A, &s1, GD_I64, 0);
    expect_vals(fwd(n, in), (double[]){NAN}, 1);
}
END_TEST

START_TEST(test_sce_backward_values) {
    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    gd_tensor *din[2];
    /* logits [[0, 0]], label 0, dout 2: (softmax - onehot) * 2 / 1 = [-1, 1] */
    gd_tensor *in[2] = {gc_f64(A, "1,2", (double[]){0, 0}), gc_i64(A, "1", (int64_t[]){0})};
    gd_tensor *y = fwd(n, in);
    expect_vals(y, (double[]){log(2.0)}, 1);
    vjp(n, in, y, gc_f64(A, "", (double[]){2}), 3, din);
    expect_shape(din[0], "1,2");
    expect_vals(din[0], (double[]){-1, 1}, 2);
    ck_assert_ptr_null(din[1]); /* int64 labels never receive gradient */

    /* probabilities [[0.5, 0.5]]: dlogits 0, dlabels = -log_softmax / N = [log 2, log 2] */
    in[1] = gc_f64(A, "1,2", (double[]){0.5, 0.5});
    y = fwd(n, in);
    vjp(n, in, y, gc_f64(A, "", (double[]){1}), 3, din);
    expect_vals(din[0], (double[]){0, 0}, 2);
    expect_vals(din[1], (double[]){log(2.0), log(2.0)}, 2);
    vjp(n, in, y, gc_f64(A, "", (double[]){1}), 2, din);
    ck_assert_ptr_null(din[0]);
    expect_vals(din[1], (double[]){log(2.0), log(2.0)}, 2);

    /* batch of 2 divides by N */
    in[0] = gc_f64(A, "2,2", (double[]){0, 0, 0, 0});
    in[1] = gc_i64(A, "2", (int64_t[]){1, 0});
    y = fwd(n, in);
    vjp(n, in, y, gc_f64(A, "", (double[]){1}), 1, din);
    expect_vals(din[0], (double[]){0.25, -0.25, -0.25, 0.25}, 4);
}
END_TEST

/* ---------------------------------------------------------------------------
 * sigmoid_cross_entropy (A6), against PyTorch 1.13's
 * binary_cross_entropy_with_logits (float64, mean reduction, dout 2, labels
 * expanded to the logits' shape; printed by repr()). */

START_TEST(test_bce_values_torch) {
    gd_node *n = gc_node(A, "sigmoid_cross_entropy", 2);
    gd_tensor *din[2];
    /* |z| = 1000: the stable form, where a naive log(sigmoid) overflows */
    gd_tensor *in[2] = {gc_f64(A, "2,3", (double[]){-2, 0.5, 3, 1e3, -1e3, 0}),
                        gc_f64(A, "2,3", (double[]){0, 1, 1, 1, 0, 0.25})};
    gd_tensor *y = fwd(n, in);
    expect_shape(y, "");
    expect_vals(y, (double[]){0.22378992122612776}, 1);
    vjp(n, in, y, gc_f64(A, "", (double[]){2}), 3, din);
    expect_shape(din[0], "2,3");
    expect_vals(din[0], (double[]){0.03973430734070585, -0.1258468895993818, -0.015808624392522213, 0.0, 0.0,
                                   0.08333333333333333}, 6);
    expect_vals(din[1], (double[]){0.6666666666666666, -0.16666666666666666, -1.0, -333.3333333333333,
                                   333.3333333333333, -0.0}, 6);
    /* labels [3] broadcast to logits [2, 3]: the labels' gradient, summed
     * down as the engine does, is PyTorch's through expand */
    in[0] = gc_f64(A, "2,3", (double[]){-2, 0.5, 3, 40, -40, 0});
    in[1] = gc_f64(A, "3", (double[]){0.25, 1, 0});
    y = fwd(n, in);
    expect_vals(y, (double[]){12.473789921226128}, 1);
    vjp(n, in, y, gc_f64(A, "", (double[]){2}), 3, din);
    expect_vals(din[0], (double[]){-0.04359902599262749, -0.1258468895993818, 0.31752470894081114, 0.25,
                                   -0.3333333333333333, 0.16666666666666666}, 6);
    expect_shape(din[1], "2,3");
    double dy[3];
    for (int j = 0; j < 3; j++) dy[j] = gd_f64(din[1])[j] + gd_f64(din[1])[3 + j];
    expect_vals(gc_f64(A, "3", dy), (double[]){-12.666666666666668, 13.166666666666668, -1.0}, 3);
    /* no elements: the mean of nothing is NaN */
    gd_shape s0 = gc_shape("0");
    in[0] = gd_tensor_new(A, &s0, GD_F64, 0);
    in[1] = gd_tensor_new(A, &s0, GD_F64, 0);
    expect_vals(fwd(n, in), (double[]){NAN}, 1);
}
END_TEST

START_TEST(test_bce_gradcheck) {
    gc_rng r = {47};
    gd_node *n = gc_node(A, "sigmoid_cross_entropy", 2);
    gd_tensor *in[2] = {gc_rand(A, &r, "4,3", -4, 4), gc_rand(A, &r, "4,3", 0, 1)};
    ck_assert_double_le(gc_check(A, &r, n, in, 3), GC_TOL);
    in[1] = gc_rand(A, &r, "3", 0, 1); /* broadcast labels */
    ck_assert_double_le(gc_check(A, &r, n, in, 3), GC_TOL);
    in[1] = gc_rand(A, &r, "4,1", -1, 2); /* not range-checked, as PyTorch */
    ck_assert_double_le(gc_check(A, &r, n, in, 3), GC_TOL);
    in[0] = gc_rand(A, &r, "", -3, 3);
    in[1] = gc_rand(A, &r, "", 0, 1);
    ck_assert_double_le(gc_check(A, &r, n, in, 3), GC_TOL);
}
END_TEST

START_TEST(test_bce_errors) {
    gd_node *n = gc_node(A, "sigmoid_cross_entropy", 2);
    n->name = "bce";
    gd_error err;
    gd_meta out, m[2] = {{.dtype = GD_F64, .shape = gc_shape("3")}, {.dtype = GD_F64, .shape = gc_shape("4,3")}};
    /* labels larger than the logits do not broadcast to them */
    ck_assert_int_eq(infer(n, m, 0, &out, &err), GD_E_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.message, "'bce'"));
    ck_assert_ptr_nonnull(strstr(err.message, "do not broadcast to the shape [3]"));
    m[1].shape = gc_shape("2");
    ck_assert_int_eq(infer(n, m, 0, &out, &err), GD_E_SHAPE_MISMATCH);
    m[1].shape.rank = -1; /* unknown: not an error yet */
    ck_assert_int_eq(infer(n, m, 0, &out, &err), GD_OK);
    ck_assert_int_eq(out.shape.rank, 0);
}
END_TEST

START_TEST(test_sce_errors) {
    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    n->name = "loss";
    n->index = 6;
    gd_error err;
    gd_tensor *in[2] = {gc_f64(A, "2,3", (double[]){1, 2, 3, 1, 2, 3}), gc_i64(A, "2", (int64_t[]){0, 3})};
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_INDEX_OUT_OF_RANGE);
    ck_assert_str_eq(err.at, "$.graph.nodes[6].inputs[1]");
    ck_assert_ptr_nonnull(strstr(err.message, "'loss'"));
    ck_assert_ptr_nonnull(strstr(err.message, "label 3 at position 1"));
    in[1] = gc_i64(A, "2", (int64_t[]){-1, 0});
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_INDEX_OUT_OF_RANGE);
    ck_assert_ptr_nonnull(strstr(err.message, "label -1 at position 0"));

    /* shapes and dtypes */
    in[0] = gc_f64(A, "3", (double[]){1, 2, 3});
    in[1] = gc_i64(A, "3", (int64_t[]){0, 1, 2});
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.message, "[N, C]"));
    in[0] = gc_f64(A, "2,3", (double[]){1, 2, 3, 1, 2, 3});
    in[1] = gc_i64(A, "3", (int64_t[]){0, 1, 2});
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.message, "[2, 3]"));
    in[1] = gc_f64(A, "2", (double[]){0, 1});
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_DTYPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.message, "int64"));
    in[1] = gc_f64(A, "2,4", (double[]){0, 1, 0, 0, 0, 0, 1, 0});
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_SHAPE_MISMATCH);
    in[1] = gc_f64(A, "2,3,1", (double[]){0, 1, 0, 0, 0, 1});
    ck_assert_int_eq(fwd_err(n, in, &err), GD_E_SHAPE_MISMATCH);

    /* partially unknown shapes: checks what is known, result is a scalar */
    gd_meta m[2] = {{GD_F64, {.rank = -1}}, {GD_I64, {1, {4}}}}, out;
    ck_assert_int_eq(infer(n, m, 0, &out, &err), GD_OK);
    ck_assert_int_eq(out.shape.rank, 0);
    m[1].dtype = GD_F64;
    ck_assert_int_eq(infer(n, m, 0, &out, &err), GD_E_DTYPE_MISMATCH);
    m[0] = (gd_meta){GD_F64, {2, {4, 3}}};
    m[1] = (gd_meta){GD_F64, {.rank = -1}};
    ck_assert_int_eq(infer(n, m, 0, &out, &err), GD_OK);
}
END_TEST

/* ---------------------------------------------------------------------------
 * one_hot */

static gd_node *one_hot(int64_t depth, int given) {
    gd_node *n = gc_node(A, "one_hot", 1);
    n->attrs->depth.given = given;
    n->attrs->depth.n = 1;
    n->attrs->depth.v[0] = depth;
    return n;
}

START_TEST(test_one_hot) {
    gd_tensor *x = gc_i64(A, "2", (int64_t[]){0, 2});
    gd_tensor *y = fwd(one_hot(3, 1), &x);
    expect_shape(y, "2,3");
    expect_vals(y, (double[]){1, 0, 0, 0, 0, 1}, 6);
    x = gc_i64(A, "2,1", (int64_t[]){1, 0});
    y = fwd(one_hot(2, 1), &x);
    expect_shape(y, "2,1,2");
    expect_vals(y, (double[]){0, 1, 1, 0}, 4);
    x = gc_i64(A, "", (int64_t[]){1});
    expect_vals(fwd(one_hot(2, 1), &x), (double[]){0, 1}, 2);
    /* depth 0 of no indices */
    gd_shape s = gc_shape("0");
    x = gd_tensor_new(A, &s, GD_I64, 0);
    expect_shape(fwd(one_hot(0, 1), &x), "0,0");
}
END_TEST

START_TEST(test_one_hot_errors) {
    gd_error err;
    gd_node *n = one_hot(3, 1);
    n->index = 2;
    gd_tensor *x = gc_i64(A, "3", (int64_t[]){0, 3, 1});
    ck_assert_int_eq(fwd_err(n, &x, &err), GD_E_INDEX_OUT_OF_RANGE);
    ck_assert_ptr_nonnull(strstr(err.message, "index 3 at flat position 1"));
    ck_assert_str_eq(err.at, "$.graph.nodes[2].inputs[0]");
    x = gc_i64(A, "1", (int64_t[]){-1});
    ck_assert_int_eq(fwd_err(n, &x, &err), GD_E_INDEX_OUT_OF_RANGE);

    x = gc_f64(A, "2", (double[]){0, 1});
    ck_assert_int_eq(fwd_err(n, &x, &err), GD_E_DTYPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.message, "cast"));

    x = gc_i64(A, "2", (int64_t[]){0, 1});
    ck_assert_int_eq(fwd_err(one_hot(-1, 1), &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].depth");
    /* depth is an exact int64 (a non-integer never gets past the decoder) */
    ck_assert_int_eq(fwd_err(one_hot(INT64_MIN, 1), &x, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_ptr_nonnull(strstr(err.message, "got -9223372036854775808"));
    ck_assert_int_eq(fwd_err(one_hot(0, 0), &x, &err), GD_E_INVALID_ATTRIBUTE);

    /* the inferred size is checked before memory is spent */
    gd_meta in = {GD_I64, {1, {1000}}}, out;
    ck_assert_int_eq(infer(one_hot(1000, 1), &in, 100000, &out, &err), GD_E_TOO_LARGE);
    ck_assert_int_eq(infer(one_hot(9e15, 1), &in, 0, &out, &err), GD_E_TOO_LARGE);
    ck_assert_int_eq(infer(one_hot(100, 1), &in, 100000, &out, &err), GD_OK);
    in.shape = (gd_shape){8, {1, 1, 1, 1, 1, 1, 1, 1}};
    ck_assert_int_eq(infer(one_hot(2, 1), &in, 0, &out, &err), GD_E_INVALID_VALUE);
    in.shape.rank = -1;
    ck_assert_int_eq(infer(one_hot(2, 1), &in, 0, &out, &err), GD_OK);
    ck_assert_int_lt(out.shape.rank, 0);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Long inputs: reductions over more elements than one kernel chunk */

#define RED_CHUNK_TEST (1 << 20) /* ops_reduce.c's chunk length */

START_TEST(test_reduce_long) {
    const int64_t n = 2097200, at = 2097000;
    gd_shape s = gc_shape("2097200");
    gd_tensor *x = gd_tensor_new(A, &s, GD_F64, 1), *din[1];
    gd_f64(x)[at] = 3;
    gd_node *mx = node_axis("max", 1, "", -1);
    gd_tensor *y = fwd(mx, &x);
    expect_vals(y, (double[]){3}, 1);
    vjp(mx, &x, y, ones_like(y), 1, din);
    ck_assert_double_eq(gd_f64(din[0])[at], 1);
    ck_assert_double_eq(gd_f64(din[0])[0], 0);
    expect_vals(fwd(node_axis("logsumexp", 1, "0", -1), &x), (double[]){log((double)(n - 1) + exp(3.0))}, 1);
    expect_idx(fwd(node_axis("argmax", 1, "", -1), &x), (int64_t[]){at}, 1);
    /* a long run across the result: [2, n/2] over axis 0 */
    s = gc_shape("2,1048600");
    gd_tensor *x2 = gd_tensor_new(A, &s, GD_F64, 1);
    gd_f64(x2)[1048600 + 1048590] = 4;
    y = fwd(node_axis("max", 1, "0", 0), &x2);
    ck_assert_double_eq(gd_f64(y)[1048590], 4);
    ck_assert_double_eq(gd_f64(y)[1048590 - RED_CHUNK_TEST], 0);

    gd_f64(x)[1100000] = NAN;
    expect_vals(fwd(node_axis("min", 1, "", -1), &x), (double[]){NAN}, 1);
    expect_idx(fwd(node_axis("argmin", 1, "", -1), &x), (int64_t[]){1100000}, 1);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Cancellation: long kernels stop at their next poll */

static gd_cancel cancelled;

static gd_err fwd_cancelled(gd_node *n, gd_tensor **in, gd_tensor **out) {
    gd_meta meta[2], om;
    gd_error err;
    gd_limits lim = {0};
    for (int i = 0; i < n->n_in; i++) meta[i] = (gd_meta){in[i]->dtype, in[i]->shape};
    ck_assert_int_eq(n->op->infer(n, meta, &lim, &om, &err), GD_OK);
    *out = gd_tensor_new(A, &om.shape, om.dtype, 0);
    gd_kctx c = {.arena = A, .cancel = &cancelled, .err = &err, .node = n};
    atomic_store(&cancelled.cancelled, 1);
    int rc = n->op->forward(&c, (const gd_tensor *const *)in, *out);
    atomic_store(&cancelled.cancelled, 0);
    return (gd_err)rc;
}

static gd_err bwd_cancelled(gd_node *n, gd_tensor **in, gd_tensor *out, unsigned mask) {
    gd_error err;
    gd_tensor *din[2] = {0};
    int want[2] = {mask & 1, (mask >> 1) & 1};
    gd_kctx c = {.arena = A, .cancel = &cancelled, .err = &err, .node = n};
    atomic_store(&cancelled.cancelled, 1);
    int rc = n->op->backward(&c, (const gd_tensor *const *)in, out, ones_like(out), want, din);
    atomic_store(&cancelled.cancelled, 0);
    return (gd_err)rc;
}

START_TEST(test_cancel) {
    gd_shape s = gc_shape("2097200");
    gd_tensor *x = gd_tensor_new(A, &s, GD_F64, 1), *out;
    static const char *const ops[] = {"max", "logsumexp", "sum", "mean", "softmax", "log_softmax"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        gd_node *n = node_axis(ops[k], 1, "", -1);
        /* sum and mean are gd_sum_to, which polls too (issue 9 row 6) */
        ck_assert_int_eq(fwd_cancelled(n, &x, &out), GD_E_DEADLINE_EXCEEDED);
        ck_assert_int_eq(bwd_cancelled(n, &x, fwd(n, &x), 1), GD_E_DEADLINE_EXCEEDED);
    }
    ck_assert_int_eq(fwd_cancelled(node_axis("argmax", 1, "", -1), &x, &out), GD_E_DEADLINE_EXCEEDED);
    /* Over a small axis the result is most of the input: the passes over
     * it (the initial fill, logsumexp's fix-ups) stop after one piece too,
     * leaving the rest of the result as it was (here NaN). */
    const int64_t rows = 3 * GD_POLL_ELEMS;
    gd_shape s2 = {.rank = 2, .dim = {rows, 2}};
    gd_tensor *x2 = gd_tensor_new(A, &s2, GD_F64, 1);
    static const char *const kept_ops[] = {"max", "min", "logsumexp"};
    for (size_t k = 0; k < sizeof kept_ops / sizeof kept_ops[0]; k++) {
        gd_node *n = node_axis(kept_ops[k], 1, "1", -1);
        gd_meta meta = {GD_F64, s2}, om;
        gd_error err;
        gd_limits lim = {0};
        ck_assert_int_eq(n->op->infer(n, &meta, &lim, &om, &err), GD_OK);
        out = gd_tensor_new(A, &om.shape, om.dtype, 0);
        for (int64_t i = 0; i < out->n; i++) gd_f64(out)[i] = NAN;
        gd_kctx c = {.arena = A, .cancel = &cancelled, .err = &err, .node = n};
        atomic_store(&cancelled.cancelled, 1);
        ck_assert_int_eq(n->op->forward(&c, (const gd_tensor *const *)&x2, out), GD_E_DEADLINE_EXCEEDED);
        atomic_store(&cancelled.cancelled, 0);
        ck_assert_msg(isnan(gd_f64(out)[rows - 1]), "%s: the whole result was written", kept_ops[k]);
    }

    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    gd_shape sz = gc_shape("4096,128"), sy = gc_shape("4096");
    gd_tensor *in[2] = {gd_tensor_new(A, &sz, GD_F64, 1), gd_tensor_new(A, &sy, GD_I64, 1)};
    ck_assert_int_eq(fwd_cancelled(n, in, &out), GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(bwd_cancelled(n, in, fwd(n, in), 1), GD_E_DEADLINE_EXCEEDED);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Kernels past the memory limit, and kernels called without inference */

/* A kernel call whose scratch and results come from a 1 KB arena. */
static gd_err call_tight(gd_node *n, gd_tensor **in, gd_tensor *out, int backward) {
    gd_arena *tight = gd_arena_new(1024);
    gd_error err;
    gd_tensor *din[2] = {0};
    int want[2] = {1, 1};
    gd_kctx c = {.arena = tight, .err = &err, .node = n};
    int rc = backward ? n->op->backward(&c, (const gd_tensor *const *)in, out, ones_like(out), want, din)
                      : n->op->forward(&c, (const gd_tensor *const *)in, out);
    gd_arena_free(tight);
    return (gd_err)rc;
}

START_TEST(test_kernel_limits) {
    gc_rng r = {5};
    gd_tensor *x = gc_rand(A, &r, "40,50", -1, 1), *y;
    static const char *const ops[] = {"sum", "mean", "max", "logsumexp", "softmax", "log_softmax"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        gd_node *n = node_axis(ops[k], 1, "0", -1);
        y = fwd(n, &x);
        ck_assert_int_eq(call_tight(n, &x, y, 1), GD_E_TOO_LARGE);
    }
    /* forward scratch: logsumexp's sums, softmax's column rows, argmax's best values */
    x = gc_rand(A, &r, "2,400", -1, 1);
    ck_assert_int_eq(call_tight(node_axis("logsumexp", 1, "0", -1), &x, fwd(node_axis("sum", 1, "0", -1), &x), 0),
                     GD_E_TOO_LARGE);
    ck_assert_int_eq(call_tight(node_axis("softmax", 1, "0", -1), &x, gc_rand(A, &r, "2,400", 0, 1), 0),
                     GD_E_TOO_LARGE);
    y = fwd(node_axis("argmax", 1, "0", -1), &x);
    ck_assert_int_eq(call_tight(node_axis("argmax", 1, "0", -1), &x, y, 0), GD_E_TOO_LARGE);

    gd_node *n = gc_node(A, "softmax_cross_entropy", 2);
    gd_tensor *in[2] = {gc_rand(A, &r, "40,50", -1, 1), gc_rand(A, &r, "40,50", 0, 1)};
    y = fwd(n, in);
    ck_assert_int_eq(call_tight(n, in, y, 1), GD_E_TOO_LARGE);
    in[0] = gc_i64(A, "1,200", (int64_t[200]){0}); /* int64 logits need a float64 copy */
    in[1] = gc_i64(A, "1", (int64_t[]){0});
    ck_assert_int_eq(call_tight(n, in, y, 0), GD_E_TOO_LARGE);

    /* never reinterpret doubles as indices, even when inference was skipped */
    gd_error err;
    gd_kctx c = {.arena = A, .err = &err, .node = n};
    in[0] = gc_f64(A, "1,2", (double[]){0, 0});
    in[1] = gc_f64(A, "1", (double[]){1});
    ck_assert_int_eq(n->op->forward(&c, (const gd_tensor *const *)in, y), GD_E_DTYPE_MISMATCH);
    gd_node *oh = one_hot(2, 1);
    c.node = oh;
    y = gc_rand(A, &r, "1,2", 0, 1);
    ck_assert_int_eq(oh->op->forward(&c, (const gd_tensor *const *)&in[1], y), GD_E_DTYPE_MISMATCH);
}
END_TEST

/* ---------------------------------------------------------------------------
 * The table rows as /v1/ops and the diagnostics read them */

START_TEST(test_rows) {
    static const char *const all[] = {"sum",     "mean",        "max",         "min",
                                      "logsumexp", "argmax",    "argmin",      "softmax",
                                      "log_softmax", "softmax_cross_entropy", "one_hot"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const gd_op_def *d = gd_op_find(all[i]);
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(d->doc);
        ck_assert_int_eq(d->differentiable, d->backward != NULL);
        ck_assert_int_eq(d->zero_cause, (!strcmp(all[i], "max") || !strcmp(all[i], "min")) ? GD_ZERO_MASK : GD_ZERO_VALUE);
    }
    ck_assert(gd_op_find("argmax")->flags & GD_OPF_MAKES_INT);
    ck_assert(!gd_op_find("argmin")->differentiable);
    ck_assert(!gd_op_find("one_hot")->differentiable);
    ck_assert(gd_op_find("softmax_cross_entropy")->flags & GD_OPF_INT_OK);
    ck_assert_str_eq(gd_op_attr(gd_op_find("sum"), "keepdims")->dflt, "false");
    ck_assert_str_eq(gd_op_attr(gd_op_find("mean"), "axis")->dflt, "null");
    ck_assert_str_eq(gd_op_attr(gd_op_find("softmax"), "axis")->dflt, "-1");
    ck_assert_ptr_null(gd_op_attr(gd_op_find("one_hot"), "depth")->dflt);
    ck_assert_ptr_null(gd_op_attr(gd_op_find("argmax"), "keepdims"));
}
END_TEST

Suite *suite_ops_reduce(void) {
    Suite *s = suite_create("ops_reduce");
    TCase *tc = tcase_create("reduce");
    tcase_set_timeout(tc, 30); /* gradchecks and test_reduce_long: ~0.2 s here, x4 under ASan, more under load */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_reduce_gradcheck, 0, N_RED_OPS * N_FORMS * 2);
    tcase_add_test(tc, test_reduce_scalar_and_shapes);
    tcase_add_test(tc, test_reduce_values);
    tcase_add_test(tc, test_reduce_backward_values);
    tcase_add_test(tc, test_reduce_ties);
    tcase_add_test(tc, test_reduce_nan);
    tcase_add_test(tc, test_extreme_magnitudes);
    tcase_add_test(tc, test_masked_gradients_multiply);
    tcase_add_test(tc, test_reduce_empty);
    tcase_add_test(tc, test_sum_signed_zero);
    tcase_add_test(tc, test_logsumexp_stable);
    tcase_add_test(tc, test_reduce_attr_errors);
    tcase_add_test(tc, test_argmax_values);
    tcase_add_test(tc, test_argmax_errors);
    suite_add_tcase(s, tc);

    TCase *nn = tcase_create("nn");
    tcase_set_timeout(nn, 60); /* test_cancel runs 2M-element kernels: 0.5 s here, hit the 4 s default under load */
    tcase_add_checked_fixture(nn, setup, teardown);
    tcase_add_loop_test(nn, test_softmax_gradcheck, 0, N_SM_CASES * 2);
    tcase_add_test(nn, test_softmax_values);
    tcase_add_test(nn, test_softmax_errors);
    tcase_add_test(nn, test_softmax_dominated);
    tcase_add_test(nn, test_sce_gradcheck);
    tcase_add_test(nn, test_sce_values);
    tcase_add_test(nn, test_sce_backward_values);
    tcase_add_test(nn, test_sce_errors);
    tcase_add_test(nn, test_bce_values_torch);
    tcase_add_test(nn, test_bce_gradcheck);
    tcase_add_test(nn, test_bce_errors);
    tcase_add_test(nn, test_one_hot);
    tcase_add_test(nn, test_one_hot_errors);
    tcase_add_test(nn, test_rows);
    tcase_add_test(nn, test_cancel);
    tcase_add_test(nn, test_kernel_limits);
    tcase_add_test(tc, test_reduce_long);
    suite_add_tcase(s, nn);
    return s;
}
