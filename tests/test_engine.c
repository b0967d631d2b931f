/* test_engine.c - the sweeps: lazy cond, gradients for intermediates, several
 * targets, non-scalar targets with a cotangent, `unconnected`, cotangents
 * formed only where a wrt needs them, early release, the deadline. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/flow.h"
#include "tbuild.h"
#include "gradcheck.h"
#include "tests.h"

static const double v3[] = {0.5, -1.0, 2.0};

/* The untaken branch would fail (cast of NaN to int64) and has a leaf with no
 * value: neither matters, because it never runs. */
START_TEST(cond_never_computes_untaken_branch) {
    tb t;
    tb_init(&t);
    tb_node(&t, "p", "input", "");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "bad", "input", "");
    tb_node(&t, "boom", "cast", "bad")->dtype = (gd_num){1, GD_I64};
    tb_node(&t, "boomf", "cast", "boom")->dtype = (gd_num){1, GD_F64};
    tb_node(&t, "nowhere", "variable", "");
    tb_node(&t, "other", "add", "boomf,nowhere");
    tb_node(&t, "sq", "square", "x");
    tb_node(&t, "c", "cond", "p,sq,other");
    tb_node(&t, "loss", "sum", "c");
    const double p = 1, nan3[] = {NAN, NAN, NAN};
    tb_f64(&t, "p", "", &p);
    tb_f64(&t, "x", "3", v3);
    tb_f64(&t, "bad", "3", nan3);
    ck_assert_int_eq(tb_run(&t, "loss", "x", NULL), 0);
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], 0.25 + 1 + 4);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(gd_f64(tb_grad(&t, "x"))[i], 2 * v3[i]);
    tb_free(&t);

    /* The same graph with the predicate flipped runs the failing branch. */
    tb_init(&t);
    tb_node(&t, "p", "input", "");
    tb_node(&t, "bad", "input", "");
    tb_node(&t, "boom", "cast", "bad")->dtype = (gd_num){1, GD_I64};
    tb_node(&t, "boomf", "cast", "boom")->dtype = (gd_num){1, GD_F64};
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "c", "cond", "p,x,boomf");
    tb_node(&t, "loss", "sum", "c");
    const double q = 0;
    tb_f64(&t, "p", "", &q);
    tb_f64(&t, "x", "3", v3);
    tb_f64(&t, "bad", "3", nan3);
    ck_assert_int_eq(tb_run(&t, "loss", "x", NULL), GD_E_INVALID_VALUE);
    ck_assert_ptr_nonnull(strstr(t.err.message, "boom"));
    tb_free(&t);
}
END_TEST

START_TEST(missing_value_on_taken_path) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "loss", "sum", "x");
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), GD_E_MISSING_VALUE);
    ck_assert_str_eq(t.err.at, "$.values");
    ck_assert_ptr_nonnull(strstr(t.err.message, "'x'"));
    tb_free(&t);
}
END_TEST

START_TEST(several_targets_sum_their_gradients) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "a", "sum", "x");
    tb_node(&t, "sq", "square", "x");
    tb_node(&t, "b", "sum", "sq");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "a,b", NULL, NULL), 0);
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], 1.5);
    ck_assert_double_eq(gd_f64(t.res.targets[1])[0], 5.25);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(gd_f64(tb_grad(&t, "x"))[i], 1 + 2 * v3[i]);
    tb_free(&t);
}
END_TEST

START_TEST(non_scalar_target_needs_cotangent) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "y", "exp", "x");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "y", NULL, NULL), GD_E_TARGET_NOT_SCALAR);
    ck_assert_str_eq(t.err.at, "$.target");
    tb_free(&t);

    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "y", "exp", "x");
    tb_f64(&t, "x", "3", v3);
    const double ct[] = {1, 2, 3}, bad[] = {1, 2};
    gd_tensor *tg[1] = {gc_f64(t.a, "3", ct)};
    t.spec.target_grad = tg;
    ck_assert_int_eq(tb_run(&t, "y", NULL, NULL), 0);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(gd_f64(tb_grad(&t, "x"))[i], ct[i] * exp(v3[i]), 1e-15);
    tg[0] = gc_f64(t.a, "2", bad);
    ck_assert_int_eq(tb_run(&t, "y", NULL, NULL), GD_E_SHAPE_MISMATCH);
    ck_assert_str_eq(t.err.at, "$.target_grad");
    tb_free(&t);
}
END_TEST

