/* graph.h - the computation graph as the core sees it: nodes with their op,
 * inputs (by node index), attributes, leaf declarations and values.
 *
 * The graph is built by proto/ (from JSON) or by tests (validate.h's
 * gd_graph_add), then checked once by gd_graph_check (validate.h). This module
 * stores it: nodes, the name index, consumers and the topological order; it
 * never looks inside a node's op row, so it does not include op.h.
 * Everything lives in the request's arena. No I/O, no JSON. */
#ifndef GD_GRAPH_H
#define GD_GRAPH_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/tensor.h"

/* An integer or a list of integers, as attributes such as `axis` take: any
 * int64, exactly (proto refuses what is not one). */
typedef struct gd_ints {
    int given;   /* present in the request */
    int is_list; /* given as [..] rather than a bare integer */
    int n;
    int64_t v[GD_MAX_RANK];
} gd_ints;

typedef struct gd_num {
    int given;
    double v;
} gd_num;

/* Every attribute any op takes. Which op reads which slot is declared in its
 * table row (op.h), so that a decoder fills them generically. */
typedef struct gd_attrs {
    gd_ints axis;      /* reductions, softmax family, concat, gather, argmax/argmin */
    gd_ints shape;     /* reshape, broadcast_to */
    gd_ints axes;      /* transpose (permutation), slice */
    gd_ints starts, ends, steps; /* slice */
    gd_num keepdims;   /* reductions; 0/1 */
    gd_num alpha;      /* leaky_relu */
    gd_num min, max;   /* clip */
    gd_ints depth;     /* one_hot */
    gd_num dtype;      /* cast: a gd_dtype */
} gd_attrs;

/* Static facts about a node's output: dtype always known after check, shape
 * rank < 0 when it depends on a value the request did not send. */
typedef struct gd_meta {
    gd_dtype dtype;
    gd_shape shape;
} gd_meta;

struct gd_op_def;

/* Every attribute absent: what a node whose op takes none points to. Never
 * written (const: a write faults). */
extern const gd_attrs gd_no_attrs;

/* A node as the graph defines it: everything here depends on the graph
 * alone, so a registered graph (held across requests, read by several at
 * once) keeps it immutable. What depends on the request lives in gd_nstate. */
typedef struct gd_node {
    const char *name;            /* as the request spelled it */
    int index;                   /* position in the request's nodes array */
    const struct gd_op_def *op;
    int n_in;
    int *in;                     /* node indices into the graph (resolved by check) */
    const char **in_names;       /* inputs as the request named them */
    /* The op's attributes: the node's own (in the arena, all absent at
     * first) when its op takes any, else &gd_no_attrs, shared and read-only:
     * most nodes take none, and a gd_attrs is 640 bytes. */
    gd_attrs *attrs;
    /* Leaves only: declarations that the value must match. */
    int has_shape_decl, has_dtype_decl;
    gd_shape shape_decl;
    gd_dtype dtype_decl;
} gd_node;

/* What one request knows about a node: its value, and what inference found
 * from the values' shapes. A held graph's own states carry only what the
 * graph fixes (constants' values, float32 declarations) and are copied into
 * each request (gd_graph_instance). */
typedef struct gd_nstate {
    gd_tensor *value;            /* constant's inline value, or the request's value; may be NULL */
    int value_index;             /* where the value came from in the request, for error paths; -1 inline */
    int transport_f32;           /* declared or arrived as float32 (proto narrows results back) */
    gd_meta meta;                /* filled by gd_graph_check */
    /* Set by gd_graph_check when inference failed on a fact that depends on
     * shapes, for a node that only cond branches need: its meta then has an
     * unknown shape, and the error (in the arena) fires only if the node is
     * evaluated (A8: an untaken branch's errors never fire). */
    const gd_error *deferred;
} gd_nstate;

/* ---- a held graph's memo: facts a request's signature fixes -----------------
 *
 * A registered graph (or one held because it was sent inline again and
 * again) answers request after request with the same shapes, targets and
 * wrt. What follows from those alone, not from the values, is the same every
 * time: the inferred metas (validate.c) and the memory plan (memplan.c). The
 * memo keeps a few of them: fixed slots, all allocated in the held arena when
 * the graph is held (validate.h's gd_graph_hold), so its bytes are counted with the held
 * form and bounded. A slot is published once (a request claims a free slot,
 * fills it, then marks it ready with a release store) and never written
 * again, so requests on several threads read it without a lock; when every
 * slot is taken, a request of another signature computes everything as
 * before. Nothing value-dependent is kept: values, the sweeps and every
 * diagnostic run afresh for each request. */
#define GD_MEMO_SLOTS 4    /* signatures per held graph, for inference and for plans each */
#define GD_MEMO_METAS 64   /* distinct metas one inference slot holds (a graph with more is not memoized) */

enum { GD_MEMO_FREE = 0, GD_MEMO_CLAIMED = 1, GD_MEMO_READY = 2 };

/* Inference: keyed by the leaves' metas (what gd_infer_leaf makes of the
 * request's values) and max_elements; the metas of every node, as indices
 * into a small table (most nodes share a few metas). */
