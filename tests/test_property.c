/* test_property.c - the no-gradient analysis against an independent oracle on
 * 1,000 random DAGs with random blockers (stop_gradient, round, comparisons,
 * where's condition, cond with either branch taken, casts to int64, argmax,
 * int64 variables). For every wrt: the engine gives a gradient exactly when a
 * brute-force forward search finds a path to the target on which every edge
 * carries gradient; otherwise exactly one error diagnostic whose code follows
 * the contract's precedence, with a real path through its first stopping point. */
#include <string.h>

#include "../core/run.h"
#include "gradcheck.h"
#include "tests.h"

enum { MAXN = 48 };

typedef struct pgraph {
    gd_graph *g;
    int n_float3, float3[MAXN]; /* nodes with float64 [3] values */
    int n_int3, int3[MAXN];     /* int64 [3] */
    int n_pred, pred[MAXN];     /* float64 scalars usable as predicates */
    int n_var, var[MAXN];
} pgraph;

static char *nm(gd_arena *a, int k) { return gd_arena_printf(a, "n%d", k); }

static int add_node(pgraph *p, const char *op, int n_in, const int *in) {
    gd_error err;
    const char *names[4];
    for (int i = 0; i < n_in; i++) names[i] = p->g->nodes[in[i]].name;
    gd_node *n = gd_graph_add(p->g, nm(p->g->arena, p->g->n), op, names, n_in, &err);
    ck_assert_msg(n != NULL, "%s", err.message);
    return n->index;
}

static int pick(gc_rng *r, const int *from, int n) { return from[gc_next(r) % (uint64_t)n]; }

static gd_tensor *rand3(gd_arena *a, gc_rng *r) { return gc_rand(a, r, "3", -1, 1); }

/* Grow a random graph: leaves first, then ops drawn from a mix that includes
 * every kind of blocker. */
static void build(pgraph *p, gc_rng *r, gd_arena *a) {
    memset(p, 0, sizeof *p);
    p->g = gd_graph_new(a, MAXN);
    int n_leaves = 2 + (int)(gc_next(r) % 3);
    for (int k = 0; k < n_leaves; k++) {
        int kind = k == 0 ? 0 : (int)(gc_next(r) % 6); /* the first leaf is a float64 variable */
        int v = add_node(p, kind == 5 ? "input" : "variable", 0, NULL);
        gd_node *nd = &p->g->nodes[v];
        if (kind == 4) { /* an int64 variable */
            int64_t iv[3] = {1, 0, 2};
            gd_node_set_value(nd, gc_i64(a, "3", iv), v);
            p->int3[p->n_int3++] = v;
        } else {
            gd_node_set_value(nd, rand3(a, r), v);
            p->float3[p->n_float3++] = v;
        }
        if (kind != 5) p->var[p->n_var++] = v;
    }
    int zero = add_node(p, "constant", 0, NULL);
    gd_node_set_value(&p->g->nodes[zero], gd_tensor_scalar(a, 0.0), -1);
    int n_ops = 4 + (int)(gc_next(r) % 14);
    for (int k = 0; k < n_ops; k++) {
        int a1 = pick(r, p->float3, p->n_float3), a2 = pick(r, p->float3, p->n_float3), v;
        switch (gc_next(r) % 14) {
        case 0: v = add_node(p, "add", 2, (int[]){a1, a2}); break;
        case 1: v = add_node(p, "mul", 2, (int[]){a1, a2}); break;
        case 2: v = add_node(p, "sub", 2, (int[]){a1, a2}); break;
        case 3: v = add_node(p, "tanh", 1, &a1); break;
        case 4: v = add_node(p, "stop_gradient", 1, &a1); break;
        case 5: v = add_node(p, "round", 1, &a1); break;
        case 6: v = add_node(p, "greater", 2, (int[]){a1, a2}); break;
        case 7: {
            int c = add_node(p, "greater", 2, (int[]){a1, a2});
            v = add_node(p, "where", 3, (int[]){c, pick(r, p->float3, p->n_float3), a2});
            break;
        }
        case 8: {
            int s = add_node(p, "sum", 1, &a1);
            int pr = add_node(p, "greater", 2, (int[]){s, zero});
            p->pred[p->n_pred++] = pr;
            v = add_node(p, "cond", 3, (int[]){pr, a2, pick(r, p->float3, p->n_float3)});
            break;
        }
        case 9: {
            int c = add_node(p, "cast", 1, &a1);
            p->g->nodes[c].attrs.dtype = (gd_num){1, GD_I64};
            p->int3[p->n_int3++] = c;
            continue;
        }
        case 10: {
            if (!p->n_int3) continue;
            v = add_node(p, "add", 2, (int[]){pick(r, p->int3, p->n_int3), a2});
            break;
        }
        case 11: {
            int am = add_node(p, "argmax", 1, &a1);
            v = add_node(p, "mul", 2, (int[]){am, a2});
            break;
        }
        case 12: {
            if (!p->n_pred) continue;
            v = add_node(p, "cond", 3, (int[]){pick(r, p->pred, p->n_pred), a1, a2});
            break;
        }
        default: v = add_node(p, "sin", 1, &a1); break;
        }
        p->float3[p->n_float3++] = v;
    }
}

