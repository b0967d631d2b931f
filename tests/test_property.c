/* test_property.c - the engine and its no-gradient analysis against an oracle
 * written here, on 1,000 random DAGs with random blockers (stop_gradient,
 * round, comparisons, where's condition, cond with either branch taken, casts
 * to int64 and int64 chains through reshape and stop_gradient, argmax, int64
 * variables) and broadcasting.
 *
 * The oracle knows the contract (api-v1.md, Diagnostics, "Which code.") and
 * its own table of op facts; it never calls core/diagnose.c nor reads the op
 * table's gradient flags. For every wrt it decides whether a gradient exists;
 * if not, the exact code, `made_by` (integer_dtype), `consumers`
 * (disconnected) or the exact `blocked_at` set (node, reason, input,
 * predicate) with a real `path` through the first stopping point. Every
 * gradient is checked element by element against central finite differences
 * of a copy of the graph in which the wrt and every stop_gradient are frozen
 * into leaves; an element whose perturbation changes a step (round, greater,
 * argmax, a cast to int64, hence a where or cond choice) is skipped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/run.h"
#include "gradcheck.h"
#include "tests.h"

enum { MAXN = 96, TRIALS = 1000 };

typedef struct pgraph {
    gd_graph *g;
    int n_float3, float3[MAXN]; /* nodes with float64 [3] values */
    int n_int3, int3[MAXN];     /* int64 [3] */
    int n_pred, pred[MAXN];     /* float64 scalars usable as predicates */
    int n_var, var[MAXN];
    /* The oracle's own record, kept while the graph grows: */
    unsigned char is_int[MAXN];   /* output is int64 */
    int int_origin[MAXN];         /* int64 nodes: the node that made it int64 */
    unsigned char is_step[MAXN];  /* piecewise constant output: a kink for finite differences */
} pgraph;

static char *nm(gd_arena *a, int k) { return gd_arena_printf(a, "n%d", k); }

static int add_node(pgraph *p, const char *op, int n_in, const int *in) {
    gd_error err;
    const char *names[4];
    ck_assert_int_lt(p->g->n, MAXN);
    for (int i = 0; i < n_in; i++) names[i] = p->g->nodes[in[i]].name;
    gd_node *n = gd_graph_add(p->g, nm(p->g->arena, p->g->n), op, names, n_in, &err);
    ck_assert_msg(n != NULL, "%s", err.message);
    return n->index;
}

