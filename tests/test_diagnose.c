/* test_diagnose.c - every diagnostic code from realistic scenarios: the code,
 * the stopping points / evidence, and that the message names the nodes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/samevalue.h"
#include "tbuild.h"
#include "tests.h"

static const double v3[] = {0.5, -1.0, 2.0};

#define NAMES(t, d, s) ck_assert_msg(strstr((d)->message, s) != NULL, "message lacks %s: %s", s, (d)->message)

/* The hint's fix, applied to the request (built in t), gives `wrt` a
 * gradient and no error diagnostic; t is freed. */
static void fix_gives_gradient(tb *t, const char *wrt) {
    ck_assert_int_eq(tb_run(t, "loss", NULL, NULL), 0);
    ck_assert_msg(tb_grad(t, wrt) != NULL, "the fixed request gives '%s' no gradient", wrt);
    ck_assert_ptr_null(tb_diag(t, wrt, 1));
    tb_free(t);
}

static void path_is(tb *t, const gd_diag *d, const char *const *want, int n) {
    ck_assert_int_eq(d->n_path, n);
    for (int i = 0; i < n; i++) ck_assert_str_eq(tb_name(t, d->path[i]), want[i]);
}

START_TEST(unused_variable_is_disconnected) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "unused", "variable", "");
    tb_node(&t, "loss", "sum", "w");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "unused", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert_ptr_nonnull(tb_grad(&t, "w"));
    ck_assert_ptr_null(tb_grad(&t, "unused"));
    const gd_diag *d = tb_diag(&t, "unused", 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->code, GD_DIAG_DISCONNECTED);
    ck_assert_int_eq(d->n_consumers, 0);
    NAMES(&t, d, "'unused'");
    NAMES(&t, d, "'loss'");
    ck_assert_ptr_nonnull(strstr(d->hint, "outside the graph"));
    ck_assert_ptr_nonnull(strstr(d->hint, "Use 'unused' in the graph on the way to the target"));
    ck_assert_ptr_null(tb_diag(&t, "w", 1));
    tb_free(&t);
    /* the fix: 'unused' used on the way to the target */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "unused", "variable", "");
    tb_node(&t, "s", "add", "w,unused");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "unused", "3", v3);
    fix_gives_gradient(&t, "unused");
}
END_TEST

/* The client multiplied w by x itself and sent the product back as data: the
 * graph uses w only for a regulariser that is not part of the target. */
START_TEST(value_computed_outside_graph_is_disconnected) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "wx", "input", "");
    tb_node(&t, "y", "input", "");
    tb_node(&t, "reg", "square", "w");
    tb_node(&t, "err", "sub", "wx,y");
    tb_node(&t, "sq", "square", "err");
    tb_node(&t, "loss", "mean", "sq");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "wx", "3", v3);
    tb_f64(&t, "y", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", "w", NULL), 0);
    ck_assert_ptr_null(tb_grad(&t, "w"));
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_DISCONNECTED);
    ck_assert_int_eq(d->n_consumers, 1);
    ck_assert_str_eq(tb_name(&t, d->consumers[0]), "reg");
    NAMES(&t, d, "'reg' (square)");
    ck_assert_ptr_nonnull(strstr(d->hint, "sent back in as data"));
    tb_free(&t);
}
END_TEST

/* ---- A2: same_value_as ------------------------------------------------------ */

/* The classic cause of TensorFlow's "No gradients provided": y = X @ w was
 * computed in NumPy and sent back as the input 'pred'. X [2, 2], w [2],
 * t [2]; pred holds y's value scaled by (1 + rel), rounded to float32 when
 * f32. `fixed`: the request as the hint says, with 'y' fed to 'd'. y is not
 * needed by the target, so the run never evaluates it: A2's second sweep
 * does. */
static void outside_graph(tb *t, double rel, int f32, int fixed) {
    static const double X[] = {1, 2, 3, 4}, w[] = {0.1, 0.2}, tv[] = {1, 1};
    double pred[2];
    for (int i = 0; i < 2; i++) {
        pred[i] = (X[2 * i] * w[0] + X[2 * i + 1] * w[1]) * (1 + rel);
        if (f32) pred[i] = (double)(float)pred[i];
    }
    tb_init(t);
    tb_node(t, "X", "input", "");
    tb_node(t, "w", "variable", "");
    tb_node(t, "y", "matmul", "X,w");
    tb_node(t, "pred", "input", "");
    tb_node(t, "t", "input", "");
    tb_node(t, "d", "sub", fixed ? "y,t" : "pred,t");
    tb_node(t, "sq", "square", "d");
    tb_node(t, "loss", "mean", "sq");
    tb_f64(t, "X", "2,2", X);
    tb_f64(t, "w", "2", w);
    tb_f64(t, "pred", "2", pred);
    tb_f64(t, "t", "2", tv);
    ck_assert_int_eq(tb_check(t), 0);
    t->g->st[tb_idx(t, "pred")].transport_f32 = f32;
    ck_assert_int_eq(tb_run(t, "loss", NULL, NULL), 0);
}

static void same_is(tb *t, const gd_diag *d, const char *input, const char *node) {
    ck_assert_int_eq(d->code, GD_DIAG_DISCONNECTED);
    if (!input) {
        ck_assert_int_eq(d->same_input, -1);
        ck_assert_int_eq(d->same_node, -1);
        ck_assert_ptr_null(strstr(d->hint, "holds the same value"));
        return;
    }
    ck_assert_msg(d->same_input >= 0, "no same_value_as; hint: %s", d->hint);
    ck_assert_str_eq(tb_name(t, d->same_input), input);
    ck_assert_str_eq(tb_name(t, d->same_node), node);
}