/* The oracle's own view of an edge, from op names alone. */
static int oracle_carries(const gd_graph *g, const gd_run_result *res, const int *fetch_of, int c, int i) {
    const gd_node *nd = &g->nodes[c];
    const char *op = nd->op->name;
    if (g->nodes[nd->in[i]].meta.dtype == GD_I64) return 0;
    if (!strcmp(op, "stop_gradient") || !strcmp(op, "round") || !strcmp(op, "greater") || !strcmp(op, "argmax") ||
        (!strcmp(op, "cast") && g->nodes[c].attrs.dtype.v == GD_I64))
        return 0;
    if (!strcmp(op, "where") && i == 0) return 0;
    if (!strcmp(op, "cond")) {
        if (i == 0) return 0;
        const gd_tensor *pv = res->fetched[fetch_of[nd->in[0]]];
        if (!pv) return 0; /* the cond itself lies behind an untaken branch */
        int taken = gd_f64(pv)[0] != 0.0 ? 1 : 2;
        return i == taken;
    }
    return 1;
}

/* memo: 0 unknown, 1 yes, 2 no */
static int open_path(const gd_graph *g, const gd_run_result *res, const int *fetch_of, int v, int target,
                     unsigned char *memo) {
    if (v == target) return 1;
    if (memo[v]) return memo[v] == 1;
    int ok = 0;
    for (int c = 0; c < g->n && !ok; c++)
        for (int i = 0; i < g->nodes[c].n_in && !ok; i++)
            if (g->nodes[c].in[i] == v && oracle_carries(g, res, fetch_of, c, i))
                ok = open_path(g, res, fetch_of, c, target, memo);
    memo[v] = ok ? 1 : 2;
    return ok;
}

static int any_path(const gd_graph *g, int v, int target, unsigned char *memo) {
    if (v == target) return 1;
    if (memo[v]) return memo[v] == 1;
    int ok = 0;
    for (int c = 0; c < g->n && !ok; c++)
        for (int i = 0; i < g->nodes[c].n_in && !ok; i++)
            if (g->nodes[c].in[i] == v) ok = any_path(g, c, target, memo);
    memo[v] = ok ? 1 : 2;
    return ok;
}