/* An int64 node: made here (origin < 0) or passed on from `origin`'s chain. */
static void mark_int(pgraph *p, int v, int from) {
    p->is_int[v] = p->is_step[v] = 1;
    p->int_origin[v] = from < 0 ? v : p->int_origin[from];
    p->int3[p->n_int3++] = v;
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
        if (kind == 4) { /* an int64 variable */
            int64_t iv[3] = {1, 0, 2};
            gd_graph_set_value(p->g, v, gc_i64(a, "3", iv), v);
            mark_int(p, v, -1);
        } else {
            gd_graph_set_value(p->g, v, rand3(a, r), v);
            p->float3[p->n_float3++] = v;
        }
        if (kind != 5) p->var[p->n_var++] = v;
    }
    int zero = add_node(p, "constant", 0, NULL);
    gd_graph_set_value(p->g, zero, gd_tensor_scalar(a, 0.0), -1);
    int n_ops = 4 + (int)(gc_next(r) % 14);
    for (int k = 0; k < n_ops; k++) {
        int a1 = pick(r, p->float3, p->n_float3), a2 = pick(r, p->float3, p->n_float3), v;
        switch (gc_next(r) % 17) {
        case 0: v = add_node(p, "add", 2, (int[]){a1, a2}); break;
        case 1: v = add_node(p, "mul", 2, (int[]){a1, a2}); break;
        case 2: v = add_node(p, "sub", 2, (int[]){a1, a2}); break;
        case 3: v = add_node(p, "tanh", 1, &a1); break;
        case 4: v = add_node(p, "stop_gradient", 1, &a1); break;
        case 5: v = add_node(p, "round", 1, &a1), p->is_step[v] = 1; break;
        case 6: v = add_node(p, "greater", 2, (int[]){a1, a2}), p->is_step[v] = 1; break;
        case 7: {
            int c = add_node(p, "greater", 2, (int[]){a1, a2});
            p->is_step[c] = 1;
            v = add_node(p, "where", 3, (int[]){c, pick(r, p->float3, p->n_float3), a2});
            break;
        }
        case 8: {
            int s = add_node(p, "sum", 1, &a1);
            int pr = add_node(p, "greater", 2, (int[]){s, zero});
            p->is_step[pr] = 1;
            p->pred[p->n_pred++] = pr;
            v = add_node(p, "cond", 3, (int[]){pr, a2, pick(r, p->float3, p->n_float3)});
            break;
        }
        case 9: {
            int c = add_node(p, "cast", 1, &a1);
            p->g->nodes[c].attrs->dtype = (gd_num){1, GD_I64};
            mark_int(p, c, -1);
            continue;
        }
        case 10: {
            if (!p->n_int3) continue;
            int i3 = pick(r, p->int3, p->n_int3);
            v = add_node(p, "add", 2, gc_next(r) % 2 ? (int[]){i3, a2} : (int[]){a2, i3});
            break;
        }
        case 11: {
            int am = add_node(p, "argmax", 1, &a1);
            p->is_int[am] = p->is_step[am] = 1, p->int_origin[am] = am; /* scalar: not in int3 */
            v = add_node(p, "mul", 2, gc_next(r) % 2 ? (int[]){am, a2} : (int[]){a2, am});
            break;
        }
        case 12: {
            if (!p->n_pred) continue;
            v = add_node(p, "cond", 3, (int[]){pick(r, p->pred, p->n_pred), a1, a2});
            break;
        }
        case 13: { /* int64 kept: the stopping point is still the cast/argmax/leaf behind it */
            if (!p->n_int3) continue;
            int src = pick(r, p->int3, p->n_int3);
            if (gc_next(r) % 2) {
                v = add_node(p, "reshape", 1, &src);
                p->g->nodes[v].attrs->shape = (gd_ints){.given = 1, .is_list = 1, .n = 1, .v = {3}};
            } else {
                v = add_node(p, "stop_gradient", 1, &src);
            }
            mark_int(p, v, src);
            continue;
        }
        case 14: { /* a scalar broadcast against [3]: the engine must sum the gradient down */
            int s = add_node(p, "sum", 1, &a1);
            v = add_node(p, "mul", 2, gc_next(r) % 2 ? (int[]){s, a2} : (int[]){a2, s});
            break;
        }
        case 15: v = add_node(p, "sin", 1, &a1); break;
        default: v = add_node(p, "tanh", 1, (int[]){add_node(p, "mul", 2, (int[]){a1, a2})}); break;
        }
        p->float3[p->n_float3++] = v;
    }
}

/* ---- the oracle ---------------------------------------------------------------- */

/* The oracle's op facts (from the contract and the ops' docs, not the op
 * table): the reason gradient never crosses input i of node nd, or NULL when
 * it may. A cond's branches depend on the run: edge_block() decides them. */
static const char *op_block(const gd_node *nd, int i) {
    const char *op = nd->op->name;
    if (!strcmp(op, "stop_gradient")) return "stop_gradient";
    if (!strcmp(op, "round") || !strcmp(op, "greater") || !strcmp(op, "argmax")) return "non_differentiable";
    if ((!strcmp(op, "where") || !strcmp(op, "cond")) && i == 0) return "non_differentiable";
    return NULL;
}

typedef struct oracle {
    const pgraph *p;
    const gd_graph *g;
    signed char taken[MAXN];    /* cond: the input index its predicate chose; 0 when not evaluated */
    unsigned char open[MAXN];   /* the open region */
} oracle;

/* Why no gradient crosses the edge c -> input i ("untaken_branch" for a cond
 * branch not chosen), or NULL when it carries; the int64 rule comes on top. */
static const char *edge_block(const oracle *o, int c, int i) {
    const gd_node *nd = &o->g->nodes[c];
    const char *why = op_block(nd, i);
    if (!why && !strcmp(nd->op->name, "cond") && o->taken[c] != i) return "untaken_branch";
    return why;
}

