/* test_ops_elementwise.c - the elementwise family (core/ops_elementwise.c):
 * gradients against finite differences (broadcast shapes included, kinks
 * avoided), forward values against hand-computed NumPy results (NaN, ties,
 * rounding, casts), the PyTorch subgradients at kinks and ties, and every
 * attribute, shape and runtime error path. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "tests.h"

static gd_arena *ar;
static gc_rng rng;

static void setup(void) {
    ar = gd_arena_new(0);
    rng.s = 20240611;
}
static void teardown(void) { gd_arena_free(ar); }

/* Forward through infer + kernel; the test fails on an error. */
static gd_tensor *fwd(gd_node *n, gd_tensor *a, gd_tensor *b) {
    gd_tensor *in[2] = {a, b}, *out = NULL;
    gd_error err;
    int rc = gc_forward(ar, n, in, &out, &err);
    ck_assert_msg(rc == 0, "%s forward failed: %s", n->op->name, err.message);
    return out;
}

static gd_tensor *fwd1(const char *op, gd_tensor *x) { return fwd(gc_node(ar, op, 1), x, NULL); }
static gd_tensor *fwd2(const char *op, gd_tensor *a, gd_tensor *b) { return fwd(gc_node(ar, op, 2), a, b); }

/* Backward with a cotangent of ones; din[0..1] set for the wanted inputs. */
static void bwd_ones(gd_node *n, gd_tensor *a, gd_tensor *b, gd_tensor *out, int wa, int wb, gd_tensor **din) {
    gd_tensor *dout = gd_tensor_new(ar, &out->shape, GD_F64, 0);
    for (int64_t i = 0; i < dout->n; i++) gd_f64(dout)[i] = 1.0;
    const gd_tensor *in[2] = {a, b};
    int want[2] = {wa, wb};
    gd_error err;
    gd_kctx c = {.arena = ar, .err = &err, .node = n};
    din[0] = din[1] = NULL;
    int rc = n->op->backward(&c, in, out, dout, want, din);
    ck_assert_msg(rc == 0, "%s backward failed: %s", n->op->name, err.message);
}

static double at(const gd_tensor *t, int64_t i) { return gd_f64(t)[i]; }

static gd_tensor *grad1(gd_node *n, gd_tensor *x);
static gd_node *cast_node(gd_dtype t);

#define ASSERT_VALUES(t, ...)                                                                        \
    do {                                                                                             \
        const double want_[] = {__VA_ARGS__};                                                        \
        ck_assert_int_eq((t)->n, (int64_t)(sizeof want_ / sizeof want_[0]));                         \
        for (int64_t i_ = 0; i_ < (t)->n; i_++) {                                                    \
            double got_ = gd_f64(t)[i_];                                                             \
            if (isnan(want_[i_])) ck_assert_msg(isnan(got_), "element %lld: got %g, want NaN",       \
                                                (long long)i_, got_);                                \
            else ck_assert_msg(got_ == want_[i_], "element %lld: got %.17g, want %.17g",             \
                               (long long)i_, got_, want_[i_]);                                      \
        }                                                                                            \
    } while (0)

/* ------------------------------------------------------------------------- */
/* Gradient checks */

typedef struct unary_case {
    const char *op;
    double lo, hi;
    int kink; /* stay 0.05 away from 0 */
} unary_case;

START_TEST(test_gc_unary) {
    static const unary_case cases[] = {
        {"neg", -3, 3, 0},        {"exp", -3, 3, 0},      {"log", 0.2, 4, 0},     {"log1p", -0.7, 3, 0},
        {"expm1", -3, 3, 0},      {"sqrt", 0.2, 4, 0},    {"square", -3, 3, 0},   {"abs", -3, 3, 1},
        {"sin", -4, 4, 0},        {"cos", -4, 4, 0},      {"tanh", -3, 3, 0},     {"sigmoid", -6, 6, 0},
        {"relu", -3, 3, 1},       {"softplus", -6, 6, 0}, {"reciprocal", 0.3, 3, 0}, {"leaky_relu", -3, 3, 1},
    };
    static const char *shapes[] = {"3,4", "", "7"};
    const double zero = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            gd_tensor *x = gc_rand_away(ar, &rng, shapes[s], cases[k].lo, cases[k].hi, &zero, cases[k].kink, 0.05);
            gd_node *n = gc_node(ar, cases[k].op, 1);
            double err = gc_check(ar, &rng, n, &x, 1);
            ck_assert_msg(err <= GC_TOL, "%s on [%s]: error %g", cases[k].op, shapes[s], err);
        }
    /* reciprocal also on negative inputs. */
    gd_tensor *x = gc_rand(ar, &rng, "3,3", -3, -0.3);
    ck_assert_double_le(gc_check(ar, &rng, gc_node(ar, "reciprocal", 1), &x, 1), GC_TOL);
}
END_TEST

START_TEST(test_gc_leaky_relu_alpha) {
    const double zero = 0;
    gd_node *n = gc_node(ar, "leaky_relu", 1);
    n->attrs->alpha.given = 1;
    n->attrs->alpha.v = 0.2;
    gd_tensor *x = gc_rand_away(ar, &rng, "4,5", -3, 3, &zero, 1, 0.05);
    ck_assert_double_le(gc_check(ar, &rng, n, &x, 1), GC_TOL);
    n->attrs->alpha.v = -1.5;
    ck_assert_double_le(gc_check(ar, &rng, n, &x, 1), GC_TOL);
}
END_TEST

START_TEST(test_gc_clip) {
    const double bounds[2] = {-0.5, 0.7};
    /* {min given, max given} */
    static const int forms[][2] = {{1, 1}, {1, 0}, {0, 1}, {0, 0}};
    for (size_t f = 0; f < 4; f++) {
        gd_node *n = gc_node(ar, "clip", 1);
        n->attrs->min = (gd_num){forms[f][0], bounds[0]};
        n->attrs->max = (gd_num){forms[f][1], bounds[1]};
        gd_tensor *x = gc_rand_away(ar, &rng, "5,4", -2, 2, bounds, 2, 0.05);
        double err = gc_check(ar, &rng, n, &x, 1);
        ck_assert_msg(err <= GC_TOL, "clip form %zu: error %g", f, err);
    }
    /* min > max: constant max, zero gradient; finite differences agree. */
    gd_node *n = gc_node(ar, "clip", 1);
    n->attrs->min = (gd_num){1, 1.0};
    n->attrs->max = (gd_num){1, -1.0};
    gd_tensor *x = gc_rand(ar, &rng, "6", -3, 3);
    ck_assert_double_le(gc_check(ar, &rng, n, &x, 1), GC_TOL);
}
END_TEST

typedef struct binary_case {
    const char *op;
    double alo, ahi, blo, bhi;
    double b_away; /* keep b this far from 0 (div) */
} binary_case;