START_TEST(int64_target_is_rejected) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "am", "argmax", "x");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "am", NULL, NULL), GD_E_DTYPE_MISMATCH);
    /* ... but evaluating it is fine. */
    ck_assert_int_eq(tb_eval(&t, "am", NULL), 0);
    ck_assert_int_eq(gd_i64(t.res.targets[0])[0], 2);
    tb_free(&t);
}
END_TEST

START_TEST(unconnected_zero_fills_zeros_and_still_diagnoses) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "u", "variable", "");
    tb_node(&t, "loss", "sum", "x");
    tb_f64(&t, "x", "3", v3);
    tb_f64(&t, "u", "3", v3);
    t.spec.unconnected_zero = 1;
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "u");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->n, 3);
    ck_assert(gd_all_zero(g));
    ck_assert_int_eq(tb_diag(&t, "u", 1)->code, GD_DIAG_DISCONNECTED);
    tb_free(&t);
}
END_TEST

/* A8: a backward rule computes the same formula whatever the cotangent's
 * values. sqrt at x = [0, 1]: element 0's gradient is 0 * Infinity = NaN
 * whether the other element's cotangent is 0 or 1 (PyTorch 1.13.1:
 *   x = torch.tensor([0., 1.], dtype=torch.float64, requires_grad=True)
 *   torch.sqrt(x).backward(torch.tensor([0., 0.], dtype=torch.float64))
 *   x.grad -> [nan, 0.]; with [0., 1.] -> [nan, 0.5]).
 * Before, an all-zero cotangent was short-circuited to exact zeros. */
START_TEST(zero_cotangent_is_multiplied_like_any_other) {
    static const double cots[2][2] = {{0, 0}, {0, 1}};
    int64_t vjps[2];
    for (int k = 0; k < 2; k++) {
        tb t;
        tb_init(&t);
        tb_node(&t, "x", "variable", "");
        tb_node(&t, "r", "sqrt", "x");
        tb_f64(&t, "x", "2", (double[]){0, 1});
        gd_tensor *tg[1] = {gc_f64(t.a, "2", cots[k])};
        t.spec.target_grad = tg;
        ck_assert_int_eq(tb_run(&t, "r", NULL, NULL), 0);
        gd_tensor *g = tb_grad(&t, "x");
        ck_assert(isnan(gd_f64(g)[0]));
        ck_assert_double_eq(gd_f64(g)[1], 0.5 * cots[k][1]);
        vjps[k] = t.res.vjp_inputs;
        tb_free(&t);
    }
    ck_assert_int_eq(vjps[0], vjps[1]); /* the same work, values notwithstanding */
}
END_TEST

/* A zero cotangent born inside the graph (a dead relu) flows on through the
 * rules below it: PyTorch's -0.0 from mul (g * x with g = 0, x < 0), and
 * NaN where it meets sqrt'(0) = Infinity (PyTorch 1.13.1:
 *   w = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
 *   torch.relu(w * torch.tensor([-1., -2.], dtype=torch.float64)).sum().backward()
 *   w.grad -> [-0., -0.]
 *   x = torch.tensor([0., 4.], dtype=torch.float64, requires_grad=True)
 *   torch.relu(torch.sqrt(x) - 5).sum().backward(); x.grad -> [nan, 0.]). */
START_TEST(zero_born_in_graph_flows_through) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "h", "mul", "w,x");
    tb_node(&t, "a", "relu", "h");
    tb_node(&t, "loss", "sum", "a");
    tb_f64(&t, "w", "2", (double[]){0.5, 1.5});
    tb_f64(&t, "x", "2", (double[]){-1, -2});
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "w");
    for (int i = 0; i < 2; i++) ck_assert(gd_f64(g)[i] == 0 && signbit(gd_f64(g)[i]));
    tb_free(&t);

    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "five", "constant", "");
    tb_node(&t, "r", "sqrt", "x");
    tb_node(&t, "p", "sub", "r,five");
    tb_node(&t, "h", "relu", "p");
    tb_node(&t, "loss", "sum", "h");
    tb_f64(&t, "x", "2", (double[]){0, 4});
    tb_f64(&t, "five", "", (double[]){5});
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    g = tb_grad(&t, "x");
    ck_assert(isnan(gd_f64(g)[0]));
    ck_assert(gd_f64(g)[1] == 0);
    tb_free(&t);
}
END_TEST