START_TEST(same_value_numpy_outside_graph) {
    tb t;
    outside_graph(&t, 0, 0, 0); /* exact */
    const gd_diag *d = tb_diag(&t, "w", 1);
    same_is(&t, d, "pred", "y");
    ck_assert_ptr_nonnull(strstr(d->hint, "Feed 'y' instead of the input 'pred'"));
    ck_assert_ptr_nonnull(strstr(d->hint, "flows back to 'w'"));
    tb_free(&t);
    outside_graph(&t, 5e-13, 0, 0); /* within 1e-12 */
    same_is(&t, tb_diag(&t, "w", 1), "pred", "y");
    tb_free(&t);
    outside_graph(&t, 1e-11, 0, 0); /* beyond: no claim */
    same_is(&t, tb_diag(&t, "w", 1), NULL, NULL);
    tb_free(&t);
    outside_graph(&t, 0, 1, 0); /* sent as float32: y rounded as the input was */
    same_is(&t, tb_diag(&t, "w", 1), "pred", "y");
    tb_free(&t);
    /* the same float32-rounded numbers, not marked float32: they differ from y by ~1e-8 */
    outside_graph(&t, 0, 1, 0);
    t.g->st[tb_idx(&t, "pred")].transport_f32 = 0;
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    same_is(&t, tb_diag(&t, "w", 1), NULL, NULL);
    tb_free(&t);
    /* the hint's fix, applied: 'y' fed to 'd', and w gets its gradient */
    outside_graph(&t, 0, 0, 1);
    gd_tensor *g = tb_grad(&t, "w");
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_null(tb_diag(&t, "w", 1));
    /* d(mean((Xw - t)^2))/dw = X^T (Xw - t) / 1, Xw - t = [-0.5, 0.1] */
    ck_assert_double_eq_tol(gd_f64(g)[0], (1 * -0.5 + 3 * 0.1), 1e-12);
    ck_assert_double_eq_tol(gd_f64(g)[1], (2 * -0.5 + 4 * 0.1), 1e-12);
    tb_free(&t);
}
END_TEST

/* An input that happens to equal a node which does not depend on the wrt
 * (here zeros, like a constant's) is never claimed; nor is a NaN. */
START_TEST(same_value_not_claimed_by_coincidence) {
    static const double zeros[] = {0, 0}, wv[] = {3, 4}, xv[] = {1, 2}, nanv[] = {NAN, 1};
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "reg", "square", "w");
    tb_node(&t, "k", "constant", "");
    tb_node(&t, "kk", "add", "k,k");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "t", "input", "");
    tb_node(&t, "e", "sub", "x,t");
    tb_node(&t, "e2", "add", "e,kk");
    tb_node(&t, "loss", "sum", "e2");
    tb_f64(&t, "w", "2", wv);
    tb_f64(&t, "k", "2", zeros);
    tb_f64(&t, "x", "2", xv);
    tb_f64(&t, "t", "2", zeros);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert_ptr_nonnull(tb_grad(&t, "x"));
    same_is(&t, tb_diag(&t, "w", 1), NULL, NULL); /* t == kk, but kk is not w's */
    tb_free(&t);
    /* w = [NaN, 1] sent back as t: NaN never matches */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "t", "input", "");
    tb_node(&t, "e", "mul", "x,t");
    tb_node(&t, "loss", "sum", "e");
    tb_f64(&t, "w", "2", nanv);
    tb_f64(&t, "x", "2", xv);
    tb_f64(&t, "t", "2", nanv);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    same_is(&t, tb_diag(&t, "w", 1), NULL, NULL);
    ck_assert_int_eq(gd_same_value_close(NAN, NAN, 0), 0);
    ck_assert_int_eq(gd_same_value_close(1.0, 1.0 + 1e-13, 0), 1);
    ck_assert_int_eq(gd_same_value_close(0.1, 0.1, 1), 0);            /* 0.1 is no float32 */
    ck_assert_int_eq(gd_same_value_close((float)0.1, 0.1, 1), 1);
    tb_free(&t);
}
END_TEST

/* Ties: among matching inputs the one with the fewest edges to the target,
 * then graph order; among the nodes it matches, the first in graph order. */
START_TEST(same_value_tie_rules) {
    static const double wv[] = {2, 5};
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "a", "abs", "w");   /* a and b both equal w (positive) */
    tb_node(&t, "b", "relu", "w");
    tb_node(&t, "far", "input", "");     /* 3 edges to the loss */
    tb_node(&t, "near", "input", "");    /* 2 edges */
    tb_node(&t, "f1", "neg", "far");
    tb_node(&t, "s", "add", "f1,near");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "w", "2", wv);
    tb_f64(&t, "far", "2", wv);
    tb_f64(&t, "near", "2", wv);
    ck_assert_int_eq(tb_run(&t, "loss", "w", NULL), 0);
    same_is(&t, tb_diag(&t, "w", 1), "near", "w"); /* w itself is first in graph order */
    tb_free(&t);
}
END_TEST

/* The second sweep stays within the request's memory and deadline: when it
 * would not fit, or the deadline has passed, there is no evidence and no
 * error. X [512, 512] and pred are the request's (4 MiB); y = X * w is
 * another 2 MiB that only the search needs. */
static void big_outside(tb *t, size_t limit) {
    enum { N = 512 };
    double *X = malloc(sizeof(double) * N * N), w[N];
    for (int j = 0; j < N; j++) w[j] = 0.5 + j;
    for (int i = 0; i < N * N; i++) X[i] = (i % 7) - 3;
    memset(t, 0, sizeof *t);
    t->a = gd_arena_new(limit);
    t->g = gd_graph_new(t->a, 8);
    tb_node(t, "X", "input", "");
    tb_node(t, "w", "variable", "");
    tb_node(t, "y", "mul", "X,w");
    tb_node(t, "pred", "input", "");
    tb_node(t, "loss", "sum", "pred");
    tb_f64(t, "X", "512,512", X);
    tb_f64(t, "w", "512", w);
    for (int i = 0; i < N * N; i++) X[i] *= w[i % N];
    tb_f64(t, "pred", "512,512", X);
    free(X);
    ck_assert_int_eq(tb_run(t, "loss", NULL, NULL), 0);
}

START_TEST(same_value_within_memory_and_deadline) {
    tb t;
    big_outside(&t, (size_t)64 << 20);
    same_is(&t, tb_diag(&t, "w", 1), "pred", "y");
    tb_free(&t);
    big_outside(&t, (size_t)5 << 20); /* the run fits, the search does not */
    ck_assert_int_eq(t.res.n_diags, 1);
    same_is(&t, tb_diag(&t, "w", 1), NULL, NULL);
    tb_free(&t);
    /* the deadline passed before the search: skipped, nothing changed */
    big_outside(&t, (size_t)64 << 20);
    gd_diag *d = (gd_diag *)tb_diag(&t, "w", 1);
    const char *hint = d->hint;
    d->same_input = d->same_node = -1;
    gd_cancel late = {.deadline_ns = 1};
    t.spec.cancel = &late;
    ck_assert_int_eq(gd_same_value_search(t.g, &t.spec, &t.res), 0);
    ck_assert_int_eq(d->same_input, -1);
    ck_assert_ptr_eq(d->hint, hint);
    tb_free(&t);
}
END_TEST

