/* validate.h - checking a graph against the op table, once per request: nodes
 * added by op name, arity, input names resolved, cycles rejected, dtypes
 * inferred for every node and shapes wherever they are known, attributes
 * validated by each op's inference (shape errors of nodes that only cond
 * branches need are deferred to evaluation).
 *
 * Knows the graph (graph.h) and the op table (op.h); runs nothing. */
#ifndef GD_VALIDATE_H
#define GD_VALIDATE_H

#include "core/op.h"

/* Append a node; `op_name` resolved against the op table (unknown_op with
 * the closest valid spelling as suggestion otherwise). See
 * gd_graph_add_node for ownership. */
gd_node *gd_graph_add(gd_graph *g, const char *name, const char *op_name, const char *const *inputs, int n_inputs,
                      gd_error *err);

/* The name index, then every node's arity and input names resolved to node
 * indices (unknown_node with a suggestion). Names resolve with
 * gd_graph_find from here on; gd_graph_check calls it again, cheaply. */
int gd_graph_index(gd_graph *g, gd_error *err);

/* gd_graph_index, the topological order (cycle), then inference over every
 * node. Returns 0 or an error code with err set (its `at` names the culprit
 * as "$.graph.nodes[i]..."). */
int gd_graph_check(gd_graph *g, const gd_limits *lim, gd_error *err);

/* gd_graph_check for a request that evaluates `targets` and `fetch` (node
 * indices, either may be NULL with a count of 0). Inference errors that
 * depend on shapes, on nodes that only cond branches need, are deferred to
 * evaluation (gd_node.deferred): a node is needed outside every branch when
 * a seed needs it through edges other than a cond's branch inputs; the seeds
 * are the nodes nothing consumes, the targets, and the fetches no target
 * depends on (a fetch behind a cond is computed only when its branch is
 * taken). gd_graph_check is this with no targets and no fetch. */
int gd_graph_check_request(gd_graph *g, const int *targets, int n_targets, const int *fetch, int n_fetch,
                           const gd_limits *lim, gd_error *err);

/* Give checked graph g, about to be held (shared by the requests that name
 * it and never written again), its memo (graph.h's gd_memo): every slot
 * allocated in g's arena now, so that the held form's byte count includes
 * it. From then on gd_graph_check_request on a gd_graph_instance of g takes
 * the metas from a slot whose leaves' metas match the request's, and fills
 * a free slot otherwise. Returns 0, or -1 when the arena is exhausted. */
int gd_graph_hold(gd_graph *g);

/* An estimate of the work of running checked graph g once, forward and
 * backward, in element operations: per node a fixed GD_NODE_WORK plus the
 * elements it reads and writes (times the contracted length for matmul).
 * Enough to tell a request of microseconds from one of milliseconds before
 * anything runs (the server runs the former on its network thread); it
 * returns `cap` + 1 as soon as the sum passes `cap`, or when a shape is
 * unknown. */
#define GD_NODE_WORK 64
int64_t gd_graph_work(const gd_graph *g, int64_t cap);

#endif
