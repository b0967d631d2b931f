/* encode.h - the responses of /v1/grad and /v1/eval, and the error body, as
 * JSON text streamed into a growable byte buffer.
 *
 * Tensors are printed straight from their buffers (no JSON tree per element)
 * in the form the request asked for (nested, flat, b64, or binary into a
 * separate binary section); float64 as Python's repr prints it, a float32
 * transport value as the shortest decimal that reads back to the same
 * float32 (wire.h writes the tensors, core/numfmt.h the numbers). Nothing here
 * knows HTTP: the status of an error body comes from gd_err_status, the
 * framing headers from the server. */
#ifndef GD_ENCODE_H
#define GD_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/diagnose.h"
#include "core/engine.h"
#include "proto/request.h"
#include "proto/wire.h"

/* Timings and sizes for the response's "stats". */
typedef struct gd_stats {
    int64_t nodes;       /* nodes in the graph */
    int64_t forward_us;  /* the core's forward sweep */
    int64_t backward_us; /* the core's backward sweep */
    int64_t queue_us;    /* waiting for a worker (the server's) */
    int64_t total_us;    /* receipt to response (the server's) */
    int64_t peak_bytes;  /* the arena's high-water mark */
} gd_stats;

/* Fill nodes, forward_us, backward_us and peak_bytes from the decoded
 * request and the run; queue_us and total_us are zeroed for the server. */
void gd_stats_from_run(gd_stats *st, const gd_request *req, const gd_run_result *res);

/* The 200 body of /v1/grad:
 *   {"target": {name: value}, "gradients": {wrt: tensor or null},
 *    "values": {fetch: tensor or null} (only when the request had "fetch"),
 *    "diagnostics": [...], "stats": {...}}
 * appended to `out`. With tensor_format "binary" the raw tensor bytes go to
 * `bin` (each at an offset aligned to 64 bytes from the section's start),
 * copied or as pieces that point at the tensors (wire.h: gd_binsec); bin
 * may be NULL otherwise. The
 * tensor writers poll req->spec.cancel (A7: the deadline covers encoding).
 * Returns 0, -1 when out of memory or binary is asked without `bin`, or
 * GD_E_DEADLINE_EXCEEDED when the poll fired (the output is incomplete). */
int gd_encode_grad_response(gd_buf *out, gd_binsec *bin, const gd_request *req, const gd_run_result *res,
                            const gd_stats *stats);

/* The 200 body of /v1/eval: {"values": {...}, "diagnostics": [...], "stats": {...}}. */
int gd_encode_eval_response(gd_buf *out, gd_binsec *bin, const gd_request *req, const gd_run_result *res,
                            const gd_stats *stats);

/* {"error": {"code", "message", "at"?, "suggestion"?, "diagnostics"?}}: "at"
 * and "suggestion" only when non-empty, "diagnostics" only when n_diags > 0
 * (their node names are looked up in g, which must then be non-NULL). */
int gd_encode_error(gd_buf *out, const gd_error *err, const gd_diag *diags, int n_diags, const gd_graph *g);

/* The 200 body of GET /v1/ops, generated from the core's op table (table
 * order), appended to `out`:
 *   {"ops": [{"name": "clip",
 *             "inputs": {"names": ["x"], "min": 1, "max": 1, "no_gradient": []},
 *             "attributes": {"min": {"type": "number", "default": null, "required": false}, ...},
 *             "differentiable": true, "doc": "..."}, ...]}
 * "inputs": the input names of the op's inputs_doc in order; "min"/"max" the
 * arity ("max" null when unbounded, as concat's "x..." whose "names" is
 * ["x"]); "no_gradient" the names of inputs that never pass a gradient
 * (where's cond, gather's indices; all of them when not differentiable).
 * "type" of an attribute: "int", "int|[int]" (an axis or a list of axes),
 * "[int]", "bool", "number" (or "NaN"/"Infinity"/"-Infinity"), "dtype"
 * ("float64"/"int64"; a leaf also takes "float32"). "default" is the JSON
 * value used when the key is absent, or null when there is none: then
 * "required" says whether the key must be given (true) or is optional with
 * its own meaning when absent (false, e.g. clip's min, reduction axes = all).
 * "required" is an addition to the contract's {"type", "default"}.
 * Returns 0, or -1 when out of memory. */
int gd_encode_ops(gd_buf *out);

#endif
