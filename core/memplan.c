/* memplan.c - the engine's schedule replayed on shapes (see memplan.h).
 *
 * The replay is exact in its order: the same depth-first evaluation as
 * engine.c's eval_root (a cond evaluates its predicate, then the branch
 * chosen for the replay), the same release at the last read, the same
 * reverse sweep through the chosen branches. With conds, one replay per
 * combination of their choices (the plan is the largest), up to a bound on
 * the work; past it, everything held at once. Every byte count is an upper bound of what the
 * arena will count for it: gd_arena_buf_cost for a tensor buffer, the
 * broadcast shape for a contribution that may arrive unreduced, the op
 * row's `scratch`, and gd_arena_small_cost for the bookkeeping arrays, tensor
 * headers and event logs, whose sizes are bounded by node and edge counts.
 * tests/test_engine.c holds the plan against the arena's measured peak over
 * the fixture graphs. */
#include "core/memplan.h"

#include <string.h>

#include "core/flow.h"
#include "core/trace.h"

/* The replay's state; arrays in the graph's arena. */
typedef struct sim {
    const gd_graph *g;
    const gd_run_spec *spec;
    gd_memplan *p;
    int n;
    unsigned char *cand;      /* [n] will run (an ancestor of a target or a fetch) */
    unsigned char *anc;       /* [n] an ancestor of a target, through both branches of a cond */
    signed char *choice;      /* [n] a cond's branch in this replay (1 or 2) */
    signed char *taken;       /* [n] as engine.c records it: the choice of a cond that ran, else 0 */
    unsigned char *is_wrt, *returned, *done, *vlive, *clive, *needs, *open;
    size_t *tcost;            /* [n] cost of a buffer of the node's shape (its value, cotangent, contribution) */
    size_t *vcost;            /* [n] cost of the node's value buffer: tcost, 0 for a leaf (the request's) */
    size_t *ccost;            /* [n] cost of its cotangent's buffer */
    int *rc;                  /* [n] the replay's own copy of refc */
    int *order, n_order;
    int *stack, *phase;
    gd_meta *metas;           /* room for the widest node's input metas */
    size_t live, peak;
} sim;

#define ALLOC(a, ptr, count) (((ptr) = gd_arena_alloc((a), sizeof(*(ptr)) * (size_t)((count) + 1))) != NULL)

static size_t tensor_cost(const gd_shape *s) {
    int64_t n;
    if (gd_shape_numel(s, &n) || n <= 0) return 0;
    return gd_arena_buf_cost((size_t)n * 8);
}

static int is_leaf(const gd_node *nd) { return (nd->op->flags & GD_OPF_LEAF) != 0; }

static void bump(sim *s, size_t transient) {
    if (s->live + transient > s->peak) s->peak = s->live + transient;
}

/* What node v's kernel takes besides its output (forward) or its
 * contributions (backward): int64 inputs converted to float64 unless the
 * row takes int64, and the row's scratch. */
static size_t side_cost(sim *s, int v, int backward) {
    const gd_node *nd = &s->g->nodes[v];
    size_t c = 0;
    if (!(nd->op->flags & GD_OPF_INT_OK))
        for (int i = 0; i < nd->n_in; i++)
            if (s->g->st[nd->in[i]].meta.dtype == GD_I64) c += s->tcost[nd->in[i]];
    if (nd->op->scratch) {
        for (int i = 0; i < nd->n_in; i++) s->metas[i] = s->g->st[nd->in[i]].meta;
        c += nd->op->scratch(nd, s->metas, &s->g->st[v].meta, backward);
    }
    return c;
}

/* Node v's contributions to its inputs (the ones whose `want` is set),
 * each at most of the larger of the input's and the output's shape; and in
 * *sum_max the largest input shape, for the buffer that undoes broadcasting. */
static size_t din_cost(const sim *s, const signed char *taken, int v, const unsigned char *needs, size_t *sum_max) {
    const gd_node *nd = &s->g->nodes[v];
    size_t c = 0, out = s->tcost[v];
    *sum_max = 0;
    for (int i = 0; i < nd->n_in; i++) {
        if (!gd_flow_carries(s->g, taken, v, i) || !needs[nd->in[i]]) continue;
        size_t in = s->tcost[nd->in[i]];
        c += in > out ? in : out;
        if (in > *sum_max) *sum_max = in;
    }
    return c;
}