typedef struct gd_infer_memo {
    _Atomic int state;
    int64_t max_elements;
    gd_meta *leaf;               /* [n_leaves] the key */
    uint16_t *idx;               /* [n] node v's meta is metas[idx[v]] */
    gd_meta *metas;              /* [max_metas] */
} gd_infer_memo;

/* The memory plan: keyed by the inference slot its metas came from and the
 * run's spec (targets, fetch, wrt, grad, unconnected_zero, target_grad
 * shapes), serialized into key; only for graphs without cond (a cond's
 * choice may come from a value). */
typedef struct gd_plan_memo {
    _Atomic int state;
    int64_t *key;                /* [key_cap] */
    int key_len;
    int *refc;                   /* [n] memplan.h's */
    unsigned char *keep;         /* [n] */
    unsigned char *needs, *open; /* [n] the regions, when has_regions */
    int has_regions, n_order;
    size_t excess;               /* the plan's peak above its start */
} gd_plan_memo;

typedef struct gd_memo {
    int n_leaves;
    int *leaves;                 /* [n_leaves] the leaf nodes, in index order */
    int edges;                   /* inputs over every node */
    int has_cond;                /* a cond anywhere: plans are not memoized */
    int key_cap;                 /* int64 entries of a plan key */
    int max_metas;               /* distinct metas an inference slot holds: GD_MEMO_METAS, or n if fewer */
    _Atomic int infer_unfit;     /* set once the metas did not fit a slot: never tried again */
    gd_infer_memo infer[GD_MEMO_SLOTS];
    gd_plan_memo plan[GD_MEMO_SLOTS];
} gd_memo;

/* A graph as one request sees it. nodes, the name index, consumers and the
 * order describe the graph; st is the request's. For a registered graph the
 * former point into the held graph's arena (shared, never written) and only
 * st is the request's own (gd_graph_instance). */
typedef struct gd_graph {
    gd_arena *arena;
    int n, cap;
    gd_node *nodes;
    gd_nstate *st;               /* [cap] per-request state, index-aligned with nodes */
    /* Built by gd_graph_check: consumers in CSR form and a topological order. */
    int *cons_start, *cons;      /* consumers of node i: cons[cons_start[i] .. cons_start[i+1]) */
    int *topo;                   /* every node, inputs before consumers */
    int *name_slot, name_cap;    /* open-addressing name table: node index + 1, 0 empty */
    int indexed;                 /* names indexed and inputs resolved (validate.h's gd_graph_index) */
    int checked;
    /* A held graph's memo (shared by its requests, which see it through
     * gd_graph_instance's copy); NULL for a graph decoded for one request. */
    gd_memo *memo;
    int memo_infer;              /* the request's metas are memo->infer[memo_infer - 1]'s; 0: none */
} gd_graph;

/* An empty graph in arena a. NULL when the arena is exhausted. */
gd_graph *gd_graph_new(gd_arena *a, int capacity_hint);

/* A request's view of `held` (checked, and never written again): the
 * nodes, names and order are shared, the states copied into arena a (a
 * constant's value is shared too: values are never written). Costs one copy
 * of the states; no parse, name resolution or ordering. NULL when out of
 * memory. */
gd_graph *gd_graph_instance(gd_arena *a, const gd_graph *held);

/* Append a node whose op row is `op` (validate.h's gd_graph_add finds it by
 * name); `inputs` are resolved by name at check time (they may name nodes
 * added later). `has_attrs`: the op takes attributes, so the node gets a
 * gd_attrs of its own (else it points to gd_no_attrs). Returns the node
 * (owned by the graph) or NULL with err set (out of memory). The name and
 * input strings are copied into the arena. */
gd_node *gd_graph_add_node(gd_graph *g, const char *name, const struct gd_op_def *op, const char *const *inputs,
                           int n_inputs, int has_attrs, gd_error *err);

/* Node index by name, -1 when absent. Valid after gd_graph_index_names
 * (which validate.h's gd_graph_index and gd_graph_check call first). */
int gd_graph_find(const gd_graph *g, const char *name);
/* Build the name index: every name valid (1..256 printable characters, no
 * spaces) and unique, else invalid_request / duplicate_node. */
int gd_graph_index_names(gd_graph *g, gd_error *err);
/* The closest node name to `word` for a "did you mean", or NULL. */
const char *gd_graph_closest_name(const gd_graph *g, const char *word);
/* With inputs resolved (node->in): consumers (CSR) and a topological order
 * into g->topo, or cycle naming the loop's nodes. */
int gd_graph_order(gd_graph *g, gd_error *err);

/* Set node v's value (variable/input/constant) for this request. The tensor
 * must outlive the request (its arena, or a held graph's). */
void gd_graph_set_value(gd_graph *g, int v, gd_tensor *value, int value_index);

/* Error helper for a node: at = "$.graph.nodes[<index>]<suffix>". */
int gd_node_errorf(gd_error *err, const gd_node *n, gd_err code, const char *suffix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