/* A8: unconnected "zero" gives a zero of the wrt's own dtype: int64 zeros
 * for an int64 wrt (before: float64 zeros). */
START_TEST(unconnected_zero_for_int64_wrt_is_int64) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "k", "variable", "");
    tb_node(&t, "kf", "cast", "k")->dtype = (gd_num){1, GD_F64};
    tb_node(&t, "m", "mul", "x,kf");
    tb_node(&t, "loss", "sum", "m");
    tb_f64(&t, "x", "3", v3);
    tb_i64(&t, "k", "3", (int64_t[]){1, 2, 3});
    t.spec.unconnected_zero = 1;
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "k");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->dtype, GD_I64);
    ck_assert_int_eq(g->n, 3);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(gd_i64(g)[i], 0);
    ck_assert_int_eq(tb_grad(&t, "x")->dtype, GD_F64);
    ck_assert_int_eq(tb_diag(&t, "k", 1)->code, GD_DIAG_INTEGER_DTYPE);
    tb_free(&t);
}
END_TEST

/* Only the contributions some wrt needs are formed: the input x, the
 * constant and the branch that only feeds x's side are never differentiated. */
START_TEST(cotangents_only_where_needed) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "ex", "exp", "x");
    tb_node(&t, "m", "mul", "w,ex");
    tb_node(&t, "loss", "sum", "m");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", "w", NULL), 0);
    ck_assert_int_eq(t.res.vjp_inputs, 2); /* sum -> m, m -> w; not m -> ex, not ex -> x */
    ck_assert_int_eq(tb_run(&t, "loss", "w,x", NULL), 0);
    ck_assert_int_eq(t.res.vjp_inputs, 4);
    tb_free(&t);
}
END_TEST

/* A chain of 24 ops over 800 KB tensors: evaluation keeps only a few alive. */
START_TEST(intermediates_released_early) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    char prev[16] = "x", cur[16];
    for (int k = 0; k < 24; k++) {
        snprintf(cur, sizeof cur, "h%d", k);
        tb_node(&t, cur, k % 2 ? "sin" : "cos", prev);
        strcpy(prev, cur);
    }
    tb_node(&t, "loss", "sum", prev);
    gd_shape s = {.rank = 1, .dim = {100000}};
    gd_tensor *x = gd_tensor_new(t.a, &s, GD_F64, 1);
    gd_graph_set_value(t.g, 0, x, 0);
    size_t before = gd_arena_peak(t.a);
    ck_assert_int_eq(tb_eval(&t, "loss", NULL), 0);
    size_t used = t.res.peak_bytes - before;
    ck_assert_msg(used < 4 * 800000 + 200000, "peak grew by %zu bytes", used);

    /* With gradients the sweep keeps what the backward rules read, then
     * releases it as it goes: the peak stays well below keeping everything
     * twice (values and cotangents). */
    tb_node(&t, "w", "variable", "");
    gd_tensor *w = gd_tensor_new(t.a, &s, GD_F64, 1);
    gd_graph_set_value(t.g, tb_idx(&t, "w"), w, 1);
    tb_node(&t, "wx", "mul", "w,h23");
    tb_node(&t, "loss2", "sum", "wx");
    before = gd_arena_peak(t.a);
    ck_assert_int_eq(tb_run(&t, "loss2", "w", NULL), 0);
    ck_assert_int_eq(t.res.vjp_inputs, 2);
    tb_free(&t);
}
END_TEST

/* A chain of maps writes each output over its input when nothing else reads
 * that input (issue 10: a fresh buffer per op cost more than the op): one
 * 800 KB buffer beyond the leaf, where one per op alive at a time was two. */
