/* samevalue.c - the same_value_as evidence of a disconnected diagnostic
 * (A2; see samevalue.h): which input holds a value that the graph computes
 * from the wrt. Candidates are filtered by shape before any value is read
 * or computed, so the second sweep evaluates only nodes that could match,
 * and the comparisons exit at the first differing element. */
#include "core/samevalue.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int gd_same_value_close(double input, double node, int input_f32) {
    if (input_f32) node = (double)(float)node; /* as the input was rounded on arrival */
    double m = fabs(input) > fabs(node) ? fabs(input) : fabs(node);
    return fabs(input - node) <= 1e-12 * m; /* false for NaN on either side */
}

static double elem(const gd_tensor *t, int64_t i) {
    return t->dtype == GD_F64 ? gd_f64(t)[i] : (double)gd_i64(t)[i];
}

/* 1 when input value a equals node value b elementwise (same shape), 0
 * when not, -1 when the cancel record stopped the comparison. */
static int same_value(const gd_tensor *a, const gd_tensor *b, int f32, const gd_cancel *cancel) {
    if (!gd_shape_eq(&a->shape, &b->shape)) return 0;
    gd_error e;
    for (int64_t i = 0; i < a->n; i++) {
        if (!gd_same_value_close(elem(a, i), elem(b, i), f32)) return 0;
        if ((i + 1) % GD_POLL_ELEMS == 0 && gd_cancel_check(cancel, &e)) return -1;
    }
    return 1;
}

/* Inputs (leaves with a value from the request) ordered by their fewest
 * edges to a target (unreachable last), then graph order. */
typedef struct ranked {
    int dist, node;
} ranked;

static int by_rank(const void *x, const void *y) {
    const ranked *a = x, *b = y;
    if (a->dist != b->dist) return a->dist < b->dist ? -1 : 1;
    return (a->node > b->node) - (a->node < b->node);
}

static int rank_inputs(gd_graph *g, const gd_run_spec *s, ranked *in, int *queue, int *dist) {
    int n = g->n, head = 0, tail = 0, ni = 0;
    for (int v = 0; v < n; v++) dist[v] = -1;
    for (int k = 0; k < s->n_targets; k++)
        if (dist[s->targets[k]] < 0) dist[s->targets[k]] = 0, queue[tail++] = s->targets[k];
    while (head < tail) {
        int v = queue[head++];
        for (int i = 0; i < g->nodes[v].n_in; i++) {
            int u = g->nodes[v].in[i];
            if (dist[u] < 0) dist[u] = dist[v] + 1, queue[tail++] = u;
        }
    }
    for (int v = 0; v < n; v++)
        if ((g->nodes[v].op->flags & GD_OPF_DATA) && g->st[v].value)
            in[ni++] = (ranked){dist[v] < 0 ? INT_MAX : dist[v], v};
    qsort(in, (size_t)ni, sizeof *in, by_rank);
    return ni;
}

/* ok[v]: v can be evaluated without an error known in advance: every leaf
 * it needs has a value and no node on the way holds a deferred error. */
static void evaluable(const gd_graph *g, unsigned char *ok) {
    for (int k = 0; k < g->n; k++) {
        int v = g->topo[k];
        const gd_node *nd = &g->nodes[v];
        ok[v] = !g->st[v].deferred && (!(nd->op->flags & GD_OPF_LEAF) || g->st[v].value);
        for (int i = 0; i < nd->n_in && ok[v]; i++) ok[v] = ok[nd->in[i]];
    }
}

/* The value the first run kept for v (a leaf's, a target's, a fetch's), or NULL. */
static gd_tensor *kept_value(const gd_graph *g, const gd_run_spec *s, const gd_run_result *res, int v) {
    if (g->nodes[v].op->flags & GD_OPF_LEAF) return g->st[v].value;
    for (int k = 0; k < s->n_targets; k++)
        if (s->targets[k] == v && res->targets[k]) return res->targets[k];
    for (int k = 0; k < s->n_fetch; k++)
        if (s->fetch[k] == v && res->fetched[k]) return res->fetched[k];
    return NULL;
}

static void set_hint(gd_graph *g, gd_diag *d, int input, int node) {
    const char *w = g->nodes[d->wrt].name, *in = g->nodes[input].name, *nd = g->nodes[node].name;
    const char *h =
        node == d->wrt
            ? gd_arena_printf(g->arena,
                              "The input '%s' holds the same value as '%s': it was most likely computed outside the "
                              "graph and sent back in as data, where no gradient flows. Feed '%s' instead of the "
                              "input '%s' (use '%s' wherever '%s' is used).",
                              in, w, w, in, w, in)
            : gd_arena_printf(g->arena,
                              "The input '%s' holds the same value as '%s', which the graph computes from '%s': it "
                              "was most likely computed outside the graph and sent back in as data, where no "
                              "gradient flows. Feed '%s' instead of the input '%s' (use '%s' wherever '%s' is "
                              "used) so that the gradient flows back to '%s'.",
                              in, nd, w, nd, in, nd, in, w);
    if (h) d->hint = h;
    d->same_input = input, d->same_node = node;
}