START_TEST(stop_gradient_on_only_path) {
    tb t;
    tb_init(&t);
    tb_node(&t, "b", "variable", "");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "sg", "stop_gradient", "b");
    tb_node(&t, "s", "add", "x,sg");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "b", "3", v3);
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "b", 1);
    ck_assert_int_eq(d->code, GD_DIAG_STOP_GRADIENT);
    ck_assert_int_eq(d->n_blocked, 1);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "sg");
    ck_assert_int_eq(d->blocked[0].input, 0);
    ck_assert_int_eq(d->blocked[0].reason, GD_BLOCK_STOP_GRADIENT);
    path_is(&t, d, (const char *[]){"b", "sg", "s", "loss"}, 4);
    ck_assert_str_eq(d->message, "No gradient for 'b': its only path to 'loss' passes through stop_gradient node 'sg'.");
    ck_assert_str_eq(d->hint, "Remove 'sg' (stop_gradient) if 'b' should receive a gradient.");
    tb_free(&t);
    /* the fix: 'sg' removed */
    tb_init(&t);
    tb_node(&t, "b", "variable", "");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "s", "add", "x,b");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "b", "3", v3);
    tb_f64(&t, "x", "3", v3);
    fix_gives_gradient(&t, "b");
}
END_TEST

/* A classifier that picks its class with argmax and one_hot: the int64 edge
 * is charged to the argmax that made it, not to one_hot. */
START_TEST(argmax_on_path_names_argmax) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "W", "variable", "");
    tb_node(&t, "logits", "matmul", "x,W");
    tb_node(&t, "pick", "argmax", "logits")->axis = (gd_ints){.given = 1, .n = 1, .v = {1}};
    tb_node(&t, "oh", "one_hot", "pick")->depth = (gd_ints){.given = 1, .n = 1, .v = {2}};
    tb_node(&t, "r", "input", "");
    tb_node(&t, "score", "mul", "oh,r");
    tb_node(&t, "loss", "sum", "score");
    const double x[] = {1, 2, 3, 4}, w[] = {1, -1, 0.5, 2}, r[] = {1, 0, 0, 1};
    tb_f64(&t, "x", "2,2", x);
    tb_f64(&t, "W", "2,2", w);
    tb_f64(&t, "r", "2,2", r);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "W", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_int_eq(d->n_blocked, 1);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "pick");
    ck_assert_int_eq(d->blocked[0].input, 0);
    NAMES(&t, d, "'pick' (argmax)");
    ck_assert_ptr_nonnull(strstr(d->hint, "softmax"));
    ck_assert_ptr_nonnull(strstr(d->hint, "straight-through"));
    path_is(&t, d, (const char *[]){"W", "logits", "pick", "oh", "score", "loss"}, 6);
    tb_free(&t);
    /* the fix: softmax(logits) in place of one_hot(argmax(logits)) */
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "W", "variable", "");
    tb_node(&t, "logits", "matmul", "x,W");
    tb_node(&t, "oh", "softmax", "logits");
    tb_node(&t, "r", "input", "");
    tb_node(&t, "score", "mul", "oh,r");
    tb_node(&t, "loss", "sum", "score");
    tb_f64(&t, "x", "2,2", x);
    tb_f64(&t, "W", "2,2", w);
    tb_f64(&t, "r", "2,2", r);
    fix_gives_gradient(&t, "W");
}
END_TEST

START_TEST(round_on_path) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "q", "round", "w");
    tb_node(&t, "loss", "sum", "q");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "q");
    NAMES(&t, d, "'q' (round)");
    ck_assert_ptr_nonnull(strstr(d->hint, "w + stop_gradient(round(w) - w) in place of 'q'"));
    tb_free(&t);
    /* the fix, as the hint writes it */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "r", "round", "w");
    tb_node(&t, "rd", "sub", "r,w");
    tb_node(&t, "sg", "stop_gradient", "rd");
    tb_node(&t, "q", "add", "w,sg");
    tb_node(&t, "loss", "sum", "q");
    tb_f64(&t, "w", "3", v3);
    fix_gives_gradient(&t, "w");
}
END_TEST

START_TEST(cast_to_int_on_path) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "wi", "cast", "w")->dtype = (gd_num){1, GD_I64};
    tb_node(&t, "wf", "cast", "wi")->dtype = (gd_num){1, GD_F64};
    tb_node(&t, "loss", "sum", "wf");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "wi");
    NAMES(&t, d, "'wi' (cast to int64");
    /* Casting back to float64 is what the user already did: the hint names
     * both nodes and offers the straight-through form instead. */
    ck_assert_ptr_nonnull(strstr(d->hint, "'wi' casts 'w' to int64"));
    ck_assert_ptr_nonnull(strstr(d->hint, "w + stop_gradient(round(w) - w)"));
    tb_free(&t);
    /* The fix, applied: w + stop_gradient(round(w) - w) keeps the rounded
     * value and gives w the identity's gradient. */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "r", "round", "w");
    tb_node(&t, "rd", "sub", "r,w");
    tb_node(&t, "sg", "stop_gradient", "rd");
    tb_node(&t, "ste", "add", "w,sg");
    tb_node(&t, "loss", "sum", "ste");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "w");
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(gd_f64(g)[i], 1.0);
    ck_assert_double_eq(gd_f64(t.res.targets[0])[0], rint(0.5) + rint(-1.0) + rint(2.0)); /* half to even */
    ck_assert_ptr_null(tb_diag(&t, "w", 1));
    tb_free(&t);
}
END_TEST

START_TEST(comparison_on_path) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "zero", "constant", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "on", "greater", "w,zero");
    tb_node(&t, "y", "mul", "on,x");
    tb_node(&t, "loss", "sum", "y");
    const double z = 0;
    tb_f64(&t, "zero", "", &z);
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "on");
    ck_assert_ptr_nonnull(strstr(d->hint, "'on' (greater)"));
    ck_assert_ptr_nonnull(strstr(d->hint, "sigmoid((a - b) / temperature)"));
    tb_free(&t);
    /* the fix: on = sigmoid((w - zero) / 0.1) */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "zero", "constant", "");
    tb_node(&t, "temp", "constant", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "diff", "sub", "w,zero");
    tb_node(&t, "scaled", "div", "diff,temp");
    tb_node(&t, "on", "sigmoid", "scaled");
    tb_node(&t, "y", "mul", "on,x");
    tb_node(&t, "loss", "sum", "y");
    const double temp = 0.1;
    tb_f64(&t, "zero", "", &z);
    tb_f64(&t, "temp", "", &temp);
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "x", "3", v3);
    fix_gives_gradient(&t, "w");
}
END_TEST

