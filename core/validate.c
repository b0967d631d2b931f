/* validate.c - checking a graph against the op table: nodes added by op name
 * (with "did you mean"), arity, input names resolved to nodes, and the
 * static dtype/shape inference pass over every node in topological order.
 * Storage, the name index and the order are graph.c's. */
#include "core/validate.h"

#include <stdio.h>
#include <string.h>

gd_node *gd_graph_add(gd_graph *g, const char *name, const char *op_name, const char *const *inputs, int n_inputs,
                      gd_error *err) {
    const gd_op_def *op = gd_op_find(op_name);
    if (!op) {
        int n;
        const gd_op_def *const *all = gd_op_all(&n);
        const char *names[128];
        for (int i = 0; i < n && i < 128; i++) names[i] = all[i]->name;
        char at[64];
        snprintf(at, sizeof at, "$.graph.nodes[%d].op", g->n);
        gd_errorf(err, GD_E_UNKNOWN_OP, at, "Node '%s': unknown op '%s'.", name, op_name);
        gd_error_suggest(err, gd_closest(op_name, names, n < 128 ? n : 128));
        return NULL;
    }
    return gd_graph_add_node(g, name, op, inputs, n_inputs, op->n_attrs > 0, err);
}

int gd_graph_index(gd_graph *g, gd_error *err) {
    if (g->indexed) return 0; /* a held graph: shared, never written again */
    int rc = gd_graph_index_names(g, err);
    if (rc) return rc;
    for (int i = 0; i < g->n; i++) {
        gd_node *n = &g->nodes[i];
        const gd_op_def *op = n->op;
        if (n->n_in < op->min_in || (op->max_in >= 0 && n->n_in > op->max_in)) {
            char want[64];
            if (op->max_in < 0) snprintf(want, sizeof want, "at least %d", op->min_in);
            else if (op->min_in == op->max_in) snprintf(want, sizeof want, "%d", op->min_in);
            else snprintf(want, sizeof want, "%d to %d", op->min_in, op->max_in);
            return gd_node_errorf(err, n, GD_E_INVALID_REQUEST, op->max_in == 0 ? "" : ".inputs",
                                  "Node '%s' (%s) takes %s input%s (%s), got %d.", n->name, op->name, want,
                                  strcmp(want, "1") ? "s" : "", op->inputs_doc[0] ? op->inputs_doc : "none", n->n_in);
        }
        for (int j = 0; j < n->n_in; j++) {
            int k = gd_graph_find(g, n->in_names[j]);
            if (k < 0) {
                char suffix[48];
                snprintf(suffix, sizeof suffix, ".inputs[%d]", j);
                gd_node_errorf(err, n, GD_E_UNKNOWN_NODE, suffix, "Node '%s' (%s): input '%s' names no node.",
                               n->name, op->name, n->in_names[j]);
                gd_error_suggest(err, gd_graph_closest_name(g, n->in_names[j]));
                return GD_E_UNKNOWN_NODE;
            }
            n->in[j] = k;
        }
    }
    g->indexed = 1;
    return 0;
}

/* uncond[v] = 1 for the nodes some evaluation needs outside every cond
 * branch (see gd_graph_check_request for the seeds): the seeds and, in
 * reverse topological order, the inputs of marked nodes through every edge
 * but a cond's branch inputs (a cond's predicate is always needed). */
static int mark_unconditional(const gd_graph *g, const int *targets, int n_targets, const int *fetch, int n_fetch,
                              unsigned char *uncond) {
    unsigned char *anc = gd_arena_alloc(g->arena, (size_t)g->n + 1);
    if (!anc) return -1;
    memset(anc, 0, (size_t)g->n + 1);
    for (int v = 0; v < g->n; v++) uncond[v] = g->cons_start[v + 1] == g->cons_start[v];
    for (int k = 0; k < n_targets; k++) uncond[targets[k]] = anc[targets[k]] = 1;
    for (int k = g->n - 1; k >= 0; k--) {
        const gd_node *nd = &g->nodes[g->topo[k]];
        if (anc[g->topo[k]])
            for (int i = 0; i < nd->n_in; i++) anc[nd->in[i]] = 1;
    }
    for (int k = 0; k < n_fetch; k++)
        if (!anc[fetch[k]]) uncond[fetch[k]] = 1;
    for (int k = g->n - 1; k >= 0; k--) {
        const gd_node *nd = &g->nodes[g->topo[k]];
        if (!uncond[g->topo[k]]) continue;
        int branch_from = (nd->op->flags & GD_OPF_COND) ? 1 : nd->n_in;
        for (int i = 0; i < nd->n_in && i < branch_from; i++) uncond[nd->in[i]] = 1;
    }
    return 0;
}