START_TEST(test_gc_binary) {
    static const binary_case cases[] = {
        {"add", -2, 2, -2, 2, 0},     {"sub", -2, 2, -2, 2, 0},     {"mul", -2, 2, -2, 2, 0},
        {"div", -2, 2, -2, 2, 0.4},   {"pow", 0.4, 2.5, -2, 2, 0},  {"maximum", -2, 2, -2, 2, 0},
        {"minimum", -2, 2, -2, 2, 0},
    };
    static const char *shapes[][2] = {
        {"2,3", "2,3"}, {"2,3", "3"}, {"3", "2,3"}, {"4,1,3", "2,1"}, {"2,1", "4,1,3"},
        {"", "2,3"},    {"2,3", ""},  {"", ""},     {"2,1", "1,3"},
    };
    const double zero = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (unsigned mask = 1; mask <= 3; mask++) {
                const binary_case *bc = &cases[k];
                gd_tensor *in[2];
                in[0] = gc_rand(ar, &rng, shapes[s][0], bc->alo, bc->ahi);
                in[1] = gc_rand_away(ar, &rng, shapes[s][1], bc->blo, bc->bhi, &zero, bc->b_away > 0, bc->b_away);
                gd_node *n = gc_node(ar, bc->op, 2);
                double err = gc_check(ar, &rng, n, in, mask);
                ck_assert_msg(err <= GC_TOL, "%s on [%s] and [%s], mask %u: error %g", bc->op, shapes[s][0],
                              shapes[s][1], mask, err);
            }
}
END_TEST

/* Zero-element tensors: kernels touch nothing and return empty results.
 * (Kept out of gc_check, whose memcpy of an empty gradient passes NULL.) */
START_TEST(test_empty_tensors) {
    gd_tensor *e = gc_f64(ar, "2,0", NULL);
    gd_tensor *din[2];
    static const char *un[] = {"exp", "relu", "clip", "sqrt"};
    for (int k = 0; k < 4; k++) {
        gd_tensor *g = grad1(gc_node(ar, un[k], 1), e);
        ck_assert_int_eq(g->n, 0);
        ck_assert_int_eq(g->shape.rank, 2);
    }
    static const char *bin[] = {"add", "sub", "mul", "pow", "maximum"};
    for (int k = 0; k < 5; k++) {
        gd_node *n = gc_node(ar, bin[k], 2);
        gd_tensor *b = gc_f64(ar, "1", (double[]){2});
        gd_tensor *y = fwd(n, e, b);
        ck_assert_int_eq(y->n, 0);
        bwd_ones(n, e, b, y, 1, 1, din);
        ck_assert(din[0]->n == 0 && din[1]->n == 0);
        ck_assert(gd_shape_eq(&din[1]->shape, &y->shape));
    }
    ck_assert_int_eq(fwd(cast_node(GD_I64), e, NULL)->n, 0);
}
END_TEST

