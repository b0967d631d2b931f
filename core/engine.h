/* engine.h - evaluation and reverse-mode differentiation of a checked graph.
 *
 * gd_engine_run evaluates what the targets (and fetches) need, lazily through
 * cond, then sweeps backward from the targets forming cotangents only where
 * some `wrt` needs them, and records what it saw in a gd_trace. It knows the
 * op table and the flow rule (flow.h), not the diagnostics: run.h joins the
 * two. Re-entrant: all state lives in the graph's arena and in the run;
 * nothing is global. The cancel flag is polled between nodes and inside long
 * kernels. */
#ifndef GD_ENGINE_H
#define GD_ENGINE_H

#include "core/op.h"
#include "core/trace.h"

struct gd_diag; /* diagnose.h; filled by gd_run (run.h), never by the engine */

typedef struct gd_run_spec {
    const int *targets;          /* node indices; the gradient is of their sum */
    int n_targets;
    int targets_is_list;         /* for error paths: "$.target[i]" vs "$.target" */
    gd_tensor *const *target_grad; /* per target cotangent, NULL entries: scalar target (seed 1) */
    int grad;                    /* 0: evaluate only (/v1/eval) */
    const int *wrt;              /* node indices */
    int n_wrt;
    const int *fetch;
    int n_fetch;
    int unconnected_zero;        /* missing gradients become zeros of the node's shape */
    int check_numerics;          /* look for NaN/Inf and report their origin */
    const gd_cancel *cancel;     /* may be NULL */
} gd_run_spec;

typedef struct gd_run_result {
    gd_tensor **targets;         /* [n_targets] forward values */
    gd_tensor **grads;           /* [n_wrt] gradient or NULL (none) */
    gd_tensor **fetched;         /* [n_fetch] value or NULL (not computed: untaken branch) */
    struct gd_diag *diags;       /* filled by gd_run (run.h) */
    int n_diags;
    int64_t forward_us, backward_us;
    size_t peak_bytes;           /* the arena's high-water mark during the run */
    size_t planned_bytes;        /* the memory plan's bound of it (memplan.h); 0: not bounded */
    int64_t vjp_inputs;          /* input contributions the backward sweep formed */
    gd_trace trace;              /* what the sweeps observed (set by gd_run; arrays in g's arena), for
                                  * whoever draws the run (proto/explain.h) */
} gd_run_result;

/* The two sweeps of the request on graph g (already gd_graph_check'ed):
 * fills res (diags left empty) and *trace. Results and trace live in g's
 * arena. Returns 0 or an error code with err set (runtime data errors,
 * deadline_exceeded, too_large when the arena's limit is hit). */
int gd_engine_run(gd_graph *g, const gd_run_spec *spec, gd_run_result *res, gd_trace *trace, gd_error *err);

#endif