/* Node n's inference failed with err, and only cond branches need n. If the
 * failure depends on shapes (inference with every input shape unknown
 * passes, or a leaf's value has another shape than it declares), keep a copy
 * of the error in n->deferred (in g's arena), give n the dtype it would have
 * and the shape it declares (unknown for an op), clear err and return 0;
 * otherwise return rc, err untouched. */
static int defer_infer(gd_graph *g, const gd_node *n, const gd_meta *ins, const gd_limits *lim, int rc,
                       gd_error *err) {
    gd_nstate *st = &g->st[n->index];
    gd_meta *unk = gd_arena_alloc(g->arena, sizeof *unk * (size_t)(n->n_in + 1));
    gd_error *keep = gd_arena_alloc(g->arena, sizeof *keep);
    if (!unk || !keep) return gd_error_oom(err);
    gd_meta m = {0};
    if ((n->op->flags & GD_OPF_LEAF) && rc == GD_E_SHAPE_MISMATCH && st->value) {
        m.dtype = st->value->dtype, m.shape = n->shape_decl;
    } else {
        for (int j = 0; j < n->n_in; j++) unk[j] = ins[j], unk[j].shape.rank = -1;
        gd_error shapeless;
        gd_error_clear(&shapeless);
        if (n->op->infer(n, unk, lim, &m, &shapeless)) return rc;
        m.shape.rank = -1;
    }
    *keep = *err;
    st->deferred = keep;
    st->meta = m;
    gd_error_clear(err);
    return 0;
}

/* ---- the held graph's memo of inference (graph.h) ------------------------------ */

/* The next `size` bytes of the block at *p, 16-byte aligned. */
static void *carve(char **p, size_t size) {
    void *at = *p;
    *p += (size + 15) & ~(size_t)15;
    return at;
}

int gd_graph_hold(gd_graph *g) {
    gd_arena *a = g->arena;
    gd_memo *m = gd_arena_alloc(a, sizeof *m);
    if (!m) return -1;
    for (int v = 0; v < g->n; v++) {
        m->n_leaves += (g->nodes[v].op->flags & GD_OPF_LEAF) != 0;
        m->has_cond |= (g->nodes[v].op->flags & GD_OPF_COND) != 0;
        m->edges += g->nodes[v].n_in;
    }
    /* a plan's key: 3 flags, targets, fetch and wrt with their counts, and a
     * target_grad shape per target; room for three entries per leaf, and more */
    m->key_cap = 32 + 3 * m->n_leaves;
    m->max_metas = g->n < GD_MEMO_METAS ? g->n : GD_MEMO_METAS;
    size_t n = (size_t)g->n + 1, per_slot = 0;
    const size_t sizes[] = {sizeof(gd_meta) * (size_t)(m->n_leaves + 1), sizeof(uint16_t) * n,
                            sizeof(gd_meta) * (size_t)(m->max_metas + 1), sizeof(int64_t) * (size_t)m->key_cap,
                            sizeof(int) * n, n, n, n};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) per_slot += (sizes[k] + 15) & ~(size_t)15;
    /* one block for the leaves and every slot's arrays */
    char *p = gd_arena_alloc(a, sizeof(int) * (size_t)(m->n_leaves + 1) + 16 + per_slot * GD_MEMO_SLOTS);
    if (!p) return -1;
    m->leaves = carve(&p, sizeof(int) * (size_t)(m->n_leaves + 1));
    for (int v = 0, k = 0; v < g->n; v++)
        if (g->nodes[v].op->flags & GD_OPF_LEAF) m->leaves[k++] = v;
    for (int i = 0; i < GD_MEMO_SLOTS; i++) {
        gd_infer_memo *im = &m->infer[i];
        gd_plan_memo *pm = &m->plan[i];
        im->leaf = carve(&p, sizes[0]);
        im->idx = carve(&p, sizes[1]);
        im->metas = carve(&p, sizes[2]);
        pm->key = carve(&p, sizes[3]);
        pm->refc = carve(&p, sizes[4]);
        pm->keep = carve(&p, sizes[5]);
        pm->needs = carve(&p, sizes[6]);
        pm->open = carve(&p, sizes[7]);
    }
    g->memo = m;
    return 0;
}

