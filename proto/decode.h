/* decode.h - turns a /v1/grad or /v1/eval request body (JSON, plus the binary
 * section of a binary-framed request) into a checked core graph and a
 * gd_run_spec ready for gd_run.
 *
 * Numbers: 1 and 1.0 are the same number; an int64 element (or any integer
 * field) must be an exact integer with |v| <= 2^53, and a JSON integer is
 * read exactly, so 9007199254740993 is refused rather than rounded.
 *
 * Every error names its culprit by JSON path ("$.graph.nodes[2].inputs[0]")
 * and, for a misspelt key, op or node name, the closest valid spelling. Sizes
 * are checked before memory is spent: the node count before any node is
 * built, every tensor's element count before its buffer is allocated.
 * Everything decoded lives in the caller's arena. This module knows the core
 * and jansson; it knows nothing of HTTP (the body size limit, the framing
 * headers and the status codes are the server's). */
#ifndef GD_DECODE_H
#define GD_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "run.h"

/* Which endpoint the body was posted to: the set of accepted keys differs. */
typedef enum gd_endpoint { GD_EP_GRAD = 0, GD_EP_EVAL = 1 } gd_endpoint;

/* The response's tensor form, from the request's "tensor_format". */
typedef enum gd_tensor_format {
    GD_TF_NESTED = 0, /* default: nested lists, a scalar as a bare number */
    GD_TF_FLAT,       /* {"shape", "data"} (+ "dtype" when not float64) */
    GD_TF_B64,        /* {"shape", "dtype", "b64"} */
    GD_TF_BINARY,     /* {"shape", "dtype", "offset", "nbytes"} into the binary section */
} gd_tensor_format;

const char *gd_tensor_format_name(gd_tensor_format f); /* "nested", "flat", "b64", "binary" */

typedef struct gd_decode_limits {
    int max_nodes;        /* nodes in the graph; <= 0: no limit */
    int64_t max_elements; /* elements of any one tensor; <= 0: no limit */
} gd_decode_limits;

/* A decoded request. Every pointer points into the arena given to
 * gd_decode_request and is valid until that arena is freed. */
typedef struct gd_request {
    gd_endpoint endpoint;
    gd_graph *graph;            /* built and gd_graph_check'ed */
    gd_run_spec spec;           /* ready for gd_run; spec.cancel is NULL (the caller sets it) */
    int64_t deadline_ms;        /* the request's "deadline_ms", -1 when absent */
    gd_tensor_format tensor_format;
    int fetch_given;            /* the response carries "values" (eval: always) */
    /* Names as the request spelled them (the nodes' names), index-aligned
     * with spec.targets / spec.wrt / spec.fetch. */
    const char **target_names;
    const char **wrt_names;
    const char **fetch_names;
} gd_request;

/* Decode one request.
 *   a         the request's arena; the graph, tensors and arrays go there
 *   body      the JSON text, json_len bytes (need not be NUL-terminated)
 *   bin       the binary section of a binary-framed body, bin_len bytes, or
 *             NULL for plain JSON (then tensors cannot refer to offsets); it
 *             is read during the call only (tensors are copied out of it)
 *   endpoint  GD_EP_GRAD or GD_EP_EVAL
 *   lim       node and element limits (NULL: none)
 * Returns 0 with *req filled, or an error code with err set (code, message,
 * at, suggestion). On error *req is zeroed except for what was decoded so
 * far, which the caller must not use; the arena still owns everything. */
int gd_decode_request(gd_arena *a, const char *body, size_t json_len, const unsigned char *bin, size_t bin_len,
                      int endpoint, const gd_decode_limits *lim, gd_request *req, gd_error *err);

/* double -> float32 as IEEE round-to-nearest, with values beyond float's range
 * going to +-Infinity (as NumPy does) rather than into undefined behaviour. */
float gd_to_f32(double v);

#endif