START_TEST(unary_chain_runs_in_place) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    const char *ops[] = {"neg", "abs", "sqrt", "square", "neg", "abs", "sqrt", "exp", "log", "clip"};
    char prev[16] = "x", cur[16];
    for (int k = 0; k < 10; k++) {
        snprintf(cur, sizeof cur, "h%d", k);
        tb_node(&t, cur, ops[k], prev);
        strcpy(prev, cur);
    }
    tb_node(&t, "loss", "sum", prev);
    gd_shape s = {.rank = 1, .dim = {100000}};
    gd_tensor *x = gd_tensor_new(t.a, &s, GD_F64, 0);
    for (int i = 0; i < 100000; i++) gd_f64(x)[i] = (i % 7) - 3.0;
    gd_graph_set_value(t.g, 0, x, 0);
    size_t before = gd_arena_peak(t.a);
    ck_assert_int_eq(tb_eval(&t, "loss", NULL), 0);
    size_t used = t.res.peak_bytes - before;
    ck_assert_msg(used < 800000 + 400000, "peak grew by %zu bytes: more than one buffer", used);
    double want = 0; /* |x| through the chain: sqrt(|x|)^2 = |x|, sqrt again, exp-log */
    for (int i = 0; i < 100000; i++) want += sqrt(fabs((i % 7) - 3.0));
    ck_assert_double_eq_tol(gd_f64(t.res.targets[0])[0], want, 1e-9 * want);
    for (int i = 0; i < 7; i++) ck_assert_double_eq(gd_f64(x)[i], i - 3.0); /* the leaf is the request's */
    tb_free(&t);
}
END_TEST

/* Writing over an input is only for a value nobody reads again: a second
 * consumer, a fetch and the backward sweep still see the value itself. */
START_TEST(in_place_spares_values_still_read) {
    const double x4[] = {4.0, 9.0, 0.25, 16.0};
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "h", "abs", "x");
    tb_node(&t, "a", "sqrt", "h");   /* runs first: must not write over h */
    tb_node(&t, "b", "square", "h");
    tb_node(&t, "s", "add", "a,b");
    tb_node(&t, "f", "neg", "s");    /* s is fetched: must not be written over */
    tb_node(&t, "loss", "sum", "f");
    tb_f64(&t, "x", "4", x4);
    ck_assert_int_eq(tb_eval(&t, "loss", "s,h"), 0);
    double want = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq(gd_f64(t.res.fetched[0])[i], sqrt(x4[i]) + x4[i] * x4[i]);
        ck_assert_double_eq(gd_f64(t.res.fetched[1])[i], x4[i]);
        want -= sqrt(x4[i]) + x4[i] * x4[i];
    }
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], want);
    tb_free(&t);

    /* With a gradient the backward rules read the values: d/dx sum(sin(x^2)) = cos(x^2) 2x. */
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "h", "square", "x");
    tb_node(&t, "e", "sin", "h");
    tb_node(&t, "loss", "sum", "e");
    tb_f64(&t, "x", "4", x4);
    ck_assert_int_eq(tb_run(&t, "loss", "x", NULL), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(gd_f64(tb_grad(&t, "x"))[i], cos(x4[i] * x4[i]) * 2 * x4[i], 1e-12);
    tb_free(&t);
}
END_TEST

START_TEST(deadline_and_cancel_stop_the_run) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "loss", "sum", "x");
    tb_f64(&t, "x", "3", v3);
    gd_cancel c = {.deadline_ns = gd_now_ns() - 1};
    t.spec.cancel = &c;
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), GD_E_DEADLINE_EXCEEDED);
    gd_cancel c2 = {0};
    atomic_store(&c2.cancelled, 1);
    t.spec.cancel = &c2;
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), GD_E_DEADLINE_EXCEEDED);
    atomic_store(&c2.cancelled, 0);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    tb_free(&t);
}
END_TEST

/* A matmul big enough to be split into chunks sees a cancel between chunks. */
START_TEST(large_matmul_is_cancellable) {
    tb t;
    tb_init(&t);
    tb_node(&t, "a", "input", "");
    tb_node(&t, "b", "input", "");
    tb_node(&t, "c", "matmul", "a,b");
    tb_node(&t, "loss", "sum", "c");
    gd_shape s = {.rank = 2, .dim = {800, 800}}; /* 1e9 flops: over GEMM_POLL_FLOPS (5e8) */
    gd_graph_set_value(t.g, 0, gd_tensor_new(t.a, &s, GD_F64, 1), 0);
    gd_graph_set_value(t.g, 1, gd_tensor_new(t.a, &s, GD_F64, 1), 1);
    gd_cancel c = {0};
    ck_assert_int_eq(tb_check(&t), 0);
    /* A deadline already past when the matmul starts: the kernel must notice. */
    gd_kctx k = {.arena = t.a, .cancel = &c, .err = &t.err, .node = &t.g->nodes[2]};
    atomic_store(&c.cancelled, 1);
    gd_tensor *out = gd_tensor_new(t.a, &t.g->st[2].meta.shape, GD_F64, 0);
    const gd_tensor *in[2] = {t.g->st[0].value, t.g->st[1].value};
    ck_assert_int_eq(t.g->nodes[2].op->forward(&k, in, out), GD_E_DEADLINE_EXCEEDED);
    tb_free(&t);
}
END_TEST