static int carries(const oracle *o, int c, int i) {
    return !edge_block(o, c, i) && !o->p->is_int[o->g->nodes[c].in[i]];
}

/* The open region: everything the target's cotangent reaches through edges
 * that carry. Node indices are topological (inputs come first). */
static void find_open(oracle *o, int target) {
    memset(o->open, 0, sizeof o->open);
    o->open[target] = 1;
    for (int v = o->g->n - 1; v >= 0; v--)
        for (int i = 0; o->open[v] && i < o->g->nodes[v].n_in; i++)
            if (carries(o, v, i)) o->open[o->g->nodes[v].in[i]] = 1;
}

/* Descendants of w (w included), through any edge. */
static void descendants(const gd_graph *g, int w, unsigned char *in_d) {
    memset(in_d, 0, MAXN);
    in_d[w] = 1;
    for (int v = w + 1; v < g->n; v++)
        for (int i = 0; i < g->nodes[v].n_in; i++) in_d[v] |= in_d[g->nodes[v].in[i]];
}

typedef struct oblock {
    int node, input, predicate;
    const char *reason;
} oblock;

/* The contract's blocked_at: every open node's input, reachable from the
 * wrt, through which no gradient passes; for an int64 input (not an untaken
 * branch), the node that made it int64 and its input reachable from the wrt. */
static int expected_blocks(const oracle *o, const unsigned char *in_d, oblock *out) {
    const gd_graph *g = o->g;
    int n = 0;
    for (int v = 0; v < g->n; v++) {
        if (!o->open[v]) continue;
        for (int i = 0; i < g->nodes[v].n_in; i++) {
            int u = g->nodes[v].in[i];
            if (!in_d[u] || carries(o, v, i)) continue;
            const char *why = edge_block(o, v, i);
            oblock b = {.node = v, .input = i, .predicate = -1, .reason = why};
            if (o->p->is_int[u] && !(why && !strcmp(why, "untaken_branch"))) {
                b.node = o->p->int_origin[u];
                b.reason = "non_differentiable";
                b.input = -1;
                for (int j = 0; j < g->nodes[b.node].n_in && b.input < 0; j++)
                    if (in_d[g->nodes[b.node].in[j]]) b.input = j;
            }
            if (!strcmp(g->nodes[b.node].op->name, "cond")) b.predicate = g->nodes[b.node].in[0];
            int dup = 0;
            for (int k = 0; k < n; k++)
                dup |= out[k].node == b.node && out[k].input == b.input && !strcmp(out[k].reason, b.reason);
            if (!dup) out[n++] = b;
        }
    }
    return n;
}

static const char *expected_code(const oblock *b, int n) {
    for (int k = 1; k < n; k++)
        if (strcmp(b[k].reason, b[0].reason)) return "mixed";
    return b[0].reason;
}

/* ---- the checks ------------------------------------------------------------------ */