START_TEST(test_gc_cast_identity) {
    gd_node *n = gc_node(ar, "cast", 1);
    n->attrs->dtype = (gd_num){1, GD_F64};
    gd_tensor *x = gc_rand(ar, &rng, "3,4", -5, 5);
    ck_assert_double_le(gc_check(ar, &rng, n, &x, 1), GC_TOL);
    gd_tensor *y = fwd(n, x, NULL);
    ck_assert_int_eq(y->dtype, GD_F64);
    for (int64_t i = 0; i < x->n; i++) ck_assert(at(y, i) == at(x, i));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Forward values */

START_TEST(test_unary_values) {
    gd_tensor *x = gc_f64(ar, "4", (double[]){0, 1, -1, 2});
    ASSERT_VALUES(fwd1("neg", x), -0.0, -1, 1, -2);
    ASSERT_VALUES(fwd1("square", x), 0, 1, 1, 4);
    ASSERT_VALUES(fwd1("abs", x), 0, 1, 1, 2);
    ASSERT_VALUES(fwd1("relu", x), 0, 1, 0, 2);
    ASSERT_VALUES(fwd1("exp", gc_f64(ar, "", (double[]){0})), 1);
    ASSERT_VALUES(fwd1("softplus", gc_f64(ar, "", (double[]){0})), log(2.0));
    ASSERT_VALUES(fwd1("sigmoid", gc_f64(ar, "", (double[]){0})), 0.5);
    ck_assert_double_eq_tol(at(fwd1("tanh", gc_f64(ar, "", (double[]){1})), 0), 0.7615941559557649, 1e-15);
    ck_assert_double_eq_tol(at(fwd1("log1p", gc_f64(ar, "", (double[]){1e-20})), 0), 1e-20, 1e-35);
    ck_assert_double_eq_tol(at(fwd1("expm1", gc_f64(ar, "", (double[]){1e-20})), 0), 1e-20, 1e-35);
    ASSERT_VALUES(fwd1("reciprocal", gc_f64(ar, "3", (double[]){4, -0.5, 0})), 0.25, -2, INFINITY);
    ASSERT_VALUES(fwd1("sqrt", gc_f64(ar, "2", (double[]){9, 0})), 3, 0);
    ck_assert_double_eq_tol(at(fwd1("sin", gc_f64(ar, "", (double[]){M_PI / 2})), 0), 1, 1e-15);
    ck_assert_double_eq_tol(at(fwd1("cos", gc_f64(ar, "", (double[]){M_PI})), 0), -1, 1e-15);
}
END_TEST

/* NumPy domain rules: log/sqrt of negatives give NaN, no error; NaN propagates. */
START_TEST(test_unary_domain_and_nan) {
    ASSERT_VALUES(fwd1("log", gc_f64(ar, "3", (double[]){-1, 0, 1})), NAN, -INFINITY, 0);
    ASSERT_VALUES(fwd1("sqrt", gc_f64(ar, "1", (double[]){-4})), NAN);
    ASSERT_VALUES(fwd1("log1p", gc_f64(ar, "2", (double[]){-2, -1})), NAN, -INFINITY);
    static const char *ops[] = {"neg", "exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "sin", "cos",
                                "tanh", "sigmoid", "relu", "softplus", "reciprocal", "leaky_relu", "clip",
                                "round", "floor", "ceil", "sign"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        gd_tensor *y = fwd1(ops[k], gc_f64(ar, "", (double[]){NAN}));
        ck_assert_msg(isnan(at(y, 0)), "%s(NaN) = %g", ops[k], at(y, 0));
    }
    /* relu never returns -0. */
    gd_tensor *r = fwd1("relu", gc_f64(ar, "2", (double[]){-0.0, -3}));
    ck_assert(!signbit(at(r, 0)) && !signbit(at(r, 1)));
}
END_TEST

START_TEST(test_sigmoid_softplus_extremes) {
    gd_tensor *x = gc_f64(ar, "4", (double[]){-800, 800, -40, 40});
    gd_tensor *s = fwd1("sigmoid", x);
    ASSERT_VALUES(s, 0, 1, exp(-40) / (1 + exp(-40)), 1 / (1 + exp(-40)));
    gd_tensor *sp = fwd1("softplus", x);
    ck_assert(at(sp, 0) == 0 && at(sp, 1) == 800);
    ck_assert_double_eq_tol(at(sp, 2), exp(-40), 1e-30);
    ck_assert_double_eq_tol(at(sp, 3), 40, 1e-14);
    /* Their gradients stay finite too. */
    gd_tensor *din[2];
    gd_node *n = gc_node(ar, "sigmoid", 1);
    bwd_ones(n, x, NULL, fwd(n, x, NULL), 1, 0, din);
    ASSERT_VALUES(din[0], 0, 0, at(s, 2) * (1 - at(s, 2)), at(s, 3) * (1 - at(s, 3)));
    n = gc_node(ar, "softplus", 1);
    bwd_ones(n, x, NULL, fwd(n, x, NULL), 1, 0, din);
    ASSERT_VALUES(din[0], 0, 1, at(s, 2), at(s, 3));
}
END_TEST

START_TEST(test_leaky_relu_values) {
    gd_tensor *x = gc_f64(ar, "3", (double[]){-2, 0, 3});
    ASSERT_VALUES(fwd1("leaky_relu", x), -0.02, 0, 3);
    gd_node *n = gc_node(ar, "leaky_relu", 1);
    n->attrs->alpha = (gd_num){1, 0.2};
    ASSERT_VALUES(fwd(n, x, NULL), -0.4, 0, 3);
}
END_TEST

static gd_node *clip_node(int has_min, double lo, int has_max, double hi) {
    gd_node *n = gc_node(ar, "clip", 1);
    n->attrs->min = (gd_num){has_min, lo};
    n->attrs->max = (gd_num){has_max, hi};
    return n;
}

START_TEST(test_clip_values) {
    gd_tensor *x = gc_f64(ar, "5", (double[]){-3, -1, 0.5, 1, 3});
    ASSERT_VALUES(fwd(clip_node(1, -1, 1, 1), x, NULL), -1, -1, 0.5, 1, 1);
    ASSERT_VALUES(fwd(clip_node(1, 0, 0, 0), x, NULL), 0, 0, 0.5, 1, 3);
    ASSERT_VALUES(fwd(clip_node(0, 0, 1, 0), x, NULL), -3, -1, 0, 0, 0);
    ASSERT_VALUES(fwd(clip_node(0, 0, 0, 0), x, NULL), -3, -1, 0.5, 1, 3);
    /* np.clip(x, 2, -2): minimum(maximum(x, 2), -2) is -2 everywhere. */
    ASSERT_VALUES(fwd(clip_node(1, 2, 1, -2), x, NULL), -2, -2, -2, -2, -2);
    ASSERT_VALUES(fwd(clip_node(1, -INFINITY, 1, INFINITY), x, NULL), -3, -1, 0.5, 1, 3);
}
END_TEST

START_TEST(test_round_floor_ceil_sign) {
    gd_tensor *x = gc_f64(ar, "9", (double[]){0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6, 3});
    gd_tensor *r = fwd1("round", x);
    ASSERT_VALUES(r, 0, 2, 2, -0.0, -2, -2, 2, -3, 3);
    ck_assert(signbit(at(r, 3))); /* np.round(-0.5) is -0.0 */
    gd_tensor *y = gc_f64(ar, "5", (double[]){1.5, -1.5, 2, -0.0, INFINITY});
    ASSERT_VALUES(fwd1("floor", y), 1, -2, 2, -0.0, INFINITY);
    ASSERT_VALUES(fwd1("ceil", y), 2, -1, 2, -0.0, INFINITY);
    gd_tensor *s = fwd1("sign", gc_f64(ar, "6", (double[]){-3, 0, -0.0, 2, NAN, -INFINITY}));
    ASSERT_VALUES(s, -1, 0, 0, 1, NAN, -1);
    ck_assert(!signbit(at(s, 2)));
}
END_TEST

START_TEST(test_compare_values) {
    /* a [2,3] against b [3], NaN on both sides. */
    gd_tensor *a = gc_f64(ar, "2,3", (double[]){1, 2, 3, NAN, 2, 0});
    gd_tensor *b = gc_f64(ar, "3", (double[]){2, 2, NAN});
    ASSERT_VALUES(fwd2("greater", a, b), 0, 0, 0, 0, 0, 0);
    ASSERT_VALUES(fwd2("greater_equal", a, b), 0, 1, 0, 0, 1, 0);
    ASSERT_VALUES(fwd2("less", a, b), 1, 0, 0, 0, 0, 0);
    ASSERT_VALUES(fwd2("less_equal", a, b), 1, 1, 0, 0, 1, 0);
    ASSERT_VALUES(fwd2("equal", a, b), 0, 1, 0, 0, 1, 0);
    ASSERT_VALUES(fwd2("not_equal", a, b), 1, 0, 1, 1, 0, 1);
    gd_tensor *g = fwd2("greater", gc_f64(ar, "", (double[]){1}), gc_f64(ar, "3", (double[]){0, 1, 2}));
    ck_assert_int_eq(g->shape.rank, 1);
    ASSERT_VALUES(g, 1, 0, 0);
    ck_assert_int_eq(g->dtype, GD_F64);
}
END_TEST

START_TEST(test_binary_values) {
    gd_tensor *a = gc_f64(ar, "2,3", (double[]){1, 2, 3, 4, 5, 6});
    gd_tensor *b = gc_f64(ar, "3", (double[]){10, 20, 30});
    ASSERT_VALUES(fwd2("add", a, b), 11, 22, 33, 14, 25, 36);
    ASSERT_VALUES(fwd2("sub", b, a), 9, 18, 27, 6, 15, 24);
    ASSERT_VALUES(fwd2("mul", a, gc_f64(ar, "", (double[]){2})), 2, 4, 6, 8, 10, 12);
    ASSERT_VALUES(fwd2("div", gc_f64(ar, "3", (double[]){1, -1, 0}), gc_f64(ar, "", (double[]){0})), INFINITY,
                  -INFINITY, NAN);
    ASSERT_VALUES(fwd2("pow", gc_f64(ar, "4", (double[]){2, -8, -2, 0}), gc_f64(ar, "4", (double[]){3, 0.5, 2, 0})),
                  8, NAN, 4, 1);
    ASSERT_VALUES(fwd2("maximum", a, gc_f64(ar, "2,1", (double[]){2, 5})), 2, 2, 3, 5, 5, 6);
    ASSERT_VALUES(fwd2("minimum", a, gc_f64(ar, "2,1", (double[]){2, 5})), 1, 2, 2, 4, 5, 5);
    /* [4,1,3] with [2,1] -> [4,2,3]: out[i,j,k] = a[i,0,k] + b[j,0]. */
    double av[12];
    for (int i = 0; i < 12; i++) av[i] = i;
    gd_tensor *s = fwd2("add", gc_f64(ar, "4,1,3", av), gc_f64(ar, "2,1", (double[]){100, 200}));
    ck_assert_int_eq(s->shape.rank, 3);
    ck_assert(s->shape.dim[0] == 4 && s->shape.dim[1] == 2 && s->shape.dim[2] == 3);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) ck_assert(at(s, (i * 2 + j) * 3 + k) == av[i * 3 + k] + 100 * (j + 1));
}
END_TEST

/* NumPy: maximum/minimum propagate NaN from either side. */
START_TEST(test_maximum_minimum_nan) {
    gd_tensor *a = gc_f64(ar, "4", (double[]){NAN, 1, 2, NAN});
    gd_tensor *b = gc_f64(ar, "4", (double[]){1, NAN, 2, NAN});
    ASSERT_VALUES(fwd2("maximum", a, b), NAN, NAN, 2, NAN);
    ASSERT_VALUES(fwd2("minimum", a, b), NAN, NAN, 2, NAN);
    /* The gradient goes to the NaN side; a tie and two NaNs split it evenly
     * (A8: NaN wins the selection, split evenly among the NaN operands). */
    static const char *ops[] = {"maximum", "minimum"};
    for (int k = 0; k < 2; k++) {
        gd_node *n = gc_node(ar, ops[k], 2);
        gd_tensor *din[2];
        bwd_ones(n, a, b, fwd(n, a, b), 1, 1, din);
        ASSERT_VALUES(din[0], 1, 0, 0.5, 0.5);
        ASSERT_VALUES(din[1], 0, 1, 0.5, 0.5);
    }
}
END_TEST

