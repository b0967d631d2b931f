/* test_engine.c - the sweeps: lazy cond, gradients for intermediates, several
 * targets, non-scalar targets with a cotangent, `unconnected`, cotangents
 * formed only where a wrt needs them, early release, the deadline. */
#include <math.h>
#include <stdio.h>
#include <string.h>

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
    gd_node_set_value(&t.g->nodes[0], x, 0);
    size_t before = gd_arena_peak(t.a);
    ck_assert_int_eq(tb_eval(&t, "loss", NULL), 0);
    size_t used = t.res.peak_bytes - before;
    ck_assert_msg(used < 4 * 800000 + 200000, "peak grew by %zu bytes", used);

    /* With gradients the sweep keeps what the backward rules read, then
     * releases it as it goes: the peak stays well below keeping everything
     * twice (values and cotangents). */
    tb_node(&t, "w", "variable", "");
    gd_tensor *w = gd_tensor_new(t.a, &s, GD_F64, 1);
    gd_node_set_value(&t.g->nodes[tb_idx(&t, "w")], w, 1);
    tb_node(&t, "wx", "mul", "w,h23");
    tb_node(&t, "loss2", "sum", "wx");
    before = gd_arena_peak(t.a);
    ck_assert_int_eq(tb_run(&t, "loss2", "w", NULL), 0);
    ck_assert_int_eq(t.res.vjp_inputs, 2);
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
    gd_node_set_value(&t.g->nodes[0], gd_tensor_new(t.a, &s, GD_F64, 1), 0);
    gd_node_set_value(&t.g->nodes[1], gd_tensor_new(t.a, &s, GD_F64, 1), 1);
    gd_cancel c = {0};
    ck_assert_int_eq(tb_check(&t), 0);
    /* A deadline already past when the matmul starts: the kernel must notice. */
    gd_kctx k = {.arena = t.a, .cancel = &c, .err = &t.err, .node = &t.g->nodes[2]};
    atomic_store(&c.cancelled, 1);
    gd_tensor *out = gd_tensor_new(t.a, &t.g->nodes[2].meta.shape, GD_F64, 0);
    const gd_tensor *in[2] = {t.g->nodes[0].value, t.g->nodes[1].value};
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
    tcase_add_test(tc, cotangents_only_where_needed);
    tcase_add_test(tc, intermediates_released_early);
    tcase_add_test(tc, deadline_and_cancel_stop_the_run);
    tcase_add_test(tc, large_matmul_is_cancellable);
    tcase_add_test(tc, eval_returns_values_and_fetches);
    tcase_add_test(tc, int64_operands_become_float64);
    suite_add_tcase(s, tc);
    return s;
}