/* ---- the structure: who runs, refc, keep (the engine's inputs) --------------- */

static int structure(sim *s, gd_arena *a) {
    const gd_graph *g = s->g;
    const gd_run_spec *spec = s->spec;
    int n = s->n;
    gd_memplan *p = s->p;
    for (int k = 0; k < spec->n_targets; k++) s->cand[spec->targets[k]] = 1;
    for (int k = 0; k < spec->n_fetch; k++) s->cand[spec->fetch[k]] = 1;
    for (int k = n - 1; k >= 0; k--) {
        int v = g->topo[k];
        if (!s->cand[v]) continue;
        for (int i = 0; i < g->nodes[v].n_in; i++) {
            s->cand[g->nodes[v].in[i]] = 1;
            p->refc[g->nodes[v].in[i]]++;
        }
    }
    if (!spec->grad) return 0;
    unsigned char *sopen, *sneeds;
    if (!ALLOC(a, sopen, n) || !ALLOC(a, sneeds, n)) return -1;
    /* Every cond branch counts as open here: the choices come later. */
    gd_flow_needs(g, NULL, g->topo, n, s->is_wrt, sneeds);
    for (int k = 0; k < spec->n_targets; k++) sopen[spec->targets[k]] = 1;
    gd_flow_open(g, NULL, g->topo, n, sneeds, sopen);
    for (int v = 0; v < n; v++) {
        if (!sopen[v] || !sneeds[v]) continue;
        p->keep[v] = 1;
        for (int i = 0; i < g->nodes[v].n_in; i++) p->keep[g->nodes[v].in[i]] = 1;
    }
    return 0;
}

/* ---- the forward sweep, as engine.c runs it ------------------------------- */

static void forward_step(sim *s, int v) {
    const gd_node *nd = &s->g->nodes[v];
    s->done[v] = 1;
    s->order[s->n_order++] = v;
    if (is_leaf(nd)) return; /* its value is the request's, held already */
    bump(s, side_cost(s, v, 0) + s->vcost[v]);
    s->live += s->vcost[v];
    s->vlive[v] = 1;
    for (int i = 0; i < nd->n_in; i++) {
        int u = nd->in[i];
        if (--s->rc[u] == 0 && !s->p->keep[u] && !s->returned[u] && s->vlive[u]) {
            s->live -= s->vcost[u];
            s->vlive[u] = 0;
        }
    }
}

/* engine.c's eval_root: a cond's predicate, then its chosen branch. */
static void visit(sim *s, int root) {
    int sp = 0;
    if (s->done[root]) return;
    s->stack[sp] = root, s->phase[sp++] = 0;
    while (sp > 0) {
        int v = s->stack[sp - 1];
        const gd_node *nd = &s->g->nodes[v];
        if (s->done[v]) { sp--; continue; }
        int ph = s->phase[sp - 1]++;
        if ((nd->op->flags & GD_OPF_COND) && ph < 2) {
            if (ph == 1) s->taken[v] = s->choice[v];
            int u = nd->in[ph == 0 ? 0 : s->choice[v]];
            if (!s->done[u]) s->stack[sp] = u, s->phase[sp++] = 0;
        } else if (!(nd->op->flags & GD_OPF_COND) && ph == 0) {
            for (int i = nd->n_in - 1; i >= 0; i--)
                if (!s->done[nd->in[i]]) s->stack[sp] = nd->in[i], s->phase[sp++] = 0;
        } else {
            forward_step(s, v);
            sp--;
        }
    }
}

/* ---- the reverse sweep ---------------------------------------------------- */

/* Add a contribution of `cost` bytes into u's cotangent: it becomes the
 * cotangent, or is added and released. */
static void accumulate(sim *s, int u, size_t cost) {
    if (s->clive[u]) return;
    s->clive[u] = 1;
    s->ccost[u] = cost;
    s->live += cost;
}

