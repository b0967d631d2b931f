/* memplan.h - a request's memory, planned from its inferred shapes before
 * any kernel runs.
 *
 * The plan is the engine's schedule on shapes alone: which values run and in
 * what order (depth first from the targets, then the fetches, as engine.c
 * evaluates them), how many consumers read each value (it is released at
 * its last read), which values the backward sweep keeps, when each
 * cotangent is born and released, and what the kernels take on the side
 * (int64 inputs converted, the op row's `scratch`). From it, `peak`: an upper
 * bound of the arena's high-water mark during gd_engine_run and the
 * diagnostics, so that a request that cannot fit its memory limit is
 * too_large at once (A7). The engine follows the plan: it takes `refc` and
 * `keep` from it.
 *
 * Only one branch of a cond runs. When its predicate is a value of the
 * request (a leaf), the plan knows which; a computed predicate it cannot
 * know, so it replays every combination of those conds' choices and takes
 * the largest peak (up to 12 such conds and 2^conds x (nodes + edges) of
 * 4M; past that, the bound holds every value and cotangent at once). Knows the op table, the flow rule and the arena's costs (arena.h);
 * not the engine's internals. */
#ifndef GD_MEMPLAN_H
#define GD_MEMPLAN_H

#include <stddef.h>

#include "core/engine.h"

typedef struct gd_memplan {
    int *refc;            /* [n] consumers that will read each value (the engine decrements it) */
    unsigned char *keep;  /* [n] the backward sweep may read the value: not released in the forward */
    size_t peak;          /* bytes the arena may hold at most, from now to the end of gd_run */
    int bounded;          /* 0: a shape is unknown (a deferred node), peak means nothing */
    /* The backward sweep's regions (flow.h: gd_flow_needs and gd_flow_open
     * over the evaluation order), as the replay found them, when the run
     * holds no cond (the order is then the plan's, n_order nodes) and asks
     * for gradients; NULL otherwise. Read-only (a held graph's memo may own
     * them); the engine copies them. */
    const unsigned char *needs, *open;
    int n_order;
} gd_memplan;

/* Plan the request `spec` on graph g (checked): arrays in g's arena, peak
 * counted from what the arena holds now. Returns 0, or too_large with err
 * set when the arena cannot hold the plan's own arrays. */
int gd_memplan_make(gd_graph *g, const gd_run_spec *spec, gd_memplan *plan, gd_error *err);

#endif
