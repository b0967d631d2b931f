/* flow.h - the one rule for "does gradient pass from node n into its input
 * i", and the regions it spans.
 *
 * The engine (which cotangents to form, which values to keep), the
 * diagnostics (where a gradient stops, and why) and GET /v1/ops (which inputs
 * take no gradient) all ask here, so the rule is written once. An edge is
 * blocked by the op itself (stop_gradient, a not-differentiable op, an input
 * such as where's condition), by a cond's untaken branch in a given run, or
 * by the int64 rule: no gradient flows into an int64 tensor.
 *
 * Knows the op table and the graph; no arena use, no diagnostics text. */
#ifndef GD_FLOW_H
#define GD_FLOW_H

#include "core/op.h"

/* Why gradient does not pass from a node into one of its inputs. The wire
 * names come from gd_block_reason_name. */
#define GD_BLOCK_REASONS(X)                                  \
    X(NONE, "none")                                          \
    X(STOP_GRADIENT, "stop_gradient")                        \
    X(NON_DIFFERENTIABLE, "non_differentiable")              \
    X(UNTAKEN_BRANCH, "untaken_branch")

typedef enum gd_block_reason {
#define GD__BLOCK_ENUM(name, wire) GD_BLOCK_##name,
    GD_BLOCK_REASONS(GD__BLOCK_ENUM)
#undef GD__BLOCK_ENUM
} gd_block_reason;

/* How many there are (not a member, so that switches need not name it). */
#define GD__ONE(name, wire) +1
enum { GD_BLOCK__COUNT = 0 GD_BLOCK_REASONS(GD__ONE) };
#undef GD__ONE

const char *gd_block_reason_name(gd_block_reason r);

/* The op's own rule for input i, whatever the run: stop_gradient blocks
 * everything, a not-differentiable op every input, and a row's
 * nograd_inputs the inputs it names. */
gd_block_reason gd_flow_input_block(const gd_op_def *op, int i);

/* The rule for node n's input i in a run whose cond choices are `taken`
 * ([g->n], 1 or 2 for an evaluated cond; NULL: before the run, every branch
 * open). The int64 rule is separate: see gd_flow_carries. */
gd_block_reason gd_flow_edge_block(const gd_graph *g, const signed char *taken, int n, int i);

/* Does gradient flow along n -> input i: the edge is not blocked and the
 * input is float64. Inline for the common op that blocks nothing (the
 * engine, the memory plan and the regions ask it several times per edge:
 * a tenth of a registered 10k-node scalar gradient as a call); the rest
 * goes to gd_flow_carries_rule. */
int gd_flow_carries_rule(const gd_graph *g, const signed char *taken, int n, int i);
static inline int gd_flow_carries(const gd_graph *g, const signed char *taken, int n, int i) {
    const gd_node *nd = &g->nodes[n];
    const gd_op_def *op = nd->op;
    if (op->differentiable && !op->nograd_inputs && !(op->flags & (GD_OPF_STOP | GD_OPF_COND)))
        return g->st[nd->in[i]].meta.dtype == GD_F64;
    return gd_flow_carries_rule(g, taken, n, i);
}

/* The node that made node v's int64 output int64 (argmax, cast, an int64
 * leaf), following the ops that keep int64; prefers inputs marked in
 * `prefer` (may be NULL). */
int gd_flow_made_int(const gd_graph *g, int v, const unsigned char *prefer);

/* needs[v] = 1 for the nodes of order[0..n_order) (inputs before consumers)
 * from which some is_wrt node is reachable through carrying edges. */
void gd_flow_needs(const gd_graph *g, const signed char *taken, const int *order, int n_order,
                   const unsigned char *is_wrt, unsigned char *needs);

/* open[v] = 1 for the nodes that the targets' cotangent reaches through
 * carrying edges, walking order[] backwards. The caller marks the targets
 * open first. With `needs` non-NULL a node spreads the region only when it
 * needs a cotangent itself (the static plan); with NULL every open node
 * spreads it (the region that decides which wrt gets a gradient). */
void gd_flow_open(const gd_graph *g, const signed char *taken, const int *order, int n_order,
                  const unsigned char *needs, unsigned char *open);

#endif