static void check_blocked(const oracle *o, int trial, int w, int target, const gd_diag *d) {
    const gd_graph *g = o->g;
    unsigned char in_d[MAXN];
    oblock want[4 * MAXN];
    descendants(g, w, in_d);
    int n_want = expected_blocks(o, in_d, want);
    ck_assert_msg(n_want > 0, "trial %d wrt %s: the oracle found no stopping point", trial, g->nodes[w].name);
    const char *code = expected_code(want, n_want);
    ck_assert_msg(!strcmp(gd_diag_code_name(d->code), code), "trial %d wrt %s: code %s, expected %s (%d stops)",
                  trial, g->nodes[w].name, gd_diag_code_name(d->code), code, n_want);
    /* blocked_at: exactly the expected set. */
    ck_assert_msg(d->n_blocked == n_want, "trial %d wrt %s: %d blocked_at entries, expected %d", trial,
                  g->nodes[w].name, d->n_blocked, n_want);
    unsigned char matched[4 * MAXN] = {0};
    for (int k = 0; k < d->n_blocked; k++) {
        const gd_block *b = &d->blocked[k];
        int hit = -1;
        for (int j = 0; j < n_want && hit < 0; j++)
            if (!matched[j] && want[j].node == b->node && want[j].input == b->input &&
                want[j].predicate == b->predicate && !strcmp(want[j].reason, gd_block_reason_name(b->reason)))
                hit = j;
        ck_assert_msg(hit >= 0, "trial %d wrt %s: unexpected blocked_at {node %s, reason %s, input %d, predicate %d}",
                      trial, g->nodes[w].name, g->nodes[b->node].name, gd_block_reason_name(b->reason), b->input,
                      b->predicate);
        matched[hit] = 1;
    }
    /* path: w ... target along real edges, entering the first stopping
     * point through the input blocked_at names. */
    const gd_block *b0 = &d->blocked[0];
    ck_assert_int_ge(d->n_path, 2);
    ck_assert_int_eq(d->path[0], w);
    ck_assert_int_eq(d->path[d->n_path - 1], target);
    int through = 0;
    for (int j = 0; j + 1 < d->n_path; j++) {
        const gd_node *c = &g->nodes[d->path[j + 1]];
        int edge = 0;
        for (int i = 0; i < c->n_in; i++) edge |= c->in[i] == d->path[j];
        ck_assert_msg(edge, "trial %d wrt %s: path step %d (%s -> %s) is not an edge", trial, g->nodes[w].name, j,
                      g->nodes[d->path[j]].name, c->name);
        through |= d->path[j + 1] == b0->node && b0->input >= 0 && c->in[b0->input] == d->path[j];
    }
    ck_assert_msg(through, "trial %d wrt %s: the path does not enter %s through its input %d", trial,
                  g->nodes[w].name, g->nodes[b0->node].name, b0->input);
    /* The message names the first stopping point, as the request named it. */
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", g->nodes[b0->node].name);
    ck_assert_msg(strstr(d->message, quoted), "trial %d: message does not name %s: %s", trial, quoted, d->message);
}

static void check_disconnected(const gd_graph *g, int trial, int w, const gd_diag *d) {
    int want = 0;
    for (int c = 0; c < g->n; c++) {
        int uses = 0;
        for (int i = 0; i < g->nodes[c].n_in; i++) uses |= g->nodes[c].in[i] == w;
        if (!uses) continue;
        want++;
        int found = 0;
        for (int k = 0; k < d->n_consumers; k++) found += d->consumers[k] == c;
        ck_assert_msg(found == 1, "trial %d wrt %s: consumer %s listed %d times", trial, g->nodes[w].name,
                      g->nodes[c].name, found);
    }
    ck_assert_int_eq(d->n_consumers, want);
}

/* ---- gradient values --------------------------------------------------------------- */

typedef struct fd_stats {
    int checked, skipped;
} fd_stats;

/* A copy of g in arena a in which `w` and every stop_gradient are leaves
 * holding their values in `base` (zeros where base has none), so that its
 * plain derivative is what the engine's gradient of g means. */
static gd_graph *frozen_copy(const gd_graph *g, gd_arena *a, int w, gd_tensor *const *base) {
    gd_graph *c = gd_graph_new(a, g->n);
    gd_error err;
    for (int v = 0; v < g->n; v++) {
        const gd_node *s = &g->nodes[v];
        int freeze = v == w || !strcmp(s->op->name, "stop_gradient");
        gd_node *d = gd_graph_add(c, s->name, freeze ? "input" : s->op->name, s->in_names, freeze ? 0 : s->n_in, &err);
        ck_assert_msg(d != NULL, "%s", err.message);
        d->attrs = s->attrs;
        const gd_nstate *ss = &g->st[v];
        const gd_tensor *val = freeze ? base[v] : ss->value;
        if (freeze && !val) val = gd_tensor_new(a, &ss->meta.shape, ss->meta.dtype, 1);
        if (val) gd_graph_set_value(c, d->index, gd_tensor_copy(a, val), freeze ? v : ss->value_index);
    }
    gd_limits lim = {0};
    ck_assert_msg(gd_graph_check(c, &lim, &err) == 0, "frozen copy: %s", err.message);
    return c;
}

static int same_tensor(const gd_tensor *x, const gd_tensor *y) {
    if (!x || !y) return x == y;
    return x->dtype == y->dtype && x->n == y->n && !memcmp(x->data, y->data, (size_t)x->n * 8);
}

/* Evaluate the target of c (every node fetched); 0 when a step moved away
 * from `base`, else 1 with *f set. */