/* Metas are equal when dtype and shape are: the dims past the rank are
 * not part of a shape. */
static int meta_eq(const gd_meta *a, const gd_meta *b) {
    return a->dtype == b->dtype && gd_shape_eq(&a->shape, &b->shape);
}

/* Every leaf's meta as gd_infer_leaf makes it of the request's value, into
 * out[n_leaves]: 0, or -1 when one fails (the full pass then reports it
 * where it belongs, or defers it). */
static int leaf_metas(const gd_graph *g, const gd_limits *lim, gd_meta *out) {
    const gd_memo *m = g->memo;
    gd_error scratch;
    for (int k = 0; k < m->n_leaves; k++) {
        int v = m->leaves[k];
        gd_error_clear(&scratch);
        if (gd_infer_leaf(&g->nodes[v], &g->st[v], lim, &out[k], &scratch)) return -1;
    }
    return 0;
}

static int64_t max_elements(const gd_limits *lim) { return lim ? lim->max_elements : 0; }

/* The request's metas from a ready slot whose key matches (leaf metas in
 * lm, max_elements): every state's meta set and no error deferred, as the
 * full pass would leave them. 1 when one matched (g->memo_infer names it). */
static int infer_from_memo(gd_graph *g, const gd_limits *lim, const gd_meta *lm) {
    gd_memo *m = g->memo;
    for (int i = 0; i < GD_MEMO_SLOTS; i++) {
        gd_infer_memo *im = &m->infer[i];
        if (atomic_load_explicit(&im->state, memory_order_acquire) != GD_MEMO_READY) continue;
        if (im->max_elements != max_elements(lim)) continue;
        int k = 0;
        while (k < m->n_leaves && meta_eq(&im->leaf[k], &lm[k])) k++;
        if (k < m->n_leaves) continue;
        for (int v = 0; v < g->n; v++) {
            g->st[v].meta = im->metas[im->idx[v]];
            g->st[v].deferred = NULL;
        }
        for (k = 0; k < m->n_leaves; k++) g->st[m->leaves[k]].meta = lm[k]; /* the value's own shape record */
        g->memo_infer = i + 1;
        return 1;
    }
    return 0;
}

/* After a full pass that deferred nothing: keep its metas in a free slot
 * (claimed, filled, then published). Metas beyond max_metas distinct ones:
 * the graph is marked unfit and never tried again. */
static void infer_to_memo(gd_graph *g, const gd_limits *lim, const gd_meta *lm) {
    gd_memo *m = g->memo;
    if (atomic_load_explicit(&m->infer_unfit, memory_order_relaxed)) return;
    for (int i = 0; i < GD_MEMO_SLOTS; i++) {
        gd_infer_memo *im = &m->infer[i];
        int expect = GD_MEMO_FREE;
        if (!atomic_compare_exchange_strong(&im->state, &expect, GD_MEMO_CLAIMED)) continue;
        int n_metas = 0, last = 0;
        for (int v = 0; v < g->n; v++) {
            const gd_meta *x = &g->st[v].meta;
            int j = last < n_metas && meta_eq(&im->metas[last], x) ? last : 0;
            while (j < n_metas && !meta_eq(&im->metas[j], x)) j++;
            if (j == n_metas) {
                if (n_metas == m->max_metas) { /* too varied: give the slot back, for good */
                    atomic_store_explicit(&m->infer_unfit, 1, memory_order_relaxed);
                    atomic_store_explicit(&im->state, GD_MEMO_FREE, memory_order_release);
                    return;
                }
                im->metas[n_metas++] = *x;
            }
            im->idx[v] = (uint16_t)j;
            last = j;
        }
        memcpy(im->leaf, lm, sizeof *lm * (size_t)m->n_leaves);
        im->max_elements = max_elements(lim);
        atomic_store_explicit(&im->state, GD_MEMO_READY, memory_order_release);
        g->memo_infer = i + 1;
        return;
    }
}

