/* explain.h - a run of /v1/grad drawn as Graphviz DOT text (A4): the
 * picture of where the gradient flows and where it stops.
 *
 * Reads the decoded request, the run's trace (which nodes ran, which cond
 * branch was taken, the open region) and its diagnostics, and writes one
 * `digraph`: each node labelled name, op and shape; the target and the `wrt`
 * marked; edges that carry gradient solid, blocked edges red and dashed with
 * their reason; the `path` of each error diagnostic highlighted; nodes where
 * a gradient became zero orange and where NaN/Inf was born purple. Every
 * node and edge has an `id` and a `class` (kept by Graphviz's SVG output,
 * for tests and the playground's styling). Text only: laying it out is the
 * server's business (server/render.h); nothing here links Graphviz or knows
 * HTTP. */
#ifndef GD_EXPLAIN_H
#define GD_EXPLAIN_H

#include "core/buf.h"
#include "proto/request.h"

/* The colours the picture uses, named so that tests can look for them. */
#define GD_EXPLAIN_BLOCKED "#e03131"   /* blocked edge (dashed), its label, a wrt without gradient */
#define GD_EXPLAIN_PATH "#1c7ed6"      /* an error diagnostic's path */
#define GD_EXPLAIN_ZERO "#ffa94d"      /* a node where a gradient became all zero (fill) */
#define GD_EXPLAIN_NONFINITE "#b197fc" /* a node where NaN/Inf was born (fill) */

/* Append the DOT text of run `res` of request `req` (a /v1/grad request,
 * gd_run succeeded) to `out`. Scratch comes from the request's graph arena.
 * Returns 0, or -1 when out of memory (the arena's, or out's). */
int gd_explain_dot(gd_buf *out, const gd_request *req, const gd_run_result *res);

#endif