/* cond with predicate false: the then-branch variable has no value, needs
 * none, gets null and an untaken_branch diagnostic naming cond and predicate. */
START_TEST(untaken_branch_of_cond) {
    tb t;
    tb_init(&t);
    tb_node(&t, "p", "input", "");
    tb_node(&t, "a", "variable", "");
    tb_node(&t, "b", "variable", "");
    tb_node(&t, "ea", "exp", "a");
    tb_node(&t, "tb", "tanh", "b");
    tb_node(&t, "c", "cond", "p,ea,tb");
    tb_node(&t, "loss", "sum", "c");
    const double p = 0;
    tb_f64(&t, "p", "", &p);
    tb_f64(&t, "b", "3", v3); /* a has no value: its branch is not taken */
    ck_assert_int_eq(tb_run(&t, "loss", NULL, "ea"), 0);
    ck_assert_ptr_nonnull(tb_grad(&t, "b"));
    ck_assert_ptr_null(tb_grad(&t, "a"));
    ck_assert_ptr_null(t.res.fetched[0]);
    const gd_diag *d = tb_diag(&t, "a", 1);
    ck_assert_int_eq(d->code, GD_DIAG_UNTAKEN_BRANCH);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "c");
    ck_assert_int_eq(d->blocked[0].input, 1);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].predicate), "p");
    NAMES(&t, d, "'c'");
    NAMES(&t, d, "'p'");
    path_is(&t, d, (const char *[]){"a", "ea", "c", "loss"}, 4);
    /* The fetch of the untaken node is null with its own diagnostic. */
    const gd_diag *f = tb_diag(&t, "ea", 1);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->code, GD_DIAG_UNTAKEN_BRANCH);
    ck_assert_int_eq(f->node, tb_idx(&t, "ea"));
    ck_assert_ptr_nonnull(strstr(d->hint, "'a' gets a gradient only on runs where predicate 'p' selects its branch of 'c'"));
    ck_assert_ptr_nonnull(strstr(d->hint, "where(p, a, b)"));
    tb_free(&t);
    /* the fix: both branches blended with where, so both are trained */
    tb_init(&t);
    tb_node(&t, "p", "input", "");
    tb_node(&t, "a", "variable", "");
    tb_node(&t, "b", "variable", "");
    tb_node(&t, "ea", "exp", "a");
    tb_node(&t, "tb", "tanh", "b");
    tb_node(&t, "c", "where", "p,ea,tb");
    tb_node(&t, "loss", "sum", "c");
    tb_f64(&t, "p", "", &p);
    tb_f64(&t, "a", "3", v3);
    tb_f64(&t, "b", "3", v3);
    fix_gives_gradient(&t, "a");
}
END_TEST

START_TEST(integer_variable) {
    tb t;
    tb_init(&t);
    tb_node(&t, "k", "variable", "");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "y", "mul", "k,x");
    tb_node(&t, "loss", "sum", "y");
    const int64_t k[] = {1, 2, 3};
    tb_i64(&t, "k", "3", k);
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "k", 1);
    ck_assert_int_eq(d->code, GD_DIAG_INTEGER_DTYPE);
    ck_assert_int_eq(d->dtype, GD_I64);
    ck_assert_str_eq(tb_name(&t, d->made_by), "k");
    NAMES(&t, d, "int64");
    /* x still gets k's values as its gradient (int64 operands become float64). */
    ck_assert_double_eq(gd_f64(tb_grad(&t, "x"))[2], 3.0);
    ck_assert_str_eq(d->hint, "Declare 'k' as float64 (or send its value as floats) if it should receive a gradient.");
    tb_free(&t);
    /* the fix: k sent as floats */
    tb_init(&t);
    tb_node(&t, "k", "variable", "");
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "y", "mul", "k,x");
    tb_node(&t, "loss", "sum", "y");
    tb_f64(&t, "k", "3", (const double[]){1, 2, 3});
    tb_f64(&t, "x", "3", v3);
    fix_gives_gradient(&t, "k");
}
END_TEST

START_TEST(two_paths_blocked_for_two_reasons_is_mixed) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "sg", "stop_gradient", "w");
    tb_node(&t, "r", "round", "w");
    tb_node(&t, "s", "add", "sg,r");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_MIXED);
    ck_assert_int_eq(d->n_blocked, 2);
    int saw_sg = 0, saw_r = 0;
    for (int i = 0; i < 2; i++) {
        saw_sg |= !strcmp(tb_name(&t, d->blocked[i].node), "sg") && d->blocked[i].reason == GD_BLOCK_STOP_GRADIENT;
        saw_r |= !strcmp(tb_name(&t, d->blocked[i].node), "r") && d->blocked[i].reason == GD_BLOCK_NON_DIFFERENTIABLE;
    }
    ck_assert(saw_sg && saw_r);
    NAMES(&t, d, "'sg'");
    NAMES(&t, d, "'r'");
    /* the hint has a fix for each blocker, the second one named */
    ck_assert_ptr_nonnull(strstr(d->hint, "Remove 'sg'"));
    ck_assert_ptr_nonnull(strstr(d->hint, "For 'r' (round): use a straight-through estimator"));
    tb_free(&t);
    /* both fixes: 'sg' removed, 'r' replaced by w + stop_gradient(round(w) - w) */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "rw", "round", "w");
    tb_node(&t, "d", "sub", "rw,w");
    tb_node(&t, "sd", "stop_gradient", "d");
    tb_node(&t, "r", "add", "w,sd");
    tb_node(&t, "s", "add", "w,r");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "w", "3", v3);
    fix_gives_gradient(&t, "w");
}
END_TEST

/* Only the stopping points nearest the target count: a stop_gradient behind
 * a round is not listed. */
START_TEST(blocked_at_lists_nearest_stops_only) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "sg", "stop_gradient", "w");
    tb_node(&t, "r", "round", "sg");
    tb_node(&t, "loss", "sum", "r");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_int_eq(d->n_blocked, 1);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "r");
    tb_free(&t);
}
END_TEST

START_TEST(diamond_with_one_open_path_has_gradient) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "a", "sin", "w");
    tb_node(&t, "b", "stop_gradient", "w");
    tb_node(&t, "c", "mul", "a,b");
    tb_node(&t, "loss", "sum", "c");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "w");
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(gd_f64(g)[i], cos(v3[i]) * v3[i], 1e-15);
    ck_assert_int_eq(t.res.n_diags, 0);
    tb_free(&t);
}
END_TEST