/* Large tensors go through several chunks (and cancel polls) correctly. */
START_TEST(test_large_tensors) {
    int64_t n = 150001;
    gd_shape sh = gd_shape_make(1, &n);
    gd_tensor *x = gd_tensor_new(ar, &sh, GD_F64, 0);
    for (int64_t i = 0; i < n; i++) gd_f64(x)[i] = (double)(i % 7) - 3;
    gd_tensor *y = fwd1("relu", x);
    gd_tensor *s = fwd2("add", x, gc_f64(ar, "", (double[]){1}));
    gd_tensor *one = gc_f64(ar, "", (double[]){1});
    gd_tensor *r = fwd2("sub", one, x); /* broadcast first operand across chunks */
    gd_tensor *m = fwd2("mul", x, x);
    gd_tensor *din[2], *dmx[2];
    gd_node *nm = gc_node(ar, "mul", 2);
    bwd_ones(nm, x, x, m, 1, 1, din);
    gd_node *nx = gc_node(ar, "maximum", 2);
    bwd_ones(nx, one, x, fwd(nx, one, x), 1, 1, dmx);
    for (int64_t i = 0; i < n; i++) {
        double v = (double)(i % 7) - 3;
        ck_assert(at(y, i) == (v > 0 ? v : 0));
        ck_assert(at(s, i) == v + 1);
        ck_assert(at(r, i) == 1 - v);
        ck_assert(at(m, i) == v * v);
        ck_assert(at(din[0], i) == v && at(din[1], i) == v);
        double w = v > 1 ? 1 : v == 1 ? 0.5 : 0;
        ck_assert(at(dmx[1], i) == w && at(dmx[0], i) == 1 - w);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Subgradients at kinks and ties (PyTorch conventions) */

START_TEST(test_tie_gradients) {
    gd_tensor *x = gc_rand(ar, &rng, "2,3", -2, 2);
    static const char *ops[] = {"maximum", "minimum"};
    for (int k = 0; k < 2; k++) {
        gd_node *n = gc_node(ar, ops[k], 2);
        gd_tensor *din[2];
        bwd_ones(n, x, x, fwd(n, x, x), 1, 1, din);
        for (int64_t i = 0; i < x->n; i++) ck_assert(at(din[0], i) == 0.5 && at(din[1], i) == 0.5);
        /* Broadcast tie: b is a scalar equal to every a; contributions come in
         * out's shape (the engine sums them down). */
        gd_tensor *a = gc_f64(ar, "3", (double[]){1, 1, 2});
        gd_tensor *b = gc_f64(ar, "", (double[]){1});
        bwd_ones(n, a, b, fwd(n, a, b), 1, 1, din);
        ck_assert(gd_shape_eq(&din[1]->shape, &a->shape));
        if (k == 0) {
            ASSERT_VALUES(din[0], 0.5, 0.5, 1);
            ASSERT_VALUES(din[1], 0.5, 0.5, 0);
        } else {
            ASSERT_VALUES(din[0], 0.5, 0.5, 0);
            ASSERT_VALUES(din[1], 0.5, 0.5, 1);
        }
        /* Only one side wanted. */
        bwd_ones(n, a, b, fwd(n, a, b), 0, 1, din);
        ck_assert_ptr_null(din[0]);
        ck_assert_ptr_nonnull(din[1]);
    }
}
END_TEST

static gd_tensor *grad1(gd_node *n, gd_tensor *x) {
    gd_tensor *din[2];
    bwd_ones(n, x, NULL, fwd(n, x, NULL), 1, 0, din);
    return din[0];
}

START_TEST(test_kink_gradients) {
    gd_tensor *x = gc_f64(ar, "3", (double[]){-1, 0, 2});
    ASSERT_VALUES(grad1(gc_node(ar, "relu", 1), x), 0, 0, 1);
    ASSERT_VALUES(grad1(gc_node(ar, "abs", 1), x), -1, 0, 1);
    ASSERT_VALUES(grad1(gc_node(ar, "leaky_relu", 1), x), 0.01, 0.01, 1);
    gd_node *lk = gc_node(ar, "leaky_relu", 1);
    lk->attrs->alpha = (gd_num){1, 0.3};
    ASSERT_VALUES(grad1(lk, x), 0.3, 0.3, 1);
    /* clip: the gradient passes at both bounds (inclusive), not outside. */
    gd_tensor *c = gc_f64(ar, "5", (double[]){-2, -1, 0, 1, 2});
    ASSERT_VALUES(grad1(clip_node(1, -1, 1, 1), c), 0, 1, 1, 1, 0);
    ASSERT_VALUES(grad1(clip_node(1, 0, 0, 0), c), 0, 0, 1, 1, 1);
    ASSERT_VALUES(grad1(clip_node(0, 0, 0, 0), c), 1, 1, 1, 1, 1);
    ASSERT_VALUES(grad1(clip_node(1, 1, 1, -1), c), 0, 0, 0, 0, 0);
    ASSERT_VALUES(grad1(clip_node(1, -1, 1, 1), gc_f64(ar, "", (double[]){NAN})), 0);
    /* sqrt'(0) = +Infinity, reported by the engine, not hidden. */
    ASSERT_VALUES(grad1(gc_node(ar, "sqrt", 1), gc_f64(ar, "2", (double[]){0, 4})), INFINITY, 0.25);
    ASSERT_VALUES(grad1(gc_node(ar, "reciprocal", 1), gc_f64(ar, "2", (double[]){2, -0.5})), -0.25, -4);
    ASSERT_VALUES(grad1(gc_node(ar, "exp", 1), gc_f64(ar, "", (double[]){0})), 1);
    ASSERT_VALUES(grad1(gc_node(ar, "log", 1), gc_f64(ar, "", (double[]){4})), 0.25);
}
END_TEST

START_TEST(test_pow_edge_gradients) {
    /* a: 0, 0, 2, 0, -2;  b: 0, 2, 0, -1, 3 */
    gd_tensor *a = gc_f64(ar, "5", (double[]){0, 0, 2, 0, -2});
    gd_tensor *b = gc_f64(ar, "5", (double[]){0, 2, 0, -1, 3});
    gd_node *n = gc_node(ar, "pow", 2);
    gd_tensor *y = fwd(n, a, b);
    ASSERT_VALUES(y, 1, 0, 1, INFINITY, -8);
    gd_tensor *din[2];
    bwd_ones(n, a, b, y, 1, 1, din);
    /* da = b a^(b-1), 0 where b == 0; pow(0,-1): -1 * 0^-2 = -inf. */
    ASSERT_VALUES(din[0], 0, 0, 0, -INFINITY, 12);
    /* db = a^b log(a), 0 where a == 0 and b >= 0; log of a negative is NaN. */
    ASSERT_VALUES(din[1], 0, 0, log(2.0), -INFINITY, NAN);
}
END_TEST

/* Backward with cotangent dout; din[0..1] set for the wanted inputs. */
static void bwd_with(gd_node *n, gd_tensor *a, gd_tensor *b, gd_tensor *out, gd_tensor *dout, int wa, int wb,
                     gd_tensor **din) {
    const gd_tensor *in[2] = {a, b};
    int want[2] = {wa, wb};
    gd_error err;
    gd_kctx c = {.arena = ar, .err = &err, .node = n};
    din[0] = din[1] = NULL;
    int rc = n->op->backward(&c, in, out, dout, want, din);
    ck_assert_msg(rc == 0, "%s backward failed: %s", n->op->name, err.message);
}

/* got equals want within 4e-16 relative (a few ulps of regrouping); NaN,
 * ±Infinity and the sign of a zero exactly. */
static void assert_close(const char *what, int64_t i, double got, double want) {
    if (isnan(want) || isinf(want) || want == 0) {
        ck_assert_msg(isnan(want) ? isnan(got) : got == want && signbit(got) == signbit(want),
                      "%s element %lld: got %.17g, want %.17g", what, (long long)i, got, want);
        return;
    }
    ck_assert_msg(fabs(got - want) <= 4e-16 * fabs(want), "%s element %lld: got %.17g, want %.17g", what,
                  (long long)i, got, want);
}

/* Every unary rule at magnitudes near 1e±300 (and 5e-324), for cotangents
 * just as extreme. Expected values: PyTorch 1.13.1 (python3-torch, float64),
 *   x = torch.tensor(XS, dtype=torch.float64, requires_grad=True)
 *   f(x).backward(torch.tensor(GS, dtype=torch.float64)); x.grad
 * with softplus = torch.nn.functional.softplus, except where PyTorch itself
 * overflows needlessly (marked): there the exact value -g/x^2, rounded
 * (Python's fractions.Fraction), which gradd's (-g*y)*y reaches. */
START_TEST(test_unary_extreme_magnitudes) {
    static const double xs[6] = {1e-300, -1e-300, 1e300, -1e300, 3e-160, 0.25};
    static const double gs[6] = {1e300, 1e-300, 1e300, 1e-300, 1e-100, 5e-324};
    static const struct {
        const char *op;
        double want[6];
    } cases[] = {
        {"neg", {-1e+300, -1e-300, -1e+300, -1e-300, -1e-100, -5e-324}},
        {"exp", {1e+300, 1e-300, INFINITY, 0.0, 1e-100, 5e-324}},
        {"log", {INFINITY, -1.0, 1.0, -0.0, 3.3333333333333335e+59, 2e-323}},
        {"log1p", {1e+300, 1e-300, 1.0, -0.0, 1e-100, 5e-324}},
        {"expm1", {1e+300, 1e-300, INFINITY, 0.0, 1e-100, 5e-324}},
        /* g * 0.5 / y lost 5e-324 * 0.5 to 0 at x = 0.25 */
        {"sqrt", {INFINITY, NAN, 5e+149, NAN, 2.8867513459481287e-21, 5e-324}},
        {"square", {2.0, -0.0, INFINITY, -2.0, 6e-260, 0.0}},
        {"abs", {1e+300, -1e-300, 1e+300, -1e-300, 1e-100, 5e-324}},
        {"sin", {1e+300, 1e-300, -5.753861119575491e+299, -5.753861119575491e-301, 1e-100, 5e-324}},
        {"cos", {-1.0, 0.0, 8.178819121159085e+299, -8.178819121159086e-301, -3e-260, -0.0}},
        {"tanh", {1e+300, 1e-300, 0.0, 0.0, 1e-100, 5e-324}},
        {"sigmoid", {2.5e+299, 2.5e-301, 0.0, 0.0, 2.5e-101, 0.0}},
        {"relu", {1e+300, 0.0, 1e+300, 0.0, 1e-100, 5e-324}},
        /* element 5: PyTorch's g * z / (z + 1) rounds g * z among subnormals
         * first and gives 0; g * sigmoid(0.25) = 2.8e-324 rounds to 5e-324 */
        {"softplus", {5e+299, 5e-301, 1e+300, 0.0, 5e-101, 5e-324}},
        /* PyTorch's -g * (y * y) gives -inf, -0.0 and -inf at elements 1, 2
         * and 4: exact -9.999999999999999e299, -1e-300 and -1.1111111111111111e219 */
        {"reciprocal", {-INFINITY, -9.999999999999999e+299, -1e-300, -0.0, -1.1111111111111111e+219, -8e-323}},
    };
    gd_tensor *x = gc_f64(ar, "6", xs), *g = gc_f64(ar, "6", gs);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gd_node *n = gc_node(ar, cases[k].op, 1);
        gd_tensor *din[2];
        bwd_with(n, x, NULL, fwd(n, x, NULL), g, 1, 0, din);
        for (int64_t i = 0; i < 6; i++) assert_close(cases[k].op, i, gd_f64(din[0])[i], cases[k].want[i]);
    }
}
END_TEST

/* The binary rules at extreme magnitudes: PyTorch 1.13.1 values, computed as
 * above with a + b, a * b, a / b, torch.maximum/minimum and a ** b. div's
 * first three columns are issue 8's defect: -g a / (b b) gave NaN, -Infinity
 * and a value off by 1e-5 (b * b underflows). */
START_TEST(test_binary_extreme_magnitudes) {
    gd_tensor *a = gc_f64(ar, "7", (double[]){0.0, 5e-324, 1e-20, 1e300, 1e-300, 1e150, 2.0});
    gd_tensor *b = gc_f64(ar, "7", (double[]){1e-300, 1e-300, 1e-160, 1e-300, 1e300, 1e150, -1e300});
    gd_tensor *g = gc_f64(ar, "7", (double[]){1.0, 1.0, 1.0, 1e-300, 1e300, 1e-300, 1e-300});
    static const struct {
        const char *op;
        double da[7], db[7];
    } cases[] = {
        {"mul", {1e-300, 1e-300, 1e-160, 0.0, INFINITY, 1e-150, -1.0}, {0.0, 5e-324, 1e-20, 1.0, 1.0, 1e-150, 2e-300}},
        {"div",
         {9.999999999999999e+299, 9.999999999999999e+299, 1e+160, 1.0, 1.0, 0.0, -0.0},
         {-0.0, -4.940656458412465e+276, -1e+300, -INFINITY, -0.0, -0.0, -0.0}},
        {"maximum", {0.0, 0.0, 1.0, 1e-300, 0.0, 5e-301, 1e-300}, {1.0, 1.0, 0.0, 0.0, 1e+300, 5e-301, 0.0}},
        {"minimum", {1.0, 1.0, 0.0, 0.0, 1e+300, 5e-301, 0.0}, {0.0, 0.0, 1.0, 1e-300, 0.0, 5e-301, 1e-300}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gd_node *n = gc_node(ar, cases[k].op, 2);
        gd_tensor *din[2];
        bwd_with(n, a, b, fwd(n, a, b), g, 1, 1, din);
        for (int64_t i = 0; i < 7; i++) {
            assert_close(cases[k].op, i, gd_f64(din[0])[i], cases[k].da[i]);
            assert_close(cases[k].op, i, gd_f64(din[1])[i], cases[k].db[i]);
        }
    }
    /* pow; element 3 (a = 1e-150, b = -2): PyTorch's g * (b * a^(b-1))
     * overflows to -inf in a^-3 = 1e450; the exact value is -2e150. */
    gd_tensor *pa = gc_f64(ar, "6", (double[]){1e-300, 1e300, 0.5, 1e-150, 2.0, 0.0});
    gd_tensor *pb = gc_f64(ar, "6", (double[]){2.0, 0.5, -1.0, -2.0, 1e3, 2.0});
    gd_tensor *pg = gc_f64(ar, "6", (double[]){1e300, 1e-300, 1e-300, 1e-300, 1e-300, 1.0});
    static const double pda[6] = {2.0, 0.0, -4e-300, -2e150, 5357.543035931337, 0.0};
    static const double pdb[6] = {-0.0, 6.907755278982136e-148, -1.3862943611198906e-300, -345.38776394910684,
                                  7.427131700168752, 0.0};
    gd_node *n = gc_node(ar, "pow", 2);
    gd_tensor *din[2];
    bwd_with(n, pa, pb, fwd(n, pa, pb), pg, 1, 1, din);
    for (int64_t i = 0; i < 6; i++) {
        assert_close("pow a", i, gd_f64(din[0])[i], pda[i]);
        assert_close("pow b", i, gd_f64(din[1])[i], pdb[i]);
    }
}
END_TEST

/* A8: masked derivatives. relu, clip and maximum/minimum select (a
 * non-selected element gets exactly 0 whatever the cotangent), pow's
 * exponent gradient at base 0 multiplies (Inf * 0 = NaN); relu'(NaN) = 1,
 * abs'(NaN) = 0. Expected values: PyTorch 1.13.1, e.g.
 *   x = torch.tensor([nan, -1., 2.], dtype=torch.float64, requires_grad=True)
 *   torch.relu(x).backward(torch.tensor([2., inf, 3.], dtype=torch.float64))
 *   x.grad -> [2., 0., 3.]; the same with torch.abs -> [0., nan, -3.] at
 *   x = [nan, 0., -2.]; torch.clamp(x, 0, 1) at [-1, .5, 2] with
 *   [inf, 1, nan] -> [0., 1., 0.]; a ** b at a = [0, 0], b = [2, 0] with
 *   [inf, nan] -> da [nan, 0.], db [nan, nan]. */
START_TEST(test_masked_gradients_at_nan_and_inf) {
    gd_tensor *din[2];
    gd_node *n = gc_node(ar, "relu", 1);
    gd_tensor *x = gc_f64(ar, "3", (double[]){NAN, -1, 2});
    bwd_with(n, x, NULL, fwd(n, x, NULL), gc_f64(ar, "3", (double[]){2, INFINITY, 3}), 1, 0, din);
    ASSERT_VALUES(din[0], 2, 0, 3);
    ck_assert(!signbit(gd_f64(din[0])[1]));
    n = gc_node(ar, "abs", 1);
    x = gc_f64(ar, "3", (double[]){NAN, 0, -2});
    bwd_with(n, x, NULL, fwd(n, x, NULL), gc_f64(ar, "3", (double[]){2, INFINITY, 3}), 1, 0, din);
    ASSERT_VALUES(din[0], 0, NAN, -3);
    n = clip_node(1, 0, 1, 1);
    x = gc_f64(ar, "3", (double[]){-1, 0.5, 2});
    bwd_with(n, x, NULL, fwd(n, x, NULL), gc_f64(ar, "3", (double[]){INFINITY, 1, NAN}), 1, 0, din);
    ASSERT_VALUES(din[0], 0, 1, 0);
    /* clip without bounds is the identity: its gradient passes at NaN too
     * (the 200,000-case differential test found 0 there). */
    n = clip_node(0, 0, 0, 0);
    x = gc_f64(ar, "3", (double[]){NAN, -1e300, INFINITY});
    bwd_with(n, x, NULL, fwd(n, x, NULL), gc_f64(ar, "3", (double[]){1.5, 2, -3}), 1, 0, din);
    ASSERT_VALUES(din[0], 1.5, 2, -3);
    n = gc_node(ar, "pow", 2);
    gd_tensor *a = gc_f64(ar, "2", (double[]){0, 0}), *b = gc_f64(ar, "2", (double[]){2, 0});
    bwd_with(n, a, b, fwd(n, a, b), gc_f64(ar, "2", (double[]){INFINITY, NAN}), 1, 1, din);
    ASSERT_VALUES(din[0], NAN, 0);
    ASSERT_VALUES(din[1], NAN, NAN);
    /* maximum: the unselected side gets exactly 0 from an infinite g
     * (PyTorch: torch.maximum at a = [1, 1], b = [0, 1], g = [inf, inf] ->
     * da [inf, inf/2 = inf], db [0., inf]). */
    n = gc_node(ar, "maximum", 2);
    a = gc_f64(ar, "2", (double[]){1, 1});
    b = gc_f64(ar, "2", (double[]){0, 1});
    bwd_with(n, a, b, fwd(n, a, b), gc_f64(ar, "2", (double[]){INFINITY, INFINITY}), 1, 1, din);
    ASSERT_VALUES(din[0], INFINITY, INFINITY);
    ASSERT_VALUES(din[1], 0, INFINITY);
}
END_TEST

START_TEST(test_div_sub_gradients) {
    gd_tensor *a = gc_f64(ar, "2", (double[]){3, -1});
    gd_tensor *b = gc_f64(ar, "2", (double[]){2, 4});
    gd_tensor *din[2];
    gd_node *n = gc_node(ar, "div", 2);
    bwd_ones(n, a, b, fwd(n, a, b), 1, 1, din);
    ASSERT_VALUES(din[0], 0.5, 0.25);
    ASSERT_VALUES(din[1], -0.75, 1.0 / 16);
    n = gc_node(ar, "sub", 2);
    bwd_ones(n, a, b, fwd(n, a, b), 1, 1, din);
    ASSERT_VALUES(din[0], 1, 1);
    ASSERT_VALUES(din[1], -1, -1);
    bwd_ones(n, a, b, fwd(n, a, b), 0, 0, din);
    ck_assert_ptr_null(din[0]);
    ck_assert_ptr_null(din[1]);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* cast */

static gd_node *cast_node(gd_dtype t) {
    gd_node *n = gc_node(ar, "cast", 1);
    n->attrs->dtype = (gd_num){1, t};
    return n;
}

START_TEST(test_cast_values) {
    gd_tensor *x = gc_f64(ar, "7", (double[]){1.9, -1.9, 0.5, -0.5, -0.0, 4e18, -0x1p63});
    gd_tensor *y = fwd(cast_node(GD_I64), x, NULL);
    ck_assert_int_eq(y->dtype, GD_I64);
    const int64_t want[] = {1, -1, 0, 0, 0, 4000000000000000000LL, INT64_MIN};
    for (int i = 0; i < 7; i++) ck_assert_int_eq(gd_i64(y)[i], want[i]);
    /* int64 -> int64 keeps values that float64 cannot hold exactly. */
    const int64_t big[] = {((int64_t)1 << 62) + 1, -7, INT64_MAX};
    gd_tensor *yi = fwd(cast_node(GD_I64), gc_i64(ar, "3", big), NULL);
    ck_assert_int_eq(yi->dtype, GD_I64);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(gd_i64(yi)[i], big[i]);
    /* int64 -> float64. */
    gd_tensor *yf = fwd(cast_node(GD_F64), gc_i64(ar, "2,2", (int64_t[]){-3, 0, 5, 1 << 20}), NULL);
    ck_assert_int_eq(yf->dtype, GD_F64);
    ck_assert_int_eq(yf->shape.rank, 2);
    ASSERT_VALUES(yf, -3, 0, 5, 1 << 20);
}
END_TEST

START_TEST(test_cast_invalid_value) {
    static const struct {
        double v;
        const char *shown;
    } bad[] = {{NAN, "NaN"}, {INFINITY, "Infinity"}, {-INFINITY, "-Infinity"}, {1e300, "1e+300"},
               {0x1p63, "9.223372036854776e+18"}, {-1e19, "-1e+19"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        gd_tensor *x = gc_f64(ar, "2,2", (double[]){1, 2, bad[k].v, 3});
        gd_node *n = cast_node(GD_I64);
        n->name = "c";
        gd_tensor *in[1] = {x}, *out = NULL;
        gd_error err;
        int rc = gc_forward(ar, n, in, &out, &err);
        ck_assert_int_eq(rc, GD_E_INVALID_VALUE);
        ck_assert_int_eq(err.code, GD_E_INVALID_VALUE);
        ck_assert_msg(strstr(err.message, "'c'") && strstr(err.message, "element 2") &&
                          strstr(err.message, bad[k].shown),
                      "message: %s", err.message);
        ck_assert_str_eq(err.at, "$.graph.nodes[0]");
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Attribute, shape and runtime errors */

static int infer1(gd_node *n, const char *shape, gd_dtype dt, gd_meta *out, gd_error *err) {
    gd_meta in[2];
    in[0].dtype = dt;
    in[0].shape = gc_shape(shape);
    in[1] = in[0];
    gd_limits lim = {0};
    return n->op->infer(n, in, &lim, out, err);
}

START_TEST(test_attribute_errors) {
    gd_meta out;
    gd_error err;
    gd_node *n = gc_node(ar, "cast", 1);
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].dtype");
    n->attrs->dtype = (gd_num){1, 7};
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), GD_E_INVALID_ATTRIBUTE);
    n->attrs->dtype = (gd_num){1, GD_I64};
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), 0);
    ck_assert_int_eq(out.dtype, GD_I64);

    n = gc_node(ar, "leaky_relu", 1);
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), 0);
    n->attrs->alpha = (gd_num){1, 0.25};
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), 0);
    n->attrs->alpha = (gd_num){1, NAN};
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].alpha");
    n->attrs->alpha = (gd_num){1, INFINITY};
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), GD_E_INVALID_ATTRIBUTE);

    n = clip_node(1, NAN, 1, 1);
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].min");
    n = clip_node(0, 0, 1, NAN);
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(err.at, "$.graph.nodes[0].max");
    n = clip_node(1, 3, 1, -3); /* min > max is allowed (np.clip) */
    ck_assert_int_eq(infer1(n, "2", GD_F64, &out, &err), 0);
}
END_TEST