int gd_graph_check(gd_graph *g, const gd_limits *lim, gd_error *err) {
    return gd_graph_check_request(g, NULL, 0, NULL, 0, lim, err);
}

int gd_graph_check_request(gd_graph *g, const int *targets, int n_targets, const int *fetch, int n_fetch,
                           const gd_limits *lim, gd_error *err) {
    int rc;
    if ((rc = gd_graph_index(g, err)) || (!g->topo && (rc = gd_graph_order(g, err)))) return rc;
    g->memo_infer = 0;
    gd_meta *lm = NULL;
    if (g->memo) { /* a held graph: the metas of an earlier request with the same leaf metas */
        if (!(lm = gd_arena_alloc(g->arena, sizeof *lm * (size_t)(g->memo->n_leaves + 1)))) return gd_error_oom(err);
        if (leaf_metas(g, lim, lm)) lm = NULL;
        else if (infer_from_memo(g, lim, lm)) {
            g->checked = 1;
            return 0;
        }
    }
    int deferred = 0;
    unsigned char *uncond = gd_arena_alloc(g->arena, (size_t)g->n + 1);
    if (!uncond || mark_unconditional(g, targets, n_targets, fetch, n_fetch, uncond)) return gd_error_oom(err);
    gd_meta in[64];
    for (int k = 0; k < g->n; k++) {
        if (lim && (k & 255) == 255 && (rc = gd_cancel_check(lim->cancel, err))) return rc;
        const gd_node *n = &g->nodes[g->topo[k]];
        gd_nstate *st = &g->st[g->topo[k]];
        gd_meta *ins = in;
        if (n->n_in > 64 && !(ins = gd_arena_alloc(g->arena, sizeof(gd_meta) * (size_t)n->n_in)))
            return gd_error_oom(err);
        for (int j = 0; j < n->n_in; j++) ins[j] = g->st[n->in[j]].meta;
        st->deferred = NULL;
        rc = (n->op->flags & GD_OPF_LEAF) ? gd_infer_leaf(n, st, lim, &st->meta, err)
                                           : n->op->infer(n, ins, lim, &st->meta, err);
        if (rc && !uncond[g->topo[k]]) rc = defer_infer(g, n, ins, lim, rc, err), deferred = 1;
        if (rc) return rc;
    }
    g->checked = 1;
    if (lm && !deferred) infer_to_memo(g, lim, lm);
    return 0;
}

int64_t gd_graph_work(const gd_graph *g, int64_t cap) {
    int64_t sum = 0, n;
    for (int v = 0; v < g->n; v++) {
        const gd_node *nd = &g->nodes[v];
        const gd_meta *m = &g->st[v].meta;
        if (gd_shape_numel(&m->shape, &n)) return cap + 1;
        int64_t w = n;
        if ((nd->op->flags & GD_OPF_CONTRACTS) && nd->n_in > 0) {
            const gd_shape *a = &g->st[nd->in[0]].meta.shape;
            int64_t k = a->rank > 0 ? a->dim[a->rank - 1] : 1;
            if (k > 0 && w > cap / k) return cap + 1;
            w *= k > 0 ? k : 1;
        }
        for (int j = 0; j < nd->n_in; j++) {
            int64_t e;
            if (gd_shape_numel(&g->st[nd->in[j]].meta.shape, &e)) return cap + 1;
            if (e > cap) return cap + 1;
            w += e;
        }
        sum += GD_NODE_WORK + w;
        if (w > cap || sum > cap) return cap + 1;
    }
    return sum;
}