START_TEST(eval_returns_values_and_fetches) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "y", "square", "x");
    tb_node(&t, "unrelated", "neg", "x");
    tb_node(&t, "s", "sum", "y");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_eval(&t, "s", "y,unrelated"), 0);
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], 5.25);
    ck_assert_double_eq(gd_f64(t.res.fetched[0])[2], 4.0);
    ck_assert_double_eq(gd_f64(t.res.fetched[1])[1], 1.0);
    tb_free(&t);
}
END_TEST

START_TEST(int64_operands_become_float64) {
    tb t;
    tb_init(&t);
    tb_node(&t, "k", "input", "");
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "kk", "reshape", "k")->shape = (gd_ints){.given = 1, .is_list = 1, .n = 1, .v = {3}};
    tb_node(&t, "m", "mul", "kk,w");
    tb_node(&t, "loss", "sum", "m");
    const int64_t k[] = {2, 3, 4};
    tb_i64(&t, "k", "3", k);
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, "kk"), 0);
    ck_assert_int_eq(t.res.fetched[0]->dtype, GD_I64);
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], 1 - 3 + 8);
    ck_assert_double_eq(gd_f64(tb_grad(&t, "w"))[1], 3.0);
    tb_free(&t);
}
END_TEST

/* ---- A8: an untaken branch's errors never fire -------------------------- */

static const double no_elems[1] = {0}; /* the data of a tensor with no elements */

/* max over e (shape [0]: max has no value) needed only by the then-branch
 * of c; loss = sum(c); b is the else branch. dead_consumer adds a node that
 * reads m and that nothing reads. */
static void empty_max_graph(tb *t, double p, int dead_consumer) {
    static const double b = 1.5;
    tb_init(t);
    tb_node(t, "p", "input", "");
    tb_node(t, "e", "input", "");
    tb_node(t, "b", "variable", "");
    tb_node(t, "m", "max", "e");
    tb_node(t, "c", "cond", "p,m,b");
    tb_node(t, "loss", "sum", "c");
    if (dead_consumer) tb_node(t, "dead", "neg", "m");
    tb_f64(t, "p", "", &p);
    tb_f64(t, "e", "0", no_elems);
    tb_f64(t, "b", "", &b);
}

START_TEST(untaken_branch_errors_never_fire) {
    /* What max over an empty input says when something needs it outright. */
    tb t;
    tb_init(&t);
    tb_node(&t, "p", "input", "");
    tb_node(&t, "e", "input", "");
    tb_node(&t, "b", "variable", "");
    tb_node(&t, "m", "max", "e");
    tb_f64(&t, "e", "0", no_elems);
    ck_assert_int_eq(tb_check(&t), GD_E_INVALID_VALUE);
    gd_error want = t.err;
    tb_free(&t);

    /* Untaken: the run succeeds, the fetch of m is null with its diagnostic. */
    empty_max_graph(&t, 0, 0);
    ck_assert_int_eq(tb_run(&t, "loss", "b", "m"), 0);
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], 1.5);
    ck_assert_double_eq(gd_f64(tb_grad(&t, "b"))[0], 1.0);
    ck_assert_ptr_null(t.res.fetched[0]);
    const gd_diag *d = tb_diag(&t, "m", 0) ? tb_diag(&t, "m", 0) : tb_diag(&t, "m", 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->code, GD_DIAG_UNTAKEN_BRANCH);
    tb_free(&t);

    /* Taken: the same error as before, code, place and words. */
    empty_max_graph(&t, 1, 0);
    ck_assert_int_eq(tb_check(&t), 0);
    ck_assert_int_eq(tb_run(&t, "loss", "b", "m"), GD_E_INVALID_VALUE);
    ck_assert_str_eq(t.err.at, want.at);
    ck_assert_str_eq(t.err.message, want.message);
    tb_free(&t);

    /* A node that something outside the branch needs keeps its check in
     * advance (here a consumer nothing reads: every such node is checked, as
     * registration will). */
    empty_max_graph(&t, 0, 1);
    ck_assert_int_eq(tb_run(&t, "loss", "b", NULL), GD_E_INVALID_VALUE);
    ck_assert_str_eq(t.err.message, want.message);
    tb_free(&t);
}
END_TEST

