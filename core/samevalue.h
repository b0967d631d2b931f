/* samevalue.h - evidence that a value was computed outside the graph (A2):
 * for a `disconnected` diagnostic, an `input` leaf whose value equals the
 * forward value of the wrt or of a node that depends on it.
 *
 * Runs after the gradients and the diagnostics (run.c). The candidates that
 * the run did not keep are evaluated by a second, evaluation-only sweep of
 * the engine (engine.h) in the request's arena, so within its memory limit
 * and its cancel record's deadline; when either would be exceeded, or that
 * sweep fails in any way, the search is skipped: it never turns into an
 * error. Knows the engine, the graph and the diagnostics record; writes no
 * text but the hint of the diagnostics it completes. */
#ifndef GD_SAMEVALUE_H
#define GD_SAMEVALUE_H

#include "core/diagnose.h"
#include "core/engine.h"

/* Fill same_input / same_node (and the hint) of every disconnected
 * diagnostic of res for which a match exists: at most one pair per wrt,
 * the input with the fewest edges to a target (ties: graph order), matched
 * to the first node in graph order. Values compare elementwise as
 * |a - b| <= 1e-12 * max(|a|, |b|), the node's value rounded to float32
 * when the input arrived as float32; NaN never matches. Returns 0, or -1
 * when the arena is exhausted before the search began (nothing changed). */
int gd_same_value_search(gd_graph *g, const gd_run_spec *spec, gd_run_result *res);

/* One elementwise comparison of the rule above (for the tests). */
int gd_same_value_close(double input, double node, int input_f32);

#endif
