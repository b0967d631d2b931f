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

int gd_graph_check(gd_graph *g, const gd_limits *lim, gd_error *err) {
    return gd_graph_check_request(g, NULL, 0, NULL, 0, lim, err);
}

int gd_graph_check_request(gd_graph *g, const int *targets, int n_targets, const int *fetch, int n_fetch,
                           const gd_limits *lim, gd_error *err) {
    int rc;
    if ((rc = gd_graph_index(g, err)) || (!g->topo && (rc = gd_graph_order(g, err)))) return rc;
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
        if (rc && !uncond[g->topo[k]]) rc = defer_infer(g, n, ins, lim, rc, err);
        if (rc) return rc;
    }
    g->checked = 1;
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