/* A shape mismatch inside the untaken branch: none when untaken, the same
 * error when taken. The cond's own rule (branches of known shapes are equal)
 * still holds in advance, and so do errors no shape could avoid (dtypes). */
START_TEST(untaken_branch_shape_mismatch) {
    static const double a3[] = {1, 2, 3}, q2[] = {1, 2}, o3[] = {4, 5, 6};
    for (int taken = 0; taken <= 1; taken++) {
        tb t;
        tb_init(&t);
        double p = taken;
        tb_node(&t, "p", "input", "");
        tb_node(&t, "a", "variable", "");
        tb_node(&t, "q", "variable", "");
        tb_node(&t, "o", "variable", "");
        tb_node(&t, "s", "add", "a,q");
        tb_node(&t, "r", "reshape", "s")->shape = (gd_ints){.given = 1, .is_list = 1, .n = 1, .v = {3}};
        tb_node(&t, "c", "cond", "p,r,o");
        tb_node(&t, "loss", "sum", "c");
        tb_f64(&t, "p", "", &p);
        tb_f64(&t, "a", "3", a3);
        tb_f64(&t, "q", "2", q2);
        tb_f64(&t, "o", "3", o3);
        int rc = tb_run(&t, "loss", NULL, NULL);
        if (taken) {
            ck_assert_int_eq(rc, GD_E_SHAPE_MISMATCH);
            ck_assert_str_eq(t.err.at, "$.graph.nodes[4].inputs");
            ck_assert_ptr_nonnull(strstr(t.err.message, "'s'"));
        } else {
            ck_assert_int_eq(rc, 0);
            ck_assert_double_eq(gd_f64(t.res.targets[0])[0], 15);
            ck_assert_ptr_nonnull(tb_grad(&t, "o"));
            ck_assert_ptr_null(tb_grad(&t, "a"));
            ck_assert_int_eq(tb_diag(&t, "a", 1)->code, GD_DIAG_UNTAKEN_BRANCH);
        }
        tb_free(&t);
    }
    /* Branches of known, different shapes: the cond itself is wrong. */
    tb t;
    tb_init(&t);
    double p = 0;
    tb_node(&t, "p", "input", "");
    tb_node(&t, "a", "variable", "");
    tb_node(&t, "q", "variable", "");
    tb_node(&t, "c", "cond", "p,a,q");
    tb_node(&t, "loss", "sum", "c");
    tb_f64(&t, "p", "", &p);
    tb_f64(&t, "a", "3", a3);
    tb_f64(&t, "q", "2", q2);
    ck_assert_int_eq(tb_check(&t), GD_E_SHAPE_MISMATCH);
    ck_assert_str_eq(t.err.at, "$.graph.nodes[3].inputs");
    tb_free(&t);
    /* float64 indices fail whatever the shapes: refused in advance. */
    tb_init(&t);
    tb_node(&t, "p", "input", "");
    tb_node(&t, "a", "variable", "");
    tb_node(&t, "i", "input", "");
    tb_node(&t, "g", "gather", "a,i");
    tb_node(&t, "c", "cond", "p,g,a");
    tb_node(&t, "loss", "sum", "c");
    tb_f64(&t, "p", "", &p);
    tb_f64(&t, "a", "3", a3);
    tb_f64(&t, "i", "3", a3);
    ck_assert_int_eq(tb_check(&t), GD_E_DTYPE_MISMATCH);
    tb_free(&t);
}
END_TEST

/* Nested conds: the empty max sits in the inner cond's then-branch, which
 * sits in the outer cond's then-branch; it fires only when both are taken. */