START_TEST(test_shape_mismatch) {
    static const char *ops[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "greater", "equal"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        gd_node *n = gc_node(ar, ops[k], 2);
        n->name = "h";
        gd_tensor *in[2] = {gc_rand(ar, &rng, "2,3", 0, 1), gc_rand(ar, &rng, "4", 0, 1)}, *out;
        gd_error err;
        ck_assert_int_eq(gc_forward(ar, n, in, &out, &err), GD_E_SHAPE_MISMATCH);
        ck_assert_int_eq(err.code, GD_E_SHAPE_MISMATCH);
        ck_assert_msg(strstr(err.message, "'h'") && strstr(err.message, "'in0' has shape [2, 3]") &&
                          strstr(err.message, "'in1' has shape [4]"),
                      "message: %s", err.message);
        ck_assert_str_eq(err.at, "$.graph.nodes[0].inputs");
    }
}
END_TEST

START_TEST(test_unknown_shapes) {
    gd_limits lim = {0};
    gd_error err;
    gd_meta out;
    gd_meta unk = {GD_F64, {.rank = -1}}, known = {GD_F64, gc_shape("2,3")};
    static const char *bin[] = {"add", "pow", "maximum", "less"};
    for (size_t k = 0; k < 4; k++) {
        gd_node *n = gc_node(ar, bin[k], 2);
        gd_meta in[2] = {unk, known};
        ck_assert_int_eq(n->op->infer(n, in, &lim, &out, &err), 0);
        ck_assert_int_lt(out.shape.rank, 0);
        ck_assert_int_eq(out.dtype, GD_F64);
        in[0] = known, in[1] = unk;
        ck_assert_int_eq(n->op->infer(n, in, &lim, &out, &err), 0);
        ck_assert_int_lt(out.shape.rank, 0);
    }
    static const char *un[] = {"exp", "relu", "leaky_relu", "clip", "round", "sign"};
    for (size_t k = 0; k < 6; k++) {
        gd_node *n = gc_node(ar, un[k], 1);
        ck_assert_int_eq(n->op->infer(n, &unk, &lim, &out, &err), 0);
        ck_assert_int_lt(out.shape.rank, 0);
    }
    gd_node *c = cast_node(GD_I64);
    gd_meta ui = {GD_I64, {.rank = -1}};
    ck_assert_int_eq(c->op->infer(c, &ui, &lim, &out, &err), 0);
    ck_assert_int_lt(out.shape.rank, 0);
    ck_assert_int_eq(out.dtype, GD_I64);
}
END_TEST

