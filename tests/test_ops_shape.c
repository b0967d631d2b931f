/* test_ops_shape.c - the shape family (reshape, transpose, broadcast_to,
 * concat, slice, gather) and the linalg family (matmul): gradients against
 * finite differences, forward values against hand-computed NumPy results,
 * int64 pass-through, every attribute/shape/dtype error, size limits and
 * cancellation of long kernels. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "tests.h"

static gd_arena *A;

static void setup(void) { A = gd_arena_new(0); }
static void teardown(void) { gd_arena_free(A); }

/* ---- helpers ---------------------------------------------------------- */

static gd_ints ints_of(int n, const int64_t *v) {
    gd_ints r = {.given = 1, .is_list = 1, .n = n};
    for (int i = 0; i < n; i++) r.v[i] = v[i];
    return r;
}
#define INTS(...) ints_of((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

static gd_ints axis1(int64_t v) { return (gd_ints){.given = 1, .is_list = 0, .n = 1, .v = {v}}; }

/* Forward that must succeed. */
static gd_tensor *run(gd_node *n, gd_tensor **in) {
    gd_error e;
    gd_tensor *o = NULL;
    gd_error_clear(&e);
    int rc = gc_forward(A, n, in, &o, &e);
    ck_assert_msg(rc == 0, "forward of %s failed: %s", n->op->name, e.message);
    return o;
}

/* Forward that must fail with `code`; returns the error for further checks. */
static gd_error run_err(gd_node *n, gd_tensor **in, gd_err code) {
    gd_error e;
    gd_tensor *o = NULL;
    gd_error_clear(&e);
    int rc = gc_forward(A, n, in, &o, &e);
    ck_assert_msg(rc == (int)code, "%s: expected %s, got %s (%s)", n->op->name, gd_err_code(code),
                  gd_err_code((gd_err)rc), e.message);
    ck_assert_int_eq(e.code, code);
    return e;
}

/* Infer only, on metas (no data needed). */
static int infer(gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *e) {
    gd_error_clear(e);
    return n->op->infer(n, in, lim, out, e);
}

static gd_meta meta(gd_dtype t, const char *shape) { return (gd_meta){t, gc_shape(shape)}; }
static gd_meta unknown(gd_dtype t) { return (gd_meta){t, {.rank = -1}}; }

static void expect_shape(const gd_tensor *t, const char *shape) {
    gd_shape s = gc_shape(shape);
    char a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
    ck_assert_msg(gd_shape_eq(&t->shape, &s), "shape %s, expected %s", gd_shape_str(&t->shape, a, sizeof a),
                  gd_shape_str(&s, b, sizeof b));
}

static void expect_f64(const gd_tensor *t, const char *shape, const double *v) {
    expect_shape(t, shape);
    ck_assert_int_eq(t->dtype, GD_F64);
    for (int64_t i = 0; i < t->n; i++)
        ck_assert_msg(gd_f64(t)[i] == v[i], "element %lld: %.17g, expected %.17g", (long long)i, gd_f64(t)[i], v[i]);
}

static void expect_i64(const gd_tensor *t, const char *shape, const int64_t *v) {
    expect_shape(t, shape);
    ck_assert_int_eq(t->dtype, GD_I64);
    for (int64_t i = 0; i < t->n; i++)
        ck_assert_msg(gd_i64(t)[i] == v[i], "element %lld: %lld, expected %lld", (long long)i,
                      (long long)gd_i64(t)[i], (long long)v[i]);
}

/* 0, 1, 2, ... as float64 of the given shape. */
static gd_tensor *arange(const char *shape) {
    gd_shape s = gc_shape(shape);
    gd_tensor *t = gd_tensor_new(A, &s, GD_F64, 0);
    for (int64_t i = 0; i < t->n; i++) gd_f64(t)[i] = (double)i;
    return t;
}

/* Big int64 values (not exactly representable as double) so that any
 * float64 round trip would show. */
#define BIG 9007199254740993LL /* 2^53 + 1 */
static gd_tensor *arange_i64(const char *shape) {
    gd_shape s = gc_shape(shape);
    gd_tensor *t = gd_tensor_new(A, &s, GD_I64, 0);
    for (int64_t i = 0; i < t->n; i++) gd_i64(t)[i] = BIG + 2 * i;
    return t;
}

static void grad_ok(gd_node *n, gd_tensor **in, unsigned mask, uint64_t seed) {
    gc_rng r = {seed};
    double err = gc_check(A, &r, n, in, mask);
    ck_assert_double_le(err, GC_TOL);
}

/* Run the backward rule directly with a given cotangent; returns din. */
static void backward(gd_node *n, gd_tensor **in, const gd_tensor *out, const gd_tensor *dout, const int *want,
                     gd_tensor **din) {
    gd_error e;
    gd_error_clear(&e);
    gd_kctx c = {.arena = A, .err = &e, .node = n};
    for (int i = 0; i < n->n_in; i++) din[i] = NULL;
    int rc = n->op->backward(&c, (const gd_tensor *const *)in, out, dout, want, din);
    ck_assert_msg(rc == 0, "backward of %s failed: %s", n->op->name, e.message);
}

/* ---- reshape ---------------------------------------------------------- */

START_TEST(test_reshape_grad) {
    gc_rng r = {1};
    gd_node *n = gc_node(A, "reshape", 1);
    n->attrs->shape = INTS(4, -1);
    gd_tensor *in[] = {gc_rand(A, &r, "2,3,4", -1, 1)};
    grad_ok(n, in, 1, 11);
    gd_tensor *o = run(n, in);
    expect_shape(o, "4,6");
    n->attrs->shape = INTS(-1);
    grad_ok(n, in, 1, 12);
}
END_TEST

START_TEST(test_reshape_forward) {
    gd_node *n = gc_node(A, "reshape", 1);
    n->attrs->shape = INTS(2, -1);
    gd_tensor *in[] = {arange("6")};
    double v[] = {0, 1, 2, 3, 4, 5};
    expect_f64(run(n, in), "2,3", v);
    /* [1] -> [] and back: a scalar. */
    n->attrs->shape = (gd_ints){.given = 1, .is_list = 1, .n = 0};
    gd_tensor *one[] = {arange("1,1")};
    double z[] = {0};
    expect_f64(run(n, one), "", z);
    /* int64 passes through unconverted. */
    n->attrs->shape = INTS(3, 1, -1);
    gd_tensor *iin[] = {arange_i64("2,3")};
    int64_t iv[] = {BIG, BIG + 2, BIG + 4, BIG + 6, BIG + 8, BIG + 10};
    expect_i64(run(n, iin), "3,1,2", iv);
    /* Empty tensors: [0,3] -> [-1, 3] is [0, 3], as NumPy. */
    n->attrs->shape = INTS(-1, 3);
    gd_tensor *e0[] = {arange("3,0")};
    expect_shape(run(n, e0), "0,3");
}
END_TEST

START_TEST(test_reshape_errors) {
    gd_node *n = gc_node(A, "reshape", 1);
    gd_tensor *in[] = {arange("2,3")};
    n->attrs->shape = INTS(4, 2);
    gd_error e = run_err(n, in, GD_E_SHAPE_MISMATCH);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].shape");
    ck_assert_ptr_nonnull(strstr(e.message, "[2, 3]"));
    ck_assert_ptr_nonnull(strstr(e.message, "[4, 2]"));
    n->attrs->shape = INTS(4, -1); /* 6 % 4 != 0 */
    run_err(n, in, GD_E_SHAPE_MISMATCH);
    n->attrs->shape = INTS(-1, -1);
    e = run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].shape");
    n->attrs->shape = INTS(-2, -3);
    run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    n->attrs->shape = (gd_ints){0}; /* required */
    run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    n->attrs->shape = INTS(1, 1, 1, 1, 1, 1, 1, 1);
    n->attrs->shape.n = 9; /* more than GD_MAX_RANK dims */
    run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    /* Size 0 with -1 is ambiguous (NumPy raises). */
    n->attrs->shape = INTS(0, -1);
    gd_tensor *z[] = {arange("0,3")};
    run_err(n, z, GD_E_SHAPE_MISMATCH);
}
END_TEST