START_TEST(untaken_branch_nested_conds) {
    static const double one = 1, two = 2;
    for (int po = 0; po <= 1; po++)
        for (int pi = 0; pi <= 1; pi++) {
            tb t;
            tb_init(&t);
            double dpo = po, dpi = pi;
            tb_node(&t, "po", "input", "");
            tb_node(&t, "pi", "input", "");
            tb_node(&t, "e", "input", "");
            tb_node(&t, "z", "variable", "");
            tb_node(&t, "y", "variable", "");
            tb_node(&t, "m", "max", "e");
            tb_node(&t, "inner", "cond", "pi,m,z");
            tb_node(&t, "outer", "cond", "po,inner,y");
            tb_f64(&t, "po", "", &dpo);
            tb_f64(&t, "pi", "", &dpi);
            tb_f64(&t, "e", "2,0", no_elems);
            tb_f64(&t, "z", "", &one);
            tb_f64(&t, "y", "", &two);
            int rc = tb_run(&t, "outer", NULL, "m,inner");
            if (po && pi) {
                ck_assert_int_eq(rc, GD_E_INVALID_VALUE);
                ck_assert_str_eq(t.err.at, "$.graph.nodes[5]");
                ck_assert_ptr_nonnull(strstr(t.err.message, "shape [2, 0]"));
            } else {
                ck_assert_int_eq(rc, 0);
                ck_assert_double_eq(gd_f64(t.res.targets[0])[0], po ? 1 : 2);
                ck_assert_ptr_null(t.res.fetched[0]);
                ck_assert_int_eq(t.res.fetched[1] != NULL, po);
                ck_assert_double_eq(gd_f64(tb_grad(&t, po ? "z" : "y"))[0], 1);
                ck_assert_ptr_null(tb_grad(&t, po ? "y" : "z"));
            }
            tb_free(&t);
        }
}
END_TEST

/* Fuzzer finding (tests/fuzz/regressions/issue9-row13-concat-many-inputs):
 * the flow rule read bit i of a row's nograd_inputs for every input i, an
 * undefined shift from i = 32 (concat takes any number of inputs) that x86
 * reads as bit i % 32. A row whose input 0 passes no gradient must still
 * pass it through inputs 32 and 33; volatile keeps the index a runtime one. */
START_TEST(flow_rule_past_32_inputs) {
    gd_op_def row = {.name = "synthetic", .differentiable = 1, .nograd_inputs = 1u << 0};
    volatile int i0 = 0, i32 = 32, i33 = 33;
    ck_assert_int_eq(gd_flow_input_block(&row, i0), GD_BLOCK_NON_DIFFERENTIABLE);
    ck_assert_int_eq(gd_flow_input_block(&row, i32), GD_BLOCK_NONE);
    ck_assert_int_eq(gd_flow_input_block(&row, i33), GD_BLOCK_NONE);

    /* And a whole run: 40 copies of x concatenated, summed: dx = 40. */
    char ins[2 * 40];
    for (int k = 0; k < 40; k++) ins[2 * k] = 'x', ins[2 * k + 1] = k < 39 ? ',' : '\0';
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "c", "concat", ins);
    tb_node(&t, "s", "sum", "c");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "s", NULL, NULL), 0);
    for (int k = 0; k < 3; k++) ck_assert_double_eq(gd_f64(tb_grad(&t, "x"))[k], 40);
    tb_free(&t);
}
END_TEST

Suite *suite_engine(void) {
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("sweeps");
    tcase_set_timeout(tc, 30); /* large_matmul_is_cancellable, intermediates_released_early: big tensors */
    tcase_add_test(tc, cond_never_computes_untaken_branch);
    tcase_add_test(tc, missing_value_on_taken_path);
    tcase_add_test(tc, several_targets_sum_their_gradients);
    tcase_add_test(tc, non_scalar_target_needs_cotangent);
    tcase_add_test(tc, int64_target_is_rejected);
    tcase_add_test(tc, unconnected_zero_fills_zeros_and_still_diagnoses);
    tcase_add_test(tc, zero_cotangent_is_multiplied_like_any_other);
    tcase_add_test(tc, zero_born_in_graph_flows_through);
    tcase_add_test(tc, unconnected_zero_for_int64_wrt_is_int64);
    tcase_add_test(tc, cotangents_only_where_needed);
    tcase_add_test(tc, intermediates_released_early);
    tcase_add_test(tc, unary_chain_runs_in_place);
    tcase_add_test(tc, in_place_spares_values_still_read);
    tcase_add_test(tc, deadline_and_cancel_stop_the_run);
    tcase_add_test(tc, large_matmul_is_cancellable);
    tcase_add_test(tc, eval_returns_values_and_fetches);
    tcase_add_test(tc, int64_operands_become_float64);
    tcase_add_test(tc, untaken_branch_errors_never_fire);
    tcase_add_test(tc, untaken_branch_shape_mismatch);
    tcase_add_test(tc, untaken_branch_nested_conds);
    tcase_add_test(tc, flow_rule_past_32_inputs);
    suite_add_tcase(s, tc);
    return s;
}