/* The first pair, in rank order of the inputs and graph order of the nodes,
 * among the candidates `cand` whose values are known. */
static int match_one(gd_graph *g, gd_diag *d, const ranked *in, int ni, const unsigned char *cand,
                     gd_tensor *const *val, const gd_cancel *cancel) {
    for (int j = 0; j < ni; j++) {
        int i = in[j].node;
        for (int v = 0; v < g->n; v++) {
            if (!cand[v] || v == i || !val[v]) continue;
            int m = same_value(g->st[i].value, val[v], g->st[i].transport_f32, cancel);
            if (m < 0) return -1;
            if (m) {
                set_hint(g, d, i, v);
                return 0;
            }
        }
    }
    return 0;
}

/* Marks cand[v] for the descendants v of w (w included) that can be
 * evaluated and have the shape of some input; returns how many. */
static int candidates(gd_graph *g, int w, const ranked *in, int ni, const unsigned char *ok, unsigned char *cand,
                      int *parent, int *queue) {
    int nc = 0;
    memset(cand, 0, (size_t)g->n);
    gd_descendants(g, w, cand, parent, queue);
    for (int v = 0; v < g->n; v++) {
        if (!cand[v]) continue;
        const gd_shape *sh = &g->st[v].meta.shape;
        int fits = 0;
        for (int j = 0; j < ni && !fits && ok[v] && sh->rank >= 0; j++)
            fits = in[j].node != v && gd_shape_eq(&g->st[in[j].node].value->shape, sh);
        cand[v] = (unsigned char)fits;
        nc += fits;
    }
    return nc;
}

int gd_same_value_search(gd_graph *g, const gd_run_spec *s, gd_run_result *res) {
    int n = g->n, any = 0;
    for (int k = 0; k < res->n_diags; k++) any |= res->diags[k].code == GD_DIAG_DISCONNECTED && res->diags[k].wrt >= 0;
    if (!any) return 0;
    ranked *in = gd_arena_alloc(g->arena, sizeof *in * (size_t)(n + 1));
    int *queue = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n), *aux = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    int *list = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    unsigned char *ok = gd_arena_alloc(g->arena, (size_t)n), *cand = gd_arena_alloc(g->arena, (size_t)n);
    unsigned char *want = gd_arena_alloc(g->arena, (size_t)n);
    gd_tensor **val = gd_arena_alloc(g->arena, sizeof *val * (size_t)n);
    if (!in || !queue || !aux || !list || !ok || !cand || !want || !val) return -1;
    int ni = rank_inputs(g, s, in, queue, aux);
    if (ni == 0) return 0;
    evaluable(g, ok);
    /* Every candidate of every disconnected wrt, then their values: kept by
     * the run, or computed by one evaluation-only sweep. */
    int nl = 0;
    for (int k = 0; k < res->n_diags; k++) {
        const gd_diag *d = &res->diags[k];
        if (d->code != GD_DIAG_DISCONNECTED || d->wrt < 0) continue;
        candidates(g, d->wrt, in, ni, ok, cand, aux, queue);
        for (int v = 0; v < n; v++) want[v] |= cand[v];
    }
    for (int v = 0; v < n; v++)
        if (want[v] && !(val[v] = kept_value(g, s, res, v))) list[nl++] = v;
    gd_run_result r2;
    if (nl) {
        gd_run_spec s2 = {.targets = list, .n_targets = nl, .cancel = s->cancel};
        gd_trace t2;
        gd_error e2;
        if (gd_engine_run(g, &s2, &r2, &t2, &e2)) return 0; /* too large, too late, or failing: no evidence */
        for (int k = 0; k < nl; k++) val[list[k]] = r2.targets[k];
    }
    for (int k = 0; k < res->n_diags; k++) {
        gd_diag *d = &res->diags[k];
        if (d->code != GD_DIAG_DISCONNECTED || d->wrt < 0) continue;
        candidates(g, d->wrt, in, ni, ok, cand, aux, queue);
        if (match_one(g, d, in, ni, cand, val, s->cancel) < 0) break; /* the deadline: stop searching */
    }
    for (int k = 0; k < nl; k++) /* the sweep's values are the search's alone */
        if (!(g->nodes[list[k]].op->flags & GD_OPF_LEAF)) gd_tensor_release(g->arena, r2.targets[k]);
    return 0;
}
