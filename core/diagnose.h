/* diagnose.h - why a variable has no gradient, and where zero and NaN/Inf
 * gradients and values were born.
 *
 * The engine records what it saw in a gd_trace (trace.h: which nodes ran,
 * which cond branch was taken, where a cotangent turned all-zero or
 * non-finite); this module turns that into the contract's diagnostics, with
 * the hints each op's row carries (op.h) and a generic text where a row has
 * none. It never compares op names. The no-gradient analysis follows the
 * contract's precedence rule: integer_dtype, then disconnected, then the
 * reason(s) at the stopping points nearest the target. It needs one pass over
 * the graph for the open region and one per variable without a gradient. */
#ifndef GD_DIAGNOSE_H
#define GD_DIAGNOSE_H

#include "core/engine.h"
#include "core/flow.h"
#include "core/trace.h"

/* The diagnostic codes and their wire names. */
#define GD_DIAG_CODES(X)                             \
    X(DISCONNECTED, "disconnected")                  \
    X(STOP_GRADIENT, "stop_gradient")                \
    X(NON_DIFFERENTIABLE, "non_differentiable")      \
    X(UNTAKEN_BRANCH, "untaken_branch")              \
    X(MIXED, "mixed")                                \
    X(INTEGER_DTYPE, "integer_dtype")                \
    X(ZERO_GRADIENT, "zero_gradient")                \
    X(NON_FINITE_GRADIENT, "non_finite_gradient")    \
    X(NON_FINITE_VALUE, "non_finite_value")          \
    X(NO_VARIABLES, "no_variables")

typedef enum gd_diag_code {
#define GD__DIAG_ENUM(name, wire) GD_DIAG_##name,
    GD_DIAG_CODES(GD__DIAG_ENUM)
#undef GD__DIAG_ENUM
} gd_diag_code;

/* How many there are (not a member, so that switches need not name it). */
#define GD__ONE(name, wire) +1
enum { GD_DIAG__COUNT = 0 GD_DIAG_CODES(GD__ONE) };
#undef GD__ONE

const char *gd_diag_code_name(gd_diag_code c); /* wire code */

typedef struct gd_block {
    int node;          /* the stopping point (for an int64 input: the node that made it int64) */
    gd_block_reason reason;
    int input;         /* which input of `node` leads back to the wrt */
    int predicate;     /* cond only: the predicate node, else -1 */
} gd_block;

typedef struct gd_zeroed {
    int node;
    gd_zero_cause cause;
} gd_zeroed;

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
    gd_zeroed *zeroed; /* zero_gradient; non_finite_gradient when has_zeroed */
    int n_zeroed;
    int has_zeroed;    /* non_finite_gradient: its origin multiplied an all-zero cotangent */
    gd_origin origin;  /* non_finite_* */
    int *candidates;   /* no_variables: input leaves on a carrying path to a target, graph order */
    int n_candidates;
    int same_input;    /* disconnected (A2): the input whose value equals node same_node's, else -1 */
    int same_node;
} gd_diag;

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

/* Marks in_d[v] = 1 for the descendants of w (w included; in_d zeroed by
 * the caller), with a BFS parent for one path back to w; queue: scratch of
 * g->n ints. Returns how many there are. */
int gd_descendants(const gd_graph *g, int w, unsigned char *in_d, int *parent, int *queue);

/* no_variables (A1): a gradient request with no wrt at all (none named, no
 * variable in the graph); its candidates are the input leaves in the open
 * region, in graph order. */
int gd_diagnose_no_variables(gd_graph *g, const gd_trace *t, const int *targets, int n_targets, gd_diag_list *out);

/* Every diagnostic of a run: no_variables when a gradient request has no
 * wrt; for each wrt without a gradient, or with an
 * all-zero or non-finite one; for each returned value with NaN/Inf (when
 * check_numerics); for each fetch behind an untaken branch. Sets res->diags
 * and res->n_diags (in g's arena). The scans of the gradients poll
 * spec->cancel. Returns 0, too_large when the arena is exhausted, or
 * deadline_exceeded (err set either way). */
int gd_diagnose_run(gd_graph *g, const gd_run_spec *spec, const gd_trace *t, gd_run_result *res, gd_error *err);

#endif
