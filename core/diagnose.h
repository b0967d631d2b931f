/* diagnose.h - why a variable has no gradient, and where zero and NaN/Inf
 * gradients and values were born.
 *
 * The engine records what it saw (which nodes ran, which cond branch was
 * taken, where a cotangent turned all-zero or non-finite); gd_diagnose turns
 * that into the contract's diagnostics. The no-gradient analysis follows the
 * contract's precedence rule: integer_dtype, then disconnected, then the
 * reason(s) at the stopping points nearest the target. It needs one pass over
 * the graph for the open region and one per variable without a gradient. */
#ifndef GD_DIAGNOSE_H
#define GD_DIAGNOSE_H

#include "graph.h"

typedef enum gd_diag_code {
    GD_DIAG_DISCONNECTED,
    GD_DIAG_STOP_GRADIENT,
    GD_DIAG_NON_DIFFERENTIABLE,
    GD_DIAG_UNTAKEN_BRANCH,
    GD_DIAG_MIXED,
    GD_DIAG_INTEGER_DTYPE,
    GD_DIAG_ZERO_GRADIENT,
    GD_DIAG_NON_FINITE_GRADIENT,
    GD_DIAG_NON_FINITE_VALUE,
} gd_diag_code;

const char *gd_diag_code_name(gd_diag_code c); /* wire code */

/* Why gradient does not pass from a node into one of its inputs. */
typedef enum gd_block_reason {
    GD_BLOCK_NONE = 0,
    GD_BLOCK_STOP_GRADIENT,
    GD_BLOCK_NON_DIFFERENTIABLE,
    GD_BLOCK_UNTAKEN_BRANCH,
} gd_block_reason;

const char *gd_block_reason_name(gd_block_reason r);

typedef struct gd_block {
    int node;          /* the stopping point (for an int64 input: the node that made it int64) */
    gd_block_reason reason;
    int input;         /* which input of `node` leads back to the wrt */
    int predicate;     /* cond only: the predicate node, else -1 */
} gd_block;

typedef enum gd_zero_cause_code { GD_ZERO_MASK, GD_ZERO_VALUE, GD_ZERO_CANCELLATION } gd_zero_cause_code;
const char *gd_zero_cause_name(gd_zero_cause_code c);

typedef struct gd_zeroed {
    int node;
    gd_zero_cause_code cause;
} gd_zeroed;

typedef struct gd_origin {
    int node;          /* -1: none */
    gd_shape shape;    /* shape the index refers to */
    int64_t index[GD_MAX_RANK];
} gd_origin;

typedef struct gd_diag {
    gd_diag_code code;
    int is_error;      /* severity: error (no gradient / no value) or warning */
    int wrt;           /* node index for gradient codes, else -1 */
    int node;          /* node index for value codes, else -1 */
    const char *message;
    const char *hint;
    int *consumers;    /* disconnected */
    int n_consumers;
    gd_block *blocked; /* stop_gradient / non_differentiable / untaken_branch / mixed */
    int n_blocked;
    int *path;         /* wrt ... target, through the first stopping point */
    int n_path;
    gd_dtype dtype;    /* integer_dtype */
    int made_by;       /* integer_dtype: node that made it int64 */
    gd_zeroed *zeroed; /* zero_gradient */
    int n_zeroed;
    gd_origin origin;  /* non_finite_* */
} gd_diag;

/* What the engine observed, for gd_diagnose. Arrays are [g->n]. */
typedef struct gd_trace {
    const unsigned char *evaluated;  /* node ran in the forward sweep */
    const int *pos;                  /* position in the evaluation order, -1 when not evaluated */
    const signed char *taken;        /* cond nodes: 1 or 2 (input index taken), 0 otherwise */
    const unsigned char *open;       /* node in the open region */
    /* zero events: node n's nonzero cotangent gave input i an all-zero
     * contribution, or node n's cotangent summed to zero (input -1). */
    const int *zero_node, *zero_input;
    const gd_zero_cause_code *zero_cause;
    int n_zero;
    /* non-finite birth events in the backward sweep, in backward order */
    const int *nf_node, *nf_input;
    const gd_origin *nf_origin;
    int n_nf;
    /* forward births: node whose output has NaN/Inf though its inputs had none */
    const gd_origin *fwd_birth;      /* [g->n], node = -1 where none */
} gd_trace;

/* Can gradient flow from node n into its input i, given the trace's cond
 * choices? Returns the reason it cannot, or GD_BLOCK_NONE. The int64 rule is
 * separate: see gd_made_int. */
gd_block_reason gd_edge_block(const gd_graph *g, const gd_trace *t, int n, int i);
/* The node that made node v's int64 output int64 (argmax, cast, an int64
 * leaf), following ops that keep int64; prefers inputs in `prefer` (may be NULL). */
int gd_made_int(const gd_graph *g, int v, const unsigned char *prefer);

/* Append diagnostics for one wrt that has no gradient (is_error), or whose
 * gradient `grad` (may be NULL) is all zero or non-finite (warnings).
 * targets: the run's targets. Results and messages live in g's arena.
 * Returns 0, or -1 when the arena is exhausted. */
typedef struct gd_diag_list {
    gd_diag *items;
    int n, cap;
} gd_diag_list;

int gd_diagnose_wrt(gd_graph *g, const gd_trace *t, const int *targets, int n_targets, int wrt,
                    int has_grad, int grad_zero, int grad_nonfinite, gd_diag_list *out);
/* non_finite_value for a returned node v whose value has NaN/Inf. */
int gd_diagnose_value(gd_graph *g, const gd_trace *t, int v, gd_diag_list *out);
/* untaken_branch for a fetched node that was not computed. */
int gd_diagnose_unfetched(gd_graph *g, const gd_trace *t, int v, gd_diag_list *out);

#endif