START_TEST(dead_relu_is_zero_gradient_mask) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "bias", "constant", "");
    tb_node(&t, "pre", "add", "w,bias");
    tb_node(&t, "h", "relu", "pre");
    tb_node(&t, "loss", "sum", "h");
    const double bias = -10;
    tb_f64(&t, "bias", "", &bias);
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "w");
    ck_assert_ptr_nonnull(g); /* a computed zero gradient, never null */
    for (int i = 0; i < 3; i++) ck_assert_double_eq(gd_f64(g)[i], 0.0);
    const gd_diag *d = tb_diag(&t, "w", 0);
    ck_assert_int_eq(d->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_int_eq(d->n_zeroed, 1);
    ck_assert_str_eq(tb_name(&t, d->zeroed[0].node), "h");
    ck_assert_int_eq(d->zeroed[0].cause, GD_ZERO_MASK);
    NAMES(&t, d, "'h' (relu)");
    ck_assert_ptr_nonnull(strstr(d->hint, "'h' is a dead relu: every element of 'pre' is <= 0"));
    ck_assert_ptr_nonnull(strstr(d->hint, "leaky_relu(pre) in place of 'h'"));
    ck_assert_ptr_null(tb_diag(&t, "w", 1));
    tb_free(&t);
    /* the fix: leaky_relu(pre); the gradient is no longer all zero */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "bias", "constant", "");
    tb_node(&t, "pre", "add", "w,bias");
    tb_node(&t, "h", "leaky_relu", "pre")->alpha = (gd_num){1, 0.01};
    tb_node(&t, "loss", "sum", "h");
    tb_f64(&t, "bias", "", &bias);
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert_double_eq_tol(gd_f64(tb_grad(&t, "w"))[0], 0.01, 1e-15);
    ck_assert_ptr_null(tb_diag(&t, "w", 0));
    tb_free(&t);
}
END_TEST

START_TEST(zero_value_and_cancellation) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "v", "variable", "");
    tb_node(&t, "z", "input", "");
    tb_node(&t, "wz", "mul", "w,z");
    tb_node(&t, "vv", "sub", "v,v");
    tb_node(&t, "s", "add", "wz,vv");
    tb_node(&t, "loss", "sum", "s");
    const double zeros[] = {0, 0, 0};
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "v", "3", v3);
    tb_f64(&t, "z", "3", zeros);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 0);
    ck_assert_int_eq(d->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_str_eq(tb_name(&t, d->zeroed[0].node), "wz");
    ck_assert_int_eq(d->zeroed[0].cause, GD_ZERO_VALUE);
    ck_assert_ptr_nonnull(strstr(d->hint, "An input of 'wz' (mul) is all zero"));
    const gd_diag *e = tb_diag(&t, "v", 0);
    ck_assert_int_eq(e->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_str_eq(tb_name(&t, e->zeroed[0].node), "v");
    ck_assert_int_eq(e->zeroed[0].cause, GD_ZERO_CANCELLATION);
    ck_assert_ptr_nonnull(strstr(e->hint, "reaching 'v' along different paths sum to zero"));
    tb_free(&t);
    /* the fixes the hints point at: z not all zero (w), and what 'vv' was
     * meant to compute, v - u, instead of v - v: no zero gradient left */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "v", "variable", "");
    tb_node(&t, "z", "input", "");
    tb_node(&t, "u", "input", "");
    tb_node(&t, "wz", "mul", "w,z");
    tb_node(&t, "vv", "sub", "v,u");
    tb_node(&t, "s", "add", "wz,vv");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "v", "3", v3);
    tb_f64(&t, "z", "3", v3);
    tb_f64(&t, "u", "3", zeros);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert_ptr_null(tb_diag(&t, "w", 0));
    ck_assert_ptr_null(tb_diag(&t, "v", 0));
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(gd_f64(tb_grad(&t, "w"))[i], v3[i]);
        ck_assert_double_eq(gd_f64(tb_grad(&t, "v"))[i], 1.0);
    }
    tb_free(&t);
}
END_TEST

START_TEST(sqrt_at_zero_is_non_finite_gradient) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "r", "sqrt", "w");
    tb_node(&t, "loss", "sum", "r");
    const double w[] = {4, 0, 1};
    tb_f64(&t, "w", "3", w);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 0);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_GRADIENT);
    ck_assert_str_eq(tb_name(&t, d->origin.node), "r");
    ck_assert_int_eq(d->origin.shape.rank, 1);
    ck_assert_int_eq(d->origin.index[0], 1);
    NAMES(&t, d, "'r' (sqrt)");
    ck_assert_ptr_nonnull(strstr(d->hint, "sqrt(w + eps) with a small eps in place of 'r'"));
    ck_assert(!d->has_zeroed); /* a nonzero cotangent met the infinity: no zeroed_at */
    tb_free(&t);
    /* the fix: sqrt(w + eps); the gradient is finite, no warning */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "eps", "constant", "");
    tb_node(&t, "we", "add", "w,eps");
    tb_node(&t, "r", "sqrt", "we");
    tb_node(&t, "loss", "sum", "r");
    const double eps = 1e-12;
    tb_f64(&t, "eps", "", &eps);
    tb_f64(&t, "w", "3", w);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert(isfinite(gd_f64(tb_grad(&t, "w"))[1]));
    ck_assert_ptr_null(tb_diag(&t, "w", 0));
    tb_free(&t);
}
END_TEST

/* A zero cotangent now flows through the rules below its birth (A8); the
 * births named stay the ones where a nonzero cotangent became zero: the
 * dead relu, not the tanh and mul below it that multiplied its zeros, and
 * the cancellation at 'e', not the exp rule below it. */