START_TEST(test_too_large) {
    gd_limits lim = {.max_elements = 1000};
    gd_error err;
    gd_meta out;
    gd_meta in[2] = {{GD_F64, gc_shape("100,1")}, {GD_F64, gc_shape("1,100")}};
    gd_node *n = gc_node(ar, "add", 2);
    ck_assert_int_eq(n->op->infer(n, in, &lim, &out, &err), GD_E_TOO_LARGE);
    in[1].shape = gc_shape("1,10");
    ck_assert_int_eq(n->op->infer(n, in, &lim, &out, &err), 0);
    ck_assert(out.shape.rank == 2 && out.shape.dim[0] == 100 && out.shape.dim[1] == 10);
    gd_meta big = {GD_F64, gc_shape("2000")};
    n = gc_node(ar, "exp", 1);
    ck_assert_int_eq(n->op->infer(n, &big, &lim, &out, &err), GD_E_TOO_LARGE);
    n = cast_node(GD_I64);
    ck_assert_int_eq(n->op->infer(n, &big, &lim, &out, &err), GD_E_TOO_LARGE);
    /* Broadcasting to an overflowing size. */
    gd_meta huge[2] = {{GD_F64, gc_shape("4000000000,1")}, {GD_F64, gc_shape("1,4000000000")}};
    lim.max_elements = 0;
    n = gc_node(ar, "mul", 2);
    ck_assert_int_eq(n->op->infer(n, huge, &lim, &out, &err), GD_E_TOO_LARGE);
}
END_TEST

