/* run.h - one request's computation: the engine's two sweeps (engine.h),
 * then the diagnostics (diagnose.h) on what they observed.
 *
 * This is the core's entry point for proto/ and the tests (with validate.h,
 * which it includes: a graph is checked once, then run); it owns no state of
 * its own. */
#ifndef GD_RUN_H
#define GD_RUN_H

#include "core/diagnose.h"
#include "core/engine.h"
#include "core/validate.h"

/* Run the request on graph g (already gd_graph_check'ed): values,
 * gradients, then diagnostics for every wrt without a gradient (or with a
 * zero or non-finite one), every returned value with NaN/Inf and every fetch
 * behind an untaken branch, and the same_value_as evidence of disconnected
 * ones (samevalue.h). Results live in g's arena. Returns 0 or an error
 * code with err set. */
int gd_run(gd_graph *g, const gd_run_spec *spec, gd_run_result *res, gd_error *err);

#endif