START_TEST(random_dags_agree_with_oracle) {
    gc_rng r = {20261125};
    int seen[GD_DIAG_NON_FINITE_VALUE + 1] = {0}, with_grad = 0;
    for (int trial = 0; trial < 1000; trial++) {
        gd_arena *a = gd_arena_new(0);
        pgraph p;
        build(&p, &r, a);
        gd_graph *g = p.g;
        int root = p.float3[p.n_float3 - 1 - (int)(gc_next(&r) % 2 ? 0 : gc_next(&r) % (uint64_t)p.n_float3)];
        int target = add_node(&p, "sum", 1, &root);
        gd_error err;
        gd_limits lim = {0};
        ck_assert_msg(gd_graph_check(g, &lim, &err) == 0, "trial %d: %s", trial, err.message);
        int wrt[MAXN + 4], n_wrt = 0, fetch_of[MAXN * 4];
        for (int k = 0; k < p.n_var; k++) wrt[n_wrt++] = p.var[k];
        for (int k = 0; k < 2; k++) wrt[n_wrt++] = (int)(gc_next(&r) % (uint64_t)g->n);
        for (int k = 0; k < p.n_pred; k++) fetch_of[p.pred[k]] = k;
        int targets[1] = {target};
        gd_run_spec s = {.targets = targets, .n_targets = 1, .grad = 1, .wrt = wrt, .n_wrt = n_wrt,
                         .fetch = p.pred, .n_fetch = p.n_pred, .check_numerics = 0};
        gd_run_result res;
        ck_assert_msg(gd_run(g, &s, &res, &err) == 0, "trial %d: %s", trial, err.message);
        for (int k = 0; k < n_wrt; k++) {
            int w = wrt[k];
            unsigned char memo1[MAXN * 4] = {0}, memo2[MAXN * 4] = {0};
            int expect = open_path(g, &res, fetch_of, w, target, memo1);
            ck_assert_msg((res.grads[k] != NULL) == expect, "trial %d wrt %s: engine %d oracle %d", trial,
                          g->nodes[w].name, res.grads[k] != NULL, expect);
            const gd_diag *d = NULL;
            int n_err = 0;
            for (int j = 0; j < res.n_diags; j++)
                if (res.diags[j].wrt == w && res.diags[j].is_error) d = &res.diags[j], n_err++;
            ck_assert_int_eq(n_err, expect ? 0 : 1);
            if (expect) { with_grad++; continue; }
            seen[d->code]++;
            if (g->nodes[w].meta.dtype == GD_I64) {
                ck_assert_int_eq(d->code, GD_DIAG_INTEGER_DTYPE);
            } else if (!any_path(g, w, target, memo2)) {
                ck_assert_int_eq(d->code, GD_DIAG_DISCONNECTED);
            } else {
                ck_assert_msg(d->code == GD_DIAG_STOP_GRADIENT || d->code == GD_DIAG_NON_DIFFERENTIABLE ||
                                  d->code == GD_DIAG_UNTAKEN_BRANCH || d->code == GD_DIAG_MIXED,
                              "trial %d: code %s", trial, gd_diag_code_name(d->code));
                ck_assert_int_ge(d->n_blocked, 1);
                /* The path is real: starts at w, ends at the target, follows edges. */
                ck_assert_int_ge(d->n_path, 2);
                ck_assert_int_eq(d->path[0], w);
                ck_assert_int_eq(d->path[d->n_path - 1], target);
                for (int j = 0; j + 1 < d->n_path; j++) {
                    const gd_node *c = &g->nodes[d->path[j + 1]];
                    int edge = 0;
                    for (int i = 0; i < c->n_in; i++) edge |= c->in[i] == d->path[j];
                    ck_assert_msg(edge, "trial %d: path step %d is not an edge", trial, j);
                }
                /* The first stopping point lies on the path, and the message names it. */
                int on_path = 0;
                for (int j = 0; j < d->n_path; j++) on_path |= d->path[j] == d->blocked[0].node;
                ck_assert(on_path);
                ck_assert_ptr_nonnull(strstr(d->message, g->nodes[d->blocked[0].node].name));
            }
        }
        gd_arena_free(a);
    }
    /* The generator must really exercise every code. */
    ck_assert_int_gt(with_grad, 100);
    ck_assert_int_gt(seen[GD_DIAG_DISCONNECTED], 10);
    ck_assert_int_gt(seen[GD_DIAG_STOP_GRADIENT], 10);
    ck_assert_int_gt(seen[GD_DIAG_NON_DIFFERENTIABLE], 10);
    ck_assert_int_gt(seen[GD_DIAG_UNTAKEN_BRANCH], 3);
    ck_assert_int_gt(seen[GD_DIAG_MIXED], 3);
    ck_assert_int_gt(seen[GD_DIAG_INTEGER_DTYPE], 10);
}
END_TEST

Suite *suite_property(void) {
    Suite *s = suite_create("property");
    TCase *tc = tcase_create("random_dags");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, random_dags_agree_with_oracle);
    suite_add_tcase(s, tc);
    return s;
}