START_TEST(zero_births_named_after_zeros_flow_on) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "h", "mul", "w,x");
    tb_node(&t, "th", "tanh", "h");
    tb_node(&t, "a", "relu", "th");
    tb_node(&t, "loss", "sum", "a");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "x", "3", (double[]){-1, 1, -0.25}); /* h = [-0.5, -1, -0.5]: a dead relu */
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 0);
    ck_assert_int_eq(d->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_int_eq(d->n_zeroed, 1);
    ck_assert_str_eq(tb_name(&t, d->zeroed[0].node), "a");
    ck_assert_int_eq(d->zeroed[0].cause, GD_ZERO_MASK);
    ck_assert_str_eq(d->message, "The gradient of 'w' is all zero: 'a' (relu) masked it out.");
    tb_free(&t);

    tb_init(&t);
    tb_node(&t, "v", "variable", "");
    tb_node(&t, "e", "exp", "v");
    tb_node(&t, "dd", "sub", "e,e");
    tb_node(&t, "loss", "sum", "dd");
    tb_f64(&t, "v", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    d = tb_diag(&t, "v", 0);
    ck_assert_int_eq(d->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_int_eq(d->n_zeroed, 1);
    ck_assert_str_eq(tb_name(&t, d->zeroed[0].node), "e");
    ck_assert_int_eq(d->zeroed[0].cause, GD_ZERO_CANCELLATION);
    tb_free(&t);
}
END_TEST

/* A8: a zero cotangent that meets an infinite derivative gives NaN (as
 * PyTorch), and the non_finite_gradient says where the zero was born
 * (zeroed_at): here a dead relu above sqrt at 0. PyTorch 1.13.1 gives
 * x.grad = [nan, 0.] for relu(sqrt(x) - 5).sum() at x = [0, 4]. */
START_TEST(zero_meeting_infinity_is_non_finite_with_zeroed_at) {
    tb t;
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
    ck_assert(isnan(gd_f64(tb_grad(&t, "x"))[0]));
    const gd_diag *d = tb_diag(&t, "x", 0);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_GRADIENT);
    ck_assert_str_eq(tb_name(&t, d->origin.node), "r");
    ck_assert_int_eq(d->origin.index[0], 0);
    ck_assert(d->has_zeroed);
    ck_assert_int_eq(d->n_zeroed, 1);
    ck_assert_str_eq(tb_name(&t, d->zeroed[0].node), "h");
    ck_assert_int_eq(d->zeroed[0].cause, GD_ZERO_MASK);
    ck_assert_str_eq(d->message, "The gradient of 'x' contains NaN or Infinity, born in the backward rule of 'r' "
                                 "(sqrt) at index [0], where an all-zero cotangent met a NaN or infinite derivative "
                                 "(0 x Infinity is NaN): 'h' (relu) masked it out.");
    ck_assert_ptr_nonnull(strstr(d->hint, "eps"));
    ck_assert_int_eq(t.res.n_diags, 1); /* no zero_gradient: the gradient is not all zero */
    tb_free(&t);

    /* The zero given as target_grad: zeroed_at is empty and the message says so. */
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "r", "sqrt", "x");
    tb_f64(&t, "x", "2", (double[]){0, 1});
    gd_tensor *tg[1] = {gd_tensor_new(t.a, &(gd_shape){.rank = 1, .dim = {2}}, GD_F64, 1)};
    t.spec.target_grad = tg;
    ck_assert_int_eq(tb_run(&t, "r", NULL, NULL), 0);
    d = tb_diag(&t, "x", 0);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_GRADIENT);
    ck_assert(d->has_zeroed);
    ck_assert_int_eq(d->n_zeroed, 0);
    NAMES(&t, d, "the cotangent given for 'r' is zero");
    tb_free(&t);
}
END_TEST

/* A8's masks and kinks, seen through the diagnostics. abs'(NaN) = 0 (as
 * PyTorch): a NaN-only input gives a zero gradient born at the abs (mask);
 * relu'(NaN) = 1: a NaN keeps the relu alive (no zero_gradient). And a
 * max reduction multiplies its mask: an infinite cotangent born at a log
 * becomes NaN on the non-selected elements, and the birth named is the
 * log's, not the max's. */
START_TEST(masks_and_kinks_name_the_right_births) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "a", "abs", "x");
    tb_node(&t, "loss", "sum", "a");
    tb_f64(&t, "x", "1", (double[]){NAN});
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert(gd_f64(tb_grad(&t, "x"))[0] == 0);
    const gd_diag *d = tb_diag(&t, "x", 0);
    ck_assert_int_eq(d->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_int_eq(d->n_zeroed, 1);
    ck_assert_str_eq(tb_name(&t, d->zeroed[0].node), "a");
    ck_assert_int_eq(d->zeroed[0].cause, GD_ZERO_MASK);
    tb_free(&t);

    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "h", "relu", "x");
    tb_node(&t, "loss", "sum", "h");
    tb_f64(&t, "x", "2", (double[]){-1, NAN});
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    gd_tensor *g = tb_grad(&t, "x");
    ck_assert(gd_f64(g)[0] == 0 && gd_f64(g)[1] == 1);
    for (int i = 0; i < t.res.n_diags; i++) ck_assert_int_ne(t.res.diags[i].code, GD_DIAG_ZERO_GRADIENT);
    tb_free(&t);

    tb_init(&t);
    tb_node(&t, "x", "variable", "");
    tb_node(&t, "m", "max", "x");
    tb_node(&t, "three", "constant", "");
    tb_node(&t, "dm", "sub", "m,three");
    tb_node(&t, "l", "log", "dm");
    tb_f64(&t, "x", "3", (double[]){1, 3, 2});
    tb_f64(&t, "three", "", (double[]){3});
    ck_assert_int_eq(tb_run(&t, "l", NULL, NULL), 0);
    g = tb_grad(&t, "x"); /* PyTorch 1.13.1: [nan, inf, nan] */
    ck_assert(isnan(gd_f64(g)[0]) && gd_f64(g)[1] == INFINITY && isnan(gd_f64(g)[2]));
    d = tb_diag(&t, "x", 0);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_GRADIENT);
    ck_assert_str_eq(tb_name(&t, d->origin.node), "l");
    ck_assert(!d->has_zeroed);
    tb_free(&t);
}
END_TEST