static int eval_smooth(gd_graph *c, const pgraph *p, int target, const int *all, gd_tensor *const *base, int w,
                       double *f) {
    gd_error err;
    gd_run_result res;
    gd_run_spec s = {.targets = &target, .n_targets = 1, .fetch = all, .n_fetch = c->n};
    ck_assert_msg(gd_run(c, &s, &res, &err) == 0, "%s", err.message);
    for (int v = 0; v < c->n; v++)
        if (v != w && p->is_step[v] && !same_tensor(res.fetched[v], base[v])) return 0;
    *f = gd_f64(res.targets[0])[0];
    return 1;
}

/* The engine's gradient of wrt w, element by element, against central
 * finite differences, with gc_check's step and tolerance. */
static void check_values(const pgraph *p, int trial, int w, int target, const gd_tensor *grad, gd_tensor *const *base,
                         const int *all, fd_stats *st) {
    gd_arena *a = gd_arena_new(0);
    gd_graph *c = frozen_copy(p->g, a, w, base);
    double *x = gd_f64(c->st[w].value);
    ck_assert_int_eq(grad->n, c->st[w].value->n);
    for (int64_t j = 0; j < grad->n; j++) {
        double x0 = x[j], h = 1e-6 * fmax(1.0, fabs(x0)), fp, fm;
        x[j] = x0 + h;
        int ok = eval_smooth(c, p, target, all, base, w, &fp);
        x[j] = x0 - h;
        ok = ok && eval_smooth(c, p, target, all, base, w, &fm);
        x[j] = x0;
        if (!ok) { st->skipped++; continue; }
        double num = (fp - fm) / (2 * h), an = gd_f64(grad)[j];
        double e = fabs(an - num) / fmax(1.0, fmax(fabs(an), fabs(num)));
        ck_assert_msg(e <= GC_TOL, "trial %d: gradient of %s [%lld]: engine %.12g, finite differences %.12g", trial,
                      p->g->nodes[w].name, (long long)j, an, num);
        st->checked++;
    }
    gd_arena_free(a);
}