static size_t seed_cost(const sim *s, int k) {
    const gd_tensor *tg = s->spec->target_grad ? s->spec->target_grad[k] : NULL;
    return tg ? tensor_cost(&tg->shape) : gd_arena_buf_cost(8);
}

static void backward_step(sim *s, int v, const unsigned char *needs) {
    const gd_node *nd = &s->g->nodes[v];
    size_t sum_max, din = s->clive[v] ? din_cost(s, s->taken, v, needs, &sum_max) : 0;
    if (din) {
        bump(s, side_cost(s, v, 1) + din);
        s->live += din;
        for (int i = 0; i < nd->n_in; i++) {
            int u = nd->in[i];
            if (!gd_flow_carries(s->g, s->taken, v, i) || !needs[u]) continue;
            size_t in = s->tcost[u], out = s->tcost[v];
            bump(s, in); /* the broadcast undone into a new buffer */
            s->live -= in > out ? in : out;
            accumulate(s, u, in);
        }
    }
    if (!s->is_wrt[v] && s->clive[v]) s->live -= s->ccost[v], s->clive[v] = 0;
    if (!s->returned[v] && s->vlive[v]) s->live -= s->vcost[v], s->vlive[v] = 0;
}

static void backward(sim *s) {
    const gd_run_spec *spec = s->spec;
    unsigned char *needs = s->needs, *open = s->open;
    gd_flow_needs(s->g, s->taken, s->order, s->n_order, s->is_wrt, needs);
    for (int k = 0; k < spec->n_targets; k++)
        if (s->g->st[spec->targets[k]].meta.dtype == GD_F64) open[spec->targets[k]] = 1;
    gd_flow_open(s->g, s->taken, s->order, s->n_order, NULL, open);
    for (int k = 0; k < spec->n_targets; k++) {
        int t = spec->targets[k];
        if (!needs[t]) continue;
        size_t c = seed_cost(s, k);
        bump(s, c);
        accumulate(s, t, c);
    }
    for (int k = s->n_order - 1; k >= 0; k--) backward_step(s, s->order[k], needs);
    for (int k = 0; k < spec->n_wrt; k++) { /* zeros for a wrt without a cotangent */
        int w = spec->wrt[k];
        if (open[w] ? !s->clive[w] : spec->unconnected_zero) s->live += s->tcost[w];
    }
    bump(s, 0);
}

/* One run of the engine's schedule, every cond taking s->choice: the
 * targets, then the fetches that are not behind an untaken branch, then the
 * reverse sweep; from `start` bytes held, with the replay's state afresh.
 * Returns its peak. */
static size_t replay(sim *s, size_t start) {
    const gd_run_spec *spec = s->spec;
    int n = s->n;
    memset(s->done, 0, (size_t)n), memset(s->vlive, 0, (size_t)n), memset(s->clive, 0, (size_t)n);
    memset(s->needs, 0, (size_t)n), memset(s->open, 0, (size_t)n), memset(s->taken, 0, (size_t)n);
    memcpy(s->rc, s->p->refc, sizeof *s->rc * (size_t)n);
    s->n_order = 0;
    s->live = s->peak = start;
    for (int k = 0; k < spec->n_targets; k++) visit(s, spec->targets[k]);
    for (int k = 0; k < spec->n_fetch; k++)
        if (!s->anc[spec->fetch[k]]) visit(s, spec->fetch[k]); /* engine.c: a target's ancestor is not forced */
    if (spec->grad) backward(s);
    return s->peak;
}

/* Replays for every combination of the choices of the conds that may run
 * (a cond's choice comes from a value the plan cannot know), when there
 * are few enough: 2^conds x (nodes + edges) of work at most. */
#define GD_MEMPLAN_MAX_CONDS 12
#define GD_MEMPLAN_MAX_WORK ((int64_t)1 << 22)

/* Cond v's branch when its predicate is a value of the request (a leaf
 * with its value: engine.c reads element 0 the same way), else 0: the
 * plan then tries both. */
