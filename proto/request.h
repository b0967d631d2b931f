/* request.h - a decoded /v1/grad or /v1/eval request, and the limits the
 * decoder enforces: the types the decoder fills (proto/decode.h), the
 * encoder reads (proto/encode.h) and the server passes between them.
 *
 * Types only, plus the name of a tensor format. It knows the core's graph
 * and run spec; it knows nothing of JSON text, of how the fields are read
 * or written, or of HTTP. */
#ifndef GD_REQUEST_H
#define GD_REQUEST_H

#include <stdint.h>

#include "core/run.h" /* a request is made to be handed to gd_run */

/* Which endpoint the body was posted to: the set of accepted keys differs. */
typedef enum gd_endpoint {
    GD_EP_GRAD = 0,
    GD_EP_EVAL = 1,
    GD_EP_REGISTER = 2, /* POST /v1/graphs: decoded by gd_decode_graph, never into a gd_request */
    GD_EP_EXPLAIN = 3,  /* POST /v1/explain (A4): a /v1/grad body, decoded as GD_EP_GRAD, answered as a picture */
} gd_endpoint;

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
    int max_inputs;       /* inputs of one node; <= 0: no limit */
    int max_edges;        /* inputs of all nodes together; <= 0: no limit */
    /* One request's cancel record (the caller copies shared limits to set
     * it): parsing and decoding stop once it fires (A7). NULL: never. */
    const gd_cancel *cancel;
    int64_t max_elements; /* elements of any one tensor; <= 0: no limit */
    /* A request's "graph_id" (A3): the held graph of that id, checked and
     * never written again, kept alive by the caller until the request is
     * answered (the callback takes a reference it must release), or NULL
     * when this replica does not hold it. NULL lookup: every id is unknown. */
    const gd_graph *(*lookup)(void *arg, const char *id);
    void *lookup_arg;
    /* Not NULL: the request's "graph" member, whatever its value, stands for
     * this checked graph (held, never written), which the caller found for
     * the member's text (the server's cache of graphs sent inline). */
    const gd_graph *graph_given;
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

#endif
