/* flow.c - which edges carry gradient, and the regions they span (see
 * flow.h). Every function is one linear pass; nothing allocates. */
#include "core/flow.h"

#include <limits.h>

const char *gd_block_reason_name(gd_block_reason r) {
    static const char *const names[] = {
#define GD__BLOCK_NAME(name, wire) wire,
        GD_BLOCK_REASONS(GD__BLOCK_NAME)
#undef GD__BLOCK_NAME
    };
    _Static_assert(sizeof names / sizeof names[0] == GD_BLOCK__COUNT, "one name per block reason");
    return names[r];
}

/* Bit i of the row's nograd_inputs. Inputs past the mask's width (concat
 * takes any number) are never named by it: shifting by them would be
 * undefined, and on x86 would read bit i % 32 instead. */
static int nograd_input(const gd_op_def *op, int i) {
    return i >= 0 && i < (int)(sizeof op->nograd_inputs * CHAR_BIT) && ((op->nograd_inputs >> i) & 1u);
}

gd_block_reason gd_flow_input_block(const gd_op_def *op, int i) {
    if (op->flags & GD_OPF_STOP) return GD_BLOCK_STOP_GRADIENT;
    if (!op->differentiable || nograd_input(op, i)) return GD_BLOCK_NON_DIFFERENTIABLE;
    return GD_BLOCK_NONE;
}

gd_block_reason gd_flow_edge_block(const gd_graph *g, const signed char *taken, int n, int i) {
    const gd_op_def *op = g->nodes[n].op;
    gd_block_reason r = gd_flow_input_block(op, i);
    if (r == GD_BLOCK_NONE && (op->flags & GD_OPF_COND) && taken && taken[n] && taken[n] != i)
        return GD_BLOCK_UNTAKEN_BRANCH;
    return r;
}

int gd_flow_carries_rule(const gd_graph *g, const signed char *taken, int n, int i) {
    return gd_flow_edge_block(g, taken, n, i) == GD_BLOCK_NONE && g->st[g->nodes[n].in[i]].meta.dtype == GD_F64;
}

int gd_flow_made_int(const gd_graph *g, int v, const unsigned char *prefer) {
    for (int guard = 0; guard <= g->n; guard++) {
        const gd_node *nd = &g->nodes[v];
        int pick = -1, pick_pref = -1;
        for (int i = 0; i < nd->n_in; i++) {
            int u = nd->in[i];
            if (g->st[u].meta.dtype != GD_I64 || nograd_input(nd->op, i)) continue;
            if (pick < 0) pick = u;
            if (prefer && prefer[u] && pick_pref < 0) pick_pref = u;
        }
        /* Only a GD_OPF_MAKES_INT op (argmax, argmin, cast, a leaf) makes
         * int64 itself, when no int64 input flows through it (a cast from
         * int64 passes it on); every other op got its int64 from an input. */
        if (pick < 0) return v;
        v = pick_pref >= 0 ? pick_pref : pick;
    }
    return v;
}

void gd_flow_needs(const gd_graph *g, const signed char *taken, const int *order, int n_order,
                   const unsigned char *is_wrt, unsigned char *needs) {
    for (int k = 0; k < n_order; k++) {
        int v = order[k];
        needs[v] = is_wrt[v];
        for (int i = 0; i < g->nodes[v].n_in && !needs[v]; i++)
            if (gd_flow_carries(g, taken, v, i) && needs[g->nodes[v].in[i]]) needs[v] = 1;
    }
}

void gd_flow_open(const gd_graph *g, const signed char *taken, const int *order, int n_order,
                  const unsigned char *needs, unsigned char *open) {
    for (int k = n_order - 1; k >= 0; k--) {
        int v = order[k];
        if (!open[v] || (needs && !needs[v])) continue;
        for (int i = 0; i < g->nodes[v].n_in; i++)
            if (gd_flow_carries(g, taken, v, i)) open[g->nodes[v].in[i]] = 1;
    }
}