/* A cancelled request stops long kernels between chunks. */
START_TEST(test_cancel) {
    gd_cancel cancel = {0};
    atomic_store(&cancel.cancelled, 1);
    gd_error err;
    int64_t nel = 200000;
    gd_shape sh = gd_shape_make(1, &nel);
    gd_tensor *x = gd_tensor_new(ar, &sh, GD_F64, 1);
    gd_tensor *out = gd_tensor_new(ar, &sh, GD_F64, 0);
    gd_tensor *outi = gd_tensor_new(ar, &sh, GD_I64, 0);
    const gd_tensor *in[2] = {x, x};
    gd_tensor *din[2] = {0};
    int want[2] = {1, 1};
    /* add and sub backward copy the cotangent (negated for sub's b): whole
     * passes that poll too (issue 9: they ran 16M elements without a poll). */
    static const char *ops[] = {"exp", "mul", "add", "clip", "sub"};
    for (int k = 0; k < 5; k++) {
        gd_node *n = gc_node(ar, ops[k], ops[k][0] == 'm' || ops[k][0] == 'a' || ops[k][0] == 's' ? 2 : 1);
        gd_kctx c = {.arena = ar, .cancel = &cancel, .err = &err, .node = n};
        ck_assert_int_eq(n->op->forward(&c, in, out), GD_E_DEADLINE_EXCEEDED);
        for (int w = 0; w < n->n_in; w++) {
            int want1[2] = {w == 0, w == 1};
            ck_assert_msg(n->op->backward(&c, in, out, x, want1, din) == GD_E_DEADLINE_EXCEEDED, "%s backward %d",
                          ops[k], w);
        }
    }
    gd_node *n = cast_node(GD_I64);
    gd_kctx c = {.arena = ar, .cancel = &cancel, .err = &err, .node = n};
    ck_assert_int_eq(n->op->forward(&c, in, outi), GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(err.code, GD_E_DEADLINE_EXCEEDED);
    /* cast backward (a copy of the cotangent) and cond backward (the same,
     * into the taken branch) poll as well. */
    n = cast_node(GD_F64);
    c.node = n;
    din[0] = NULL;
    ck_assert_int_eq(n->op->backward(&c, in, out, x, want, din), GD_E_DEADLINE_EXCEEDED);
    ck_assert_ptr_null(din[0]);
    gd_tensor *p = gd_tensor_scalar(ar, 1.0);
    const gd_tensor *cin[3] = {p, x, x};
    gd_tensor *cdin[3] = {0};
    n = gc_node(ar, "cond", 3);
    c.node = n;
    ck_assert_int_eq(n->op->backward(&c, cin, out, x, (int[]){0, 1, 0}, cdin), GD_E_DEADLINE_EXCEEDED);
    ck_assert_ptr_null(cdin[1]);
    /* Not cancelled: runs to the end. */
    atomic_store(&cancel.cancelled, 0);
    n = gc_node(ar, "exp", 1);
    c.node = n;
    ck_assert_int_eq(n->op->forward(&c, in, out), 0);
    ck_assert(at(out, nel - 1) == 1.0);
}
END_TEST

/* A gradient that does not fit the request's memory limit is too_large. */
START_TEST(test_backward_memory_limit) {
    gd_arena *tiny = gd_arena_new(4096);
    gd_error err;
    gd_tensor *x = gc_rand(ar, &rng, "64,64", 0.5, 1);
    const gd_tensor *in[2] = {x, x};
    gd_tensor *din[2];
    int want[2] = {1, 1};
    static const char *ops[] = {"exp", "add", "mul", "cast"};
    for (int k = 0; k < 4; k++) {
        gd_node *n = gc_node(ar, ops[k], k == 1 || k == 2 ? 2 : 1);
        n->attrs->dtype = (gd_num){1, GD_F64};
        gd_kctx c = {.arena = tiny, .err = &err, .node = n};
        ck_assert_int_eq(n->op->backward(&c, in, x, x, want, din), GD_E_TOO_LARGE);
        ck_assert_int_eq(err.code, GD_E_TOO_LARGE);
    }
    gd_arena_free(tiny);
}
END_TEST

/* The rows say what the contract says: differentiability, zero causes, flags. */
START_TEST(test_table) {
    static const char *mask_ops[] = {"relu", "clip", "abs", "maximum", "minimum"};
    static const char *nodiff[] = {"round", "floor", "ceil", "sign", "greater", "greater_equal",
                                   "less", "less_equal", "equal", "not_equal"};
    int rows = 0;
    for (const gd_op_def *d = gd_ops_elementwise; d->name; d++, rows++) {
        ck_assert_msg(d->doc && strlen(d->doc) > 10, "%s: doc", d->name);
        ck_assert_msg((d->backward != NULL) == (d->differentiable != 0), "%s: backward iff differentiable", d->name);
        ck_assert_ptr_nonnull(d->infer);
        ck_assert_ptr_nonnull(d->forward);
        ck_assert_ptr_eq(gd_op_find(d->name), d);
        int is_mask = 0, is_nodiff = 0;
        for (size_t k = 0; k < sizeof mask_ops / sizeof mask_ops[0]; k++) is_mask |= !strcmp(d->name, mask_ops[k]);
        for (size_t k = 0; k < sizeof nodiff / sizeof nodiff[0]; k++) is_nodiff |= !strcmp(d->name, nodiff[k]);
        ck_assert_msg(d->zero_cause == (is_mask ? GD_ZERO_MASK : GD_ZERO_VALUE), "%s: zero_cause", d->name);
        ck_assert_msg(d->differentiable == !is_nodiff, "%s: differentiable", d->name);
        ck_assert_msg(!!(d->flags & GD_OPF_INT_OK) == !strcmp(d->name, "cast"), "%s: INT_OK", d->name);
    }
    ck_assert_int_eq(rows, 17 + 7 + 10 + 1);
    const gd_op_def *cast = gd_op_find("cast");
    ck_assert(cast->flags & GD_OPF_MAKES_INT);
    ck_assert_ptr_null(gd_op_attr(cast, "dtype")->dflt);
    ck_assert_str_eq(gd_op_attr(gd_op_find("leaky_relu"), "alpha")->dflt, "0.01");
    ck_assert_str_eq(gd_op_attr(gd_op_find("clip"), "min")->dflt, "null");
    ck_assert_str_eq(gd_op_attr(gd_op_find("clip"), "max")->dflt, "null");
}
END_TEST

Suite *suite_ops_elementwise(void) {
    Suite *s = suite_create("ops_elementwise");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gc_unary);
    tcase_add_test(tc, test_gc_leaky_relu_alpha);
    tcase_add_test(tc, test_gc_clip);
    tcase_add_test(tc, test_gc_binary);
    tcase_add_test(tc, test_empty_tensors);
    tcase_add_test(tc, test_gc_cast_identity);
    tcase_add_test(tc, test_unary_values);
    tcase_add_test(tc, test_unary_domain_and_nan);
    tcase_add_test(tc, test_sigmoid_softplus_extremes);
    tcase_add_test(tc, test_leaky_relu_values);
    tcase_add_test(tc, test_clip_values);
    tcase_add_test(tc, test_round_floor_ceil_sign);
    tcase_add_test(tc, test_compare_values);
    tcase_add_test(tc, test_binary_values);
    tcase_add_test(tc, test_maximum_minimum_nan);
    tcase_add_test(tc, test_large_tensors);
    tcase_add_test(tc, test_tie_gradients);
    tcase_add_test(tc, test_kink_gradients);
    tcase_add_test(tc, test_pow_edge_gradients);
    tcase_add_test(tc, test_div_sub_gradients);
    tcase_add_test(tc, test_unary_extreme_magnitudes);
    tcase_add_test(tc, test_binary_extreme_magnitudes);
    tcase_add_test(tc, test_masked_gradients_at_nan_and_inf);
    tcase_add_test(tc, test_cast_values);
    tcase_add_test(tc, test_cast_invalid_value);
    tcase_add_test(tc, test_attribute_errors);
    tcase_add_test(tc, test_shape_mismatch);
    tcase_add_test(tc, test_unknown_shapes);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_backward_memory_limit);
    tcase_add_test(tc, test_table);
    suite_add_tcase(s, tc);
    return s;
}