START_TEST(test_reshape_unknown) {
    gd_node *n = gc_node(A, "reshape", 1);
    gd_meta in[] = {unknown(GD_I64)}, out;
    gd_error e;
    n->attrs->shape = INTS(2, -1);
    ck_assert_int_eq(infer(n, in, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, -1);
    ck_assert_int_eq(out.dtype, GD_I64);
    n->attrs->shape = INTS(2, 5);
    ck_assert_int_eq(infer(n, in, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, 2);
    ck_assert_int_eq(out.shape.dim[1], 5);
    gd_limits lim = {.max_elements = 5};
    ck_assert_int_eq(infer(n, in, &lim, &out, &e), GD_E_TOO_LARGE);
}
END_TEST

/* ---- transpose -------------------------------------------------------- */

START_TEST(test_transpose_grad) {
    gc_rng r = {2};
    gd_node *n = gc_node(A, "transpose", 1);
    gd_tensor *in[] = {gc_rand(A, &r, "2,3,4", -1, 1)};
    grad_ok(n, in, 1, 21); /* default: reversed */
    expect_shape(run(n, in), "4,3,2");
    n->attrs->axes = INTS(1, -1, 0);
    grad_ok(n, in, 1, 22);
    expect_shape(run(n, in), "3,4,2");
    n->attrs->axes = INTS(2, 0, 1);
    grad_ok(n, in, 1, 23);
}
END_TEST

START_TEST(test_transpose_forward) {
    gd_node *n = gc_node(A, "transpose", 1);
    gd_tensor *in[] = {arange("2,3")};
    double v[] = {0, 3, 1, 4, 2, 5};
    expect_f64(run(n, in), "3,2", v);
    /* numpy.arange(24).reshape(2,3,4).transpose(1,2,0), as int64. */
    n->attrs->axes = INTS(1, 2, 0);
    gd_tensor *iin[] = {arange_i64("2,3,4")};
    gd_tensor *o = run(n, iin);
    ck_assert_int_eq(o->dtype, GD_I64);
    expect_shape(o, "3,4,2");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 2; k++)
                ck_assert_int_eq(gd_i64(o)[(i * 4 + j) * 2 + k], BIG + 2 * (k * 12 + i * 4 + j));
    /* Rank 0 and rank 1 are the identity. */
    n->attrs->axes = (gd_ints){0};
    gd_tensor *s[] = {gd_tensor_scalar(A, 7)};
    double sv[] = {7};
    expect_f64(run(n, s), "", sv);
}
END_TEST

START_TEST(test_transpose_errors) {
    gd_node *n = gc_node(A, "transpose", 1);
    gd_tensor *in[] = {arange("2,3,4")};
    n->attrs->axes = INTS(0, 1, 1);
    gd_error e = run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].axes");
    n->attrs->axes = INTS(0, 1, 3);
    run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axes = INTS(0, 1, -4);
    run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axes = INTS(1, 0);
    run_err(n, in, GD_E_INVALID_ATTRIBUTE);
    /* Unknown rank: propagated, not failed. */
    gd_meta m[] = {unknown(GD_F64)}, out;
    ck_assert_int_eq(infer(n, m, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, -1);
}
END_TEST

/* ---- broadcast_to ----------------------------------------------------- */

START_TEST(test_broadcast_to_grad) {
    gc_rng r = {3};
    gd_node *n = gc_node(A, "broadcast_to", 1);
    n->attrs->shape = INTS(2, 3);
    gd_tensor *a[] = {gc_rand(A, &r, "3", -1, 1)};
    grad_ok(n, a, 1, 31);
    n->attrs->shape = INTS(2, 4);
    gd_tensor *b[] = {gc_rand(A, &r, "2,1", -1, 1)};
    grad_ok(n, b, 1, 32);
    n->attrs->shape = INTS(2, 2, 3);
    gd_tensor *c[] = {gc_rand(A, &r, "1,3", -1, 1)};
    grad_ok(n, c, 1, 33);
    /* The rule hands back the broadcast shape; the engine sums it down. */
    gd_tensor *o = run(n, c);
    int want[] = {1};
    gd_tensor *din[1];
    backward(n, c, o, o, want, din);
    expect_shape(din[0], "2,2,3");
}
END_TEST

START_TEST(test_broadcast_to_forward) {
    gd_node *n = gc_node(A, "broadcast_to", 1);
    n->attrs->shape = INTS(2, 3);
    gd_tensor *a[] = {arange("3")};
    double va[] = {0, 1, 2, 0, 1, 2};
    expect_f64(run(n, a), "2,3", va);
    n->attrs->shape = INTS(2, 4);
    gd_tensor *b[] = {arange_i64("2,1")};
    int64_t vb[] = {BIG, BIG, BIG, BIG, BIG + 2, BIG + 2, BIG + 2, BIG + 2};
    expect_i64(run(n, b), "2,4", vb);
    n->attrs->shape = INTS(2, 0); /* 1 -> 0 is allowed, as NumPy */
    gd_tensor *c[] = {arange("1")};
    expect_shape(run(n, c), "2,0");
    n->attrs->shape = (gd_ints){.given = 1, .is_list = 1, .n = 0};
    gd_tensor *s[] = {gd_tensor_scalar(A, 4)};
    double vs[] = {4};
    expect_f64(run(n, s), "", vs);
}
END_TEST

START_TEST(test_broadcast_to_errors) {
    gd_node *n = gc_node(A, "broadcast_to", 1);
    gd_tensor *a[] = {arange("2")};
    n->attrs->shape = INTS(3);
    gd_error e = run_err(n, a, GD_E_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(e.message, "'in0'"));
    gd_tensor *b[] = {arange("2,3")};
    n->attrs->shape = INTS(3);
    run_err(n, b, GD_E_SHAPE_MISMATCH);
    gd_tensor *c[] = {arange("0")};
    n->attrs->shape = INTS(1);
    run_err(n, c, GD_E_SHAPE_MISMATCH);
    n->attrs->shape = INTS(-1, 2);
    run_err(n, a, GD_E_INVALID_ATTRIBUTE);
    n->attrs->shape = (gd_ints){0};
    run_err(n, a, GD_E_INVALID_ATTRIBUTE);
    /* too_large before any allocation, even when the input's shape is unknown. */
    gd_meta m[] = {unknown(GD_F64)}, out;
    gd_limits lim = {.max_elements = 1000};
    n->attrs->shape = INTS(1000, 1000);
    ck_assert_int_eq(infer(n, m, &lim, &out, &e), GD_E_TOO_LARGE);
    n->attrs->shape = INTS(1LL << 40, 1LL << 40);
    ck_assert_int_eq(infer(n, m, NULL, &out, &e), GD_E_TOO_LARGE);
}
END_TEST

/* ---- concat ----------------------------------------------------------- */

START_TEST(test_concat_grad) {
    gc_rng r = {4};
    gd_node *n = gc_node(A, "concat", 3);
    n->attrs->axis = axis1(1);
    gd_tensor *a[] = {gc_rand(A, &r, "2,1,3", -1, 1), gc_rand(A, &r, "2,2,3", -1, 1), gc_rand(A, &r, "2,3,3", -1, 1)};
    grad_ok(n, a, 7, 41);
    expect_shape(run(n, a), "2,6,3");
    n->attrs->axis = axis1(-1);
    gd_tensor *b[] = {gc_rand(A, &r, "2,2", -1, 1), gc_rand(A, &r, "2,3", -1, 1), gc_rand(A, &r, "2,1", -1, 1)};
    grad_ok(n, b, 7, 42);
    grad_ok(n, b, 2, 43); /* only the middle one wanted */
    n->attrs->axis = (gd_ints){0}; /* default axis 0, an empty input among them */
    gd_tensor *c[] = {gc_rand(A, &r, "1,2", -1, 1), gc_rand(A, &r, "3,2", -1, 1), gc_rand(A, &r, "0,2", -1, 1)};
    grad_ok(n, c, 3, 44);
    gd_tensor *o = run(n, c);
    expect_shape(o, "4,2");
    int want[] = {1, 1, 1};
    gd_tensor *din[3];
    backward(n, c, o, o, want, din);
    expect_f64(din[1], "3,2", gd_f64(o) + 2);
    expect_shape(din[2], "0,2");
}
END_TEST

START_TEST(test_concat_forward) {
    gd_node *n = gc_node(A, "concat", 2);
    n->attrs->axis = axis1(1);
    gd_tensor *a[] = {arange("2,2"), arange("2,1")};
    double v[] = {0, 1, 0, 2, 3, 1};
    expect_f64(run(n, a), "2,3", v);
    /* all int64 -> int64 */
    gd_tensor *b[] = {arange_i64("2,1"), arange_i64("2,1")};
    int64_t vb[] = {BIG, BIG, BIG + 2, BIG + 2};
    expect_i64(run(n, b), "2,2", vb);
    /* mixed -> float64, converted */
    int64_t iv[] = {-3, 9};
    gd_tensor *c[] = {arange("2,1"), gc_i64(A, "2,1", iv)};
    double vc[] = {0, -3, 1, 9};
    expect_f64(run(n, c), "2,2", vc);
    /* one input */
    gd_node *one = gc_node(A, "concat", 1);
    gd_tensor *d[] = {arange("3")};
    double vd[] = {0, 1, 2};
    expect_f64(run(one, d), "3", vd);
}
END_TEST

START_TEST(test_concat_errors) {
    gd_node *n = gc_node(A, "concat", 2);
    gd_tensor *a[] = {arange("2,3"), arange("3,3")};
    n->attrs->axis = axis1(1);
    gd_error e = run_err(n, a, GD_E_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(e.message, "'in1' has shape [3, 3]"));
    gd_tensor *b[] = {arange("2,3"), arange("2,3,1")};
    run_err(n, b, GD_E_SHAPE_MISMATCH);
    n->attrs->axis = axis1(2);
    gd_tensor *c[] = {arange("2,3"), arange("2,3")};
    run_err(n, c, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axis = INTS(0);
    run_err(n, c, GD_E_INVALID_ATTRIBUTE); /* a list is not an axis here */
    n->attrs->axis = axis1(0);
    gd_tensor *s[] = {gd_tensor_scalar(A, 1), gd_tensor_scalar(A, 2)};
    run_err(n, s, GD_E_SHAPE_MISMATCH);
    /* Unknown shapes propagate; known mismatches among the rest still fail. */
    gd_meta m[] = {unknown(GD_I64), meta(GD_I64, "2")}, out;
    ck_assert_int_eq(infer(n, m, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, -1);
    ck_assert_int_eq(out.dtype, GD_I64);
    gd_node *n3 = gc_node(A, "concat", 3);
    n3->attrs->axis = axis1(1);
    gd_meta m3[] = {meta(GD_F64, "2,3"), unknown(GD_F64), meta(GD_F64, "4,3")};
    ck_assert_int_eq(infer(n3, m3, NULL, &out, &e), GD_E_SHAPE_MISMATCH);
    gd_limits lim = {.max_elements = 5};
    gd_meta m4[] = {meta(GD_F64, "1,3"), meta(GD_F64, "1,3"), meta(GD_F64, "1,3")};
    ck_assert_int_eq(infer(n3, m4, &lim, &out, &e), GD_E_TOO_LARGE);
}
END_TEST

/* ---- slice ------------------------------------------------------------ */

START_TEST(test_slice_grad) {
    gc_rng r = {5};
    gd_node *n = gc_node(A, "slice", 1);
    gd_tensor *x[] = {gc_rand(A, &r, "4,5,6", -1, 1)};
    n->attrs->starts = INTS(-3, 1);
    n->attrs->ends = INTS(100, 4); /* clamped end */
    grad_ok(n, x, 1, 51);
    expect_shape(run(n, x), "3,3,6");
    n->attrs->starts = INTS(0, 5);
    n->attrs->ends = INTS(6, 0);
    n->attrs->axes = INTS(2, -2);
    n->attrs->steps = INTS(2, -2); /* step 2 on axis 2, negative step on axis 1 */
    grad_ok(n, x, 1, 52);
    expect_shape(run(n, x), "4,2,3");
    n->attrs->starts = INTS(-1);
    n->attrs->ends = INTS(INT64_MIN);
    n->attrs->axes = INTS(1); /* subset of axes, reversed */
    n->attrs->steps = INTS(-1);
    grad_ok(n, x, 1, 53);
    expect_shape(run(n, x), "4,5,6");
    /* An empty result still gives a (zero) gradient of x's shape. */
    n->attrs->starts = INTS(3);
    n->attrs->ends = INTS(1);
    n->attrs->steps = (gd_ints){0};
    n->attrs->axes = (gd_ints){0};
    grad_ok(n, x, 1, 54);
    gd_tensor *o = run(n, x);
    expect_shape(o, "0,5,6");
    int want[] = {1};
    gd_tensor *din[1];
    backward(n, x, o, o, want, din);
    expect_shape(din[0], "4,5,6");
    ck_assert(gd_all_zero(din[0]));
}
END_TEST

/* Python's list slicing on range(10), element by element. */
static void slice_1d(int64_t start, int64_t stop, int64_t step, int n, const double *v) {
    gd_node *s = gc_node(A, "slice", 1);
    s->attrs->starts = INTS(start);
    s->attrs->ends = INTS(stop);
    s->attrs->steps = INTS(step);
    gd_tensor *in[] = {arange("10")};
    gd_tensor *o = run(s, in);
    ck_assert_int_eq(o->shape.rank, 1);
    ck_assert_int_eq(o->shape.dim[0], n);
    for (int i = 0; i < n; i++) ck_assert_double_eq(gd_f64(o)[i], v[i]);
}

START_TEST(test_slice_forward) {
    slice_1d(-3, 100, 1, 3, (double[]){7, 8, 9});
    slice_1d(1, 8, 2, 4, (double[]){1, 3, 5, 7});
    slice_1d(8, 1, -3, 3, (double[]){8, 5, 2});
    slice_1d(-1, -11, -1, 10, (double[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    slice_1d(-1, INT64_MIN, -1, 10, (double[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    slice_1d(4, -1, -1, 0, NULL);                /* x[4:-1:-1] is empty */
    slice_1d(-100, 2, 1, 2, (double[]){0, 1});   /* start clamps to 0 */
    slice_1d(100, 5, -2, 2, (double[]){9, 7});   /* start clamps to len-1 */
    slice_1d(-20, 5, -1, 0, NULL);               /* start below 0 with step < 0: empty */
    slice_1d(-20, INT64_MIN, -1, 0, NULL);       /* x[-20::-1] is empty too */
    slice_1d(-10, INT64_MIN, -1, 1, (double[]){0}); /* x[-10::-1] is [0] */
    slice_1d(5, 2, 1, 0, NULL);
    slice_1d(0, INT64_MAX, INT64_MAX, 1, (double[]){0});
    slice_1d(INT64_MAX, INT64_MIN, INT64_MIN, 1, (double[]){9});
    slice_1d(3, 4, 1, 1, (double[]){3});
    /* 2-D: x[:, 1:3] via axes, and int64 kept bit for bit. */
    gd_node *n = gc_node(A, "slice", 1);
    n->attrs->starts = INTS(1);
    n->attrs->ends = INTS(3);
    n->attrs->axes = INTS(1);
    gd_tensor *x[] = {arange("3,4")};
    double v[] = {1, 2, 5, 6, 9, 10};
    expect_f64(run(n, x), "3,2", v);
    gd_tensor *xi[] = {arange_i64("3,4")};
    int64_t vi[] = {BIG + 2, BIG + 4, BIG + 10, BIG + 12, BIG + 18, BIG + 20};
    expect_i64(run(n, xi), "3,2", vi);
    /* x[::-1, ::2] with default axes */
    n->attrs->starts = INTS(-1, 0);
    n->attrs->ends = INTS(INT64_MIN, INT64_MAX);
    n->attrs->steps = INTS(-1, 2);
    n->attrs->axes = (gd_ints){0};
    double w[] = {8, 10, 4, 6, 0, 2};
    expect_f64(run(n, x), "3,2", w);
}
END_TEST

START_TEST(test_slice_errors) {
    gd_node *n = gc_node(A, "slice", 1);
    gd_tensor *x[] = {arange("3,4")};
    n->attrs->starts = INTS(0);
    n->attrs->ends = INTS(2);
    n->attrs->steps = INTS(0);
    gd_error e = run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].steps");
    n->attrs->steps = INTS(1, 1);
    run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    n->attrs->steps = (gd_ints){0};
    n->attrs->ends = INTS(2, 3);
    e = run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].ends");
    n->attrs->ends = INTS(2);
    n->attrs->axes = INTS(2);
    run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axes = INTS(0, 1);
    run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    n->attrs->starts = INTS(0, 0);
    n->attrs->ends = INTS(1, 1);
    n->attrs->axes = INTS(1, -1); /* repeated */
    run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axes = (gd_ints){0};
    n->attrs->starts = INTS(0, 0, 0); /* more axes than the rank */
    n->attrs->ends = INTS(1, 1, 1);
    run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    n->attrs->starts = (gd_ints){0};
    e = run_err(n, x, GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].starts");
    /* Unknown rank: lengths and steps are still checked. */
    gd_meta m[] = {unknown(GD_F64)}, out;
    n->attrs->starts = INTS(0);
    n->attrs->ends = INTS(1);
    ck_assert_int_eq(infer(n, m, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, -1);
    n->attrs->steps = INTS(0);
    ck_assert_int_eq(infer(n, m, NULL, &out, &e), GD_E_INVALID_ATTRIBUTE);
}
END_TEST

/* ---- gather ----------------------------------------------------------- */

START_TEST(test_gather_grad) {
    gc_rng r = {6};
    gd_node *n = gc_node(A, "gather", 2);
    int64_t i0[] = {2, -1, 0, 2, 2};
    gd_tensor *a[] = {gc_rand(A, &r, "4,3", -1, 1), gc_i64(A, "5", i0)};
    grad_ok(n, a, 1, 61); /* axis 0, negative and repeated indices */
    expect_shape(run(n, a), "5,3");
    n->attrs->axis = axis1(1);
    int64_t i1[] = {0, -3, 1, 1, 2, 0};
    gd_tensor *b[] = {gc_rand(A, &r, "2,3,2", -1, 1), gc_i64(A, "2,3", i1)};
    grad_ok(n, b, 1, 62); /* axis 1, 2-D indices */
    expect_shape(run(n, b), "2,2,3,2");
    n->attrs->axis = axis1(-1);
    gd_tensor *c[] = {gc_rand(A, &r, "2,3,2", -1, 1), gc_i64(A, "3", (int64_t[]){1, 1, -2})};
    grad_ok(n, c, 1, 63);
    /* Repeated indices add up: take([a, b, c], [1, 1, 1]) has gradient [0, 3, 0] for ones. */
    n->attrs->axis = (gd_ints){0};
    gd_tensor *d[] = {arange("3"), gc_i64(A, "3", (int64_t[]){1, 1, -2})};
    gd_tensor *o = run(n, d);
    gd_tensor *ones = gd_tensor_new(A, &o->shape, GD_F64, 0);
    for (int i = 0; i < 3; i++) gd_f64(ones)[i] = 1;
    int want[] = {1, 1};
    gd_tensor *din[2];
    backward(n, d, o, ones, want, din);
    expect_f64(din[0], "3", (double[]){0, 3, 0});
    ck_assert_ptr_null(din[1]); /* indices never get a gradient */
    ck_assert_uint_eq(n->op->nograd_inputs, 2u);
}
END_TEST

START_TEST(test_gather_forward) {
    gd_node *n = gc_node(A, "gather", 2);
    /* numpy.take(arange(12).reshape(3,4), [[2, 0], [-1, 1]], axis=0) */
    gd_tensor *a[] = {arange("3,4"), gc_i64(A, "2,2", (int64_t[]){2, 0, -1, 1})};
    double va[] = {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7};
    expect_f64(run(n, a), "2,2,4", va);
    /* axis=1 with a scalar index: numpy.take(x, -1, axis=1) -> [3, 7, 11] */
    n->attrs->axis = axis1(1);
    gd_tensor *b[] = {arange("3,4"), gc_i64(A, "", (int64_t[]){-1})};
    expect_f64(run(n, b), "3", (double[]){3, 7, 11});
    /* int64 params keep their dtype */
    gd_tensor *c[] = {arange_i64("2,3"), gc_i64(A, "2", (int64_t[]){2, -3})};
    expect_i64(run(n, c), "2,2", (int64_t[]){BIG + 4, BIG, BIG + 10, BIG + 6});
    /* empty indices */
    gd_shape e0 = gc_shape("0");
    gd_tensor *d[] = {arange("2,3"), gd_tensor_new(A, &e0, GD_I64, 0)};
    expect_shape(run(n, d), "2,0");
}
END_TEST

START_TEST(test_gather_errors) {
    gd_node *n = gc_node(A, "gather", 2);
    gd_tensor *a[] = {arange("3"), gc_f64(A, "1", (double[]){1})};
    gd_error e = run_err(n, a, GD_E_DTYPE_MISMATCH);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].inputs[1]");
    gd_tensor *b[] = {arange("3"), gc_i64(A, "2", (int64_t[]){0, 5})};
    e = run_err(n, b, GD_E_INDEX_OUT_OF_RANGE);
    ck_assert_ptr_nonnull(strstr(e.message, "'gather'")); /* gc_node names the node after its op */
    ck_assert_ptr_nonnull(strstr(e.message, "index 5 at flat position 1"));
    ck_assert_ptr_nonnull(strstr(e.message, "size 3"));
    gd_tensor *c[] = {arange("3"), gc_i64(A, "1", (int64_t[]){-4})};
    e = run_err(n, c, GD_E_INDEX_OUT_OF_RANGE);
    ck_assert_ptr_nonnull(strstr(e.message, "-4"));
    gd_tensor *z[] = {arange("0,2"), gc_i64(A, "1", (int64_t[]){0})};
    run_err(n, z, GD_E_INDEX_OUT_OF_RANGE);
    gd_tensor *big[] = {arange("3"), gc_i64(A, "1", (int64_t[]){INT64_MIN})};
    run_err(n, big, GD_E_INDEX_OUT_OF_RANGE);
    n->attrs->axis = axis1(1);
    gd_tensor *d[] = {arange("3"), gc_i64(A, "1", (int64_t[]){0})};
    run_err(n, d, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axis = INTS(0, 1);
    run_err(n, d, GD_E_INVALID_ATTRIBUTE);
    n->attrs->axis = (gd_ints){0};
    gd_tensor *s[] = {gd_tensor_scalar(A, 1), gc_i64(A, "1", (int64_t[]){0})};
    run_err(n, s, GD_E_INVALID_ATTRIBUTE);
    /* Inference: unknown shapes propagate, rank over the maximum fails, size limit. */
    gd_meta m[] = {unknown(GD_F64), meta(GD_I64, "2")}, out;
    ck_assert_int_eq(infer(n, m, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, -1);
    gd_meta m2[] = {meta(GD_F64, "2,2,2,2,2"), meta(GD_I64, "2,2,2,2,2")};
    ck_assert_int_eq(infer(n, m2, NULL, &out, &e), GD_E_INVALID_VALUE);
    gd_limits lim = {.max_elements = 10};
    gd_meta m3[] = {meta(GD_F64, "3,4"), meta(GD_I64, "3")};
    ck_assert_int_eq(infer(n, m3, &lim, &out, &e), GD_E_TOO_LARGE);
    /* The backward re-checks indices rather than writing out of bounds. */
    gd_tensor *o = gd_tensor_new(A, &(gd_shape){.rank = 1, .dim = {2}}, GD_F64, 1);
    gd_kctx c2 = {.arena = A, .err = &e, .node = n};
    gd_tensor *din[2] = {0};
    ck_assert_int_eq(n->op->backward(&c2, (const gd_tensor *const *)b, o, o, (int[]){1, 0}, din),
                     GD_E_INDEX_OUT_OF_RANGE);
}
END_TEST

/* ---- matmul ----------------------------------------------------------- */

/* Gradient check, and the rule's din shapes equal the inputs' exactly. */
static void mm_case(const char *as, const char *bs, const char *outs, uint64_t seed) {
    gc_rng r = {seed};
    gd_node *n = gc_node(A, "matmul", 2);
    gd_tensor *in[] = {gc_rand(A, &r, as, -1, 1), gc_rand(A, &r, bs, -1, 1)};
    double err = gc_check(A, &r, n, in, 3);
    ck_assert_msg(err <= GC_TOL, "matmul %s x %s: gradcheck error %g", as, bs, err);
    gd_tensor *o = run(n, in);
    expect_shape(o, outs);
    int want[] = {1, 1};
    gd_tensor *din[2];
    backward(n, in, o, o, want, din);
    ck_assert(gd_shape_eq(&din[0]->shape, &in[0]->shape));
    ck_assert(gd_shape_eq(&din[1]->shape, &in[1]->shape));
}

START_TEST(test_matmul_grad) {
    mm_case("2,3", "3,4", "2,4", 71);
    mm_case("3", "3,4", "4", 72);
    mm_case("2,3", "3", "2", 73);
    mm_case("3", "3", "", 74);
    mm_case("5,2,3", "3,4", "5,2,4", 75);
    mm_case("2,3", "5,3,4", "5,2,4", 76);
    mm_case("2,1,2,3", "3,3,4", "2,3,2,4", 77);
    mm_case("3,2,3", "2,1,3,4", "2,3,2,4", 78);
    mm_case("5,2,3", "5,3,4", "5,2,4", 79);
    mm_case("3", "2,3,4", "2,4", 80);
    mm_case("4,2,3", "3", "4,2", 81);
    mm_case("2,3", "1,3,4", "1,2,4", 82);
    mm_case("1,1", "1,1", "1,1", 83);
}
END_TEST

/* out[t] = a[t] @ b[t] by the definition, with NumPy batch broadcasting of
 * [2,1,M,K] x [3,K,N]. */
START_TEST(test_matmul_forward) {
    gd_node *n = gc_node(A, "matmul", 2);
    gd_tensor *a[] = {arange("2,3"), arange("3,2")};
    /* [[0,1,2],[3,4,5]] @ [[0,1],[2,3],[4,5]] */
    expect_f64(run(n, a), "2,2", (double[]){10, 13, 28, 40});
    gd_tensor *b[] = {gc_f64(A, "3", (double[]){1, 2, 3}), gc_f64(A, "3", (double[]){4, -5, 6})};
    expect_f64(run(n, b), "", (double[]){12});
    gd_tensor *c[] = {gc_f64(A, "3", (double[]){1, 2, 3}), arange("3,2")};
    expect_f64(run(n, c), "2", (double[]){16, 22});
    gd_tensor *d[] = {arange("2,3"), gc_f64(A, "3", (double[]){1, 2, 3})};
    expect_f64(run(n, d), "2", (double[]){8, 26});
    gc_rng r = {7};
    gd_tensor *e[] = {gc_rand(A, &r, "2,1,2,3", -1, 1), gc_rand(A, &r, "3,3,4", -1, 1)};
    gd_tensor *o = run(n, e);
    expect_shape(o, "2,3,2,4");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int m = 0; m < 2; m++)
                for (int k = 0; k < 4; k++) {
                    double s = 0;
                    for (int q = 0; q < 3; q++)
                        s += gd_f64(e[0])[(i * 2 + m) * 3 + q] * gd_f64(e[1])[(j * 3 + q) * 4 + k];
                    ck_assert_double_eq_tol(gd_f64(o)[((i * 3 + j) * 2 + m) * 4 + k], s, 1e-14);
                }
    /* int64 operands are converted by the engine (no INT_OK): output float64. */
    ck_assert_uint_eq(n->op->flags & GD_OPF_INT_OK, 0);
    gd_tensor *f[] = {arange_i64("1,1"), gc_f64(A, "1,1", (double[]){1})};
    gd_tensor *of = run(n, f);
    ck_assert_int_eq(of->dtype, GD_F64);
}
END_TEST

/* matmul at magnitudes near 1e±300, and a zero cotangent against an
 * infinite operand (A8: multiplied like any other, 0 x Inf = NaN; BLAS
 * must not skip the zero). Expected values: PyTorch 1.13.1, float64:
 *   a = [[1e300, 1e-300], [5e-324, -1e-300]], b = [[1e-300, 1e300], [1e300, 2]]
 *   (a @ b).backward([[1e-300, 1e300], [0, 1e-300]])
 *   a.grad -> [[inf, 2e300], [1, 2e-300]], b.grad -> [[1, inf], [0, 1]];
 *   a = [[inf, 1]], b = [[2], [3]], (a @ b).backward([[0.]]) -> b.grad [[nan], [0]]. */
START_TEST(test_matmul_extreme_and_zero_cotangent) {
    gd_node *n = gc_node(A, "matmul", 2);
    int want[] = {1, 1};
    gd_tensor *din[2];
    gd_tensor *in[] = {gc_f64(A, "2,2", (double[]){1e300, 1e-300, 5e-324, -1e-300}),
                       gc_f64(A, "2,2", (double[]){1e-300, 1e300, 1e300, 2})};
    gd_tensor *o = run(n, in);
    backward(n, in, o, gc_f64(A, "2,2", (double[]){1e-300, 1e300, 0, 1e-300}), want, din);
    expect_f64(din[0], "2,2", (double[]){INFINITY, 2e300, 1, 2e-300});
    expect_f64(din[1], "2,2", (double[]){1, INFINITY, 0, 1});
    gd_tensor *z[] = {gc_f64(A, "1,2", (double[]){INFINITY, 1}), gc_f64(A, "2,1", (double[]){2, 3})};
    o = run(n, z);
    backward(n, z, o, gc_f64(A, "1,1", (double[]){0}), want, din);
    ck_assert(isnan(gd_f64(din[1])[0]));
    ck_assert(gd_f64(din[1])[1] == 0);
    expect_f64(din[0], "1,2", (double[]){0, 0});
}
END_TEST

/* Products that overflow float64 do not decide a result (A8; difftest seed
 * 1201 case 120954, where BLAS gave -inf for a true +2.5e615 and PyTorch
 * NaN): a non-finite element is recomputed without overflow. Expected values
 * by exact arithmetic (Python's fractions). */
START_TEST(test_matmul_overflowing_products) {
    gd_node *n = gc_node(A, "matmul", 2);
    int want[] = {1, 1};
    gd_tensor *din[2];
    /* -3e308 + 2.5e615 - 1e600: +inf whatever order the products come in */
    gd_tensor *f[] = {gc_f64(A, "1,3", (double[]){1e308, 5e307, 2e300}),
                      gc_f64(A, "3,1", (double[]){-3, 5e307, -5e299})};
    expect_f64(run(n, f), "1,1", (double[]){INFINITY});
    /* 1e400 - 1e400 + 1 is 1, not inf - inf; likewise each gradient */
    gd_tensor *c[] = {gc_f64(A, "3", (double[]){1e200, 1e200, 1}), gc_f64(A, "3", (double[]){1e200, -1e200, 1})};
    gd_tensor *o = run(n, c);
    expect_f64(o, "", (double[]){1});
    gd_tensor *x[] = {gc_f64(A, "1,2", (double[]){1e200, 1e200}), gc_f64(A, "2,2,1", (double[]){1e200, 1, -1e200, 1})};
    o = run(n, x);
    expect_f64(o, "2,1,1", (double[]){INFINITY, -INFINITY});
    /* da [1, 2] sums both batches: 1e200 * 1e200 + 1e200 * -1e200 = 0, and 2e200;
     * db [2, 2, 1]: a^T @ g per batch, 1e400 everywhere */
    backward(n, x, o, gc_f64(A, "2,1,1", (double[]){1e200, 1e200}), want, din);
    expect_f64(din[0], "1,2", (double[]){0, 2e200});
    expect_f64(din[1], "2,2,1", (double[]){INFINITY, INFINITY, INFINITY, INFINITY});
    /* a NaN operand still gives NaN, and only where it is read */
    gd_tensor *q[] = {gc_f64(A, "2,2", (double[]){NAN, 1, 1e300, 1e300}), gc_f64(A, "2,1", (double[]){1e300, -1e300})};
    o = run(n, q);
    ck_assert(isnan(gd_f64(o)[0]));
    ck_assert(gd_f64(o)[1] == 0);
}
END_TEST

/* slice and gather scatter: the elements they did not select get exactly 0
 * whatever the cotangent holds, the selected ones get it as is (PyTorch
 * 1.13.1: x[1:].backward([inf, nan]) on x = [1, 2, 3] -> [0., inf, nan]). */
START_TEST(test_scatter_selects_exact_zeros) {
    gd_node *n = gc_node(A, "slice", 1);
    n->attrs->starts = INTS(1);
    n->attrs->ends = INTS(3);
    gd_tensor *x[] = {gc_f64(A, "3", (double[]){1, 2, 3})};
    gd_tensor *o = run(n, x), *din[2];
    backward(n, x, o, gc_f64(A, "2", (double[]){INFINITY, NAN}), (int[]){1}, din);
    ck_assert(gd_f64(din[0])[0] == 0 && !signbit(gd_f64(din[0])[0]));
    ck_assert(gd_f64(din[0])[1] == INFINITY);
    ck_assert(isnan(gd_f64(din[0])[2]));
    gd_node *g = gc_node(A, "gather", 2);
    gd_tensor *p[] = {gc_f64(A, "3", (double[]){1, 2, 3}), gc_i64(A, "1", (int64_t[]){2})};
    o = run(g, p);
    backward(g, p, o, gc_f64(A, "1", (double[]){NAN}), (int[]){1, 0}, din);
    ck_assert(gd_f64(din[0])[0] == 0 && gd_f64(din[0])[1] == 0);
    ck_assert(isnan(gd_f64(din[0])[2]));
}
END_TEST

/* K = 0 gives zeros; M or N = 0 gives an empty output; the gradients are
 * zeros of the inputs' shapes. No BLAS call sees a zero size. */
START_TEST(test_matmul_empty) {
    gd_node *n = gc_node(A, "matmul", 2);
    int want[] = {1, 1};
    gd_tensor *din[2];
    gd_tensor *k0[] = {arange("2,0"), arange("0,3")};
    gd_tensor *o = run(n, k0);
    expect_f64(o, "2,3", (double[]){0, 0, 0, 0, 0, 0});
    backward(n, k0, o, o, want, din);
    expect_shape(din[0], "2,0");
    expect_shape(din[1], "0,3");
    gd_tensor *m0[] = {arange("0,3"), arange("3,4")};
    o = run(n, m0);
    expect_shape(o, "0,4");
    backward(n, m0, o, o, want, din);
    expect_shape(din[1], "3,4");
    ck_assert(gd_all_zero(din[1]));
    gd_tensor *n0[] = {arange("2,3"), arange("3,0")};
    o = run(n, n0);
    expect_shape(o, "2,0");
    backward(n, n0, o, o, want, din);
    expect_shape(din[0], "2,3");
    ck_assert(gd_all_zero(din[0]));
    gd_tensor *b0[] = {arange("0,2,3"), arange("1,3,4")};
    o = run(n, b0);
    expect_shape(o, "0,2,4");
    backward(n, b0, o, o, want, din);
    expect_shape(din[1], "1,3,4");
    ck_assert(gd_all_zero(din[1]));
    gd_tensor *v0[] = {arange("0"), arange("0")};
    expect_f64(run(n, v0), "", (double[]){0});
}
END_TEST

START_TEST(test_matmul_errors) {
    gd_node *n = gc_node(A, "matmul", 2);
    gd_tensor *a[] = {arange("2,3"), arange("4,5")};
    gd_error e = run_err(n, a, GD_E_SHAPE_MISMATCH);
    ck_assert_str_eq(e.message, "Node 'matmul' (matmul): inner dimensions differ: 'in0' has shape [2, 3], 'in1' "
                                "has shape [4, 5].");
    gd_tensor *b[] = {arange("3"), arange("4")};
    run_err(n, b, GD_E_SHAPE_MISMATCH);
    gd_tensor *c[] = {arange("2,2,3"), arange("3,3,4")};
    e = run_err(n, c, GD_E_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(e.message, "batch"));
    gd_tensor *s[] = {gd_tensor_scalar(A, 2), arange("3")};
    run_err(n, s, GD_E_SHAPE_MISMATCH);
    gd_tensor *s2[] = {arange("3"), gd_tensor_scalar(A, 2)};
    run_err(n, s2, GD_E_SHAPE_MISMATCH);
    /* too_large found by inference, before memory is spent. */
    gd_limits lim = {.max_elements = 100};
    gd_meta m[] = {meta(GD_F64, "20,30"), meta(GD_F64, "30,40")}, out;
    ck_assert_int_eq(infer(n, m, &lim, &out, &e), GD_E_TOO_LARGE);
    lim.max_elements = 800;
    ck_assert_int_eq(infer(n, m, &lim, &out, &e), 0);
    gd_meta ov[] = {meta(GD_F64, "4000000000,1"), meta(GD_F64, "1,4000000000")};
    ck_assert_int_eq(infer(n, ov, NULL, &out, &e), GD_E_TOO_LARGE);
    gd_meta k[] = {meta(GD_F64, "3000000000"), meta(GD_F64, "3000000000")};
    ck_assert_int_eq(infer(n, k, NULL, &out, &e), GD_E_TOO_LARGE);
    /* Unknown shapes propagate; a known scalar still fails. */
    gd_meta u[] = {unknown(GD_F64), meta(GD_F64, "3")};
    ck_assert_int_eq(infer(n, u, NULL, &out, &e), 0);
    ck_assert_int_eq(out.shape.rank, -1);
    gd_meta us[] = {unknown(GD_F64), meta(GD_F64, "")};
    ck_assert_int_eq(infer(n, us, NULL, &out, &e), GD_E_SHAPE_MISMATCH);
}
END_TEST

/* Products big enough to be split into several dgemm calls (forward and
 * both backward products, folded and batched) agree with the definition. */
static void mm_big(const char *as, const char *bs, int batched) {
    gc_rng r = {8};
    gd_node *n = gc_node(A, "matmul", 2);
    gd_tensor *in[] = {gc_rand(A, &r, as, -1, 1), gc_rand(A, &r, bs, -1, 1)};
    gd_tensor *o = run(n, in);
    gd_tensor *g = gd_tensor_new(A, &o->shape, GD_F64, 0);
    for (int64_t i = 0; i < g->n; i++) gd_f64(g)[i] = gc_uniform(&r, -1, 1);
    int want[] = {1, 1};
    gd_tensor *din[2];
    backward(n, in, o, g, want, din);
    int64_t M = in[0]->shape.dim[in[0]->shape.rank - 2], K = in[0]->shape.dim[in[0]->shape.rank - 1];
    int64_t N = in[1]->shape.dim[in[1]->shape.rank - 1];
    int64_t nb = batched ? in[0]->shape.dim[0] : 1;
    const double *a = gd_f64(in[0]), *b = gd_f64(in[1]), *G = gd_f64(g);
    for (int s = 0; s < 40; s++) { /* spot checks spread over every chunk */
        int64_t t = (int64_t)(gc_next(&r) % (uint64_t)nb), i = (int64_t)(gc_next(&r) % (uint64_t)M);
        int64_t j = (int64_t)(gc_next(&r) % (uint64_t)N), q = (int64_t)(gc_next(&r) % (uint64_t)K);
        const double *at = a + t * M * K, *bt = b + (batched ? t : 0) * K * N, *Gt = G + t * M * N;
        double out = 0, da = 0, db = 0;
        for (int64_t k = 0; k < K; k++) out += at[i * K + k] * bt[k * N + j];
        for (int64_t k = 0; k < N; k++) da += Gt[i * N + k] * bt[q * N + k];
        for (int64_t u = 0; u < nb; u++)
            if (batched ? u == t : 1)
                for (int64_t k = 0; k < M; k++) db += a[(u * M + k) * K + q] * G[(u * M + k) * N + j];
        ck_assert_double_eq_tol(gd_f64(o)[(t * M + i) * N + j], out, 1e-10);
        ck_assert_double_eq_tol(gd_f64(din[0])[(t * M + i) * K + q], da, 1e-10);
        ck_assert_double_eq_tol(gd_f64(din[1])[((batched ? t : 0) * K + q) * N + j], db, 1e-10);
    }
}

START_TEST(test_matmul_chunked) {
    /* Every product over 5e8 flops (GEMM_POLL_FLOPS) is split: by rows of C
     * when it has at least as many rows as columns, else by columns; with A
     * or B transposed. */
    mm_big("1500,350", "350,500", 0);    /* 525 Mflop: rows, rows, db by columns */
    mm_big("1200,700", "700,300", 0);    /* db = a^T g by rows (transposed A) */
    mm_big("2,500,700", "2,700,800", 1); /* 560 Mflop per batch: by columns, da with transposed B */
}
END_TEST

/* A cancelled request stops a long gemm and a long data move with
 * deadline_exceeded rather than running them to the end. */
START_TEST(test_cancel) {
    gd_cancel cancel = {0};
    atomic_store(&cancel.cancelled, 1);
    gd_error e;
    gd_error_clear(&e);
    gc_rng r = {9};
    gd_node *n = gc_node(A, "matmul", 2);
    gd_tensor *in[] = {gc_rand(A, &r, "1600,400", -1, 1), gc_rand(A, &r, "400,400", -1, 1)};
    gd_meta m[] = {{GD_F64, in[0]->shape}, {GD_F64, in[1]->shape}}, om;
    ck_assert_int_eq(infer(n, m, NULL, &om, &e), 0);
    gd_tensor *o = gd_tensor_new(A, &om.shape, GD_F64, 0);
    gd_kctx c = {.arena = A, .cancel = &cancel, .err = &e, .node = n};
    for (int64_t i = 0; i < o->n; i++) gd_f64(o)[i] = NAN;
    ck_assert_int_eq(n->op->forward(&c, (const gd_tensor *const *)in, o), GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(e.code, GD_E_DEADLINE_EXCEEDED);
    /* 512 Mflop: two calls of 800 rows; the poll after the first one stops it. */
    ck_assert(!isnan(gd_f64(o)[799 * 400 + 399]));
    ck_assert(isnan(gd_f64(o)[800 * 400]));
    gd_tensor *din[2] = {0};
    ck_assert_int_eq(n->op->backward(&c, (const gd_tensor *const *)in, o, o, (int[]){1, 0}, din),
                     GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(n->op->backward(&c, (const gd_tensor *const *)in, o, o, (int[]){0, 1}, din),
                     GD_E_DEADLINE_EXCEEDED);
    /* Batched path too. */
    gd_tensor *bin[] = {gc_rand(A, &r, "2,1600,400", -1, 1), gc_rand(A, &r, "2,400,400", -1, 1)};
    gd_meta bm[] = {{GD_F64, bin[0]->shape}, {GD_F64, bin[1]->shape}};
    ck_assert_int_eq(infer(n, bm, NULL, &om, &e), 0);
    gd_tensor *bo = gd_tensor_new(A, &om.shape, GD_F64, 0);
    ck_assert_int_eq(n->op->forward(&c, (const gd_tensor *const *)bin, bo), GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(n->op->backward(&c, (const gd_tensor *const *)bin, bo, bo, (int[]){1, 0}, din),
                     GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(n->op->backward(&c, (const gd_tensor *const *)bin, bo, bo, (int[]){0, 1}, din),
                     GD_E_DEADLINE_EXCEEDED);
    /* Data moves of ~2M elements: forward and backward of every shape op. */
    gd_tensor *x[] = {arange("2000,1100")};
    gd_node *t = gc_node(A, "transpose", 1);
    gd_node *s = gc_node(A, "slice", 1);
    s->attrs->starts = INTS(0);
    s->attrs->ends = INTS(INT64_MAX);
    gd_node *cc = gc_node(A, "concat", 1);
    gd_node *g = gc_node(A, "gather", 2);
    gd_shape is = gc_shape("1000");
    gd_tensor *gx[] = {x[0], gd_tensor_new(A, &is, GD_I64, 0)};
    for (int j = 0; j < 1000; j++) gd_i64(gx[1])[j] = j - 500;
    g->attrs->axis = axis1(1);
    gd_node *re = gc_node(A, "reshape", 1);
    re->attrs->shape = INTS(-1);
    gd_node *bt = gc_node(A, "broadcast_to", 1);
    bt->attrs->shape = INTS(2, 2000, 1100);
    gd_node *ops[] = {t, s, cc, g, re, bt};
    gd_tensor **ins[] = {x, x, x, gx, x, x};
    for (int k = 0; k < 6; k++) {
        gd_meta mm[2], mo;
        for (int i = 0; i < ops[k]->n_in; i++) mm[i] = (gd_meta){ins[k][i]->dtype, ins[k][i]->shape};
        ck_assert_int_eq(infer(ops[k], mm, NULL, &mo, &e), 0);
        gd_tensor *out = gd_tensor_new(A, &mo.shape, mo.dtype, 1);
        gd_kctx ck = {.arena = A, .cancel = &cancel, .err = &e, .node = ops[k]};
        ck_assert_msg(ops[k]->op->forward(&ck, (const gd_tensor *const *)ins[k], out) == GD_E_DEADLINE_EXCEEDED,
                      "forward %s", ops[k]->op->name);
        gd_tensor *dd[2] = {0};
        ck_assert_msg(ops[k]->op->backward(&ck, (const gd_tensor *const *)ins[k], out, out, (int[]){1, 0}, dd) ==
                          GD_E_DEADLINE_EXCEEDED,
                      "backward %s", ops[k]->op->name);
        ck_assert_ptr_null(dd[0]);
    }
    /* Without the flag the same kernels finish (cancel may be NULL). */
    c.cancel = NULL;
    ck_assert_int_eq(n->op->forward(&c, (const gd_tensor *const *)in, o), 0);
}
END_TEST

/* A gradient over the request's memory limit is too_large, not a crash. */
START_TEST(test_oom) {
    gd_arena *tiny = gd_arena_new(256);
    gd_error e;
    gd_error_clear(&e);
    const char *ops[] = {"reshape", "transpose", "broadcast_to", "concat", "slice", "gather", "matmul"};
    for (int k = 0; k < 7; k++) {
        int two = k >= 5;
        gd_node *n = gc_node(A, ops[k], two ? 2 : 1);
        n->attrs->shape = INTS(100);
        n->attrs->starts = INTS(0);
        n->attrs->ends = INTS(100);
        gd_tensor *in[] = {arange("100"), k == 6 ? arange("100") : gc_i64(A, "1", (int64_t[]){3})};
        gd_tensor *o = run(n, in);
        gd_kctx c = {.arena = tiny, .err = &e, .node = n};
        gd_tensor *din[2] = {0};
        ck_assert_int_eq(n->op->backward(&c, (const gd_tensor *const *)in, o, o, (int[]){1, 0}, din), GD_E_TOO_LARGE);
        ck_assert_ptr_nonnull(strstr(e.message, "memory"));
        if (k == 6) {
            ck_assert_int_eq(n->op->backward(&c, (const gd_tensor *const *)in, o, o, (int[]){0, 1}, din),
                             GD_E_TOO_LARGE);
        }
    }
    gd_arena_free(tiny);
}
END_TEST

/* Attribute lists longer than the slots and sizes that overflow. */
START_TEST(test_limits) {
    gd_error e;
    gd_meta out;
    gd_node *s = gc_node(A, "slice", 1);
    s->attrs->starts = INTS(0);
    s->attrs->ends = INTS(1);
    s->attrs->starts.n = 9;
    gd_meta m[] = {meta(GD_F64, "3")};
    ck_assert_int_eq(infer(s, m, NULL, &out, &e), GD_E_INVALID_ATTRIBUTE);
    ck_assert_str_eq(e.at, "$.graph.nodes[0].starts");
    gd_node *c = gc_node(A, "concat", 2);
    gd_meta big[] = {meta(GD_F64, "4611686018427387904"), meta(GD_F64, "4611686018427387904")};
    ck_assert_int_eq(infer(c, big, NULL, &out, &e), GD_E_TOO_LARGE);
    gd_meta big3[] = {meta(GD_F64, "9223372036854775807"), meta(GD_F64, "9223372036854775807")};
    ck_assert_int_eq(infer(c, big3, NULL, &out, &e), GD_E_TOO_LARGE);
}
END_TEST

/* The table rows: attribute specs and facts the engine and /v1/ops rely on. */
START_TEST(test_rows) {
    const char *names[] = {"reshape", "transpose", "broadcast_to", "concat", "slice", "gather"};
    for (int i = 0; i < 6; i++) {
        const gd_op_def *op = gd_op_find(names[i]);
        ck_assert_ptr_nonnull(op);
        ck_assert_uint_eq(op->flags & GD_OPF_INT_OK, GD_OPF_INT_OK);
        ck_assert(op->differentiable && op->backward && op->doc && op->infer && op->forward);
        ck_assert_int_eq(op->zero_cause, GD_ZERO_VALUE);
    }
    ck_assert_int_eq(gd_op_find("concat")->max_in, -1);
    ck_assert_str_eq(gd_op_attr(gd_op_find("concat"), "axis")->dflt, "0");
    ck_assert_ptr_null(gd_op_attr(gd_op_find("reshape"), "shape")->dflt);
    ck_assert_str_eq(gd_op_attr(gd_op_find("transpose"), "axes")->dflt, "null");
    ck_assert_str_eq(gd_op_attr(gd_op_find("slice"), "steps")->dflt, "null");
    const gd_op_def *mm = gd_op_find("matmul");
    ck_assert_ptr_nonnull(mm);
    ck_assert_int_eq(mm->min_in, 2);
    ck_assert_int_eq(mm->max_in, 2);
    ck_assert_int_eq(mm->n_attrs, 0);
}
END_TEST

/* Python's range(len)[start:stop:step], written as CPython's
 * PySlice_AdjustIndices and a plain loop, in 128-bit arithmetic so that no
 * bound can overflow: the reference for slice at every int64 extreme. */
static int py_slice(int64_t len, int64_t start, int64_t stop, int64_t step, int64_t *out) {
    __int128 lo = step > 0 ? 0 : -1, hi = step > 0 ? len : len - 1, a = start, b = stop;
    if (a < 0) a += len;
    if (a < lo) a = lo;
    if (a > hi) a = hi;
    if (b < 0) b += len;
    if (b < lo) b = lo;
    if (b > hi) b = hi;
    int n = 0;
    for (__int128 i = a; step > 0 ? i < b : i > b; i += step) out[n++] = (int64_t)i;
    return n;
}

START_TEST(test_slice_python_extremes) {
    const int64_t bounds[] = {INT64_MIN, INT64_MIN + 1, -9007199254740993, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2,
                              3, 4, 5, 6, 7, 9007199254740993, INT64_MAX - 1, INT64_MAX};
    const int64_t steps[] = {INT64_MIN, -9007199254740993, -3, -2, -1, 1, 2, 3, 9007199254740993, INT64_MAX};
    const int nb = (int)(sizeof bounds / sizeof *bounds), ns = (int)(sizeof steps / sizeof *steps);
    int cases = 0;
    for (int len = 0; len <= 5; len++) {
        char shape[8];
        snprintf(shape, sizeof shape, "%d", len);
        gd_tensor *in[] = {arange(shape)};
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < nb; j++)
                for (int k = 0; k < ns; k++) {
                    int64_t want[8];
                    int n = py_slice(len, bounds[i], bounds[j], steps[k], want);
                    gd_node *sl = gc_node(A, "slice", 1);
                    sl->attrs->starts = INTS(bounds[i]);
                    sl->attrs->ends = INTS(bounds[j]);
                    sl->attrs->steps = INTS(steps[k]);
                    gd_tensor *o = run(sl, in);
                    ck_assert_msg(o->shape.dim[0] == n, "range(%d)[%lld:%lld:%lld] has %d elements, got %lld", len,
                                  (long long)bounds[i], (long long)bounds[j], (long long)steps[k], n,
                                  (long long)o->shape.dim[0]);
                    for (int e = 0; e < n; e++) ck_assert_double_eq(gd_f64(o)[e], (double)want[e]);
                    cases++;
                }
    }
    ck_assert_int_eq(cases, 6 * 21 * 21 * 10);
}
END_TEST

Suite *suite_ops_shape(void) {
    Suite *s = suite_create("ops_shape");
    TCase *tc = tcase_create("shape");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reshape_grad);
    tcase_add_test(tc, test_reshape_forward);
    tcase_add_test(tc, test_reshape_errors);
    tcase_add_test(tc, test_reshape_unknown);
    tcase_add_test(tc, test_transpose_grad);
    tcase_add_test(tc, test_transpose_forward);
    tcase_add_test(tc, test_transpose_errors);
    tcase_add_test(tc, test_broadcast_to_grad);
    tcase_add_test(tc, test_broadcast_to_forward);
    tcase_add_test(tc, test_broadcast_to_errors);
    tcase_add_test(tc, test_concat_grad);
    tcase_add_test(tc, test_concat_forward);
    tcase_add_test(tc, test_concat_errors);
    tcase_add_test(tc, test_slice_grad);
    tcase_add_test(tc, test_slice_forward);
    tcase_add_test(tc, test_slice_errors);
    tcase_add_test(tc, test_gather_grad);
    tcase_add_test(tc, test_gather_forward);
    tcase_add_test(tc, test_gather_errors);
    tcase_add_test(tc, test_rows);
    tcase_add_test(tc, test_oom);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_slice_python_extremes);
    suite_add_tcase(s, tc);
    TCase *lt = tcase_create("linalg");
    tcase_add_checked_fixture(lt, setup, teardown);
    tcase_set_timeout(lt, 120);
    tcase_add_test(lt, test_matmul_grad);
    tcase_add_test(lt, test_matmul_forward);
    tcase_add_test(lt, test_matmul_empty);
    tcase_add_test(lt, test_matmul_extreme_and_zero_cotangent);
    tcase_add_test(lt, test_matmul_overflowing_products);
    tcase_add_test(lt, test_scatter_selects_exact_zeros);
    tcase_add_test(lt, test_matmul_errors);
    tcase_add_test(lt, test_matmul_chunked);
    tcase_add_test(lt, test_cancel);
    suite_add_tcase(s, lt);
    return s;
}