START_TEST(random_dags_agree_with_oracle) {
    gc_rng r = {20261125};
    int seen[GD_DIAG_NON_FINITE_VALUE + 1] = {0}, with_grad = 0, via_int = 0, multi = 0;
    fd_stats st = {0, 0};
    int all[MAXN];
    for (int v = 0; v < MAXN; v++) all[v] = v;
    for (int trial = 0; trial < TRIALS; trial++) {
        gd_arena *a = gd_arena_new(0);
        pgraph p;
        build(&p, &r, a);
        gd_graph *g = p.g;
        int root = p.float3[p.n_float3 - 1 - (int)(gc_next(&r) % 2 ? 0 : gc_next(&r) % (uint64_t)p.n_float3)];
        int target = add_node(&p, "sum", 1, &root);
        gd_error err;
        gd_limits lim = {0};
        ck_assert_msg(gd_graph_check(g, &lim, &err) == 0, "trial %d: %s", trial, err.message);
        for (int v = 0; v < g->n; v++) /* the oracle's dtypes are the checked graph's */
            ck_assert_int_eq(g->st[v].meta.dtype == GD_I64, p.is_int[v]);
        int wrt[MAXN + 4], n_wrt = 0, fetch_of[MAXN];
        for (int k = 0; k < p.n_var; k++) wrt[n_wrt++] = p.var[k];
        for (int k = 0; k < 2; k++) wrt[n_wrt++] = (int)(gc_next(&r) % (uint64_t)g->n);
        for (int k = 0; k < p.n_pred; k++) fetch_of[p.pred[k]] = k;
        gd_run_spec s = {.targets = &target, .n_targets = 1, .grad = 1, .wrt = wrt, .n_wrt = n_wrt,
                         .fetch = p.pred, .n_fetch = p.n_pred, .check_numerics = 0};
        gd_run_result res;
        ck_assert_msg(gd_run(g, &s, &res, &err) == 0, "trial %d: %s", trial, err.message);
        /* Every value, once, for the frozen copies and the step check. */
        gd_run_spec se = {.targets = &target, .n_targets = 1, .fetch = all, .n_fetch = g->n};
        gd_run_result base;
        ck_assert_msg(gd_run(g, &se, &base, &err) == 0, "trial %d: %s", trial, err.message);

        oracle o = {.p = &p, .g = g};
        for (int c = 0; c < g->n; c++) {
            if (strcmp(g->nodes[c].op->name, "cond")) continue;
            const gd_tensor *pv = res.fetched[fetch_of[g->nodes[c].in[0]]];
            o.taken[c] = pv ? (gd_f64(pv)[0] != 0.0 ? 1 : 2) : 0;
        }
        find_open(&o, target);
        for (int k = 0; k < n_wrt; k++) {
            int w = wrt[k];
            int expect = o.open[w];
            ck_assert_msg((res.grads[k] != NULL) == expect, "trial %d wrt %s: engine %d oracle %d", trial,
                          g->nodes[w].name, res.grads[k] != NULL, expect);
            const gd_diag *d = NULL;
            int n_err = 0;
            for (int j = 0; j < res.n_diags; j++)
                if (res.diags[j].wrt == w && res.diags[j].is_error) d = &res.diags[j], n_err++;
            ck_assert_int_eq(n_err, expect ? 0 : 1);
            if (expect) {
                with_grad++;
                check_values(&p, trial, w, target, res.grads[k], base.fetched, all, &st);
                continue;
            }
            seen[d->code]++;
            unsigned char in_d[MAXN];
            descendants(g, w, in_d);
            if (p.is_int[w]) {
                ck_assert_str_eq(gd_diag_code_name(d->code), "integer_dtype");
                ck_assert_int_eq(d->dtype, GD_I64);
                ck_assert_msg(d->made_by == p.int_origin[w], "trial %d wrt %s: made_by %s, expected %s", trial,
                              g->nodes[w].name, d->made_by >= 0 ? g->nodes[d->made_by].name : "-",
                              g->nodes[p.int_origin[w]].name);
            } else if (!in_d[target]) {
                ck_assert_str_eq(gd_diag_code_name(d->code), "disconnected");
                check_disconnected(g, trial, w, d);
            } else {
                check_blocked(&o, trial, w, target, d);
                multi += d->n_blocked > 1;
                for (int j = 0; j < d->n_blocked; j++) via_int += p.is_int[d->blocked[j].node];
            }
        }
        gd_arena_free(a);
    }
    /* The generator must really exercise every code and every check. */
    ck_assert_int_gt(with_grad, 100);
    ck_assert_int_gt(seen[GD_DIAG_DISCONNECTED], 10);
    ck_assert_int_gt(seen[GD_DIAG_STOP_GRADIENT], 10);
    ck_assert_int_gt(seen[GD_DIAG_NON_DIFFERENTIABLE], 10);
    ck_assert_int_gt(seen[GD_DIAG_UNTAKEN_BRANCH], 3);
    ck_assert_int_gt(seen[GD_DIAG_MIXED], 3);
    ck_assert_int_gt(seen[GD_DIAG_INTEGER_DTYPE], 10);
    ck_assert_int_gt(multi, 50);
    ck_assert_int_gt(via_int, 20);
    ck_assert_int_gt(st.checked, 1000);
    ck_assert_int_lt(st.skipped * 20, st.checked); /* kinks are rare: the check is not skipped away */
    fprintf(stderr, "property: %d gradients (%d elements checked, %d at a kink); errors:", with_grad, st.checked,
            st.skipped);
    for (int c = 0; c <= GD_DIAG_INTEGER_DTYPE; c++) fprintf(stderr, " %s %d", gd_diag_code_name(c), seen[c]);
    fprintf(stderr, "; %d with several stops, %d stops named through int64\n", multi, via_int);
}
END_TEST

Suite *suite_property(void) {
    Suite *s = suite_create("property");
    TCase *tc = tcase_create("random_dags");
    /* Under 1 s in the plain build; the sanitizer and -O0 coverage builds are
     * 3-5x slower, a loaded machine more: a wide margin, which those builds
     * stretch further with CK_TIMEOUT_MULTIPLIER. */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_dags_agree_with_oracle);
    suite_add_tcase(s, tc);
    return s;
}