static signed char known_choice(const gd_graph *g, int v) {
    int pi = g->nodes[v].in[0];
    const gd_node *p = &g->nodes[pi];
    const gd_tensor *t = g->st[pi].value;
    if (!is_leaf(p) || !t || t->n < 1) return 0;
    double pv = t->dtype == GD_F64 ? gd_f64(t)[0] : (double)gd_i64(t)[0];
    return pv != 0.0 ? 1 : 2;
}

static size_t every_choice(sim *s, const int *conds, int n_conds, size_t start) {
    size_t peak = 0;
    for (int64_t m = 0; m < (int64_t)1 << n_conds; m++) {
        for (int j = 0; j < n_conds; j++) s->choice[conds[j]] = (signed char)((m >> j) & 1 ? 2 : 1);
        size_t p = replay(s, start);
        if (p > peak) peak = p;
    }
    return peak;
}

/* ---- with many conds: everything at once ------------------------------------- */

/* Every value that may run, every cotangent that may be formed and every
 * seed and zero result held together, plus the largest one node's kernel
 * takes on the side: a bound whatever the branches and the order. */
static void all_at_once(sim *s) {
    const gd_graph *g = s->g;
    const gd_run_spec *spec = s->spec;
    size_t held = 0, side = 0;
    unsigned char *needs = s->needs;
    if (spec->grad) gd_flow_needs(g, NULL, g->topo, s->n, s->is_wrt, needs);
    for (int v = 0; v < s->n; v++) {
        if (!s->cand[v]) continue;
        size_t sum_max = 0, f = 0, b = 0;
        if (!is_leaf(&g->nodes[v])) held += s->vcost[v], f = side_cost(s, v, 0);
        if (spec->grad && needs[v]) {
            held += s->tcost[v];
            b = side_cost(s, v, 1) + din_cost(s, NULL, v, needs, &sum_max) + sum_max;
        }
        if (f > side) side = f;
        if (b > side) side = b;
    }
    if (spec->grad) {
        for (int k = 0; k < spec->n_targets; k++) held += seed_cost(s, k);
        for (int k = 0; k < spec->n_wrt; k++) held += s->tcost[spec->wrt[k]];
    }
    s->live += held;
    bump(s, side);
}

/* ---- the plan --------------------------------------------------------------- */

/* What the engine and the diagnostics allocate in small pieces, bounded by
 * counts: per node the engine's arrays (a gd_origin the largest), per edge
 * the depth-first stack, tensor headers (an output, and per input a
 * conversion, a contribution and its reduction, forward and backward),
 * event logs that double as they grow, input arrays of wide nodes; per
 * diagnostic its texts. */
static size_t small_cost(const gd_graph *g, const gd_run_spec *spec) {
    size_t n = (size_t)g->n, edges = 0;
    if (g->memo) edges = (size_t)g->memo->edges;
    else
        for (int v = 0; v < g->n; v++) edges += (size_t)g->nodes[v].n_in;
    size_t hdr = (sizeof(gd_tensor) + 15) & ~(size_t)15;
    size_t per_node = 64 + 2 * sizeof(gd_origin) + 4 * hdr + 4 * sizeof(gd_zero_event) + 128;
    size_t per_edge = 16 + 6 * hdr + 4 * (sizeof(gd_zero_event) + sizeof(gd_nonfinite_event)) + 64;
    size_t diags = (size_t)(spec->n_wrt + spec->n_targets + spec->n_fetch + 1) * 4096;
    return gd_arena_small_cost(n * per_node + edges * per_edge + diags, 40 + 8 * n + 2 * edges);
}

/* ---- the held graph's memo of plans (graph.h) ------------------------------------ */

/* Append x to key (cap entries) at *len; -1 once it is full. */
static int key_put(int64_t *key, int cap, int *len, int64_t x) {
    if (*len >= cap) return -1;
    key[(*len)++] = x;
    return 0;
}

static int key_put_list(int64_t *key, int cap, int *len, const int *xs, int n) {
    if (key_put(key, cap, len, n)) return -1;
    for (int i = 0; i < n; i++)
        if (key_put(key, cap, len, xs[i])) return -1;
    return 0;
}

/* Everything the plan reads besides the graph and its metas (which
 * g->memo_infer names): the key of a plan slot, into key[cap]. Its length,
 * or -1 when it does not fit. */