START_TEST(log_of_negative_is_non_finite_value) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "m", "mul", "w,x");
    tb_node(&t, "l", "log", "m");
    tb_node(&t, "loss", "sum", "l");
    const double w[] = {1, 2, 3, 4}, x[] = {1, 1, -1, 1};
    tb_f64(&t, "w", "2,2", w);
    tb_f64(&t, "x", "2,2", x);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert(isnan(gd_f64(t.res.targets[0])[0]));
    const gd_diag *d = tb_diag(&t, "loss", 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_VALUE);
    ck_assert_str_eq(tb_name(&t, d->origin.node), "l");
    ck_assert_int_eq(d->origin.index[0], 1);
    ck_assert_int_eq(d->origin.index[1], 0);
    NAMES(&t, d, "'l' (log)");
    ck_assert_ptr_nonnull(strstr(d->hint, "negative"));
    ck_assert_ptr_nonnull(strstr(d->hint, "clip the input of 'l' to a small positive value"));
    tb_free(&t);
    /* the fix: the input of 'l' clipped to a small positive value */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "x", "input", "");
    tb_node(&t, "m", "mul", "w,x");
    tb_node(&t, "mc", "clip", "m")->min = (gd_num){1, 1e-12};
    tb_node(&t, "l", "log", "mc");
    tb_node(&t, "loss", "sum", "l");
    tb_f64(&t, "w", "2,2", w);
    tb_f64(&t, "x", "2,2", x);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert(isfinite(gd_f64(t.res.targets[0])[0]));
    ck_assert_ptr_null(tb_diag(&t, "loss", 0));
    ck_assert_ptr_null(tb_diag(&t, "w", 0));
    ck_assert_ptr_nonnull(tb_grad(&t, "w"));
    tb_free(&t);
}
END_TEST

/* check_numerics where the kernel watched its own output (and wrote it over
 * its input): the first non-finite element is found inside a full block of
 * the vectorised loop, not the later one in the scalar tail. */
START_TEST(non_finite_value_born_in_place) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "h", "neg", "x");
    tb_node(&t, "r", "sqrt", "h");
    tb_node(&t, "loss", "sum", "r");
    double x[1000];
    for (int i = 0; i < 1000; i++) x[i] = -1.0;
    x[700] = 1.0, x[999] = 2.0;
    tb_f64(&t, "x", "1000", x);
    ck_assert_int_eq(tb_eval(&t, "loss", NULL), 0);
    ck_assert(isnan(gd_f64(t.res.targets[0])[0]));
    const gd_diag *d = tb_diag(&t, "loss", 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_VALUE);
    ck_assert_str_eq(tb_name(&t, d->origin.node), "r");
    ck_assert_int_eq(d->origin.index[0], 700);
    tb_free(&t);

    /* Born in a broadcasting binary op, in the scalar tail of a run (260 =
     * 256 + 4): 1e300 * 1e10 overflows at [2, 259] only. */
    tb_init(&t);
    tb_node(&t, "a", "input", "");
    tb_node(&t, "b", "input", "");
    tb_node(&t, "q", "mul", "a,b");
    tb_node(&t, "loss", "sum", "q");
    double a[3] = {1.0, -1.0, 1e300}, b[260];
    for (int i = 0; i < 260; i++) b[i] = 1.0;
    b[259] = 1e10;
    tb_f64(&t, "a", "3,1", a);
    tb_f64(&t, "b", "1,260", b);
    ck_assert_int_eq(tb_eval(&t, "loss", NULL), 0);
    d = tb_diag(&t, "loss", 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->code, GD_DIAG_NON_FINITE_VALUE);
    ck_assert_str_eq(tb_name(&t, d->origin.node), "q");
    ck_assert_int_eq(d->origin.index[0], 2);
    ck_assert_int_eq(d->origin.index[1], 259);
    tb_free(&t);
}
END_TEST

START_TEST(intermediate_wrt_blocked_and_open) {
    tb t;
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "h", "tanh", "x");
    tb_node(&t, "hs", "stop_gradient", "h");
    tb_node(&t, "e", "exp", "x");
    tb_node(&t, "s", "add", "hs,e");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", "h,e,x", NULL), 0);
    ck_assert_ptr_null(tb_grad(&t, "h"));
    const gd_diag *d = tb_diag(&t, "h", 1);
    ck_assert_int_eq(d->code, GD_DIAG_STOP_GRADIENT);
    ck_assert_ptr_nonnull(strstr(d->hint, "Remove 'hs' (stop_gradient) if 'h' should receive a gradient"));
    gd_tensor *ge = tb_grad(&t, "e"), *gx = tb_grad(&t, "x");
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(gd_f64(ge)[i], 1.0);
        ck_assert_double_eq_tol(gd_f64(gx)[i], exp(v3[i]), 1e-15);
    }
    tb_free(&t);
    /* the fix: 'hs' removed, h added directly: h gets 1, x gets 1 - tanh^2 + exp */
    tb_init(&t);
    tb_node(&t, "x", "input", "");
    tb_node(&t, "h", "tanh", "x");
    tb_node(&t, "e", "exp", "x");
    tb_node(&t, "s", "add", "h,e");
    tb_node(&t, "loss", "sum", "s");
    tb_f64(&t, "x", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", "h,e,x", NULL), 0);
    ck_assert_ptr_null(tb_diag(&t, "h", 1));
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(gd_f64(tb_grad(&t, "h"))[i], 1.0);
        ck_assert_double_eq_tol(gd_f64(tb_grad(&t, "x"))[i], 1 - tanh(v3[i]) * tanh(v3[i]) + exp(v3[i]), 1e-14);
    }
    tb_free(&t);
}
END_TEST