static int plan_key(const gd_graph *g, const gd_run_spec *spec, int64_t *key, int cap) {
    int len = 0;
    if (key_put(key, cap, &len, g->memo_infer) || key_put(key, cap, &len, spec->grad) ||
        key_put(key, cap, &len, spec->grad && spec->unconnected_zero) ||
        key_put_list(key, cap, &len, spec->targets, spec->n_targets) ||
        key_put_list(key, cap, &len, spec->fetch, spec->n_fetch) ||
        key_put_list(key, cap, &len, spec->wrt, spec->grad ? spec->n_wrt : 0))
        return -1;
    for (int k = 0; spec->grad && k < spec->n_targets; k++) {
        const gd_tensor *tg = spec->target_grad ? spec->target_grad[k] : NULL;
        if (key_put(key, cap, &len, tg ? tg->shape.rank : -1)) return -1;
        for (int d = 0; tg && d < tg->shape.rank; d++)
            if (key_put(key, cap, &len, tg->shape.dim[d])) return -1;
    }
    return len;
}

/* The plan of a ready slot with this key, its arrays copied into g's arena
 * (the engine decrements refc) and its peak counted from what the arena
 * holds now: 1, 0 when no slot matches, -1 out of memory. */
static int plan_from_memo(gd_graph *g, const gd_run_spec *spec, const int64_t *key, int len, gd_memplan *plan) {
    gd_memo *m = g->memo;
    for (int i = 0; i < GD_MEMO_SLOTS; i++) {
        const gd_plan_memo *pm = &m->plan[i];
        if (atomic_load_explicit(&pm->state, memory_order_acquire) != GD_MEMO_READY || pm->key_len != len ||
            memcmp(pm->key, key, sizeof *key * (size_t)len))
            continue;
        if (!ALLOC(g->arena, plan->refc, g->n) || !ALLOC(g->arena, plan->keep, g->n)) return -1;
        memcpy(plan->refc, pm->refc, sizeof *plan->refc * (size_t)g->n);
        memcpy(plan->keep, pm->keep, (size_t)g->n);
        if (pm->has_regions) plan->needs = pm->needs, plan->open = pm->open, plan->n_order = pm->n_order;
        plan->bounded = 1;
        plan->peak = gd_arena_live(g->arena) + small_cost(g, spec) + pm->excess;
        return 1;
    }
    return 0;
}

/* Keep a bounded plan (its peak `excess` bytes above its start) in a free
 * slot: claimed, filled, then published. Before the engine touches refc. */
static void plan_to_memo(gd_graph *g, const int64_t *key, int len, const gd_memplan *plan, size_t excess) {
    gd_memo *m = g->memo;
    for (int i = 0; i < GD_MEMO_SLOTS; i++) {
        gd_plan_memo *pm = &m->plan[i];
        int expect = GD_MEMO_FREE;
        if (!atomic_compare_exchange_strong(&pm->state, &expect, GD_MEMO_CLAIMED)) continue;
        memcpy(pm->key, key, sizeof *key * (size_t)len);
        pm->key_len = len;
        memcpy(pm->refc, plan->refc, sizeof *pm->refc * (size_t)g->n);
        memcpy(pm->keep, plan->keep, (size_t)g->n);
        if ((pm->has_regions = plan->needs != NULL)) {
            memcpy(pm->needs, plan->needs, (size_t)g->n);
            memcpy(pm->open, plan->open, (size_t)g->n);
            pm->n_order = plan->n_order;
        }
        pm->excess = excess;
        atomic_store_explicit(&pm->state, GD_MEMO_READY, memory_order_release);
        return;
    }
}