START_TEST(where_condition_and_gather_indices) {
    tb t;
    tb_init(&t);
    static const double b3[] = {4.0, 1.0, -3.0};
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "a", "input", "");
    tb_node(&t, "b", "input", "");
    tb_node(&t, "sel", "where", "w,a,b");
    tb_node(&t, "loss", "sum", "sel");
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "a", "3", v3);
    tb_f64(&t, "b", "3", b3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_str_eq(tb_name(&t, d->blocked[0].node), "sel");
    ck_assert_int_eq(d->blocked[0].input, 0);
    NAMES(&t, d, "condition of where node 'sel'");
    ck_assert_ptr_nonnull(strstr(d->hint, "'sel' (where) passes no gradient to its condition"));
    ck_assert_ptr_nonnull(strstr(d->hint, "s*a + (1-s)*b with s = sigmoid(...)"));
    tb_free(&t);
    /* the fix: s*a + (1-s)*b with s = sigmoid(w); dw = s(1-s)(a - b) */
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    tb_node(&t, "a", "input", "");
    tb_node(&t, "b", "input", "");
    tb_node(&t, "one", "constant", "");
    tb_node(&t, "s", "sigmoid", "w");
    tb_node(&t, "sa", "mul", "s,a");
    tb_node(&t, "oms", "sub", "one,s");
    tb_node(&t, "ob", "mul", "oms,b");
    tb_node(&t, "sel", "add", "sa,ob");
    tb_node(&t, "loss", "sum", "sel");
    const double one = 1.0;
    tb_f64(&t, "one", "", &one);
    tb_f64(&t, "w", "3", v3);
    tb_f64(&t, "a", "3", v3);
    tb_f64(&t, "b", "3", b3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    ck_assert_ptr_null(tb_diag(&t, "w", 1));
    for (int i = 0; i < 3; i++) {
        double sg = 1 / (1 + exp(-v3[i]));
        ck_assert_double_eq_tol(gd_f64(tb_grad(&t, "w"))[i], sg * (1 - sg) * (v3[i] - b3[i]), 1e-14);
    }
    tb_free(&t);
}
END_TEST

/* A node may block several inputs, so a diagnostic may have more stops
 * than the graph has nodes: 40 comparisons greater(w, w), concatenated and
 * summed, block 80 (node, input) pairs among 43 nodes. The list once had
 * room for nodes + 1 stops and was written past its end (a fuzz finding:
 * tests/fuzz/regressions/finding-diag-more-stops-than-nodes). Every pair is
 * listed once, in BFS order, each comparison with both of its inputs. */
START_TEST(more_stops_than_nodes) {
    enum { K = 40 };
    char ins[K * 8], name[8];
    int k = 0;
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    for (int j = 0; j < K; j++) {
        snprintf(name, sizeof name, "g%d", j);
        tb_node(&t, name, "greater", "w,w");
        k += snprintf(ins + k, sizeof ins - (size_t)k, "%s%s", j ? "," : "", name);
    }
    tb_node(&t, "c", "concat", ins);
    tb_node(&t, "loss", "sum", "c");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 1);
    ck_assert_int_eq(d->code, GD_DIAG_NON_DIFFERENTIABLE);
    ck_assert_int_eq(d->n_blocked, 2 * K);
    for (int s = 0; s < 2 * K; s++) {
        snprintf(name, sizeof name, "g%d", s / 2);
        ck_assert_str_eq(tb_name(&t, d->blocked[s].node), name);
        ck_assert_int_eq(d->blocked[s].input, s % 2);
        ck_assert_int_eq(d->blocked[s].reason, GD_BLOCK_NON_DIFFERENTIABLE);
    }
    NAMES(&t, d, "and 76 more");
    tb_free(&t);
}
END_TEST

/* Every hint an op row carries expands fully: only {node}, {op}, {in} and
 * {wrt} are placeholders, and a non-differentiable op's no-gradient hint, if any,
 * says what to do instead. A typo such as {nod} would reach users verbatim. */
START_TEST(row_hints_use_known_placeholders) {
    int n;
    const gd_op_def *const *ops = gd_op_all(&n);
    int with_hints = 0;
    for (int k = 0; k < n; k++) {
        const gd_op_hints *h = &ops[k]->hints;
        const char *all[] = {h->blocked, h->no_gradient, h->zero_gradient, h->nonfinite_value, h->nonfinite_grad};
        for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) {
            if (!all[j]) continue;
            with_hints++;
            ck_assert_msg(strlen(all[j]) > 20, "%s: hint %zu too short", ops[k]->name, j);
            for (const char *p = strchr(all[j], '{'); p; p = strchr(p + 1, '{'))
                ck_assert_msg(!strncmp(p, "{node}", 6) || !strncmp(p, "{op}", 4) || !strncmp(p, "{wrt}", 5) ||
                                  !strncmp(p, "{in}", 4),
                              "%s: unknown placeholder at '%.12s'", ops[k]->name, p);
        }
    }
    ck_assert_int_ge(with_hints, 20);
}
END_TEST

/* The hint comes from the clip row, with {node} expanded exactly. */
START_TEST(zero_hint_comes_from_the_row) {
    tb t;
    tb_init(&t);
    tb_node(&t, "w", "variable", "");
    gd_attrs *a = tb_node(&t, "c", "clip", "w");
    a->min = (gd_num){1, 5.0};
    a->max = (gd_num){1, 6.0};
    tb_node(&t, "loss", "sum", "c");
    tb_f64(&t, "w", "3", v3);
    ck_assert_int_eq(tb_run(&t, "loss", NULL, NULL), 0);
    const gd_diag *d = tb_diag(&t, "w", 0);
    ck_assert_int_eq(d->code, GD_DIAG_ZERO_GRADIENT);
    ck_assert_str_eq(d->hint, "'c' (clip) is saturated: every input is outside [min, max]. Widen the bounds or "
                              "rescale its input.");
    tb_free(&t);
}
END_TEST

Suite *suite_diagnose(void) {
    Suite *s = suite_create("diagnose");
    TCase *tc = tcase_create("codes");
    tcase_add_test(tc, unused_variable_is_disconnected);
    tcase_add_test(tc, value_computed_outside_graph_is_disconnected);
    tcase_add_test(tc, same_value_numpy_outside_graph);
    tcase_add_test(tc, same_value_not_claimed_by_coincidence);
    tcase_add_test(tc, same_value_tie_rules);
    tcase_add_test(tc, same_value_within_memory_and_deadline);
    tcase_add_test(tc, stop_gradient_on_only_path);
    tcase_add_test(tc, argmax_on_path_names_argmax);
    tcase_add_test(tc, round_on_path);
    tcase_add_test(tc, cast_to_int_on_path);
    tcase_add_test(tc, comparison_on_path);
    tcase_add_test(tc, untaken_branch_of_cond);
    tcase_add_test(tc, integer_variable);
    tcase_add_test(tc, two_paths_blocked_for_two_reasons_is_mixed);
    tcase_add_test(tc, blocked_at_lists_nearest_stops_only);
    tcase_add_test(tc, diamond_with_one_open_path_has_gradient);
    tcase_add_test(tc, dead_relu_is_zero_gradient_mask);
    tcase_add_test(tc, zero_value_and_cancellation);
    tcase_add_test(tc, sqrt_at_zero_is_non_finite_gradient);
    tcase_add_test(tc, zero_births_named_after_zeros_flow_on);
    tcase_add_test(tc, zero_meeting_infinity_is_non_finite_with_zeroed_at);
    tcase_add_test(tc, masks_and_kinks_name_the_right_births);
    tcase_add_test(tc, log_of_negative_is_non_finite_value);
    tcase_add_test(tc, non_finite_value_born_in_place);
    tcase_add_test(tc, intermediate_wrt_blocked_and_open);
    tcase_add_test(tc, where_condition_and_gather_indices);
    tcase_add_test(tc, more_stops_than_nodes);
    tcase_add_test(tc, row_hints_use_known_placeholders);
    tcase_add_test(tc, zero_hint_comes_from_the_row);
    suite_add_tcase(s, tc);
    return s;
}