int gd_memplan_make(gd_graph *g, const gd_run_spec *spec, gd_memplan *plan, gd_error *err) {
    gd_arena *a = g->arena;
    int n = g->n, max_in = 1, edges = 0, n_cond = 0;
    sim S = {.g = g, .spec = spec, .p = plan, .n = n}, *s = &S;
    memset(plan, 0, sizeof *plan);
    /* A held graph without cond whose metas came from its memo: the plan of
     * an earlier request with the same key, or this one's kept for the next. */
    int64_t *key = NULL;
    int key_len = -1;
    if (g->memo && g->memo_infer && !g->memo->has_cond) {
        if (!(key = gd_arena_alloc(a, sizeof *key * (size_t)g->memo->key_cap))) return gd_error_oom(err);
        if ((key_len = plan_key(g, spec, key, g->memo->key_cap)) >= 0) {
            int hit = plan_from_memo(g, spec, key, key_len, plan);
            if (hit < 0) return gd_error_oom(err);
            if (hit) return 0;
        }
    }
    for (int v = 0; v < n; v++) {
        if (g->nodes[v].n_in > max_in) max_in = g->nodes[v].n_in;
        edges += g->nodes[v].n_in;
    }
    if (!ALLOC(a, plan->refc, n) || !ALLOC(a, plan->keep, n) || !ALLOC(a, s->cand, n) || !ALLOC(a, s->is_wrt, n) ||
        !ALLOC(a, s->anc, n) || !ALLOC(a, s->choice, n) || !ALLOC(a, s->taken, n) ||
        !ALLOC(a, s->returned, n) || !ALLOC(a, s->done, n) || !ALLOC(a, s->vlive, n) || !ALLOC(a, s->clive, n) ||
        !ALLOC(a, s->needs, n) || !ALLOC(a, s->open, n) ||
        !ALLOC(a, s->tcost, n) || !ALLOC(a, s->vcost, n) || !ALLOC(a, s->ccost, n) || !ALLOC(a, s->rc, n) || !ALLOC(a, s->order, n) ||
        !ALLOC(a, s->stack, edges + n + 1) || !ALLOC(a, s->phase, edges + n + 1) || !ALLOC(a, s->metas, max_in))
        return gd_error_oom(err);
    for (int k = 0; k < spec->n_targets; k++) s->returned[spec->targets[k]] = 1;
    for (int k = 0; k < spec->n_fetch; k++) s->returned[spec->fetch[k]] = 1;
    if (spec->grad)
        for (int k = 0; k < spec->n_wrt; k++) s->is_wrt[spec->wrt[k]] = 1;
    if (structure(s, a)) return gd_error_oom(err);
    plan->bounded = 1;
    for (int v = 0; v < n; v++) {
        s->tcost[v] = tensor_cost(&g->st[v].meta.shape); /* a wrt's too, run or not */
        if (!s->cand[v]) continue;
        if (g->st[v].meta.shape.rank < 0) plan->bounded = 0;
        n_cond += (g->nodes[v].op->flags & GD_OPF_COND) != 0;
        s->vcost[v] = is_leaf(&g->nodes[v]) ? 0 : s->tcost[v];
        s->rc[v] = plan->refc[v];
    }
    if (!plan->bounded) return 0;
    size_t start = gd_arena_live(a) + small_cost(g, spec);
    for (int k = 0; k < spec->n_targets; k++) s->anc[spec->targets[k]] = 1;
    for (int k = n - 1; k >= 0; k--)
        if (s->anc[g->topo[k]])
            for (int i = 0; i < g->nodes[g->topo[k]].n_in; i++) s->anc[g->nodes[g->topo[k]].in[i]] = 1;
    if (n_cond <= GD_MEMPLAN_MAX_CONDS && ((int64_t)n + edges) << n_cond <= GD_MEMPLAN_MAX_WORK) {
        int *conds;
        if (!ALLOC(a, conds, n_cond)) return gd_error_oom(err);
        int n_conds = 0;
        for (int v = 0; v < n; v++)
            if (s->cand[v] && (g->nodes[v].op->flags & GD_OPF_COND) && !(s->choice[v] = known_choice(g, v)))
                conds[n_conds++] = v;
        plan->peak = every_choice(s, conds, n_conds, start);
        if (n_cond == 0 && spec->grad) /* one replay, in the engine's very order */
            plan->needs = s->needs, plan->open = s->open, plan->n_order = s->n_order;
        if (key_len >= 0 && n_conds == 0) plan_to_memo(g, key, key_len, plan, plan->peak - start);
    } else {
        s->live = s->peak = start;
        all_at_once(s);
        plan->peak = s->peak;
    }
    return 0;
}
